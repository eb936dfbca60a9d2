"""NumPy at the packet: a batch's header fields as NumPy columns and its
frames as rows of one zero-copy array, with the per-batch operations NumPy
does badly done in C (ixypy.fastpath.ops). Needs NumPy (``pip install
ixypy[vector]``). For example::

    from ixypy import vector as vec

    pk = vec.Packets(256, pool=dev.rx_mempool)   # columns for up to 256 packets
    frames = vec.frames(dev.rx_mempool)           # (num_bufs, buf_capacity) uint8, the pool's DMA memory
    while True:
        rxq.rx(batch)
        pk.load(batch)                            # C: parse every frame into the columns
        udp53 = (pk.proto == 17) & (pk.dport == 53)
        frames[pk.index, pk.l3 + 8] -= 1          # TTL of every packet (IPv4 at any VLAN depth)
        vec.keep(batch, ~udp53)                   # C: drop the DNS packets, compact in order
        txq.tx(batch)

Each column (``pk.src``, ``pk.dport``, ...) is a NumPy view of a C array of
the last loaded batch, ``len(batch)`` long, in host byte order; ``pk.index``
is each packet's buffer number in its pool, the row of ``frames(pool)``, so
``frames[pk.index, offset]`` reads or writes a byte of every packet
(fancy indexing: one gather or scatter per batch, no Python object per
packet). See docs/vector.md.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Tuple, Union

import numpy as np

from .errors import InvalidRule
from .fastpath.batch import PacketBatch
from .fastpath.mempool import Mempool
from .fastpath.ops import (BAD, FLOW_KEY_SIZE, FRAG, IPV4, IPV6, L4, RULE_SIZE, VLAN, Fields, inc_byte, ipv4_checksum,
                           keep, l4_checksum, mac_set, mac_swap, set_ipv4, set_port, split)

__all__ = ["Packets", "frames", "column", "headers", "keep", "split", "set_ipv4", "set_port", "ipv4_checksum",
           "l4_checksum", "inc_byte", "mac_swap", "mac_set", "RULE_DTYPE", "rules", "IPV4", "IPV6", "L4", "FRAG",
           "VLAN", "BAD", "FLOW_KEY_SIZE", "ETHER", "VLAN_TAG", "IPV4_HEADER", "IPV6_HEADER", "UDP_HEADER", "TCP_HEADER",
           "ETHER_IPV4_UDP"]

DATA_OFFSET = 128          # IXY_BUF_DATA_OFFSET: the frame starts this far into each pool entry

# --- header layouts (network byte order), for headers(): a field of every buffer at a fixed offset
ETHER = np.dtype([("dst", "u1", 6), ("src", "u1", 6), ("type", ">u2")])
VLAN_TAG = np.dtype([("tci", ">u2"), ("type", ">u2")])
IPV4_HEADER = np.dtype([("ver_ihl", "u1"), ("tos", "u1"), ("len", ">u2"), ("id", ">u2"), ("frag", ">u2"),
                        ("ttl", "u1"), ("proto", "u1"), ("csum", ">u2"), ("src", ">u4"), ("dst", ">u4")])
IPV6_HEADER = np.dtype([("ver_tc_flow", ">u4"), ("plen", ">u2"), ("nxt", "u1"), ("hlim", "u1"),
                        ("src", "u1", 16), ("dst", "u1", 16)])
UDP_HEADER = np.dtype([("sport", ">u2"), ("dport", ">u2"), ("len", ">u2"), ("csum", ">u2")])
TCP_HEADER = np.dtype([("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"),
                       ("flags", "u1"), ("win", ">u2"), ("csum", ">u2"), ("urp", ">u2")])
# an untagged Ethernet/IPv4 (no options)/UDP frame as one record
ETHER_IPV4_UDP = np.dtype([("eth", ETHER), ("ip", IPV4_HEADER), ("udp", UDP_HEADER)])

# one rule of Fields.match (csrc/ixy_pkt.h, struct ixy_rule): the IPv4 prefixes and
# the ports in host byte order, the IPv6 prefixes (net and mask) as 16 bytes in network order;
# family: RULE_EITHER (no prefix), RULE_IPV4 or RULE_IPV6, the packets the rule can match
RULE_DTYPE = np.dtype([("src_net", "=u4"), ("src_mask", "=u4"), ("dst_net", "=u4"), ("dst_mask", "=u4"),
                       ("sport_lo", "=u2"), ("sport_hi", "=u2"), ("dport_lo", "=u2"), ("dport_hi", "=u2"),
                       ("proto", "=u2"), ("family", "u1"), ("pad", "u1"),
                       ("src6_net", "u1", 16), ("src6_mask", "u1", 16), ("dst6_net", "u1", 16),
                       ("dst6_mask", "u1", 16)])
assert RULE_DTYPE.itemsize == RULE_SIZE
ANY_PROTO = 256
RULE_EITHER, RULE_IPV4, RULE_IPV6 = 0, 4, 6     # IXY_RULE_EITHER, _IPV4, _IPV6


def frames(pool: Mempool) -> np.ndarray:
    """The pool's packet buffers as one writable (num_bufs, buf_capacity)
    uint8 array over its DMA memory (no copy): row i is buffer i's frame
    (its first len bytes are the packet). Index it with Packets.index."""
    return np.ndarray((pool.num_bufs, pool.buf_capacity), np.uint8, buffer=memoryview(pool.memory), offset=DATA_OFFSET,
                      strides=(pool.entry_size, 1))


def column(pool: Mempool, offset: int, dtype) -> np.ndarray:
    """A field at a fixed frame offset of every buffer of the pool, as a
    writable (num_bufs,) array of dtype (e.g. ">u2" for a 16-bit field in
    network byte order), no copy: ``column(pool, 12, ">u2")[pk.index]``
    is the EtherType of every packet of the batch."""
    dtype = np.dtype(dtype)
    if offset < 0 or offset + dtype.itemsize > pool.buf_capacity:
        raise ValueError(f"a {dtype.itemsize}-byte field at {offset} does not fit {pool.buf_capacity}-byte buffers")
    return np.ndarray((pool.num_bufs,), dtype, buffer=memoryview(pool.memory), offset=DATA_OFFSET + offset,
                      strides=(pool.entry_size,))


def headers(pool: Mempool, dtype=ETHER_IPV4_UDP, at: int = 0) -> np.ndarray:
    """Records of a structured dtype at frame offset `at` of every buffer
    (stride entry_size): ``headers(pool)["ip"]["ttl"][pk.index]``. Fixed
    offsets: for frames of that layout only (check pk.flags / pk.l3 first)."""
    return column(pool, at, dtype)


class _Column:
    """A column of the loaded batch: its first len(batch) entries, no copy."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"the {name} column of the loaded batch"

    def __get__(self, packets: "Packets", owner: Optional[type] = None) -> np.ndarray:
        return packets._cols[self.name][:packets.count]


