"""The flow monitor (ixypy.vapps.flowmon) forwarding on the sim devices
(the wiring of test_apps.py), its per-flow counters compared with a count
per packet over reference.parse: exact, per flow, including flows that
collide in the table (a tiny table, and crafted pairs with the same 32-bit
flow hash), a table that fills up, and the `ixypy flowmon` command.

Mutations each test was seen to fail on are in its docstring; those naming
np.add.at, probe rounds, claimants of an empty slot or `[:room]` were of the
NumPy table that the C one (csrc/ixy_flowtable.h) replaced."""
from __future__ import annotations

import ipaddress
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

from ixypy import PacketBatch
from ixypy.packets import udp_flows, udp_frame
from ixypy.sim import source_frame
from ixypy.vapps.flowmon import FlowMonitor, FlowTable, top_table

from . import reference as ref
from .frames import frames
from .test_apps import SETTINGS, run_through, wire  # noqa: F401  (wire: the module's fixture)

SRC = Path(__file__).resolve().parents[2] / "src"


def flow_key(p: dict):
    """A packet's flow as FlowTable.flow() names it, None if not a flow."""
    f = p["flags"]
    if f & ref.BAD or not f & (ref.IPV4 | ref.IPV6):
        return None
    if f & ref.IPV4:
        src, dst = ipaddress.IPv4Address(p["src"]), ipaddress.IPv4Address(p["dst"])
    else:
        src, dst = ipaddress.IPv6Address(p["src6"]), ipaddress.IPv6Address(p["dst6"])
    return (4 if f & ref.IPV4 else 6, str(src), str(dst), p["proto"], p["sport"], p["dport"])


def reference_counts(sent: list):
    """{flow: [packets, bytes]} and [other packets, other bytes], per packet."""
    flows: dict = {}
    other = [0, 0]
    for f in sent:
        key = flow_key(ref.parse(f))
        c = other if key is None else flows.setdefault(key, [0, 0])
        c[0] += 1
        c[1] += len(f)
    return flows, other


def table_counts(table: FlowTable) -> dict:
    return {(r["ip"], r["src"], r["dst"], r["proto"], r["sport"], r["dport"]): [r["packets"], r["bytes"]]
            for r in table.records()}


def monitor(wire, chunks, table: FlowTable):
    """Send each chunk of frames through a FlowMonitor on `table`; returns
    all frames sent (padded as the NIC pads them) and checks that they came
    out unchanged."""
    step = FlowMonitor(table, 64)
    sent_all = []
    for chunk in chunks:
        sent, got = run_through(wire, chunk, step)
        assert got == sent
        sent_all += sent
    return sent_all


def assert_exact(table: FlowTable, sent: list) -> None:
    want, other = reference_counts(sent)
    assert table_counts(table) == want
    assert table.flows == len(want)
    t = table.totals()
    assert [t["other_packets"], t["other_bytes"]] == other
    assert t["untracked_packets"] == t["untracked_bytes"] == 0


def chunked(data: list, size: int = 48) -> list:
    return [data[i:i + size] for i in range(0, len(data), size)]


@SETTINGS
@given(frames(1, 24), frames(1, 24))
def test_counts_match_reference(wire, first, second):
    """Hypothesis traffic (VLAN, IPv6, options, fragments, malformed) in two
    batches, into a default table and into a 32-slot one (24 flows in 32
    slots: long probe chains). Mutations it failed on: np.add.at replaced by
    `packets[slot] += 1` / `bytes[slot] += length` (a flow counted once per
    batch); the family byte the same (1) for IPv4 and IPv6; a BAD frame
    with an IP header counted as a flow; every claimant of an empty slot
    counted as a new flow."""
    for table in (FlowTable(), FlowTable(31, slots=32)):
        sent = monitor(wire, [first, second], table)
        assert_exact(table, sent)


