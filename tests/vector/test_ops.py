"""ixypy.fastpath.ops and ixypy.vector on buffers in host memory, against
the per-packet reference (reference.py) on hypothesis-generated frames.
Each test names the mutations of the C it is meant to catch."""
from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ixypy import PacketBatch
from ixypy import vector as vec
from ixypy.errors import BatchError
from ixypy.fastpath.mempool import Mempool

from . import reference as ref
from .frames import frame, frames

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ("length", "l3", "l4", "ethertype", "vlan", "proto", "flags", "src", "dst", "sport", "dport")


def fill(pool: Mempool, data: list, capacity: int = 64) -> PacketBatch:
    """A batch holding data, one frame each."""
    batch = PacketBatch(capacity)
    assert batch.alloc(pool, len(data)) == len(data)
    for i, f in enumerate(data):
        batch.write(i, f)
    return batch


def load(pool: Mempool, data: list, capacity: int = 64):
    """A batch holding data (one frame each) and its Packets, loaded."""
    batch = fill(pool, data, capacity)
    pk = vec.Packets(capacity, pool)
    pk.load(batch)
    return batch, pk


def row(pk, i: int) -> dict:
    r = {c: int(getattr(pk, c)[i]) for c in COLUMNS}
    r["src6"], r["dst6"] = bytes(pk.src6[i]), bytes(pk.dst6[i])
    return r


@SETTINGS
@given(frames())
def test_parse_matches_reference(pool, data):
    """Mutations it is meant to catch: the IPv4 total-length check removed
    (`len < l3 + tot`), the VLAN loop limited to one tag, the IPv6 fragment
    offset mask 0xFFF8 -> 0xFFFF."""
    batch, pk = load(pool, data)
    try:
        assert len(pk) == len(data)
        for i, f in enumerate(data):
            want = ref.parse(f)
            want.pop("length")
            got = row(pk, i)
            got.pop("length")
            assert got == want, (i, f.hex())
        assert list(pk.length) == [len(f) for f in data]
        assert list(pk.index) == [int.from_bytes(bytes(pk.frames[pk.index[i], :0]), "big") * 0 + pk.index[i]
                                  for i in range(len(data))]
        assert all(bytes(pk.frames[pk.index[i], :len(f)]) == f for i, f in enumerate(data))
    finally:
        batch.free()
    assert pool.double_frees == 0


def test_short_frames_are_bad(pool):
    """Frames shorter than an Ethernet header, or cut inside a VLAN tag."""
    batch, pk = load(pool, [b"", b"\x01" * 13, bytes(12) + b"\x81\x00\x00"])
    try:
        assert list(pk.flags) == [vec.BAD] * 3 and list(pk.l4) == [0, 0, 0]
    finally:
        batch.free()


@SETTINGS
@given(frames())
def test_flow_hash_matches_reference(pool, data):
    """Mutation it is meant to catch: the IPv6 fold using 3 of the 4 address words."""
    batch, pk = load(pool, data)
    try:
        pk.flow_hash()
        assert [int(h) for h in pk.hash] == [ref.flow_hash(ref.parse(f)) for f in data]
    finally:
        batch.free()


def ref_flow_key(p: dict) -> bytes:
    """Fields.flow_keys' 40 bytes for one parsed packet, per the docstring."""
    f = p["flags"]
    if f & ref.BAD or not f & (ref.IPV4 | ref.IPV6):
        return bytes(40)
    if f & ref.IPV4:
        src, dst = p["src"].to_bytes(4, "big").ljust(16, b"\0"), p["dst"].to_bytes(4, "big").ljust(16, b"\0")
    else:
        src, dst = p["src6"], p["dst6"]
    return src + dst + struct.pack(">HHBBxx", p["sport"], p["dport"], p["proto"], 4 if f & ref.IPV4 else 6)


