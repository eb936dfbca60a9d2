# cython: language_level=3, binding=False, always_allow_keywords=False
"""The rx and tx rings of Intel's advanced descriptors (82599 7.1.6 and
7.2.3.2.4; the 82576 uses the same layout), and of the 82574's extended
ones, laid out alike (82574 datasheet 7.1.5, extended rx descriptor with
RFCTL.EXSTEN: buffer address at 0, status and errors at 8, length at 12;
7.2, the extended TCP/IP data descriptor: DTYP 0001b where the advanced
one has 0011b, DD in the same place): a packet's path from a batch to the
descriptor (csrc/ixy_desc.h) and the tail register write. A tx ring takes
the descriptor type as data (TX_ADVANCED, TX_EXTENDED)."""
cimport cython
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free as c_free
from libc.string cimport memset

from .batch cimport PacketBatch
from .mempool cimport (DmaMemory, Mempool, ixy_buf, ixy_buf_free, ixy_buf_free_n, ixy_buf_free_slots,
                       ixy_mempool, ixy_mempool_alloc, ixy_mempool_alloc1)
from .queue cimport Queue
from .regs cimport Bar, ixy_rmb, ixy_write32

from ..errors import BatchError, MempoolExhausted, QueueError


# tx descriptors are reclaimed in groups: DD is checked only on the last
# descriptor of a group (as ixy does), so clean-up costs one load per group;
# a ring of fewer than 64 descriptors uses groups of half its size
cdef enum:
    TX_CLEAN_BATCH = 32

#: DCMD and DTYP of a tx ring's data descriptors: end of packet, insert the
#: FCS, report status (DD), extended format; advanced data (82599, 82576)
TX_ADVANCED = IXY_TXD_DCMD_EOP | IXY_TXD_DCMD_RS | IXY_TXD_DCMD_IFCS | IXY_TXD_DCMD_DEXT | IXY_TXD_DTYP_DATA
#: the same for the 82574's extended TCP/IP data descriptor
TX_EXTENDED = IXY_TXD_DCMD_EOP | IXY_TXD_DCMD_RS | IXY_TXD_DCMD_IFCS | IXY_TXD_DCMD_DEXT | IXY_TXD_DTYP_EXT_DATA


cdef inline void _adv_rx_give(ixy_adv_rx_desc *d, ixy_buf *b) noexcept nogil:
    d.read.pkt_addr = b.data_dma
    d.read.hdr_addr = 0   # also clears the write-back DD bit that overlays it


@cython.no_gc_clear
cdef class _IntelQueue(Queue):
    """State common to an advanced-descriptor rx or tx ring."""

    def __cinit__(self, Bar bar not None, uint32_t tail_reg, DmaMemory ring_memory not None,
                  size_t ring_offset, uint32_t num_descs, *args, **kwargs):
        if num_descs < 8 or num_descs & (num_descs - 1):
            raise ValueError(f"ring size {num_descs} must be a power of two of at least 8")
        if ring_offset + <size_t> num_descs * 16 > ring_memory.size:
            raise ValueError("ring does not fit its DMA memory")
        self.bar = bar
        self.ring_memory = ring_memory
        self.num_descs = num_descs
        self.mask = num_descs - 1
        self.tail_reg = tail_reg
        self.bufs = <ixy_buf **> calloc(num_descs, sizeof(ixy_buf *))
        if self.bufs == NULL:
            raise MemoryError()

    def __dealloc__(self):
        c_free(self.bufs)

    @property
    def size(self) -> int:
        return self.num_descs


