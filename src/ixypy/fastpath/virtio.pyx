# cython: language_level=3, binding=False, always_allow_keywords=False
"""virtio-net virtqueues (VirtIO 1.x 2.7 split rings, in the 2.7.2 legacy
layout, which a 1.x device takes too; 5.1.6 device operation), notified
through a Doorbell: the legacy I/O-port register or a 1.x notify address.

Every packet carries a virtio_net_hdr in front of its frame: 10 bytes on a
legacy device, 12 with VIRTIO_F_VERSION_1 (the queue's hdr_len). How
header and frame are framed in descriptors is the queue's layout, fixed
when it is created (the driver chooses it from the negotiated features):

- two descriptors per packet (any_layout=False): the header, then the
  data. Without VIRTIO_F_ANY_LAYOUT a legacy driver must put the header
  in a descriptor of its own, the data in the following ones (5.1.6,
  legacy framing requirements; 2.4.4.3 "Legacy Interface: Message
  Framing" in VirtIO 1.0, 2.7.4.3 in 1.2). Chain k uses descriptors 2k
  and 2k+1, so the `next` links are written once and only addresses and
  lengths change.
  rx: the header goes into the buffer's headroom, just before data.
  tx: every header is zero (no offloads negotiated): one shared, read-only
  header in the ring memory serves every packet.
- one descriptor per packet (any_layout=True, VIRTIO_F_ANY_LAYOUT
  negotiated: the device takes any framing, 2.4.4 / 2.7.4 "Message
  Framing"): the header sits in the buffer's headroom right before the
  frame and one descriptor covers both. Chain k is descriptor k.
  rx: the device writes header and frame into the one buffer; the packet
  data starts after the header, where it does with two descriptors.
  tx: the driver zeroes the hdr_len bytes before the frame.
  VIRTIO_F_VERSION_1 implies this freedom (2.7.4), so a 1.x device's
  queues always take one descriptor per packet.

The per-batch loops pick the layout once per call, never per packet."""
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free as c_free
from libc.string cimport memcpy, memset

from .batch cimport PacketBatch
from .mempool cimport (DmaMemory, Mempool, ixy_buf, ixy_buf_capacity, ixy_buf_free, ixy_buf_free_n,
                       ixy_buf_free_slots, ixy_mempool_alloc)
from .queue cimport Queue
from .regs cimport Bar, PortIo, ixy_port_ops, ixy_rmb

from ..errors import DeviceError, DeviceTimeout, MempoolExhausted, PacketTooLarge

# legacy PCI header: QUEUE_NOTIFY (16 bits) at offset 16 (4.1.4.8)
cdef enum:
    VIRTIO_PCI_QUEUE_NOTIFY = 16


def vring_size(uint32_t num) -> int:
    """Bytes of a virtqueue of num entries in the legacy layout (2.7.2), page multiple."""
    return ixy_vring_size(num)


def vring_avail_offset(uint32_t num) -> int:
    """Where the available ring starts in that layout."""
    return ixy_vring_avail_offset(num)


def vring_used_offset(uint32_t num) -> int:
    """Where the used ring starts in that layout (page aligned)."""
    return ixy_vring_used_offset(num)


cdef class Doorbell:
    """Where a virtqueue's available-buffer notifications go: the legacy
    QUEUE_NOTIFY register of an I/O-port BAR (4.1.4.8), or a queue's notify
    address in a memory BAR (4.1.4.4). Made by io_port() or mmio()."""

    @staticmethod
    def io_port(PortIo port not None) -> Doorbell:
        """QUEUE_NOTIFY (16 bits at offset 16) of a legacy device's BAR0."""
        cdef Doorbell d = Doorbell.__new__(Doorbell)
        d.db.port_ops = port.ops
        d.db.fd = port.fd
        d.db.pos = port.base + VIRTIO_PCI_QUEUE_NOTIFY
        d.owner = port
        return d

    @staticmethod
    def mmio(Bar bar not None, uint32_t offset) -> Doorbell:
        """A 16-bit notify register at offset in a mapped memory BAR."""
        if bar.bar.base == NULL:
            raise ValueError("a VirtIO 1.x doorbell needs a mapped memory BAR, not a model's register ops")
        if offset % 2 or <size_t> offset + 2 > bar.bar.len:
            raise ValueError(f"notify offset {offset:#x} is not a 16-bit register inside the BAR ({bar.bar.len:#x} bytes)")
        cdef Doorbell d = Doorbell.__new__(Doorbell)
        d.db.mmio = <uint16_t *> (bar.bar.base + offset)
        d.owner = bar
        return d


