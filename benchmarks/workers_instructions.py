"""Instructions per forwarded packet of 1 and of 2 workers (callgrind):
does a second worker make the first one's packets dearer?

Each worker is test_workers.py's: bench_fwd on a rig of its own, its model
stepped in its thread. A run forwards SMALL and then LARGE packets per
worker; the difference of the two runs' instruction totals over the extra
packets leaves out start-up and set-up. Counts include the model's
instructions (the driver's alone are in instructions.py's table).

Run: python benchmarks/workers_instructions.py        (about 2 minutes)
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMALL, LARGE = 200_000, 400_000


def work(workers: int, packets: int) -> None:
    """In the process callgrind watches: the workers, each forwarding `packets`."""
    sys.path.insert(0, str(HERE))
    from ixypy import PacketBatch
    from ixypy.fastpath.bench import bench_fwd
    from loops import fwd_workers, open_rig

    rigs = [open_rig("ixgbe", threaded=False) for _ in range(workers)]
    for rig in rigs:                    # rings filled, pools touched: the same in both runs
        bench_fwd(rig.rxq, rig.txq, PacketBatch(32), 10_000, rig.hook)
    fwd_workers(rigs, packets)


def instructions(workers: int, packets: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                              sys.executable, __file__, "--work", str(workers), str(packets)],
                             capture_output=True, text=True, check=True, env=dict(os.environ))
    return int(re.search(r"Collected : (\d+)", run.stderr).group(1))


def main() -> None:
    for workers in (1, 2):
        extra = instructions(workers, LARGE) - instructions(workers, SMALL)
        print(f"{workers} worker(s): {extra / (workers * (LARGE - SMALL)):.1f} instructions per forwarded packet")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--work"]:
        work(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
