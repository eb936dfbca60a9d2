"""The compiled NAT (ixypy.fastpath.nat.Rewriter, the vapps Nat) against
the same rewrite written with NumPy and ops (the Nat before it was
compiled: load, a prefix mask, set_ipv4, set_port), byte for byte, in both
directions, with port maps that hit the ports the traffic uses (the
reference test in test_apps maps 8080, which hypothesis rarely draws).

Mutations of csrc/ixy_nat.h it failed on: the port map read from the
other port (outbound sport, inbound dport); the address's delta dropped
from the UDP/TCP checksum when the port changes too (delta = instead of
delta +=); the L4 checksum adjustment dropped."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from ixypy import PacketBatch
from ixypy import vector as vec
from ixypy.fastpath.mempool import Mempool
from ixypy.fastpath.nat import Rewriter
from ixypy.vapps.nat import Nat

from .frames import frames
from .test_ops import fill

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PORTS = {53: 5353, 1234: 80, 5678: 443, 0: 65535}


def numpy_nat(batch: PacketBatch, pool: Mempool, inside: str, outside: str, ports: dict, outbound: bool) -> int:
    """The rewrite with NumPy columns and ops' set_ipv4 / set_port."""
    in_net, mask = vec.prefix(inside)
    out_net, _ = vec.prefix(outside)
    from_net, to_net = (in_net, out_net) if outbound else (out_net, in_net)
    port_map = np.arange(65536, dtype=np.uint16)
    for a, b in ports.items():
        port_map[a if outbound else b] = b if outbound else a
    pk = vec.Packets(64, pool)
    pk.load(batch)
    addr = pk.src if outbound else pk.dst
    hit = ((pk.flags & (vec.IPV4 | vec.BAD)) == vec.IPV4) & ((addr & np.uint32(mask)) == from_net)
    new = (addr & np.uint32(~mask & 0xFFFFFFFF)) | np.uint32(to_net)
    vec.set_ipv4(batch, pk, "src" if outbound else "dst", new, hit)
    if outbound:
        vec.set_port(batch, pk, "dst", port_map[pk.dport])
    else:
        vec.set_port(batch, pk, "src", port_map[pk.sport])
    return int(np.count_nonzero(hit))


@SETTINGS
@given(frames(1, 24))
@pytest.mark.parametrize("outbound", [True, False])
@pytest.mark.parametrize("prefixes", [("10.0.0.0/8", "198.0.0.0/8"), ("10.0.0.0/24", "192.168.1.0/24"),
                                      ("0.0.0.0/0", "0.0.0.0/0")])
def test_compiled_nat_matches_numpy(pool, prefixes, outbound, data):
    padded = [f.ljust(60, b"\0") for f in data]
    ours, theirs = fill(pool, padded), fill(pool, padded)
    try:
        nat = Nat(*prefixes, PORTS, outbound=outbound)
        hits = nat(ours)
        assert hits == numpy_nat(theirs, pool, *prefixes, PORTS, outbound)
        assert nat.rewritten == hits
        assert [bytes(ours[i]) for i in range(len(ours))] == [bytes(theirs[i]) for i in range(len(theirs))]
    finally:
        ours.free()
        theirs.free()
    assert pool.double_frees == 0


def test_port_map_is_the_rewriters_own(pool):
    """Nat.port_map is a view of the rewriter's table: writing it changes the
    mapping; a port map of the wrong size is refused."""
    nat = Nat("10.0.0.0/8", "198.0.0.0/8")
    assert nat.port_map[80] == 80 and not nat.inbound
    nat.port_map[9] = 7
    assert np.frombuffer(nat.ports, np.uint16)[9] == 7
    with pytest.raises(Exception, match="65536"):
        Rewriter(0, 0, 0, np.zeros(10, np.uint16))


def test_bad_prefixes_are_refused():
    with pytest.raises(ValueError, match="same prefix length"):
        Nat("10.0.0.0/8", "198.51.100.0/24")
    with pytest.raises(ValueError):
        Nat("10.0.0.300/8", "198.0.0.0/8")
