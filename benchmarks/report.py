"""Run the throughput benchmarks and write the results table into
benchmarks/README.md (between the RESULTS markers).

    python benchmarks/report.py [pytest arguments, e.g. -k "ixgbe and 32]"]
"""
from __future__ import annotations

import datetime
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
from loops import DRIVERS, KINDS, MODES  # noqa: E402
README = HERE / "README.md"


def run(args: list) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", f"--benchmark-json={out.name}", *args],
                       check=True, cwd=HERE.parent)
        return json.loads(Path(out.name).read_text())


def table(data: dict) -> str:
    results = {}
    for b in data["benchmarks"]:
        driver, kind, mode, batch = re.match(r"test_throughput\[(\w+)-(\w+)-(\w+)-(\d+)\]", b["name"]).groups()
        results[(driver, kind, mode, int(batch))] = b["extra_info"]
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
    cpu = data["machine_info"].get("cpu", {}).get("brand_raw", platform.processor())
    when = datetime.date.today().isoformat()
    return (f"Machine: {cpu}, {data['machine_info'].get('cpu', {}).get('count', '?')} cores, "
            f"Python {platform.python_version()}; {when}; command: `python benchmarks/report.py`.\n"
            f"Each cell: Mpps, cycles per packet (driver thread CPU time at the nominal clock); "
            f"ratios are of cycles per packet. tx is measured against a sink model that reads no frame data: "
            f"its Mpps are descriptor turnover, not what a wire would carry, and are not comparable with a "
            f"line rate.\n\n"
            + "\n".join(lines) + "\n")


def main() -> None:
    text = README.read_text()
    start, end = "<!-- RESULTS -->\n", "<!-- /RESULTS -->"
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    README.write_text(before + start + table(run(sys.argv[1:])) + end + after)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
