# Intel advanced-descriptor rx and tx rings: 82599 / X540 / X550 (ixgbe) and
# 82576 / I350 (igb); and the 82574 (e1000e), whose extended descriptors share
# the advanced ones' layout. The descriptor layout is csrc/ixy_desc.h.
from libc.stdint cimport uint16_t, uint32_t, uint64_t

from .mempool cimport DmaMemory, Mempool, ixy_buf
from .queue cimport Queue
from .regs cimport Bar

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
        IXY_TXD_DTYP_EXT_DATA
        IXY_TXD_DCMD_EOP
        IXY_TXD_DCMD_IFCS
        IXY_TXD_DCMD_RS
        IXY_TXD_DCMD_DEXT
        IXY_TXD_MAC_1588
        IXY_TXD_PAYLEN_SHIFT
        IXY_TXD_STAT_DD


cdef class _IntelQueue(Queue):
    cdef Bar bar
    cdef DmaMemory ring_memory
    cdef ixy_buf **bufs          # the buffer behind each descriptor, or NULL
    cdef uint32_t num_descs
    cdef uint32_t mask
    cdef uint32_t tail_reg


cdef class IntelRxQueue(_IntelQueue):
    cdef ixy_adv_rx_desc *descs
    cdef Mempool pool
    cdef uint32_t rx_index
    cdef bint discarding          # inside a multi-descriptor frame being dropped
    cdef bint rss_hash            # copy the RSS hash of each packet into its buffer
    cdef readonly uint64_t dropped_multidesc
    cdef void _discard(self, ixy_buf *b, uint32_t status) noexcept nogil
    cdef uint32_t _rx_rss(self, ixy_buf **out, uint32_t n) noexcept nogil


cdef class IntelTxQueue(_IntelQueue):
    cdef ixy_adv_tx_desc *descs
    cdef uint32_t clean_index     # first descriptor not yet reclaimed
    cdef uint32_t clean_batch     # descriptors reclaimed per DD check
    cdef uint32_t tx_index        # next descriptor to fill
    cdef uint32_t cmd_type        # DCMD and DTYP of every data descriptor (the length is or-ed in)
    cdef bint paylen              # write PAYLEN (advanced descriptors) into the second dword, else 0
