# cython: language_level=3, binding=False, always_allow_keywords=False
"""A compiled first-match rule classifier over the 5-tuple, for firewalls
(ixypy.vapps.firewall): :class:`Classifier` turns a table of rules
(ixypy.vector.RULE_DTYPE records: protocol, IPv4 or IPv6 source and
destination prefixes, source and destination port ranges) and an action per rule into
lookup tables (csrc/ixy_classify.h); ``classifier(batch)`` then parses every
packet (the parser of ops.Fields.load, with a fast path of its own for
untagged IPv4 that reads only the 5-tuple), finds its first matching rule,
counts it and keeps or drops the packet, in one C loop with the GIL
released (the dropped buffers go back to their pools after it, with the
GIL held: another thread may be allocating from them): no Python object
per packet, one call per batch.

The matching is Fields.match's (csrc/ixy_pkt.h, ixy_rule_admits): only
well-formed IPv4 and IPv6 packets match a rule; a rule of family RULE_IPV4
(IPv4 prefixes) matches IPv4 packets only, one of RULE_IPV6 IPv6 packets
only, one without a prefix both; a port range other than 0-65535 needs a
UDP/TCP header (not a non-first fragment); protocol 256 is any. IPv4
packets are matched by the lookup tables; IPv6 packets (the general parse)
by a scan of only the rules an IPv6 packet can match.

Not thread-safe: a classifier's counters are plain integers, so each worker
has its own, and a batch must not change while a call runs on it."""
from cpython.buffer cimport PyBUF_ND, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport calloc, malloc, realloc, free as c_free
from libc.string cimport memcmp, memset

from .batch cimport PacketBatch
from .mempool cimport ixy_buf, ixy_buf_free_n
from .ops cimport ixy_rule

from ..errors import BatchError

cdef enum:
    ANY_PROTO = 256              # ixy_rule.proto: any protocol
    RULE_EITHER = 0              # ixy_rule.family (IXY_RULE_EITHER, _IPV4, _IPV6)
    RULE_IPV4 = 4
    RULE_IPV6 = 6