class Packets(Fields):
    """The parsed header fields of a batch, as NumPy columns (see the module
    doc). Columns, each ``len(batch)`` long after load(batch):

    index (uint32, buffer number in its pool), length (uint32),
    flags (uint8: IPV4, IPV6, L4, FRAG, VLAN, BAD), ethertype (after the
    VLAN tags), vlan (the outer VID), l3, l4 (header offsets; l4 is 0 when
    there is no L4 header), proto (IPv4 protocol / IPv6 next header),
    src, dst (IPv4 addresses as uint32), src6, dst6 ((n, 16) uint8, IPv6),
    sport, dport (uint16, UDP/TCP), hash (flow_hash()), label (match()).
    flow_keys(out) writes each packet's exact 5-tuple (FLOW_KEY_SIZE bytes)
    into the rows of an array of yours.
    """

    def __init__(self, capacity: int, pool: Optional[Mempool] = None) -> None:
        cols = {}
        for name, (offset, fmt, items) in self.layout.items():
            a = np.frombuffer(memoryview(self), dtype=np.dtype(fmt), count=capacity * items, offset=offset)
            cols[name] = a.reshape(capacity, items) if items > 1 else a
        self._cols = cols
        self._frames = frames(pool) if pool is not None else None

    index = _Column()
    length = _Column()
    flags = _Column()
    ethertype = _Column()
    vlan = _Column()
    l3 = _Column()
    l4 = _Column()
    proto = _Column()
    src = _Column()
    dst = _Column()
    src6 = _Column()
    dst6 = _Column()
    sport = _Column()
    dport = _Column()
    hash = _Column()
    label = _Column()

    @property
    def frames(self) -> np.ndarray:
        """frames(pool) of the pool these Packets were made for."""
        if self._frames is None:
            raise ValueError("these Packets were made without a pool: Packets(capacity, pool=...)")
        return self._frames

    def column(self, name: str) -> np.ndarray:
        """The whole column (capacity long), e.g. for an out= argument."""
        return self._cols[name]


