"""`ixypy fwd` on sim devices as a user runs it: a separate process, the
command's own loop, live statistics on, the models played by the process's
engine (csrc/sim/sim_worker.h) and helped by the driver when it waits.

Run: python -m pytest benchmarks/test_cli_fwd.py --benchmark-columns=min,max
Reported (extra_info): the Mpps the command's own JSON summary gives for
the sink side, which forwards one way (the source side receives what it
sends on); each run forwards for DURATION seconds.

test_cli_fwd_queues: `ixypy fwd sim:source sim:sink --queues N` (RSS on
with N > 1, cli.spread_flows), each row labelled in extra_info["what"],
with the share of the packets each tx queue of the sink side sent. On a
machine with fewer cores than workers plus the models' engine thread, the
workers take turns with the engine: a second worker adds a core's worth
only where there is a core to spare.
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


# (source, --queues, what the row measures)
QUEUE_ROWS = [("sim:source", 1, "256 flows (the default source), one worker"),
              ("sim:source", 2, "256 flows spread by RSS over two rx queues, a worker each"),
              ("sim:source,flows=1", 1, "one flow (the source before flows), one worker"),
              ("sim:source,flows=1", 2, "one flow: RSS puts it on one rx queue, the second worker idles")]


def fwd_summary(source: str, sink: str, queues: int = 1) -> dict:
    """The sink side's summary row of one `ixypy fwd source sink --queues queues` run."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))     # this ixypy, installed or not
    out = subprocess.run([sys.executable, "-m", "ixypy", "fwd", source, sink, "--duration", str(DURATION),
                          "--queues", str(queues), "--json"],
                         capture_output=True, text=True, check=True, timeout=60 + DURATION, env=env).stdout
    summary = [row for row in map(json.loads, out.splitlines()) if row.get("summary") and row["device"] == sink]
    return summary[0]


def run_fwd(source: str, sink: str) -> float:
    """Mpps out of `sink` in one `ixypy fwd source sink` run."""
    return fwd_summary(source, sink)["tx_mpps"]


@pytest.mark.parametrize("source,sink", PAIRS)
def test_cli_fwd(benchmark, source, sink):
    mpps = []
    benchmark.pedantic(lambda: mpps.append(run_fwd(source, sink)), rounds=3, iterations=1)
    benchmark.extra_info.update({"mpps_best": round(max(mpps), 2), "mpps_all": [round(m, 2) for m in mpps]})


@pytest.mark.parametrize("source,queues,what", QUEUE_ROWS, ids=[f"{s}-q{q}" for s, q, _ in QUEUE_ROWS])
def test_cli_fwd_queues(benchmark, source, queues, what):
    rows = []
    benchmark.pedantic(lambda: rows.append(fwd_summary(source, "sim:sink", queues)), rounds=3, iterations=1)
    mpps = [row["tx_mpps"] for row in rows]
    shares = [[round(n / max(row["forwarded"], 1), 2) for n in row.get("tx_packets_per_queue", [row["forwarded"]])]
              for row in rows]
    benchmark.extra_info.update({"what": what, "mpps_best": round(max(mpps), 2),
                                 "mpps_all": [round(m, 2) for m in mpps], "queue_shares": shares})
