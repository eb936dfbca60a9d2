"""The application loops behind the `ixypy` command: packet generator,
forwarder, capture. The generator and capture touch Python once per batch,
the forwarder runs in C without the GIL for stretches of STRETCH seconds
(ixypy.fastpath.loops); the caller gets a
tick callback (for live stats) with 0.0 as the loop starts, after its set-up,
then about once a second with the seconds elapsed, and a way to stop."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Optional, Sequence

import dpkt

from .fastpath.batch import PacketBatch
from .fastpath.loops import ForwardLoop
from .device import Device
from .packets import SEQ_OFFSET

Tick = Callable[[float], None]

# batches between two looks at the clock and the limits: the look costs about
# as much as sending a batch of 32, and 16 batches take microseconds
BURST = 16
# seconds a loop runs in C without the GIL before the limits, the tick and
# signals (Ctrl-C) are looked at
STRETCH = 0.05


@dataclass
class Limits:
    """When a loop ends: after count packets, after duration seconds, or
    when stop() says so; whichever comes first."""

    count: Optional[int] = None
    duration: Optional[float] = None
    stop: Callable[[], bool] = lambda: False

    def reached(self, packets: int, elapsed: float) -> bool:
        return ((self.count is not None and packets >= self.count)
                or (self.duration is not None and elapsed >= self.duration)
                or self.stop())


class _Clock:
    """Elapsed time and the ticks: 0.0 at the start, then once a second
    after a look at the devices: they must still be there (DeviceGone
    otherwise: rx and tx on a gone device find no work, they do not fail)."""

    def __init__(self, tick: Optional[Tick], devices: Sequence[Device]) -> None:
        self.start = time.perf_counter()
        self.next_tick = 1.0
        self.tick = tick
        self.devices = devices
        if tick:
            tick(0.0)

    def elapsed(self) -> float:
        now = time.perf_counter() - self.start
        if now >= self.next_tick:
            self.next_tick += 1.0
            for dev in self.devices:
                dev.ensure_present()
            if self.tick:
                self.tick(now)
        return now


def pktgen(dev: Device, frames: Sequence[bytes], limits: Limits, batch_size: int = 32,
           rate_pps: Optional[float] = None, queue: int = 0, tick: Optional[Tick] = None,
           seq_offset: int = SEQ_OFFSET) -> int:
    """Send frames (round-robin over the templates) with a 64-bit sequence
    number at seq_offset, until limits; returns the packets sent."""
    pool = dev.mempool(max(4096, 4 * batch_size))
    pool.fill(list(frames))
    batch = PacketBatch(batch_size)
    txq = dev.tx_queue(queue)
    clock = _Clock(tick, [dev])
    seq = sent = 0
    count = limits.count
    burst = 1 if rate_pps is not None else BURST     # paced: check the clock every batch
    try:
        while True:
            elapsed = clock.elapsed()
            if limits.reached(sent, elapsed):
                break
            if rate_pps is not None and sent > rate_pps * elapsed:
                _pace(sent / rate_pps - elapsed)
                continue
            for _ in range(burst):
                if not len(batch):
                    want = batch_size if count is None else min(batch_size, count - sent)
                    batch.alloc(pool, want)
                    seq = batch.stamp_u64(seq_offset, seq)
                sent += txq.tx(batch)
        dev.flush_tx()
    finally:
        batch.free()
    return sent


def _pace(ahead: float) -> None:
    """Wait out being ahead of the rate: sleep when it is long enough to."""
    if ahead > 0.002:
        time.sleep(ahead - 0.001)


def forward(pairs: Iterable[tuple], limits: Limits, batch_size: int = 32, tick: Optional[Tick] = None) -> int:
    """Forward rx of each of one or two (src, dst) device pairs to tx of
    dst, queue 0, with Queue.forward's steps in C and the GIL released for
    stretches of at most STRETCH seconds (a ForwardLoop). Frames dst cannot
    take yet wait in the leg's batch, so a slow dst holds frames back in
    src's rx ring, where the NIC drops and counts what finds no room.
    Returns the packets forwarded (with a count: at most a batch a leg past
    it)."""
    pairs = list(pairs)
    legs = [(src.rx_queue(0), dst.tx_queue(0), PacketBatch(batch_size)) for src, dst in pairs]
    loop = ForwardLoop(legs)
    clock = _Clock(tick, list({id(d): d for pair in pairs for d in pair}.values()))
    try:
        elapsed = 0.0
        while not limits.reached(loop.forwarded, elapsed):
            stretch = STRETCH if limits.duration is None else min(STRETCH, max(limits.duration - elapsed, 0.0))
            loop.run(stretch, 0 if limits.count is None else limits.count - loop.forwarded)
            elapsed = clock.elapsed()
        for _, dst in pairs:
            dst.flush_tx()
    finally:
        for _, _, batch in legs:
            batch.free()
    return loop.forwarded


def capture(dev: Device, out: BinaryIO, limits: Limits, batch_size: int = 32, queue: int = 0,
            tick: Optional[Tick] = None, snaplen: int = 65535) -> int:
    """Write what rx queue receives to out as pcap; returns the packets written."""
    writer = dpkt.pcap.Writer(out, snaplen=snaplen)
    batch = PacketBatch(batch_size)
    rxq = dev.rx_queue(queue)
    clock = _Clock(tick, [dev])
    written = 0
    try:
        while not limits.reached(written, clock.elapsed()):
            if not rxq.rx(batch):
                continue
            now = time.time()
            keep = len(batch) if limits.count is None else min(len(batch), limits.count - written)
            for i in range(keep):
                writer.writepkt(bytes(batch[i]), ts=now)
            written += keep
            batch.free()
    finally:
        batch.free()
        out.flush()
    return written