cdef int _check_hdr_len(uint8_t hdr_len) except -1:
    if hdr_len != IXY_VIRTIO_NET_HDR_LEN and hdr_len != IXY_VIRTIO_NET_HDR_LEN_V1:
        raise ValueError(f"a virtio_net_hdr without offloads has {IXY_VIRTIO_NET_HDR_LEN} bytes (legacy) or "
                         f"{IXY_VIRTIO_NET_HDR_LEN_V1} (VERSION_1), not {hdr_len}")
    return 0


@cython.no_gc_clear
cdef class _Virtqueue(Queue):
    """One split virtqueue in DMA memory, notified through its Doorbell."""

    def __cinit__(self, Doorbell doorbell not None, uint16_t queue_index, DmaMemory memory not None,
                  size_t offset, uint32_t num, *args, **kwargs):
        if num < 2 or num > 32768 or num & (num - 1):
            raise ValueError(f"virtqueue size {num} must be a power of two from 2 to 32768")
        if offset % IXY_VRING_ALIGN or offset + ixy_vring_size(num) > memory.size:
            raise ValueError("virtqueue does not fit its DMA memory or is not page aligned")
        self.memory = memory
        self.num = num
        self.mask = num - 1
        cdef uint8_t *base = <uint8_t *> memory.address + offset
        memset(base, 0, ixy_vring_size(num))
        self.desc = <ixy_vring_desc *> base
        self.avail = <ixy_vring_avail *> (base + ixy_vring_avail_offset(num))
        self.used = <ixy_vring_used *> (base + ixy_vring_used_offset(num))
        # we poll: ask the device not to interrupt (2.7.7, a hint only);
        # set_interrupt(True) clears it while an interrupt-driven queue sleeps
        self.avail.flags = IXY_VRING_AVAIL_F_NO_INTERRUPT
        self.doorbell = doorbell
        self.db = doorbell.db
        self.queue_index = queue_index
        self.hdr_len = IXY_VIRTIO_NET_HDR_LEN

    @property
    def size(self) -> int:
        return self.num

    def use_event_idx(self) -> None:
        """VIRTIO_RING_F_EVENT_IDX was negotiated: notifications and
        interrupts are asked for by avail_event and used_event (2.7.10),
        and the device no longer reads the flags."""
        self.avail_event = ixy_vring_avail_event(self.used, self.num)

    @property
    def event_idx(self) -> bool:
        """Whether the queue works by EVENT_IDX (use_event_idx)."""
        return self.avail_event != NULL

    def set_interrupt(self, bint enabled) -> None:
        """Ask the device to signal used buffers on this queue's MSI-X vector
        or not: 2.7.7 (legacy 2.4.5) by VRING_AVAIL_F_NO_INTERRUPT; with
        EVENT_IDX by used_event (2.7.10): at the next used entry, or one
        behind the last seen, which the device passes only after 65535
        more. A full barrier follows: the request must be visible before
        the caller reads used.idx again, or a buffer used between that read
        and the device's check would be neither seen nor signalled."""
        with nogil:
            self.avail.flags = 0 if enabled else IXY_VRING_AVAIL_F_NO_INTERRUPT
            if self.avail_event != NULL:
                ixy_vring_set_used_event(self.avail, self.num, self.last_used if enabled else self.last_used - 1)
            ixy_mb()

    @property
    def interrupt_enabled(self) -> bool:
        """Whether the queue asks for interrupts (NO_INTERRUPT clear)."""
        return not (self.avail.flags & IXY_VRING_AVAIL_F_NO_INTERRUPT)

    def kick(self) -> None:
        """Notify the device about this queue (e.g. after DRIVER_OK)."""
        with nogil:
            if ixy_virtio_notify(&self.db, self.queue_index) != 0:
                self.notify_errors += 1
            self.notifies += 1


