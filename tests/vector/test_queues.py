"""The vector apps with --queues 2 on the sim devices: a worker process per
queue (ixypy.processes) driving queue i of both devices, the source's 256
flows spread over the queues by the model's RSS, the workers' counters
summed (firewall, nat) or their flow tables merged (flowmon) in the parent.
The models and the DMA memory are shared with the forked workers; before
they were, each worker drove a private copy of the models, and
`ixypy firewall --queues 2` forwarded 511 packets a queue and stalled (seen
before the change): the packet counts asked for below fail on that."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def ixypy(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ixypy.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(SRC)})


def per_queue(line: str) -> list:
    return json.loads(re.search(r"\(per queue (\[[0-9, ]+\])\)", line).group(1))


def test_firewall_on_two_queues_sums_both_workers(tmp_path: Path):
    """Sources 10.0.0.2 .. 10.0.1.1: the drop rule takes 126 of the 256
    flows, about half the packets, counted in both workers."""
    rules = tmp_path / "rules"
    rules.write_text("drop udp 10.0.0.0/25 any any any\ndefault accept\n")
    out = ixypy("firewall", "sim:source", "sim:sink", "--rules", str(rules), "--queues", "2", "--duration", "2")
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[-1]
    forwarded = int(re.match(r"forwarded (\d+)", line).group(1))
    queues = per_queue(line)
    assert sum(queues) == forwarded >= 100_000
    assert min(queues) > forwarded // 20                    # RSS spread the flows over both (shares follow scheduling)
    passed, dropped = (int(n) for n in re.search(r"passed (\d+), dropped (\d+)", line).groups())
    rules_hit = json.loads(re.search(r"per rule \(last: default\) (\[[0-9, ]+\])", line).group(1))
    assert sum(rules_hit) == passed + dropped and rules_hit[0] == dropped
    assert 0.4 < dropped / (passed + dropped) < 0.6
    assert passed >= forwarded                              # sent: what passed, less what the sink had no room for


def test_nat_on_two_queues():
    out = ixypy("nat", "sim:source", "sim:sink", "--inside-prefix", "10.0.0.0/8", "--outside-prefix",
                "198.0.0.0/8", "--queues", "2", "--duration", "2")
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[-1]
    queues = per_queue(line)
    assert min(queues) > sum(queues) // 20
    rewritten = int(re.search(r"rewritten out (\d+)", line).group(1))
    assert rewritten >= sum(queues) >= 100_000


def test_flowmon_on_two_queues_merges_every_flow(tmp_path: Path):
    out_file = tmp_path / "flows.json"
    out = ixypy("flowmon", "sim:source", "sim:sink", "--queues", "2", "--duration", "2", "--json", str(out_file))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out_file.read_text())
    assert len(doc["flows"]) == 256                          # each flow once, whichever worker saw it
    assert doc["totals"]["packets"] >= doc["forwarded"] >= 100_000
    assert min(per_queue(out.stdout.splitlines()[-1])) > doc["forwarded"] // 20


def test_ctrl_c_stops_every_worker_and_the_summary_is_printed(tmp_path: Path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C."""
    rules = tmp_path / "rules"
    rules.write_text("default accept\n")
    proc = subprocess.Popen([sys.executable, "-m", "ixypy.cli", "firewall", "sim:source", "sim:sink", "--rules",
                             str(rules), "--queues", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)}, start_new_session=True)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert min(per_queue(out.splitlines()[-1])) > 0


def test_sigterm_to_one_worker_stops_them_all(tmp_path: Path):
    """SIGTERM to one worker alone (as a service manager may send it): all
    stop, the summary counts both. (A worker killed outright is tested on
    a real NIC in tests/vm/test_vm_igb_rss.py: on the sim, a worker killed
    inside a model's call would leave the model's lock held.)"""
    rules = tmp_path / "rules"
    rules.write_text("default accept\n")
    proc = subprocess.Popen([sys.executable, "-m", "ixypy.cli", "firewall", "sim:source", "sim:sink", "--rules",
                             str(rules), "--queues", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)}, start_new_session=True)
    try:
        workers: list = []
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert len(workers) == 2
        time.sleep(1)
        os.kill(workers[1], signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert min(per_queue(out.splitlines()[-1])) > 0
