# cython: language_level=3, binding=False, always_allow_keywords=False
"""The C-driven reference loops of the benchmarks (benchmarks/): the same
per-batch functions of any driver's queues as the Python entry points,
called in a C loop with no Python between batches (bench_fwd_ixy: ixy C's
forwarder, app/ixy-fwd.c, written with them); and `measured`, the region
callgrind counts. Not used by the drivers or the apps."""
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid

from .batch cimport PacketBatch
from .mempool cimport Mempool, ixy_buf, ixy_buf_capacity, ixy_buf_free_n, ixy_mempool_alloc
from .queue cimport Queue
from .regs cimport ixy_cpu_relax
from .poll_hook cimport ixy_poll_hook

from ..errors import BatchError, PacketTooLarge


cdef extern from "ixy_measure.h":
    object ixy_measured_region(object fn)


def measured(fn):
    """Call fn() inside ixy_measured_region, a C function that callgrind can
    be told to count alone (--toggle-collect=ixy_measured_region): the
    instruction-count benchmarks measure exactly the loop fn runs."""
    return ixy_measured_region(fn)


cdef ixy_poll_hook _NO_HOOK


cdef const ixy_poll_hook *_poll_hook(object hook) except NULL:
    """The hook a C-driven loop calls when it makes no progress (a PyCapsule
    "ixypy.poll_hook" from ixypy.sim), or one that does nothing."""
    if hook is None:
        return &_NO_HOOK
    if not PyCapsule_IsValid(hook, b"ixypy.poll_hook"):
        raise TypeError("poll_hook must be a PyCapsule named 'ixypy.poll_hook'")
    return <const ixy_poll_hook *> PyCapsule_GetPointer(hook, b"ixypy.poll_hook")


# pause instructions a C-driven loop spins after a step that moved less than
# a full batch, on a real (threaded) device: about what the Python-driven
# loop's own work takes between two calls. Polling again at once made the
# C-driven rx half as fast as the Python-driven one against the model's
# thread (36 vs 73 Mpps at batch 32): the poller and the device fought over
# the ring's cache lines. With the back-off: 95 Mpps.
cdef enum:
    BACKOFF_PAUSES = 100


cdef inline void _wait(const ixy_poll_hook *hook, uint32_t moved, uint32_t full) noexcept nogil:
    """After a step of a C-driven loop moved `moved` of at most `full`
    packets. Deterministic mode (a poll hook): the model's pass when nothing
    moved. A real device: a short back-off when the batch was not full."""
    cdef int i
    if hook.poll != NULL:
        if moved == 0:
            hook.poll(hook.ctx)
    elif moved < full:
        for i in range(BACKOFF_PAUSES):
            ixy_cpu_relax()


def bench_tx(Queue txq not None, Mempool pool not None, uint32_t batch_size, uint64_t packets,
             uint32_t seq_offset=42, object poll_hook=None) -> int:
    """The pktgen loop on txq: when the batch is empty, allocate a full one
    and stamp sequence numbers; send; until `packets` were sent. Returns the
    count sent (the last batch may overshoot)."""
    cdef PacketBatch batch = PacketBatch(batch_size)
    cdef uint64_t done = 0, seq = 0
    cdef uint32_t sent, i
    cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
    txq._usable(False)
    if seq_offset + 8 > ixy_buf_capacity(&pool.pool):
        raise PacketTooLarge(f"a sequence number at {seq_offset} does not fit the pool's {ixy_buf_capacity(&pool.pool)}-byte buffers",
                             "use a smaller seq_offset or a pool of larger buffers")
    batch.pools.add(pool)
    with nogil:
        while done < packets:
            if batch.count == 0:
                batch.count = ixy_mempool_alloc(&pool.pool, batch.bufs, batch_size)
                for i in range(batch.count):
                    memcpy(batch.bufs[i].data + seq_offset, &seq, 8)
                    seq += 1
            sent = txq._tx(batch.bufs, batch.count)
            _wait(hook, sent, batch.count)     # ring full, or the pool empty: let the device catch up
            batch._shift_out(sent)
            done += sent
    txq.pools.merge(batch.pools)
    batch.free()
    return done