cdef class _DataQueue(_Virtqueue):
    """What the rx and tx virtqueues of virtio-net share: packets in
    chains of 1 << shift descriptors, a buffer slot per chain."""

    cdef int _init_chains(self, bint any_layout, uint8_t hdr_len) except -1:
        """The header length and the chains (the constructors call this)."""
        _check_hdr_len(hdr_len)
        self.hdr_len = hdr_len
        self.any_layout = any_layout
        self.shift = 0 if any_layout else 1
        self.chains = self.num >> self.shift
        self.chain_mask = self.chains - 1
        self.bufs = <ixy_buf **> calloc(self.chains, sizeof(ixy_buf *))
        if self.bufs == NULL:
            raise MemoryError()
        return 0

    def __dealloc__(self):
        c_free(self.bufs)


@cython.no_gc_clear
cdef class VirtioRxQueue(_DataQueue):
    """Receive virtqueue, device-writable: per packet the header (in the
    buffer's headroom) and the data, in two descriptors, or in one with
    any_layout."""

    def __cinit__(self, Doorbell doorbell not None, uint16_t queue_index, DmaMemory memory not None,
                  size_t offset, uint32_t num, Mempool pool not None, bint any_layout=False,
                  uint8_t hdr_len=IXY_VIRTIO_NET_HDR_LEN):
        self._init_chains(any_layout, hdr_len)
        self.pool = pool
        self.is_rx = True
        self.pools.add(pool)
        self.data_len = ixy_buf_capacity(&pool.pool)
        self.empty = <uint16_t *> calloc(self.chains, sizeof(uint16_t))
        self.fresh = <ixy_buf **> calloc(self.chains, sizeof(ixy_buf *))
        if self.empty == NULL or self.fresh == NULL:
            raise MemoryError()
        cdef uint32_t k
        for k in range(self.chains):
            if any_layout:
                # header + frame in one buffer: data_dma - hdr_len .. data_dma + data_len
                self.desc[k].len = hdr_len + self.data_len
                self.desc[k].flags = IXY_VRING_DESC_F_WRITE
            else:
                self.desc[2 * k].len = hdr_len
                self.desc[2 * k].flags = IXY_VRING_DESC_F_WRITE | IXY_VRING_DESC_F_NEXT
                self.desc[2 * k].next = 2 * k + 1
                self.desc[2 * k + 1].len = self.data_len
                self.desc[2 * k + 1].flags = IXY_VRING_DESC_F_WRITE
            self.empty[k] = k
        self.empty_count = self.chains

    def __dealloc__(self):
        c_free(self.empty)
        c_free(self.fresh)

    @property
    def chains_posted(self) -> int:
        """Buffers the device can currently receive into."""
        return self.chains - self.empty_count

    def rx(self, PacketBatch batch not None) -> int:
        """Receive into the free slots of batch; returns the count added."""
        return self._rx_entry(batch)

    def forward(self, Queue txq not None, PacketBatch batch not None) -> int:
        """Receive into batch, send it on txq; what txq cannot take stays in
        batch (see Queue._forward_entry). Returns the count sent."""
        return self._forward_entry(txq, batch)

    def fill(self) -> int:
        """Post a buffer on every chain (before DRIVER_OK)."""
        if self.pool.pool.free_count < self.empty_count:
            raise MempoolExhausted(f"the rx virtqueue needs {self.empty_count} buffers, the mempool has {self.pool.pool.free_count} free")
        cdef uint32_t n
        with nogil:
            n = self._refill()
        return n

    cdef uint32_t _refill(self) noexcept nogil:
        """One refill pass: a fresh buffer (taken from the pool at once) for
        every empty chain the pool can serve, one avail.idx update and at
        most one notify."""
        cdef uint32_t n = ixy_mempool_alloc(&self.pool.pool, self.fresh, self.empty_count)
        cdef uint32_t j, k, head = self.empty_head, cmask = self.chain_mask
        cdef uint16_t avail_idx = self.avail_idx, mask = self.mask
        cdef uint32_t hdr_len = self.hdr_len
        cdef ixy_vring_desc *desc = self.desc
        cdef ixy_buf *b
        if self.any_layout:
            for j in range(n):      # one descriptor: header (in the headroom) + frame
                k = self.empty[(head + j) & cmask]
                b = self.fresh[j]
                self.bufs[k] = b
                desc[k].addr = b.data_dma - hdr_len
                self.avail.ring[<uint16_t> (avail_idx + j) & mask] = k
        else:
            for j in range(n):      # header descriptor, data descriptor
                k = self.empty[(head + j) & cmask]
                b = self.fresh[j]
                self.bufs[k] = b
                desc[2 * k].addr = b.data_dma - hdr_len
                desc[2 * k + 1].addr = b.data_dma
                self.avail.ring[<uint16_t> (avail_idx + j) & mask] = 2 * k
        if n:
            self.empty_head = (head + n) & cmask
            self.empty_count -= n
            self._publish(n)
        return n

    cdef uint32_t _rx(self, ixy_buf **out, uint32_t n) noexcept nogil:
        """Up to n packets off the used ring. Either layout: used.len counts
        the header and the frame (the header landed in the headroom), so
        b.len is used.len - hdr_len; chain k's head is descriptor k << shift.
        While the pool has buffers, every chain stays posted: each used
        entry's chain gets a fresh buffer in the same pass (_rx_swap), and
        entries beyond the pool's free buffers wait for the next call. With
        the pool empty the packets are still taken, their chains left empty
        (_rx_take) until buffers come back (_refill)."""
        cdef uint32_t free_bufs
        cdef uint16_t ready
        if self.empty_count:
            self._refill()           # chains left empty while the pool was exhausted
        ready = ixy_vring_used_idx(self.used) - self.last_used
        if ready > n:
            ready = n
        if ready == 0:
            return 0
        ixy_rmb()    # read the used entries only after used.idx
        free_bufs = self.pool.pool.free_count
        if self.empty_count or free_bufs == 0:
            return self._rx_take(out, ready)
        if ready > free_bufs:
            ready = free_bufs
        if self.any_layout:
            return _rx_swap(self, out, ready, True)
        return _rx_swap(self, out, ready, False)

    cdef uint32_t _rx_take(self, ixy_buf **out, uint32_t ready) noexcept nogil:
        """The `ready` used entries into out, their chains onto the empty
        FIFO, then one refill pass with what the pool has (some chains are
        empty, or the pool is)."""
        cdef uint32_t i = 0, c, k, length, tail, cmask = self.chain_mask, hdr_len = self.hdr_len
        cdef uint16_t last = self.last_used
        cdef uint64_t nbytes = 0
        cdef ixy_vring_used_elem *e
        cdef ixy_buf *b
        tail = self.empty_head + self.empty_count
        for c in range(ready):
            e = &self.used.ring[last & self.mask]
            last += 1
            k = _posted_chain(self, e.id, self.shift)
            if k == NOT_POSTED:
                continue
            b = self.bufs[k]
            self.bufs[k] = NULL
            self.empty[tail & cmask] = k
            tail += 1
            length = e.len
            if length < hdr_len or length - hdr_len > self.data_len:
                self.errors += 1
                ixy_buf_free(b)
                continue
            b.len = length - hdr_len
            nbytes += b.len
            out[i] = b
            i += 1
        self.last_used = last
        self.empty_count = tail - self.empty_head
        self.packets += i
        self.bytes += nbytes
        self._refill()
        return i

    cdef void _release_buffers(self) noexcept:
        ixy_buf_free_slots(self.bufs, self.chains)


