"""A stateless L3/L4 rewriter (1:1 prefix NAT and port mapping) with
incremental checksum update (RFC 1624, in ixypy.fastpath.ops).

Outbound (inside -> outside): an IPv4 source address in the inside prefix
gets the outside prefix, keeping its host bits; a UDP/TCP destination port
listed in the port map is rewritten. Inbound (outside -> inside): the
reverse on the destination address and the source port. The IPv4 header
and the UDP/TCP checksums are updated, a UDP checksum of 0 (none) stays 0.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from .. import vector as vec
from ..fastpath.batch import PacketBatch

_OK4 = vec.IPV4 | vec.BAD


class Nat:
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
        # port map as a 65536-entry table: one gather per batch
        self.port_map = np.arange(65536, dtype=np.uint16)
        for a, b in (ports or {}).items():
            if outbound:
                self.port_map[a] = b
            else:
                self.port_map[b] = a
        self.packets = vec.Packets(capacity)
        self.rewritten = 0

    def __call__(self, batch: PacketBatch) -> int:
        """Rewrite in place; returns the count of packets whose address changed."""
        pk = self.packets
        pk.load(batch)
        addr = pk.src if self.outbound else pk.dst
        hit = ((pk.flags & _OK4) == vec.IPV4) & ((addr & self.mask) == self.from_net)
        vec.set_ipv4(batch, pk, "src" if self.outbound else "dst", (addr & self.host) | np.uint32(self.to_net), hit)
        if self.outbound:
            vec.set_port(batch, pk, "dst", self.port_map[pk.dport])
        else:
            vec.set_port(batch, pk, "src", self.port_map[pk.sport])
        n = int(np.count_nonzero(hit))
        self.rewritten += n
        return n
