"""The examples run as written, against the sim device."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(name: str, *args: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_send_receive():
    stdout = run("send_receive.py", "5000")
    assert "received 5000 packets, 0 out of order" in stdout
    assert "tx_packets=5000" in stdout and "rx_packets=5000" in stdout


def test_forward():
    stdout = run("forward.py", "0.5")
    forwarded = int(re.search(r"forwarded (\d+) packets", stdout).group(1))
    assert forwarded > 0
    assert f"sim:sink sent {forwarded} packets" in stdout
