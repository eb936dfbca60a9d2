"""The application loops behind the `ixypy` command: packet generator,
replay, forwarder, capture. The generator (without a rate), the replay and
the forwarder run in C without the GIL for stretches of STRETCH seconds
(ixypy.fastpath.loops), a worker thread per queue when there are several;
the paced generator and capture touch Python once per batch. The caller gets
a tick callback (for live stats) with 0.0 as the loop starts, after its
set-up, then about once a second with the seconds elapsed, and a way to stop."""
from __future__ import annotations

import itertools
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Callable, Dict, Iterable, List, Optional, Sequence, Union

import dpkt

from .fastpath.batch import PacketBatch
from .errors import SharedMempool
from .fastpath.loops import ForwardLoop, PktgenLoop, ReplayLoop
from .device import Device
from .packets import SEQ_OFFSET, Capture

Tick = Callable[[float], None]

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
           seq_offset: int = SEQ_OFFSET, queues: int = 1, first_seq: int = 0) -> int:
    """Send frames (round-robin over the templates) with a 64-bit sequence
    number at seq_offset, until limits; returns the packets sent. On tx
    queues queue .. queue+queues-1, each numbering its packets from
    first_seq, each in C without the GIL (a PktgenLoop with a pool of its
    own; run_loops). Without a rate as fast as the queues take them; with
    one, each queue paces rate_pps / queues frame by frame (PktgenLoop)."""
    loops, batches = [], []
    for i in range(queues):
        pool = dev.mempool(max(4096, 4 * batch_size))
        pool.fill(list(frames))
        batches.append(PacketBatch(batch_size))
        loops.append(PktgenLoop(dev.tx_queue(queue + i), pool, batches[-1], seq_offset, first_seq,
                                0.0 if rate_pps is None else rate_pps / queues))
    try:
        sent = run_loops(loops, limits, _Clock(tick, [dev]))
        dev.flush_tx()
    finally:
        for batch in batches:
            batch.free()
    return sent


@dataclass
class FileStats:
    """What replay sent of one file: frames and bytes (without FCS), whole
    passes; the file's own span, first to last timestamp (file_seconds);
    the spans of the passes sent, first to last departure, summed
    (seconds), against the same in the schedule (schedule_seconds: file_seconds
    divided by the speed a whole pass, 0 as fast as possible); how late
    frames left after their scheduled time, as the send call saw it (mean,
    p50, p99 within 3.2 %, max)."""

    file: str
    frames: int
    bytes: int
    passes: int
    file_seconds: float
    schedule_seconds: float
    seconds: float
    late_mean_us: float
    late_p50_us: float
    late_p99_us: float
    late_max_us: float


@dataclass
class ReplayResult:
    """What replay sent: packets in all, and per file."""

    sent: int
    files: List[FileStats]


# a replay's pool holds its frames this many times over at least, so a short
# file still fills the tx ring
REPLAY_MIN_BUFS = 4096


