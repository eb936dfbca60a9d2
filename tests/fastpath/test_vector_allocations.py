"""The vector layer's per-batch paths allocate a number of Python objects
per batch that does not grow with the batch: with the counting allocator of
test_allocations.py (conftest.py, countalloc.c), each operation of
ixypy.fastpath.ops and each vector app's step runs ROUNDS batches of 32
packets, then ROUNDS batches of 256; the two counts must be equal (and,
for the C operations given ready arrays, zero). Negative controls: a step
that makes a Python object per packet (a dict-and-tuple flow monitor, a
list of addresses) gives more allocations at 256 than at 32 and is
caught by the same comparison.

What is counted: every allocation of the object and PyMem domains, so
every NumPy array object and scalar a step makes (an array's data buffer
comes from NumPy's own allocator, malloc, whose size grows with the batch
but not its count). Frames come from a host-memory pool filled once with
four flows of 300-byte frames (Mempool.fill), so no device is needed."""
from __future__ import annotations

import sys

import pytest

np = pytest.importorskip("numpy")

from ixypy import PacketBatch  # noqa: E402
from ixypy import vector as vec  # noqa: E402
from ixypy.fastpath import ops  # noqa: E402
from ixypy.fastpath.mempool import DmaMemory, Mempool  # noqa: E402
from ixypy.packets import udp_flows  # noqa: E402

# batches per window: below 257 so that the loop's own counter stays a
# preallocated small int (see test_allocations.py)
ROUNDS = 100
SIZES = (32, 256)
FLOWS = 4
# frames longer than 256 bytes, so that a length turned into a Python int per
# packet is an allocation (ints up to 256 are preallocated): so are the
# addresses and ports of these frames
FRAME = 300
RULES = """
drop   udp  192.168.0.0/16 any any 53
drop   tcp  any any 10.0.0.0/8 80-443
accept udp  10.0.0.0/8 any 10.0.0.0/8 any
default drop
"""


@pytest.fixture(autouse=True)
def _no_tracer():
    if sys.gettrace() is not None or sys.getprofile() is not None:
        pytest.skip("a tracer or profiler (coverage, a debugger) allocates as the loop runs")


class Rig:
    """A pool of frames of FLOWS UDP flows, a batch of `size` and its
    Packets, and the inputs the operations take, made ahead."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pool = Mempool(DmaMemory(2048 * 2048), 2048)
        self.pool.fill(udp_flows(FLOWS, size=FRAME))
        self.batch = PacketBatch(size)
        self.outs = [PacketBatch(size), PacketBatch(size)]
        self.pk = vec.Packets(size, self.pool)
        self.mask = np.tile(np.array([True, False]), size // 2)
        self.labels = np.tile(np.array([0, 1, 2, 1], np.uint8), size // 4)     # 2: dropped
        self.addrs = np.full(size, 0x0A000001, np.uint32)
        self.ports = np.full(size, 5678, np.uint16)
        self.keys = np.zeros((size, 8), np.uint64)
        self.rules = vec.rules([("udp", "10.0.0.0/8", "any", "any", "53"), ("tcp", "any", "any", "any", "any")])

    def window(self, body, rounds: int = ROUNDS) -> None:
        """rounds x: fill the batch, load its Packets, body(rig), free
        everything. The fill, load and free are in the baseline too."""
        batch, outs, pool, pk = self.batch, self.outs, self.pool, self.pk
        for _ in range(rounds):
            batch.alloc(pool)
            pk.load(batch)
            body(self)
            batch.free()
            outs[0].free()
            outs[1].free()


def _nothing(r: Rig) -> None:
    pass


# each: what one batch does beyond the fill, load and free every window makes
# (baseline: nothing more)
OPS = {
    "baseline": _nothing,
    "keep": lambda r: ops.keep(r.batch, r.mask),
    "split": lambda r: ops.split(r.batch, r.labels, r.outs),
    "flow_hash": lambda r: r.pk.flow_hash(),
    "flow_keys": lambda r: r.pk.flow_keys(r.keys),
    "match": lambda r: r.pk.match(r.rules),
    "set_ipv4": lambda r: ops.set_ipv4(r.batch, r.pk, "dst", r.addrs),
    "set_ipv4 masked": lambda r: ops.set_ipv4(r.batch, r.pk, "src", r.addrs, r.mask),
    "set_port": lambda r: ops.set_port(r.batch, r.pk, "dst", r.ports),
    "set_port masked": lambda r: ops.set_port(r.batch, r.pk, "src", r.ports, r.mask),
    "ipv4_checksum": lambda r: ops.ipv4_checksum(r.batch, r.pk),
    "l4_checksum": lambda r: ops.l4_checksum(r.batch, r.pk),
    "mac_swap": lambda r: ops.mac_swap(r.batch),
    "mac_set": lambda r: ops.mac_set(r.batch, dst=b"\x02\x00\x00\x00\x00\x01"),
    "inc_byte": lambda r: ops.inc_byte(r.batch, 1),
}


def _app(name: str, size: int):
    """A vector app's step for batches of size, as the forwarding loop calls it."""
    from ixypy.vapps.firewall import Firewall
    from ixypy.vapps.flowmon import FlowMonitor, FlowTable
    from ixypy.vapps.nat import Nat

    step = {"firewall": lambda: Firewall(RULES, size),
            "nat": lambda: Nat("10.0.0.0/8", "198.0.0.0/8", {5678: 80}, size),
            "flowmon": lambda: FlowMonitor(FlowTable(), size)}[name]()
    return lambda r: step(r.batch)


