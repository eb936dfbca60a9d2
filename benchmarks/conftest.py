"""Throughput benchmarks against the 82599 device model.

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
import time
from pathlib import Path
from typing import Callable, Iterator, Tuple

import pytest

from ixypy.drivers.ixgbe import IxgbeDevice
from ixypy.sim import SimBus, close_model, new_model, source_frame
from ixypy.sim._model import Sim
from ixypy.packets import SEQ_OFFSET

BATCH_SIZES = [1, 8, 32, 64, 256]
RING = 512
PACKETS = 2_000_000


def nominal_hz() -> float:
    text = Path("/proc/cpuinfo").read_text()
    mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
    return float(mhz.group(1)) * 1e6 if mhz else 0.0


HZ = nominal_hz()


def open_ports(*wires: str) -> Tuple[Sim, list]:
    """One model (one worker thread) with a port per wire: "sink" or "source"."""
    sim = new_model(len(wires), busy_poll=True)
    devs = []
    for i, wire in enumerate(wires):
        port = sim.port(i)
        if wire == "source":
            port.wire_source(source_frame(), 0, SEQ_OFFSET)
        else:
            port.wire_sink()
        devs.append(IxgbeDevice(SimBus(f"sim:bench{i}", sim, port, wire, owns_sim=False), num_rx_desc=RING, num_tx_desc=RING))
    return sim, devs


@pytest.fixture
def ports() -> Iterator[Callable]:
    opened = []

    def make(*wires: str):
        sim, devs = open_ports(*wires)
        opened.append((sim, devs))
        return devs

    yield make
    for sim, devs in opened:
        for d in devs:
            d.close()
        close_model(sim)


def measure(benchmark, run: Callable[[], int], packets: int) -> None:
    """Benchmark run() (which moves `packets` packets) and record per-packet costs."""
    cpu = []

    def timed() -> None:
        t0 = time.thread_time()
        moved = run()
        cpu.append((time.thread_time() - t0) / moved)

    benchmark.pedantic(timed, rounds=5, iterations=1, warmup_rounds=1)
    best = benchmark.stats.stats.min
    ns = min(cpu) * 1e9
    benchmark.extra_info.update({
        "packets": packets, "mpps": round(packets / best / 1e6, 2),
        "cpu_ns_per_packet": round(ns, 1), "cycles_per_packet": round(ns * HZ / 1e9, 1) if HZ else None,
    })