cdef class Classifier:
    """Classifier(rules, actions, default=True): rules, a C-contiguous
    buffer of RULE_SIZE-byte records (ixypy.vector.rules()); actions, keep
    (true) or drop (false) per rule; default, for a packet no rule matches.
    classifier(batch) filters a batch: a vector app's step, as the
    Firewall (a subclass) is.

    actions (memoryview "B", writable, nrules + 1: per rule, then the
    default) and counts (memoryview "q", int64, nrules + 1: packets per
    rule, then those no rule matched) are views of the classifier's own
    arrays: np.frombuffer(c.counts, np.int64) reads the counters without a
    copy, and writing c.actions changes the verdicts. passed, dropped: the
    packets it kept and dropped."""

    def __cinit__(self, *args, **kwargs):
        # no rules, keep everything, until __init__ (a subclass's too) compiles some
        self._compile(b"", [], True)

    def __init__(self, rules, actions, bint default=True):
        self._compile(rules, actions, default)

    cdef int _compile(self, object rules, object actions, bint default) except -1:
        cdef Py_buffer v
        cdef uint32_t n
        cdef ixy_classifier fresh
        memset(&fresh, 0, sizeof(fresh))
        PyObject_GetBuffer(rules, &v, PyBUF_ND)
        try:
            if v.len % sizeof(ixy_rule):
                raise BatchError(f"rules: {v.len} bytes is not a whole number of {sizeof(ixy_rule)}-byte rules",
                                 "pass ixypy.vector.rules(...) (a RULE_DTYPE array)")
            n = <uint32_t> (v.len // sizeof(ixy_rule))
            acts = [bool(a) for a in actions]
            if len(acts) != n:
                raise ValueError(f"{n} rules but {len(acts)} actions")
            if _build(&fresh, <const ixy_rule *> v.buf, n) < 0:
                _free(&fresh)
                raise MemoryError()
        finally:
            PyBuffer_Release(&v)
        _free(&self.c)
        self.c = fresh
        self.nrules = n
        self._actions = bytearray(acts + [bool(default)])
        self._counts = bytearray(8 * (n + 1))
        self.action = <uint8_t *> <char *> self._actions
        self.count = <int64_t *> <char *> self._counts
        self.actions = memoryview(self._actions)
        self.counts = memoryview(self._counts).cast("q")
        self.passed = self.dropped = 0
        return 0

    def __dealloc__(self):
        _free(&self.c)

    def __call__(self, PacketBatch batch not None) -> int:
        """Keep the packets whose first matching rule (or the default)
        keeps them, in order; the others go back to their pools. Counts
        every packet under its rule. Returns the count kept."""
        cdef uint32_t n = batch.count, kept
        with nogil:
            kept = ixy_filter(&self.c, self.action, self.count, batch.bufs, n)
        ixy_buf_free_n(batch.bufs + kept, n - kept)       # the pools are the GIL's: freed with it held
        batch.count = kept
        self.passed += kept
        self.dropped += n - kept
        return kept

    def classify(self, PacketBatch batch not None, labels) -> None:
        """Write the index of the first rule packet i matches (-1 for none)
        into labels[i] (int32, writable, at least len(batch) items); counts,
        actions and the batch are left alone."""
        cdef Py_buffer v
        PyObject_GetBuffer(labels, &v, PyBUF_ND | PyBUF_WRITABLE)
        try:
            if v.itemsize != 4 or v.len < 4 * <Py_ssize_t> batch.count:
                raise BatchError(f"labels: need {batch.count} int32 items, got {v.len // v.itemsize} of "
                                 f"{v.itemsize} bytes", "e.g. numpy.zeros(capacity, numpy.int32)")
            with nogil:
                _classify(&self.c, batch.bufs, batch.count, <int32_t *> v.buf)
        finally:
            PyBuffer_Release(&v)


# --- the per-packet loops: C only ----------------------------------------------

cdef void _classify(const ixy_classifier *c, ixy_buf **bufs, uint32_t n, int32_t *labels) noexcept nogil:
    cdef uint32_t i
    for i in range(n):
        labels[i] = ixy_classify(c, bufs[i].data, bufs[i].len)


# --- compiling the rules ---------------------------------------------------------

cdef void _free(ixy_classifier *c) noexcept nogil:
    c_free(c.words)
    c_free(c.leaves)
    c_free(c.addr)
    c_free(c.rules6)
    c_free(c.index6)
    memset(c, 0, sizeof(ixy_classifier))


cdef inline bint _octet_exact(const ixy_rule_addr *a) noexcept nogil:
    """Whether (addr & mask) == net holds exactly when the first octets
    do, for both prefixes: no mask bit below the first octet, no net bit
    outside the mask."""
    return ((a.src_mask | a.dst_mask) & 0x00FFFFFF) == 0 and \
        (a.src_net & ~a.src_mask) == 0 and (a.dst_net & ~a.dst_mask) == 0


cdef inline bint _for_ipv4(const ixy_rule *r) noexcept nogil:
    """Whether an IPv4 packet can match rule r (ixy_rule_admits): a rule of
    either family or IPv4's; the tables hold the others nowhere."""
    return r.family == RULE_EITHER or r.family == RULE_IPV4


cdef inline bint _for_ipv6(const ixy_rule *r) noexcept nogil:
    """Whether an IPv6 packet can match rule r: a rule of either family or
    IPv6's, without an IPv4 prefix (mask not 0)."""
    return (r.family == RULE_EITHER or r.family == RULE_IPV6) and r.src_mask == 0 and r.dst_mask == 0


cdef int _build(ixy_classifier *c, const ixy_rule *rules, uint32_t n) noexcept nogil:
    """Fill c from n rules; -1 if out of memory (what was allocated is freed
    by the owner). Rule r is bit r % 64 of word r // 64."""
    cdef uint32_t nwords = (n + 63) // 64, w, r, p, h, b, nleaves = 0, field, width
    cdef uint64_t bit
    cdef const ixy_rule *ru
    cdef ixy_rule_addr a
    cdef uint32_t *hi_table
    cdef ixy_rule_word *wd
    cdef uint64_t *leaf
    cdef uint64_t *shrunk
    cdef int lo, hi, port, first, last
    c.nrules = n
    c.nwords = nwords
    c.words = <ixy_rule_word *> calloc(nwords + 1, sizeof(ixy_rule_word))
    # at most one leaf per high byte (and the no-port key 256), port field and word; shrunk below
    c.leaves = <uint64_t *> malloc((nwords * 514 + 1) * 256 * sizeof(uint64_t))
    c.addr = <ixy_rule_addr *> calloc(n + 1, sizeof(ixy_rule_addr))
    c.rules6 = <ixy_rule *> calloc(n + 1, sizeof(ixy_rule))
    c.index6 = <uint32_t *> calloc(n + 1, sizeof(uint32_t))
    if c.words == NULL or c.leaves == NULL or c.addr == NULL or c.rules6 == NULL or c.index6 == NULL:
        return -1
    for r in range(n):
        ru = &rules[r]
        if _for_ipv6(ru):                     # the IPv6 packets' scan (ixy_classify6)
            c.rules6[c.n6] = ru[0]
            c.index6[c.n6] = r
            c.n6 += 1
        if not _for_ipv4(ru):                 # no octet admits it: no IPv4 packet reaches it
            continue
        wd = &c.words[r // 64]
        bit = (<uint64_t> 1) << (r % 64)
        if ru.proto == ANY_PROTO:
            for p in range(256):
                wd.proto[p] |= bit
        elif ru.proto < 256:                  # above 256: matches no packet, as in ixy_rule_matches
            wd.proto[ru.proto] |= bit
        a.src_mask = ru.src_mask             # host order here, the frame's (network) order in c.addr
        a.src_net = ru.src_net if ru.src_mask else 0
        a.dst_mask = ru.dst_mask
        a.dst_net = ru.dst_net if ru.dst_mask else 0
        if _octet_exact(&a):                  # the octet tables decide the prefixes: no test per packet
            wd.exact |= bit
        for p in range(256):              # the first octets each prefix admits (a necessary condition)
            if (p & (a.src_mask >> 24)) == a.src_net >> 24:
                wd.src_octet[p] |= bit
            if (p & (a.dst_mask >> 24)) == a.dst_net >> 24:
                wd.dst_octet[p] |= bit
        c.addr[r].src_mask = ixy_net32(a.src_mask)
        c.addr[r].src_net = ixy_net32(a.src_net)
        c.addr[r].dst_mask = ixy_net32(a.dst_mask)
        c.addr[r].dst_net = ixy_net32(a.dst_net)
    # the port tables: for each word and field, a leaf (256 rule masks, by the
    # port's low byte) per high byte, a leaf equal to the one made just before
    # shared (so a range spanning many high bytes costs one leaf); high byte
    # 256 is IXY_NO_PORT (no UDP/TCP header): low byte 0 admits the rules
    # whose range is 0-65535
    for w in range(nwords):
        width = n - w * 64 if n - w * 64 < 64 else 64
        for field in range(2):
            hi_table = &c.words[w].sport_hi[0] if field == 0 else &c.words[w].dport_hi[0]
            for h in range(257):
                leaf = c.leaves + nleaves * 256
                memset(leaf, 0, 256 * sizeof(uint64_t))
                for b in range(width):
                    ru = &rules[w * 64 + b]
                    lo = ru.sport_lo if field == 0 else ru.dport_lo
                    hi = ru.sport_hi if field == 0 else ru.dport_hi
                    if h == 256:
                        if lo == 0 and hi == 0xFFFF:
                            leaf[0] |= (<uint64_t> 1) << b
                        continue
                    first = lo if lo > <int> (h << 8) else <int> (h << 8)
                    last = hi if hi < <int> ((h << 8) | 255) else <int> ((h << 8) | 255)
                    for port in range(first, last + 1):
                        leaf[port & 255] |= (<uint64_t> 1) << b
                if nleaves and memcmp(leaf, leaf - 256, 256 * sizeof(uint64_t)) == 0:
                    hi_table[h] = (nleaves - 1) * 256
                else:
                    hi_table[h] = nleaves * 256
                    nleaves += 1
    shrunk = <uint64_t *> realloc(c.leaves, (nleaves + 1) * 256 * sizeof(uint64_t))
    if shrunk != NULL:
        c.leaves = shrunk
    return 0