@cython.no_gc_clear
cdef class IntelRxQueue(_IntelQueue):
    """Receive ring of advanced one-buffer descriptors (82599 7.1.6)."""

    def __cinit__(self, Bar bar not None, uint32_t tail_reg, DmaMemory ring_memory not None,
                  size_t ring_offset, uint32_t num_descs, Mempool pool not None):
        self.descs = <ixy_adv_rx_desc *> (ring_memory.address + ring_offset)
        self.pool = pool
        self.is_rx = True
        self.pools.add(pool)

    def fill(self) -> int:
        """Attach a fresh buffer to every descriptor (before the queue is
        enabled). Returns the tail to program: the last descriptor, because
        RDH == RDT means the NIC owns none."""
        cdef uint32_t i
        if self.pool.pool.free_count < self.num_descs:
            raise MempoolExhausted(f"the rx ring needs {self.num_descs} buffers, the mempool has {self.pool.pool.free_count} free")
        for i in range(self.num_descs):
            self.bufs[i] = ixy_mempool_alloc1(&self.pool.pool)
            _adv_rx_give(&self.descs[i], self.bufs[i])
        self.rx_index = 0
        return self.num_descs - 1

    def rx(self, PacketBatch batch not None) -> int:
        """Receive into the free slots of batch; returns the count added."""
        return self._rx_entry(batch)

    def forward(self, Queue txq not None, PacketBatch batch not None) -> int:
        """Receive into batch, send it on txq; what txq cannot take stays in
        batch (see Queue._forward_entry). Returns the count sent."""
        return self._forward_entry(txq, batch)

    cdef void _release_buffers(self) noexcept:
        ixy_buf_free_slots(self.bufs, self.num_descs)

    def set_rss_hash(self, bint on) -> None:
        """Copy each packet's RSS hash and type (write-back dwords 1 and 0)
        into its buffer (ixy_buf.rss_hash/rss_type: ops.rss_hashes,
        ops.rss_types) from now on: for a NIC with RSS on. Off, the rx loop
        does not touch them."""
        self.rss_hash = on

    @property
    def rss_hash_enabled(self) -> bool:
        return self.rss_hash

    cdef uint32_t _rx(self, ixy_buf **out, uint32_t n) noexcept nogil:
        # one branch a batch: the loop without RSS is the one it always was,
        # the one with RSS a call away (out of line, not to weigh on this one)
        if self.rss_hash:
            return self._rx_rss(out, n)
        return _rx_ring(self, out, n, False)

    cdef uint32_t _rx_rss(self, ixy_buf **out, uint32_t n) noexcept nogil:
        return _rx_ring(self, out, n, True)

    cdef void _discard(self, ixy_buf *b, uint32_t status) noexcept nogil:
        """A frame spread over several descriptors: buffers are sized so this
        needs a frame above the MAC's maximum; it is dropped whole."""
        self.discarding = not (status & IXY_RXD_STAT_EOP)
        self.dropped_multidesc += not self.discarding
        ixy_buf_free(b)


cdef inline uint32_t _rx_ring(IntelRxQueue self, ixy_buf **out, uint32_t n, bint rss) noexcept nogil:
    """Up to n packets of self's ring into out (rss: with each packet's
    RSS hash copied into its buffer; a constant in each of the two calls, so
    the compiler makes two loops). Two passes: count the descriptors the
    NIC wrote back (DD, 7.1.6.2), then take that many fresh buffers from
    the pool at once (into out, which the received ones then overwrite:
    out[i] is written only after out[i] was read) and swap them in."""
    cdef volatile ixy_adv_rx_desc *descs = self.descs
    cdef ixy_buf **ring = self.bufs
    cdef ixy_mempool *pool = &self.pool.pool
    cdef uint32_t idx = self.rx_index, mask = self.mask
    cdef uint32_t ready = 0, k, i = 0, status
    cdef uint64_t nbytes = 0
    cdef ixy_buf *b
    if n > pool.free_count:
        n = pool.free_count    # no fresh buffer: leave the descriptor for the next call
    while ready < n and descs[(idx + ready) & mask].wb.status_error & IXY_RXD_STAT_DD:
        ready += 1
    if ready == 0:
        return 0
    ixy_rmb()    # read the rest of the write-backs only after their DD
    ixy_mempool_alloc(pool, out, ready)
    for k in range(ready):
        status = descs[idx].wb.status_error
        b = ring[idx]
        b.len = descs[idx].wb.length
        if rss:
            b.rss_hash = descs[idx].wb.rss_hash
            b.rss_type = descs[idx].wb.info & 0xF    # 7.1.6.2: RSS type, bits 3:0 of dword 0
        ring[idx] = out[k]
        _adv_rx_give(<ixy_adv_rx_desc *> &descs[idx], out[k])
        idx = (idx + 1) & mask
        if self.discarding or not (status & IXY_RXD_STAT_EOP):
            self._discard(b, status)
            continue
        nbytes += b.len
        out[i] = b
        i += 1
    self.packets += i
    self.bytes += nbytes
    self.rx_index = idx
    ixy_write32(&self.bar.bar, self.tail_reg, (idx - 1) & mask)   # one RDT write per batch
    return i


