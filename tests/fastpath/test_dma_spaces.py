"""A device's DMA reads addresses in one space (memory.DmaSpace: physical
addresses, the IOVAs of the VFIO container, the sim models' addresses); a
pool's buffers have addresses valid in one or more. A tx queue refuses
buffers its device would read as other memory, before the device sees
them; a forwarding leg to such a device copies instead. On the sim devices,
whose DMA goes through the models' map as a device's goes through an IOMMU:
a pool outside that map is what a UIO pool is to a device under VFIO. The
guest test (tests/vm/test_vm_virtio_modern.py) forwards across real spaces."""
from __future__ import annotations

import time

import pytest

import ixypy
from ixypy import DmaMemory, Mempool, PacketBatch
from ixypy.errors import DmaSpaceMismatch, PacketTooLarge
from ixypy.fastpath.loops import ForwardLoop
from ixypy.fastpath.ops import copy
from ixypy.memory import PHYSICAL, SIM, DmaSpace

from ..simdev import Receiver, model_errors

MIB = 1 << 20


def physical_pool(num_bufs: int = 64) -> Mempool:
    """A pool whose addresses claim to be physical ones, as a UIO device's
    are; its memory is not in the sim models' map."""
    return Mempool(DmaMemory(2 * MIB), num_bufs, 2048, dma_spaces={PHYSICAL})


def test_a_tx_queue_refuses_buffers_its_device_cannot_reach():
    """Nothing reaches the model (without the check the model would fetch
    addresses outside its map and stop the queue); the batch keeps its
    packets; the queue still sends from a pool of its device's."""
    with ixypy.open("sim:loop") as dev:
        foreign, batch = physical_pool(), PacketBatch(8)
        batch.alloc(foreign, 8, 60)
        with pytest.raises(DmaSpaceMismatch, match="sim:loop cannot send .* uses the sim models' addresses, "
                                                   "but the pool's addresses are physical addresses"):
            dev.tx_batch(0, batch)
        assert len(batch) == 8
        batch.free()
        assert foreign.free_count == 64
        own = PacketBatch(8)
        own.alloc(dev.mempool(64), 8, 60)
        assert dev.tx_batch(0, own) == 8
        receiver = Receiver(dev)
        receiver.drain(8)
        assert receiver.count == 8 and model_errors(dev) == []


def test_open_refuses_an_rx_mempool_its_device_cannot_reach():
    with pytest.raises(DmaSpaceMismatch, match="cannot fill its rx ring from this mempool"):
        ixypy.open("sim:loop", mempool=physical_pool(1024))


def test_a_pool_valid_in_several_spaces_is_sent_zero_copy():
    """Buffers mapped for the models and valid elsewhere too (as an IOVA =
    physical pool is) go out as they are."""
    with ixypy.open("sim:loop") as dev:
        region = dev.bus.dma.allocate(2 * MIB)
        pool = Mempool(region.memory, 64, 2048, region.page_dma, region.page_size, dma_spaces={SIM, PHYSICAL})
        batch = PacketBatch(8)
        batch.alloc(pool, 8, 60)
        assert dev.tx_batch(0, batch) == 8


def test_a_copying_forward_leg_delivers_every_frame_in_order():
    """sim:virtio-source -> sim:pair0 (-> sim:pair1, checked), with pair0's
    tx queue told its DMA reads another space: the plain leg is refused
    before anything is sent; the copying leg moves each frame into a pool
    valid in that space, gives every received buffer back, and every frame
    arrives once, in order."""
    elsewhere = DmaSpace("addresses of another domain")
    with ixypy.open("sim:virtio-source") as src, ixypy.open("sim:pair0") as a, ixypy.open("sim:pair1") as b:
        rxq, txq = src.rx_queue(0), a.tx_queue(0)
        txq.set_dma_space(elsewhere, "pair0 in another domain")
        with pytest.raises(DmaSpaceMismatch, match="pair0 in another domain cannot send"):
            ForwardLoop([(rxq, txq, PacketBatch(32))]).run(count=64)
        assert txq.packets == 0
        region = a.bus.dma.allocate(8 * MIB)
        copies = Mempool(region.memory, 4096, 2048, region.page_dma, region.page_size, dma_spaces={SIM, elsewhere})
        batch, receiver, n = PacketBatch(32), Receiver(b, 64), 20_000
        free_before = src.rx_mempool.free_count
        loop = ForwardLoop([(rxq, txq, batch, copies)])
        assert copies in loop.mempools()
        deadline = time.monotonic() + 30
        while loop.packets < n:
            assert time.monotonic() < deadline, f"stuck after {loop.packets} of {n} frames"
            loop.run(0.1, count=256)              # at most a ring's worth in flight to the receiver
            receiver.drain(loop.packets)
        assert receiver.count == loop.packets == txq.packets
        assert receiver.out_of_order == 0 and receiver.expected == loop.packets
        a.flush_tx()
        txq.reclaim()
        del loop
        assert copies.free_count == copies.num_bufs  # every copy sent and given back
        assert len(batch) == 0 and src.rx_mempool.free_count == free_before   # each received buffer went back
    assert model_errors(a, b) == [] and src.bus.model_errors() == []


def test_ops_copy_moves_packets_in_order_as_room_allows():
    """Bytes and lengths copied, the originals back to their pool, what
    finds no room left in the batch; a packet the pool's buffers cannot hold
    refused before anything moves."""
    source = Mempool(DmaMemory(2 * MIB), 16, 2048)
    target = Mempool(DmaMemory(2 * MIB), 16, 2048)
    batch, out = PacketBatch(8), PacketBatch(3)
    batch.alloc(source, 5)
    for i in range(5):
        batch.write(i, bytes([i]) * (60 + i))
    assert copy(batch, target, out) == 3
    assert [bytes(out[i]) for i in range(3)] == [bytes([i]) * (60 + i) for i in range(3)]
    assert [bytes(batch[i]) for i in range(2)] == [bytes([i]) * (60 + i) for i in (3, 4)]
    assert source.free_count == 16 - 2 and target.free_count == 16 - 3
    small = Mempool(DmaMemory(16 * 192), 16, 192)   # 64-byte buffers
    batch.write(1, bytes(100))
    with pytest.raises(PacketTooLarge, match="packet 1 of 100 bytes"):
        copy(batch, small, PacketBatch(8))
    assert len(batch) == 2 and small.free_count == 16