cdef enum:
    NOT_POSTED = 0xFFFFFFFF


cdef inline uint32_t _posted_chain(VirtioRxQueue q, uint32_t head, uint32_t shift) noexcept nogil:
    """The chain whose first descriptor a used entry names (head; chains of
    1 << shift descriptors), if it is one we posted: a chain's first
    descriptor, in range, holding a buffer. Else NOT_POSTED, counted in
    errors: a device bug, the entry is skipped."""
    cdef uint32_t k = head >> shift
    if head & ((1u << shift) - 1) or k >= q.chains or q.bufs[k] == NULL:
        q.errors += 1
        return NOT_POSTED
    return k


cdef inline uint32_t _rx_swap(VirtioRxQueue q, ixy_buf **out, uint32_t ready, bint any_layout) noexcept nogil:
    """The `ready` used entries into out, every chain posted and the pool
    holding a fresh buffer for each (any_layout a constant in each of the
    two calls, so the compiler makes two loops). One pass, as the Intel
    rings do: the fresh buffers are taken at once into out (a received
    buffer then overwrites a slot already read: i <= j) and each chain gets
    its fresh buffer and goes back into the avail ring as it comes off the
    used ring; one publish. Ring positions are counted in 32 bits here
    (free-running, masked), stored back as the 16-bit indices."""
    cdef ixy_vring_used_elem *used = q.used.ring
    cdef uint16_t *avail = q.avail.ring
    cdef ixy_vring_desc *desc = q.desc
    cdef ixy_buf **bufs = q.bufs
    cdef ixy_buf *b
    cdef ixy_buf *fresh
    cdef uint32_t last = q.last_used, slot = q.avail_idx, mask = q.mask, end = last + ready
    cdef uint32_t i = 0, j = 0, head, k, length
    cdef uint32_t hdr_len = q.hdr_len, data_len = q.data_len
    cdef uint64_t nbytes = 0
    ixy_mempool_alloc(&q.pool.pool, out, ready)
    while last != end:
        head = used[last & mask].id
        length = used[last & mask].len - hdr_len       # the frame's bytes (wraps if shorter than the header)
        last += 1
        k = _posted_chain(q, head, 0 if any_layout else 1)
        if k == NOT_POSTED:
            continue
        b = bufs[k]
        fresh = out[j]
        j += 1
        bufs[k] = fresh
        desc[head].addr = fresh.data_dma - hdr_len
        if not any_layout:
            desc[head + 1].addr = fresh.data_dma
        avail[slot & mask] = head
        slot += 1
        if length > data_len:
            q.errors += 1
            ixy_buf_free(b)
            continue
        b.len = length
        nbytes += length
        out[i] = b
        i += 1
    if j < ready:                 # fresh buffers left over by skipped entries
        ixy_buf_free_n(out + j, ready - j)
    q.last_used = last
    q.packets += i
    q.bytes += nbytes
    if j:
        q._publish(j)
    return i


