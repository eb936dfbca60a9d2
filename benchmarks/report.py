"""Run the throughput benchmarks and write the results tables into
benchmarks/README.md: the loops of loops.KINDS per driver and batch
(between the RESULTS markers), and ixy C's forwarder (loops.IXY_FWD) next
to ixy C's published cycles per packet (between the IXYFWD-RESULTS
markers); the vector apps next to the bare step and their per-packet
Python versions (loops.APP_KINDS, between the APPS-RESULTS markers). A
table the run has no result for is left as it was.

    python benchmarks/report.py [pytest arguments, e.g. -k "ixgbe and 32]", -k ixy_fwd, or -k test_apps]
"""
from __future__ import annotations

import datetime
import json
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
from loops import APP_KINDS, DRIVERS, IXY_C, IXY_FWD, IXY_FWD_MODES, KINDS, MODES  # noqa: E402
from conftest import HZ  # noqa: E402
README = HERE / "README.md"


def run(args: list) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", f"--benchmark-json={out.name}", *args],
                       check=True, cwd=HERE.parent)
        return json.loads(Path(out.name).read_text())


def parse(data: dict) -> tuple:
    """({(driver, kind, mode, batch): extra_info} of test_throughput,
    {(driver, mode, batch): extra_info} of test_ixy_fwd,
    {(kind, batch): extra_info} of test_apps)."""
    results, ixy, apps = {}, {}, {}
    for b in data["benchmarks"]:
        m = re.match(r"test_throughput\[(\w+)-(\w+)-(\w+)-(\d+)\]", b["name"])
        if m:
            driver, kind, mode, batch = m.groups()
            results[(driver, kind, mode, int(batch))] = b["extra_info"]
            continue
        m = re.match(r"test_apps\[\w+-([\w-]+)-(\d+)\]", b["name"])
        if m:
            apps[(m.group(1), int(m.group(2)))] = b["extra_info"]
            continue
        driver, mode, batch = re.match(r"test_ixy_fwd\[(\w+)-(\w+)-(\d+)\]", b["name"]).groups()
        ixy[(driver, mode, int(batch))] = b["extra_info"]
    return results, ixy, apps


def machine(data: dict, args: list) -> str:
    cpu = data["machine_info"].get("cpu", {})
    command = " ".join(["python benchmarks/report.py", *[shlex.quote(a) for a in args]])
    return (f"Machine: {cpu.get('brand_raw', platform.processor())}, {cpu.get('count', '?')} cores, "
            f"Python {platform.python_version()}; {datetime.date.today().isoformat()}; command: `{command}`.")


def table(results: dict, head_line: str) -> str:
    columns = [(k, m) for k in KINDS for m in MODES[k]]
    names = {"python": "Python", "step": "step", "c": "C"}
    head = ("| driver | batch | " + " | ".join(f"{k} {names[m]}" for k, m in columns) + " | "
            + " | ".join(f"{k} {names[m]}/C" for k, m in columns if m != "c") + " |")
    lines = [head, "|" + "---|" * (2 + len(columns) + sum(m != "c" for _, m in columns))]
    for driver in DRIVERS:
        for batch in sorted({key[3] for key in results if key[0] == driver}):
            row = [results.get((driver, k, m, batch)) for k, m in columns]
            cells = [driver, str(batch)] + [f"{r['mpps']:.1f}, {r['cycles_per_packet']:.0f}" if r else "" for r in row]
            for k, m in columns:
                x, c = results.get((driver, k, m, batch)), results.get((driver, k, "c", batch))
                if m != "c":
                    cells.append(f"{x['cycles_per_packet'] / c['cycles_per_packet']:.2f}x" if x and c else "")
            lines.append("| " + " | ".join(cells) + " |")
    return (f"{head_line}\n"
            f"Each cell: Mpps, cycles per packet (driver thread CPU time at the nominal clock); "
            f"ratios are of cycles per packet. tx is measured against a sink model that reads no frame data: "
            f"its Mpps are descriptor turnover, not what a wire would carry, and are not comparable with a "
            f"line rate. Columns: tx, the pktgen loop (allocate, stamp a sequence number, send); rx, receive "
            f"and free; fwd, one port's rx to another's tx, one way, no packet touched, what tx refuses kept in "
            f"the batch (not ixy's forwarder: that is the next table).\n\n"
            + "\n".join(lines) + "\n")


