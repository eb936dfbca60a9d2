# cython: language_level=3, binding=False, always_allow_keywords=False
"""Loops that run in C with the GIL released for a stretch, not for one
batch: a worker thread running one of them leaves the GIL to the others, so
workers on different queues run on different cores. A stretch ends at a
deadline, after a packet count, or when stop() is called (from another
thread, or a signal handler). The forwarder's steps are those of
Queue.forward; the replay's wait for each frame's departure time; the
measuring receiver counts the frames of one sender by their numbers."""
cimport cython
from libc.math cimport isfinite
from libc.stdint cimport UINT64_MAX, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free as c_free
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, TIMER_ABSTIME, clock_nanosleep, timespec

from .batch cimport PacketBatch, PoolRefs
from .mempool cimport Mempool, ixy_buf, ixy_buf_at, ixy_buf_capacity, ixy_buf_free_n, ixy_mempool, ixy_mempool_alloc
from .queue cimport Queue, queue_idle

from ..errors import InvalidRate, PacketTooLarge, QueueError

cdef extern from "ixy_stop.h" nogil:
    void ixy_stop_raise(int *flag)
    int ixy_stop_raised(const int *flag)
    int64_t ixy_now_ns()

cdef enum:
    CLOCK_EVERY = 64        # rounds between looks at the clock (a look: ~20 ns)
    SLEEP_MIN_NS = 200000       # a wait this long sleeps, the last SPIN_NS of it spinning (sleeps overshoot ~60 µs)
    SPIN_NS = 100000
    SLEEP_MAX_NS = 10000000     # and looks at stop() at least this often


cdef inline void _wait_until(int64_t target) noexcept nogil:
    """Sleep towards target (at most SLEEP_MAX_NS at a time), spin through the
    last SPIN_NS of it, running the idle hook (the sim models)."""
    cdef int64_t now = ixy_now_ns()
    cdef timespec ts
    cdef int64_t wake
    if target - now >= SLEEP_MIN_NS:
        wake = min(target - SPIN_NS, now + SLEEP_MAX_NS)
        ts.tv_sec = wake // 1000000000
        ts.tv_nsec = wake % 1000000000
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
    else:
        queue_idle()


cdef inline int64_t _deadline(double seconds):
    return ixy_now_ns() + <int64_t> (seconds * 1e9) if isfinite(seconds) else -1


cdef struct _Leg:
    uint32_t moved          # sent in the last step
    bint too_long           # a received packet the tx queue must refuse (with the GIL)


cdef inline void _step(Queue rxq, Queue txq, PacketBatch batch, PacketBatch out, ixy_mempool *copy_pool,
                       _Leg *leg) noexcept nogil:
    """Queue._forward_entry's step, with its tx check done here: a packet
    longer than txq takes stops the leg (too_long) before anything is sent.
    A copying leg (copy_pool not NULL) moves what it receives into buffers
    of copy_pool in `out` and sends from there; otherwise out is batch."""
    cdef uint32_t i, first = batch.count
    batch.count += rxq._rx(batch.bufs + batch.count, batch.capacity - batch.count)
    for i in range(first, batch.count):
        if batch.bufs[i].len > txq.tx_max_len:
            leg.too_long = True
            leg.moved = 0
            return
    if copy_pool != NULL:
        batch._copy_to(out, copy_pool)
    leg.moved = txq._tx(out.bufs, out.count)
    out._shift_out(leg.moved)


cdef inline ixy_mempool *_pool(Mempool pool) noexcept nogil:
    return NULL if pool is None else &pool.pool


cdef tuple _leg(tuple leg):
    """(rxq, txq, batch, out, copy pool) of a leg (rxq, txq, batch[, copy_pool]);
    its length checked by the caller."""
    cdef Queue rxq = leg[0]
    cdef Mempool pool = leg[3] if len(leg) == 4 else None
    cdef Mempool own
    if pool is None:
        return leg[0], leg[1], leg[2], leg[2], None
    for own in rxq.pools.pools:
        if ixy_buf_capacity(&own.pool) > ixy_buf_capacity(&pool.pool):
            raise PacketTooLarge(f"the copy pool's buffers hold {ixy_buf_capacity(&pool.pool)} bytes, the rx "
                                 f"queue's {ixy_buf_capacity(&own.pool)}", "give a pool of entry_size 2048 or more")
    return leg[0], leg[1], leg[2], PacketBatch(leg[2].capacity), pool


