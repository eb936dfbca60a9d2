"""Replay (apps.replay, `ixypy replay`) on the sim devices: a capture's
frames leave in the file's order, byte for byte, pass after pass, at the
file's gaps divided by the speed.

Timing is checked where it cannot be noise: the replay cannot finish before
its last frame is due (a lower bound on the wall time), and what it reports
of its departures is checked against the schedule with wide margins (this
machine is shared: a stall of tens of ms happens)."""
from __future__ import annotations

import time
from array import array
from decimal import Decimal
from pathlib import Path
from typing import List

import dpkt
import pytest
from click.testing import CliRunner

import ixypy
from ixypy import apps
from ixypy.cli import cli
from ixypy.fastpath.loops import ReplayLoop
from ixypy.packets import read_capture, udp_frame

from .test_cli import ixypy as run_ixypy, json_lines, summary

GAP = 0.01          # s between the frames of the timed captures


def frames(n: int) -> List[bytes]:
    """n different frames: sizes 60 up, a number in the payload; the 4th and
    5th of 20 and 59 bytes, which leave padded to 60."""
    short = {3: b"\x02" * 20, 4: b"\x03" * 59}
    return [short.get(i, udp_frame(60 + i % 40)[:42] + i.to_bytes(4, "big") + bytes(14 + i % 40)) for i in range(n)]


def write(path: Path, payloads: List[bytes], gap: float = GAP, writer=dpkt.pcap.Writer, **kw) -> Path:
    with path.open("wb") as f:
        w = writer(f, **kw)
        for i, frame in enumerate(payloads):
            stamp = Decimal(1764547200) + i * Decimal(str(gap))
            w.writepkt(frame, ts=stamp if kw.get("nano") else float(stamp))       # a float has no nanoseconds left
    return path


def receive(dev, n: int) -> List[bytes]:
    batch = ixypy.PacketBatch(64)
    rxq = dev.rx_queue(0)
    got: List[bytes] = []
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        rxq.rx(batch)
        got += [bytes(batch[i]) for i in range(len(batch))]
        batch.free()
    return got


@pytest.mark.parametrize("ixypy_sim_kind", ["ixgbe", "igb", "virtio"])
@pytest.mark.parametrize("min_bufs", [apps.REPLAY_MIN_BUFS, 1])
def test_order_kept_byte_for_byte_over_two_passes(ixypy_sim, ixypy_sim_kind: str, tmp_path: Path, monkeypatch,
                                                  min_bufs: int):
    """What the other port of a pair receives (virtio, which has no pair:
    the port itself, through a loopback plug) is the file's frames, short
    ones padded, twice in order. With min_bufs 1 the pool holds each frame
    once, so the second pass sends the buffers the ring gave back.
    Mutations: ReplayLoop._take popping the pool's free stack
    (ixy_mempool_alloc1) instead of taking buffers in index order: both
    failed (the ring frees buffers in groups of 32, which the stack gives
    back reversed); take_buf wrapping to 1, not 0, at the pool's end: the
    pool of the frames once failed."""
    monkeypatch.setattr(apps, "REPLAY_MIN_BUFS", min_bufs)
    a, b = (ixypy_sim.open("loop"),) * 2 if ixypy_sim_kind == "virtio" else ixypy_sim.pair()
    capture = read_capture(write(tmp_path / "t.pcap", frames(60), gap=0.0001), "t.pcap")
    result = apps.replay(a, [capture], apps.Limits(), passes=2)
    assert result.sent == 120 and result.files[0].passes == 2
    expected = [f.ljust(60, b"\0") for f in frames(60)] * 2
    assert receive(b, 120) == expected


def timed(dev, path: Path, **kw) -> tuple:
    capture = read_capture(path, str(path))
    start = time.perf_counter()
    result = apps.replay(dev, [capture], apps.Limits(), **kw)
    return time.perf_counter() - start, result.files[0]


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_gaps_kept_at_the_speed(ixypy_sink, tmp_path: Path, speed: float):
    """10 frames 10 ms apart, 2 passes: 180 ms of schedule at speed 1, 90 at
    2. The replay cannot end before its last frame is due; it reports the
    spans it achieved near the schedule and its median frame on time, not
    a gap late. Mutations: ReplayLoop._take taking frames due within the
    next second (the --fast control below shows what that does): failed;
    the speed not dividing (schedule() using t, not t / speed): failed at
    speed 2; lateness measured from the pass's start, not from the frame's
    time: failed."""
    path = write(tmp_path / "g.pcap", frames(10))
    wall, stats = timed(ixypy_sink, path, speed=speed, passes=2)
    schedule = 2 * 9 * GAP / speed
    assert stats.file_seconds == pytest.approx(9 * GAP)
    assert stats.schedule_seconds == pytest.approx(schedule)
    assert wall >= schedule
    assert schedule - 0.005 <= stats.seconds <= schedule + 0.1, stats
    assert stats.late_p50_us < 0.5 * GAP * 1e6, stats           # half a gap: the loosest bound that still means "paced"
    assert stats.late_p50_us <= stats.late_p99_us <= stats.late_max_us and stats.late_mean_us <= stats.late_max_us
    assert stats.frames == 20 and stats.passes == 2


