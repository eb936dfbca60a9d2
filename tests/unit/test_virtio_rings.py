"""The virtio fast path against a device simulated here in Python: the
legacy ring layout, two-descriptor chains with the header before the data,
notification policy, wrap-around, exhaustion. No device is touched: the
I/O port is a plain file (a notify is a 2-byte write at offset 16)."""
import ctypes
import os
import struct

import pytest

from ixypy import DmaMemory, Mempool, PacketBatch
from ixypy.fastpath.regs import PortIo
from ixypy.fastpath.virtio import Doorbell, VirtioRxQueue, VirtioTxQueue, vring_size
from ixypy.errors import PacketTooLarge

N = 16                      # queue size: 8 chains
HDR = 10
F_NEXT, F_WRITE = 1, 2
NO_NOTIFY = 1


class SimDevice:
    """The device side of one split virtqueue (VirtIO 1.x 2.7), reading and
    writing guest memory by address (DMA address = virtual address here)."""

    def __init__(self, ring: DmaMemory, num: int) -> None:
        self.base, self.num = ring.address, num
        self.avail = self.base + 16 * num
        used = self.avail + 2 * (3 + num)
        self.used = (used + 4095) // 4096 * 4096
        self.last_avail = 0
        assert vring_size(num) >= self.used - self.base + 6 + 8 * num

    def u16(self, addr):
        return struct.unpack("<H", ctypes.string_at(addr, 2))[0]

    def put16(self, addr, v):
        ctypes.memmove(addr, struct.pack("<H", v), 2)

    def desc(self, i):
        return struct.unpack("<QIHH", ctypes.string_at(self.base + 16 * i, 16))

    def pending(self):
        return (self.u16(self.avail + 2) - self.last_avail) & 0xFFFF

    def pop(self):
        """The next available chain: list of (addr, len, flags), and its head."""
        head = self.u16(self.avail + 4 + 2 * (self.last_avail % self.num))
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        chain, i = [], head
        while True:
            addr, length, flags, nxt = self.desc(i)
            chain.append((addr, length, flags))
            if not flags & F_NEXT:
                return head, chain
            i = nxt

    def push(self, head, written):
        idx = self.u16(self.used + 2)
        ctypes.memmove(self.used + 4 + 8 * (idx % self.num), struct.pack("<II", head, written), 8)
        self.put16(self.used + 2, (idx + 1) & 0xFFFF)

    def suppress_notify(self, on):
        self.put16(self.used, NO_NOTIFY if on else 0)


@pytest.fixture
def port(tmp_path):
    fd = os.open(tmp_path / "ioport", os.O_RDWR | os.O_CREAT)
    os.pwrite(fd, bytes(32), 0)
    yield PortIo(fd, 0, 32)
    os.close(fd)


def make_pool(n=64):
    return Mempool(DmaMemory(n * 2048), n, 2048)


def test_rx_chains_header_in_headroom_then_data(port):
    ring, pool = DmaMemory(vring_size(N)), make_pool()
    rxq = VirtioRxQueue(Doorbell.io_port(port), 0, ring, 0, N, pool)
    assert rxq.fill() == N // 2 and rxq.notifies == 1
    assert os.pread(port.fd, 2, 16) == b"\0\0"          # notify names queue 0
    dev = SimDevice(ring, N)
    assert dev.pending() == N // 2
    frames = [bytes([i]) * (60 + i) for i in range(5)]
    for f in frames:
        head, chain = dev.pop()
        (hdr_addr, hdr_len, hdr_flags), (data_addr, data_len, data_flags) = chain
        assert head % 2 == 0 and hdr_len == HDR and hdr_flags == F_WRITE | F_NEXT
        assert data_addr == hdr_addr + HDR and data_flags == F_WRITE and data_len == pool.buf_capacity
        ctypes.memmove(hdr_addr, bytes(HDR), HDR)
        ctypes.memmove(data_addr, f, len(f))
        dev.push(head, HDR + len(f))
    batch = PacketBatch(32)
    dev.suppress_notify(True)
    assert rxq.rx(batch) == 5
    assert [bytes(batch[i]) for i in range(5)] == frames
    assert rxq.notifies == 1, "the device suppressed notifications"
    assert dev.pending() == 3 + 5                         # the 5 refilled in one pass
    dev.suppress_notify(False)
    batch.free()
    assert rxq.rx(batch) == 0 and rxq.notifies == 1       # nothing to refill: no notify
    assert rxq.chains_posted == N // 2
    rxq.close()
    assert pool.free_count == pool.num_bufs


