"""Instructions per packet of each driver's fast path, counted by callgrind.

    python benchmarks/instructions.py [--quick] [driver ...]

(--quick: batch 32 only, printed and not written into the README; drivers:
ixgbe, igb, virtio, default all.)

Deterministic (the same count on a busy or an idle machine): the device
model's worker thread is stopped and its DMA engines run in the driver's own
thread only when the driver cannot make progress (IntelModel.poll / the poll hook),
so nothing spins. callgrind counts only inside ixy_measured_region (the
measured loop); the model's own work (its entry points, inclusive) is
subtracted, leaving the driver's instructions: the Python loop, the Cython
fast path, the mempool. Each configuration is measured at two packet counts
and the difference divided by the difference of the packets the loop
reports it moved, so fixed costs drop out.

Prints two markdown tables, the loops of loops.KINDS per driver and batch,
and ixy C's forwarder (loops.IXY_FWD) next to ixy C's published figure,
and writes them into benchmarks/README.md between the INSTRUCTIONS markers.
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path[:0] = [str(HERE), str(SRC)]
from loops import APP_KINDS, DRIVERS, IXY_C, IXY_FWD, IXY_FWD_MODES, KINDS, MODES  # noqa: E402

BATCHES = (1, 8, 32, 64, 256)
COUNTS = (40_000, 120_000)
APP_COUNTS = (5_120, 15_360)      # the per-packet Python loops are slow under valgrind
WARMUP_CALLS = 10
IXY_KIND = "fwd-ixy"        # the configurations of ixy's forwarder: (driver, IXY_KIND, mode, batch)


# --- the child: runs under valgrind --------------------------------------------

def child(configs: list, out: str) -> None:
    """Measure each configuration at both packet counts (a callgrind dump
    each); write the packets each measured call reports it moved to `out`."""
    from loops import app_loop_for, ixy_loop_for, loop_for, open_ports, open_rig
    from ixypy import PacketBatch
    from ixypy.fastpath.bench import measured

    rigs = {}
    moved = []
    for driver, kind, mode, batch_size in configs:
        ixy = kind == IXY_KIND
        if (driver, ixy) not in rigs:            # the model runs only in poll()
            rigs[(driver, ixy)] = open_ports(driver, threaded=False) if ixy else open_rig(driver, threaded=False)
        rig = rigs[(driver, ixy)]
        if mode == "app":
            loop = app_loop_for(rig, kind, batch_size)
        else:
            loop = ixy_loop_for(rig, mode) if ixy else loop_for(rig, kind, mode)
        batch = PacketBatch(batch_size)
        counts = APP_COUNTS if mode == "app" else COUNTS
        for _ in range(WARMUP_CALLS):            # warm up: CPython 3.11 specialises a function's
            loop(batch, counts[0] // 20)         # bytecode only after 8 calls (a while-loop's back
                                                 # edge does not count), so one long call is not enough
        for n in counts:
            moved.append(measured(lambda: loop(batch, n)))
        batch.free()
    for rig in rigs.values():
        rig.close()
    Path(out).write_text(json.dumps(moved))


# --- the parent: runs valgrind, reads its dumps ----------------------------------

# the models' functions the driver's thread calls (a pass of the DMA engines,
# a register access: one MMIO instruction on real hardware); none calls another
MODEL_ENTRY_POINTS = "intel_model_poll|intel_model_read32|intel_model_write32|vnsim_poll|vnsim_io_read|vnsim_io_write"


def driver_instructions(dump: str) -> int:
    """Total instructions of a dump minus those spent inside the model's
    entry points (inclusive: every model function they run)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                         capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"^\s*([\d,]+) \S+\s+PROGRAM TOTALS", out, re.M).group(1).replace(",", ""))
    # "N (p%)  file:function [object]": one line per function and source file
    # its code comes from (a function with code inlined from a header gets a
    # line per file, each inclusive of the callees of its part, only the
    # first with [object]); the function's whole cost is the largest of them
    per_function: dict = {}
    for m in re.finditer(rf"^\s*([\d,]+) \([^)]*\)\s+\S+:({MODEL_ENTRY_POINTS})\b(?! \()", out, re.M):
        per_function[m.group(2)] = max(per_function.get(m.group(2), 0), int(m.group(1).replace(",", "")))
    model = sum(per_function.values())
    if model == 0:      # the patterns match no model function: the figure would include the model's work
        raise SystemExit(f"instructions.py: no model entry point ({MODEL_ENTRY_POINTS}) found in {dump}; "
                         "update MODEL_ENTRY_POINTS to the models' function names")
    return total - model