@cython.no_gc_clear
cdef class VirtioTxQueue(_DataQueue):
    """Transmit virtqueue, device-readable: per packet the shared zero
    header and the data in two descriptors, or with any_layout one
    descriptor over a zeroed header in the headroom and the frame
    (header_dma is then unused).

    Chains are used in ring order: the packet at avail slot s goes in
    chain s & chain_mask, so slot s always names the same head, written
    once here, and a chain is free when its buffer slot is empty. A device
    completes transmits in order as a rule (QEMU's and the model do); one
    that does not only makes tx stop early, at the first chain of the
    order still in flight."""

    def __cinit__(self, Doorbell doorbell not None, uint16_t queue_index, DmaMemory memory not None,
                  size_t offset, uint32_t num, uint64_t header_dma, uint32_t max_len, bint any_layout=False,
                  uint8_t hdr_len=IXY_VIRTIO_NET_HDR_LEN):
        self._init_chains(any_layout, hdr_len)
        self.tx_max_len = max_len      # Queue's: loops check it without the GIL (queue.pxd)
        cdef uint32_t k, s
        if not any_layout:
            for k in range(self.chains):
                self.desc[2 * k].addr = header_dma
                self.desc[2 * k].len = hdr_len
                self.desc[2 * k].flags = IXY_VRING_DESC_F_NEXT
                self.desc[2 * k].next = 2 * k + 1
        for s in range(num):
            self.avail.ring[s] = (s & self.chain_mask) << self.shift

    @property
    def in_flight(self) -> int:
        """Packets handed to the device and not yet reclaimed."""
        return self.in_flight_count

    @property
    def capacity(self) -> int:
        """Packets the queue holds at once (one or two descriptors each)."""
        return self.chains

    @property
    def max_len(self) -> int:
        """The longest packet the device takes, in bytes."""
        return self.tx_max_len

    def tx(self, PacketBatch batch not None) -> int:
        """Send from the front of batch; sent buffers leave it. Returns the count sent."""
        return self._tx_entry(batch)

    cdef void _clean(self) noexcept nogil:
        """Take back the buffers of the chains the device has used."""
        if self.any_layout:
            _tx_reclaim(self, 0)
        else:
            _tx_reclaim(self, 1)

    cdef uint32_t _tx(self, ixy_buf **bufs, uint32_t n) noexcept nogil:
        self._clean()
        if n > self.chains - self.in_flight_count:
            n = self.chains - self.in_flight_count
        if n == 0:
            return 0
        if self.any_layout:
            n = _tx_place(self, bufs, n, True)
        else:
            n = _tx_place(self, bufs, n, False)
        if n:
            self.in_flight_count += n
            self.packets += n
            self._publish(n)     # one avail.idx write and at most one notify per batch
        return n

    cdef int _check_tx(self, PacketBatch batch) except -1:
        """A packet longer than max_len: PacketTooLarge, and nothing of the
        batch is sent. (No length exceeds its buffer: PacketBatch refuses
        such a length where it is set, and rx never writes one.)"""
        cdef uint32_t i, max_len = self.tx_max_len
        cdef ixy_buf **bufs = batch.bufs
        for i in range(batch.count):
            if bufs[i].len > max_len:
                raise PacketTooLarge(f"packet {i} of the batch has {bufs[i].len} bytes, the device takes at most {max_len}")
        return 0

    cdef void _release_buffers(self) noexcept:
        ixy_buf_free_slots(self.bufs, self.chains)


