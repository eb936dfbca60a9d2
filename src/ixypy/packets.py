"""Packet templates for the generator and the tests (built with dpkt)."""
from __future__ import annotations

import ipaddress
from typing import List

import dpkt

SEQ_OFFSET = 42          # first UDP payload byte of an Ethernet/IPv4/UDP frame
MIN_FRAME = 60           # without the 4-byte CRC the NIC appends
MAX_FRAME = 1514
UDP_CSUM_OFFSET = 40
SRC_IP = "10.0.0.2"      # the templates' source address; flow i's is this plus i


def udp_frame(size: int = MIN_FRAME, src_mac: str = "02:a0:c9:00:00:fe", dst_mac: str = "02:a0:c9:00:00:00",
              src_ip: str = SRC_IP, dst_ip: str = "10.0.0.1", sport: int = 1234, dport: int = 5678) -> bytes:
    """An Ethernet/IPv4/UDP frame of size bytes (CRC excluded) with a zeroed
    payload. The UDP checksum is 0 ("none", allowed for IPv4), so stamping a
    sequence number into the payload keeps the frame valid."""
    if not MIN_FRAME <= size <= MAX_FRAME:
        raise ValueError(f"frame size {size} outside {MIN_FRAME}..{MAX_FRAME}")
    payload = bytes(size - SEQ_OFFSET)
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=ipaddress.IPv4Address(src_ip).packed, dst=ipaddress.IPv4Address(dst_ip).packed,
                    p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(src=bytes.fromhex(src_mac.replace(":", "")), dst=bytes.fromhex(dst_mac.replace(":", "")),
                                 type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    frame = bytearray(bytes(eth))
    frame[UDP_CSUM_OFFSET:UDP_CSUM_OFFSET + 2] = b"\0\0"
    return bytes(frame)


def udp_flows(flows: int, size: int = MIN_FRAME, src_ip: str = SRC_IP, **kwargs) -> List[bytes]:
    """flows frames that differ in their source IP address (src_ip, +1, ...)."""
    base = ipaddress.IPv4Address(src_ip)
    return [udp_frame(size, src_ip=str(base + i), **kwargs) for i in range(flows)]