def run(configs: list) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out, moved_file = os.path.join(tmp, "cg.out"), os.path.join(tmp, "moved.json")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
               "--toggle-collect=ixy_measured_region", "--dump-after=ixy_measured_region",
               sys.executable, __file__, "--child", repr(configs), moved_file]
        subprocess.run(cmd, check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": "0"})  # same dict layout every run
        dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        counts = [driver_instructions(d) for d in dumps]
        moved = json.loads(Path(moved_file).read_text())
    results = {}
    for i, config in enumerate(configs):
        low, high = counts[2 * i], counts[2 * i + 1]
        asked = APP_COUNTS if config[2] == "app" else COUNTS
        n_low, n_high = moved[2 * i], moved[2 * i + 1]
        if n_low < asked[0] or n_high < asked[1]:     # a loop that gave up (nothing could arrive)
            raise SystemExit(f"instructions.py: {config} moved {n_low} and {n_high} packets, "
                             f"fewer than the {asked[0]} and {asked[1]} asked")
        results[config] = (high - low) / (n_high - n_low)
    return results


LEGEND = ("Columns: tx, the pktgen loop (allocate, stamp a sequence number, send); rx, receive and free; "
          "fwd, one port's rx to another's tx, one way, no packet touched, what tx refuses kept in the batch "
          "(not ixy's forwarder: that is the next table).")


def table(results: dict) -> str:
    columns = [(k, m) for k in KINDS for m in MODES[k]]
    names = {"python": "Python", "step": "step", "c": "C"}
    head = "| driver | batch | " + " | ".join(f"{k} {names[m]}" for k, m in columns) + " | " + \
        " | ".join(f"{k} {names[m]}/C" for k, m in columns if m != "c") + " |"
    ratios = [(k, m) for k, m in columns if m != "c"]
    lines = [head, "|" + "---|" * (2 + len(columns) + len(ratios))]
    for driver in DRIVERS:
        for b in sorted({c[3] for c in results if c[0] == driver}):
            cells = [driver, str(b)]
            cells += [f"{results[(driver, k, m, b)]:.0f}" if (driver, k, m, b) in results else "" for k, m in columns]
            for k, m in ratios:
                x, c = results.get((driver, k, m, b)), results.get((driver, k, "c", b))
                cells.append(f"{x / c:.2f}x" if x and c else "")
            lines.append("| " + " | ".join(cells) + " |")
    return (f"Instructions per packet on the driver side (callgrind), {datetime.date.today().isoformat()}, "
            f"Python {sys.version.split()[0]}; command: `python benchmarks/instructions.py`. {LEGEND}\n\n"
            + "\n".join(lines) + "\n")


def ixy_table(results: dict) -> str:
    """ixy C's forwarder per driver and driving, per forwarded packet; ixy
    C's published figure next to the ixgbe rows (the same work on the same
    NIC's driver) and no other."""
    batches = sorted({c[3] for c in results if c[1] == IXY_KIND})
    ours = [b for b in IXY_C if b in batches]
    lines = ["| loop (what it does) | driver | " + " | ".join(f"batch {b}" for b in batches) +
             " | ixy C, same work (ixgbe, 82599) | " + " | ".join(f"/ ixy C at {b}" for b in ours) + " |",
             "|" + "---|" * (3 + len(batches) + len(ours))]
    for driver in DRIVERS:
        for mode, how in IXY_FWD_MODES.items():
            got = {b: results.get((driver, IXY_KIND, mode, b)) for b in batches}
            if not any(got.values()):
                continue
            cells = [f"{IXY_FWD} ({how})", driver] + [f"{got[b]:.0f}" if got[b] else "" for b in batches]
            if driver == "ixgbe":
                cells.append(", ".join(f"{IXY_C[b][0]} at batch {b}" for b in ours))
                cells += [f"{got[b] / IXY_C[b][0]:.2f}x" if got[b] else "" for b in ours]
            else:
                cells += ["(ixy C has no figure for this NIC)"] + [""] * len(ours)
            lines.append("| " + " | ".join(cells) + " |")
    return ("ixy C's forwarder, like for like: instructions per forwarded packet (both directions together) "
            "on the driver side (callgrind), the same run. ixy C's figure is on real hardware, ours on the "
            "device model with the model's instructions subtracted.\n\n" + "\n".join(lines) + "\n")


def app_table(results: dict, batches) -> str:
    """The vector apps (rows: what each loop does) per received packet."""
    lines = ["| loop | what it does | " + " | ".join(f"batch {b}" for b in batches) + " | " +
             " | ".join(f"/ step at {b}" for b in batches) + " |",
             "|" + "---|" * (2 + 2 * len(batches))]
    for kind, what in APP_KINDS.items():
        cells = [f"{results[('ixgbe', kind, 'app', b)]:.0f}" for b in batches]
        cells += [f"{results[('ixgbe', kind, 'app', b)] / results[('ixgbe', 'step', 'app', b)]:.2f}x" for b in batches]
        lines.append(f"| {kind} | {what} | " + " | ".join(cells) + " |")
    return (f"Instructions per received packet on the driver side (callgrind), ixgbe model, "
            f"{datetime.date.today().isoformat()}, Python {sys.version.split()[0]}; command: "
            f"`python benchmarks/instructions.py --apps`.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    if "--apps" in sys.argv:
        batches = (32, 256)
        results = run([("ixgbe", k, "app", b) for k in APP_KINDS for b in batches])
        text = app_table(results, batches)
        print(text)
        readme = HERE / "README.md"
        start, end = "<!-- APPS -->\n", "<!-- /APPS -->"
        before, rest = readme.read_text().split(start, 1)
        readme.write_text(before + start + text + "\n" + end + rest.split(end, 1)[1])
        return
    batches = (32,) if "--quick" in sys.argv else BATCHES
    drivers = [a for a in sys.argv[1:] if not a.startswith("--")] or DRIVERS
    configs = [(d, k, m, b) for d in drivers for k in KINDS for m in MODES[k] for b in batches]
    configs += [(d, IXY_KIND, m, b) for d in drivers for m in IXY_FWD_MODES for b in batches]
    results = run(configs)
    text = table(results) + "\n" + ixy_table(results)
    print(text)
    if "--quick" in sys.argv or drivers != DRIVERS:
        return
    readme = HERE / "README.md"
    start, end = "<!-- INSTRUCTIONS -->\n", "<!-- /INSTRUCTIONS -->"
    before, rest = readme.read_text().split(start, 1)
    readme.write_text(before + start + text + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        import ast

        child(ast.literal_eval(sys.argv[2]), sys.argv[3])
    else:
        main()