@SETTINGS
@given(frames())
def test_flow_keys_match_reference(pool, data):
    """Into rows of 64 bytes (uint64 words) and of exactly 40; bytes past 40
    are left alone. Mutations it is meant to catch: BAD packets given a key
    (the BAD test dropped), the IPv4 addresses at byte 12 (as in the IPv4
    header) instead of 0, the family byte 4 for IPv6 too, the row stride
    taken as 40 whatever the width."""
    batch, pk = load(pool, data)
    try:
        want = [ref_flow_key(ref.parse(f)) for f in data]
        wide = np.full((64, 8), 0xAAAAAAAAAAAAAAAA, np.uint64)
        assert pk.flow_keys(wide) == sum(1 for k in want if k[37])
        rows = wide.view(np.uint8)
        assert [bytes(rows[i, :40]) for i in range(len(data))] == want
        assert (rows[:, 40:] == 0xAA).all() and (rows[len(data):] == 0xAA).all()
        exact = np.zeros((len(data), 40), np.uint8)
        pk.flow_keys(exact)
        assert [bytes(r) for r in exact] == want
    finally:
        batch.free()


def test_flow_keys_refuses_a_small_array(pool):
    batch, pk = load(pool, [bytes(60)] * 4)
    try:
        for bad in (np.zeros((4, 39), np.uint8), np.zeros((3, 40), np.uint8), np.zeros(160, np.uint8)):
            with pytest.raises(BatchError, match="flow_keys"):
                pk.flow_keys(bad)
        with pytest.raises((BatchError, ValueError, BufferError)):
            pk.flow_keys(np.zeros((4, 80), np.uint8)[:, ::2])         # not contiguous
    finally:
        batch.free()


@SETTINGS
@given(st.lists(st.booleans(), min_size=0, max_size=40))
def test_keep_compacts_in_order_and_frees_the_rest(pool, mask):
    """Mutations it is meant to catch: dropped buffers not freed (free_count), the
    kept ones written to slot i instead of j (order)."""
    free = pool.free_count
    batch = PacketBatch(64)
    batch.alloc(pool, len(mask), length=60)
    for i in range(len(mask)):
        batch.write(i, i.to_bytes(4, "big") * 15)
    assert vec.keep(batch, np.array(mask, bool)) == sum(mask) == len(batch)
    assert [int.from_bytes(bytes(batch[i][:4]), "big") for i in range(len(batch))] == \
        [i for i, m in enumerate(mask) if m]
    assert pool.free_count == free - sum(mask)
    batch.free()
    assert pool.free_count == free and pool.double_frees == 0


def test_keep_refuses_a_short_mask(pool):
    batch = PacketBatch(8)
    batch.alloc(pool, 4, length=60)
    with pytest.raises(BatchError, match="mask"):
        vec.keep(batch, np.ones(3, bool))
    with pytest.raises(BatchError, match="mask"):
        vec.keep(batch, np.ones(4, np.int32))      # 4-byte items are not a mask
    assert len(batch) == 4
    batch.free()


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=0, max_size=40), st.integers(1, 16))
def test_split_by_label(pool, labels, room):
    """Labels 0-2 go to three batches of `room` slots, 3 and 4 are dropped;
    what finds its batch full stays. Mutations it is meant to catch: an overflowing
    packet dropped instead of kept; labels >= len(outs) kept."""
    free = pool.free_count
    batch = PacketBatch(64)
    batch.alloc(pool, len(labels), length=60)
    for i in range(len(labels)):
        batch.write(i, i.to_bytes(4, "big") * 15)
    outs = [PacketBatch(room) for _ in range(3)]
    moved = vec.split(batch, np.array(labels, np.uint8), outs)
    seq = lambda b: [int.from_bytes(bytes(b[i][:4]), "big") for i in range(len(b))]
    want = [[i for i, x in enumerate(labels) if x == k] for k in range(3)]
    for k in range(3):
        assert seq(outs[k]) == want[k][:room]
    assert seq(batch) == sorted(i for k in range(3) for i in want[k][room:])
    assert moved == sum(min(room, len(w)) for w in want)
    dropped = sum(1 for x in labels if x >= 3)
    assert pool.free_count == free - len(labels) + dropped
    for b in outs + [batch]:
        b.free()
    assert pool.free_count == free and pool.double_frees == 0


