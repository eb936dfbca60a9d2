"""The loops both benchmarks measure (throughput and instruction counts):
Python-driven, written as an application would, and C-driven
(ixypy.fastpath.bench: the same per-batch C functions with no Python between
batches). `stalled` is called when the loop cannot progress (tx ring full,
nothing received): a no-op while the model runs on its own thread, the
model's pass when it runs in this one.

The fwd loops here are one-way forwarders that touch no packet and keep
what tx refuses; ixy C's forwarder (two ports, both directions, byte 1
incremented, unsent freed) is python_fwd_ixy / bench_fwd_ixy on Ports, the
only loops compared with ixy C's published figures (IXY_C)."""
from __future__ import annotations

import importlib
import threading
import time
from typing import Callable, List, Sequence

from ixypy import Mempool, PacketBatch
from ixypy.fastpath.bench import bench_fwd, bench_fwd_ixy, bench_rx, bench_tx
from ixypy.packets import SEQ_OFFSET

DRIVERS = ("ixgbe", "igb", "virtio")    # a rig each: benchmarks/rig_<driver>.py
KINDS = ("tx", "rx", "fwd")
# how each kind is driven: from Python as an app writes it, fwd also with the
# one-call step (Queue.forward), and from C (ixypy.fastpath.bench)
MODES = {"tx": ("python", "c"), "rx": ("python", "c"), "fwd": ("python", "step", "c")}

Loop = Callable[[PacketBatch, int], int]

# ixy C's forwarder (app/ixy-fwd.c), driven from Python and from C: the rows
# of their own table in both benchmarks, labelled with what they do
IXY_FWD = ("fwd ixy-style: 2 ports, both directions, byte 1 incremented, unsent freed; "
           "each port's wire a generator into its rx, its tx counted and dropped")
IXY_FWD_MODES = {"python": "Python-driven", "c": "C-driven"}
# ixy C's published cost per forwarded packet of that forwarder, on an 82599
# with its ixgbe driver (../shared/LESSONS.md): batch -> (instructions, cycles).
# Set next to the ixgbe rows of IXY_FWD only: no other loop does this work.
IXY_C = {8: (139, 108), 32: (127, 94)}


def open_rig(driver: str, threaded: bool):
    """The driver's rig (see rig_ixgbe.Rig): its queues on a device model."""
    return importlib.import_module(f"rig_{driver}").open_rig(threaded)


def loop_for(rig, kind: str, mode: str) -> Loop:
    """loop(batch, packets) moving at least `packets` packets through the rig."""
    txq, rxq, pool, poll, hook = rig.txq, rig.rxq, rig.pool, rig.poll, rig.hook
    return {
        ("tx", "python"): lambda batch, n: python_tx(txq, pool, batch, n, poll),
        ("rx", "python"): lambda batch, n: python_rx(rxq, batch, n, poll),
        ("fwd", "python"): lambda batch, n: python_fwd(rxq, txq, batch, n, poll),
        ("fwd", "step"): lambda batch, n: step_fwd(rxq, txq, batch, n, poll),
        ("tx", "c"): lambda batch, n: bench_tx(txq, pool, batch.capacity, n, SEQ_OFFSET, hook),
        ("rx", "c"): lambda batch, n: bench_rx(rxq, batch, n, hook)[0],
        ("fwd", "c"): lambda batch, n: bench_fwd(rxq, txq, batch, n, hook)[0],
    }[(kind, mode)]


def open_ports(driver: str, threaded: bool):
    """The driver's two ports for ixy's forwarder (see model_rig.Ports)."""
    return importlib.import_module(f"rig_{driver}").open_ports(threaded)


def ixy_loop_for(ports, mode: str) -> Loop:
    """loop(batch, packets): ixy's forwarder on ports until at least
    `packets` were forwarded (both directions together); returns the count."""
    if mode == "c":
        return lambda batch, n: bench_fwd_ixy(ports.rxq_a, ports.txq_a, ports.rxq_b, ports.txq_b, batch, n,
                                              ports.hook)[0]
    return lambda batch, n: python_fwd_ixy(ports.rxq_a, ports.txq_a, ports.rxq_b, ports.txq_b, batch, n, ports.poll)