cdef inline void _tx_reclaim(VirtioTxQueue q, uint32_t shift) noexcept nogil:
    """Free the buffers of the chains the used ring gives back (shift: the
    layout's, a constant in each of the two calls). Ring positions in 32
    bits, stored back as 16."""
    cdef ixy_vring_used_elem *used = q.used.ring
    cdef ixy_buf **ring = q.bufs
    cdef uint32_t last = q.last_used, mask = q.mask, chains = q.chains, done = 0, k
    cdef uint32_t end = last + <uint16_t> (ixy_vring_used_idx(q.used) - q.last_used)
    cdef ixy_buf *b
    ixy_rmb()
    while last != end:
        k = used[last & mask].id >> shift
        last += 1
        if k < chains:
            b = ring[k]
            if b != NULL:         # else not a chain in flight: a device bug; skip it
                ring[k] = NULL
                done += 1
                ixy_buf_free(b)
    q.last_used = last
    q.in_flight_count -= done


cdef inline uint32_t _tx_place(VirtioTxQueue q, ixy_buf **bufs, uint32_t n, bint any_layout) noexcept nogil:
    """Up to n packets onto chains k taken in ring order, stopping at a
    chain still in flight; returns the count placed (any_layout a constant
    in each of the two calls, so the compiler makes two loops).
    - any_layout: one descriptor k, a zeroed virtio_net_hdr in the headroom
      right before the frame, then the frame (VIRTIO_F_ANY_LAYOUT, 2.4.4 /
      2.7.4 Message Framing);
    - else: the shared header's descriptor 2k (written once) and the data
      descriptor 2k+1."""
    cdef ixy_vring_desc *desc = q.desc
    cdef ixy_buf **ring = q.bufs
    cdef uint32_t i = 0, k, slot = q.avail_idx, cmask = q.chain_mask, hdr_len = q.hdr_len
    cdef uint64_t nbytes = 0
    cdef ixy_buf *b
    while i < n:
        k = (slot + i) & cmask
        if ring[k] != NULL:
            break
        b = bufs[i]
        ring[k] = b
        if any_layout:
            # the longest header's bytes, a constant: the compiler stores them
            # inline (a memset of hdr_len is a libc call, 15 instructions a
            # packet); with a 10-byte header the 2 bytes before it are headroom
            memset(b.data - IXY_VIRTIO_NET_HDR_LEN_V1, 0, IXY_VIRTIO_NET_HDR_LEN_V1)
            desc[k].addr = b.data_dma - hdr_len
            desc[k].len = b.len + hdr_len
        else:
            desc[2 * k + 1].addr = b.data_dma
            desc[2 * k + 1].len = b.len
        nbytes += b.len
        i += 1
    q.bytes += nbytes
    return i