def per_packet_flows(counts: dict):
    """Negative control: a flow monitor written per packet (a tuple per
    packet, a dict entry per flow)."""
    def body(r: Rig) -> None:
        pk = r.pk
        src, dst, sport, dport = pk.src.tolist(), pk.dst.tolist(), pk.sport.tolist(), pk.dport.tolist()
        for i in range(len(src)):
            key = (src[i], dst[i], sport[i], dport[i])
            counts[key] = counts.get(key, 0) + 1
    return body


def per_packet_list(r: Rig) -> None:
    """Negative control: one NumPy call, but a list of Python ints."""
    r.pk.src.tolist()


def allocations(count_allocations, make_body) -> dict:
    """{size: allocations of a window of ROUNDS batches}, after a warm-up
    window (first-time allocations: caches, buffer info, int counters past
    256)."""
    got = {}
    for size in SIZES:
        rig = Rig(size)
        body = make_body(size)
        rig.window(body, 20)
        got[size] = count_allocations(rig.window, body)
        assert rig.pool.free_count == rig.pool.num_bufs        # every buffer went back
    return got


# allocations per call of a C operation given ready NumPy arrays: NumPy's
# buffer export (PyObject_GetBuffer) allocates its buffer info on every call
# (one per array taken: keep's mask, split's labels, match's rules,
# flow_keys' out, set_*'s values and mask); split also makes a list of its outputs, mac_set a bytes
# and a typed memoryview
PER_CALL = 3


@pytest.mark.parametrize("name", [n for n in OPS if n != "baseline"])
def test_ops_allocate_a_bounded_number_per_batch(name, count_allocations):
    """Each C operation of ixypy.fastpath.ops on batches of 32 and of 256:
    the same count, at most PER_CALL objects a call beyond the baseline
    window (the batch's alloc, load and free: nothing a batch either).
    Measured per call: keep, match, flow_keys, set_ipv4, set_port 1, split 2, the
    masked set_ipv4 and set_port 2, mac_set 3; flow_hash, the checksums,
    mac_swap, inc_byte 0."""
    base = allocations(count_allocations, lambda size: _nothing)
    got = allocations(count_allocations, lambda size: OPS[name])
    assert got[32] == got[256], got
    assert base[32] == base[256] and base[32] < ROUNDS, base        # fixed costs of the window, none a batch
    assert 0 <= got[32] - base[32] <= PER_CALL * ROUNDS + 10, (got, base)     # + a few once per window


@pytest.mark.parametrize("name", ["firewall", "nat", "flowmon"])
def test_app_steps_allocate_per_batch_only(name, count_allocations):
    """A vector app's step (NumPy temporaries and views, scalars, counters),
    the flow monitor in its steady state (every flow known): the same count
    at batch 32 and 256, at most 100 objects a batch (measured: firewall 0,
    NAT 0 since it is compiled (30 before), flow monitor 0 since its table
    is compiled (13 before))."""
    got = allocations(count_allocations, lambda size: _app(name, size))
    assert got[32] == got[256], got
    assert 0 < got[32] <= 100 * ROUNDS, got


def test_negative_controls_are_caught(count_allocations):
    """Work per packet shows as more allocations at 256 than at 32, at least
    one object per packet more: a flow monitor written per packet (dict and
    tuples), and a single NumPy call that returns Python ints (tolist)."""
    for make_body in (lambda size: per_packet_flows({}), lambda size: per_packet_list):
        got = allocations(count_allocations, make_body)
        assert got[256] - got[32] >= (256 - 32) * ROUNDS, got