@cython.final
cdef list _union(list refs):
    """The pools of several PoolRefs, each once."""
    cdef PoolRefs r
    cdef list pools = []
    for r in refs:
        pools.extend(p for p in r.pools if p not in pools)
    return pools


cdef class _Loop:
    """What every loop has: its stop flag and its packet count."""
    cdef int stopping
    # sent (a receiver: its own frames received), all runs together (a watching thread may read it during a run)
    cdef readonly uint64_t packets

    def stop(self) -> None:
        """End the current run() (or the next one, at once): safe from any
        thread and from a signal handler."""
        ixy_stop_raise(&self.stopping)

    @property
    def stopped(self) -> bool:
        """stop() was called."""
        return ixy_stop_raised(&self.stopping) != 0


cdef class _SendLoop(_Loop):
    """A loop sending from a pool of its own on one tx queue."""
    cdef Queue txq
    cdef Mempool pool
    cdef PacketBatch batch

    def mempools(self) -> list:
        """As ForwardLoop.mempools: this loop's pool, and those of what its
        batch and tx queue hold."""
        pools = _union([self.batch.pools, self.txq.pools])
        return pools if self.pool in pools else [self.pool] + pools


@cython.final
cdef class ForwardLoop(_Loop):
    """One or two forwarding legs (rx queue -> tx queue, each with its own
    batch, as Queue.forward takes them: what the tx queue cannot take yet
    waits in the batch) stepped in turn by run().

    A leg (rxq, txq, batch, copy_pool) copies: for a tx device whose DMA
    cannot reach the rx buffers (errors.DmaSpaceMismatch), each packet is
    copied into a buffer of copy_pool (a pool of the tx device's) and sent
    from a second batch of the loop's; the received buffer goes back at
    once."""
    cdef Queue rx0, tx0, rx1, tx1
    cdef PacketBatch b0, b1
    cdef PacketBatch o0, o1             # what each leg sends from: its batch, or its copies
    cdef Mempool cp0, cp1               # a copying leg's pool, else None
    cdef int nlegs

    def __cinit__(self, legs):
        legs = [tuple(leg) for leg in legs]
        if not 1 <= len(legs) <= 2:
            raise QueueError(f"a ForwardLoop takes one or two (rx queue, tx queue, batch) legs, not {len(legs)}",
                             "give each worker its own loop: ForwardLoop([(rxq, txq, batch)])")
        for leg in legs:
            if len(leg) not in (3, 4):
                raise QueueError(f"a forwarding leg is (rx queue, tx queue, batch[, copy pool]), not {len(leg)} items",
                                 "ForwardLoop([(rxq, txq, batch)])")
        self.rx0, self.tx0, self.b0, self.o0, self.cp0 = _leg(legs[0])
        self.nlegs = len(legs)
        if self.nlegs == 2:
            self.rx1, self.tx1, self.b1, self.o1, self.cp1 = _leg(legs[1])
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
        refs = [self.rx0.pools, self.b0.pools, self.o0.pools, self.tx0.pools]
        if self.nlegs == 2:
            refs += [self.rx1.pools, self.b1.pools, self.o1.pools, self.tx1.pools]
        pools = _union(refs)
        return pools + [p for p in (self.cp0, self.cp1) if p is not None and p not in pools]

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
        self.tx0._check_tx(self.o0)
        if self.nlegs == 2:
            self.tx1._check_tx(self.b1)
            self.tx1._check_tx(self.o1)
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
        if self.cp0 is not None:
            self.o0.pools.add(self.cp0)
        self.tx0.pools.merge(self.o0.pools)
        if self.nlegs == 2:
            self.b1.pools.merge(self.rx1.pools)
            if self.cp1 is not None:
                self.o1.pools.add(self.cp1)
            self.tx1.pools.merge(self.o1.pools)
        return 0

    cdef uint64_t _run(self, int64_t deadline, uint64_t count, _Leg *leg0, _Leg *leg1) noexcept nogil:
        cdef uint64_t done = 0, rounds = 0
        while not ixy_stop_raised(&self.stopping):
            _step(self.rx0, self.tx0, self.b0, self.o0, _pool(self.cp0), leg0)
            if self.nlegs == 2:
                _step(self.rx1, self.tx1, self.b1, self.o1, _pool(self.cp1), leg1)
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
cdef class PktgenLoop(_SendLoop):
    """The packet generator on one tx queue, as apps.pktgen runs it: when
    the batch is empty, fill it from the pool (whose buffers hold the
    frames: Mempool.fill), write each packet's 64-bit sequence number
    (little-endian) at seq_offset, send. The pool is this loop's alone (a
    pool serves one thread).

    rate_pps 0 sends as fast as the queue takes the packets. A rate paces
    each frame: frame k is handed to the queue no sooner than origin_ns + k
    / rate_pps (origin_ns: the first run's start), each round taking what
    is due by then (a batch at most): one frame at a time while the loop is
    faster than the rate, and a stretch of lateness (a preempted thread, a
    full ring, the pause between two runs) caught up at once, so the rate
    holds over any window longer than the lateness."""
    cdef uint32_t seq_offset
    cdef readonly uint64_t seq        # the next sequence number
    cdef double period_ns             # between two frames' due times (paced; 0: not paced)
    cdef readonly int64_t origin_ns   # when frame 0 was due (paced; 0 before the first run)
    cdef uint64_t scheduled           # frames taken since origin_ns: frame `scheduled` is the next to be due

    def __cinit__(self, Queue txq not None, Mempool pool not None, PacketBatch batch not None, uint32_t seq_offset,
                  uint64_t first_seq=0, double rate_pps=0.0):
        txq._usable(False)
        if not (isfinite(rate_pps) and rate_pps >= 0):
            raise InvalidRate(f"rate {rate_pps} packets a second: give a finite rate, or 0 for as fast as the "
                              f"queue takes them", "apps.pktgen without a rate, or `ixypy pktgen` without --rate, "
                              "sends as fast as the queue takes the packets")
        self.txq, self.pool, self.batch = txq, pool, batch
        self.seq_offset = seq_offset
        self.seq = first_seq
        self.period_ns = 1e9 / rate_pps if rate_pps else 0.0

    @property
    def rate_pps(self) -> float:
        """The pace in frames a second (0.0: as fast as the queue takes them)."""
        return 1e9 / self.period_ns if self.period_ns else 0.0

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
        if self.period_ns and not self.origin_ns:
            self.origin_ns = ixy_now_ns()
        self.txq.busy = True
        try:
            with nogil:
                if self.period_ns:
                    done = self._run_paced(deadline, count, &short)
                else:
                    done = self._run(deadline, count, &short)
        finally:
            self.txq.busy = False
        if short:
            raise PacketTooLarge(f"a {short - 1}-byte packet has no room for a sequence number at {self.seq_offset}",
                                 f"fill the pool with frames of at least {self.seq_offset + 8} bytes")
        return done

    cdef inline bint _fill(self, uint64_t want, uint32_t *short) noexcept nogil:
        """Up to `want` fresh packets into the empty batch, each with its
        sequence number; False (*short: the length + 1) at a packet too
        short for one."""
        cdef uint32_t i
        self.batch.count = ixy_mempool_alloc(&self.pool.pool, self.batch.bufs, <uint32_t> want)
        for i in range(self.batch.count):
            if self.seq_offset + 8 > self.batch.bufs[i].len:
                short[0] = self.batch.bufs[i].len + 1
                return False
            memcpy(self.batch.bufs[i].data + self.seq_offset, &self.seq, 8)
            self.seq += 1
        return True

    cdef inline uint32_t _send(self) noexcept nogil:
        cdef uint32_t sent = self.txq._tx(self.batch.bufs, self.batch.count)
        self.batch._shift_out(sent)
        self.packets += sent
        if sent == 0:
            queue_idle()
        return sent

    cdef uint64_t _run(self, int64_t deadline, uint64_t count, uint32_t *short) noexcept nogil:
        cdef uint64_t done = 0, rounds = 0, want
        while not ixy_stop_raised(&self.stopping):
            if self.batch.count == 0:
                want = self.batch.capacity if count == 0 else min(<uint64_t> self.batch.capacity, count - done)
                if not self._fill(want, short):
                    return done
            done += self._send()
            if count and done >= count:
                break
            rounds += 1
            if deadline >= 0 and rounds % CLOCK_EVERY == 0 and ixy_now_ns() >= deadline:
                break
        return done

    cdef uint64_t _run_paced(self, int64_t deadline, uint64_t count, uint32_t *short) noexcept nogil:
        cdef uint64_t done = 0, due, want
        cdef int64_t now, next_due
        while not ixy_stop_raised(&self.stopping):
            now = ixy_now_ns()
            if deadline >= 0 and now >= deadline:
                break
            if self.batch.count == 0:
                due = <uint64_t> ((now - self.origin_ns) / self.period_ns) + 1     # frames 0 .. due-1 are due
                if due <= self.scheduled:
                    next_due = self.origin_ns + <int64_t> (self.scheduled * self.period_ns)
                    _wait_until(next_due if deadline < 0 else min(next_due, deadline))
                    continue
                want = min(due - self.scheduled, <uint64_t> self.batch.capacity)
                if count:
                    want = min(want, count - done)
                if not self._fill(want, short):
                    return done
                self.scheduled += self.batch.count
            done += self._send()
            if count and done >= count:
                break
        return done


