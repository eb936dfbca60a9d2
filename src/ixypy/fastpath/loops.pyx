# cython: language_level=3, binding=False, always_allow_keywords=False
"""Loops that run in C with the GIL released for a stretch, not for one
batch: a worker thread running one of them leaves the GIL to the others, so
workers on different queues run on different cores. A stretch ends at a
deadline, after a packet count, or when stop() is called (from another
thread, or a signal handler). The steps are those of Queue.forward."""
cimport cython
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint32_t, uint64_t

from .batch cimport PacketBatch
from .queue cimport Queue, queue_idle

from ..errors import QueueError

cdef extern from "ixy_stop.h" nogil:
    void ixy_stop_raise(int *flag)
    int ixy_stop_raised(const int *flag)
    int64_t ixy_now_ns()

cdef enum:
    CLOCK_EVERY = 64        # rounds between looks at the clock (a look: ~20 ns)


cdef struct _Leg:
    uint32_t moved          # sent in the last step
    bint too_long           # a received packet the tx queue must refuse (with the GIL)


cdef inline void _step(Queue rxq, Queue txq, PacketBatch batch, _Leg *leg) noexcept nogil:
    """Queue._forward_entry's step, with its tx check done here: a packet
    longer than txq takes stops the leg (too_long) before anything is sent."""
    cdef uint32_t i, first = batch.count
    batch.count += rxq._rx(batch.bufs + batch.count, batch.capacity - batch.count)
    for i in range(first, batch.count):
        if batch.bufs[i].len > txq.tx_max_len:
            leg.too_long = True
            leg.moved = 0
            return
    leg.moved = txq._tx(batch.bufs, batch.count)
    batch._shift_out(leg.moved)


@cython.final
cdef class ForwardLoop:
    """One or two forwarding legs (rx queue -> tx queue, each with its own
    batch, as Queue.forward takes them: what the tx queue cannot take yet
    waits in the batch) stepped in turn by run()."""
    cdef Queue rx0, tx0, rx1, tx1
    cdef PacketBatch b0, b1
    cdef int nlegs
    cdef int stopping
    cdef readonly uint64_t forwarded

    def __cinit__(self, legs):
        legs = list(legs)
        if not 1 <= len(legs) <= 2:
            raise QueueError(f"a ForwardLoop takes one or two (rx queue, tx queue, batch) legs, not {len(legs)}",
                             "give each worker its own loop: ForwardLoop([(rxq, txq, batch)])")
        self.rx0, self.tx0, self.b0 = legs[0]
        self.nlegs = len(legs)
        if self.nlegs == 2:
            self.rx1, self.tx1, self.b1 = legs[1]
            if self.b1 is self.b0:
                raise QueueError("the two legs share one batch", "give each leg a PacketBatch of its own")
        self._usable()

    cdef int _usable(self) except -1:
        self.rx0._usable(True)
        self.tx0._usable(False)
        if self.nlegs == 2:
            self.rx1._usable(True)
            self.tx1._usable(False)
        return 0

    def stop(self) -> None:
        """End the current run() (or the next one, at once): safe from any
        thread and from a signal handler."""
        ixy_stop_raise(&self.stopping)

    @property
    def stopped(self) -> bool:
        """stop() was called."""
        return ixy_stop_raised(&self.stopping) != 0

    def run(self, double seconds=float("inf"), uint64_t count=0) -> int:
        """Forward for `seconds`, or until `count` packets (0: no limit; the
        last round may go past it by a batch a leg), or stop(), with the
        GIL released throughout. Returns the packets sent in this run
        (`forwarded` is the total). A packet too long for its tx queue
        raises PacketTooLarge, as Queue.forward does, and stays in its batch:
        one the batch held before the run, at once; one received during it
        (no driver today receives more than virtio sends), at the end of
        the stretch."""
        cdef int64_t deadline = ixy_now_ns() + <int64_t> (seconds * 1e9) if isfinite(seconds) else -1
        cdef uint64_t done = 0
        cdef _Leg leg0, leg1
        leg0.too_long = leg1.too_long = False
        leg1.moved = 0
        self._usable()
        self.tx0._check_tx(self.b0)         # what the batches held before this run
        if self.nlegs == 2:
            self.tx1._check_tx(self.b1)
        self._merge_pools()
        with nogil:
            done = self._run(deadline, count, &leg0, &leg1)
        self.forwarded += done
        if leg0.too_long:
            self.tx0._check_tx(self.b0)
        if leg1.too_long:
            self.tx1._check_tx(self.b1)
        return done

    cdef int _merge_pools(self) except -1:
        """The pool sets Queue.forward merges per step, merged once: during
        a run, the batches hold only what their rx queues' pools give."""
        self.b0.pools.merge(self.rx0.pools)
        self.tx0.pools.merge(self.b0.pools)
        if self.nlegs == 2:
            self.b1.pools.merge(self.rx1.pools)
            self.tx1.pools.merge(self.b1.pools)
        return 0

    cdef uint64_t _run(self, int64_t deadline, uint64_t count, _Leg *leg0, _Leg *leg1) noexcept nogil:
        cdef uint64_t done = 0, rounds = 0
        while not ixy_stop_raised(&self.stopping):
            _step(self.rx0, self.tx0, self.b0, leg0)
            if self.nlegs == 2:
                _step(self.rx1, self.tx1, self.b1, leg1)
            if leg0.too_long or leg1.too_long:
                break
            done += leg0.moved + leg1.moved
            if count and done >= count:
                break
            if leg0.moved + leg1.moved == 0:
                queue_idle()
            rounds += 1
            if deadline >= 0 and rounds % CLOCK_EVERY == 0 and ixy_now_ns() >= deadline:
                break
        return done
