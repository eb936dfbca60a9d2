# cython: language_level=3, binding=False, always_allow_keywords=False
"""Packet batches: :class:`PacketBatch`, up to `capacity` packet buffers held
as a C array, the unit every rx, tx and forward call moves; and
:class:`PoolRefs`, which keeps the pools of those buffers alive."""
cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free as c_free
from libc.string cimport memcpy

from .mempool cimport (Mempool, ixy_buf, ixy_buf_at, ixy_buf_capacity, ixy_buf_free, ixy_buf_free_n,
                       ixy_mempool, ixy_mempool_alloc)

from ..errors import BatchError, DoubleFree, PacketTooLarge
from ..memory import unreachable

@cython.no_gc_clear
cdef class PoolRefs:
    """The pools whose buffers a batch or a ring may hold, kept alive while
    it does: a pool's memory must outlive every buffer of it still held.
    The set only grows, so its size is its version: a ring that merged a
    batch's set skips the merge while that set is unchanged. Both checks
    are inline (batch.pxd): a few instructions per batch."""

    def __cinit__(self):
        self.pools = []

    cdef int _add(self, Mempool pool) except -1:
        if pool not in self.pools:
            self._check_reach(pool)
            self.pools.append(pool)
        self.last = pool
        return 0

    cdef int _check_reach(self, Mempool pool) except -1:
        """A tx queue's set: refuse a pool whose DMA addresses its device
        would read as other memory (memory.DmaSpace)."""
        if self.dma_space is None or pool.dma_spaces is None or self.dma_space in pool.dma_spaces:
            return 0
        raise unreachable(self.reader, self.dma_space, pool.dma_spaces,
                          "send buffers of a pool this batch holds or held")

    cdef int _merge(self, PoolRefs other) except -1:
        for pool in other.pools:
            self._add(pool)
        self.merged = other
        self.merged_size = len(other.pools)
        return 0