cdef class VirtioCtrlQueue(_Virtqueue):
    """The control virtqueue (5.1.6.5): one command at a time, polled.
    A command is a chain of three descriptors: class+command (device-readable),
    data (device-readable), ack (device-writable)."""

    def __cinit__(self, Doorbell doorbell not None, uint16_t queue_index, DmaMemory memory not None,
                  size_t offset, uint32_t num, size_t buf_offset, uint64_t buf_dma):
        if num < 4:
            raise ValueError(f"control virtqueue of {num} entries: a command needs 3")
        if buf_offset + 512 > memory.size:
            raise ValueError("control buffer outside the DMA memory")
        self.buf = <uint8_t *> memory.address + buf_offset
        self.buf_dma = buf_dma

    def command(self, uint8_t cls, uint8_t cmd, const uint8_t[::1] data not None, double timeout=1.0) -> int:
        """Send one command, wait for the device; returns its ack byte
        (VIRTIO_NET_OK = 0). Raises DeviceTimeout when it does not answer."""
        import time
        cdef uint32_t dlen = data.shape[0]
        cdef uint16_t used_idx
        if dlen == 0 or dlen > 256:
            raise ValueError("control command data must be 1 to 256 bytes")
        self.buf[0] = cls
        self.buf[1] = cmd
        memcpy(self.buf + 16, &data[0], dlen)
        self.buf[400] = 0xFF         # the device overwrites it with the ack
        self.desc[0].addr = self.buf_dma
        self.desc[0].len = 2
        self.desc[0].flags = IXY_VRING_DESC_F_NEXT
        self.desc[0].next = 1
        self.desc[1].addr = self.buf_dma + 16
        self.desc[1].len = dlen
        self.desc[1].flags = IXY_VRING_DESC_F_NEXT
        self.desc[1].next = 2
        self.desc[2].addr = self.buf_dma + 400
        self.desc[2].len = 1
        self.desc[2].flags = IXY_VRING_DESC_F_WRITE
        self.avail.ring[self.avail_idx & self.mask] = 0
        with nogil:
            self._publish(1)
        deadline = time.monotonic() + timeout
        while True:
            used_idx = ixy_vring_used_idx(self.used)
            if used_idx != self.last_used:
                break
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"virtio-net control queue: no answer to command class {cls} cmd {cmd} within {timeout:g} s")
            time.sleep(0.0005)
        ixy_rmb()
        self.last_used = used_idx
        # the element just completed is at used.idx - 1 (not used.idx)
        if self.used.ring[<uint16_t> (used_idx - 1) & self.mask].id != 0:
            raise DeviceError("virtio-net control queue: the device completed a chain that was not posted")
        return self.buf[400]
