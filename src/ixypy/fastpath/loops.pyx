# cython: language_level=3, binding=False, always_allow_keywords=False
"""Loops that run in C with the GIL released for a stretch, not for one
batch: a worker thread running one of them leaves the GIL to the others, so
workers on different queues run on different cores. A stretch ends at a
deadline, after a packet count, or when stop() is called (from another
thread, or a signal handler). The steps are those of Queue.forward."""
cimport cython
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint32_t, uint64_t

from libc.string cimport memcpy

from .batch cimport PacketBatch, PoolRefs
from .mempool cimport Mempool, ixy_mempool_alloc
from .queue cimport Queue, queue_idle

from ..errors import PacketTooLarge, QueueError

cdef extern from "ixy_stop.h" nogil:
    void ixy_stop_raise(int *flag)
    int ixy_stop_raised(const int *flag)
    int64_t ixy_now_ns()

cdef enum:
    CLOCK_EVERY = 64        # rounds between looks at the clock (a look: ~20 ns)


cdef inline int64_t _deadline(double seconds):
    return ixy_now_ns() + <int64_t> (seconds * 1e9) if isfinite(seconds) else -1


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
cdef list _union(list refs):
    """The pools of several PoolRefs, each once."""
    cdef PoolRefs r
    cdef list pools = []
    for r in refs:
        pools.extend(p for p in r.pools if p not in pools)
    return pools


cdef class ForwardLoop:
    """One or two forwarding legs (rx queue -> tx queue, each with its own
    batch, as Queue.forward takes them: what the tx queue cannot take yet
    waits in the batch) stepped in turn by run()."""
    cdef Queue rx0, tx0, rx1, tx1
    cdef PacketBatch b0, b1
    cdef int nlegs
    cdef int stopping
    cdef readonly uint64_t packets    # sent, all runs together (a watching thread may read it during a run)

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

    def mempools(self) -> list:
        """The pools a run takes buffers from or gives them back to: its rx
        queues', and those of what its batches and tx queues hold. A pool
        serves one thread: apps.run_loops refuses loops that share one."""
        refs = [self.rx0.pools, self.b0.pools, self.tx0.pools]
        if self.nlegs == 2:
            refs += [self.rx1.pools, self.b1.pools, self.tx1.pools]
        return _union(refs)

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
        (`packets` is the total). A packet too long for its tx queue
        raises PacketTooLarge, as Queue.forward does, and stays in its batch:
        one the batch held before the run, at once; one received during it
        (no driver today receives more than virtio sends), at the end of
        the stretch."""
        cdef int64_t deadline = _deadline(seconds)
        cdef uint64_t done = 0
        cdef _Leg leg0, leg1
        leg0.too_long = leg1.too_long = False
        leg1.moved = 0
        self._usable()
        self.tx0._check_tx(self.b0)         # what the batches held before this run
        if self.nlegs == 2:
            self.tx1._check_tx(self.b1)
        self._merge_pools()
        self._claim(True)
        try:
            with nogil:
                done = self._run(deadline, count, &leg0, &leg1)
        finally:
            self._claim(False)
        if leg0.too_long:
            self.tx0._check_tx(self.b0)
        if leg1.too_long:
            self.tx1._check_tx(self.b1)
        return done

    cdef void _claim(self, bint busy) noexcept:
        """Mark the queues in use by this run (or no longer): another
        thread's call on them is refused meanwhile (Queue._usable)."""
        self.rx0.busy = self.tx0.busy = busy
        if self.nlegs == 2:
            self.rx1.busy = self.tx1.busy = busy

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
            self.packets += leg0.moved + leg1.moved
            if count and done >= count:
                break
            if leg0.moved + leg1.moved == 0:
                queue_idle()
            rounds += 1
            if deadline >= 0 and rounds % CLOCK_EVERY == 0 and ixy_now_ns() >= deadline:
                break
        return done


@cython.final
cdef class PktgenLoop:
    """The packet generator on one tx queue, as apps.pktgen runs it without
    a rate: when the batch is empty, fill it from the pool (whose buffers
    hold the frames: Mempool.fill), write each packet's 64-bit sequence
    number (little-endian) at seq_offset, send. The pool is this loop's
    alone (a pool serves one thread)."""
    cdef Queue txq
    cdef Mempool pool
    cdef PacketBatch batch
    cdef uint32_t seq_offset
    cdef int stopping
    cdef readonly uint64_t packets    # sent, all runs together (a watching thread may read it during a run)
    cdef readonly uint64_t seq        # the next sequence number

    def __cinit__(self, Queue txq not None, Mempool pool not None, PacketBatch batch not None, uint32_t seq_offset,
                  uint64_t first_seq=0):
        txq._usable(False)
        self.txq, self.pool, self.batch = txq, pool, batch
        self.seq_offset = seq_offset
        self.seq = first_seq

    def mempools(self) -> list:
        """As ForwardLoop.mempools: this loop's pool, and those of what its
        batch and tx queue hold."""
        pools = _union([self.batch.pools, self.txq.pools])
        return pools if self.pool in pools else [self.pool] + pools

    def stop(self) -> None:
        """As ForwardLoop.stop."""
        ixy_stop_raise(&self.stopping)

    @property
    def stopped(self) -> bool:
        return ixy_stop_raised(&self.stopping) != 0

    def run(self, double seconds=float("inf"), uint64_t count=0) -> int:
        """Send for `seconds`, or until `count` packets (0: no limit; with a
        count, the last batch is cut to it), or stop(), with the GIL
        released throughout. Returns the packets sent in this run
        (`packets` is the total). A buffer too short for its sequence number raises
        PacketTooLarge before it is sent."""
        cdef int64_t deadline = _deadline(seconds)
        cdef uint64_t done = 0
        cdef uint32_t short = 0
        self.txq._usable(False)
        self.batch.pools.add(self.pool)
        self.txq.pools.merge(self.batch.pools)
        self.txq.busy = True
        try:
            with nogil:
                done = self._run(deadline, count, &short)
        finally:
            self.txq.busy = False
        if short:
            raise PacketTooLarge(f"a {short - 1}-byte packet has no room for a sequence number at {self.seq_offset}",
                                 f"fill the pool with frames of at least {self.seq_offset + 8} bytes")
        return done

    cdef uint64_t _run(self, int64_t deadline, uint64_t count, uint32_t *short) noexcept nogil:
        cdef uint64_t done = 0, rounds = 0, want
        cdef uint32_t sent, i
        while not ixy_stop_raised(&self.stopping):
            if self.batch.count == 0:
                want = self.batch.capacity if count == 0 else min(<uint64_t> self.batch.capacity, count - done)
                self.batch.count = ixy_mempool_alloc(&self.pool.pool, self.batch.bufs, <uint32_t> want)
                for i in range(self.batch.count):
                    if self.seq_offset + 8 > self.batch.bufs[i].len:
                        short[0] = self.batch.bufs[i].len + 1
                        return done
                    memcpy(self.batch.bufs[i].data + self.seq_offset, &self.seq, 8)
                    self.seq += 1
            sent = self.txq._tx(self.batch.bufs, self.batch.count)
            self.batch._shift_out(sent)
            done += sent
            self.packets += sent
            if count and done >= count:
                break
            if sent == 0:
                queue_idle()
            rounds += 1
            if deadline >= 0 and rounds % CLOCK_EVERY == 0 and ixy_now_ns() >= deadline:
                break
        return done
