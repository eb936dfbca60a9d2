"""The 82599 model's instructions per frame its source wire sends, counted
by callgrind (intel_one_pass, inclusive): the model stopped and polled one
pass at a time, every rx queue drained between passes.

    python benchmarks/source_instructions.py [ADDRESS:QUEUES ...]

Default rows: sim:source,flows=1 and sim:source (256 flows), each on 1 and
2 rx queues (RSS on with 2). Each row is counted at two pass counts and the
difference divided by the difference of the frames received, so fixed costs
drop out. Needs valgrind.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
ROWS = ["sim:source,flows=1:1", "sim:source:1", "sim:source,flows=1:2", "sim:source:2"]
PASSES = (200, 600)


def child(address: str, queues: int, passes: int) -> None:
    """Open address with queues rx queues, run passes passes; print the frames received."""
    sys.path.insert(0, str(SRC))
    import ixypy
    from ixypy import PacketBatch

    with ixypy.open(address, rx_queues=queues) as dev:
        if queues > 1:
            dev.enable_rss(queues)
        dev.bus.sim.stop()
        batch, got = PacketBatch(256), 0
        for _ in range(passes):
            dev.bus.sim.poll()
            for q in range(queues):
                while n := dev.rx_batch(q, batch):
                    got += n
                    batch.free()
        print(got)


def count(address: str, queues: int, passes: int) -> tuple:
    """(frames, instructions in intel_one_pass) of one child under callgrind."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=intel_one_pass",
                          "--callgrind-out-file=/dev/null", sys.executable, __file__, "--child", address,
                          str(queues), str(passes)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]), int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def main(rows: list) -> None:
    for row in rows:
        address, queues = row.rsplit(":", 1)
        (f0, i0), (f1, i1) = (count(address, int(queues), p) for p in PASSES)
        print(f"{address} --queues {queues}: {(i1 - i0) / (f1 - f0):.1f} instructions a frame")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(sys.argv[1:] or ROWS)