def nothing() -> None:
    """stalled() for a model on its own thread: just try again."""


def python_tx(txq, pool: Mempool, batch: PacketBatch, packets: int, stalled: Callable[[], None] = nothing) -> int:
    """The pktgen loop: a fresh batch when the last one is gone, stamp, send."""
    sent = seq = 0
    while sent < packets:
        if not len(batch):
            batch.alloc(pool)
            seq = batch.stamp_u64(SEQ_OFFSET, seq)
        sent += txq.tx(batch)
        if len(batch):
            stalled()
    batch.free()
    return sent


def python_rx(rxq, batch: PacketBatch, packets: int, stalled: Callable[[], None] = nothing) -> int:
    got = 0
    while got < packets:
        n = rxq.rx(batch)
        if n:
            got += n
            batch.free()
        else:
            stalled()
    return got


def python_fwd(rxq, txq, batch: PacketBatch, packets: int, stalled: Callable[[], None] = nothing) -> int:
    """Receive into the batch's free slots, send; what the tx ring does not
    take waits in the batch (Queue.forward written out in Python, with room
    for the app's own work between rx and tx)."""
    sent = 0
    while sent < packets:
        rxq.rx(batch)
        n = txq.tx(batch)
        sent += n
        if not n:
            stalled()
    return sent


def step_fwd(rxq, txq, batch: PacketBatch, packets: int, stalled: Callable[[], None] = nothing) -> int:
    """The same with the one-call step."""
    sent = 0
    while sent < packets:
        n = rxq.forward(txq, batch)
        sent += n
        if not n:
            stalled()
    return sent


def python_fwd_ixy(rxq_a, txq_a, rxq_b, txq_b, batch: PacketBatch, packets: int,
                   stalled: Callable[[], object] = nothing) -> int:
    """ixy C's forwarder (app/ixy-fwd.c) with ixypy's public API: a's rx to
    b's tx, then b's rx to a's tx, each a batch with byte 1 of every packet
    incremented (vector.inc_byte) and what tx does not take freed. Returns
    the count forwarded. stalled() after a round that received nothing;
    when it returns 0 (the model's pass found nothing to do), nothing can
    arrive any more and the loop returns early."""
    # imported here, not with the module: loading ixypy.vector (NumPy) before
    # the other loops run moved their Python-driven counts by up to 2%
    from ixypy.vector import inc_byte

    sent = 0
    while sent < packets:
        n = rxq_a.rx(batch)
        if n:
            inc_byte(batch, 1)
            s = txq_b.tx(batch)
            sent += s
            if s < n:
                batch.free()
        m = rxq_b.rx(batch)
        if m:
            inc_byte(batch, 1)
            s = txq_a.tx(batch)
            sent += s
            if s < m:
                batch.free()
        if not n and not m and stalled() == 0:
            break
    return sent


# --- the vector apps (ixypy.vapps) next to the bare forward step and the same
# logic per packet in Python with memoryviews. Each loop counts packets
# received and processed (the firewall may drop), up to `packets`.

APP_KINDS = {
    "step": "bare forward step (rxq.forward), no packet touched",
    "touch-vector": "forward + increment byte 1 of each packet (ops.inc_byte)",
    "touch-python": "forward + increment byte 1 per packet in Python (memoryview)",
    "fw-vector": "firewall, 10 rules, all checked (Firewall, a Classifier: one C call per batch parses, matches, counts, keeps)",
    "fw-python": "the same firewall per packet in Python (memoryview, struct)",
    "nat-vector": "1:1 NAT 10/8 -> 198/8 + dport map, checksums updated (Nat, a Rewriter: one C call per batch parses, rewrites, updates checksums, counts)",
    "nat-python": "the same NAT per packet in Python (memoryview, RFC 1624 in Python)",
    "flowmon-vector": "flow monitor, packets and bytes per 5-tuple, one flow (FlowMonitor: one C call per batch parses, keys, hashes, probes the table, counts)",
    "flowmon-python": "the same flow monitor per packet in Python (memoryview, struct, dict)",
}

