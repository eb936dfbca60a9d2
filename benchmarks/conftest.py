"""Throughput benchmarks against the device models (82599 for ixgbe, and
the igb and virtio-net models where their rigs exist).

Run: python -m pytest benchmarks --benchmark-columns=min,median,max

Each benchmark moves a fixed number of packets through the driver, once
driven from Python (one call per batch, as an app does) and once driven from
C with no Python in between (the reference). The model runs on its own
thread in busy-poll mode, so on a 2-core machine the driver has one core and
the model the other. Reported per run (extra_info): Mpps, and the driver
thread's CPU time per packet in ns and in cycles at the nominal clock.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # the rig_* modules

from loops import open_ports, open_rig  # noqa: E402

BATCH_SIZES = [1, 8, 32, 64, 256]
PACKETS = 1_000_000


def nominal_hz() -> float:
    text = Path("/proc/cpuinfo").read_text()
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
    return float(mhz.group(1)) * 1e6 if mhz else 0.0


HZ = nominal_hz()


@pytest.fixture
def rig(request) -> Iterator:
    """The driver's rig with the model on its own thread (busy polling)."""
    opened = open_rig(request.param, threaded=True)
    yield opened
    opened.close()


@pytest.fixture
def ports(request) -> Iterator:
    """The driver's two ports for ixy's forwarder, the model on its own thread."""
    opened = open_ports(request.param, threaded=True)
    yield opened
    opened.close()


def measure(benchmark, run: Callable[[], int], packets: int) -> None:
    """Benchmark run() (which moves at least `packets` packets and returns
    how many it moved) and record per-packet costs of the packets moved."""
    runs = []       # (wall seconds, driver thread CPU seconds, packets moved) per call

    def timed() -> None:
        w0, t0 = time.perf_counter(), time.thread_time()
        moved = run()
        runs.append((time.perf_counter() - w0, time.thread_time() - t0, moved))

    benchmark.pedantic(timed, rounds=3, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:           # --benchmark-disable: the loop ran once, unmeasured
        return
    rounds = runs[1:]                     # the first call was the warm-up
    ns = min(cpu / moved for _, cpu, moved in rounds) * 1e9
    benchmark.extra_info.update({
        "packets": packets, "mpps": round(max(moved / wall for wall, _, moved in rounds) / 1e6, 2),
        "cpu_ns_per_packet": round(ns, 1), "cycles_per_packet": round(ns * HZ / 1e9, 1) if HZ else None,
    })