def test_fast_keeps_the_order_and_drops_the_gaps(ixypy_sink, tmp_path: Path):
    """The negative control of the timing test: the same capture as fast as
    possible spans a fraction of its 180 ms."""
    path = write(tmp_path / "g.pcap", frames(10))
    _, stats = timed(ixypy_sink, path, speed=None, passes=2)
    assert stats.schedule_seconds == 0 and stats.frames == 20 and stats.passes == 2
    assert stats.seconds < 0.05, stats


def test_lateness_is_measured_at_the_send_call(ixypy_sink):
    """A ReplayLoop of 200 frames all due at once: 100 sent at once, 98
    after a 200 ms pause, the last 2 after another: they leave 200 and
    400 ms late or more. The median (the 100th) is one of the first, p99
    (the 198th) one of the 98. Mutations: a quantile's rank one further
    (`seen > rank`): failed (both); quantiles from the lowest value of the
    bucket, not the highest: failed (p99 197 ms)."""
    n = 200
    loop = ReplayLoop(ixypy_sink.tx_queue(0), ixypy_sink.mempool(n), ixypy.PacketBatch(32), frames(n),
                      array("q", bytes(8 * n)), [n])
    for count in (100, 98):
        assert loop.run(count=count) == count
        time.sleep(0.2)
    while not loop.finished:
        loop.run(0.05)
    ixypy_sink.flush_tx()
    stats = loop.file_stats(0)
    late = {k: stats[f"late_{k}_ns"] / 1e6 for k in ("mean", "p50", "p99", "max")}      # ms
    assert late["p50"] < 100 and 200 <= late["p99"] < 400 <= late["max"] < 10_000, late
    assert 100 <= late["mean"] <= late["max"], late
    assert (stats["frames"], stats["passes"]) == (n, 1)


def test_a_replay_loop_needs_a_fresh_pool_of_a_multiple_of_its_frames(ixypy_sink):
    """The pool's free stack only counts buffers back from the ring: a pool
    that is not the loop's alone or not a whole number of copies of the
    frames is refused."""
    txq, batch, due = ixypy_sink.tx_queue(0), ixypy.PacketBatch(32), array("q", bytes(8 * 3))
    with pytest.raises(ValueError, match="fresh pool of a multiple of its 3 frames"):
        ReplayLoop(txq, ixypy_sink.mempool(64), batch, frames(3), due, [3])
    used = ixypy_sink.mempool(63)
    batch.alloc(used, 1)
    with pytest.raises(ValueError, match="not 62 free of 63 buffers"):
        ReplayLoop(txq, used, batch, frames(3), due, [3])
    batch.free()


def test_cli_pcap_and_pcapng_json(tmp_path: Path):
    """Two files, one pcap and one pcapng, 3 passes: a summary line, then
    a line per file with its own counts; the device saw every frame with its
    FCS (the 20- and 59-byte frames padded to 60)."""
    pcap = write(tmp_path / "a.pcap", frames(6), gap=0.001)
    pcapng = write(tmp_path / "b.pcapng", frames(4), gap=0.002, writer=dpkt.pcapng.Writer)
    out = run_ixypy("replay", "sim:sink", str(pcap), str(pcapng), "--loop", "3", "--json")
    assert out.returncode == 0, out.stderr
    s = summary(out.stdout)
    a, b = [r for r in json_lines(out.stdout) if "file" in r]
    assert (a["file"], b["file"]) == (str(pcap), str(pcapng))
    assert s["sent"] == s["tx_packets"] == 3 * (6 + 4)
    frame_bytes = [sum(max(len(f), 60) for f in frames(n)) for n in (6, 4)]
    assert (a["frames"], a["bytes"], a["passes"]) == (18, 3 * frame_bytes[0], 3)
    assert (b["frames"], b["bytes"], b["passes"]) == (12, 3 * frame_bytes[1], 3)
    assert s["tx_bytes"] == a["bytes"] + b["bytes"] + 30 * 4
    assert a["file_seconds"] == pytest.approx(0.005) and b["file_seconds"] == pytest.approx(0.006)
    assert a["schedule_seconds"] == pytest.approx(0.015) and b["schedule_seconds"] == pytest.approx(0.018)