cdef extern from "ixy_hist.h" nogil:
    struct ixy_hist:
        uint64_t count
        uint64_t sum
        uint64_t max
    void ixy_hist_record(ixy_hist *h, uint64_t v)
    uint64_t ixy_hist_quantile(const ixy_hist *h, double q)

cdef struct _File:
    uint64_t start, end         # its frames' indices in a pass
    uint64_t frames, bytes, passes
    int64_t first_sent          # when its first frame left in the current pass
    int64_t span_done, span     # first to last departure: earlier passes together, the current one
    int64_t sched_done, sched   # the same spans in the schedule
    ixy_hist late               # departures after their time (ns), as the send call saw them


@cython.final
cdef class ReplayLoop(_SendLoop):
    """Frames sent in their order at their departure times, pass after pass
    (tcpreplay's loop), on one tx queue, with the GIL released.

    due[i] is when frame i leaves, in ns after the pass starts (non-decreasing:
    0 for all of them sends as fast as the queue takes them, in order); the
    next pass starts when the last frame of this one is due. Frames are
    written once into the pool: buffer j holds frame j % len(frames), so the
    pool (this loop's alone, fresh: all buffers free, a multiple of the frame
    count) gives the frames in their order by taking buffers in index order.
    Its free stack is then only a count of the buffers back from the NIC:
    a tx ring returns buffers in the order it sent them, so the next ones in
    index order are free when the count says so. The ring returns them in
    groups (up to 32 on ixgbe and igb): a pool smaller than a group would
    wait for good (apps.replay's has REPLAY_MIN_BUFS buffers or more).

    file_ends: where each file's frames end (frame indices in a pass, the
    last one len(frames)); each file keeps its own statistics (file_stats)."""
    cdef int64_t *due
    cdef uint64_t nframes
    cdef uint64_t passes          # 0: forever
    cdef _File *files
    cdef uint32_t nfiles
    cdef bint started             # the first run started the first pass
    cdef uint64_t taken           # frames taken into the batch, all passes (the next one's position)
    cdef uint64_t take_i          # the next frame to take: its index in a pass, its buffer,
    cdef uint32_t take_buf
    cdef int64_t take_pass        # and when its pass starts
    cdef uint64_t send_i          # the next frame to send: its index in a pass, its file,
    cdef uint32_t send_file
    cdef int64_t send_pass        # and when its pass starts

    def __cinit__(self, Queue txq not None, Mempool pool not None, PacketBatch batch not None, frames,
                  const int64_t[::1] due not None, file_ends, uint64_t passes=1):
        frames = list(frames)
        ends = list(file_ends)
        txq._usable(False)
        if (not frames or len(due) != len(frames) or not ends or ends[len(ends) - 1] != len(frames)
                or any(a >= b for a, b in zip([0] + ends, ends))):
            raise ValueError(f"{len(frames)} frames, {len(due)} departure times, files ending at {ends}: "
                             f"a time per frame, each file's end after the last")
        if pool.free_count != pool.num_bufs or pool.num_bufs % len(frames):
            raise ValueError(f"a replay needs a fresh pool of a multiple of its {len(frames)} frames, "
                             f"not {pool.free_count} free of {pool.num_bufs} buffers")
        self.txq, self.pool, self.batch = txq, pool, batch
        self.nframes = len(frames)
        self.passes = passes
        self.due = <int64_t *> calloc(self.nframes, sizeof(int64_t))
        self.files = <_File *> calloc(len(ends), sizeof(_File))
        if self.due == NULL or self.files == NULL:
            raise MemoryError()
        memcpy(self.due, &due[0], self.nframes * sizeof(int64_t))
        cdef uint64_t i
        for i in range(1, self.nframes):
            if self.due[i] < self.due[i - 1]:
                raise ValueError(f"departure {i} ({self.due[i]} ns) before departure {i - 1} ({self.due[i - 1]} ns)")
        self.nfiles = len(ends)
        for i in range(self.nfiles):
            self.files[i].start = 0 if i == 0 else ends[i - 1]
            self.files[i].end = ends[i]
        pool.fill(frames)

    def __dealloc__(self):
        c_free(self.due)
        c_free(self.files)

    @property
    def finished(self) -> bool:
        """Every pass sent (never with passes=0)."""
        return self.passes != 0 and self.packets == self.passes * self.nframes

    def run(self, double seconds=float("inf"), uint64_t count=0) -> int:
        """Send what is due for `seconds`, or until `count` packets (0: no
        limit), or stop(), or the last pass is sent, with the GIL released
        throughout. The first run starts the first pass. Returns the packets
        sent in this run (`packets` is the total)."""
        cdef int64_t deadline = _deadline(seconds)
        cdef uint64_t done = 0
        self.txq._usable(False)
        self.batch.pools.add(self.pool)
        self.txq.pools.merge(self.batch.pools)
        if not self.started:
            self.take_pass = self.send_pass = ixy_now_ns()
            self.started = True
        self.txq.busy = True
        try:
            with nogil:
                done = self._run(deadline, count)
        finally:
            self.txq.busy = False
        return done

    cdef uint64_t _run(self, int64_t deadline, uint64_t count) noexcept nogil:
        cdef uint64_t done = 0
        cdef uint32_t sent
        cdef int64_t now, target
        while not ixy_stop_raised(&self.stopping):
            now = ixy_now_ns()
            if deadline >= 0 and now >= deadline:
                break
            self._take(now, count - done - self.batch.count if count else UINT64_MAX)
            if self.batch.count:
                now = ixy_now_ns()
                sent = self.txq._tx(self.batch.bufs, self.batch.count)
                self._sent(sent, now)
                self.batch._shift_out(sent)
                done += sent
                self.packets += sent
                if count and done >= count:
                    break
                if sent == 0:
                    queue_idle()
            elif self.passes and self.taken == self.passes * self.nframes:
                break
            elif self.pool.pool.free_count == 0:
                self.txq._clean()
                queue_idle()
            else:
                target = self.take_pass + self.due[self.take_i]
                _wait_until(target if deadline < 0 else min(target, deadline))
        return done

    cdef void _take(self, int64_t now, uint64_t limit) noexcept nogil:
        """Into the batch's free slots: the frames due by now, in order."""
        cdef uint64_t end = self.passes * self.nframes
        cdef ixy_buf *b
        while (self.batch.count < self.batch.capacity and limit and self.pool.pool.free_count
               and (self.passes == 0 or self.taken < end) and self.take_pass + self.due[self.take_i] <= now):
            b = ixy_buf_at(&self.pool.pool, self.take_buf)
            b.is_free = 0
            self.batch.bufs[self.batch.count] = b
            self.batch.count += 1
            self.pool.pool.free_count -= 1
            self.taken += 1
            limit -= 1
            self.take_buf += 1
            if self.take_buf == self.pool.pool.num_bufs:
                self.take_buf = 0
            self.take_i += 1
            if self.take_i == self.nframes:
                self.take_i = 0
                self.take_pass += self.due[self.nframes - 1]

    cdef void _sent(self, uint32_t n, int64_t now) noexcept nogil:
        """The statistics of the first n frames of the batch, sent at now."""
        cdef uint32_t k
        cdef uint64_t i
        cdef _File *f
        for k in range(n):
            i = self.send_i
            f = &self.files[self.send_file]
            if i == f.start:
                f.span_done += f.span
                f.sched_done += f.sched
                f.first_sent = now
            f.span = now - f.first_sent
            f.sched = self.due[i] - self.due[f.start]
            ixy_hist_record(&f.late, <uint64_t> (now - self.send_pass - self.due[i]))
            f.frames += 1
            f.bytes += self.batch.bufs[k].len
            self.send_i += 1
            if self.send_i == f.end:
                f.passes += 1
                self.send_file += 1
            if self.send_i == self.nframes:
                self.send_i = 0
                self.send_file = 0
                self.send_pass += self.due[self.nframes - 1]

    def file_stats(self, uint32_t file) -> dict:
        """What file `file` sent: frames, bytes, whole passes; first to last
        departure of each pass, summed (`seconds`), against the same spans
        in the schedule (`schedule_seconds`); how late its frames left, in
        ns (mean, p50, p99, max; quantiles within 3.2 %)."""
        if file >= self.nfiles:
            raise IndexError(f"file {file} of {self.nfiles}")
        cdef _File *f = &self.files[file]
        return {"frames": f.frames, "bytes": f.bytes, "passes": f.passes,
                "seconds": (f.span_done + f.span) / 1e9, "schedule_seconds": (f.sched_done + f.sched) / 1e9,
                "late_mean_ns": f.late.sum // f.late.count if f.late.count else 0,
                "late_p50_ns": ixy_hist_quantile(&f.late, 0.5), "late_p99_ns": ixy_hist_quantile(&f.late, 0.99),
                "late_max_ns": f.late.max}


