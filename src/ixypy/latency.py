"""Latency distributions with probes: numbered, time-stamped UDP frames sent
from TX at a modest rate and taken out of whatever RX receives.

A probe carries, from packets.SEQ_OFFSET on, its 64-bit sequence number, its
send time (ns, CLOCK_MONOTONIC, read once per batch right before tx) and a
signature, so other frames on RX are passed over (ixypy.fastpath.ops:
stamp_probes, probe_latencies; the layout is ops.PROBE_*). Both ports are
in this process, so sender and receiver read one clock: a probe's latency
is the receive time (read once per received batch, right after rx) minus
its send time. That includes the software's own time on both sides (the
batch's wait in the tx ring, the poll that finds it), a few microseconds on
the sim devices.

Latencies go into an HdrHistogram (the `hdrhistogram` package, the
`latency` extra), one record per probe from Python: the probe rate is low
(DEFAULT_RATE, at most MAX_RATE); the per-packet work, stamping and
extracting, is in C.

With hardware time stamps (hw_timestamps=True; ixgbe and igb NICs, whose
IEEE 1588 clocks are ixypy.drivers.ieee1588) a probe is a PTP Sync message over
Ethernet with the probe's fields from its sequenceId on (PTP_SEQ_OFFSET), sent
one at a time (the NICs latch one time per direction): its latency is the
RX NIC's arrival time minus the TX NIC's send time, less the two clocks'
offset, measured by reading both (its error bound is in the result). The
software latency of the same probes comes with it, for comparison.
"""
from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Optional, Tuple

from .device import Device
from .drivers.ieee1588 import Ieee1588Clock, clock_offset
from .errors import MissingDependency
from .fastpath.batch import PacketBatch
from .fastpath.ops import PROBE_SIZE, probe_latencies, stamp_probes
from .packets import PTP_SEQ_OFFSET, SEQ_OFFSET, ptp_sync_frame, udp_frame

DEFAULT_RATE = 10_000          # probes a second
MAX_RATE = 100_000
DEFAULT_PROBES = 10_000        # without --probes or --duration: a second at the default rate
PROBE_FRAME = 64               # bytes without FCS
PROBE_FRAME_MIN = SEQ_OFFSET + PROBE_SIZE    # 62: the headers and the probe's fields
MAX_LATENCY_NS = 10_000_000_000   # the histogram's range: 1 ns .. 10 s (longer is recorded as 10 s)
SIGNIFICANT_DIGITS = 3         # the histogram's precision: values within 0.1 %
DRAIN_SECONDS = 1.0            # after the last probe, how long RX waits for those still in flight
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
BATCH = 32                     # rx and tx batch size
POOL_BUFFERS = 4096            # the probes' pool: more than a tx ring holds before the driver reclaims its buffers
HW_PROBE_FRAME_MIN = PTP_SEQ_OFFSET + PROBE_SIZE  # 64: a hardware-stamped probe's fields from the PTP sequenceId on
HW_PROBE_TIMEOUT = 0.1         # a hardware-stamped probe not received by then is lost; the next one goes


def require_hdrhistogram() -> Any:
    """The HdrHistogram class, or MissingDependency in one line (an extra)."""
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        raise MissingDependency("latency measurement needs the hdrhistogram package, which is not installed",
                                "install the latency extra: `pip install 'ixypy[latency]'` "
                                "(or `pip install hdrhistogram`)") from None
    return HdrHistogram


def new_histogram() -> Any:
    """An HdrHistogram of latencies in ns (1 ns .. MAX_LATENCY_NS)."""
    return require_hdrhistogram()(1, MAX_LATENCY_NS, SIGNIFICANT_DIGITS)


