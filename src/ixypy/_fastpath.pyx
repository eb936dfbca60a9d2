# cython: language_level=3, binding=False, always_allow_keywords=False
"""ixypy's fast path: register access, DMA memory, mempools, packet batches
and the descriptor loops. Everything per packet runs without the GIL and
without Python objects; Python is touched once per batch."""
cimport cython
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

REG_OPS_CAPSULE = "ixypy.reg_ops"


cdef class Bar:
    """A device's register BAR: an mmap'd BAR (address, length) or a device
    model's register ops (a PyCapsule named "ixypy.reg_ops")."""
    cdef ixy_bar bar
    cdef object keepalive

    def __cinit__(self, size_t address=0, size_t length=0, object ops=None, object keepalive=None):
        if ops is not None:
            if not PyCapsule_IsValid(ops, b"ixypy.reg_ops"):
                raise TypeError("ops must be a PyCapsule named 'ixypy.reg_ops'")
            self.bar.ops = <const ixy_reg_ops *> PyCapsule_GetPointer(ops, b"ixypy.reg_ops")
        elif address == 0:
            raise ValueError("a Bar needs a mapped address or register ops")
        self.bar.base = <volatile uint8_t *> address
        self.bar.len = length
        self.keepalive = keepalive

    cdef inline void _check(self, uint32_t offset) except *:
        if self.bar.ops == NULL and self.bar.base == NULL:
            raise DeviceError("register access after the device was closed", "open the device again")
        if self.bar.ops == NULL and (offset & 3 or offset + 4 > self.bar.len):
            raise IndexError(f"register offset {offset:#x} outside the {self.bar.len:#x}-byte BAR or unaligned")

    def read32(self, uint32_t offset) -> int:
        self._check(offset)
        return ixy_read32(&self.bar, offset)

    def write32(self, uint32_t offset, uint32_t value) -> None:
        self._check(offset)
        ixy_write32(&self.bar, offset, value)

    def detach(self) -> None:
        """Forget the mapping (the device is closed): later accesses raise."""
        self.bar.base = NULL
        self.bar.ops = NULL
        self.bar.len = 0
        self.keepalive = None


cdef extern from "<unistd.h>" nogil:
    ssize_t pread(int fd, void *buf, size_t count, long offset)
    ssize_t pwrite(int fd, const void *buf, size_t count, long offset)

from libc.errno cimport errno
import os as _os


cdef extern from "ixy_portio.h" nogil:
    struct ixy_port_ops:
        uint32_t (*read)(void *ctx, uint32_t offset, unsigned width)
        void (*write)(void *ctx, uint32_t offset, unsigned width, uint32_t value)
        void *ctx


