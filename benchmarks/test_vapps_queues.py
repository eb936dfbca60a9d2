"""The vector apps on 1 and 2 queues: a worker process per queue
(ixypy.processes), each running the app's NumPy step per batch.

`ixypy firewall sim:source sim:sink --rules R --duration 3 --queues N`: the
source's 256 flows arrive on sim:source's rx queues (spread by RSS with 2),
every batch is classified against the rules (one accept rule before the
default: every packet passes), and leaves by sim:sink's tx queue of the same
number; the other direction carries nothing. Mpps: packets forwarded over
the run's 3 s. The models' engine is a thread of the parent, so on this
2-core machine the workers share the cores with it: a figure for N cores
needs N + 1.

Run: python -m pytest benchmarks/test_vapps_queues.py --benchmark-columns=min,max
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
SECONDS = 3.0


def firewall_mpps(queues: int, rules: Path) -> float:
    out = subprocess.run([sys.executable, "-m", "ixypy.cli", "firewall", "sim:source", "sim:sink", "--rules",
                          str(rules), "--duration", str(SECONDS), "--queues", str(queues)],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 0, out.stderr
    return int(re.match(r"forwarded (\d+)", out.stdout.splitlines()[-1]).group(1)) / SECONDS / 1e6


@pytest.mark.parametrize("queues", [1, 2])
def test_firewall_queues(benchmark, queues, tmp_path):
    rules = tmp_path / "rules"
    rules.write_text("accept udp 10.0.0.0/8 any any any\ndefault drop\n")
    runs = []
    benchmark.pedantic(lambda: runs.append(firewall_mpps(queues, rules)), rounds=3, iterations=1)
    benchmark.extra_info.update({
        "loop": f"ixypy firewall, {queues} worker process(es), one way (sim:source to sim:sink), batch 256, "
                "every packet classified and passed",
        "mpps_best": round(max(runs), 2),
        "mpps_all": [round(r, 2) for r in runs],
    })
