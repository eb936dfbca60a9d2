# cython: language_level=3, binding=False, always_allow_keywords=False
"""Per-batch operations for Python code that works on packets with NumPy
(ixypy.vector): :class:`Fields`, the parsed header columns of a batch (one C
array per field, exposed through the buffer protocol, so NumPy views them
without a copy); and the operations NumPy does badly, in C: keep packets by
a mask, split a batch by a label, IPv4 and UDP/TCP checksums (full and
RFC 1624 incremental), rewriting addresses and ports, a 5-tuple flow hash
and exact flow keys, first-match rules, MAC swap / set, the forwarder's byte
increment; latency probes: stamping them (sequence number, send time) and
taking (sequence number, latency) out of a received batch.

Every per-packet loop is a ``noexcept nogil`` C function: no Python object,
allocation or GIL operation per packet. Like the queues' rx and tx, a call
keeps the GIL held (a batch takes less time than releasing it would)."""
cimport cython
from cpython.buffer cimport PyBUF_ND, PyBUF_WRITABLE, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int32_t, int64_t, uint64_t
from libc.stdlib cimport calloc, free as c_free
from libc.string cimport memcpy

from .batch cimport PacketBatch
from .mempool cimport Mempool, ixy_buf, ixy_buf_capacity, ixy_buf_free

from ..errors import BatchError, PacketTooLarge

cdef extern from "ixy_pkt.h" nogil:
    uint16_t ixy_be16(const uint8_t *p)
    uint32_t ixy_be32(const uint8_t *p)
    void ixy_put16(uint8_t *p, uint16_t v)
    void ixy_put32(uint8_t *p, uint32_t v)
    uint16_t ixy_csum_update32(uint16_t hc, uint32_t m, uint32_t m2)
    void ixy_l4_update(uint8_t *d, const ixy_cols *c, uint32_t i, uint32_t m, uint32_t m2, int wide)
    void ixy_ipv4_csum(uint8_t *d, const ixy_cols *c, uint32_t i)
    void ixy_l4_csum(uint8_t *d, const ixy_cols *c, uint32_t i)

IPV4 = IXY_PKT_IPV4
IPV6 = IXY_PKT_IPV6
L4 = IXY_PKT_L4
FRAG = IXY_PKT_FRAG
VLAN = IXY_PKT_VLAN
BAD = IXY_PKT_BAD
RULE_SIZE = sizeof(ixy_rule)
# a latency probe, from its offset (the sequence number's, packets.SEQ_OFFSET):
# sequence number (u64 LE) at +0, send time (ns, CLOCK_MONOTONIC, u64 LE) at
# +PROBE_TIME, signature (u32 LE) at +PROBE_SIGNATURE_AT; PROBE_SIZE bytes
cdef enum:
    _PROBE_TIME = 8
    _PROBE_SIGNATURE_AT = 16
    _PROBE_SIZE = 20
    _PROBE_SIGNATURE = 0x4C797869       # "ixyL"
PROBE_TIME = _PROBE_TIME
PROBE_SIGNATURE_AT = _PROBE_SIGNATURE_AT
PROBE_SIZE = _PROBE_SIZE
PROBE_SIGNATURE = _PROBE_SIGNATURE
FLOW_KEY_SIZE = IXY_FLOW_KEY_SIZE

# (name, struct format, items per packet): the columns of Fields, in the block in this order
_COLUMNS = (
    ("index", "I", 1), ("length", "I", 1), ("src", "I", 1), ("dst", "I", 1), ("hash", "I", 1),
    ("label", "i", 1), ("l3", "H", 1), ("l4", "H", 1), ("ethertype", "H", 1), ("vlan", "H", 1),
    ("sport", "H", 1), ("dport", "H", 1), ("proto", "B", 1), ("flags", "B", 1),
    ("src6", "B", 16), ("dst6", "B", 16),
)
_SIZES = {"I": 4, "i": 4, "H": 2, "B": 1}


