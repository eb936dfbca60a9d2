"""pktgen's rate, paced frame by frame in C (PktgenLoop's rate_pps),
checked where frames leave: the 82599 model's departure log
(IntelFunction.log_departures), on the clock the loop reads.

The checks are bounds a busy machine cannot break: a preempted sender or
model only makes frames later, never earlier than their due times."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

import ixypy
from ixypy import PacketBatch, apps
from ixypy.errors import InvalidRate
from ixypy.fastpath.loops import PktgenLoop
from ixypy.packets import SEQ_OFFSET, udp_flows


def logged(dev, frames: int):
    fn = dev.bus.function
    fn.log_departures(frames)
    return fn


@pytest.mark.parametrize("kind", ["sink", "igb-sink"])
def test_no_frame_leaves_before_its_due_time(kind):
    """At 200 kpps with batch 32, frame k leaves no sooner than origin_ns +
    k / rate: a round takes only the frames due by then. Mutation tried:
    each round filling the whole batch (pacing per batch, as apps.pktgen
    did from Python before) sends frames up to 31 periods early: fails."""
    rate, n = 200_000.0, 20_000
    with ixypy.open(f"sim:{kind}") as dev:
        pool = dev.mempool(4096)
        pool.fill(udp_flows(1, 60))
        fn = logged(dev, n)
        loop = PktgenLoop(dev.tx_queue(0), pool, PacketBatch(32), SEQ_OFFSET, 0, rate)
        assert loop.run(60.0, count=n) == n
        dev.flush_tx()
        t = np.frombuffer(fn.departures(), dtype=np.int64)
        fn.log_departures(0)
    assert len(t) == n and loop.rate_pps == rate
    due = loop.origin_ns + (np.arange(n) * (1e9 / rate)).astype(np.int64)
    early = due - t
    assert early.max() <= 0, f"frame {early.argmax()} left {early.max()} ns before its time"


def test_a_rate_on_two_queues_is_shared_and_never_passed():
    """--queues 2 with a rate: each queue paces half of it, so by any
    departure the frames sent are at most what the rate allows since the
    start plus one frame a queue; both queues send. Before, a rate on two
    queues was refused (QueueError)."""
    rate = 100_000.0
    with ixypy.open("sim:sink", rx_queues=1, tx_queues=2) as dev:
        fn = logged(dev, 1 << 20)
        start = time.monotonic_ns()
        sent = apps.pktgen(dev, udp_flows(1, 60), apps.Limits(duration=0.3), 32, rate, queues=2)
        t = np.sort(np.frombuffer(fn.departures(), dtype=np.int64))
        fn.log_departures(0)
        per_queue = [dev.tx_queue(i).packets for i in range(2)]
    assert len(t) == sent == sum(per_queue) and all(q > 0 for q in per_queue)
    allowed = start + ((np.arange(len(t)) - 1) * (1e9 / rate)).astype(np.int64)
    assert (t >= allowed).all(), f"departure {np.argmax(t < allowed)} came before the rate allows"


@pytest.mark.parametrize("rate", [-1.0, math.nan, math.inf])
def test_a_rate_that_is_no_rate_is_refused(rate):
    with ixypy.open("sim:sink") as dev:
        with pytest.raises(InvalidRate, match="finite rate"):
            PktgenLoop(dev.tx_queue(0), dev.mempool(64), PacketBatch(32), SEQ_OFFSET, 0, rate)
