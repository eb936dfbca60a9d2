"""Run the throughput benchmarks and write the results table into
benchmarks/README.md (between the RESULTS markers).

    python benchmarks/report.py
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
README = HERE / "README.md"
LINE_RATE_MPPS = 14.88


def run() -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", f"--benchmark-json={out.name}"],
                       check=True, cwd=HERE.parent)
        return json.loads(Path(out.name).read_text())


def table(data: dict) -> str:
    rows = {}
    for b in data["benchmarks"]:
        name, batch = re.match(r"test_(\w+?)\[(\d+)\]", b["name"]).groups()
        rows.setdefault(int(batch), {})[name] = b["extra_info"]
    kinds = ["tx", "rx", "fwd"]
    head = "| batch | " + " | ".join(f"{k} Python: Mpps, cycles/pkt | {k} C ref: Mpps, cycles/pkt | {k} Python/C" for k in kinds) + " |"
    sep = "|" + "---|" * (1 + 3 * len(kinds))
    lines = [head, sep]
    for batch in sorted(rows):
        cells = [str(batch)]
        for k in kinds:
            py, c = rows[batch].get(f"{k}_python"), rows[batch].get(f"{k}_c_reference")
            cells.append(f"{py['mpps']:.1f}, {py['cycles_per_packet']:.0f}" if py else "")
            cells.append(f"{c['mpps']:.1f}, {c['cycles_per_packet']:.0f}" if c else "")
            cells.append(f"{py['cycles_per_packet'] / c['cycles_per_packet']:.2f}x" if py and c else "")
        lines.append("| " + " | ".join(cells) + " |")
    cpu = data["machine_info"].get("cpu", {}).get("brand_raw", platform.processor())
    when = datetime.date.today().isoformat()
    return (f"Machine: {cpu}, {data['machine_info'].get('cpu', {}).get('count', '?')} cores, "
            f"Python {platform.python_version()}; {when}; command: `python benchmarks/report.py`.\n"
            f"10GbE line rate for 64-byte frames: {LINE_RATE_MPPS} Mpps.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    text = README.read_text()
    start, end = "<!-- RESULTS -->\n", "<!-- /RESULTS -->"
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    README.write_text(before + start + table(run()) + end + after)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
