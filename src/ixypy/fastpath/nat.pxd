# A stateless 1:1 prefix NAT with a port map (csrc/ixy_nat.h): parse,
# rewrite and incremental checksum updates of a batch in one call.
from libc.stdint cimport uint16_t, uint32_t, uint64_t

from .mempool cimport ixy_buf

cdef extern from "ixy_nat.h" nogil:
    struct ixy_nat:
        uint32_t from_net, mask, to_net
        uint32_t dst
        const uint16_t *port_map
    uint32_t ixy_nat_batch(const ixy_nat *cfg, ixy_buf **bufs, uint32_t n)


cdef class Rewriter:
    cdef ixy_nat c
    cdef bytearray _ports          # [65536] uint16: the new port by the old
    cdef readonly object ports     # a writable memoryview ("H") of _ports
    cdef readonly bint inbound
    cdef public uint64_t rewritten
