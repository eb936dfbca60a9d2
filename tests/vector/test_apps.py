"""The vector apps forwarding on the sim devices, compared with the same
logic written per packet (reference.py, scapy for checksums) on
hypothesis-generated traffic. The wiring: the test sends on sim:pair1; the
app receives on sim:pair0 and sends on sim:igb-pair0; the test receives on
sim:igb-pair1. Frames shorter than 60 bytes are padded by the sending NIC,
so the reference sees them padded too."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import ixypy
from ixypy import PacketBatch
from ixypy import vector as vec
from ixypy.vapps.firewall import Firewall, parse_rules
from ixypy.vapps.nat import Nat

from . import reference as ref
from .frames import frames
from .test_ops import ref_rules

SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def wire():
    devs = [ixypy.open(a, num_rx_desc=64, num_tx_desc=64) for a in
            ("sim:pair1", "sim:pair0", "sim:igb-pair0", "sim:igb-pair1")]
    yield devs
    for d in devs:
        d.close()
    assert [e for d in devs for e in d.bus.model_errors()] == []


def run_through(wire, data, step):
    """Send data through the app's step; returns the frames that came out."""
    sender, app_in, app_out, receiver = wire
    pool = sender.mempool(256)
    sent = [f.ljust(60, b"\0") for f in data]
    out = PacketBatch(64)
    out.alloc(pool, len(sent))
    for i, f in enumerate(sent):
        out.write(i, f)
    while len(out):
        sender.tx_batch(0, out)
    batch, got, arrived = PacketBatch(64), [], 0
    deadline = time.monotonic() + 5
    rx = PacketBatch(64)
    while time.monotonic() < deadline:
        if not len(batch):
            n = app_in.rx_batch(0, batch)
            if n:
                arrived += n
                step(batch)
        app_out.tx_batch(0, batch)
        if receiver.rx_batch(0, rx):
            got += [bytes(rx[i]) for i in range(len(rx))]
            rx.free()
        if arrived == len(sent) and not len(batch):
            app_out.flush_tx()
            while receiver.rx_batch(0, rx):
                got += [bytes(rx[i]) for i in range(len(rx))]
                rx.free()
            break
    assert arrived == len(sent), "the sim wire lost frames"
    return sent, got


RULES = """
# action proto src sport dst dport
drop   udp  2001:db8::/32 any       any             53
accept any  fe80::/10    any        2001:db8::/33   any
drop   any  any          any        2001:db8::2/127 any
drop   udp  10.0.0.0/8   any        any             53
accept tcp  any          1024-65535 192.168.0.0/16  80-443
drop   any  8.8.8.8/32   any        any             any
drop   17   any          0-1000     10.1.0.0/16     any
accept icmp any          any        any             any
drop   tcp  any          any        any             any
drop   any  any          any        any             5000-6000
accept udp  172.16.0.0/12 any       any             any
drop   any  192.168.0.0/16 any      any             any
accept any  any          any        10.0.0.0/24     any
default drop
"""


def reference_firewall(frames_: list):
    entries, actions, default = parse_rules(RULES)
    rules = ref_rules(entries)
    counters = [0] * (len(rules) + 1)
    out = []
    for f in frames_:
        r = ref.first_match(rules, ref.parse(f))
        counters[r] += 1                                   # -1: the default, last
        if (actions[r] if r >= 0 else default):
            out.append(f)
    return out, counters


@SETTINGS
@given(frames(1, 24))
def test_firewall_matches_reference(wire, data):
    """Thirteen rules, three of them IPv6. Negative control: the same frames through a firewall whose
    verdicts are inverted differ from the reference (whenever the traffic has
    both verdicts), so the comparison can fail."""
    fw = Firewall(RULES, 64)
    sent, got = run_through(wire, data, fw)
    want, counters = reference_firewall(sent)
    assert got == want
    assert fw.counters.tolist() == counters
    assert fw.passed == len(want) and fw.dropped == len(sent) - len(want)
    if 0 < len(want) < len(sent):
        bad = Firewall(RULES, 64)
        bad.verdict = ~bad.verdict
        _, got_bad = run_through(wire, data, bad)
        assert got_bad != want


def reference_nat(f: bytes) -> bytes:
    """The outbound rewrite of one frame, per packet, checksums by scapy."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    p = ref.parse(f)
    if p["flags"] & (ref.IPV4 | ref.BAD) != ref.IPV4:
        return f
    pkt = Ether(f)
    ip = pkt[IP]
    changed = False
    if p["src"] & 0xFF000000 == 0x0A000000:
        ip.src = f"198.{(p['src'] >> 16) & 0xFF}.{(p['src'] >> 8) & 0xFF}.{p['src'] & 0xFF}"
        del ip.chksum
        changed = True
    if p["flags"] & ref.L4 and p["dport"] == 8080:
        (pkt[UDP] if p["proto"] == 17 else pkt[TCP]).dport = 80
        changed = True
    if not changed:
        return f
    l4 = pkt[UDP] if p["flags"] & ref.L4 and p["proto"] == 17 else (pkt[TCP] if p["flags"] & ref.L4 else None)
    if l4 is not None and not (p["proto"] == 17 and l4.chksum == 0):
        if not p["flags"] & ref.FRAG:
            del l4.chksum
    return bytes(pkt)


@SETTINGS
@given(frames(1, 24))
def test_nat_matches_reference(wire, data):
    """1:1 NAT 10.0.0.0/8 -> 198.0.0.0/8 and dport 8080 -> 80. The frames
    whose checksums were valid come out as scapy rewrites them (fresh
    checksums); the others have the same fields rewritten. Mutation it failed
    on: set_ipv4 without the L4 checksum update (ops.pyx)."""
    nat = Nat("10.0.0.0/8", "198.0.0.0/8", {8080: 80}, 64)
    sent, got = run_through(wire, data, nat)
    assert len(got) == len(sent)
    for f, g in zip(sent, got):
        p = ref.parse(f)
        if ref.checksums_ok(f) and not p["flags"] & ref.FRAG:
            assert g == reference_nat(f), (f.hex(), g.hex())
        else:
            want = ref.parse(reference_nat(f)) if p["flags"] & (ref.IPV4 | ref.BAD) == ref.IPV4 else p
            got_p = ref.parse(g)
            for k in ("src", "dst", "sport", "dport", "proto", "flags"):
                assert got_p[k] == want[k], (k, f.hex(), g.hex())
    assert nat.rewritten == sum(1 for f in sent if ref.parse(f)["flags"] & (ref.IPV4 | ref.BAD) == ref.IPV4
                                and ref.parse(f)["src"] >> 24 == 10)