cdef class Fields:
    """The header fields of up to `capacity` packets, one C array (column)
    per field, filled by load(batch). `layout` maps each column's name to
    (byte offset in the buffer, struct format, items per packet); the
    buffer protocol exposes the whole block, writable, for NumPy views
    (ixypy.vector.Packets builds them). Numbers are in host byte order.

    pool: if given, load() refuses a batch holding a buffer of another pool,
    so `index` (each packet's buffer index in its pool) addresses the
    pool's frames array (ixypy.vector.frames)."""

    def __cinit__(self, uint32_t capacity, Mempool pool=None):
        if capacity == 0:
            raise BatchError("Fields needs a capacity of at least 1")
        self.capacity = capacity
        self.pool = pool
        self.layout = {}
        cdef Py_ssize_t off = 0
        for name, fmt, items in _COLUMNS:
            self.layout[name] = (off, fmt, items)
            off += (_SIZES[fmt] * items * capacity + 63) & ~63
        self.block_size = off
        self.block = <char *> calloc(off, 1)
        if self.block == NULL:
            raise MemoryError()
        cdef char *b = self.block
        lay = self.layout
        self.c.index = <uint32_t *> (b + <Py_ssize_t> lay["index"][0])
        self.c.length = <uint32_t *> (b + <Py_ssize_t> lay["length"][0])
        self.c.src = <uint32_t *> (b + <Py_ssize_t> lay["src"][0])
        self.c.dst = <uint32_t *> (b + <Py_ssize_t> lay["dst"][0])
        self.c.hash = <uint32_t *> (b + <Py_ssize_t> lay["hash"][0])
        self.c.label = <int32_t *> (b + <Py_ssize_t> lay["label"][0])
        self.c.l3 = <uint16_t *> (b + <Py_ssize_t> lay["l3"][0])
        self.c.l4 = <uint16_t *> (b + <Py_ssize_t> lay["l4"][0])
        self.c.ethertype = <uint16_t *> (b + <Py_ssize_t> lay["ethertype"][0])
        self.c.vlan = <uint16_t *> (b + <Py_ssize_t> lay["vlan"][0])
        self.c.sport = <uint16_t *> (b + <Py_ssize_t> lay["sport"][0])
        self.c.dport = <uint16_t *> (b + <Py_ssize_t> lay["dport"][0])
        self.c.proto = <uint8_t *> (b + <Py_ssize_t> lay["proto"][0])
        self.c.flags = <uint8_t *> (b + <Py_ssize_t> lay["flags"][0])
        self.c.src6 = <uint8_t *> (b + <Py_ssize_t> lay["src6"][0])
        self.c.dst6 = <uint8_t *> (b + <Py_ssize_t> lay["dst6"][0])

    def __dealloc__(self):
        c_free(self.block)

    def __len__(self) -> int:
        return self.count

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.block, self.block_size, 0, flags)

    def load(self, PacketBatch batch not None) -> int:
        """Parse every packet of batch into the columns; returns the count.
        Until the next load, the columns describe this batch: an operation
        given these fields and another batch (or this one after keep,
        split or tx changed it) raises BatchError."""
        self._load(batch)
        return self.count

    cdef int _load(self, PacketBatch batch) except -1:
        if batch.count > self.capacity:
            raise BatchError(f"a batch of {batch.count} packets does not fit Fields of capacity {self.capacity}")
        cdef uint32_t bad = _parse_all(batch.bufs, batch.count, &self.c, &self.pool.pool if self.pool is not None else NULL)
        if bad != batch.count:
            self.count = 0
            raise BatchError(f"packet {bad} of the batch is a buffer of another pool than these Fields'")
        self.count = batch.count
        self.first = batch.bufs[0] if batch.count else NULL
        self.loaded = batch.count
        return 0

    cdef int _check(self, PacketBatch batch) except -1:
        if batch.count != self.count or (batch.count and batch.bufs[0] != self.first):
            raise BatchError("these Fields describe another batch (or this one before it changed)",
                             "call fields.load(batch) after keep, split, rx or tx changed the batch")
        return 0

    def flow_hash(self) -> None:
        """Fill the hash column: the 5-tuple flow hash of each packet
        (MurmurHash3's block and finaliser over src, dst, sport << 16 | dport,
        proto; an IPv6 address as the XOR of its four 32-bit words)."""
        _hash_all(&self.c, self.count)

    def flow_keys(self, out) -> int:
        """Write each packet's flow key (FLOW_KEY_SIZE = 40 bytes) into row i
        of out, a writable C-contiguous 2-D array of at least len() rows of
        at least 40 bytes (bytes past 40 are left alone); returns the number
        of packets that are flows. A key is the exact directional 5-tuple,
        for tables that must tell flows apart whatever their hash: source
        and destination address (16 bytes each: the IPv6 address, or the
        IPv4 address in the first 4 bytes and 12 zero bytes), source and
        destination port (big-endian; 0 without a UDP/TCP header), protocol,
        family (4 or 6), 2 zero bytes. A packet that is not well-formed
        IPv4 or IPv6 (not IP, or BAD) gets 40 zero bytes (family 0)."""
        cdef Py_buffer v
        cdef Py_ssize_t width
        PyObject_GetBuffer(out, &v, PyBUF_ND | PyBUF_WRITABLE)
        try:
            width = v.shape[1] * v.itemsize if v.ndim == 2 else 0
            if width < IXY_FLOW_KEY_SIZE or v.shape[0] < self.count:
                raise BatchError(f"flow_keys: need a 2-D array of at least {self.count} rows of at least "
                                 f"{IXY_FLOW_KEY_SIZE} bytes",
                                 f"e.g. numpy.zeros(({self.capacity}, 5), numpy.uint64)")
            return _keys_all(&self.c, self.count, <uint8_t *> v.buf, width)
        finally:
            PyBuffer_Release(&v)

    def match(self, rules) -> None:
        """Fill the label column with the index of the first rule each packet
        matches, -1 for none. rules: a C-contiguous array of RULE_SIZE-byte
        records (ixypy.vector.RULE_DTYPE). Only well-formed IPv4 and IPv6
        packets match; a rule with IPv4 prefixes (family RULE_IPV4) matches
        IPv4 packets only, one with IPv6 prefixes (RULE_IPV6) IPv6 packets
        only, one without (RULE_EITHER) both; a port range other than
        0-65535 needs a UDP/TCP header."""
        cdef Py_buffer v
        _acquire(rules, &v, sizeof(ixy_rule), 0, "rules", 0)
        try:
            _match_all(<const ixy_rule *> v.buf, <uint32_t> (v.len // sizeof(ixy_rule)), &self.c, self.count)
        finally:
            PyBuffer_Release(&v)


cdef int _acquire(object obj, Py_buffer *v, Py_ssize_t itemsize, Py_ssize_t n, str what, int flags) except -1:
    """A contiguous buffer of at least n items of itemsize bytes."""
    PyObject_GetBuffer(obj, v, PyBUF_ND | flags)
    if v.itemsize != itemsize or v.len < n * itemsize or v.len % itemsize:
        got = f"{v.len // v.itemsize} items of {v.itemsize} bytes"
        PyBuffer_Release(v)
        raise BatchError(f"{what}: need {n} items of {itemsize} bytes, got {got}",
                         f"pass a contiguous NumPy array of {itemsize}-byte items (e.g. a slice of a Packets column)")
    return 0


# --- the per-packet loops: C only ----------------------------------------------

cdef uint32_t _parse_all(ixy_buf **bufs, uint32_t n, ixy_cols *c, const void *pool) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        if pool != NULL and <const void *> bufs[i].pool != pool:
            return i
        c.index[i] = bufs[i].pool_index
        ixy_parse(bufs[i].data, bufs[i].len, c, i)
    return n


cdef void _hash_all(ixy_cols *c, uint32_t n) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        c.hash[i] = ixy_flow_hash(c, i)


cdef uint32_t _keys_all(const ixy_cols *c, uint32_t n, uint8_t *out, Py_ssize_t width) noexcept nogil:
    cdef uint32_t i, flows = 0
    for i in range(n):
        flows += ixy_flow_key(c, i, out + i * width)
    return flows


cdef void _match_all(const ixy_rule *rules, uint32_t nrules, ixy_cols *c, uint32_t n) noexcept nogil:
    cdef uint32_t i, r
    for i in range(n):
        c.label[i] = -1
        for r in range(nrules):
            if ixy_rule_matches(&rules[r], c, i):
                c.label[i] = r
                break


cdef uint32_t _keep(ixy_buf **bufs, uint32_t n, const uint8_t *mask) noexcept nogil:
    cdef uint32_t i, j = 0
    for i in range(n):
        if mask[i]:
            bufs[j] = bufs[i]
            j += 1
        else:
            ixy_buf_free(bufs[i])
    return j


def keep(PacketBatch batch not None, mask) -> int:
    """Keep packet i if mask[i] (bool or uint8, at least len(batch) items),
    in order; the others go back to their pools. Returns the count kept."""
    cdef Py_buffer v
    _acquire(mask, &v, 1, batch.count, "mask", 0)
    batch.count = _keep(batch.bufs, batch.count, <const uint8_t *> v.buf)
    PyBuffer_Release(&v)
    return batch.count


def split(PacketBatch batch not None, labels, outs) -> int:
    """Move packet i to the batch outs[labels[i]] (labels: uint8, at least
    len(batch) items), keeping the order within each; a packet whose label
    is len(outs) or more goes back to its pool. What finds its batch full
    stays in batch, in order. Returns the count moved."""
    cdef Py_buffer v
    cdef PacketBatch out
    cdef ixy_buf **tbufs[256]
    cdef uint32_t tcount[256]
    cdef uint32_t tcap[256]
    cdef uint32_t k = len(outs), i, moved
    if k > 256:
        raise BatchError(f"split into {k} batches: at most 256 (uint8 labels)")
    objs = list(outs)
    for i in range(k):
        out = objs[i]
        if out is batch:
            raise BatchError("split: an output batch is the input batch")
        tbufs[i], tcount[i], tcap[i] = out.bufs, out.count, out.capacity
    _acquire(labels, &v, 1, batch.count, "labels", 0)
    moved = _split(batch.bufs, &batch.count, <const uint8_t *> v.buf, tbufs, tcount, tcap, k)
    PyBuffer_Release(&v)
    for i in range(k):
        out = objs[i]
        if out.count != tcount[i]:
            out.count = tcount[i]
            out.pools.merge(batch.pools)
    return moved


cdef uint32_t _split(ixy_buf **bufs, uint32_t *count, const uint8_t *labels, ixy_buf ***tbufs,
                     uint32_t *tcount, const uint32_t *tcap, uint32_t k) noexcept nogil:
    cdef uint32_t i, j = 0, moved = 0
    cdef uint8_t lab
    for i in range(count[0]):
        lab = labels[i]
        if lab >= k:
            ixy_buf_free(bufs[i])
        elif tcount[lab] < tcap[lab]:
            tbufs[lab][tcount[lab]] = bufs[i]
            tcount[lab] += 1
            moved += 1
        else:
            bufs[j] = bufs[i]
            j += 1
    count[0] = j
    return moved


def copy(PacketBatch batch not None, Mempool pool not None, PacketBatch out not None) -> int:
    """Move the packets of batch, in order, into fresh buffers of pool
    appended to out: bytes and length copied, the originals back to their
    pools. For sending on a device whose DMA cannot reach batch's buffers
    (errors.DmaSpaceMismatch): give it pool = that device's dev.mempool().
    What finds no room in out, or no free buffer in pool, stays in batch.
    Returns the count copied."""
    if out is batch:
        raise BatchError("copy: the output batch is the input batch")
    cdef uint32_t cap = ixy_buf_capacity(&pool.pool), i
    for i in range(batch.count):
        if batch.bufs[i].len > cap:
            raise PacketTooLarge(f"copy: packet {i} of {batch.bufs[i].len} bytes exceeds the pool's buffer capacity {cap}")
    out.pools.add(pool)
    return batch._copy_to(out, &pool.pool)


cdef inline const uint8_t *_opt_mask(object mask, Py_buffer *v, uint32_t n) except? NULL:
    if mask is None:
        return NULL
    _acquire(mask, v, 1, n, "mask", 0)
    return <const uint8_t *> v.buf


cdef void _set_addr(ixy_buf **bufs, ixy_cols *c, uint32_t n, bint dst, const uint32_t *values,
                    const uint8_t *mask) noexcept nogil:
    cdef uint32_t i, old, new
    cdef uint8_t *ip
    for i in range(n):
        if (mask != NULL and not mask[i]) or (c.flags[i] & (IXY_PKT_IPV4 | IXY_PKT_BAD)) != IXY_PKT_IPV4:
            continue
        ip = bufs[i].data + c.l3[i]
        new = values[i]
        old = ixy_be32(ip + (16 if dst else 12))
        if old == new:
            continue
        ixy_put32(ip + (16 if dst else 12), new)
        ixy_put16(ip + 10, ixy_csum_update32(ixy_be16(ip + 10), old, new))
        if c.flags[i] & IXY_PKT_L4:
            ixy_l4_update(bufs[i].data, c, i, old, new, 1)
        if dst:
            c.dst[i] = new
        else:
            c.src[i] = new


cdef void _set_port(ixy_buf **bufs, ixy_cols *c, uint32_t n, bint dst, const uint16_t *values,
                    const uint8_t *mask) noexcept nogil:
    cdef uint32_t i
    cdef uint16_t old, new
    cdef uint8_t *p
    for i in range(n):
        if (mask != NULL and not mask[i]) or (c.flags[i] & (IXY_PKT_L4 | IXY_PKT_BAD)) != IXY_PKT_L4:
            continue
        p = bufs[i].data + c.l4[i] + (2 if dst else 0)
        new = values[i]
        old = ixy_be16(p)
        if old == new:
            continue
        ixy_put16(p, new)
        ixy_l4_update(bufs[i].data, c, i, old, new, 0)
        if dst:
            c.dport[i] = new
        else:
            c.sport[i] = new


cdef bint _which(str which) except -1:
    if which == "src":
        return False
    if which == "dst":
        return True
    raise ValueError(f"which must be 'src' or 'dst', not {which!r}")


def set_ipv4(PacketBatch batch not None, Fields fields not None, str which, values, mask=None) -> None:
    """Write values[i] (uint32, host order) as the IPv4 source ('src') or
    destination ('dst') address of packet i (where mask[i], if a mask is
    given), updating the IPv4 header checksum and the UDP/TCP checksum
    incrementally (RFC 1624; a UDP checksum of 0, none, stays 0) and the
    fields' src/dst column. Packets that are not well-formed IPv4 are left
    alone."""
    cdef Py_buffer v, mv
    cdef bint dst = _which(which)
    fields._check(batch)
    _acquire(values, &v, 4, batch.count, "values", 0)
    try:
        m = _opt_mask(mask, &mv, batch.count)
        _set_addr(batch.bufs, &fields.c, batch.count, dst, <const uint32_t *> v.buf, m)
        if m != NULL:
            PyBuffer_Release(&mv)
    finally:
        PyBuffer_Release(&v)


def set_port(PacketBatch batch not None, Fields fields not None, str which, values, mask=None) -> None:
    """Write values[i] (uint16) as the UDP/TCP source or destination port of
    packet i (where mask[i]), updating the L4 checksum incrementally and the
    sport/dport column. Packets without a UDP/TCP header are left alone."""
    cdef Py_buffer v, mv
    cdef bint dst = _which(which)
    fields._check(batch)
    _acquire(values, &v, 2, batch.count, "values", 0)
    try:
        m = _opt_mask(mask, &mv, batch.count)
        _set_port(batch.bufs, &fields.c, batch.count, dst, <const uint16_t *> v.buf, m)
        if m != NULL:
            PyBuffer_Release(&mv)
    finally:
        PyBuffer_Release(&v)


cdef void _csums(ixy_buf **bufs, ixy_cols *c, uint32_t n, bint l4) noexcept nogil:
    cdef uint32_t i
    cdef uint8_t f
    for i in range(n):
        f = c.flags[i]
        if f & IXY_PKT_BAD:
            continue
        if not l4 and f & IXY_PKT_IPV4:
            ixy_ipv4_csum(bufs[i].data, c, i)
        elif l4 and (f & (IXY_PKT_L4 | IXY_PKT_FRAG)) == IXY_PKT_L4:
            ixy_l4_csum(bufs[i].data, c, i)


def ipv4_checksum(PacketBatch batch not None, Fields fields not None) -> None:
    """Recompute the IPv4 header checksum of every well-formed IPv4 packet."""
    fields._check(batch)
    _csums(batch.bufs, &fields.c, batch.count, False)


def l4_checksum(PacketBatch batch not None, Fields fields not None) -> None:
    """Recompute the UDP or TCP checksum (over the pseudo header, IPv4 or
    IPv6) of every packet with a UDP/TCP header that is not a fragment."""
    fields._check(batch)
    _csums(batch.bufs, &fields.c, batch.count, True)


cdef void _inc(ixy_buf **bufs, uint32_t n, uint32_t offset) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        if offset < bufs[i].len:
            bufs[i].data[offset] += 1


def inc_byte(PacketBatch batch not None, uint32_t offset) -> None:
    """Add 1 (mod 256) to byte offset of every packet long enough: ixy's
    forwarder touch."""
    _inc(batch.bufs, batch.count, offset)


cdef void _macs(ixy_buf **bufs, uint32_t n, const uint8_t *dst, const uint8_t *src) noexcept nogil:
    cdef uint32_t i
    cdef uint8_t tmp[6]
    for i in range(n):
        if bufs[i].len < 12:
            continue
        if dst == NULL and src == NULL:
            memcpy(tmp, bufs[i].data, 6)
            memcpy(bufs[i].data, bufs[i].data + 6, 6)
            memcpy(bufs[i].data + 6, tmp, 6)
            continue
        if dst != NULL:
            memcpy(bufs[i].data, dst, 6)
        if src != NULL:
            memcpy(bufs[i].data + 6, src, 6)


def mac_swap(PacketBatch batch not None) -> None:
    """Swap the destination and source MAC addresses of every frame."""
    _macs(batch.bufs, batch.count, NULL, NULL)


def mac_set(PacketBatch batch not None, dst=None, src=None) -> None:
    """Set the destination and/or source MAC address (6 bytes each) of
    every frame."""
    cdef const uint8_t[::1] d, s
    if dst is None and src is None:
        return
    if dst is not None and len(dst) != 6 or src is not None and len(src) != 6:
        raise ValueError("a MAC address is 6 bytes")
    d = bytes(dst) if dst is not None else b"\0" * 6
    s = bytes(src) if src is not None else b"\0" * 6
    _macs(batch.bufs, batch.count, &d[0] if dst is not None else NULL, &s[0] if src is not None else NULL)


cdef void _rss_hashes(ixy_buf **bufs, uint32_t n, uint32_t *out) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        out[i] = bufs[i].rss_hash


def rss_hashes(PacketBatch batch not None, out) -> int:
    """The NIC's RSS hash of each packet into out (uint32, at least
    len(batch) items, e.g. numpy.empty(batch.capacity, numpy.uint32)), as
    the rx queue left it in the buffer: meaningful only for packets received
    on a queue whose driver copies it (IntelDevice.enable_rss does). Returns
    len(batch)."""
    cdef Py_buffer v
    _acquire(out, &v, 4, batch.count, "out", PyBUF_WRITABLE)
    _rss_hashes(batch.bufs, batch.count, <uint32_t *> v.buf)
    PyBuffer_Release(&v)
    return batch.count


cdef void _rss_types(ixy_buf **bufs, uint32_t n, uint8_t *out) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        out[i] = <uint8_t> bufs[i].rss_type


def rss_types(PacketBatch batch not None, out) -> int:
    """The RSS type of each packet (uint8, at least len(batch) items; the
    values of ixypy.drivers.intel.RSS_TYPES, 0: no hash) into out, as
    rss_hashes does the hash. Returns len(batch)."""
    cdef Py_buffer v
    _acquire(out, &v, 1, batch.count, "out", PyBUF_WRITABLE)
    _rss_types(batch.bufs, batch.count, <uint8_t *> v.buf)
    PyBuffer_Release(&v)
    return batch.count


# --- latency probes -------------------------------------------------------------

cdef extern from "ixy_stop.h" nogil:
    int64_t ixy_now_ns()      # CLOCK_MONOTONIC in ns, the clock the loops and the models read


cdef uint32_t _stamp_probes(ixy_buf **bufs, uint32_t n, uint32_t offset, uint64_t seq, int64_t now) noexcept nogil:
    """Stamp the packets long enough; the index of the first too short (n: none)."""
    cdef uint32_t i, short = n, signature = _PROBE_SIGNATURE
    for i in range(n):
        if offset + _PROBE_SIZE <= bufs[i].len:
            memcpy(bufs[i].data + offset, &seq, 8)
            memcpy(bufs[i].data + offset + _PROBE_TIME, &now, 8)
            memcpy(bufs[i].data + offset + _PROBE_SIGNATURE_AT, &signature, 4)
        elif short == n:
            short = i
        seq += 1
    return short


def stamp_probes(PacketBatch batch not None, uint64_t first_seq, uint32_t offset) -> int:
    """Make every packet of the batch a latency probe: at `offset` its
    sequence number (first_seq, first_seq + 1, ...), at offset + PROBE_TIME
    the time now in ns (CLOCK_MONOTONIC, read once for the batch: stamp
    right before tx), at offset + PROBE_SIGNATURE_AT the signature. Returns
    the next sequence number. A packet shorter than offset + PROBE_SIZE is
    left alone (its number skipped) and then PacketTooLarge names it."""
    cdef uint32_t short = _stamp_probes(batch.bufs, batch.count, offset, first_seq, ixy_now_ns())
    if short != batch.count:
        raise PacketTooLarge(f"packet {short} ({batch.bufs[short].len} bytes) too short for a probe at {offset}",
                             f"give probes at least {offset + _PROBE_SIZE} bytes")
    return first_seq + batch.count


cdef uint32_t _probe_latencies(ixy_buf **bufs, uint32_t n, uint32_t offset, int64_t rx_ns, uint64_t *seqs,
                               int64_t *latencies) noexcept nogil:
    cdef uint32_t i, found = 0, signature
    cdef int64_t sent
    for i in range(n):
        if offset + _PROBE_SIZE > bufs[i].len:
            continue
        memcpy(&signature, bufs[i].data + offset + _PROBE_SIGNATURE_AT, 4)
        if signature != _PROBE_SIGNATURE:
            continue
        memcpy(&seqs[found], bufs[i].data + offset, 8)
        memcpy(&sent, bufs[i].data + offset + _PROBE_TIME, 8)
        latencies[found] = rx_ns - sent
        found += 1
    return found


def probe_latencies(PacketBatch batch not None, int64_t rx_ns, seqs, latencies, uint32_t offset) -> int:
    """The probes of a received batch (packets with the signature that
    stamp_probes writes; others are passed over), in batch order: each one's
    sequence number into seqs (uint64, e.g. array("Q")) and its latency,
    rx_ns minus its send time in ns, into latencies (int64, array("q")),
    both with room for len(batch) items. rx_ns: the receive time (ns,
    CLOCK_MONOTONIC, e.g. time.monotonic_ns() right after rx). Returns the
    number of probes."""
    cdef Py_buffer vs, vl
    _acquire(seqs, &vs, 8, batch.count, "seqs", PyBUF_WRITABLE)
    try:
        _acquire(latencies, &vl, 8, batch.count, "latencies", PyBUF_WRITABLE)
    except BaseException:
        PyBuffer_Release(&vs)
        raise
    cdef uint32_t found = _probe_latencies(batch.bufs, batch.count, offset, rx_ns, <uint64_t *> vs.buf,
                                           <int64_t *> vl.buf)
    PyBuffer_Release(&vl)
    PyBuffer_Release(&vs)
    return found
