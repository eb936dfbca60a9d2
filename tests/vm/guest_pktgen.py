"""`ixypy pktgen --gbps` in the guest, and what the host test asserts on it.
run_at_gbps runs in the guest (tests/vm is on its PYTHONPATH);
check_reports_gbps runs on the host. Standard library and ixypy only."""
import contextlib
import io
import json
from typing import Dict, List

# (--size, --gbps): the smallest frame, where the 4 FCS bytes weigh most (4 of
# the 84 on the wire), and the largest; rates (15 and 8 kpps) that QEMU's
# NICs sustain in a TCG guest on a loaded 2-core host
GUEST_GBPS = [(60, 0.01), (1514, 0.1)]
FCS, L1_OVERHEAD = 4, 20          # bytes per frame: its CRC; preamble 7 + SFD 1 + inter-frame gap 12
SECONDS = 4.0
ATTEMPTS = 3


def run_at_gbps(address: str, size: int, gbps: float) -> List[Dict[str, object]]:
    """Guest side: `ixypy pktgen ADDRESS --size SIZE --gbps GBPS --json` for
    SECONDS, through the command's entry point in this process (a new
    interpreter takes tens of seconds to start under TCG); a run that fell
    short of the rate (the host held the guest back: fewer packets, never
    more) is repeated, ATTEMPTS runs at most. Returns each run's exit code,
    stderr and summary line."""
    from ixypy.cli import main

    runs: List[Dict[str, object]] = []
    for _ in range(ATTEMPTS):
        stdout, stderr, code = io.StringIO(), io.StringIO(), 0
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main(["pktgen", address, "--size", str(size), "--gbps", str(gbps), "--duration", str(SECONDS), "--json"])
            except SystemExit as stopped:
                code = stopped.code if isinstance(stopped.code, int) else 1
        summaries = [json.loads(line) for line in stdout.getvalue().splitlines() if '"summary"' in line]
        summary = summaries[-1] if summaries else None
        runs.append({"rc": code, "err": stderr.getvalue()[-2000:], "summary": summary})
        if code or summary is None or summary["tx_l1_gbps"] >= gbps * 0.99:
            break
    return runs


def check_reports_gbps(runs: List[Dict[str, object]], size: int, gbps: float) -> None:
    """Host side: every run counted size + 4 bytes a frame (DeviceStats'
    bytes, the NIC's own counters on igb), its L2 rate is the frames' share
    of L1, and it never claims more than --gbps; the last one reports --gbps
    within 1 %."""
    assert runs, "no pktgen run"
    for run in runs:
        assert run["rc"] == 0 and run["summary"], run
        s = run["summary"]
        assert s["tx_bytes"] == (size + FCS) * s["tx_packets"] > 0, s
        assert abs(s["tx_l2_gbps"] - s["tx_l1_gbps"] * (size + FCS) / (size + FCS + L1_OVERHEAD)) <= 1e-9 * gbps, s
        assert s["tx_l1_gbps"] <= gbps * 1.01, s
    last = runs[-1]["summary"]
    assert abs(last["tx_l1_gbps"] - gbps) <= 0.01 * gbps, (size, gbps, runs)
