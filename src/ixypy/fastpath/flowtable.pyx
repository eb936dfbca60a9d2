# cython: language_level=3, binding=False, always_allow_keywords=False
"""A flow table, compiled (csrc/ixy_flowtable.h), for ixypy.vapps.flowmon:
packet and byte counters per flow (the exact 5-tuple of ops.Fields.flow_keys)
in an open-addressing hash table with linear probing. ``counter.add(fields)``
counts the batch last loaded into ``fields`` (ops.Fields, or
ixypy.vector.Packets): each packet's key and flow hash from the parsed
columns, the probe, the insert of a new flow, the counters, in one C loop
with the GIL held (a batch takes less than releasing it would): no Python
object per packet, one call per batch.
A :class:`Monitor` is the forwarding step: ``monitor(batch)`` parses the
batch (Fields.load) and counts it, one call.

The slots live in memory of the caller's (a writable C-contiguous buffer of
64 bytes per slot: 5 key words, packets, bytes, home, as int64/uint64 in
host order), so NumPy views of it read the counters without a copy
(ixypy.vapps.flowmon.FlowTable does).

Not thread-safe: one thread counts into a table at a time (each worker has
its own, merged afterwards)."""
from cpython.buffer cimport PyBUF_ND, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uintptr_t
from libc.string cimport memset

from .batch cimport PacketBatch
from .ops cimport Fields

SLOT_SIZE = sizeof(ixy_flow_slot)
KEY_WORDS = IXY_FLOW_KEY_WORDS
EMPTY_WORD = IXY_FLOW_EMPTY_WORD      # the key word that is 0 in an empty slot (it holds the family byte)


cdef class FlowCounter:
    """FlowCounter(slots, max_flows): slots, a writable C-contiguous buffer
    of SLOT_SIZE-byte slots (zeroed: empty), a power of two more than
    max_flows of them, 8-byte aligned, held until the counter is gone;
    max_flows, the flows kept (at least 1): packets of further flows count
    as untracked. flows: the slots in use; other_packets/other_bytes: packets
    that are not a flow (not IP, or malformed); untracked_packets/
    untracked_bytes: packets of new flows while the table held max_flows."""

    def __cinit__(self, *args, **kwargs):
        memset(&self.c, 0, sizeof(self.c))
        self.held = False

    def __init__(self, slots, long long max_flows):
        cdef Py_buffer v
        cdef Py_ssize_t n
        if max_flows < 1 or max_flows >= 1 << 31:
            raise ValueError(f"max_flows must be at least 1 (and below 2**31), not {max_flows}")
        if self.held:
            raise ValueError("a FlowCounter is initialised once")
        PyObject_GetBuffer(slots, &v, PyBUF_ND | PyBUF_WRITABLE)
        n = v.len // sizeof(ixy_flow_slot)
        if v.len % sizeof(ixy_flow_slot) or <uintptr_t> v.buf % 8:
            PyBuffer_Release(&v)
            raise ValueError(f"slots: need an 8-byte aligned buffer of {sizeof(ixy_flow_slot)}-byte slots, "
                             f"got {v.len} bytes")
        if n & (n - 1) or n <= max_flows or n > 1 << 32:
            PyBuffer_Release(&v)
            raise ValueError(f"slots ({n}) must be a power of two above max_flows ({max_flows})")
        self.view = v
        self.held = True
        self.c.slot = <ixy_flow_slot *> v.buf
        self.c.mask = <uint32_t> (n - 1)
        self.c.max_flows = <uint32_t> max_flows

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)

    cdef int _ready(self) except -1:
        if not self.held:
            raise ValueError("FlowCounter.__init__ was not called")
        return 0

    def add(self, Fields fields not None) -> None:
        """Count the packets of the batch last loaded into fields."""
        self._add(fields)

    cdef int _add(self, Fields fields) except -1:
        cdef int err
        self._ready()
        # the GIL stays held, as in ops and the queues' rx/tx: a batch takes
        # less time than releasing and retaking it (about 11 instructions a
        # packet at batch 32, under callgrind)
        err = ixy_flowtable_add(&self.c, &fields.c, fields.count)
        if err:
            raise RuntimeError("FlowCounter: a probe went round the whole table (no empty slot: "
                               "were its keys written from outside?)")
        return 0

    def merge(self, FlowCounter other not None) -> None:
        """Count other's flows (another worker's table, of as many slots)
        in this one too, each looked up from its home slot; flows beyond
        max_flows count as untracked, and other's other and untracked
        packets add to this one's."""
        cdef int err
        self._ready()
        other._ready()
        if other.c.mask != self.c.mask:
            raise ValueError(f"a table of {other.c.mask + 1} slots does not merge into one of {self.c.mask + 1}")
        with nogil:
            err = ixy_flowtable_merge(&self.c, &other.c)
        if err:
            raise RuntimeError("FlowCounter: a probe went round the whole table (no empty slot: "
                               "were its keys written from outside?)")

    def counts(self) -> tuple:
        """(flows, other_packets, other_bytes, untracked_packets,
        untracked_bytes): with the slots, the whole state (for pickling)."""
        return (self.c.flows, self.c.other_packets, self.c.other_bytes, self.c.untracked_packets,
                self.c.untracked_bytes)

    def restore_counts(self, tuple counts not None) -> None:
        """Set what counts() returned, e.g. of a pickled table whose slots
        were copied into this one's."""
        flows, self.c.other_packets, self.c.other_bytes, self.c.untracked_packets, self.c.untracked_bytes = counts
        if not 0 <= flows <= self.c.max_flows:
            raise ValueError(f"flows ({flows}) must be within 0 to max_flows ({self.c.max_flows})")
        self.c.flows = flows

    @property
    def max_flows(self) -> int:
        return self.c.max_flows

    @property
    def slots(self) -> int:
        """The table size (a power of two)."""
        return self.c.mask + 1 if self.held else 0

    @property
    def flows(self) -> int:
        return self.c.flows

    @property
    def other_packets(self) -> int:
        return self.c.other_packets

    @property
    def other_bytes(self) -> int:
        return self.c.other_bytes

    @property
    def untracked_packets(self) -> int:
        return self.c.untracked_packets

    @property
    def untracked_bytes(self) -> int:
        return self.c.untracked_bytes


cdef class Monitor:
    """Monitor(table, fields): monitor(batch) loads the batch into fields
    (the parse of Fields.load) and counts it into table (FlowCounter.add),
    leaving the batch as it is; returns its count. One call per batch from
    the forwarding loop (a vector app's step)."""

    def __init__(self, FlowCounter table not None, Fields fields not None):
        self.table = table
        self.packets = fields

    def __call__(self, PacketBatch batch not None) -> int:
        self.packets._load(batch)
        self.table._add(self.packets)
        return batch.count
