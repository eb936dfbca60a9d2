"""Queue.forward, the one-call forwarding step, and the queue-direction
checks: on the sim devices, across drivers (virtio-net model rx -> 82599
model tx), since forward works on any driver's queues."""
from __future__ import annotations

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.errors import QueueError
from ixypy.fastpath.bench import bench_rx
from ixypy.packets import SEQ_OFFSET

from ..simdev import Receiver, model_errors, wait_until


def test_forward_virtio_source_to_ixgbe_in_order():
    """Every frame of the virtio source arrives at the far end of the 82599
    cable once and in order; nothing is lost to back-pressure: what the tx
    ring cannot take waits in the batch."""
    n = 20_000
    with ixypy.open("sim:virtio-source") as src, \
            ixypy.open("sim:pair0", num_tx_desc=64) as a, ixypy.open("sim:pair1") as b:
        rxq, txq, batch = src.rx_queue(0), a.tx_queue(0), PacketBatch(32)
        receiver = Receiver(b, 64)
        forwarded = 0
        while forwarded < n:
            forwarded += rxq.forward(txq, batch)
            receiver.poll()
        receiver.drain(forwarded)
        assert receiver.count == forwarded == txq.packets
        assert receiver.out_of_order == 0 and receiver.expected == forwarded
        assert rxq.packets == forwarded + len(batch)
        batch.free()
    assert model_errors(a, b) == [] and src.bus.model_errors() == []


def test_forward_holds_back_what_the_tx_ring_cannot_take():
    with ixypy.open("sim:source", num_rx_desc=64) as src, ixypy.open("sim:pair0", num_tx_desc=64) as a:
        a.bus.sim.stop()                                   # a's DMA engines pause: its tx ring fills
        rxq, txq, batch = src.rx_queue(0), a.tx_queue(0), PacketBatch(32)
        assert wait_until(lambda: src.bus.function.wire_stats()["rx_packets"] >= 63)
        assert wait_until(lambda: rxq.forward(txq, batch) == 0 and len(batch) == 32)
        assert txq.packets == 63                           # the ring holds 63; a full batch waits
        assert rxq.forward(txq, batch) == 0 and len(batch) == 32
        a.bus.sim.start()
        assert wait_until(lambda: rxq.forward(txq, batch) > 0)
        batch.free()


def test_queue_direction_and_closed_queue_are_refused():
    with ixypy.open("sim:virtio-sink") as v, ixypy.open("sim:sink") as x:
        batch = PacketBatch(8)
        for dev in (v, x):
            assert not hasattr(dev.tx_queue(0), "rx") and not hasattr(dev.rx_queue(0), "tx")
            with pytest.raises(QueueError, match="an rx queue"):
                dev.rx_queue(0).forward(dev.rx_queue(0), batch)     # not a tx queue
            with pytest.raises(QueueError, match="a tx queue"):
                bench_rx(dev.tx_queue(0), batch, 1)
        txq = x.tx_queue(0)
    with pytest.raises(QueueError, match="closed"):
        txq.tx(batch)