def test_rx_wraps_indices_and_survives_exhaustion(port):
    ring, pool = DmaMemory(vring_size(N)), make_pool(16)   # the ring's 8 + one batch
    rxq = VirtioRxQueue(Doorbell.io_port(port), 0, ring, 0, N, pool)
    rxq.fill()
    dev = SimDevice(ring, N)
    batch = PacketBatch(64)
    for round_ in range(70000 // 8 + 2):                 # past 65536: the 16-bit indices wrap
        while dev.pending():
            head, ((_, _, _), (addr, _, _)) = dev.pop()
            ctypes.memmove(addr, struct.pack("<Q", round_), 8)
            dev.push(head, HDR + 60)
        assert rxq.rx(batch) == 8
        batch.free()
    assert rxq.packets == 8 * (70000 // 8 + 2)
    # exhaustion: the app holds every buffer, the device fills what it has
    held = PacketBatch(64)
    held.alloc(pool)
    assert pool.free_count == 0
    while dev.pending():
        head, _ = dev.pop()
        dev.push(head, HDR + 60)
    assert rxq.rx(batch) == 8 and rxq.chains_posted == 0 and dev.pending() == 0
    batch.free()          # buffers back: the next rx refills
    held.free()
    assert rxq.rx(batch) == 0 and rxq.chains_posted == 8 and dev.pending() == 8
    rxq.close()
    assert pool.free_count == pool.num_bufs


def test_tx_one_publish_and_notify_per_batch_shared_zero_header(port):
    ring, pool = DmaMemory(vring_size(N) + 4096), make_pool()
    hdr = ring.address + vring_size(N)
    txq = VirtioTxQueue(Doorbell.io_port(port), 1, ring, 0, N, hdr, 1518)
    dev = SimDevice(ring, N)
    batch = PacketBatch(20)
    batch.alloc(pool, length=60)
    for i in range(len(batch)):
        batch.write(i, bytes([i]) * (60 + i))
    assert txq.tx(batch) == N // 2 and len(batch) == 20 - N // 2     # more than fits: fewer sent
    assert txq.notifies == 1 and os.pread(port.fd, 2, 16) == b"\1\0"
    assert dev.pending() == N // 2
    for i in range(N // 2):
        head, ((h, hl, hf), (d, dl, df)) = dev.pop()
        assert (h, hl, hf) == (hdr, HDR, F_NEXT) and df == 0
        assert ctypes.string_at(h, HDR) == bytes(HDR)
        assert ctypes.string_at(d, dl) == bytes([i]) * (60 + i)
        dev.push(head, 0)
    dev.suppress_notify(True)
    assert txq.tx(batch) == N // 2 and txq.notifies == 1 and txq.in_flight == N // 2 and len(batch) == 4
    dev.suppress_notify(False)
    while dev.pending():
        dev.push(dev.pop()[0], 0)
    txq.reclaim()
    assert txq.in_flight == 0 and pool.free_count == pool.num_bufs - 4
    batch.free()


def test_tx_refuses_oversize_before_the_ring(port):
    ring, pool = DmaMemory(vring_size(N) + 4096), Mempool(DmaMemory(8 * 4096), 8, 4096)
    txq = VirtioTxQueue(Doorbell.io_port(port), 1, ring, 0, N, ring.address + vring_size(N), 1518)
    batch = PacketBatch(4)
    batch.alloc(pool, 3, length=60)
    batch.set_length(2, 1519)
    with pytest.raises(PacketTooLarge):
        txq.tx(batch)
    assert len(batch) == 3 and txq.in_flight == 0 and txq.notifies == 0
    batch.free()


# --- one descriptor per packet (VIRTIO_F_ANY_LAYOUT negotiated) ------------------

@pytest.mark.parametrize("hdr", [10, 12], ids=["legacy-hdr", "v1-hdr"])
def test_rx_one_descriptor_header_then_frame_in_one_buffer(port, hdr):
    """With any_layout each chain is one device-writable descriptor that
    starts hdr_len bytes (10 legacy, 12 with VERSION_1) before the packet data (the header in the headroom) and
    spans header + buffer capacity; the device writes both back to back and
    the packet is what follows the header.
    Mutation tried: the descriptor at data_dma (header not in the headroom):
    the frames read back start 10 bytes late and this test fails."""
    ring, pool = DmaMemory(vring_size(N)), make_pool()
    rxq = VirtioRxQueue(Doorbell.io_port(port), 0, ring, 0, N, pool, True, hdr)
    assert rxq.any_layout
    assert rxq.fill() == N and rxq.chains_posted == N and rxq.notifies == 1
    dev = SimDevice(ring, N)
    assert dev.pending() == N
    frames = [bytes(range(i, i + 60 + i)) for i in range(5)]
    for f in frames:
        head, chain = dev.pop()
        assert len(chain) == 1
        addr, length, flags = chain[0]
        assert flags == F_WRITE and length == hdr + pool.buf_capacity
        ctypes.memmove(addr, b"\xee" * hdr + f, hdr + len(f))   # any header bytes: not the packet's
        assert head < N
        dev.push(head, hdr + len(f))
    batch = PacketBatch(32)
    assert rxq.rx(batch) == 5
    assert [bytes(batch[i]) for i in range(5)] == frames
    assert rxq.packets == 5 and rxq.bytes == sum(map(len, frames)) and rxq.errors == 0
    batch.free()
    assert dev.pending() == N                      # the 5 came back in the refill
    rxq.close()
    assert pool.free_count == pool.num_bufs


@pytest.mark.parametrize("hdr", [10, 12], ids=["legacy-hdr", "v1-hdr"])
def test_rx_one_descriptor_refuses_an_odd_length(port, hdr):
    """used.len shorter than the header, or past the buffer: dropped and counted."""
    ring, pool = DmaMemory(vring_size(N)), make_pool()
    rxq = VirtioRxQueue(Doorbell.io_port(port), 0, ring, 0, N, pool, True, hdr)
    rxq.fill()
    dev = SimDevice(ring, N)
    dev.push(dev.pop()[0], hdr - 1)
    dev.push(dev.pop()[0], hdr + pool.buf_capacity + 1)
    batch = PacketBatch(8)
    assert rxq.rx(batch) == 0 and rxq.errors == 2
    rxq.close()
    assert pool.free_count == pool.num_bufs


@pytest.mark.parametrize("hdr", [10, 12], ids=["legacy-hdr", "v1-hdr"])
def test_tx_one_descriptor_zeroed_header_right_before_the_frame(port, hdr):
    """With any_layout a packet is one device-readable descriptor: a
    hdr_len-byte (10 or 12) zero header in the headroom right before the frame, then the
    frame; the queue holds as many packets as it has descriptors. The
    headroom starts dirty (an rx header left there), so the zeroing shows.
    Mutations tried: the descriptor 8 bytes before the data (length still
    frame + 10): the header check and the frame check fail; no zeroing of
    the header (memset removed): the header check fails (the sim tests do
    not see it: the model checks only flags and gso_type, and a fresh or
    received buffer's headroom holds zeros there)."""
    ring, pool = DmaMemory(vring_size(N)), make_pool()
    txq = VirtioTxQueue(Doorbell.io_port(port), 1, ring, 0, N, 0, 1518, True, hdr)
    assert txq.any_layout and txq.capacity == N
    dev = SimDevice(ring, N)
    batch = PacketBatch(N + 4)
    batch.alloc(pool, length=60)
    frames = [bytes(range(1 + i, 1 + i + 60 + i)) for i in range(len(batch))]
    for i, f in enumerate(frames):
        batch.write(i, f)
        ctypes.memmove(batch.dma_address(i) - hdr, b"\xff" * hdr, hdr)    # DMA address = virtual here
    assert txq.tx(batch) == N and len(batch) == 4 and txq.notifies == 1
    assert dev.pending() == N
    for i in range(N):
        head, chain = dev.pop()
        assert len(chain) == 1 and head < N
        addr, length, flags = chain[0]
        assert flags == 0 and length == hdr + len(frames[i])
        assert ctypes.string_at(addr, hdr) == bytes(hdr)
        assert ctypes.string_at(addr + hdr, length - hdr) == frames[i]
        dev.push(head, 0)
    txq.reclaim()
    assert txq.in_flight == 0 and txq.bytes == sum(map(len, frames[:N]))
    batch.free()
    assert pool.free_count == pool.num_bufs


def test_modern_doorbell_stores_the_queue_index_at_its_notify_address():
    """A VirtIO 1.x queue rings its doorbell with a 16-bit store of its index
    at the notify address in the memory BAR (4.1.4.4), once per batch, and
    nothing else in the BAR changes. A bad offset or header length is refused.
    Mutation tried: the store at the BAR's start (offset dropped): the
    checks of the notify word and of the untouched bytes fail."""
    from ixypy.fastpath.regs import Bar
    bar_mem = DmaMemory(4096)
    bar = Bar(address=bar_mem.address, length=4096)
    memoryview(bar_mem)[:] = b"\xaa" * 4096
    ring, pool = DmaMemory(vring_size(N)), make_pool()
    txq = VirtioTxQueue(Doorbell.mmio(bar, 0x104), 5, ring, 0, N, 0, 1518, True, 12)
    batch = PacketBatch(4)
    batch.alloc(pool, length=60)
    assert txq.tx(batch) == 4 and txq.notifies == 1 and txq.notify_errors == 0
    mem = bytes(memoryview(bar_mem))
    assert mem[0x104:0x106] == (5).to_bytes(2, "little")
    assert mem[:0x104] == b"\xaa" * 0x104 and mem[0x106:] == b"\xaa" * (4096 - 0x106)
    for offset in (0x105, 4095, 4096):
        with pytest.raises(ValueError, match="notify offset"):
            Doorbell.mmio(bar, offset)
    with pytest.raises(ValueError, match="12 .VERSION_1."):
        VirtioTxQueue(Doorbell.mmio(bar, 0), 1, ring, 0, N, 0, 1518, True, 11)
    txq.close()
    assert pool.free_count == pool.num_bufs


# --- chain order and the pool's share --------------------------------------------

@pytest.mark.parametrize("any_layout", [False, True], ids=["two-desc", "one-desc"])
def test_tx_takes_chains_in_ring_order_and_stops_at_one_still_in_flight(port, any_layout):
    """tx puts the packet of avail slot s in chain s & (chains - 1), whose
    head avail slot s always names. A device that completes out of order
    (chain 1 back, chain 0 not) leaves a chain free that is not next in
    that order: tx then sends nothing rather than reuse chain 0, and sends
    again once chain 0 is back; every frame arrives whole, in order, and no
    buffer is lost.
    Mutation tried: the in-flight check dropped from both tx loops: this
    test fails (tx sends onto chain 0 while the device holds it, its
    buffer is lost from the pool)."""
    ring, pool = DmaMemory(vring_size(N) + 4096), make_pool()
    txq = VirtioTxQueue(Doorbell.io_port(port), 1, ring, 0, N, ring.address + vring_size(N), 1518, any_layout)
    chains = txq.capacity
    dev = SimDevice(ring, N)
    batch = PacketBatch(chains + 1)
    batch.alloc(pool, length=60)
    frames = [bytes([7 + i]) * (60 + i) for i in range(chains + 1)]
    for i, f in enumerate(frames):
        batch.write(i, f)
    assert txq.tx(batch) == chains and txq.in_flight == chains
    popped = [dev.pop() for _ in range(chains)]
    assert [head for head, _ in popped] == [k << (0 if any_layout else 1) for k in range(chains)]
    got = [ctypes.string_at(*chain[-1][:2])[HDR if any_layout else 0:] for _, chain in popped]
    assert got == frames[:chains]
    dev.push(popped[1][0], 0)                 # chain 1 back before chain 0
    assert txq.tx(batch) == 0 and txq.in_flight == chains - 1 and len(batch) == 1
    dev.push(popped[0][0], 0)
    assert txq.tx(batch) == 1 and len(batch) == 0
    head, chain = dev.pop()
    assert head == 0 and ctypes.string_at(*chain[-1][:2])[HDR if any_layout else 0:] == frames[chains]
    for h, _ in popped[2:] + [(head, chain)]:
        dev.push(h, 0)
    txq.reclaim()
    assert txq.in_flight == 0
    txq.close()
    assert pool.free_count == pool.num_bufs


@pytest.mark.parametrize("any_layout", [False, True], ids=["two-desc", "one-desc"])
def test_rx_takes_no_more_than_the_pool_can_replace_and_keeps_every_chain_posted(port, any_layout):
    """With fewer free buffers in the pool than packets waiting, rx takes
    as many as it can give chains a fresh buffer for; every chain stays
    posted and the rest come with the next call. Mutation tried: the
    packets taken first and the chains refilled after (the exhaustion
    path, _rx_take, for every call): chains_posted drops to 5 and this
    test fails."""
    ring, pool = DmaMemory(vring_size(N)), make_pool(2 * N)
    rxq = VirtioRxQueue(Doorbell.io_port(port), 0, ring, 0, N, pool, any_layout)
    chains = rxq.fill()
    dev = SimDevice(ring, N)
    held = PacketBatch(64)
    held.alloc(pool, pool.free_count - 3)         # the app leaves 3 buffers in the pool
    for seq in range(chains):
        head, chain = dev.pop()
        ctypes.memmove(chain[-1][0] + (HDR if any_layout else 0), struct.pack("<Q", seq), 8)
        dev.push(head, HDR + 60)
    batch = PacketBatch(64)
    assert rxq.rx(batch) == 3 and rxq.chains_posted == chains and dev.pending() == 3
    held.free()
    assert rxq.rx(batch) == chains - 3 and rxq.chains_posted == chains
    assert [struct.unpack_from("<Q", batch[i])[0] for i in range(chains)] == list(range(chains))
    batch.free()
    rxq.close()
    assert pool.free_count == pool.num_bufs


def test_rx_skips_a_head_it_never_posted_and_loses_no_buffer(port):
    """A used entry naming a head that is not a chain's (a device bug) is
    counted as an error and skipped; the fresh buffer taken for it goes back
    to the pool. Mutation tried: the leftover fresh buffers not freed: the
    pool is one buffer short at the end and this test fails."""
    ring, pool = DmaMemory(vring_size(N)), make_pool()
    rxq = VirtioRxQueue(Doorbell.io_port(port), 0, ring, 0, N, pool, True)
    rxq.fill()
    dev = SimDevice(ring, N)
    head, _ = dev.pop()
    dev.push(N + 3, HDR + 60)                     # no such descriptor
    dev.push(head, HDR + 60)
    batch = PacketBatch(8)
    assert rxq.rx(batch) == 1 and rxq.errors == 1 and rxq.chains_posted == N
    batch.free()
    rxq.close()
    assert pool.free_count == pool.num_bufs