def _wellformed(data: list) -> list:
    return [f for f in data if ref.checksums_ok(f) is not None]


@SETTINGS
@given(frames())
def test_checksums_recomputed_match_scapy(pool, data):
    """Every checksum field zeroed, then ipv4_checksum and l4_checksum:
    scapy agrees with every recomputed checksum of an unfragmented
    well-formed packet. Mutations it is meant to catch: the IPv6 pseudo header
    starting at byte 12 instead of 8; the UDP 0 -> 0xFFFF rule removed."""
    batch, pk = load(pool, data)
    try:
        fr = pk.frames
        for i in range(len(data)):
            p = ref.parse(data[i])
            if p["flags"] & ref.BAD:
                continue
            if p["flags"] & ref.IPV4:
                fr[pk.index[i], p["l3"] + 10:p["l3"] + 12] = 0
            if p["flags"] & ref.L4 and not p["flags"] & ref.FRAG:
                at = p["l4"] + (6 if p["proto"] == 17 else 16)
                fr[pk.index[i], at:at + 2] = 0x55
        vec.ipv4_checksum(batch, pk)
        vec.l4_checksum(batch, pk)
        for i in range(len(data)):
            p = ref.parse(data[i])
            if p["flags"] & ref.BAD or not p["flags"] & (ref.IPV4 | ref.IPV6):
                continue
            out = bytes(batch[i])
            if p["flags"] & ref.FRAG:
                if p["flags"] & ref.IPV4:
                    from scapy.layers.inet import IP
                    from scapy.layers.l2 import Ether
                    got = Ether(out)[IP]
                    fresh = got.copy()
                    del fresh.chksum
                    assert got.chksum == Ether(bytes(Ether(out).copy()))[IP].__class__(bytes(fresh)).chksum
                continue
            assert ref.checksums_ok(out) in (True, None), out.hex()
    finally:
        batch.free()


@SETTINGS
@given(frames(), st.integers(0, 2**32 - 1), st.integers(0, 65535))
def test_incremental_rewrite_keeps_checksums_valid(pool, data, addr, port):
    """Rewrite src address and dst port of every packet (RFC 1624): each
    packet whose checksums scapy accepted before still passes, and its
    bytes equal the reference rewrite with a full recompute. Mutations it
    failed on: the one's complement fold done once (a carry lost); the
    L4 update skipped for the pseudo-header address."""
    valid = [ref.checksums_ok(f) for f in data]
    batch, pk = load(pool, data)
    try:
        n = len(batch)
        vec.set_ipv4(batch, pk, "src", np.full(n, addr, np.uint32))
        vec.set_port(batch, pk, "dst", np.full(n, port, np.uint16))
        for i, f in enumerate(data):
            p = ref.parse(f)
            out = bytes(batch[i])
            ok4 = p["flags"] & (ref.IPV4 | ref.BAD) == ref.IPV4
            ok4l = p["flags"] & (ref.L4 | ref.BAD) == ref.L4
            if ok4:
                assert int.from_bytes(out[p["l3"] + 12:p["l3"] + 16], "big") == addr
                assert int(pk.src[i]) == addr
            if ok4l:
                assert int.from_bytes(out[p["l4"] + 2:p["l4"] + 4], "big") == port
            if not ok4 and not ok4l:
                assert out == f                    # not well-formed IPv4 nor UDP/TCP: untouched
            if valid[i] and not p["flags"] & ref.FRAG:
                assert ref.checksums_ok(out) is True, (f.hex(), out.hex())
    finally:
        batch.free()