@cython.no_gc_clear
cdef class IntelTxQueue(_IntelQueue):
    """Transmit ring of advanced data descriptors (82599 7.2.3.2.4), or with
    cmd_type=TX_EXTENDED and paylen=False of the 82574's extended TCP/IP
    data descriptors, whose second dword has no PAYLEN (its POPTS asks for
    checksums: it stays 0)."""

    def __cinit__(self, Bar bar not None, uint32_t tail_reg, DmaMemory ring_memory not None,
                  size_t ring_offset, uint32_t num_descs, uint32_t cmd_type=TX_ADVANCED, bint paylen=True):
        if cmd_type & 0xFFFFF:
            raise ValueError(f"cmd_type {cmd_type:#010x} overlaps the length field (bits 19:0)")
        self.descs = <ixy_adv_tx_desc *> (ring_memory.address + ring_offset)
        memset(self.descs, 0, num_descs * sizeof(ixy_adv_tx_desc))
        self.clean_batch = min(TX_CLEAN_BATCH, num_descs // 2)
        self.cmd_type = cmd_type
        self.paylen = paylen

    def tx_timestamped(self, PacketBatch batch not None) -> int:
        """tx of one packet the NIC time-stamps as it sends it (the data
        descriptor's 1588 bit; the device's IEEE 1588 clock must be enabled,
        and the time is then read from it: ixypy.drivers.ieee1588). The
        batch holds exactly that packet: the NIC latches one transmit time
        until it is read. Returns 1 if sent, 0 if the ring is full."""
        if batch.count != 1:
            raise BatchError(f"a time-stamped send takes a batch of one packet, not {batch.count}",
                             "the NIC keeps one transmit time until it is read: send probes one at a time")
        if (self.cmd_type & IXY_TXD_DTYP_DATA) != IXY_TXD_DTYP_DATA:
            raise QueueError("this ring's descriptors have no time-stamp bit (the 82574's extended ones)",
                             "time-stamped sends need an ixgbe or igb ring (82599, 82576)")
        cdef uint32_t plain = self.cmd_type
        self.cmd_type = plain | IXY_TXD_MAC_1588
        try:
            return self._tx_entry(batch)
        finally:
            self.cmd_type = plain

    @property
    def in_flight(self) -> int:
        """Descriptors handed to the NIC and not yet reclaimed."""
        return (self.tx_index - self.clean_index) & self.mask

    def tx(self, PacketBatch batch not None) -> int:
        """Send from the front of batch; sent buffers leave it. Returns the count sent."""
        return self._tx_entry(batch)

    cdef void _release_buffers(self) noexcept:
        # only the in-flight entries hold buffers: reclaimed ones are stale
        while self.clean_index != self.tx_index:
            ixy_buf_free(self.bufs[self.clean_index])
            self.clean_index = (self.clean_index + 1) & self.mask

    cdef void _clean(self) noexcept nogil:
        cdef uint32_t last
        cdef volatile ixy_adv_tx_desc *d
        while ((self.tx_index - self.clean_index) & self.mask) >= self.clean_batch:
            last = self.clean_index + self.clean_batch - 1   # groups never wrap: they divide the ring
            d = &self.descs[last]
            if not (d.wb.status & IXY_TXD_STAT_DD):
                break
            # DD of the group's last descriptor: the NIC is done with the group
            ixy_buf_free_n(self.bufs + self.clean_index, self.clean_batch)
            self.clean_index = (last + 1) & self.mask

    cdef uint32_t _tx(self, ixy_buf **bufs, uint32_t n) noexcept nogil:
        cdef ixy_adv_tx_desc *descs = self.descs
        cdef ixy_buf **ring = self.bufs
        cdef uint32_t i, idx, mask = self.mask, room, cmd_type = self.cmd_type
        cdef bint paylen = self.paylen
        cdef uint64_t nbytes = 0
        cdef ixy_buf *b
        self._clean()
        idx = self.tx_index
        room = (self.clean_index - idx - 1) & mask     # full when the next tail would reach the clean index
        if n > room:
            n = room
        if n == 0:
            return 0
        for i in range(n):
            b = bufs[i]
            ring[idx] = b
            descs[idx].read.buffer_addr = b.data_dma
            descs[idx].read.cmd_type_len = cmd_type | b.len
            # also clears the DD a previous write-back left there
            descs[idx].read.olinfo_status = (b.len << IXY_TXD_PAYLEN_SHIFT) if paylen else 0
            nbytes += b.len
            idx = (idx + 1) & mask
        self.packets += n
        self.bytes += nbytes
        self.tx_index = idx
        ixy_write32(&self.bar.bar, self.tail_reg, idx)   # one TDT write per batch
        return n
