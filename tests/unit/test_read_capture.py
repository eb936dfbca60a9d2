"""packets.read_capture: a capture's frames in order with their timestamps
in ns after the first; apps.schedule: the departure times replay sends them
at."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dpkt
import pytest

from ixypy.apps import schedule
from ixypy.errors import InvalidTemplate
from ixypy.packets import Capture, read_capture, udp_frame

FRAMES = [udp_frame(60 + i) for i in range(4)]


def write(path: Path, stamps, writer=dpkt.pcap.Writer, **kw) -> Path:
    with path.open("wb") as f:
        w = writer(f, **kw)
        for frame, ts in zip(FRAMES, stamps):
            w.writepkt(frame, ts=ts)
    return path


def test_microsecond_pcap_times_are_exact(tmp_path: Path):
    """Floats of today's dates are ~0.24 µs apart: without the rounding to
    the microsecond, 10 ms came out as 9999999.762 µs or so (mutation:
    `round(seconds * 1e9)` for floats: failed)."""
    stamps = [1764547200.000001, 1764547200.010001, 1764547200.010002, 1764547201.5]
    got = read_capture(write(tmp_path / "us.pcap", stamps), "us.pcap")
    assert got.frames == FRAMES
    assert got.times_ns == [0, 10_000_000, 10_001_000, 1_499_999_000]


def test_nanosecond_pcap_times_keep_their_nanoseconds(tmp_path: Path):
    """Mutation: the Decimals rounded to the microsecond as floats are: failed."""
    stamps = [Decimal("1764547200.000000001"), Decimal("1764547200.000000002"), Decimal("1764547200.010000503"),
              Decimal("1764547203.000000000")]
    path = write(tmp_path / "ns.pcap", stamps, nano=True)
    assert path.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")         # the nanosecond magic, little-endian
    assert read_capture(path, "ns.pcap").times_ns == [0, 1, 10_000_502, 2_999_999_999]


def test_pcapng_times(tmp_path: Path):
    stamps = [1764547200.25, 1764547200.250003, 1764547200.5, 1764547200.5]
    path = write(tmp_path / "t.pcapng", stamps, dpkt.pcapng.Writer)
    got = read_capture(path, "t.pcapng")
    assert got.frames == FRAMES and got.times_ns == [0, 3_000, 250_000_000, 250_000_000]


def test_errors_name_the_file_as_the_caller_does(tmp_path: Path):
    path = tmp_path / "x.pcap"
    path.write_bytes(b"nothing")
    with pytest.raises(InvalidTemplate, match=r"^replay x: not a pcap or pcapng file \(hint: give a pcap"):
        read_capture(path, "replay x")


def capture(times_ns) -> Capture:
    return Capture(Path("c"), [FRAMES[0]] * len(times_ns), list(times_ns))


def test_schedule_divides_by_the_speed_and_chains_the_files():
    a, b = capture([0, 10, 30]), capture([0, 5])
    assert list(schedule([a, b], 1.0)) == [0, 10, 30, 30, 35]
    assert list(schedule([a, b], 2.0)) == [0, 5, 15, 15, 17]       # 15 + 2.5 rounded to even
    assert list(schedule([a, b], None)) == [0] * 5


def test_schedule_never_goes_back():
    """A capture merged from several interfaces may step back in time: such
    a frame leaves right after the one before it."""
    assert list(schedule([capture([0, 20, 15, 40, -5])], 1.0)) == [0, 20, 20, 40, 40]