@cython.final
cdef class SeqRxLoop(_Loop):
    """A measuring receiver on one rx queue (ixypy.ndr): it frees what
    arrives and counts the frames whose 64-bit sequence number
    (little-endian, as PktgenLoop and apps.pktgen write it) at seq_offset
    lies in [first_seq, first_seq + window): `packets`; of those, `late`
    came after a higher number (reordered or duplicated); `other` counts
    the rest (another sender's frames, an earlier trial's stragglers, frames
    too short to carry a number).

    max_pps (0: none) makes it a slow receiver, for tests: it takes at most
    that many frames a second, a batch at a time, leaving the rest in the
    ring, where the NIC drops what finds no room. It saves up no time while
    the ring is empty, and catches up after waking late."""
    cdef Queue rxq
    cdef PacketBatch batch
    cdef uint32_t seq_offset
    cdef uint64_t first_seq, window, next_seq
    cdef double max_pps
    cdef readonly uint64_t late
    cdef readonly uint64_t other

    def __cinit__(self, Queue rxq not None, PacketBatch batch not None, uint32_t seq_offset, uint64_t first_seq,
                  uint64_t window, double max_pps=0.0):
        rxq._usable(True)
        if batch.count:
            raise QueueError(f"a receiver's batch must be empty, not hold {batch.count} packets",
                             "free it first (PacketBatch.free)")
        self.rxq, self.batch = rxq, batch
        self.seq_offset = seq_offset
        self.first_seq, self.window, self.next_seq = first_seq, window, first_seq
        self.max_pps = max_pps

    def mempools(self) -> list:
        """The rx queue's pool, where the buffers received go back."""
        return _union([self.rxq.pools])

    def run(self, double seconds=float("inf")) -> int:
        """Receive for `seconds`, or until stop(), with the GIL released
        throughout. Returns the frames received in this run, ours or not."""
        cdef int64_t deadline = _deadline(seconds)
        cdef uint64_t done = 0
        self.rxq._usable(True)
        self.rxq.busy = True
        try:
            with nogil:
                done = self._run(deadline)
        finally:
            self.rxq.busy = False
        return done

    cdef uint64_t _run(self, int64_t deadline) noexcept nogil:
        cdef uint64_t done = 0, rounds = 0
        cdef uint32_t got
        cdef int64_t due = ixy_now_ns()      # when the slow receiver may take its next batch
        while not ixy_stop_raised(&self.stopping):
            if self.max_pps > 0.0 and ixy_now_ns() < due:
                _wait_until(due if deadline < 0 else min(due, deadline))
            else:
                got = self.rxq._rx(self.batch.bufs, self.batch.capacity)
                if got:
                    self._count(got)
                    ixy_buf_free_n(self.batch.bufs, got)
                    done += got
                    due += <int64_t> (got * 1e9 / self.max_pps) if self.max_pps > 0.0 else 0
                else:
                    due = ixy_now_ns()      # no credit for idle time; a late wake-up catches up
                    queue_idle()
            rounds += 1
            if deadline >= 0 and rounds % CLOCK_EVERY == 0 and ixy_now_ns() >= deadline:
                break
        return done

    cdef void _count(self, uint32_t n) noexcept nogil:
        cdef uint32_t i
        cdef uint64_t seq
        for i in range(n):
            if self.seq_offset + 8 > self.batch.bufs[i].len:
                self.other += 1
                continue
            memcpy(&seq, self.batch.bufs[i].data + self.seq_offset, 8)
            if seq - self.first_seq >= self.window:
                self.other += 1
                continue
            self.packets += 1
            if seq < self.next_seq:
                self.late += 1
            else:
                self.next_seq = seq + 1