def test_udp_without_checksum_stays_without(pool):
    from ixypy.packets import udp_frame
    batch, pk = load(pool, [udp_frame(60)])
    try:
        vec.set_port(batch, pk, "src", np.array([7], np.uint16))
        vec.set_ipv4(batch, pk, "dst", np.array([0x01020304], np.uint32))
        assert bytes(batch[0][40:42]) == b"\0\0" and ref.checksums_ok(bytes(batch[0])) is not False
    finally:
        batch.free()


RULES = [
    ("udp", "10.0.0.0/8", "any", "any", "53"),
    ("tcp", "any", "1024-65535", "192.168.0.0/16", "80-443"),
    ("any", "8.8.8.8/32", "any", "any", "any"),
    ("17", "any", "0-1000", "10.1.0.0/16", "any"),
    ("icmp", "any", "any", "any", "any"),
    ("any", "any", "any", "any", "5000-6000"),
    ("udp", "2001:db8::/32", "any", "any", "53"),
    ("any", "any", "any", "2001:db8::2/127", "any"),
    ("tcp", "fe80::/10", "any", "2001:db8::/33", "80-443"),
]


def ref_prefix(text: str):
    """A rule's address as the reference takes it: an ipaddress network, or
    None for any (parsed here, not by ixypy.vector)."""
    return None if text in ("any", "*") else ipaddress.ip_network(text, strict=False)


def ref_rules(entries):
    out = []
    for proto, src, sport, dst, dport in entries:
        p = vec.PROTOCOLS.get(proto, None)
        p = int(proto) if p is None else (None if p == vec.ANY_PROTO else p)
        out.append((p, ref_prefix(src), vec.port_range(sport), ref_prefix(dst), vec.port_range(dport)))
    return out


@SETTINGS
@given(frames(), st.permutations(RULES))
def test_match_first_rule(pool, data, rules):
    """Mutations it is meant to catch: the rule scan not stopping at the first match
    (last match wins); a port range applied to packets without ports."""
    batch, pk = load(pool, data)
    try:
        pk.match(vec.rules(rules))
        want = [ref.first_match(ref_rules(rules), ref.parse(f)) for f in data]
        assert list(pk.label) == want
    finally:
        batch.free()


def test_stale_fields_are_refused(pool):
    """An operation given the fields of a batch that changed since load."""
    from ixypy.packets import udp_frame
    batch, pk = load(pool, [udp_frame(60)] * 4)
    vec.keep(batch, np.array([1, 0, 1, 1], bool))
    with pytest.raises(BatchError, match="another batch"):
        vec.set_port(batch, pk, "src", np.zeros(3, np.uint16))
    pk.load(batch)
    vec.set_port(batch, pk, "src", np.zeros(3, np.uint16))
    batch.free()


def test_macs_and_inc_byte(pool):
    from ixypy.packets import udp_frame
    f = udp_frame(60)
    batch, pk = load(pool, [f, f])
    vec.mac_swap(batch)
    assert bytes(batch[0][:12]) == f[6:12] + f[:6]
    vec.mac_set(batch, dst=b"\xaa" * 6)
    assert bytes(batch[1][:12]) == b"\xaa" * 6 + f[:6]
    vec.inc_byte(batch, 59)
    vec.inc_byte(batch, 60)              # past the end: left alone
    assert batch[0][59] == (f[59] + 1) & 0xFF and len(batch[0]) == 60
    batch.free()


def test_frames_and_columns_are_zero_copy(pool):
    from ixypy.packets import udp_frame
    batch, pk = load(pool, [udp_frame(60, sport=i) for i in range(5)])
    try:
        ttl = vec.headers(pool)["ip"]["ttl"]
        ttl[pk.index] -= 1                             # writes the DMA memory
        assert [batch[i][22] for i in range(5)] == [63] * 5
        sport = vec.column(pool, 34, ">u2")
        assert list(sport[pk.index]) == list(range(5))
        pk.frames[pk.index, pk.l4 + 1] = 9             # low byte of sport
        assert list(sport[pk.index]) == [9] * 5
    finally:
        batch.free()