# --- rules for Fields.match ---------------------------------------------------------

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def prefix(text: str) -> Tuple[int, int]:
    """'10.0.0.0/8' (or 'any', '*') -> (net, mask) as host-order integers."""
    if text in ("any", "*"):
        return 0, 0
    net = ipaddress.IPv4Network(text, strict=False)
    return int(net.network_address), int(net.netmask)


def address_prefix(text: str) -> Optional[Network]:
    """'10.0.0.0/8', '2001:db8::/32' (host bits are dropped; a bare address
    is /32 or /128), or None for 'any' / '*'."""
    if text in ("any", "*"):
        return None
    return ipaddress.ip_network(text, strict=False)


def rule_family(src: Optional[Network], dst: Optional[Network]) -> int:
    """The family of a rule's prefixes: RULE_EITHER without any, else
    RULE_IPV4 or RULE_IPV6; InvalidRule for one of each."""
    if src is not None and dst is not None and src.version != dst.version:
        raise InvalidRule(f"source {src} is IPv{src.version} and destination {dst} is IPv{dst.version}")
    given = src if src is not None else dst
    return RULE_EITHER if given is None else {4: RULE_IPV4, 6: RULE_IPV6}[given.version]


def _set_prefix(rule: np.ndarray, side: str, net: Optional[Network]) -> None:
    """Write prefix net (None: any) into the `side` ("src" or "dst") fields
    of one RULE_DTYPE record, as the family's fields: IPv4 host-order
    integers, IPv6 network-order bytes."""
    if net is None:
        return
    if net.version == 4:
        rule[f"{side}_net"], rule[f"{side}_mask"] = int(net.network_address), int(net.netmask)
    else:
        rule[f"{side}6_net"] = np.frombuffer(net.network_address.packed, np.uint8)
        rule[f"{side}6_mask"] = np.frombuffer(net.netmask.packed, np.uint8)


def port_range(text: str) -> Tuple[int, int]:
    """'80', '1024-65535' or 'any' -> (lo, hi)."""
    if text in ("any", "*"):
        return 0, 0xFFFF
    first, _, last = text.partition("-")
    lo, hi = int(first), int(last or first)
    if not 0 <= lo <= hi <= 0xFFFF:
        raise ValueError(f"port range {text!r} outside 0-65535")
    return lo, hi


PROTOCOLS = {"any": ANY_PROTO, "*": ANY_PROTO, "tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}


def rules(entries: Iterable[Tuple[str, str, str, str, str]]) -> np.ndarray:
    """A RULE_DTYPE array from (proto, src prefix, sport range, dst prefix,
    dport range) strings, e.g. ("udp", "10.0.0.0/8", "any", "any", "53") or
    ("tcp", "2001:db8::/32", "any", "any", "443"). A rule with IPv4 prefixes
    matches IPv4 packets only, one with IPv6 prefixes IPv6 packets only, one
    with neither (``any``) both; a rule with one of each is refused
    (errors.InvalidRule)."""
    entries = list(entries)
    out = np.zeros(len(entries), RULE_DTYPE)
    for i, (proto, src, sport, dst, dport) in enumerate(entries):
        p = PROTOCOLS.get(proto.lower())
        if p is None:
            p = int(proto)
            if not 0 <= p <= 255:
                raise ValueError(f"protocol {proto!r} is not tcp, udp, icmp, any or 0-255")
        src_net, dst_net = address_prefix(src), address_prefix(dst)
        rule = out[i]
        rule["family"] = rule_family(src_net, dst_net)
        _set_prefix(rule, "src", src_net)
        _set_prefix(rule, "dst", dst_net)
        rule["sport_lo"], rule["sport_hi"] = port_range(sport)
        rule["dport_lo"], rule["dport_hi"] = port_range(dport)
        rule["proto"] = p
    return out
