"""Aggregate forwarding Mpps of 1 and 2 workers (issue 16's benchmark).

A worker is a thread forwarding from its own rx queue to its own tx queue
with the C-driven step loop (ixypy.fastpath.bench.bench_fwd: one way, no
packet touched, what tx refuses kept), the GIL released for the whole run.
Each worker has a rig of its own (model_rig.Rig: a device model whose source
fills the rx port and whose sink counts what the tx port sends) and steps
that model in its own thread when its loop stalls, so two workers need two
cores and no third for the models. With 1 worker one rig forwards PACKETS;
with 2, each of two rigs forwards PACKETS at the same time (the warm-up
round is not reported). Reported
(extra_info): aggregate Mpps (all packets over the wall time from the
common start to the last worker's end), and per worker.

Run: python -m pytest benchmarks/test_workers.py --benchmark-columns=min,max
"""
from __future__ import annotations

import pytest

from loops import DRIVERS, fwd_workers, open_rig

BATCH = 32
PACKETS = 4_000_000     # per worker: 0.1-0.3 s, long beside a thread's start


def forward_together(rigs) -> dict:
    """Every rig's worker forwards PACKETS, all started at once."""
    seconds = fwd_workers(rigs, PACKETS, BATCH)
    return {"aggregate_mpps": len(rigs) * PACKETS / max(seconds) / 1e6,
            "worker_mpps": [PACKETS / s / 1e6 for s in seconds]}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("driver", DRIVERS)
def test_workers(benchmark, driver, workers):
    rigs = [open_rig(driver, threaded=False) for _ in range(workers)]
    try:
        runs = []
        benchmark.pedantic(lambda: runs.append(forward_together(rigs)), rounds=5, iterations=1, warmup_rounds=1)
        runs = runs[1:]                     # the warm-up round's
        best = max(runs, key=lambda r: r["aggregate_mpps"])
        benchmark.extra_info.update({
            "loop": f"{workers} worker(s), each bench_fwd from its rig's rx to its tx, one way, batch {BATCH}, "
                    "its model stepped in its thread",
            "aggregate_mpps_best": round(best["aggregate_mpps"], 2),
            "aggregate_mpps_all": [round(r["aggregate_mpps"], 2) for r in runs],
            "worker_mpps_best": [round(m, 2) for m in best["worker_mpps"]],
        })
    finally:
        for rig in rigs:
            rig.close()