def test_many_flows_exact(wire):
    """40 UDP flows (pktgen --flows: source addresses 10.0.0.2 upward) plus
    TCP and IPv6 flows, 600 frames of several sizes in random order, through
    a default table and a 64-slot table (50 flows in 64 slots: collisions
    on most inserts). Mutations it failed on: np.add.at replaced by a
    buffered `+=` (a flow counted once per batch); the key comparison
    dropped (any occupied slot taken as the packet's flow: colliding flows
    merged); every claimant of an empty slot counted as a new flow (the
    one-winner-per-slot check dropped: flows overcounted); the probe not
    wrapping at the end of the table (`p + 1` without `& mask`: an
    IndexError, then with take(mode="clip") an endless probe, now stopped
    by the lap check: RuntimeError)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    rnd = random.Random(15)
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    kinds = (udp_flows(40) + [udp_frame(size, sport=4000 + size) for size in (64, 128, 512)]
             + [bytes(eth / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=p, dport=443)) for p in (1, 2, 3)]
             + [bytes(eth / IPv6(src=f"2001:db8::{i}", dst="2001:db8::ff") / TCP(sport=80, dport=9)) for i in range(4)])
    data = [rnd.choice(kinds) for _ in range(600)]
    for table in (FlowTable(), FlowTable(63, slots=64)):
        sent = monitor(wire, chunked(data), table)
        assert_exact(table, sent)
        assert table.flows == 50


def test_merged_tables_count_as_one(wire):
    """What `flowmon --queues N` does at exit: each worker counted into a
    table of its own; merged, they count every flow exactly, a flow seen
    by both workers once with both counts, including flows that probed in
    their own table (64 slots for 50 flows); the merged table then counts
    on; a merge into a table too small counts the rest as untracked.
    Mutations it failed on: the merge starting each probe at the flow's
    slot in the other table instead of its first slot (home); home not
    recorded at insert (all 0: the merged table counted on in new slots)."""
    rnd = random.Random(16)
    kinds = udp_flows(40) + [_v6_frame(f"2001:db8::{i}", "2001:db8::ff") for i in range(10)]
    data = [rnd.choice(kinds) for _ in range(600)]
    tables = [FlowTable(63, slots=64) for _ in range(2)]
    sent = monitor(wire, chunked(data[:300]), tables[0]) + monitor(wire, chunked(data[300:]), tables[1])
    merged = FlowTable(63, slots=64)
    for table in tables:
        merged.merge(table)
    assert_exact(merged, sent)
    sent += monitor(wire, chunked(data[:200]), merged)        # its flows where a lookup looks for them
    assert_exact(merged, sent)
    assert merged.flows == 50
    small = FlowTable(10, slots=64)
    small.merge(merged)
    t = small.totals()
    assert small.flows == 10 and t["packets"] + t["untracked_packets"] == len(sent)
    with pytest.raises(ValueError, match="does not merge"):
        FlowTable().merge(merged)


def _v6_frame(src: str, dst: str, sport: int = 1000, dport: int = 2000) -> bytes:
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return bytes(eth / IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport))


def _v4_frame(src: str, dst: str, sport: int = 1000, dport: int = 2000) -> bytes:
    return udp_frame(src_ip=src, dst_ip=dst, sport=sport, dport=dport)


# Pairs of different flows with the same 32-bit flow hash (the hash folds an
# IPv6 address to the XOR of its four words): so they collide at any table
# size. The last pair's keys (Fields.flow_keys) differ in the family byte
# only: IPv6 102:201:: is IPv4 1.2.2.1's four bytes then zeros, and folds to
# it (1.2.2.1 reads the same in either byte order, so this holds for a key
# built in host order too).
COLLIDING = [
    (_v6_frame("2001:db8:0:1::", "2001:db8::ff"), _v6_frame("0:1:2001:db8::", "2001:db8::ff")),
    (_v6_frame("2001:db8::1:0:2", "2001:db8::ff"), _v6_frame("2001:db8::2:0:1", "2001:db8::ff")),
    (_v4_frame("10.0.0.2", "0.0.0.0"), _v6_frame("::a00:2", "::")),
    (_v4_frame("1.2.2.1", "9.8.8.9"), _v6_frame("102:201::", "908:809::")),
]


def test_colliding_flows_stay_apart(wire):
    """Each pair has the same flow hash (checked), so both flows want the
    same slot of any table; they are counted apart, exactly, in one batch
    and across batches, in a default table and in a 4-slot one. Mutations
    it failed on: the key comparison dropped (colliding flows merged); the
    family byte the same (1) for IPv4 and IPv6 (the last pair merged); the
    IPv6 addresses keyed by their first 8 bytes only (the second pair
    merged); np.add.at replaced by a buffered `+=`; the probe not wrapping
    at the end of the table (RuntimeError); IPv6 keys with family 4 (in
    ops.pyx's flow_keys)."""
    rnd = random.Random(7)
    for a, b in COLLIDING:
        pa, pb = ref.parse(a.ljust(60, b"\0")), ref.parse(b.ljust(60, b"\0"))
        assert ref.flow_hash(pa) == ref.flow_hash(pb) and flow_key(pa) != flow_key(pb)
        data = [a] * 5 + [b] * 3 + [rnd.choice((a, b)) for _ in range(60)]
        for table in (FlowTable(), FlowTable(3, slots=4)):
            sent = monitor(wire, [data[:40], data[40:]], table)
            assert_exact(table, sent)
            assert table.flows == 2


def test_full_table_counts_untracked(wire):
    """Twenty flows into a 64-slot table for four: most of them find an
    empty slot in the same probe round of the first batch, four are kept,
    each counted exactly; the packets of the others are untracked, all of
    them (none is counted in a kept flow), in that batch and later ones.
    Mutation it failed on: the claims of one probe round not cut to the
    room left (`[:room]` dropped: 14 flows kept)."""
    flows = udp_flows(20)
    rnd = random.Random(3)
    data = [rnd.choice(flows) for _ in range(300)]
    table = FlowTable(4, slots=64)
    sent = monitor(wire, chunked(data), table)
    want, _ = reference_counts(sent)
    got = table_counts(table)
    assert table.flows == len(got) == 4
    for key, counts in got.items():
        assert want[key] == counts
    untracked = [c for k, c in want.items() if k not in got]
    t = table.totals()
    assert [t["untracked_packets"], t["untracked_bytes"]] == [sum(c[0] for c in untracked), sum(c[1] for c in untracked)]
    assert t["packets"] + t["untracked_packets"] == len(sent)


def test_top_and_dump():
    """top() orders by bytes, then packets (10.0.0.2 and .1 tie on bytes); the JSON dump has every flow
    with its addresses as strings; the rich table shows IPv6 endpoints in
    brackets. Host memory, no device. Mutations it failed on: top() by
    argpartition alone (a tie at the n-th flow broken against packets);
    IPv6 endpoints without brackets."""
    from rich.console import Console

    from ixypy.fastpath.mempool import DmaMemory, Mempool

    pool = Mempool(DmaMemory(256 * 2048), 256)
    data = ([udp_frame(100, src_ip="10.0.0.1")] * 3 + [udp_frame(60, src_ip="10.0.0.2")] * 5 +
            [_v6_frame("2001:db8::1", "2001:db8::2").ljust(60, b"\0")] * 2 + [udp_frame(400, src_ip="10.0.0.3")])
    batch = PacketBatch(64)
    batch.alloc(pool, len(data))
    for i, f in enumerate(data):
        batch.write(i, f)
    table = FlowTable(16)
    FlowMonitor(table, 64)(batch)
    batch.free()
    assert [table.flow(s)["src"] for s in table.top(10)] == ["10.0.0.3", "10.0.0.2", "10.0.0.1", "2001:db8::1"]
    assert [table.flow(s)["src"] for s in table.top(2)] == ["10.0.0.3", "10.0.0.2"]
    dump = json.loads(table.dump(seconds=1.0))
    assert dump["seconds"] == 1.0 and dump["totals"]["flows"] == 4 and dump["totals"]["packets"] == len(data)
    assert dump["flows"][0] == {"ip": 4, "src": "10.0.0.3", "dst": "10.0.0.1", "proto": 17, "sport": 1234,
                                "dport": 5678, "packets": 1, "bytes": 400}
    assert dump["flows"][3]["src"] == "2001:db8::1" and dump["flows"][3]["ip"] == 6
    console = Console(width=160, record=True, file=open(os.devnull, "w"))
    console.print(top_table(table, 10, 1.0))
    text = console.export_text()
    assert "[2001:db8::1]:1000" in text and "10.0.0.3:1234" in text and "0.003" in text    # 400 bytes in 1 s


def ixypy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ixypy.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})


