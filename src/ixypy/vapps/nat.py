"""A stateless L3/L4 rewriter (1:1 prefix NAT and port mapping) with
incremental checksum update (RFC 1624), compiled: Nat is an
ixypy.fastpath.nat.Rewriter, so a batch is parsed, rewritten and its
checksums updated in one C call (csrc/ixy_nat.h), no NumPy call per batch.

Outbound (inside -> outside): an IPv4 source address in the inside prefix
gets the outside prefix, keeping its host bits; a UDP/TCP destination port
listed in the port map is rewritten. Inbound (outside -> inside): the
reverse on the destination address and the source port. The IPv4 header
and the UDP/TCP checksums are updated, a UDP checksum of 0 (none) stays 0.
The address rewrite is for well-formed IPv4 packets only; the port map
applies to every packet with a UDP/TCP header (IPv6 too).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from .. import vector as vec
from ..fastpath.nat import Rewriter


class Nat(Rewriter):
    """nat(batch) rewrites in place and returns the count of packets whose
    address was in the prefix; rewritten counts them over all calls.
    port_map: the new port by the old (a NumPy view of the rewriter's own
    table: writing it changes the mapping). capacity is accepted, as every
    vector app's step takes it, and not needed: the rewriter keeps no
    columns, so it rewrites batches of any size."""

    def __init__(self, inside: str, outside: str, ports: Optional[Dict[int, int]] = None, capacity: int = 256,
                 outbound: bool = True) -> None:
        in_net, in_mask = vec.prefix(inside)
        out_net, out_mask = vec.prefix(outside)
        if in_mask != out_mask:
            raise ValueError(f"{inside} and {outside} must have the same prefix length")
        self.outbound = outbound
        self.from_net, self.to_net = (in_net, out_net) if outbound else (out_net, in_net)
        self.mask = np.uint32(in_mask)
        self.host = np.uint32(~in_mask & 0xFFFFFFFF)
        # port map as a 65536-entry table, looked up in C per packet
        port_map = np.arange(65536, dtype=np.uint16)
        for a, b in (ports or {}).items():
            if outbound:
                port_map[a] = b
            else:
                port_map[b] = a
        super().__init__(self.from_net, in_mask, self.to_net, port_map, inbound=not outbound)
        self.port_map = np.frombuffer(self.ports, np.uint16)