def replay(dev: Device, captures: Sequence[Capture], limits: Limits, speed: Optional[float] = 1.0, passes: int = 1,
           batch_size: int = 32, queue: int = 0, tick: Optional[Tick] = None) -> ReplayResult:
    """Send the captures' frames unchanged, in their order, file after file,
    at the gaps of their timestamps divided by speed (None: as fast as the
    queue takes them, still in order), passes times over (0: until limits).
    The frames are written once into a pool (ReplayLoop), whose buffers
    hold every frame the same number of times, N frames taking N x 2 KiB of
    DMA memory or more, REPLAY_MIN_BUFS buffers at least."""
    frames = [frame for capture in captures for frame in capture.frames]
    copies = -(-REPLAY_MIN_BUFS // len(frames))
    pool = dev.mempool(copies * len(frames))
    batch = PacketBatch(batch_size)
    loop = ReplayLoop(dev.tx_queue(queue), pool, batch, frames, schedule(captures, speed),
                      list(itertools.accumulate(len(c.frames) for c in captures)), passes)
    try:
        run_loops([loop], Limits(limits.count, limits.duration, lambda: limits.stop() or loop.finished),
                  _Clock(tick, [dev]))
        dev.flush_tx()
    finally:
        batch.free()
    return ReplayResult(loop.packets, [_file_stats(c, loop.file_stats(i)) for i, c in enumerate(captures)])


def schedule(captures: Sequence[Capture], speed: Optional[float]) -> array:
    """Each frame's departure time in ns after its pass starts: the
    timestamps after the file's first divided by speed, never before the
    frame ahead (a capture's timestamps may go back), a file's first frame
    when the last of the file before it is due. All 0 with speed None."""
    if speed is None:
        return array("q", bytes(8 * sum(len(c.frames) for c in captures)))
    due = array("q")
    offset = 0
    for capture in captures:
        for t in capture.times_ns:
            due.append(max(offset + round(t / speed), due[-1] if due else 0))
        offset = due[-1]
    return due


def _file_stats(capture: Capture, got: dict) -> FileStats:
    return FileStats(str(capture.path), got["frames"], got["bytes"], got["passes"], max(capture.times_ns) / 1e9,
                     got["schedule_seconds"], got["seconds"],
                     *(got[f"late_{k}_ns"] / 1e3 for k in ("mean", "p50", "p99", "max")))


Loop = Union[ForwardLoop, PktgenLoop, ReplayLoop]


def _check_own_pools(loops: Sequence[Loop]) -> None:
    """Each pool serves one worker: alloc and free take no lock (ixy_mempool.h)."""
    owner: Dict[int, int] = {}
    for i, loop in enumerate(loops):
        for pool in loop.mempools():
            first = owner.setdefault(id(pool), i)
            if first != i:
                raise SharedMempool(f"workers {first} and {i} would both take buffers from one mempool "
                                    f"({pool.num_bufs} buffers)")


def run_loops(loops: Sequence[Loop], limits: Limits, clock: "_Clock") -> int:
    """Run C loops until limits; returns the packets they sent together.
    One loop runs in this thread, in stretches of STRETCH seconds, with a
    count stopping it within a batch of it. Several run in worker threads
    of their own (one per queue: they run on as many cores), this thread
    looking at the limits, the tick and signals every STRETCH seconds and
    stopping them all at the first limit (a count may then be passed by
    what they send in that time) or when a worker fails (its error is
    raised here)."""
    if len(loops) == 1:
        loop = loops[0]
        elapsed = 0.0
        while not limits.reached(loop.packets, elapsed):
            stretch = STRETCH if limits.duration is None else min(STRETCH, max(limits.duration - elapsed, 0.0))
            loop.run(stretch, 0 if limits.count is None else limits.count - loop.packets)
            elapsed = clock.elapsed()
        return loop.packets
    _check_own_pools(loops)
    with ThreadPoolExecutor(len(loops), thread_name_prefix="ixypy-worker") as workers:
        runs = [workers.submit(loop.run) for loop in loops]
        try:
            elapsed = 0.0
            while not limits.reached(sum(loop.packets for loop in loops), elapsed) and not any(r.done() for r in runs):
                time.sleep(STRETCH)
                elapsed = clock.elapsed()
        finally:
            for loop in loops:
                loop.stop()
        for r in runs:
            r.result()
    return sum(loop.packets for loop in loops)


def forward(pairs: Iterable[tuple], limits: Limits, batch_size: int = 32, tick: Optional[Tick] = None,
            queues: int = 1) -> int:
    """Forward rx of each of one or two (src, dst) device pairs to tx of
    dst, with Queue.forward's steps in C and the GIL released (ForwardLoop,
    run_loops): queue i to queue i for i < queues, one loop per queue.
    Frames dst cannot take yet wait in the leg's batch, so a slow dst holds
    frames back in src's rx ring, where the NIC drops and counts what finds
    no room. Where dst's DMA cannot reach src's rx buffers (Device.reaches),
    the leg copies each packet into a pool of dst's (ForwardLoop). Returns
    the packets forwarded."""
    pairs = list(pairs)
    legs = [[_leg(src, dst, i, batch_size) for src, dst in pairs] for i in range(queues)]
    try:
        loops = [ForwardLoop(queue_legs) for queue_legs in legs]
        forwarded = run_loops(loops, limits, _Clock(tick, list({id(d): d for pair in pairs for d in pair}.values())))
        for _, dst in pairs:
            dst.flush_tx()
    finally:
        for queue_legs in legs:
            for leg in queue_legs:
                leg[2].free()                 # the batch (a copying leg's copies are the loop's)
    return forwarded


def _leg(src: Device, dst: Device, queue: int, batch_size: int) -> tuple:
    """ForwardLoop's leg from src's rx queue to dst's tx queue: one that
    copies each packet into a pool of dst's when dst's DMA cannot reach
    src's rx buffers (e.g. src under VFIO with IOVAs, dst using physical
    addresses); zero-copy otherwise."""
    leg = (src.rx_queue(queue), dst.tx_queue(queue), PacketBatch(batch_size))
    return leg + (dst.mempool(),) if copies(src, dst, queue) else leg


def copies(src: Device, dst: Device, queue: int = 0) -> bool:
    """Whether forwarding src's rx queue to dst copies each packet: dst's
    DMA cannot reach src's rx buffers (Device.reaches)."""
    return not dst.reaches(src.rx_mempools[queue])


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
