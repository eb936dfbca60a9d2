"""bench_fwd_ixy, the C-driven copy of ixy C's forwarder (app/ixy-fwd.c) that
the benchmarks set next to ixy's published figure, does ixy's work and
reports what it did: on two 82599 model ports, each wired to a generator
(rx) whose far end counts what the port sends (tx), it forwards both ways,
increments byte 1 of every packet, frees what a tx ring refuses, and
returns the packets the tx rings took (checked against the model's own
counters), not the count asked for.

The tx rings (64 descriptors) are smaller than what the generators deliver
between two passes of the model (256 frames a port), so every pass some
packets are refused and must be freed."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch
from ixypy.drivers.ixgbe import IxgbeDevice
from ixypy.errors import BatchError, QueueError
from ixypy.fastpath.bench import bench_fwd_ixy
from ixypy.sim import SimBus, close_model, new_intel_model, source_frame

RX_DESC, TX_DESC = 512, 64
PACKETS = 20_000


class Ports:
    """Ports a and b of one 82599 model, both on generator wires; the
    model's worker stopped, its DMA engines run by poll() only."""

    def __init__(self, count: int = 0) -> None:
        """count: frames each generator sends (0: no end)."""
        self.sim = new_intel_model(2)
        self.devs = []
        for i in range(2):
            self.sim.function(i).wire_source(source_frame(), count, -1)
            bus = SimBus(f"sim:test-fwd-ixy-{i}", self.sim, self.sim.function(i), "source", owns_sim=False)
            self.devs.append(IxgbeDevice(bus, num_rx_desc=RX_DESC, num_tx_desc=TX_DESC))
        self.a, self.b = self.devs
        self.rxq_a, self.txq_a = self.a.rx_queue(0), self.a.tx_queue(0)
        self.rxq_b, self.txq_b = self.b.rx_queue(0), self.b.tx_queue(0)
        self.sim.stop()

    def run(self, batch: PacketBatch, packets: int):
        return bench_fwd_ixy(self.rxq_a, self.txq_a, self.rxq_b, self.txq_b, batch, packets, self.sim.poll_hook())

    def drain(self) -> None:
        """One pass of the model sends everything the tx rings hold (its
        budget, 512 descriptors a queue, exceeds the ring); then the driver
        takes back what it can (whole groups of 32)."""
        self.sim.poll()
        self.txq_a.reclaim()
        self.txq_b.reclaim()

    def sent_on_the_wire(self) -> int:
        return sum(self.sim.function(i).wire_stats()["tx_packets"] for i in range(2))

    def close(self) -> None:
        for dev in self.devs:
            dev.close()
        close_model(self.sim)


@pytest.fixture
def ports(request):
    opened = Ports(getattr(request, "param", 0))
    yield opened
    errors = [e for dev in opened.devs for e in dev.bus.model_errors()]
    opened.close()
    assert errors == []


def frames_in_pool(pool) -> tuple:
    """(buffers holding the generator's frame as sent, the same frame with
    byte 1 incremented) among all of pool's buffers."""
    frame = source_frame()
    touched = bytearray(frame)
    touched[1] = (touched[1] + 1) & 0xFF
    memory = memoryview(pool.memory)
    as_sent = incremented = 0
    for i in range(pool.num_bufs):
        at = pool.buf_dma(i) - pool.memory.address        # sim DMA address = virtual address
        data = bytes(memory[at:at + len(frame)])
        as_sent += data == frame
        incremented += data == bytes(touched)
    return as_sent, incremented


def test_forwards_both_ways_and_reports_what_the_tx_rings_took(ports):
    batch = PacketBatch(32)
    forwarded, freed = ports.run(batch, PACKETS)
    assert PACKETS <= forwarded < PACKETS + 2 * 32          # the last round may overshoot, by two batches at most
    assert len(batch) == 0
    assert forwarded == ports.txq_a.packets + ports.txq_b.packets
    assert ports.txq_a.packets > 0 and ports.txq_b.packets > 0           # both directions
    ports.drain()
    assert ports.sent_on_the_wire() == forwarded             # the model's count of what left the ports
    # every packet received was sent or freed, and tx refused some (the rings are small)
    assert ports.rxq_a.packets + ports.rxq_b.packets == forwarded + freed
    assert freed > 0


def test_frees_what_the_tx_ring_refuses(ports):
    """Each port's rx buffers are in its rx ring, in the other port's tx
    ring, or back in its pool: none is lost, though thousands were refused."""
    forwarded, freed = ports.run(PacketBatch(32), PACKETS)
    ports.drain()
    assert freed > 1000
    for port, other_txq in ((ports.a, ports.txq_b), (ports.b, ports.txq_a)):
        pool = port.rx_mempool
        assert pool.free_count + RX_DESC + other_txq.in_flight == pool.num_bufs


def test_increments_byte_1_of_every_packet(ports):
    """The buffers of port a's pool that held a packet hold it with byte 1
    incremented, whether sent or freed; only those in the rx ring, written
    by the model and not yet received, may hold the frame as sent."""
    forwarded, freed = ports.run(PacketBatch(32), PACKETS)
    ports.drain()
    as_sent, incremented = frames_in_pool(ports.a.rx_mempool)
    assert as_sent <= RX_DESC
    assert incremented > 0


@pytest.mark.parametrize("ports", [1000], indirect=True)
def test_returns_early_when_nothing_can_arrive(ports):
    """Generators that stop after 1000 frames each: once all are received
    and sent, the model's pass has nothing to do and the loop returns what
    it forwarded instead of spinning."""
    forwarded, freed = ports.run(PacketBatch(32), PACKETS)
    assert forwarded + freed == 2000
    ports.drain()
    assert ports.sent_on_the_wire() == forwarded


def test_allocates_nothing_per_packet(ports, count_allocations):
    """A call's allocations (its result) do not grow with the packets it
    forwards: nothing per packet or per batch."""
    batch = PacketBatch(32)
    ports.run(batch, 1_000)                          # warm up
    few = count_allocations(ports.run, batch, 1_000)
    many = count_allocations(ports.run, batch, 50_000)
    assert many == few


def test_refuses_a_batch_holding_packets_and_queues_the_wrong_way_round(ports):
    batch = PacketBatch(32)
    batch.alloc(ports.a.rx_mempool, 1)
    with pytest.raises(BatchError, match="empty batch"):
        ports.run(batch, 1)
    batch.free()
    with pytest.raises(QueueError, match="an rx queue"):
        bench_fwd_ixy(ports.rxq_a, ports.rxq_b, ports.rxq_b, ports.txq_a, batch, 1)