def test_cli_text_output(tmp_path: Path):
    pcap = write(tmp_path / "a.pcap", frames(3), gap=0.001)
    out = run_ixypy("replay", "sim:sink", str(pcap), "--speed", "4")
    assert out.returncode == 0, out.stderr
    last = out.stdout.splitlines()[-1]
    assert last.startswith(f"[{pcap}] 3 frames {60 + 61 + 62} bytes, 1 passes: ") and "scheduled 0.001 s" in last
    assert "late by mean" in last and "p99" in last


def test_cli_nanosecond_pcap(tmp_path: Path):
    """A nanosecond pcap replays on its own clock: 1.3 µs between its
    frames. Mutation: its Decimal timestamps rounded to the microsecond, as
    floats are: failed (5 µs)."""
    path = write(tmp_path / "ns.pcap", frames(5), gap=0.0000013, nano=True)
    assert path.read_bytes()[:4] == bytes.fromhex("4d3cb2a1")
    out = run_ixypy("replay", "sim:sink", str(path), "--json")
    assert out.returncode == 0, out.stderr
    (f,) = [r for r in json_lines(out.stdout) if "file" in r]
    assert f["frames"] == 5 and f["file_seconds"] == pytest.approx(5.2e-6, abs=1e-10)


def test_cli_loop_0_stops_at_the_count(tmp_path: Path):
    """Mutation: --count not passed on to the loop (apps.replay handing
    run_loops a Limits without the count): ran on until the test's timeout."""
    pcap = write(tmp_path / "a.pcap", frames(5), gap=0.0001)
    out = run_ixypy("replay", "sim:sink", str(pcap), "--loop", "0", "--count", "23", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    (f,) = [r for r in json_lines(out.stdout) if "file" in r]
    assert summary(out.stdout)["sent"] == summary(out.stdout)["tx_packets"] == 23
    assert (f["frames"], f["passes"]) == (23, 4)


def test_cli_loop_0_stops_at_the_duration(tmp_path: Path):
    """A pass of 5 frames 10 ms apart lasts 40 ms: the next one starts as
    the last frame leaves. In 0.5 s, 12.5 passes at most."""
    pcap = write(tmp_path / "a.pcap", frames(5), gap=0.01)
    out = run_ixypy("replay", "sim:sink", str(pcap), "--loop", "0", "--duration", "0.5", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    (f,) = [r for r in json_lines(out.stdout) if "file" in r]
    assert 1 <= f["passes"] <= 12 and f["frames"] <= 5 * 13


@pytest.mark.parametrize("name, content, message", [
    ("text.pcap", lambda p: p.write_text("not a capture\n" * 10), "not a pcap or pcapng file"),
    ("none.pcap", lambda p: write(p, []), "holds no packets"),
    ("big.pcap", lambda p: write(p, [bytes(1515)]), "1515-byte frame"),
])
def test_cli_a_bad_file_is_a_one_line_error_with_a_hint(tmp_path: Path, name, content, message):
    good = write(tmp_path / "good.pcap", frames(2))
    path = tmp_path / name
    content(path)
    out = run_ixypy("replay", "sim:sink", str(good), str(path))
    assert out.returncode == 2
    assert out.stderr.startswith(f"ixypy: error: {path}") and out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr and "(hint: give a pcap or pcapng capture" in out.stderr
    assert out.stdout == ""


def test_cli_speed_and_fast_together_are_refused(tmp_path: Path):
    out = run_ixypy("replay", "sim:sink", str(write(tmp_path / "a.pcap", frames(2))), "--speed", "2", "--fast")
    assert out.returncode == 2 and "give --speed or --fast, not both" in out.stderr


def test_help_says_what_replay_does_with_short_and_long_frames():
    text = " ".join(CliRunner().invoke(cli, ["replay", "--help"], terminal_width=1000).output.split())
    assert "Frames shorter than 60 bytes are padded with zeros to 60; longer than 1514 are refused" in text
    assert "0: until --count, --duration or Ctrl-C" in text
    for option in ("--speed", "--fast", "--loop", "--count", "--duration", "--batch", "--json"):
        assert option in text
