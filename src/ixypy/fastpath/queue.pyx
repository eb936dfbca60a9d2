# cython: language_level=3, binding=False, always_allow_keywords=False
"""The queue base of every driver: rx, tx, forward, reclaim and close are
written once here on top of the driver's per-batch C functions."""
cimport cython
from libc.stdint cimport uint32_t

from .batch cimport PacketBatch, PoolRefs
from .mempool cimport ixy_buf

from ..errors import QueueError


@cython.no_gc_clear
cdef class Queue:
    """An rx or tx queue of some driver. A driver implements `_rx` (an rx
    queue) or `_tx` and `_clean` (a tx queue) on C arrays of buffers, one
    batch per call and without the GIL; rx, tx and forward are written
    once, here, on top of them (and the C-driven benchmark loops, in
    ixypy.fastpath.bench)."""

    def __cinit__(self, *args, **kwargs):
        self.pools = PoolRefs()

    # --- what a driver implements
    cdef uint32_t _rx(self, ixy_buf **out, uint32_t n) noexcept nogil:
        return 0

    cdef uint32_t _tx(self, ixy_buf **bufs, uint32_t n) noexcept nogil:
        return 0

    cdef void _clean(self) noexcept nogil:
        pass

    cdef int _check_tx(self, PacketBatch batch) except -1:
        """Raise for a packet the device cannot send (before _tx, from Python)."""
        return 0

    cdef void _release_buffers(self) noexcept:
        pass

    # --- shared (the inline steps are in queue.pxd)
    cdef int _refuse(self, bint rx) except -1:
        """Raise for a closed queue, or one used the wrong way round."""
        if self.closed:
            raise QueueError("the queue was closed with its device", "open the device again")
        raise QueueError(f"this is {'an rx' if self.is_rx else 'a tx'} queue",
                         f"use the device's {'tx' if self.is_rx else 'rx'}_queue() for that")

    # The Python entry points rx, tx and forward are defined on each concrete
    # queue class and call these: CPython 3.11 specialises a call of a C
    # method only when the method's class is exactly the object's type (an
    # inherited one takes the generic path, ~200 instructions per call).
    cdef uint32_t _rx_entry(self, PacketBatch batch) except? 0xFFFFFFFF:
        """rx: receive into the free slots of batch; returns the count added.
        The GIL stays held: a batch takes about a microsecond, less than
        releasing and retaking the GIL would cost (~1000 instructions)."""
        self._usable(True)
        return self._rx_into(batch)

    cdef uint32_t _tx_entry(self, PacketBatch batch) except? 0xFFFFFFFF:
        """tx: send from the front of batch; sent buffers leave the batch (the
        driver frees them once the NIC is done). Returns the count sent."""
        self._usable(False)
        self._check_tx(batch)
        return self._tx_from(batch)

    cdef uint32_t _forward_entry(self, Queue txq, PacketBatch batch) except? 0xFFFFFFFF:
        """forward: one forwarding step, for a loop that forwards without
        looking at the packets: receive into batch's free slots, send from
        its front on txq. Returns the count sent. What txq cannot take stays
        in batch and goes first next time, so a full tx ring holds packets
        back in this queue's ring, where the NIC drops (and counts) what
        finds no room."""
        self._usable(True)
        txq._usable(False)
        self._rx_into(batch)
        txq._check_tx(batch)
        return txq._tx_from(batch)

    def reclaim(self) -> None:
        """Free the buffers the device is done with, without sending (tx)."""
        self._usable(False)
        self._clean()

    def close(self) -> None:
        """Only after the device's DMA has stopped (the driver's close does
        this): every buffer the queue holds goes back to its pool, and the
        queue can no longer be used."""
        if not self.closed:
            self._release_buffers()
        self.closed = True
