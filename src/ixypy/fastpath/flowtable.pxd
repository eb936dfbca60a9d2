# A flow table (csrc/ixy_flowtable.h): packet and byte counters per 5-tuple
# in an open-addressing hash table, counted a batch at a time.
from libc.stdint cimport uint32_t, uint64_t, int64_t

from .ops cimport Fields, ixy_cols

cdef extern from "ixy_flowtable.h" nogil:
    enum:
        IXY_FLOW_KEY_WORDS
        IXY_FLOW_EMPTY_WORD
    struct ixy_flow_slot:
        uint64_t key[IXY_FLOW_KEY_WORDS]
        int64_t packets, bytes, home
    struct ixy_flowtable:
        ixy_flow_slot *slot
        uint32_t mask, max_flows, flows
        int64_t other_packets, other_bytes
        int64_t untracked_packets, untracked_bytes
    int ixy_flowtable_add(ixy_flowtable *t, const ixy_cols *c, uint32_t n)
    int ixy_flowtable_merge(ixy_flowtable *t, const ixy_flowtable *o)


cdef class FlowCounter:
    cdef ixy_flowtable c
    cdef Py_buffer view            # the slots' memory, held while the counter lives
    cdef bint held

    cdef int _ready(self) except -1
    cdef int _add(self, Fields fields) except -1


cdef class Monitor:
    cdef readonly FlowCounter table
    cdef readonly Fields packets