cdef class PortIo:
    """An I/O-port BAR reached through a file: sysfs ``resourceN`` under UIO,
    or the VFIO device fd at the region's offset; or a device model's port
    ops (a PyCapsule named "ixypy.port_ops", fd -1, base 0). I/O ports take
    exactly the register's width: 1, 2 or 4 bytes per access (a 6-byte read
    fails)."""
    cdef readonly int fd
    cdef readonly long base
    cdef readonly unsigned length
    cdef const ixy_port_ops *ops
    cdef object keepalive

    def __cinit__(self, int fd, long base, unsigned length, object ops=None, object keepalive=None):
        if ops is not None:
            if not PyCapsule_IsValid(ops, b"ixypy.port_ops"):
                raise TypeError("ops must be a PyCapsule named 'ixypy.port_ops'")
            self.ops = <const ixy_port_ops *> PyCapsule_GetPointer(ops, b"ixypy.port_ops")
        self.fd = fd
        self.base = base
        self.length = length
        self.keepalive = keepalive

    cdef inline long _pos(self, unsigned offset, unsigned width) except -1:
        if offset + width > self.length:
            raise IndexError(f"I/O port offset {offset:#x}+{width} outside the {self.length}-byte BAR")
        return self.base + offset

    cdef uint32_t _read(self, unsigned offset, unsigned width) except? 0xFFFFFFFF:
        cdef uint32_t v = 0
        cdef long pos = self._pos(offset, width)
        cdef ssize_t n
        if self.ops != NULL:
            return self.ops.read(self.ops.ctx, pos, width)
        with nogil:
            n = pread(self.fd, &v, width, pos)
        if n != <ssize_t> width:
            raise OSError(errno if n < 0 else 5, f"{width}-byte I/O port read at {offset:#x}: {_os.strerror(errno) if n < 0 else 'short read'}")
        return v

    cdef int _write(self, unsigned offset, unsigned width, uint32_t value) except -1:
        cdef long pos = self._pos(offset, width)
        cdef ssize_t n
        if self.ops != NULL:
            self.ops.write(self.ops.ctx, pos, width, value)
            return 0
        with nogil:
            n = pwrite(self.fd, &value, width, pos)
        if n != <ssize_t> width:
            raise OSError(errno if n < 0 else 5, f"{width}-byte I/O port write at {offset:#x}: {_os.strerror(errno) if n < 0 else 'short write'}")
        return 0

    def read8(self, unsigned offset) -> int:
        return self._read(offset, 1)

    def read16(self, unsigned offset) -> int:
        return self._read(offset, 2)

    def read32(self, unsigned offset) -> int:
        return self._read(offset, 4)

    def write8(self, unsigned offset, uint8_t value) -> None:
        self._write(offset, 1, value)

    def write16(self, unsigned offset, uint16_t value) -> None:
        self._write(offset, 2, value)

    def write32(self, unsigned offset, uint32_t value) -> None:
        self._write(offset, 4, value)


# --------------------------------------------------------------------------
# DMA memory

cdef extern from "<sys/mman.h>" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int mlock(const void *addr, size_t len)
    int PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE
    void *MAP_FAILED

from libc.string cimport memcpy, memset
from libc.stdlib cimport calloc, free as c_free


cdef class DmaMemory:
    """A mapping for DMA: anonymous (optionally MAP_HUGETLB) or of a hugetlbfs
    file, exposing the buffer protocol (writable). It is unmapped when the
    last reference goes: mempools, queues and memoryviews hold one, so no
    Python object can reach unmapped memory. address_hint: where to map it
    if that range is free (mmap's hint), else the kernel chooses."""
    cdef readonly size_t address
    cdef readonly size_t size

    def __cinit__(self, size_t size, int fd=-1, bint hugetlb=False, bint lock=False, bint populate=True,
                  size_t address_hint=0):
        cdef int flags = MAP_SHARED if fd >= 0 else (MAP_PRIVATE | MAP_ANONYMOUS)
        if hugetlb and fd < 0:
            flags |= MAP_HUGETLB
        if populate:
            flags |= MAP_POPULATE
        cdef void *addr
        with nogil:
            addr = mmap(<void *> address_hint, size, PROT_READ | PROT_WRITE, flags, fd, 0)
        if addr == MAP_FAILED:
            raise OSError(errno, f"mmap of {size} bytes{' (hugetlb)' if hugetlb or fd >= 0 else ''}: {_os.strerror(errno)}")
        self.address = <size_t> addr
        self.size = size
        if lock and mlock(addr, size) != 0:
            err = errno
            munmap(addr, size)
            self.address = 0
            raise OSError(err, f"mlock of {size} bytes: {_os.strerror(err)}")

    def __dealloc__(self):
        if self.address:
            munmap(<void *> self.address, self.size)

    def __getbuffer__(self, Py_buffer *view, int flags):
        view.buf = <void *> self.address
        view.len = self.size
        view.readonly = 0
        view.itemsize = 1
        view.format = "B"
        view.ndim = 1
        view.shape = &view.len
        view.strides = &view.itemsize
        view.suboffsets = NULL
        view.internal = NULL
        view.obj = self

    def __releasebuffer__(self, Py_buffer *view):
        pass


