# Per-batch operations of the vectorised batch layer (csrc/ixy_pkt.h): the
# parsed header columns of a batch (Fields) and what NumPy does badly on
# packets (compaction, split, checksums, hashing, rule scans), in C.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t

from .batch cimport PacketBatch
from .mempool cimport Mempool, ixy_buf

cdef extern from "ixy_pkt.h" nogil:
    enum:
        IXY_PKT_IPV4
        IXY_PKT_IPV6
        IXY_PKT_L4
        IXY_PKT_FRAG
        IXY_PKT_VLAN
        IXY_PKT_BAD
        IXY_FLOW_KEY_SIZE
    struct ixy_cols:
        uint32_t *index
        uint32_t *length
        uint32_t *src
        uint32_t *dst
        uint32_t *hash
        int32_t *label
        uint16_t *l3
        uint16_t *l4
        uint16_t *ethertype
        uint16_t *vlan
        uint16_t *sport
        uint16_t *dport
        uint8_t *proto
        uint8_t *flags
        uint8_t *src6
        uint8_t *dst6
    struct ixy_rule:
        uint32_t src_net, src_mask, dst_net, dst_mask
        uint16_t sport_lo, sport_hi, dport_lo, dport_hi
        uint16_t proto
        uint8_t family
        uint8_t src6_net[16]
        uint8_t src6_mask[16]
        uint8_t dst6_net[16]
        uint8_t dst6_mask[16]
    void ixy_parse(const uint8_t *d, uint32_t len, ixy_cols *c, uint32_t i)
    uint32_t ixy_flow_hash(const ixy_cols *c, uint32_t i)
    int ixy_flow_key(const ixy_cols *c, uint32_t i, uint8_t *k)
    int ixy_rule_matches(const ixy_rule *r, const ixy_cols *c, uint32_t i)


cdef class Fields:
    cdef ixy_cols c
    cdef char *block
    cdef Py_ssize_t block_size
    cdef readonly uint32_t capacity
    cdef readonly uint32_t count
    cdef readonly Mempool pool
    cdef readonly dict layout
    cdef ixy_buf *first            # the batch loaded last: its first buffer and count
    cdef uint32_t loaded

    cdef int _load(self, PacketBatch batch) except -1
    cdef int _check(self, PacketBatch batch) except -1
