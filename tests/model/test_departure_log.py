"""The 82599 model's departure log (IntelFunction.log_departures): when each
frame left the tx ring, the clock the driver reads (CLOCK_MONOTONIC), for
measuring how a sender paces (benchmarks/rate_control.py)."""
from __future__ import annotations

import time

import ixypy
from ixypy import PacketBatch


def send(dev, pool, n: int) -> None:
    batch = PacketBatch(32)
    sent = 0
    while sent < n:
        if not len(batch):
            batch.alloc(pool, min(32, n - sent), 60)
        sent += dev.tx_batch(0, batch)
    dev.flush_tx()


def test_the_log_holds_each_departure_in_order_within_the_run_up_to_its_size():
    """Frames sent before the log starts are not in it; then the first 1000
    of 1500, each between the send call and flush_tx, in order; 0 drops the
    log. Mutation tried: the pass not logging (the count stays 0): fails."""
    with ixypy.open("sim:sink") as dev:
        fn, pool = dev.bus.function, dev.mempool(2048)
        send(dev, pool, 100)
        fn.log_departures(1000)
        start = time.monotonic_ns()
        send(dev, pool, 1500)
        end = time.monotonic_ns()
        t = fn.departures()
        assert len(t) == 1000
        assert start <= t[0] and t[-1] <= end
        assert all(a <= b for a, b in zip(t, t[1:]))
        fn.log_departures(0)
        assert len(fn.departures()) == 0
