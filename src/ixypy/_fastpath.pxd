# C declarations shared by the fast path and the device model wrapper.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "ixy_regs.h" nogil:
    struct ixy_reg_ops:
        uint32_t (*read32)(void *ctx, uint32_t offset)
        void (*write32)(void *ctx, uint32_t offset, uint32_t value)
        void *ctx
    struct ixy_poll_hook:
        int (*poll)(void *ctx) noexcept nogil
        void *ctx
    struct ixy_bar:
        volatile uint8_t *base
        const ixy_reg_ops *ops
        size_t len
    void ixy_rmb()
    void ixy_wmb()
    void ixy_cpu_relax()
    uint32_t ixy_read32(const ixy_bar *bar, uint32_t off)
    void ixy_write32(const ixy_bar *bar, uint32_t off, uint32_t value)


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
        uint8_t *headroom
        uint8_t *data
    ixy_buf *ixy_buf_at(const ixy_mempool *p, uint32_t index)
    uint32_t ixy_buf_capacity(const ixy_mempool *p)
    uint32_t ixy_mempool_alloc(ixy_mempool *p, ixy_buf **bufs, uint32_t n)
    ixy_buf *ixy_mempool_alloc1(ixy_mempool *p)
    void ixy_buf_free(ixy_buf *b)
    void ixy_buf_free_n(ixy_buf **bufs, uint32_t n)
    void ixy_buf_free_slots(ixy_buf **slots, uint32_t n)


cdef extern from "ixy_desc.h" nogil:
    struct ixy_adv_rx_read:
        uint64_t pkt_addr
        uint64_t hdr_addr
    struct ixy_adv_rx_wb:
        uint32_t info
        uint32_t rss_hash
        uint32_t status_error
        uint16_t length
        uint16_t vlan
    union ixy_adv_rx_desc:
        ixy_adv_rx_read read
        ixy_adv_rx_wb wb
    struct ixy_adv_tx_read:
        uint64_t buffer_addr
        uint32_t cmd_type_len
        uint32_t olinfo_status
    struct ixy_adv_tx_wb:
        uint64_t rsvd
        uint32_t nxtseq_seed
        uint32_t status
    union ixy_adv_tx_desc:
        ixy_adv_tx_read read
        ixy_adv_tx_wb wb
    enum:
        IXY_RXD_STAT_DD
        IXY_RXD_STAT_EOP
        IXY_TXD_DTYP_DATA
        IXY_TXD_DCMD_EOP
        IXY_TXD_DCMD_IFCS
        IXY_TXD_DCMD_RS
        IXY_TXD_DCMD_DEXT
        IXY_TXD_PAYLEN_SHIFT
        IXY_TXD_STAT_DD

