"""The vector layer's logic written per packet in plain Python (struct and
bytes indexing, scapy for checksums): the independent reference the C
operations and the apps are compared with."""
from __future__ import annotations

import ipaddress
import struct
from typing import Optional

IPV4, IPV6, L4, FRAG, VLAN, BAD = 1, 2, 4, 8, 16, 32


def parse(frame: bytes) -> dict:
    """The documented parse of one frame (docs/vector.md)."""
    n = len(frame)
    r = dict(length=n, l3=14, l4=0, ethertype=0, vlan=0, proto=0, flags=0, src=0, dst=0, sport=0, dport=0,
             src6=bytes(16), dst6=bytes(16))
    if n < 14:
        r.update(flags=BAD, l3=0)
        return r
    et = struct.unpack_from(">H", frame, 12)[0]
    l3, flags = 14, 0
    for tag in range(2):
        if et not in (0x8100, 0x88A8):
            break
        if n < l3 + 4:
            r.update(ethertype=et, flags=flags | BAD, l3=l3)
            return r
        if tag == 0:
            r["vlan"] = struct.unpack_from(">H", frame, l3)[0] & 0xFFF
        flags |= VLAN
        et = struct.unpack_from(">H", frame, l3 + 2)[0]
        l3 += 4
    r.update(ethertype=et, l3=l3)
    proto, l4, end = 0, 0, 0
    if et == 0x0800:
        if n < l3 + 20 or frame[l3] >> 4 != 4:
            r["flags"] = flags | BAD
            return r
        ihl = (frame[l3] & 15) * 4
        tot = struct.unpack_from(">H", frame, l3 + 2)[0]
        if ihl < 20 or tot < ihl or n < l3 + tot:
            r["flags"] = flags | BAD
            return r
        flags |= IPV4
        proto = frame[l3 + 9]
        r["src"], r["dst"] = struct.unpack_from(">II", frame, l3 + 12)
        frag = struct.unpack_from(">H", frame, l3 + 6)[0]
        if frag & 0x3FFF:
            flags |= FRAG
        r["proto"] = proto
        if frag & 0x1FFF:
            r["flags"] = flags
            return r
        l4, end = l3 + ihl, l3 + tot
    elif et == 0x86DD:
        if n < l3 + 40 or frame[l3] >> 4 != 6:
            r["flags"] = flags | BAD
            return r
        end = l3 + 40 + struct.unpack_from(">H", frame, l3 + 4)[0]
        if n < end:
            r["flags"] = flags | BAD
            return r
        flags |= IPV6
        r["src6"], r["dst6"] = frame[l3 + 8:l3 + 24], frame[l3 + 24:l3 + 40]
        proto = frame[l3 + 6]
        l4 = l3 + 40
        if proto == 44:
            if end < l4 + 8:
                r.update(flags=flags | BAD, proto=proto)
                return r
            flags |= FRAG
            proto = frame[l4]
            off = struct.unpack_from(">H", frame, l4 + 2)[0] & 0xFFF8
            l4 += 8
            if off:
                r.update(flags=flags, proto=proto)
                return r
        r["proto"] = proto
    else:
        r["flags"] = flags
        return r
    if proto in (6, 17):
        if end < l4 + (8 if proto == 17 else 20):
            r["flags"] = flags | BAD
            return r
        flags |= L4
        r["sport"], r["dport"] = struct.unpack_from(">HH", frame, l4)
    r.update(flags=flags, l4=l4)
    return r


M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & M32


def _mix(h: int, k: int) -> int:
    k = (k * 0xCC9E2D51) & M32
    k = _rotl(k, 15)
    k = (k * 0x1B873593) & M32
    h ^= k
    h = _rotl(h, 13)
    return (h * 5 + 0xE6546B64) & M32


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def flow_hash(p: dict) -> int:
    s, d = p["src"], p["dst"]
    if p["flags"] & IPV6:
        s = 0
        d = 0
        for i in range(0, 16, 4):
            s ^= int.from_bytes(p["src6"][i:i + 4], "big")
            d ^= int.from_bytes(p["dst6"][i:i + 4], "big")
    h = 0x811C9DC5
    for k in (s, d, (p["sport"] << 16) | p["dport"], p["proto"]):
        h = _mix(h, k)
    return _fmix(h)


def in_prefix(net, p: dict, side: str) -> bool:
    """Whether packet p's `side` ("src" or "dst") address is in prefix net
    (an ipaddress network; None: any address of any family): ipaddress's
    membership, so an IPv4 prefix holds no IPv6 address and the reverse."""
    if net is None:
        return True
    if net.version == 4:
        return bool(p["flags"] & IPV4) and ipaddress.IPv4Address(p[side]) in net
    return bool(p["flags"] & IPV6) and ipaddress.IPv6Address(p[side + "6"]) in net


def rule_matches(rule: tuple, p: dict) -> bool:
    """rule: (proto or None, src prefix, (lo, hi), dst prefix, (lo, hi)), a
    prefix an ipaddress network or None (any)."""
    proto, snet, (slo, shi), dnet, (dlo, dhi) = rule
    f = p["flags"]
    if not f & (IPV4 | IPV6) or f & BAD:
        return False
    if proto is not None and proto != p["proto"]:
        return False
    if not (in_prefix(snet, p, "src") and in_prefix(dnet, p, "dst")):
        return False
    for lo, hi, port in ((slo, shi, p["sport"]), (dlo, dhi, p["dport"])):
        if (lo, hi) != (0, 0xFFFF) and (not f & L4 or not lo <= port <= hi):
            return False
    return True


def first_match(rules: list, p: dict) -> int:
    for i, rule in enumerate(rules):
        if rule_matches(rule, p):
            return i
    return -1


def checksums_ok(frame: bytes) -> Optional[bool]:
    """scapy's verdict on the IPv4 header and UDP/TCP checksums of a
    well-formed unfragmented frame (None: nothing to check, or a UDP/TCP
    header at odds with IP's length, which scapy and ixypy sum differently)."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    p = parse(frame)
    if p["flags"] & BAD or not p["flags"] & (IPV4 | IPV6):
        return None
    pkt = Ether(frame)
    ok = None
    for layer in (IP, UDP, TCP):
        if layer in pkt:
            got = pkt[layer].chksum
            if layer is UDP and got == 0 and IP in pkt:
                continue
            ip_payload = pkt[IP].len - 4 * pkt[IP].ihl if IP in pkt else pkt[IPv6].plen
            if (layer is UDP and pkt[UDP].len != ip_payload) or (layer is TCP and 4 * pkt[TCP].dataofs > ip_payload):
                # scapy sums the datagram its UDP length or TCP data offset makes of it; ixypy (as checksum
                # offload) the IP payload: they differ only for a malformed one, its header at odds with IP's;
                # nor would scapy's rewrite of the frame be ixypy's
                return None
            fresh = pkt.copy()
            del fresh[layer].chksum
            want = Ether(bytes(fresh))[layer].chksum
            ok = (ok is not False) and got == want
    return ok
