"""`ixypy ndr` and ixypy.ndr on the sim's two cabled ports (sim:pair0 ->
sim:pair1, opened in one process): the receiver counting a trial's frames,
a search against a receiver slowed to a known rate, and the command's
outputs and errors.

The slow receiver is a real receive loop on the sim device (SeqRxLoop's
max_pps): it takes at most CAP frames a second, leaving the rest in the rx
ring, where the model drops what finds no room. It loses nothing in a trial
of T seconds up to CAP + RING / T (the ring holds the excess), so the rate
found lies within the resolution below CAP and RING / T above it."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ixypy import ndr
from ixypy.apps import Limits, pktgen
from ixypy.errors import NothingReceived
from ixypy.fastpath.batch import PacketBatch
from ixypy.fastpath.loops import SeqRxLoop
from ixypy.packets import SEQ_OFFSET, udp_frame

from ..cli.test_cli import ixypy, json_lines

CAP = 10_000             # frames a second the slowed receiver takes: a rate the sim keeps up with on a loaded machine
RING = 4096              # the slowed receiver's rx descriptors: a stall of the receiving thread up to 0.4 s loses nothing
BATCH = 32               # pktgen's last batch may go past the rate by this much


def test_the_receiver_counts_its_window_and_sees_late_frames(ixypy_pair):
    """Frames numbered outside the window are other traffic; numbers below
    one already seen are late. Mutation tried: SeqRxLoop's window check
    removed (130 packets, 80 late, 0 other)."""
    tx, rx = ixypy_pair
    first = 5 << 40
    pktgen(tx, [udp_frame()], Limits(count=30), first_seq=0)                   # another sender's numbers
    pktgen(tx, [udp_frame()], Limits(count=50), first_seq=first + 50)
    pktgen(tx, [udp_frame()], Limits(count=50), first_seq=first)              # 50 late ones
    loop = SeqRxLoop(rx.rx_queue(0), PacketBatch(32), SEQ_OFFSET, first, 1 << 40)
    loop.run(0.5)
    assert (loop.packets, loop.late, loop.other) == (100, 50, 30)


def slow_search(tx, rx, **config) -> ndr.Result:
    return ndr.throughput(tx, rx, ndr.Config(**{"trial_seconds": 1.0, "settle_seconds": 0.2, "max_mpps": 2 * CAP / 1e6,
                                                "resolution_pct": 2.0, **config}), rx_max_pps=CAP)


@pytest.fixture
def slow_pair(ixypy_sim):
    """pair0 -> pair1, pair1 with RING rx descriptors (a preempted receiver
    on a busy 2-core machine once lost frames at a rate below CAP with 512)."""
    return ixypy_sim.open("pair0"), ixypy_sim.open("pair1", num_rx_desc=RING)


def test_the_search_converges_to_a_slow_receivers_rate(slow_pair):
    """Mutations tried: SeqRxLoop's wait for max_pps removed (finds the max,
    20000); a trial passing on loss_pct >= the threshold (only total loss passes: None)."""
    result = slow_search(*slow_pair)
    resolution = 2 * CAP * 0.02
    assert result.ndr_mpps is not None
    assert CAP - resolution < result.ndr_mpps * 1e6 <= CAP + RING / 1.0 + BATCH, result.trials
    assert result.trials[0].rate_mpps == 2 * CAP / 1e6 and not result.trials[0].passed


def test_a_threshold_of_100_percent_returns_the_max_rate(slow_pair):
    """At twice what the receiver takes, half the frames are lost; with
    --loss 100 that passes, so the first trial, at the max, ends the
    search. Mutation tried: `passed` as loss_pct <= 0 (the threshold ignored)."""
    result = slow_search(*slow_pair, loss_pct=100.0)
    assert [t.rate_mpps for t in result.trials] == [2 * CAP / 1e6]
    assert result.trials[0].loss_pct > 20 and result.ndr_mpps == 2 * CAP / 1e6


def test_a_receiver_that_gets_nothing_is_an_error_naming_it(ixypy_sim):
    """sim:sink is cabled to nothing of ours. Mutation tried: the check for
    nothing received removed (the search goes on down to 0 and finds None)."""
    tx, rx = ixypy_sim.open("pair0"), ixypy_sim.open("sink")
    with pytest.raises(NothingReceived, match="sim:sink .link up, 10000 Mbit/s. received none of the"):
        ndr.throughput(tx, rx, ndr.Config(trial_seconds=0.2, settle_seconds=0.0, max_mpps=0.01))


def test_cli_json_lines_and_csv_for_two_sizes(tmp_path: Path):
    """A trial line per trial and a result per size; the CSV has the same
    trials; the Gbit/s are the NDR's on the wire (L1: +24 bytes a frame)
    and with the FCS (L2: +4). Mutations tried: l1_bytes without the
    preamble (L1 = L2); every trial numbered 0."""
    out = ixypy("ndr", "sim:pair0", "sim:pair1", "--max-rate", "0.01", "--trial", "0.5", "--settle", "0.1",
                "--size", "60", "--size", "1514", "--max-trials", "3", "--json", "--csv", str(tmp_path / "t.csv"))
    assert out.returncode == 0, out.stderr
    lines = json_lines(out.stdout)
    results = [r for r in lines if r.get("result")]
    trials = [r for r in lines if "trial" in r]
    assert [r["size"] for r in results] == [60, 1514]
    for r in results:
        assert r["ndr_mpps"] == max(t["rate_mpps"] for t in r["trials"] if t["passed"])
        assert r["l1_gbps"] == pytest.approx(r["ndr_mpps"] * 1e6 * (r["size"] + 24) * 8 / 1e9)
        assert r["l2_gbps"] == pytest.approx(r["ndr_mpps"] * 1e6 * (r["size"] + 4) * 8 / 1e9)
        assert r["config"]["max_mpps"] == 0.01 and r["tx"] == "sim:pair0" and r["rx"] == "sim:pair1"
    assert [t["trial"] for t in trials] == [i + 1 for r in results for i in range(len(r["trials"]))]
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [(int(r["trial"]), int(r["size"]), int(r["sent"]), int(r["received"])) for r in rows] == \
        [(t["trial"], t["size"], t["sent"], t["received"]) for t in trials]


def test_cli_prints_a_line_per_trial_and_the_result():
    """Mutation tried: the result line without its Mpps."""
    out = ixypy("ndr", "sim:loop", "sim:loop", "--max-rate", "0.01", "--trial", "0.3", "--settle", "0.1",
                "--max-trials", "2", "--loss", "0.5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("[60 B] trial 1: 0.010000 Mpps") and lines[0].endswith(": pass")
    assert lines[-1].startswith("[60 B] PDR (loss <= 0.5 %) 0.010000 Mpps, 0.007 Gbit/s L1")


@pytest.mark.parametrize("args, code, message", [
    (["--min-rate", "2", "--max-rate", "1"], 2, "--min-rate 2 is above --max-rate 1"),
    (["--min-rate", "20"], 2, "above sim:pair0's line rate for 60-byte frames, 14.881 Mpps"),
    (["--loss", "101"], 2, "--loss"),
    (["--resolution", "0"], 2, "--resolution"),
    (["--size", "59"], 2, "--size"),
])
def test_bad_input_is_a_one_line_error(args, code, message):
    """Mutations tried: InvalidRate left out of the exit-2 errors (exit 1);
    the --min-rate check against --max-rate removed (the line-rate message instead)."""
    out = ixypy("ndr", "sim:pair0", "sim:pair1", *args)
    assert out.returncode == code and message in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("ixypy: error:")


def test_cli_nothing_received_suggests_fwd_and_the_cable():
    """Mutation tried: NothingReceived's hint without `ixypy fwd`."""
    out = ixypy("ndr", "sim:pair0", "sim:sink", "--trial", "0.2", "--settle", "0", "--max-rate", "0.01")
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1
    assert "sim:sink (link up, 10000 Mbit/s) received none of the" in out.stderr
    assert "`ixypy fwd DEV1 DEV2`" in out.stderr and "cable" in out.stderr


def test_help_says_rfc_2544_asks_for_60_s_trials():
    """Mutation tried: --trial's help without RFC 2544's 60 s."""
    out = ixypy("ndr", "--help")
    assert "RFC 2544 asks for 60 in a real test" in " ".join(out.stdout.split())
