# cython: language_level=3, binding=False, always_allow_keywords=False
"""DMA memory (:class:`DmaMemory`, an mmap that exposes the buffer protocol)
and :class:`Mempool`, fixed-size packet buffers in it. The buffer layout and
the alloc/free functions are C (csrc/ixy_mempool.h), inline in every loop."""
cimport cython
from libc.errno cimport errno
from cpython.buffer cimport PyBuffer_FillInfo
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free as c_free
from libc.string cimport memcpy

import os as _os

from ..errors import PacketTooLarge

cdef extern from "<sys/mman.h>" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int mlock(const void *addr, size_t len)
    int PROT_READ, PROT_WRITE, MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_HUGETLB, MAP_POPULATE
    void *MAP_FAILED


cdef class DmaMemory:
    """A mapping for DMA: anonymous (optionally MAP_HUGETLB) or of a hugetlbfs
    file, exposing the buffer protocol (writable). It is unmapped when the
    last reference goes: mempools, queues and memoryviews hold one, so no
    Python object can reach unmapped memory. address_hint: where to map it
    if that range is free (mmap's hint), else the kernel chooses. A file
    mapping is MAP_SHARED, an anonymous one MAP_PRIVATE unless shared: then
    a process forked later and this one reach the same memory (the sim
    device's DMA memory, as a hugetlbfs file's is for a real NIC)."""

    def __cinit__(self, size_t size, int fd=-1, bint hugetlb=False, bint lock=False, bint populate=True,
                  size_t address_hint=0, bint shared=False):
        cdef int flags = MAP_SHARED if fd >= 0 or shared else MAP_PRIVATE
        if fd < 0:
            flags |= MAP_ANONYMOUS
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
        PyBuffer_FillInfo(view, self, <void *> self.address, self.size, 0, flags)


# --------------------------------------------------------------------------
# Mempool

# Objects that own buffers (batches, rings) or the memory behind them (pools)
# keep their references until __dealloc__ has run: the cycle collector must
# not clear them first, or freeing a buffer would touch unmapped memory.
@cython.no_gc_clear
@cython.no_gc_clear
cdef class Mempool:
    """Fixed-size packet buffers in one DMA region.

    page_dma: the DMA address of each page of the region (page_size bytes
    each), so a pool may span pages that are not contiguous in DMA space;
    entries never straddle a page. debug=True catches double frees.
    dma_spaces: where those DMA addresses are valid (memory.DmaSpace
    objects, from the allocator); a tx queue refuses the pool's buffers if
    its device's space is not among them. None: not known, not checked."""

    def __cinit__(self, DmaMemory memory not None, uint32_t num_bufs, uint32_t entry_size=2048,
                  object page_dma=None, size_t page_size=0, bint debug=False, object dma_spaces=None):
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
        self.dma_spaces = None if dma_spaces is None else frozenset(dma_spaces)
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
