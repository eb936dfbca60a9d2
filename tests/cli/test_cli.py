"""The `ixypy` command, run as a subprocess against sim devices."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import dpkt
import pytest

from ixypy.packets import SEQ_OFFSET
from ixypy.sim import source_frame

SRC = Path(__file__).resolve().parents[2] / "src"


def ixypy(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ixypy.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(SRC)})


def json_lines(stdout: str) -> List[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def summary(stdout: str) -> dict:
    (last,) = [r for r in json_lines(stdout) if r.get("summary")]
    return last


def test_pktgen_count_json():
    out = ixypy("pktgen", "sim:sink", "--count", "100000", "--json")
    assert out.returncode == 0, out.stderr
    s = summary(out.stdout)
    assert s["sent"] == 100000 and s["tx_packets"] == 100000
    assert s["tx_bytes"] == 100000 * 64                      # 60-byte frames + CRC, as the NIC counts
    assert out.stderr == ""


def test_pktgen_duration_prints_per_second_lines():
    out = ixypy("pktgen", "sim:sink", "--duration", "2.5", "--size", "128")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len([line for line in lines if line.startswith("[sim:sink] rx")]) == 2
    assert "total:" in lines[-1] and "tx" in lines[-1]


def test_pktgen_rate_limit_holds():
    out = ixypy("pktgen", "sim:sink", "--rate", "0.05", "--duration", "1", "--json", "--batch", "8")
    assert out.returncode == 0, out.stderr
    sent = summary(out.stdout)["sent"]
    assert 0 < sent <= 0.05e6 * 1.05 + 8                      # never above the asked rate


def test_capture_writes_a_readable_pcap(tmp_path: Path):
    pcap = tmp_path / "out.pcap"
    out = ixypy("capture", "sim:source", str(pcap), "--count", "100", "--json")
    assert out.returncode == 0, out.stderr
    assert summary(out.stdout)["written"] == 100
    with pcap.open("rb") as f:
        frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(f)]
    template = source_frame()
    assert len(frames) == 100
    for seq, frame in enumerate(frames):
        expected = template[:SEQ_OFFSET] + seq.to_bytes(8, "little") + template[SEQ_OFFSET + 8:]
        assert frame == expected
        assert isinstance(dpkt.ethernet.Ethernet(frame).data.data, dpkt.udp.UDP)


def test_fwd_forwards_between_two_devices():
    out = ixypy("fwd", "sim:source", "sim:sink", "--count", "50000", "--json")
    assert out.returncode == 0, out.stderr
    rows = [r for r in json_lines(out.stdout) if r.get("summary")]
    assert [r["device"] for r in rows] == ["sim:source", "sim:sink"]
    assert rows[0]["forwarded"] >= 50000
    assert rows[1]["tx_packets"] == rows[0]["forwarded"]      # the sink side sent all that was forwarded


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_cleanly_with_final_stats(sig):
    proc = subprocess.Popen([sys.executable, "-m", "ixypy.cli", "pktgen", "sim:sink", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)})
    line = proc.stdout.readline()                              # the first per-second line: it runs
    assert json.loads(line)["tx_mpps"] > 0
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    s = summary(stdout)
    assert s["sent"] == s["tx_packets"] > 0
    assert "Traceback" not in stderr


@pytest.mark.parametrize("args, code, message", [
    ([], 0, "Usage: ixypy"),
    (["pktgen"], 2, "Missing argument 'DEV'"),
    (["pktgen", "sim:sink", "--size", "10"], 2, "10 is not in the range 60<=x<=1514"),
    (["pktgen", "sim:sink", "--rate", "1", "--gbps", "1"], 2, "give --rate or --gbps, not both"),
    (["pktgen", "03:zz.0"], 2, "invalid PCI address '03:zz.0'"),
    (["pktgen", "sim:nope"], 1, "no sim device 'sim:nope'"),
    (["bind", "0000:7f:1f.7", "--uio"], 1, "no PCI device at 0000:7f:1f.7"),
    (["capture", "sim:source", "/nonexistent-dir/x.pcap", "--count", "1"], 2, "x.pcap"),
])
def test_bad_arguments_one_line_error(args, code, message):
    out = ixypy(*args)
    assert out.returncode == code
    text = out.stdout if code == 0 else out.stderr
    assert message in text
    if code:
        assert text.count("\n") == 1 and text.startswith("ixypy: error: ")
    assert "Traceback" not in out.stderr


def test_template_from_pcap(tmp_path: Path):
    pcap = tmp_path / "t.pcap"
    with pcap.open("wb") as f:
        w = dpkt.pcap.Writer(f)
        w.writepkt(source_frame(), ts=0)
        w.writepkt(source_frame()[:50] + bytes(50), ts=0)
    out = ixypy("pktgen", "sim:sink", "--template", str(pcap), "--count", "1000", "--json")
    assert out.returncode == 0, out.stderr
    # both frames go out (each buffer keeps its template; recycling mixes the order)
    assert 1000 * (60 + 4) < summary(out.stdout)["tx_bytes"] < 1000 * (100 + 4)
    bad = tmp_path / "bad.pcap"
    with bad.open("wb") as f:
        dpkt.pcap.Writer(f).writepkt(b"x" * 20, ts=0)
    out = ixypy("pktgen", "sim:sink", "--template", str(bad), "--count", "1")
    assert out.returncode == 2 and "20-byte frame" in out.stderr


def test_devices_json_lists_network_devices_read_only():
    out = ixypy("devices", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert all(set(r) >= {"address", "id", "driver", "ixypy"} for r in rows)
