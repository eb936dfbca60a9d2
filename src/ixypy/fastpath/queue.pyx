# cython: language_level=3, binding=False, always_allow_keywords=False
"""The queue base of every driver: rx, tx, forward, reclaim and close are
written once here on top of the driver's per-batch C functions."""
cimport cython
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint32_t

from .batch cimport PacketBatch, PoolRefs
from .mempool cimport ixy_buf
from .poll_hook cimport ixy_poll_hook

from ..errors import QueueError

# What rx, tx and forward run when a call finds no work: ixypy.sim sets the
# device models' engine here, so a driver that waits on a model helps it
# along (csrc/sim/sim_worker.h, "Help") instead of only spinning.
cdef ixy_poll_hook *_idle_hook = NULL
cdef object _idle_hook_capsule = None


def set_idle_hook(hook) -> None:
    """hook: a PyCapsule "ixypy.poll_hook" that every queue's rx, tx and
    forward run when they find no work, or None for nothing."""
    global _idle_hook, _idle_hook_capsule
    _idle_hook = NULL if hook is None else <ixy_poll_hook *> PyCapsule_GetPointer(hook, b"ixypy.poll_hook")
    _idle_hook_capsule = hook


cdef inline void _idle() noexcept nogil:
    if _idle_hook != NULL:
        _idle_hook.poll(_idle_hook.ctx)


cdef void queue_idle() noexcept nogil:
    _idle()


@cython.no_gc_clear
cdef class Queue:
    """An rx or tx queue of some driver. A driver implements `_rx` (an rx
    queue) or `_tx` and `_clean` (a tx queue) on C arrays of buffers, one
    batch per call and without the GIL; rx, tx and forward are written
    once, here, on top of them (and the C-driven benchmark loops, in
    ixypy.fastpath.bench)."""

    def __cinit__(self, *args, **kwargs):
        self.pools = PoolRefs()
        self.tx_max_len = 0xFFFFFFFF

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
        if self.busy:
            raise QueueError("a loop is running on this queue in another thread",
                             "give each thread queues of its own (ixypy.open(addr, rx_queues=N, tx_queues=N))")
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
        cdef uint32_t got = self._rx_into(batch)
        if not got:
            _idle()
        return got

    cdef uint32_t _tx_entry(self, PacketBatch batch) except? 0xFFFFFFFF:
        """tx: send from the front of batch; sent buffers leave the batch (the
        driver frees them once the NIC is done). Returns the count sent."""
        self._usable(False)
        self._check_tx(batch)
        cdef uint32_t sent = self._tx_from(batch)
        if not sent and batch.count:
            _idle()
        return sent

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
        cdef uint32_t sent = txq._tx_from(batch)
        if not sent:
            _idle()
        return sent

    def set_dma_space(self, space, str device not None) -> None:
        """A tx queue: its device reads DMA addresses as `space` (a
        memory.DmaSpace); a batch holding buffers of a pool whose addresses
        are not valid there is refused (DmaSpaceMismatch) before the device
        sees it. The check runs once per new pool, not per batch."""
        self.pools.dma_space = space
        self.pools.reader = device

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
