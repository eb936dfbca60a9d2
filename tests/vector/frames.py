"""Hypothesis strategies for frames: VLAN tags (802.1Q, QinQ), IPv4 with
options and fragments, IPv6 with a fragment header, UDP, TCP, ICMP, other
EtherTypes, and short or malformed frames (cut anywhere, a length field
out of range, a bad version)."""
from __future__ import annotations

import struct

from hypothesis import strategies as st

_ADDR4 = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.7", "172.16.0.9", "8.8.8.8"])
_ADDR6 = st.sampled_from(["2001:db8::1", "2001:db8::2", "fe80::1", "::1", "2001:db8:0:1::5", "2001:db9::1",
                          "2001:db8:8000::1", "2001:db8::8000:0:0:1"])
_PORT = st.one_of(st.sampled_from([53, 80, 443, 1234, 5678, 0, 65535]), st.integers(0, 65535))


@st.composite
def l4(draw, v6: bool):
    from scapy.layers.inet import ICMP, TCP, UDP
    from scapy.packet import Raw

    kind = draw(st.sampled_from(["udp", "tcp", "icmp", "other"]))
    payload = Raw(draw(st.binary(max_size=40)))
    if kind == "udp":
        return UDP(sport=draw(_PORT), dport=draw(_PORT)) / payload
    if kind == "tcp":
        return TCP(sport=draw(_PORT), dport=draw(_PORT), flags="S") / payload
    if kind == "icmp" and not v6:
        return ICMP() / payload
    return payload


@st.composite
def frame(draw) -> bytes:
    from scapy.layers.inet import IP, IPOption_NOP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.layers.l2 import ARP, Dot1Q, Ether
    from scapy.packet import Raw

    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for _ in range(draw(st.integers(0, 2))):
        pkt = pkt / Dot1Q(vlan=draw(st.integers(0, 4095)))
    l3 = draw(st.sampled_from(["ipv4", "ipv4", "ipv4", "ipv6", "ipv6", "arp", "other"]))
    if l3 == "ipv4":
        frag = draw(st.sampled_from([0, 0, 0, 0x2000, 0x2000 | 7, 12]))   # none, MF first, middle, last
        opts = [IPOption_NOP()] * draw(st.sampled_from([0, 0, 4, 8, 40]))
        inner = draw(l4(False))
        proto = {"UDP": 17, "TCP": 6, "ICMP": 1}.get(type(inner).__name__, draw(st.sampled_from([47, 17, 6])))
        pkt = pkt / IP(src=draw(_ADDR4), dst=draw(_ADDR4), options=opts, flags=frag >> 13, frag=frag & 0x1FFF,
                       proto=proto) / inner
    elif l3 == "ipv6":
        ip = IPv6(src=draw(_ADDR6), dst=draw(_ADDR6))
        if draw(st.booleans()):
            ip = ip / IPv6ExtHdrFragment(offset=draw(st.sampled_from([0, 0, 5])), m=1)
        pkt = pkt / ip / draw(l4(True))
    elif l3 == "arp":
        pkt = pkt / ARP()
    else:
        pkt = pkt / Raw(draw(st.binary(min_size=0, max_size=30)))
        pkt.lastlayer().underlayer.type = draw(st.sampled_from([0x88CC, 0x0800, 0x86DD, 0x8100]))
    data = bytearray(bytes(pkt))
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "byte", "iplen", "version", "pad"]))
    if damage == "cut":
        del data[draw(st.integers(0, len(data))):]
    elif damage == "byte" and data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif damage in ("iplen", "version"):
        l3off = 14
        while l3off + 4 <= len(data) and data[l3off - 2:l3off] in (b"\x81\x00", b"\x88\xa8"):
            l3off += 4
        if l3off + 8 <= len(data):
            if damage == "version":
                data[l3off] = (draw(st.integers(0, 15)) << 4) | (data[l3off] & 15)
            else:
                at = l3off + (2 if l3 == "ipv4" else 4)
                struct.pack_into(">H", data, at, draw(st.integers(0, 0xFFFF)))
    elif damage == "pad":
        data += bytes(draw(st.integers(1, 30)))
    return bytes(data)


def frames(min_size: int = 1, max_size: int = 12):
    return st.lists(frame(), min_size=min_size, max_size=max_size)