@cython.no_gc_clear
cdef class PacketBatch:
    """Up to `capacity` packet buffers, held as a C array. Python sees the
    batch; packet bytes are reachable as zero-copy memoryviews (batch[i])."""

    def __cinit__(self, uint32_t capacity=32):
        if capacity == 0:
            raise BatchError("a batch needs a capacity of at least 1")
        self.bufs = <ixy_buf **> calloc(capacity, sizeof(ixy_buf *))
        if self.bufs == NULL:
            raise MemoryError()
        self.capacity = capacity
        self.pools = PoolRefs()

    def __dealloc__(self):
        # buffers still held go back to their pools, which this batch keeps alive
        if self.bufs != NULL:
            ixy_buf_free_n(self.bufs, self.count)
            c_free(self.bufs)

    def __len__(self) -> int:
        return self.count

    @property
    def room(self) -> int:
        """Free slots."""
        return self.capacity - self.count

    def alloc(self, Mempool pool not None, object n=None, object length=None) -> int:
        """Append up to n buffers from pool (default: fill the batch); set
        their length if given. Returns how many were added (fewer when the
        pool runs dry)."""
        cdef uint32_t want = self.capacity - self.count if n is None else min(<uint32_t> n, self.capacity - self.count)
        cdef uint32_t got, i, plen = 0
        if length is not None:
            plen = length
            if plen > ixy_buf_capacity(&pool.pool):
                raise PacketTooLarge(f"length {plen} exceeds the buffer capacity {ixy_buf_capacity(&pool.pool)}")
        got = ixy_mempool_alloc(&pool.pool, self.bufs + self.count, want)
        if length is not None:
            for i in range(self.count, self.count + got):
                self.bufs[i].len = plen
        self.count += got
        if got:
            self.pools.add(pool)
        return got

    def free(self) -> None:
        """Return every buffer to its pool and empty the batch."""
        cdef uint32_t i
        cdef uint64_t before
        cdef ixy_mempool *p
        for i in range(self.count):
            p = self.bufs[i].pool
            before = p.double_frees
            ixy_buf_free(self.bufs[i])
            if p.double_frees != before:
                index = self.bufs[i].pool_index
                self._shift_out(i + 1)
                raise DoubleFree(f"buffer {index} freed twice")
        self.count = 0

    cdef ixy_buf *_buf(self, Py_ssize_t i) except NULL:
        if i < 0:
            i += self.count
        if i < 0 or i >= self.count:
            raise IndexError(f"packet {i} of a batch of {self.count}")
        return self.bufs[i]

    def __getitem__(self, Py_ssize_t i) -> memoryview:
        """Zero-copy, writable view of packet i's bytes."""
        cdef ixy_buf *b = self._buf(i)
        cdef Mempool pool = <Mempool> (<object> self._pool_of(b))
        cdef size_t start = <size_t> b.data - pool.memory.address
        return memoryview(pool.memory)[start:start + b.len]

    cdef object _pool_of(self, ixy_buf *b):
        for p in self.pools.pools:
            if &(<Mempool> p).pool == b.pool:
                return p
        raise RuntimeError("buffer of an unknown pool")

    def detach(self, Py_ssize_t i) -> int:
        """Take packet i out of the batch without freeing it (to keep it
        across batches); returns its index in its pool, for attach()."""
        cdef ixy_buf *b = self._buf(i)
        cdef uint32_t j
        if i < 0:
            i += self.count
        for j in range(i + 1, self.count):
            self.bufs[j - 1] = self.bufs[j]
        self.count -= 1
        return b.pool_index

    def attach(self, Mempool pool not None, uint32_t index) -> None:
        """Append a buffer detached earlier (pool, index). Each detached
        buffer is attached once: a debug pool catches a second free."""
        if self.count == self.capacity:
            raise BatchError(f"the batch is full ({self.capacity})")
        if index >= pool.pool.num_bufs:
            raise IndexError(f"buffer {index} of a pool of {pool.pool.num_bufs}")
        self.bufs[self.count] = ixy_buf_at(&pool.pool, index)
        self.count += 1
        self.pools.add(pool)

    def length(self, Py_ssize_t i) -> int:
        return self._buf(i).len

    def set_length(self, Py_ssize_t i, uint32_t length) -> None:
        cdef ixy_buf *b = self._buf(i)
        if length > ixy_buf_capacity(b.pool):
            raise PacketTooLarge(f"length {length} exceeds the buffer capacity {ixy_buf_capacity(b.pool)}")
        b.len = length

    def write(self, Py_ssize_t i, const uint8_t[::1] data not None) -> None:
        """Copy data into packet i and set its length."""
        cdef ixy_buf *b = self._buf(i)
        cdef uint32_t n = data.shape[0]
        if n > ixy_buf_capacity(b.pool):
            raise PacketTooLarge(f"packet of {n} bytes exceeds the buffer capacity {ixy_buf_capacity(b.pool)}")
        if n:
            memcpy(b.data, &data[0], n)
        b.len = n

    def dma_address(self, Py_ssize_t i) -> int:
        return self._buf(i).data_dma

    def total_bytes(self) -> int:
        cdef uint64_t total = 0
        cdef uint32_t i
        for i in range(self.count):
            total += self.bufs[i].len
        return total

    def stamp_u64(self, uint32_t offset, uint64_t first) -> int:
        """Write first, first+1, ... as 64-bit little-endian numbers at offset
        of each packet; returns the next number. A packet too short for its
        number is left alone (its number is skipped) and, after the others
        were stamped, PacketTooLarge names the first such packet."""
        cdef uint32_t i, short = self.count
        for i in range(self.count):
            if offset + 8 <= self.bufs[i].len:
                memcpy(self.bufs[i].data + offset, &first, 8)
            elif short == self.count:
                short = i
            first += 1
        if short != self.count:
            raise PacketTooLarge(f"packet {short} ({self.bufs[short].len} bytes) too short for a sequence number at {offset}",
                                 f"give packets at least {offset + 8} bytes (alloc(pool, length=...) or set_length), or stamp at a smaller offset")
        return first

    def check_seq_u64(self, uint32_t offset, uint64_t expected):
        """Compare the 64-bit numbers at offset with expected, expected+1, ...
        Returns (next expected, number of packets out of sequence); after a
        gap the count resynchronises on the number found."""
        cdef uint32_t i, bad = 0
        cdef uint64_t seq
        for i in range(self.count):
            if offset + 8 > self.bufs[i].len:
                bad += 1
                continue
            memcpy(&seq, self.bufs[i].data + offset, 8)
            if seq != expected:
                bad += 1
            expected = seq + 1
        return expected, bad