# nine rules the rig's source frame (UDP 10.0.0.2:1234 -> 10.0.0.1:5678) misses, a tenth it matches
BENCH_RULES = """
drop   udp  192.168.0.0/16 any any 53
drop   tcp  any any 10.0.0.0/8 80-443
drop   udp  any 0-1000 any any
drop   any  8.8.8.8/32 any any any
drop   udp  10.0.0.0/8 any any 6000-7000
drop   icmp any any any any
drop   udp  172.16.0.0/12 any 10.0.0.0/8 any
drop   17   any 2000-3000 any any
drop   tcp  any any any any
accept udp  10.0.0.0/8 any 10.0.0.0/8 any
default drop
"""


def _app_loop(rxq, txq, step, batch: PacketBatch, packets: int, stalled) -> int:
    got = 0
    while got < packets:
        if not len(batch):
            n = rxq.rx(batch)
            if not n:
                stalled()
                continue
            got += n
            step(batch)
        if not txq.tx(batch) and len(batch):
            stalled()
    return got


def touch_python(batch: PacketBatch) -> None:
    for i in range(len(batch)):
        mv = batch[i]
        mv[1] = (mv[1] + 1) & 0xFF


class FirewallPython:
    """The firewall's logic per packet: parse with struct, scan the rules."""

    def __init__(self, text: str) -> None:
        import numpy as np
        from ixypy import vector as vec
        from ixypy.vapps.firewall import parse_rules

        entries, actions, default = parse_rules(text)
        self.rules = [(None if r["proto"] == vec.ANY_PROTO else int(r["proto"]), int(r["src_net"]), int(r["src_mask"]),
                       int(r["dst_net"]), int(r["dst_mask"]), int(r["sport_lo"]), int(r["sport_hi"]),
                       int(r["dport_lo"]), int(r["dport_hi"])) for r in vec.rules(entries)]
        self.actions = actions + [default]
        self.keep = bytearray(1024)
        self.np = np

    def __call__(self, batch: PacketBatch) -> None:
        from ixypy.fastpath.ops import keep
        import struct
        unpack = struct.unpack_from
        for i in range(len(batch)):
            mv = batch[i]
            verdict = self.actions[-1]
            if len(mv) >= 34 and mv[12] == 8 and mv[13] == 0 and mv[14] >> 4 == 4:
                ihl = (mv[14] & 15) * 4
                proto = mv[23]
                src, dst = unpack(">II", mv, 26)
                sport = dport = -1
                if proto in (6, 17) and not unpack(">H", mv, 20)[0] & 0x1FFF and len(mv) >= 14 + ihl + 4:
                    sport, dport = unpack(">HH", mv, 14 + ihl)
                for r, (p, sn, sm, dn, dm, slo, shi, dlo, dhi) in enumerate(self.rules):
                    if p is not None and p != proto:
                        continue
                    if src & sm != sn or dst & dm != dn:
                        continue
                    if (slo, shi) != (0, 0xFFFF) and not slo <= sport <= shi:
                        continue
                    if (dlo, dhi) != (0, 0xFFFF) and not dlo <= dport <= dhi:
                        continue
                    verdict = self.actions[r]
                    break
            self.keep[i] = verdict
        keep(batch, self.keep)