@dataclass
class LatencyResult:
    """What a latency run measured. Times are in ns; percentiles (p50 ...)
    from the histogram, within 0.1 %; min, max and mean exact. lost: probes
    sent and never received; reordered: received after a probe with a
    higher sequence number; duplicates: received more than once (counted
    once in received)."""

    tx: str
    rx: str
    rate_pps: float
    sent: int
    received: int
    lost: int
    reordered: int
    duplicates: int
    min_ns: Optional[int]
    mean_ns: Optional[float]
    p50_ns: Optional[int]
    p90_ns: Optional[int]
    p99_ns: Optional[int]
    p999_ns: Optional[int]
    max_ns: Optional[int]
    histogram: Any = field(repr=False, compare=False, default=None)   # the HdrHistogram itself
    timestamps: str = "software"
    # hardware time stamps only: the bound on the error of the two clocks'
    # offset (0 for one NIC), probes received without a pair of hardware
    # times (not in the latencies), and the same probes' software latencies
    clock_error_ns: Optional[int] = None
    unstamped: int = 0
    software: Optional["LatencyResult"] = None

    def to_dict(self) -> Dict[str, Any]:
        """The result without the histogram (for JSON)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("histogram", "software")}
        if self.software is not None:
            out["software"] = self.software.to_dict()
        return out

    def percentile_ns(self, percentile: float) -> Optional[int]:
        """Any percentile (0..100) of the latencies, in ns; None without probes."""
        return self.histogram.get_value_at_percentile(percentile) if self.received else None


class ProbeTally:
    """The received probes: their latencies into the histogram; lost,
    reordered and duplicate ones counted by sequence number (a bytearray,
    one byte per probe sent)."""

    def __init__(self, expected: int) -> None:
        self.histogram = new_histogram()
        self.window: Any = None              # the latencies since the last take_window (after start_windows)
        self.seen = bytearray(expected)
        self.highest = -1
        self.received = self.reordered = self.duplicates = 0
        self.total_ns = 0
        self.min_ns: Optional[int] = None
        self.max_ns: Optional[int] = None

    def record(self, seqs: array, latencies: array, n: int) -> None:
        """The first n (sequence number, latency in ns) pairs, in arrival order."""
        for i in range(n):
            seq, latency = seqs[i], latencies[i]
            if seq >= len(self.seen):
                self.seen.extend(bytes(seq + 1 - len(self.seen)))
            if self.seen[seq]:
                self.duplicates += 1
                continue
            self.seen[seq] = 1
            if seq < self.highest:
                self.reordered += 1
            else:
                self.highest = seq
            self.latency(latency)

    def has(self, seq: int) -> bool:
        """Whether probe seq was received."""
        return seq < len(self.seen) and bool(self.seen[seq])

    def latency(self, ns: int) -> None:
        """One probe's latency (record does this for each new probe)."""
        self.received += 1
        self.total_ns += ns
        self.min_ns = ns if self.min_ns is None else min(self.min_ns, ns)
        self.max_ns = ns if self.max_ns is None else max(self.max_ns, ns)
        value = min(max(ns, 1), MAX_LATENCY_NS)
        self.histogram.record_value(value)
        if self.window is not None:
            self.window.record_value(value)

    def start_windows(self) -> None:
        """Keep the latencies since the last take_window too (a second
        histogram: each latency recorded twice, about 0.6 µs more a probe,
        so only when asked)."""
        self.window = new_histogram()

    def take_window(self) -> Tuple[int, Optional[int], Optional[int], Optional[int]]:
        """The latencies since the last call (or start_windows): their
        count, p50, p99 and max (ns, None without any); the window starts
        anew."""
        window, n = self.window, self.window.get_total_count()
        figures = (n, *(window.get_value_at_percentile(q) if n else None for q in (50.0, 99.0)),
                   window.get_max_value() if n else None)
        window.reset()
        return figures

    def result(self, tx: str, rx: str, rate_pps: float, sent: int) -> LatencyResult:
        got = self.received > 0
        p50, p90, p99, p999 = (self.histogram.get_value_at_percentile(q) if got else None for q in PERCENTILES)
        return LatencyResult(tx, rx, rate_pps, sent, self.received, sent - self.received, self.reordered,
                             self.duplicates, self.min_ns, self.total_ns / self.received if got else None,
                             p50, p90, p99, p999, self.max_ns, histogram=self.histogram)


@dataclass
class Progress:
    """The last second of a latency run (measure_latency's progress):
    probes sent and latencies recorded in it, and their p50, p99 and max
    (ns, from a histogram of that second: within 0.1 %; None without any)."""

    seconds: float
    sent: int
    received: int
    p50_ns: Optional[int]
    p99_ns: Optional[int]
    max_ns: Optional[int]


class _Ticker:
    """A stop check that also calls progress once a second (the send and
    receive loops check stop every round; after a stall, one call for the
    seconds missed)."""

    def __init__(self, stop: Callable[[], bool], progress: Callable[[Progress], None], txq: Any,
                 tally: ProbeTally) -> None:
        self.stop, self.progress, self.txq, self.tally = stop, progress, txq, tally
        tally.start_windows()
        self.start = self.next = time.monotonic()
        self.sent = txq.packets
        self.next += 1.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now >= self.next:
            while self.next <= now:
                self.next += 1.0
            sent, self.sent = self.txq.packets - self.sent, self.txq.packets
            self.progress(Progress(round(now - self.start, 3), sent, *self.tally.take_window()))
        return self.stop()


