"""ixypy.processes.run_workers: a forked worker per queue, stopped
together at a limit, by a signal, or when one of them fails, and never
outliving its parent. The workers here do no I/O (tests/vector's
test_apps.py runs the vector apps with --queues on the sim devices); what is
tested is the runner itself, in real processes."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ixypy import processes
from ixypy.apps import Limits
from ixypy.errors import WorkerFailed


def counting(step: int = 1000, pause: float = 0.001):
    """A worker that 'sends' step packets a pause until asked to stop."""
    def work(queue, progress):
        sent = 0
        while not progress.stopped():
            sent += step
            progress.sent(sent)
            time.sleep(pause)
        return queue, sent, os.getpid()
    return work


def test_each_queue_runs_in_a_process_of_its_own_until_the_count():
    # about half a second of counting: time for both workers to start even
    # on a loaded machine (a count of 20 000 was reached in 20 ms, once
    # before worker 1 had run at all)
    results = processes.run_workers(2, counting(), Limits(count=1_000_000), [])
    assert [r[0] for r in results] == [0, 1]
    pids = {r[2] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    assert sum(r[1] for r in results) >= 1_000_000
    assert all(r[1] > 0 for r in results)


def test_a_duration_and_stop_end_the_workers():
    start = time.monotonic()
    processes.run_workers(2, counting(), Limits(duration=0.3), [])
    assert time.monotonic() - start < 3
    asked = time.monotonic() + 0.2
    results = processes.run_workers(2, counting(), Limits(stop=lambda: time.monotonic() >= asked), [])
    assert all(r[1] > 0 for r in results)


def test_a_large_result_comes_through_whole():
    """More than a pipe holds (64 KiB): the worker blocks writing it until
    the parent reads; neither waits for the other."""
    def work(queue, progress):
        return bytes([queue]) * (1 << 20)

    results = processes.run_workers(2, work, Limits(), [])
    assert results == [b"\0" * (1 << 20), b"\1" * (1 << 20)]


def test_a_worker_killed_stops_the_others_and_raises():
    def work(queue, progress):
        if queue == 0:
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)
        return counting()(queue, progress)

    start = time.monotonic()
    with pytest.raises(WorkerFailed) as err:
        processes.run_workers(2, work, Limits(), [])
    assert "worker 0 (queue 0) killed by SIGKILL" in str(err.value)
    assert "worker 1" not in str(err.value)              # it stopped when asked
    assert time.monotonic() - start < processes.GRACE


def test_a_worker_that_raises_stops_the_others_and_its_error_is_told():
    def work(queue, progress):
        if queue == 1:
            raise ValueError("no such rule")
        return counting()(queue, progress)

    with pytest.raises(WorkerFailed, match=r"worker 1 \(queue 1\) raised ValueError: no such rule"):
        processes.run_workers(2, work, Limits(), [])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_one_worker_stops_them_all_cleanly(sig):
    """Ctrl-C reaches every process of the terminal's group; SIGTERM may
    reach a worker alone: either way all stop and return their results."""
    def work(queue, progress):
        if queue == 0:
            time.sleep(0.2)
            os.kill(os.getpid(), sig)
        return counting()(queue, progress)

    results = processes.run_workers(2, work, Limits(), [])
    assert [r[0] for r in results] == [0, 1]


def test_a_worker_that_does_not_stop_is_killed(monkeypatch):
    monkeypatch.setattr(processes, "GRACE", 0.5)

    def work(queue, progress):
        while queue == 1:
            time.sleep(0.01)
        return counting()(queue, progress)

    with pytest.raises(WorkerFailed, match=r"worker 1 \(queue 1\) did not stop within 0.5 s"):
        processes.run_workers(2, work, Limits(duration=0.2), [])


def test_workers_die_with_their_parent(tmp_path):
    """The parent killed (SIGKILL: no clean-up at all): the kernel kills
    its workers (PR_SET_PDEATHSIG), which hold the device's files and DMA.
    Mutation tried: without _die_with the workers went on, and this failed."""
    pids = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import os, time
        from ixypy import processes
        from ixypy.apps import Limits

        def work(queue, progress):
            with open({str(pids)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            while True:
                time.sleep(0.01)

        processes.run_workers(2, work, Limits(), [])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not pids.exists() or len(pids.read_text().split()) < 2):
        time.sleep(0.05)
    workers = [int(p) for p in pids.read_text().split()]
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    """A process that runs (not a zombie awaiting its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_totals_sum_tallies_key_by_key():
    assert processes.totals([{"a": 1, "t": [1]}, {"a": 2, "t": [2]}]) == {"a": 3, "t": [1, 2]}