def test_command_json(tmp_path: Path):
    """`ixypy flowmon sim:source sim:sink --count N --json FILE`: the
    source's 256 flows, every packet the monitor saw counted in one of them;
    `--json -` prints the same document instead of the table. Mutations it
    failed on: flowmon left out of vapps.commands.COMMANDS; `--json -`
    printing the table after the JSON."""
    out_file = tmp_path / "flows.json"
    out = ixypy("flowmon", "sim:source", "sim:sink", "--count", "20000", "--json", str(out_file))
    assert out.returncode == 0, out.stderr
    assert "top 10 of 256 flows" in out.stdout and out.stdout.splitlines()[-1].startswith("forwarded ")
    docs = [(json.loads(out_file.read_text()), 20000),
            (json.loads(ixypy("flowmon", "sim:source", "sim:sink", "--count", "5000", "--json", "-").stdout), 5000)]
    sources = {flow_key(ref.parse(source_frame(i))) for i in range(256)}
    for doc, count in docs:
        flows = doc["flows"]
        assert {(f["ip"], f["src"], f["dst"], f["proto"], f["sport"], f["dport"]) for f in flows} == sources
        packets = sum(f["packets"] for f in flows)
        assert packets >= doc["forwarded"] >= count      # received and counted >= sent >= --count
        assert all(f["bytes"] == f["packets"] * len(source_frame()) for f in flows)
        assert doc["totals"]["packets"] == packets and doc["totals"]["other_packets"] == 0
        assert doc["devices"] == ["sim:source", "sim:sink"]