def ixy_table(ixy: dict, head_line: str) -> str:
    """ixy C's forwarder per driver and driving: Mpps forwarded (both
    directions together) and cycles per forwarded packet; ixy C's published
    cycles next to the ixgbe rows only."""
    batches = sorted({key[2] for key in ixy})
    ours = [b for b in IXY_C if b in batches]
    lines = ["| loop (what it does) | driver | " + " | ".join(f"batch {b}" for b in batches) +
             " | ixy C, same work (ixgbe, 82599), cycles | " + " | ".join(f"/ ixy C at {b}" for b in ours) + " |",
             "|" + "---|" * (3 + len(batches) + len(ours))]
    for driver in DRIVERS:
        for mode, how in IXY_FWD_MODES.items():
            got = {b: ixy.get((driver, mode, b)) for b in batches}
            if not any(got.values()):
                continue
            cells = [f"{IXY_FWD} ({how})", driver]
            cells += [f"{r['mpps']:.1f}, {r['cycles_per_packet']:.0f}" if r else "" for r in got.values()]
            if driver == "ixgbe":
                cells.append(", ".join(f"{IXY_C[b][1]} at batch {b}" for b in ours))
                cells += [f"{got[b]['cycles_per_packet'] / IXY_C[b][1]:.2f}x" if got[b] else "" for b in ours]
            else:
                cells += ["(ixy C has no figure for this NIC)"] + [""] * len(ours)
            lines.append("| " + " | ".join(cells) + " |")
    return (f"{head_line}\nixy C's forwarder, like for like in the work done: each cell Mpps forwarded (both directions "
            "together), cycles per forwarded packet (driver thread CPU time at the nominal clock). ixy C's "
            "cycles were measured on real 82599s (64-byte packets, one core); ours include waiting for the "
            "model (one core runs both generators and both sinks) and the cost of the packets the tx rings "
            "refused and the loop freed, so they are an upper bound on the driver's own cost.\n\n" + "\n".join(lines) + "\n")


def apps_table(apps: dict, head_line: str) -> str:
    """Each app per batch: Mpps, cycles per packet, the Mpps one core of
    the nominal clock gives at that cost, and the cost against the step's."""
    batches = sorted({b for _, b in apps})
    lines = ["| loop | what it does | " + " | ".join(f"batch {b}: Mpps, cycles, Mpps a core" for b in batches) + " | "
             + " | ".join(f"/ step at {b}" for b in batches) + " |", "|" + "---|" * (2 + 2 * len(batches))]
    for kind, what in APP_KINDS.items():
        got = [apps.get((kind, b)) for b in batches]
        if not any(got):
            continue
        steps = [apps.get(("step", b)) for b in batches]
        cells = [kind, what]
        cells += [f"{r['mpps']:.1f}, {r['cycles_per_packet']:.0f}, {HZ / r['cycles_per_packet'] / 1e6:.1f}" if r else ""
                  for r in got]
        cells += [f"{r['cycles_per_packet'] / st['cycles_per_packet']:.2f}x" if r and st else ""
                  for r, st in zip(got, steps)]
        lines.append("| " + " | ".join(cells) + " |")
    return (f"{head_line}\nThe vector apps on the ixgbe rig (the 82599 model on its own thread, sending one flow "
            f"of 60-byte UDP frames; the driver's loop on the other core): each cell Mpps received and processed "
            f"(wall clock), cycles per packet (driver thread CPU time at the nominal clock, "
            f"{HZ / 1e9:.2f} GHz), and the Mpps one core gives at that cost; / step: cycles against the bare "
            f"step's.\n\n" + "\n".join(lines) + "\n")


def replace_block(text: str, marker: str, body: str) -> str:
    start, end = f"<!-- {marker} -->\n", f"<!-- /{marker} -->"
    before, rest = text.split(start, 1)
    return before + start + body + end + rest.split(end, 1)[1]


def main() -> None:
    args = sys.argv[1:]
    data = run(args)
    results, ixy, apps = parse(data)
    head_line = machine(data, args)
    text = README.read_text()
    if results:
        text = replace_block(text, "RESULTS", table(results, head_line))
    if ixy:
        text = replace_block(text, "IXYFWD-RESULTS", ixy_table(ixy, head_line))
    if apps:
        text = replace_block(text, "APPS-RESULTS", apps_table(apps, head_line))
    README.write_text(text)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
