"""Instructions per packet of the ixgbe fast path, counted by callgrind.

    python benchmarks/instructions.py [--quick]

Deterministic (the same count on a busy or an idle machine): the device
model's worker thread is stopped and its DMA engines run in the driver's own
thread only when the driver cannot make progress (Sim.poll / the poll hook),
so nothing spins. callgrind counts only inside ixy_measured_region (the
measured loop); the model's own work (ixsim_* functions, inclusive) is
subtracted, leaving the driver's instructions: the Python loop, the Cython
fast path, the mempool. Each configuration is measured at two packet counts
and the difference divided, so fixed costs drop out.

Prints a markdown table and writes it into benchmarks/README.md between the
INSTRUCTIONS markers.
"""
from __future__ import annotations

import datetime
import glob
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
KINDS = ("tx", "rx", "fwd")
DRIVERS = ("python", "c")
BATCHES = (1, 8, 32, 64, 256)
COUNTS = (40_000, 120_000)
WARMUP_CALLS = 10


# --- the child: runs under valgrind --------------------------------------------

def child(configs: list) -> None:
    sys.path.insert(0, str(SRC))
    sys.path.insert(0, str(HERE))
    from loops import python_fwd, python_rx, python_tx
    from ixypy import PacketBatch
    from ixypy._fastpath import measured
    from ixypy.drivers.ixgbe import IxgbeDevice
    from ixypy.packets import SEQ_OFFSET, udp_frame
    from ixypy.sim import SimBus, close_model, new_model, source_frame

    sim = new_model(2)
    sink, source = sim.port(0), sim.port(1)
    sink.wire_sink()
    source.wire_source(source_frame(), 0, SEQ_OFFSET)
    tx = IxgbeDevice(SimBus("sim:isink", sim, sink, "sink", owns_sim=False))
    rx = IxgbeDevice(SimBus("sim:isource", sim, source, "source", owns_sim=False))
    sim.stop()                                   # from here on the model runs only in poll()
    pool = tx.mempool(4096)
    pool.fill(udp_frame())
    hook, poll = sim.poll_hook(), sim.poll
    txq, rxq = tx.tx_queue(0), rx.rx_queue(0)

    loops = {
        ("tx", "python"): lambda batch, n: python_tx(txq, pool, batch, n, poll),
        ("rx", "python"): lambda batch, n: python_rx(rxq, batch, n, poll),
        ("fwd", "python"): lambda batch, n: python_fwd(rxq, txq, batch, n, poll),
        ("tx", "c"): lambda batch, n: txq.bench_tx(pool, batch.capacity, n, SEQ_OFFSET, hook),
        ("rx", "c"): lambda batch, n: rxq.bench_rx(batch, n, hook),
        ("fwd", "c"): lambda batch, n: rxq.bench_fwd(txq, batch, n, hook),
    }
    for kind, driver, batch_size in configs:
        loop = loops[(kind, driver)]
        batch = PacketBatch(batch_size)
        for _ in range(WARMUP_CALLS):            # warm up: CPython 3.11 specialises a function's
            loop(batch, 2_000)                   # bytecode only after 8 calls (a while-loop's back
                                                 # edge does not count), so one long call is not enough
        for n in COUNTS:
            measured(lambda: loop(batch, n))
    tx.close()
    rx.close()
    close_model(sim)


# --- the parent: runs valgrind, reads its dumps ----------------------------------

def driver_instructions(dump: str) -> int:
    """Total instructions of a dump minus those spent inside the model:
    ixsim_poll (inclusive: every model function it runs) and the register
    accesses (one MMIO instruction each on real hardware)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"^\s*([\d,]+) \S+\s+PROGRAM TOTALS", out, re.M).group(1).replace(",", ""))
    # one line per function with its object file: "N (p%)  file:function [object]"
    model = sum(int(m.group(1).replace(",", ""))
                for m in re.finditer(r"^\s*([\d,]+) \([^)]*\)\s+\S+:ixsim_(?:poll|read32|write32) \[", out, re.M))
    return total - model


def run(configs: list) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
               "--toggle-collect=ixy_measured_region", "--dump-after=ixy_measured_region",
               sys.executable, __file__, "--child", repr(configs)]
        subprocess.run(cmd, check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": "0"})  # same dict layout every run
        dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        counts = [driver_instructions(d) for d in dumps]
    results = {}
    for i, config in enumerate(configs):
        low, high = counts[2 * i], counts[2 * i + 1]
        results[config] = (high - low) / (COUNTS[1] - COUNTS[0])
    return results


def table(results: dict) -> str:
    head = "| batch | " + " | ".join(f"{k} Python | {k} C | {k} ratio" for k in KINDS) + " |"
    lines = [head, "|" + "---|" * (1 + 3 * len(KINDS))]
    for b in sorted({c[2] for c in results}):
        cells = [str(b)]
        for k in KINDS:
            py, c = results.get((k, "python", b)), results.get((k, "c", b))
            cells += [f"{py:.0f}" if py else "", f"{c:.0f}" if c else "",
                      f"{py / c:.2f}x" if py and c else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return (f"Instructions per packet on the driver side (callgrind), {datetime.date.today().isoformat()}, "
            f"Python {sys.version.split()[0]}; command: `python benchmarks/instructions.py`.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    batches = (32,) if "--quick" in sys.argv else BATCHES
    configs = [(k, d, b) for k in KINDS for d in DRIVERS for b in batches]
    text = table(run(configs))
    print(text)
    readme = HERE / "README.md"
    start, end = "<!-- INSTRUCTIONS -->\n", "<!-- /INSTRUCTIONS -->"
    before, rest = readme.read_text().split(start, 1)
    readme.write_text(before + start + text + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        import ast

        child(ast.literal_eval(sys.argv[2]))
    else:
        main()