def bench_rx(Queue rxq not None, PacketBatch batch not None, uint64_t packets, object poll_hook=None):
    """Receive on rxq and free until `packets` arrived. Returns (packets
    received, calls that found nothing)."""
    cdef uint64_t done = 0, empty = 0
    cdef uint32_t got
    cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
    rxq._usable(True)
    with nogil:
        while done < packets:
            got = rxq._rx(batch.bufs, batch.capacity)
            ixy_buf_free_n(batch.bufs, got)
            done += got
            empty += got == 0
            _wait(hook, got, batch.capacity)
    return done, empty


def bench_fwd(Queue rxq not None, Queue txq not None, PacketBatch batch not None, uint64_t packets,
              object poll_hook=None):
    """Forward steps (rx into the batch's free slots, tx from its front)
    until `packets` were sent on txq. Returns (packets sent, steps that sent
    nothing)."""
    cdef uint64_t done = 0, stalls = 0
    cdef uint32_t sent
    cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
    rxq._usable(True)
    txq._usable(False)
    txq.pools.merge(rxq.pools)
    batch.pools.merge(rxq.pools)
    with nogil:
        while done < packets:
            batch.count += rxq._rx(batch.bufs + batch.count, batch.capacity - batch.count)
            sent = txq._tx(batch.bufs, batch.count)
            batch._shift_out(sent)
            done += sent
            stalls += sent == 0
            _wait(hook, sent, batch.capacity)
    return done, stalls


cdef inline uint32_t _fwd_ixy_step(Queue rxq, Queue txq, ixy_buf **bufs, uint32_t batch_size,
                                   uint32_t *received, uint64_t *freed) noexcept nogil:
    """One direction of ixy's forwarder: receive up to batch_size packets,
    add 1 to byte 1 of each (as ops.inc_byte(batch, 1) does: a packet of one
    byte or none is left alone, where ixy C checks no length), send them,
    free what the tx ring did not take. Returns the count sent; *received
    grows by the count received, *freed by the count freed."""
    cdef uint32_t got = rxq._rx(bufs, batch_size)
    cdef uint32_t i, sent
    if got == 0:
        return 0
    received[0] += got
    for i in range(got):
        if bufs[i].len > 1:
            bufs[i].data[1] += 1
    sent = txq._tx(bufs, got)
    if sent < got:
        ixy_buf_free_n(bufs + sent, got - sent)
        freed[0] += got - sent
    return sent


def bench_fwd_ixy(Queue rxq_a not None, Queue txq_a not None, Queue rxq_b not None, Queue txq_b not None,
                  PacketBatch batch not None, uint64_t packets, object poll_hook=None):
    """ixy C's forwarder (app/ixy-fwd.c) on two ports a and b. Each round:
    a's rx to b's tx, then b's rx to a's tx; each a batch of up to
    batch.capacity packets, byte 1 of every packet incremented, every
    packet the tx ring does not take freed (dropped). Until at least
    `packets` were sent, both directions together. batch (empty) is only
    the scratch array and is left empty. Returns (packets sent, packets
    freed unsent): what the tx rings took, not `packets`.

    With a poll hook (the model runs only when called): a round that
    received nothing runs the model's pass; if that pass has nothing to do
    either, nothing can arrive any more and the loop returns early, with
    fewer than `packets` sent. Without one (a device on its own thread): a
    short back-off after a round that received less than two full
    batches."""
    cdef uint64_t done = 0, freed = 0
    cdef uint32_t got
    cdef ixy_buf **bufs = batch.bufs
    cdef uint32_t batch_size = batch.capacity
    cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
    if batch.count:
        raise BatchError(f"bench_fwd_ixy takes an empty batch (its scratch array), not one holding {batch.count}")
    rxq_a._usable(True)
    rxq_b._usable(True)
    txq_a._usable(False)
    txq_b._usable(False)
    txq_b.pools.merge(rxq_a.pools)      # each tx ring holds the other port's rx buffers: keep their pools alive
    txq_a.pools.merge(rxq_b.pools)
    with nogil:
        while done < packets:
            got = 0
            done += _fwd_ixy_step(rxq_a, txq_b, bufs, batch_size, &got, &freed)
            done += _fwd_ixy_step(rxq_b, txq_a, bufs, batch_size, &got, &freed)
            if hook.poll != NULL:
                if got == 0 and hook.poll(hook.ctx) <= 0:
                    break
            else:
                _wait(hook, got, 2 * batch_size)
    return done, freed