def test_bad_table_sizes():
    """Mutation it failed on: slots == max_flows accepted (a full table
    would leave no empty slot to end a probe)."""
    with pytest.raises(ValueError):
        FlowTable(0)
    with pytest.raises(ValueError):
        FlowTable(4, slots=4)
    with pytest.raises(ValueError):
        FlowTable(4, slots=12)
    assert FlowTable(5).slots == 16 and FlowTable(8).slots == 16
    assert np.all(FlowTable(3, slots=4).keys == 0)


# --- the table on its own (host memory, no device) ------------------------------------

def count_frames(table: FlowTable, data: list, capacity: int = 32) -> None:
    """Count data (frames) into table through a FlowMonitor, `capacity` frames a batch."""
    from ixypy.fastpath.mempool import DmaMemory, Mempool

    pool = Mempool(DmaMemory(64 * 2048), 64)
    batch = PacketBatch(capacity)
    step = FlowMonitor(table, capacity)
    for chunk in chunked(data, capacity):
        batch.alloc(pool, len(chunk))
        for i, f in enumerate(chunk):
            batch.write(i, f)
        step(batch)
        batch.free()


def _same_home(home: int, mask: int, n: int) -> list:
    """n UDP frames of different flows (source ports) whose flow hash & mask
    is home, the j-th 64 + j bytes long."""
    out = []
    for sport in range(1, 1 << 16):
        f = udp_frame(64 + len(out), sport=sport)
        if ref.flow_hash(ref.parse(f)) & mask == home:
            out.append(f)
            if len(out) == n:
                return out
    raise AssertionError("not enough colliding flows")


