# The driver-independent part of every rx and tx queue: a driver's queue
# class derives from Queue and implements _rx, or _tx and _clean.
from libc.stdint cimport uint32_t, uint64_t

from .batch cimport PacketBatch, PoolRefs
from .mempool cimport ixy_buf


# What a call that found no work runs (the idle hook set by set_idle_hook):
# for loops in other modules (ixypy.fastpath.loops).
cdef void queue_idle() noexcept nogil


cdef class Queue:
    cdef PoolRefs pools           # pools whose buffers the queue holds (rx: its own pool)
    cdef uint32_t tx_max_len      # tx: _check_tx refuses no packet up to this length (a check without the GIL)
    cdef bint closed
    cdef bint busy                # a loop (ixypy.fastpath.loops) runs on it without the GIL
    cdef readonly bint is_rx
    cdef readonly uint64_t packets
    cdef readonly uint64_t bytes

    # --- what a driver implements: one batch per call, without the GIL
    cdef uint32_t _rx(self, ixy_buf **out, uint32_t n) noexcept nogil
    cdef uint32_t _tx(self, ixy_buf **bufs, uint32_t n) noexcept nogil
    cdef void _clean(self) noexcept nogil
    cdef int _check_tx(self, PacketBatch batch) except -1
    cdef void _release_buffers(self) noexcept

    # --- written once for every driver; the per-batch steps are inline here,
    # so a loop in another module (ixypy.fastpath.bench) inlines them too
    cdef inline int _usable(self, bint rx) except -1:
        if self.closed or rx != self.is_rx or self.busy:
            self._refuse(rx)
        return 0

    cdef inline uint32_t _rx_into(self, PacketBatch batch) except? 0xFFFFFFFF:
        cdef uint32_t got = self._rx(batch.bufs + batch.count, batch.capacity - batch.count)
        if got:
            batch.count += got
            batch.pools.merge(self.pools)
        return got

    cdef inline uint32_t _tx_from(self, PacketBatch batch) except? 0xFFFFFFFF:
        # before the device sees a buffer: the merge refuses pools it cannot reach
        self.pools.merge(batch.pools)
        cdef uint32_t sent = self._tx(batch.bufs, batch.count)
        if sent:
            batch._shift_out(sent)
        return sent

    cdef int _refuse(self, bint rx) except -1
    cdef uint32_t _rx_entry(self, PacketBatch batch) except? 0xFFFFFFFF
    cdef uint32_t _tx_entry(self, PacketBatch batch) except? 0xFFFFFFFF
    cdef uint32_t _forward_entry(self, Queue txq, PacketBatch batch) except? 0xFFFFFFFF