class ProbeReceiver:
    """RX's side: receive a batch, read the clock, take its probes out (C),
    tally them, free the batch."""

    def __init__(self, rx: Device, tally: ProbeTally, batch_size: int = BATCH, offset: int = SEQ_OFFSET) -> None:
        self.rxq = rx.rx_queue(0)
        self.offset = offset
        self.batch = PacketBatch(batch_size)
        self.seqs = array("Q", bytes(8 * batch_size))
        self.latencies = array("q", bytes(8 * batch_size))
        self.tally = tally

    def poll(self) -> int:
        """One rx call: the frames received (probes or not)."""
        n = self.rxq.rx(self.batch)
        if n:
            now = time.monotonic_ns()
            found = probe_latencies(self.batch, now, self.seqs, self.latencies, self.offset)
            self.batch.free()
            self.tally.record(self.seqs, self.latencies, found)
        return n

    def close(self) -> None:
        self.batch.free()


def measure_latency(tx: Device, rx: Device, rate_pps: float = DEFAULT_RATE, probes: Optional[int] = None,
                    duration: Optional[float] = None, frame_size: int = PROBE_FRAME,
                    stop: Callable[[], bool] = lambda: False, hw_timestamps: bool = False,
                    progress: Optional[Callable[[Progress], None]] = None) -> LatencyResult:
    """Send probes from tx (queue 0) at rate_pps (paced: the probes due by
    now, a batch at most, each round) until `probes` were sent or `duration`
    seconds passed (neither: DEFAULT_PROBES), receiving on rx (queue 0, may
    be tx itself, a loopback) meanwhile and up to DRAIN_SECONDS after; the
    latency distribution. frame_size: bytes without FCS, at least
    SEQ_OFFSET + PROBE_SIZE (HW_PROBE_FRAME_MIN with hw_timestamps).
    hw_timestamps: the NICs' IEEE 1588 times (ixgbe and igb, see the module's
    notes); probes go one at a time, at rate_pps at most. progress: called
    once a second with that second's figures (Progress)."""
    if not 0 < rate_pps <= MAX_RATE:
        raise ValueError(f"probe rate {rate_pps} outside (0, {MAX_RATE}] per second")
    least = HW_PROBE_FRAME_MIN if hw_timestamps else PROBE_FRAME_MIN
    if frame_size < least:
        raise ValueError(f"a probe needs {least} bytes, not {frame_size}")
    if probes is None and duration is None:
        probes = DEFAULT_PROBES
    expected = probes if probes is not None else int(rate_pps * (duration or 0)) + BATCH
    if hw_timestamps:
        return _measure_hw(tx, rx, rate_pps, probes, duration, frame_size, stop, expected, progress)
    pool = tx.mempool(POOL_BUFFERS)
    pool.fill([udp_frame(frame_size, dst_mac=rx.mac)])
    tally = ProbeTally(expected)
    receiver = ProbeReceiver(rx, tally)
    if progress is not None:
        stop = _Ticker(stop, progress, tx.tx_queue(0), tally)
    try:
        sent = _send_probes(tx, pool, receiver, rate_pps, probes, duration, stop)
        _drain(receiver, sent, stop)
    finally:
        receiver.close()
    return tally.result(tx.address, rx.address, rate_pps, sent)


def _done(sent: int, start: float, probes: Optional[int], duration: Optional[float]) -> bool:
    return (probes is not None and sent >= probes) or (duration is not None and time.monotonic() - start >= duration)


def _send_probes(tx: Device, pool, receiver: ProbeReceiver, rate_pps: float, probes: Optional[int],
                 duration: Optional[float], stop: Callable[[], bool]) -> int:
    """Send probes paced at rate_pps, polling rx between: the probes sent."""
    txq = tx.tx_queue(0)
    batch = PacketBatch(BATCH)
    start = time.monotonic()
    seq = sent = 0
    try:
        while not stop() and not _done(sent, start, probes, duration):
            due = min(int((time.monotonic() - start) * rate_pps) + 1 - sent, BATCH)
            if probes is not None:
                due = min(due, probes - sent)
            if due > 0 and not len(batch):
                batch.alloc(pool, due)
                seq = stamp_probes(batch, seq, SEQ_OFFSET)
            if len(batch):
                sent += txq.tx(batch)
            receiver.poll()
    finally:
        batch.free()
    return sent