# --------------------------------------------------------------------------
# Mempool

# Objects that own buffers (batches, rings) or the memory behind them (pools)
# keep their references until __dealloc__ has run: the cycle collector must
# not clear them first, or freeing a buffer would touch unmapped memory.
@cython.no_gc_clear
cdef class Mempool:
    """Fixed-size packet buffers in one DMA region.

    page_dma: the DMA address of each page of the region (page_size bytes
    each), so a pool may span pages that are not contiguous in DMA space;
    entries never straddle a page. debug=True catches double frees."""
    cdef ixy_mempool pool
    cdef readonly DmaMemory memory

    def __cinit__(self, DmaMemory memory not None, uint32_t num_bufs, uint32_t entry_size=2048,
                  object page_dma=None, size_t page_size=0, bint debug=False):
        if entry_size <= IXY_BUF_DATA_OFFSET or entry_size % 64:
            raise ValueError(f"entry_size {entry_size} must be a multiple of 64 above the {IXY_BUF_DATA_OFFSET}-byte header")
        if <size_t> num_bufs * entry_size > memory.size:
            raise ValueError(f"{num_bufs} buffers of {entry_size} bytes do not fit in {memory.size} bytes of DMA memory")
        if page_size == 0:
            page_size = memory.size
        if page_size % entry_size:
            raise ValueError(f"entry_size {entry_size} must divide the DMA page size {page_size}, so no buffer straddles a page")
        pages = list(page_dma) if page_dma is not None else [memory.address]
        if len(pages) * page_size < <size_t> num_bufs * entry_size:
            raise ValueError("page_dma does not cover the pool")
        self.memory = memory
        self.pool.base = <uint8_t *> memory.address
        self.pool.entry_size = entry_size
        self.pool.num_bufs = num_bufs
        self.pool.debug = debug
        self.pool.free_stack = <uint32_t *> calloc(num_bufs, sizeof(uint32_t))
        if self.pool.free_stack == NULL:
            raise MemoryError()
        cdef uint32_t i
        cdef size_t off
        cdef ixy_buf *b
        for i in range(num_bufs):
            off = <size_t> i * entry_size
            b = ixy_buf_at(&self.pool, i)
            b.data_dma = <uint64_t> pages[off // page_size] + off % page_size + IXY_BUF_DATA_OFFSET
            b.pool = &self.pool
            b.pool_index = i
            b.len = 0
            b.is_free = 1
            # the top of the stack is buffer 0, so buffers go out in address order
            self.pool.free_stack[i] = num_bufs - 1 - i
        self.pool.free_count = num_bufs

    def __dealloc__(self):
        c_free(self.pool.free_stack)

    @property
    def num_bufs(self) -> int:
        return self.pool.num_bufs

    @property
    def entry_size(self) -> int:
        return self.pool.entry_size

    @property
    def buf_capacity(self) -> int:
        """Largest packet a buffer holds."""
        return ixy_buf_capacity(&self.pool)

    @property
    def free_count(self) -> int:
        return self.pool.free_count

    @property
    def debug(self) -> bool:
        return bool(self.pool.debug)

    @property
    def double_frees(self) -> int:
        """Double frees seen (debug pools only; such frees are ignored)."""
        return self.pool.double_frees

    def buf_dma(self, uint32_t index) -> int:
        """DMA address of buffer index's data."""
        if index >= self.pool.num_bufs:
            raise IndexError(index)
        return ixy_buf_at(&self.pool, index).data_dma

    def fill(self, object templates) -> None:
        """Copy a template (bytes) or templates (a list, used round-robin:
        buffer i gets templates[i % len]) into every free buffer and set its
        length. Buffers come back from the NIC unchanged, so a packet
        generator writes its frames once (as ixy's pktgen does)."""
        if isinstance(templates, (bytes, bytearray, memoryview)):
            templates = [templates]
        frames = [bytes(t) for t in templates]
        cap = ixy_buf_capacity(&self.pool)
        for t in frames:
            if len(t) > cap:
                raise PacketTooLarge(f"template of {len(t)} bytes exceeds the buffer capacity {cap}")
        cdef uint32_t i
        cdef ixy_buf *b
        cdef const uint8_t[::1] frame
        for i in range(self.pool.free_count):
            # the stack is popped from the top: the first buffer out gets frames[0]
            frame = frames[i % len(frames)]
            b = ixy_buf_at(&self.pool, self.pool.free_stack[self.pool.free_count - 1 - i])
            if frame.shape[0]:
                memcpy(b.data, &frame[0], frame.shape[0])
            b.len = frame.shape[0]


from .errors import BatchError, DeviceError, DoubleFree, MempoolExhausted, PacketTooLarge, QueueError


# --------------------------------------------------------------------------
# Pool references

@cython.final
@cython.no_gc_clear
cdef class _PoolRefs:
    """The pools whose buffers a batch or a ring may hold, kept alive while
    it does: a pool's memory must outlive every buffer of it still held.
    The set only grows, so its size is its version: a ring that merged a
    batch's set skips the merge while that set is unchanged. Both checks
    are inline: a few instructions per batch."""
    cdef list pools
    cdef Mempool last             # the pool added or found last
    cdef _PoolRefs merged         # the set merged last, at size merged_size
    cdef Py_ssize_t merged_size

    def __cinit__(self):
        self.pools = []

    cdef inline int add(self, Mempool pool) except -1:
        if pool is not self.last:
            self._add(pool)
        return 0

    cdef int _add(self, Mempool pool) except -1:
        if pool not in self.pools:
            self.pools.append(pool)
        self.last = pool
        return 0

    cdef inline int merge(self, _PoolRefs other) except -1:
        if other is not self.merged or len(other.pools) != self.merged_size:
            self._merge(other)
        return 0

    cdef int _merge(self, _PoolRefs other) except -1:
        for pool in other.pools:
            self._add(pool)
        self.merged = other
        self.merged_size = len(other.pools)
        return 0


# --------------------------------------------------------------------------
# PacketBatch

@cython.no_gc_clear
cdef class PacketBatch:
    """Up to `capacity` packet buffers, held as a C array. Python sees the
    batch; packet bytes are reachable as zero-copy memoryviews (batch[i])."""
    cdef ixy_buf **bufs
    cdef uint32_t count
    cdef readonly uint32_t capacity
    cdef _PoolRefs pools

    def __cinit__(self, uint32_t capacity=32):
        if capacity == 0:
            raise BatchError("a batch needs a capacity of at least 1")
        self.bufs = <ixy_buf **> calloc(capacity, sizeof(ixy_buf *))
        if self.bufs == NULL:
            raise MemoryError()
        self.capacity = capacity
        self.pools = _PoolRefs()

    def __dealloc__(self):
        # buffers still held go back to their pools, which this batch keeps alive
        if self.bufs != NULL:
            ixy_buf_free_n(self.bufs, self.count)
            c_free(self.bufs)

    cdef void _shift_out(self, uint32_t n) noexcept nogil:
        """Drop the first n entries (handed to a driver), keeping the rest in order."""
        cdef uint32_t i
        for i in range(n, self.count):
            self.bufs[i - n] = self.bufs[i]
        self.count -= n

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

    cdef inline ixy_buf *_buf(self, Py_ssize_t i) except NULL:
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


cdef ixy_poll_hook _NO_HOOK


cdef const ixy_poll_hook *_poll_hook(object hook) except NULL:
    """The hook a C-driven benchmark loop calls when it makes no progress
    (a PyCapsule "ixypy.poll_hook" from ixypy.sim), or one that does nothing."""
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
DEF BACKOFF_PAUSES = 100


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


def measured(fn):
    """Call fn() inside ixy_measured_region, a C function that callgrind can
    be told to count alone (--toggle-collect=ixy_measured_region): the
    instruction-count benchmarks measure exactly the loop fn runs."""
    return ixy_measured_region(fn)


cdef extern from "ixy_measure.h":
    object ixy_measured_region(object fn)


# --------------------------------------------------------------------------
# Queues: what the driver-independent fast path sees of any driver's queue

@cython.no_gc_clear
cdef class Queue:
    """An rx or tx queue of some driver. A driver implements `_rx` (an rx
    queue) or `_tx` and `_clean` (a tx queue) on C arrays of buffers, one
    batch per call and without the GIL; rx, tx, forward and the C-driven
    benchmark loops are written once, here, on top of them."""
    cdef _PoolRefs pools          # pools whose buffers the queue holds (rx: its own pool)
    cdef bint closed
    cdef readonly bint is_rx
    cdef readonly uint64_t packets
    cdef readonly uint64_t bytes

    def __cinit__(self, *args, **kwargs):
        self.pools = _PoolRefs()

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

    # --- shared
    cdef inline int _usable(self, bint rx) except -1:
        if self.closed:
            raise QueueError("the queue was closed with its device", "open the device again")
        if rx != self.is_rx:
            raise QueueError(f"this is {'an rx' if self.is_rx else 'a tx'} queue",
                             f"use the device's {'tx' if self.is_rx else 'rx'}_queue() for that")
        return 0

    cdef inline uint32_t _rx_into(self, PacketBatch batch) except? 0xFFFFFFFF:
        cdef uint32_t got = self._rx(batch.bufs + batch.count, batch.capacity - batch.count)
        if got:
            batch.count += got
            batch.pools.merge(self.pools)
        return got

    cdef inline uint32_t _tx_from(self, PacketBatch batch) except? 0xFFFFFFFF:
        cdef uint32_t sent = self._tx(batch.bufs, batch.count)
        if sent:
            self.pools.merge(batch.pools)
            batch._shift_out(sent)
        return sent

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

    # --- the pure-C references for benchmarks: the same per-batch functions,
    # called in a C loop with no Python in between
    def bench_tx(self, Mempool pool not None, uint32_t batch_size, uint64_t packets, uint32_t seq_offset=42,
                 object poll_hook=None) -> int:
        """The pktgen loop: when the batch is empty, allocate a full one and
        stamp sequence numbers; send; until `packets` were sent. Returns the
        count sent (the last batch may overshoot)."""
        cdef PacketBatch batch = PacketBatch(batch_size)
        cdef uint64_t done = 0, seq = 0
        cdef uint32_t sent, i
        cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
        self._usable(False)
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
                sent = self._tx(batch.bufs, batch.count)
                _wait(hook, sent, batch.count)     # ring full, or the pool empty: let the device catch up
                batch._shift_out(sent)
                done += sent
        self.pools.merge(batch.pools)
        batch.free()
        return done

    def bench_rx(self, PacketBatch batch not None, uint64_t packets, object poll_hook=None) -> int:
        """Receive and free until `packets` arrived. Returns the number of
        calls that found nothing."""
        cdef uint64_t done = 0, empty = 0
        cdef uint32_t got
        cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
        self._usable(True)
        with nogil:
            while done < packets:
                got = self._rx(batch.bufs, batch.capacity)
                ixy_buf_free_n(batch.bufs, got)
                done += got
                empty += got == 0
                _wait(hook, got, batch.capacity)
        return empty

    def bench_fwd(self, Queue txq not None, PacketBatch batch not None, uint64_t packets,
                  object poll_hook=None) -> int:
        """forward() steps until `packets` were sent on txq. Returns the
        number of steps that sent nothing."""
        cdef uint64_t done = 0, stalls = 0
        cdef uint32_t sent
        cdef const ixy_poll_hook *hook = _poll_hook(poll_hook)
        self._usable(True)
        txq._usable(False)
        txq.pools.merge(self.pools)
        batch.pools.merge(self.pools)
        with nogil:
            while done < packets:
                batch.count += self._rx(batch.bufs + batch.count, batch.capacity - batch.count)
                sent = txq._tx(batch.bufs, batch.count)
                batch._shift_out(sent)
                done += sent
                stalls += sent == 0
                _wait(hook, sent, batch.capacity)
        return stalls


# --------------------------------------------------------------------------
# Intel advanced descriptor queues (82599 / X540 / X550, and 82576 / I350)

# tx descriptors are reclaimed in groups: DD is checked only on the last
# descriptor of a group (as ixy does), so clean-up costs one load per group;
# a ring of fewer than 64 descriptors uses groups of half its size
DEF TX_CLEAN_BATCH = 32


cdef inline void _adv_rx_give(ixy_adv_rx_desc *d, ixy_buf *b) noexcept nogil:
    d.read.pkt_addr = b.data_dma
    d.read.hdr_addr = 0   # also clears the write-back DD bit that overlays it


@cython.no_gc_clear
cdef class _IntelQueue(Queue):
    """State common to an advanced-descriptor rx or tx ring."""
    cdef Bar bar
    cdef DmaMemory ring_memory
    cdef ixy_buf **bufs          # the buffer behind each descriptor, or NULL
    cdef uint32_t num_descs
    cdef uint32_t mask
    cdef uint32_t tail_reg

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
    cdef ixy_adv_rx_desc *descs
    cdef Mempool pool
    cdef uint32_t rx_index
    cdef bint discarding          # inside a multi-descriptor frame being dropped
    cdef readonly uint64_t dropped_multidesc

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

    cdef uint32_t _rx(self, ixy_buf **out, uint32_t n) noexcept nogil:
        """Up to n packets into out. Two passes: count the descriptors the
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

    cdef void _discard(self, ixy_buf *b, uint32_t status) noexcept nogil:
        """A frame spread over several descriptors: buffers are sized so this
        needs a frame above the MAC's maximum; it is dropped whole."""
        self.discarding = not (status & IXY_RXD_STAT_EOP)
        self.dropped_multidesc += not self.discarding
        ixy_buf_free(b)

@cython.no_gc_clear
cdef class IntelTxQueue(_IntelQueue):
    """Transmit ring of advanced data descriptors (82599 7.2.3.2.4)."""
    cdef ixy_adv_tx_desc *descs
    cdef uint32_t clean_index     # first descriptor not yet reclaimed
    cdef uint32_t clean_batch     # descriptors reclaimed per DD check
    cdef uint32_t tx_index        # next descriptor to fill

    def __cinit__(self, Bar bar not None, uint32_t tail_reg, DmaMemory ring_memory not None,
                  size_t ring_offset, uint32_t num_descs):
        self.descs = <ixy_adv_tx_desc *> (ring_memory.address + ring_offset)
        memset(self.descs, 0, num_descs * sizeof(ixy_adv_tx_desc))
        self.clean_batch = min(TX_CLEAN_BATCH, num_descs // 2)

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
        cdef uint32_t i, idx, mask = self.mask, room
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
            descs[idx].read.cmd_type_len = (IXY_TXD_DCMD_EOP | IXY_TXD_DCMD_RS | IXY_TXD_DCMD_IFCS
                                            | IXY_TXD_DCMD_DEXT | IXY_TXD_DTYP_DATA | b.len)
            descs[idx].read.olinfo_status = b.len << IXY_TXD_PAYLEN_SHIFT
            nbytes += b.len
            idx = (idx + 1) & mask
        self.packets += n
        self.bytes += nbytes
        self.tx_index = idx
        ixy_write32(&self.bar.bar, self.tail_reg, idx)   # one TDT write per batch
        return n

include "_virtio.pxi"
