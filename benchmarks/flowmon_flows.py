"""Instructions per packet of the flow monitor's step alone (FlowMonitor:
parse, key, hash, probe, count; no rx or tx, no device) as the number of
flows grows, counted by callgrind.

    python benchmarks/flowmon_flows.py

For 1, 1000 and 60000 UDP flows (the last nearly half fills the default
table of 131072 slots), at batch 32 and 256: batches prepared in host
memory, each flow in them in a shuffled order, counted until every flow
is known; then the step runs over all of them R and 3R times inside
ixy_measured_region, and the difference of the two counts is divided by
the difference of the packets. Prints a markdown table (for docs/vector.md).
"""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
FLOWS = (1, 1000, 60000)
BATCHES = (32, 256)


def child(flows: int, size: int) -> None:
    """Runs under callgrind: two measured runs; prints the packets between them."""
    sys.path[:0] = [str(SRC)]
    from ixypy import PacketBatch
    from ixypy.fastpath.bench import measured
    from ixypy.fastpath.mempool import DmaMemory, Mempool
    from ixypy.packets import udp_flows
    from ixypy.vapps.flowmon import FlowMonitor, FlowTable

    frames = udp_flows(flows)
    nb = max(4, -(-flows // size))
    pool = Mempool(DmaMemory(nb * size * 256), nb * size, entry_size=256)
    order = [frames[i % flows] for i in range(nb * size)]
    random.Random(1).shuffle(order)
    batches = []
    for b in range(nb):
        batch = PacketBatch(size)
        batch.alloc(pool, size)
        for i in range(size):
            batch.write(i, order[b * size + i])
        batches.append(batch)
    table = FlowTable()
    step = FlowMonitor(table, size)

    def run(rounds: int) -> None:
        for _ in range(rounds):
            for batch in batches:
                step(batch)

    run(10)                                      # every flow known; CPython's specialisation warmed up
    if table.flows != flows:
        raise SystemExit(f"flowmon_flows.py: {table.flows} flows counted, not {flows}")
    reps = max(2, 60000 // (nb * size))
    measured(lambda: run(reps))
    measured(lambda: run(3 * reps))
    print(2 * reps * nb * size)


def total(dump: str) -> int:
    out = subprocess.run(["callgrind_annotate", dump], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^\s*([\d,]+) \S+\s+PROGRAM TOTALS", out, re.M).group(1).replace(",", ""))


def measure(flows: int, size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        got = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
                              "--toggle-collect=ixy_measured_region", "--dump-after=ixy_measured_region",
                              sys.executable, __file__, "--child", str(flows), str(size)],
                             check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        packets = int(got.stdout.split()[-1])
        return (total(out + ".2") - total(out + ".1")) / packets


def main() -> None:
    lines = ["| flows | " + " | ".join(f"batch {b}" for b in BATCHES) + " |", "|" + "---|" * (1 + len(BATCHES))]
    for flows in FLOWS:
        lines.append(f"| {flows} | " + " | ".join(f"{measure(flows, b):.0f}" for b in BATCHES) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
