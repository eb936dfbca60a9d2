"""Throughput search as RFC 2544 section 26.1 describes it: the highest rate
at which what sits between two ports (a device under test, or a cable) loses
no more than a threshold of the frames offered (0: the no-drop rate, NDR;
more: a partial-drop rate, PDR), found by a binary search over trials.

A trial sends UDP frames at one rate from TX for a while (apps.pktgen's
paced path, each frame numbered at packets.SEQ_OFFSET), receives on RX at
the same time (fastpath.loops.SeqRxLoop, in C without the GIL, in a thread
of its own), waits for the frames in flight, then compares: loss is sent
minus received, where RX counts only this trial's frames, known by their
numbers (each trial numbers from a random multiple of 2**WINDOW_BITS), so
other traffic and an earlier trial's stragglers do not count."""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple

from . import apps
from .device import FCS_BYTES, Device, l1_bytes, l1_pps, link_text
from .errors import InvalidRate, LinkDown, NothingReceived
from .fastpath.batch import PacketBatch
from .fastpath.loops import SeqRxLoop
from .packets import MIN_FRAME, SEQ_OFFSET, udp_frame

WINDOW_BITS = 40            # a trial's frames are numbered within a window of 2**40
TRIAL_BITS = 23             # one of 2**23 windows, at random: 63 bits in all, never wrapping


@dataclass
class Config:
    """What a search does. Rates in Mpps of frames of `size` bytes (without
    the FCS); max_mpps None: TX's line rate for the size, from its link
    speed. The search ends when the highest rate that passed and the lowest
    that failed are within resolution_pct of max_mpps, or after max_trials.
    A trial passes when at most loss_pct percent of the frames sent were
    not received; it sends for trial_seconds (RFC 2544 asks for 60 in a
    real test) and waits settle_seconds for the frames in flight (RFC 2544
    waits 2)."""

    size: int = MIN_FRAME
    loss_pct: float = 0.0
    trial_seconds: float = 2.0
    settle_seconds: float = 0.5
    min_mpps: float = 0.0
    max_mpps: Optional[float] = None
    resolution_pct: float = 1.0
    max_trials: int = 20
    batch_size: int = 32


@dataclass
class Trial:
    """One trial: the rate offered; the frames TX sent at it (sent_mpps:
    what TX achieved, below rate_mpps when it could not keep up) and those
    of them RX received; the loss (sent - received) in percent of sent and
    whether it was within the threshold; of the frames received, those that
    came after a higher number (late: reordered or duplicated); the frames
    RX received meanwhile that were not this trial's (other)."""

    size: int
    rate_mpps: float
    sent: int
    received: int
    loss_pct: float
    passed: bool
    late: int
    other: int
    sent_mpps: float


@dataclass
class Result:
    """A search's outcome for one frame size: the highest rate that passed
    (None when none did) in Mpps and in Gbit/s on the wire (L1: frames with
    FCS, preamble, SFD and inter-frame gap) and of frames with their FCS
    (L2), as cli.Meter counts them; every trial in order; the configuration,
    max_mpps filled in."""

    tx: str
    rx: str
    size: int
    ndr_mpps: Optional[float]
    l1_gbps: Optional[float]
    l2_gbps: Optional[float]
    trials: List[Trial]
    config: Config


def bisect(passes: Callable[[float], Optional[bool]], min_mpps: float, max_mpps: float, resolution_mpps: float,
           max_trials: int) -> List[Tuple[float, bool]]:
    """RFC 2544's binary search: try max_mpps first, then halfway between
    the highest rate that passed (min_mpps to begin with, never tried) and
    the lowest that failed, until they are less than resolution_mpps apart
    or after max_trials. passes(rate) says whether a trial at rate passed,
    or None to end the search (stopped). Returns the rates tried and their
    outcomes, in order."""
    tried: List[Tuple[float, bool]] = []
    low, high, rate = min_mpps, max_mpps, max_mpps
    while len(tried) < max_trials:
        passed = passes(rate)
        if passed is None:
            break
        tried.append((rate, passed))
        if passed:
            low = rate
        else:
            high = rate
        if high - low < resolution_mpps:
            break
        rate = (low + high) / 2
    return tried