def _csum_update32(hc: int, old: int, new: int) -> int:
    s = (~hc & 0xFFFF) + (~(old >> 16) & 0xFFFF) + (~old & 0xFFFF) + (new >> 16) + (new & 0xFFFF)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def nat_python(batch: PacketBatch) -> None:
    """The NAT's logic per packet (untagged IPv4, as the rig sends)."""
    import struct
    for i in range(len(batch)):
        mv = batch[i]
        if len(mv) < 34 or mv[12] != 8 or mv[13] != 0:
            continue
        src = struct.unpack_from(">I", mv, 26)[0]
        if src >> 24 != 10:
            continue
        new = (src & 0x00FFFFFF) | (198 << 24)
        struct.pack_into(">I", mv, 26, new)
        struct.pack_into(">H", mv, 24, _csum_update32(struct.unpack_from(">H", mv, 24)[0], src, new))
        if mv[23] in (6, 17):
            l4 = 14 + (mv[14] & 15) * 4
            at = l4 + (6 if mv[23] == 17 else 16)
            cs = struct.unpack_from(">H", mv, at)[0]
            dport = struct.unpack_from(">H", mv, l4 + 2)[0]
            if dport == 5678:
                struct.pack_into(">H", mv, l4 + 2, 80)
                cs = cs and (_csum_update32(cs, dport, 80) or 0xFFFF)
            if cs:
                struct.pack_into(">H", mv, at, _csum_update32(cs, src, new) or 0xFFFF)


class FlowmonPython:
    """The flow monitor's logic per packet: parse with struct (untagged
    IPv4, as the rig sends), count in a dict keyed by the 5-tuple."""

    def __init__(self) -> None:
        self.flows: dict = {}
        self.other = 0

    def __call__(self, batch: PacketBatch) -> None:
        import struct
        unpack, flows = struct.unpack_from, self.flows
        for i in range(len(batch)):
            mv = batch[i]
            if len(mv) < 34 or mv[12] != 8 or mv[13] != 0 or mv[14] >> 4 != 4:
                self.other += 1
                continue
            proto = mv[23]
            sport = dport = 0
            if proto in (6, 17) and not unpack(">H", mv, 20)[0] & 0x1FFF:
                sport, dport = unpack(">HH", mv, 14 + (mv[14] & 15) * 4)
            key = (*unpack(">II", mv, 26), proto, sport, dport)
            c = flows.get(key)
            if c is None:
                flows[key] = c = [0, 0]
            c[0] += 1
            c[1] += len(mv)


def app_loop_for(rig, kind: str, capacity: int) -> Loop:
    from ixypy import vector as vec
    from ixypy.fastpath.ops import inc_byte
    from ixypy.vapps.firewall import Firewall
    from ixypy.vapps.flowmon import FlowMonitor, FlowTable
    from ixypy.vapps.nat import Nat

    rxq, txq, poll = rig.rxq, rig.txq, rig.poll
    if kind == "step":
        return lambda batch, n: step_fwd(rxq, txq, batch, n, poll)
    step = {
        "touch-vector": lambda: (lambda b: inc_byte(b, 1)),
        "touch-python": lambda: touch_python,
        "fw-vector": lambda: Firewall(BENCH_RULES, capacity),
        "fw-python": lambda: FirewallPython(BENCH_RULES),
        "nat-vector": lambda: Nat("10.0.0.0/8", "198.0.0.0/8", {5678: 80}, capacity),
        "nat-python": lambda: nat_python,
        "flowmon-vector": lambda: FlowMonitor(FlowTable(), capacity),
        "flowmon-python": lambda: FlowmonPython(),
    }[kind]()
    return lambda batch, n: _app_loop(rxq, txq, step, batch, n, poll)


def fwd_workers(rigs: Sequence, packets: int, batch_size: int = 32) -> List[float]:
    """A worker per rig, each a thread forwarding `packets` with bench_fwd
    from the rig's rx to its tx (the GIL released throughout, the rig's model
    stepped in the thread when the loop stalls), all started at once.
    Returns each worker's seconds from the common start to its end."""
    start = threading.Barrier(len(rigs) + 1)
    ends = [0.0] * len(rigs)

    def work(i: int) -> None:
        rig, batch = rigs[i], PacketBatch(batch_size)
        start.wait()
        bench_fwd(rig.rxq, rig.txq, batch, packets, rig.hook)
        ends[i] = time.perf_counter()
        batch.free()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(rigs))]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return [end - t0 for end in ends]