def test_one_home_slot_fills_to_max_flows():
    """13 flows with the same first slot (12) in a 16-slot table for 10,
    plus non-IP frames: the first 10 flows take slots 12, 13, 14, 15, 0, 1,
    ... 5 in the order they came (linear probing, wrapping at the end), each
    with home 12 and its exact counts; slots 6-11 stay empty; the packets of
    the other 3 are untracked, those of the ARP-like frames "other", in the
    first batch and in later ones. Mutations it failed on (csrc/ixy_flowtable.h):
    a probe step of 2 (`i + 2`: only the even slots reached, the tenth flow's
    probe went round the table: RuntimeError); the bytes
    counter not incremented; `flows > max_flows` (11 flows kept); the
    untracked bytes not counted; home recorded as the slot found (not the
    first slot); the "other" packets not counted."""
    flows = _same_home(12, 15, 13)
    other = udp_frame(70)[:12] + b"\x08\x06" + bytes(56)           # EtherType ARP: not IP
    rnd = random.Random(12)
    data = flows + [other] + [rnd.choice(flows + [other]) for _ in range(300)]
    table = FlowTable(10, slots=16)
    count_frames(table, data)
    want, want_other = reference_counts(data)
    assert table.flows == 10
    for j, f in enumerate(flows[:10]):
        slot = (12 + j) & 15
        r = table.flow(slot)
        assert r["sport"] == ref.parse(f)["sport"] and table.home[slot] == 12
        assert [r["packets"], r["bytes"]] == want[flow_key(ref.parse(f))]
    assert not table.keys[6:12].any() and not table.packets[6:12].any()
    lost = [want[flow_key(ref.parse(f))] for f in flows[10:]]
    t = table.totals()
    assert [t["untracked_packets"], t["untracked_bytes"]] == [sum(c[0] for c in lost), sum(c[1] for c in lost)]
    assert [t["other_packets"], t["other_bytes"]] == want_other
    assert t["packets"] + t["untracked_packets"] + t["other_packets"] == len(data)


def test_pickled_table_counts_on():
    """A worker's table comes back to the parent pickled: the copy has the
    same slots (64-byte aligned again), flows, other and untracked counts,
    and counts on the same as the original (its flows where a lookup
    looks). Mutations it failed on: _unpickle not restoring the counts
    (flows 0); not copying the slots (no flows); __reduce__ removed
    (FlowCounter cannot be pickled: TypeError)."""
    import pickle

    flows = _same_home(3, 7, 6)
    data = flows + [udp_frame(64)[:12] + b"\x08\x06" + bytes(50)] * 2
    table = FlowTable(4, slots=8)
    count_frames(table, data)
    copy = pickle.loads(pickle.dumps(table))
    assert copy.totals() == table.totals() and copy.records() == table.records()
    assert copy.flows == 4 and copy.untracked_packets == 2 and copy.other_packets == 2
    assert copy.entries.ctypes.data % 64 == 0 and copy.max_flows == 4 and copy.slots == 8
    for t in (table, copy):
        count_frames(t, flows[::-1])
    assert copy.totals() == table.totals() and copy.records() == table.records() and copy.flows == 4


def test_table_without_an_empty_slot_raises():
    """Keys written from outside so that no slot is empty (the NumPy views
    are writable): a lookup goes round the table once and the call raises
    instead of probing for ever without the GIL. Mutation it failed on:
    the lap limit removed from ixy_flowtable_slot (the call never returned:
    stopped by `timeout`)."""
    table = FlowTable(1, slots=2)
    table.keys[:, 4] = 1                       # two bogus flows, no empty slot
    with pytest.raises(RuntimeError, match="round the whole table"):
        count_frames(table, [udp_frame(64)])
    other = FlowTable(1, slots=2)
    count_frames(other, [udp_frame(64)])
    with pytest.raises(RuntimeError, match="round the whole table"):
        table.merge(other)
