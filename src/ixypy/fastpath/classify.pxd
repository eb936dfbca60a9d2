# A compiled first-match classifier over the 5-tuple (csrc/ixy_classify.h):
# the rules of a table of ixy_rule records as lookup tables, applied to a
# batch in one call (parse, classify, count, keep or drop).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t

from .mempool cimport ixy_buf
from .ops cimport ixy_rule

cdef extern from "ixy_classify.h" nogil:
    struct ixy_rule_addr:
        uint32_t src_net, src_mask, dst_net, dst_mask
    struct ixy_rule_word:
        uint64_t proto[256]
        uint64_t src_octet[256]
        uint64_t dst_octet[256]
        uint32_t sport_hi[257]
        uint32_t dport_hi[257]
        uint64_t exact
    struct ixy_classifier:
        uint32_t nrules, nwords
        ixy_rule_word *words
        uint64_t *leaves
        ixy_rule_addr *addr
        uint32_t n6
        ixy_rule *rules6
        uint32_t *index6
    uint32_t ixy_net32(uint32_t v)
    int32_t ixy_classify(const ixy_classifier *c, const uint8_t *d, uint32_t len)
    uint32_t ixy_filter(const ixy_classifier *c, const uint8_t *action, int64_t *count, ixy_buf **bufs, uint32_t n)


cdef class Classifier:
    cdef ixy_classifier c
    cdef bytearray _actions        # [nrules + 1]: 1 keep, 0 drop; the last for no match
    cdef bytearray _counts         # [nrules + 1] int64: packets per rule, the last for no match
    cdef uint8_t *action
    cdef int64_t *count
    cdef readonly uint32_t nrules
    cdef readonly uint64_t passed
    cdef readonly uint64_t dropped
    cdef readonly object actions   # writable memoryviews of _actions ("B") and _counts ("q")
    cdef readonly object counts

    cdef int _compile(self, object rules, object actions, bint default) except -1
