"""ixypy.fastpath.loops.ForwardLoop: Queue.forward's steps in C, with the GIL
released for a whole stretch (what lets worker threads use several cores)."""
import threading
import time

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.errors import PacketTooLarge, QueueError
from ixypy.fastpath.loops import ForwardLoop


@pytest.mark.parametrize("source, sink", [("sim:source", "sim:sink"), ("sim:igb-source", "sim:igb-sink"),
                                          ("sim:virtio-source", "sim:virtio-sink"), ("sim:virtio-source", "sim:sink")])
def test_forwards_a_count_both_ways_and_the_counters_agree(source, sink):
    """One leg from a source, one back from the sink (idle): run(count=N)
    sends at least N and at most a batch a leg more, all of it on the wire."""
    with ixypy.open(source) as src, ixypy.open(sink) as dst:
        loop = ForwardLoop([(src.rx_queue(0), dst.tx_queue(0), PacketBatch(32)),
                            (dst.rx_queue(0), src.tx_queue(0), PacketBatch(32))])
        n = loop.run(60.0, count=100_000)
        dst.flush_tx()
        assert 100_000 <= n < 100_000 + 64
        assert loop.forwarded == n == dst.stats().tx_packets


def test_the_gil_is_free_while_a_loop_runs():
    """Another thread runs Python while run() forwards: it calls stop(),
    which ends the run long before its 60 s. Tried: with run() holding the
    GIL (no `with nogil`), the other thread never gets to stop() and the
    run takes its whole 60 s."""
    with ixypy.open("sim:source") as src, ixypy.open("sim:sink") as dst:
        loop = ForwardLoop([(src.rx_queue(0), dst.tx_queue(0), PacketBatch(32))])
        threading.Timer(0.2, loop.stop).start()
        start = time.monotonic()
        loop.run(60.0)
        assert time.monotonic() - start < 30
        assert loop.stopped and loop.forwarded > 0


def test_a_packet_too_long_for_the_tx_queue_is_refused_and_kept():
    """virtio sends at most 1514 bytes: a 1600-byte packet waiting in the
    leg's batch raises PacketTooLarge before anything is sent."""
    with ixypy.open("sim:pair0") as rx_dev, ixypy.open("sim:virtio-sink") as dst:
        batch = PacketBatch(32)
        pool = rx_dev.mempool(64)
        assert batch.alloc(pool, 1, length=1600) == 1
        loop = ForwardLoop([(rx_dev.rx_queue(0), dst.tx_queue(0), batch)])
        with pytest.raises(PacketTooLarge):
            loop.run(1.0)
        assert len(batch) == 1 and loop.forwarded == 0
        batch.free()


@pytest.mark.parametrize("legs", [0, 3])
def test_one_or_two_legs(legs):
    with ixypy.open("sim:pair0") as a, ixypy.open("sim:pair1") as b:
        with pytest.raises(QueueError, match="one or two"):
            ForwardLoop([(a.rx_queue(0), b.tx_queue(0), PacketBatch(32)) for _ in range(legs)])
