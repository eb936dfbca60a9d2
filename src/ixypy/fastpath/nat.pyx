# cython: language_level=3, binding=False, always_allow_keywords=False
"""A stateless 1:1 prefix NAT with a port map, compiled (csrc/ixy_nat.h),
for ixypy.vapps.nat: ``rewriter(batch)`` parses every packet (the parser of
ops.Fields.load), rewrites the IPv4 address of those in the prefix, maps
the UDP/TCP port and updates the IPv4 header and UDP/TCP checksums
incrementally (RFC 1624; a UDP checksum of 0, none, stays 0), in one C
loop with the GIL released: no Python object per packet, one call per
batch. The result is that of ops.set_ipv4 (masked by the prefix) followed
by ops.set_port on the same batch.

Outbound (the default): an IPv4 source address in from_net/mask becomes
to_net with the address's host bits, and the destination port p becomes
ports[p]. Inbound: the destination address, and the source port. The
address rewrite needs a well-formed IPv4 packet (not BAD); the port map
applies to every packet with a UDP/TCP header (IPv4 or IPv6, in the prefix
or not; not a non-first fragment); the rest is left alone.

Not thread-safe: the counter is a plain integer, so each worker has its
own rewriter."""
from cpython.buffer cimport PyBUF_ND, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint16_t, uint32_t
from libc.string cimport memcpy

from .batch cimport PacketBatch

from ..errors import BatchError

cdef enum:
    NPORTS = 65536


cdef class Rewriter:
    """Rewriter(from_net, mask, to_net, port_map=None, inbound=False):
    addresses as host-order integers (ixypy.vector.prefix); port_map, None
    (no port mapped) or a C-contiguous buffer of 65536 uint16 items, the new
    port by the old, copied. ports: a writable memoryview ("H") of the
    rewriter's own map (np.frombuffer(r.ports, np.uint16) writes it);
    rewritten: the packets whose address was in the prefix."""

    def __cinit__(self, *args, **kwargs):
        self._ports = bytearray(2 * NPORTS)
        self.ports = memoryview(self._ports).cast("H")
        cdef uint16_t *p = <uint16_t *> <char *> self._ports
        cdef int i
        for i in range(NPORTS):
            p[i] = <uint16_t> i
        self.c.port_map = p
        self.c.mask = 0xFFFFFFFF           # until __init__: matches only 0.0.0.0, rewritten to itself
        self.c.from_net = self.c.to_net = 0

    def __init__(self, uint32_t from_net, uint32_t mask, uint32_t to_net, port_map=None, bint inbound=False):
        cdef Py_buffer v
        if port_map is not None:
            PyObject_GetBuffer(port_map, &v, PyBUF_ND)
            try:
                if v.itemsize != 2 or v.len != 2 * NPORTS:
                    raise BatchError(f"port_map: need {NPORTS} uint16 items, got {v.len // v.itemsize} of "
                                     f"{v.itemsize} bytes", "e.g. numpy.arange(65536, dtype=numpy.uint16)")
                memcpy(<char *> self._ports, v.buf, 2 * NPORTS)
            finally:
                PyBuffer_Release(&v)
        self.c.from_net = from_net
        self.c.mask = mask
        self.c.to_net = to_net
        self.c.dst = inbound
        self.inbound = inbound
        self.rewritten = 0

    def __call__(self, PacketBatch batch not None) -> int:
        """Rewrite the batch in place; returns the count of packets whose
        address was in the prefix."""
        cdef uint32_t hits
        with nogil:
            hits = ixy_nat_batch(&self.c, batch.bufs, batch.count)
        self.rewritten += hits
        return hits