def line_rate_mpps(dev: Device, size: int) -> float:
    """The frames of size bytes (without the FCS) a second that fill dev's
    link, in millions; LinkDown when the link is down."""
    mbits = dev.link_speed()
    if not mbits:
        raise LinkDown(f"{dev.address}: link down, so no line rate to search up to",
                       "check its cable, or give the highest rate to try (--max-rate)")
    return l1_pps(mbits / 1000, size + FCS_BYTES) / 1e6


def throughput(tx: Device, rx: Device, config: Config = Config(), on_trial: Callable[[Trial], None] = lambda t: None,
               stop: Callable[[], bool] = lambda: False, rx_max_pps: float = 0.0) -> Result:
    """Search the highest rate from tx (queue 0) to rx (queue 0) with a loss
    within config.loss_pct (see Config), calling on_trial after each trial.
    stop() ends the search (the trial it interrupts does not count).
    InvalidRate when config.min_mpps is above the highest rate;
    NothingReceived when rx gets none of the first trial's frames.

    rx_max_pps (0: none) is for tests: rx then takes at most that many
    frames a second (SeqRxLoop's max_pps), a slow receiver whose throughput
    is known."""
    max_mpps = line_rate_mpps(tx, config.size) if config.max_mpps is None else config.max_mpps
    if config.min_mpps > max_mpps:
        source = "the highest" if config.max_mpps is not None else f"{tx.address}'s line rate for {config.size}-byte frames,"
        raise InvalidRate(f"the lowest rate {config.min_mpps:g} Mpps is above {source} {max_mpps:g} Mpps")
    config = replace(config, max_mpps=max_mpps)
    frames = [udp_frame(config.size)]
    trials: List[Trial] = []

    def passes(rate_mpps: float) -> Optional[bool]:
        if stop():
            return None
        result = trial(tx, rx, frames, rate_mpps, config, stop, rx_max_pps)
        if stop():
            return None
        if not trials and not result.received:
            raise NothingReceived(_nothing_received(tx, rx, result))
        trials.append(result)
        on_trial(result)
        return result.passed

    bisect(passes, config.min_mpps, max_mpps, max_mpps * config.resolution_pct / 100, config.max_trials)
    return _result(tx, rx, config, trials)


def trial(tx: Device, rx: Device, frames: Sequence[bytes], rate_mpps: float, config: Config,
          stop: Callable[[], bool] = lambda: False, rx_max_pps: float = 0.0) -> Trial:
    """Send frames from tx at rate_mpps for config.trial_seconds, receiving
    on rx meanwhile and config.settle_seconds after; count. The size
    recorded is that of the first frame."""
    first_seq = random.getrandbits(TRIAL_BITS) << WINDOW_BITS
    batch = PacketBatch(config.batch_size)
    receiver = SeqRxLoop(rx.rx_queue(0), batch, SEQ_OFFSET, first_seq, 1 << WINDOW_BITS, rx_max_pps)
    with ThreadPoolExecutor(1, thread_name_prefix="ixypy-ndr-rx") as worker:
        receiving = worker.submit(receiver.run)
        try:
            sent = apps.pktgen(tx, frames, apps.Limits(duration=config.trial_seconds, stop=stop), config.batch_size,
                               rate_mpps * 1e6, first_seq=first_seq)
            time.sleep(config.settle_seconds)
        finally:
            receiver.stop()
        receiving.result()
    received = receiver.packets
    loss_pct = 100 * (sent - received) / sent if sent else 100.0
    return Trial(len(frames[0]), rate_mpps, sent, received, loss_pct, loss_pct <= config.loss_pct, receiver.late,
                 receiver.other, sent / config.trial_seconds / 1e6)


def _nothing_received(tx: Device, rx: Device, first: Trial) -> str:
    other = f" (it received {first.other} other frames)" if first.other else ""
    return (f"{rx.address} ({link_text(rx.link_speed())}) received none of the {first.sent} frames "
            f"{tx.address} ({link_text(tx.link_speed())}) sent at {first.rate_mpps:g} Mpps{other}")


def _result(tx: Device, rx: Device, config: Config, trials: List[Trial]) -> Result:
    passed = [t.rate_mpps for t in trials if t.passed]
    if not passed:
        return Result(tx.address, rx.address, config.size, None, None, None, trials, config)
    pps = max(passed) * 1e6
    frame = config.size + FCS_BYTES
    return Result(tx.address, rx.address, config.size, max(passed), l1_bytes(pps, pps * frame) * 8 / 1e9,
                  pps * frame * 8 / 1e9, trials, config)
