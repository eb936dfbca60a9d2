"""ixypy.fastpath.loops.ForwardLoop: Queue.forward's steps in C, with the GIL
released for a whole stretch (what lets worker threads use several cores)."""
import threading
import time

import pytest

import ixypy
from ixypy import PacketBatch, apps
from ixypy.errors import PacketTooLarge, QueueError, SharedMempool
from ixypy.fastpath.loops import ForwardLoop, PktgenLoop
from ixypy.packets import udp_frame


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
        assert loop.packets == n == dst.stats().tx_packets


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
        assert loop.stopped and loop.packets > 0


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
        assert len(batch) == 1 and loop.packets == 0
        batch.free()


@pytest.mark.parametrize("legs", [0, 3])
def test_one_or_two_legs(legs):
    with ixypy.open("sim:pair0") as a, ixypy.open("sim:pair1") as b:
        with pytest.raises(QueueError, match="one or two"):
            ForwardLoop([(a.rx_queue(0), b.tx_queue(0), PacketBatch(32)) for _ in range(legs)])


@pytest.mark.parametrize("kind", ["sink", "igb-sink"])
def test_pktgen_on_two_queues_two_workers(kind):
    """apps.pktgen(queues=2): a PktgenLoop per tx queue, each in a worker
    thread; both queues send, each numbering from 0, and the device counts
    their sum. A duration, not a count: under load one worker could send a
    count's worth before the other started (seen: 1 run in 15 with
    count=200_000 while other builds ran). Tried: every worker on queue 0
    (tx_queue(queue) for all) leaves queue 1 at 0 packets."""
    from ixypy.packets import udp_flows
    with ixypy.open(f"sim:{kind}", rx_queues=1, tx_queues=2) as dev:
        sent = apps.pktgen(dev, udp_flows(1, 60), apps.Limits(duration=0.5), 32, queues=2)
        per_queue = [dev.tx_queue(i).packets for i in range(2)]
        assert all(n > 0 for n in per_queue) and sum(per_queue) == sent
        assert dev.stats().tx_packets == sent


def test_a_worker_that_fails_stops_the_others_and_raises():
    """A frame too short for its sequence number fails its worker's run at
    the first batch; run_loops stops the other and raises the error."""
    from ixypy import apps
    with ixypy.open("sim:sink", rx_queues=1, tx_queues=2) as dev:
        with pytest.raises(PacketTooLarge, match="sequence number"):
            apps.pktgen(dev, [bytes(60)], apps.Limits(duration=30), 32, queues=2, seq_offset=56)


def test_a_queue_serves_one_loop_at_a_time():
    """While a loop runs on a queue without the GIL, another thread's use of
    that queue (a second loop, or rx/tx) is refused, not a crash. Tried:
    without the check, two PktgenLoops on one queue crashed the interpreter
    or lost packets."""
    from ixypy.packets import udp_flows
    with ixypy.open("sim:sink") as dev:
        pool = dev.mempool(4096)
        pool.fill(udp_flows(1, 60))
        first = PktgenLoop(dev.tx_queue(0), pool, PacketBatch(32), 42)
        worker = threading.Thread(target=first.run, args=(30.0,))
        worker.start()
        try:
            while first.packets == 0:
                time.sleep(0.01)
            with pytest.raises(QueueError, match="a loop is running on this queue"):
                PktgenLoop(dev.tx_queue(0), dev.mempool(64), PacketBatch(32), 42)
            with pytest.raises(QueueError, match="a loop is running on this queue"):
                dev.tx_queue(0).tx(PacketBatch(32))
        finally:
            first.stop()
            worker.join()
        dev.tx_queue(0).tx(PacketBatch(32))           # free again once the run ended


@pytest.mark.parametrize("source, sink", [("sim:source", "sim:sink"), ("sim:igb-source", "sim:igb-sink")])
def test_workers_on_two_rss_queues_keep_their_pools_whole(source, sink):
    """fwd --queues 2 with RSS: every frame of the source is a flow of its
    own (a sequence number in its IPv4 addresses), so both workers receive
    and free buffers at once. Each rx queue fills from a pool of its own, so
    once the sink is closed (its tx ring's buffers freed) each pool holds
    all but its ring's buffers again. Tried: one pool for both rx queues
    (the old driver) without the check in run_loops: free counts of 0 and
    322 against 3072 (the workers' allocs and frees raced); with the check,
    SharedMempool."""
    with ixypy.open(source, rx_queues=2, tx_queues=2) as src:
        with ixypy.open(sink, rx_queues=2, tx_queues=2) as dst:
            src.enable_rss(2)
            src.bus.function.wire_source(udp_frame(), 0, 26)
            apps.forward([(src, dst)], apps.Limits(duration=1.0), 32, queues=2)
        assert min(q.packets for q in src.rx_queues) > 10_000
        assert [p.free_count for p in src.rx_mempools] == [p.num_bufs - src.num_rx_desc for p in src.rx_mempools]


def test_workers_sharing_a_mempool_are_refused():
    """A mempool given to ixypy.open serves every rx queue; two workers on
    those queues would race on it (alloc and free take no lock), so
    run_loops refuses them before either starts."""
    with ixypy.open("sim:pair1", rx_queues=2, tx_queues=2) as dst:
        pool = dst.mempool(4096)
        with ixypy.open("sim:pair0", rx_queues=2, tx_queues=2, mempool=pool) as src:
            assert src.rx_mempools == [pool, pool]
            with pytest.raises(SharedMempool, match="workers 0 and 1"):
                apps.forward([(src, dst)], apps.Limits(count=1000), 32, queues=2)
            assert all(q.packets == 0 for q in dst.tx_queues)


@pytest.mark.parametrize("leg", [(), (1, 2, 3, 4, 5)])
def test_a_forward_leg_of_the_wrong_length_is_refused(leg):
    """A leg is (rxq, txq, batch) or (rxq, txq, batch, copy_pool): anything
    else is a QueueError before any item is read. Mutation tried: the check
    left to _leg after it indexes the leg: the empty leg crashed the
    interpreter (indexing without bounds checks), the 5-item one raised
    TypeError."""
    with pytest.raises(QueueError, match=f"a forwarding leg is .*, not {len(leg)} items"):
        ForwardLoop([leg])