def _poll_until(receiver: ProbeReceiver, done: Callable[[], bool], deadline: float,
                stop: Callable[[], bool]) -> bool:
    """Poll rx until done() (True), or until the deadline (time.monotonic)
    or a stop (False)."""
    while not done():
        if time.monotonic() >= deadline or stop():
            return False
        receiver.poll()
    return True


def _drain(receiver: ProbeReceiver, sent: int, stop: Callable[[], bool]) -> None:
    """Receive until every probe sent is in, or DRAIN_SECONDS."""
    _poll_until(receiver, lambda: receiver.tally.received >= sent, time.monotonic() + DRAIN_SECONDS, stop)


def _enabled_clocks(tx: Device, rx: Device) -> Tuple[Ieee1588Clock, Ieee1588Clock]:
    """tx's and rx's IEEE 1588 clocks, enabled (one clock for one device)."""
    tx_clock = tx.ieee1588()
    tx_clock.enable()
    if rx is tx:
        return tx_clock, tx_clock
    rx_clock = rx.ieee1588()
    try:
        rx_clock.enable()
    except BaseException:
        tx_clock.disable()
        raise
    return tx_clock, rx_clock


def _measure_hw(tx: Device, rx: Device, rate_pps: float, probes: Optional[int], duration: Optional[float],
                frame_size: int, stop: Callable[[], bool], expected: int,
                progress: Optional[Callable[[Progress], None]]) -> LatencyResult:
    """measure_latency with the NICs' time stamps: one probe in flight."""
    tx_clock, rx_clock = _enabled_clocks(tx, rx)
    try:
        offset, error = clock_offset(tx_clock, rx_clock)
        pool = tx.mempool(POOL_BUFFERS)
        pool.fill([ptp_sync_frame(frame_size, src_mac=tx.mac, dst_mac=rx.mac)])
        hw, sw = ProbeTally(expected), ProbeTally(expected)
        receiver = ProbeReceiver(rx, sw, offset=PTP_SEQ_OFFSET)
        if progress is not None:
            stop = _Ticker(stop, progress, tx.tx_queue(0), hw)
        try:
            sent = _send_hw_probes(tx.tx_queue(0), pool, receiver, (tx_clock, rx_clock, offset), hw, rate_pps,
                                   probes, duration, stop)
        finally:
            receiver.close()
    finally:
        tx_clock.disable()
        rx_clock.disable()
    software = sw.result(tx.address, rx.address, rate_pps, sent)
    return replace(hw.result(tx.address, rx.address, rate_pps, sent), received=sw.received,
                   lost=sent - sw.received, reordered=sw.reordered, duplicates=sw.duplicates,
                   timestamps="hardware", clock_error_ns=error, unstamped=sw.received - hw.received,
                   software=software)


def _send_hw_probes(txq, pool, receiver: ProbeReceiver, clocks: Tuple[Ieee1588Clock, Ieee1588Clock, int],
                    hw: ProbeTally, rate_pps: float, probes: Optional[int], duration: Optional[float],
                    stop: Callable[[], bool]) -> int:
    """Probes one at a time, each sent when due and when the last one was
    received (or HW_PROBE_TIMEOUT passed); the latched times of each probe
    received go into hw. Returns the probes sent."""
    tx_clock, rx_clock, offset = clocks
    batch = PacketBatch(1)
    start = time.monotonic()
    sent = 0
    try:
        while not stop() and not _done(sent, start, probes, duration):
            _poll_until(receiver, lambda: False, start + sent / rate_pps, stop)    # late probes are counted
            if not len(batch):
                batch.alloc(pool, 1)
                stamp_probes(batch, sent, PTP_SEQ_OFFSET)
            tx_clock.read_tx()      # free both latches: the next times are this probe's
            rx_clock.read_rx()
            if not txq.tx_timestamped(batch):
                continue            # the ring is full: the probe stays in batch, tried again
            before = receiver.tally.received + receiver.tally.duplicates
            if _poll_until(receiver, lambda: receiver.tally.has(sent), time.monotonic() + HW_PROBE_TIMEOUT, stop):
                sent_ns, arrival_ns = tx_clock.read_tx(), rx_clock.read_rx()
                alone = receiver.tally.received + receiver.tally.duplicates == before + 1   # no late probe took the rx latch
                if sent_ns is not None and arrival_ns is not None and alone:
                    hw.latency(arrival_ns - offset - sent_ns)
            sent += 1
    finally:
        batch.free()
    return sent
