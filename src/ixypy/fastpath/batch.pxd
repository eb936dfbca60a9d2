# A batch of packet buffers (a C array of ixy_buf pointers), and the set of
# pools whose buffers a batch or a ring holds.
cimport cython
from libc.stdint cimport uint32_t

from libc.string cimport memcpy

from .mempool cimport Mempool, ixy_buf, ixy_buf_free_n, ixy_mempool, ixy_mempool_alloc


@cython.final
cdef class PoolRefs:
    cdef list pools
    cdef Mempool last             # the pool added or found last
    cdef PoolRefs merged          # the set merged last, at size merged_size
    cdef Py_ssize_t merged_size
    cdef object dma_space         # a tx queue's: what its device reads addresses as (None: a batch, unchecked)
    cdef str reader               # that device, for the error

    # inline here, so the queue modules inline them too: a few instructions per batch
    cdef inline int add(self, Mempool pool) except -1:
        if pool is not self.last:
            self._add(pool)
        return 0

    cdef inline int merge(self, PoolRefs other) except -1:
        if other is not self.merged or len(other.pools) != self.merged_size:
            self._merge(other)
        return 0

    cdef int _add(self, Mempool pool) except -1
    cdef int _check_reach(self, Mempool pool) except -1
    cdef int _merge(self, PoolRefs other) except -1


cdef class PacketBatch:
    cdef ixy_buf **bufs
    cdef uint32_t count
    cdef readonly uint32_t capacity
    cdef PoolRefs pools

    cdef inline void _shift_out(self, uint32_t n) noexcept nogil:
        """Drop the first n entries (handed to a driver), keeping the rest in order."""
        cdef uint32_t i
        for i in range(n, self.count):
            self.bufs[i - n] = self.bufs[i]
        self.count -= n

    cdef inline uint32_t _copy_to(self, PacketBatch out, ixy_mempool *pool) noexcept nogil:
        """Move packets from the front, in order, into fresh buffers of pool
        appended to out (bytes and length), as many as out has room for and
        pool has buffers; the originals go back to their pools. The caller
        has checked that each fits a buffer of pool, and adds pool to
        out.pools. Returns the count moved."""
        cdef uint32_t i, n = ixy_mempool_alloc(pool, out.bufs + out.count, min(self.count, out.capacity - out.count))
        cdef ixy_buf *src
        cdef ixy_buf *dst
        for i in range(n):
            src, dst = self.bufs[i], out.bufs[out.count + i]
            memcpy(dst.data, src.data, src.len)
            dst.len = src.len
        ixy_buf_free_n(self.bufs, n)
        self._shift_out(n)
        out.count += n
        return n

    cdef ixy_buf *_buf(self, Py_ssize_t i) except NULL
    cdef object _pool_of(self, ixy_buf *b)
