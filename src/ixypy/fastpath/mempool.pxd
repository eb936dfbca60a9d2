# DMA memory and the mempool of packet buffers in it (csrc/ixy_mempool.h).
from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef extern from "ixy_mempool.h" nogil:
    enum:
        IXY_BUF_HEADER
        IXY_BUF_HEADROOM
        IXY_BUF_DATA_OFFSET
    struct ixy_mempool:
        uint8_t *base
        uint32_t entry_size
        uint32_t num_bufs
        uint32_t free_count
        uint32_t debug
        uint32_t *free_stack
        uint64_t double_frees
    struct ixy_buf:
        uint64_t data_dma
        ixy_mempool *pool
        uint32_t pool_index
        uint32_t len
        uint32_t is_free
        uint32_t rss_hash
        uint32_t rss_type
        uint8_t *headroom
        uint8_t *data
    ixy_buf *ixy_buf_at(const ixy_mempool *p, uint32_t index)
    uint32_t ixy_buf_capacity(const ixy_mempool *p)
    uint32_t ixy_mempool_alloc(ixy_mempool *p, ixy_buf **bufs, uint32_t n)
    ixy_buf *ixy_mempool_alloc1(ixy_mempool *p)
    void ixy_buf_free(ixy_buf *b)
    void ixy_buf_free_n(ixy_buf **bufs, uint32_t n)
    void ixy_buf_free_slots(ixy_buf **slots, uint32_t n)


cdef class DmaMemory:
    cdef readonly size_t address
    cdef readonly size_t size


cdef class Mempool:
    cdef ixy_mempool pool
    cdef readonly DmaMemory memory
    cdef readonly frozenset dma_spaces     # where its DMA addresses are valid (None: unchecked)
