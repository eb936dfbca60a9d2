"""Packet templates for the generator, the latency probes and the tests
(built with dpkt), and the frames of capture files (pcap, pcapng) for
pktgen --template and replay."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, List, Union

import dpkt

from .errors import InvalidTemplate

SEQ_OFFSET = 42          # first UDP payload byte of an Ethernet/IPv4/UDP frame
MIN_FRAME = 60           # without the 4-byte CRC the NIC appends
MAX_FRAME = 1514
UDP_CSUM_OFFSET = 40
SRC_IP = "10.0.0.2"      # the templates' source address; flow i's is this plus i

# PTP (IEEE 1588-2008) over Ethernet: what a NIC's 1588 receive filter time-stamps
PTP_ETHERTYPE = 0x88F7
PTP_VERSION = 2
PTP_SYNC = 0x0           # messageType of a Sync message (13.3.2.2)
PTP_SYNC_LENGTH = 44     # a Sync message: the 34-byte header (13.3.1) and a 10-byte originTimestamp
PTP_SEQ_OFFSET = 44      # the header's sequenceId (its byte 30) in an Ethernet/PTP frame


def mac_bytes(mac: str) -> bytes:
    """'02:a0:c9:00:00:fe' -> its 6 bytes."""
    return bytes.fromhex(mac.replace(":", ""))


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
    eth = dpkt.ethernet.Ethernet(src=mac_bytes(src_mac), dst=mac_bytes(dst_mac), type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    frame = bytearray(bytes(eth))
    frame[UDP_CSUM_OFFSET:UDP_CSUM_OFFSET + 2] = b"\0\0"
    return bytes(frame)


def ptp_sync_frame(size: int, src_mac: str, dst_mac: str) -> bytes:
    """A PTP v2 Sync message over Ethernet, padded with zeros to size bytes
    (CRC excluded): what a NIC's 1588 receive latch takes. Its sequenceId
    (PTP_SEQ_OFFSET) and what follows are 0, for the sender to write."""
    header = bytearray(PTP_SYNC_LENGTH)
    header[0] = PTP_SYNC                  # transportSpecific 0, messageType
    header[1] = PTP_VERSION
    header[2:4] = PTP_SYNC_LENGTH.to_bytes(2, "big")
    frame = bytes(dpkt.ethernet.Ethernet(src=mac_bytes(src_mac), dst=mac_bytes(dst_mac), type=PTP_ETHERTYPE,
                                         data=bytes(header)))
    return frame + bytes(max(0, size - len(frame)))


def udp_flows(flows: int, size: int = MIN_FRAME, src_ip: str = SRC_IP, **kwargs) -> List[bytes]:
    """flows frames that differ in their source IP address (src_ip, +1, ...)."""
    base = ipaddress.IPv4Address(src_ip)
    return [udp_frame(size, src_ip=str(base + i), **kwargs) for i in range(flows)]


@dataclass
class Capture:
    """The frames of a capture file in the file's order, each with its
    timestamp in nanoseconds after the first frame's (negative for a frame
    stamped before it: captures merged from several interfaces)."""

    path: Path
    frames: List[bytes]
    times_ns: List[int]


def read_capture(path: Path, what: str) -> Capture:
    """The frames of a pcap (microsecond or nanosecond) or pcapng file of
    Ethernet frames, short ones padded with zeros to MIN_FRAME bytes, as a
    NIC pads them. InvalidTemplate, its message starting with `what` (how
    the command line named the file), for a file that is not a capture, is
    not of Ethernet frames, holds none, or holds one longer than MAX_FRAME.

    Timestamps are exact for a nanosecond pcap (dpkt gives Decimals); the
    others' are floats, about 0.25 µs apart at today's dates, so they are
    rounded to the microsecond: exact for a microsecond pcap and for a
    pcapng of microsecond resolution (the default), within 0.5 µs for a
    finer pcapng."""
    with path.open("rb") as f:
        reader = _capture_reader(f, what)
        if reader.datalink() != dpkt.pcap.DLT_EN10MB:
            raise InvalidTemplate(f"{what}: link type {reader.datalink()}, not Ethernet (1)")
        try:
            stamped = [(ts, bytes(buf)) for ts, buf in reader]
        except (ValueError, dpkt.Error) as err:
            raise InvalidTemplate(f"{what}: unreadable after the header ({err})") from None
    if not stamped:
        raise InvalidTemplate(f"{what} holds no packets")
    for _, frame in stamped:
        if len(frame) > MAX_FRAME:
            raise InvalidTemplate(f"{what} has a {len(frame)}-byte frame; frames must be at most {MAX_FRAME} bytes")
    first = stamped[0][0]
    return Capture(path, [frame.ljust(MIN_FRAME, b"\0") for _, frame in stamped],
                   [_ns(ts - first) for ts, _ in stamped])


def _ns(seconds: Union[float, Decimal]) -> int:
    if isinstance(seconds, float):
        return round(seconds * 1_000_000) * 1000
    return int(seconds * 1_000_000_000)


def _capture_reader(f: BinaryIO, what: str) -> Union[dpkt.pcap.Reader, dpkt.pcapng.Reader]:
    for kind in (dpkt.pcap.Reader, dpkt.pcapng.Reader):
        f.seek(0)
        try:
            return kind(f)
        except (ValueError, dpkt.Error):
            continue
    raise InvalidTemplate(f"{what}: not a pcap or pcapng file")
