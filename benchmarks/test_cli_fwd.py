"""`ixypy fwd` on sim devices as a user runs it: a separate process, the
command's own loop, live statistics on, the models played by the process's
engine (csrc/sim/sim_worker.h) and helped by the driver when it waits.

Run: python -m pytest benchmarks/test_cli_fwd.py --benchmark-columns=min,max
Reported (extra_info): the Mpps the command's own JSON summary gives for
the sink side, which forwards one way (the source side receives what it
sends on); each run forwards for DURATION seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

DURATION = 3.0
PAIRS = [("sim:source", "sim:sink"), ("sim:igb-source", "sim:igb-sink"),
         ("sim:virtio-source", "sim:virtio-sink"), ("sim:virtio-source", "sim:sink")]


def run_fwd(source: str, sink: str) -> float:
    """Mpps out of `sink` in one `ixypy fwd source sink` run."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))     # this ixypy, installed or not
    out = subprocess.run([sys.executable, "-m", "ixypy", "fwd", source, sink, "--duration", str(DURATION), "--json"],
                         capture_output=True, text=True, check=True, timeout=60 + DURATION, env=env).stdout
    summary = [row for row in map(json.loads, out.splitlines()) if row.get("summary") and row["device"] == sink]
    return summary[0]["tx_mpps"]


@pytest.mark.parametrize("source,sink", PAIRS)
def test_cli_fwd(benchmark, source, sink):
    mpps = []
    benchmark.pedantic(lambda: mpps.append(run_fwd(source, sink)), rounds=3, iterations=1)
    benchmark.extra_info.update({"mpps_best": round(max(mpps), 2), "mpps_all": [round(m, 2) for m in mpps]})
