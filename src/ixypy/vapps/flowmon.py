"""A flow monitor: per-flow packet and byte counters, kept per batch in a
compiled open-addressing hash table (ixypy.fastpath.flowtable, one C call
per batch, no Python object per packet), read with NumPy.

A flow is the directional 5-tuple of a well-formed IPv4 or IPv6 packet:
(family, source address, destination address, protocol, source port,
destination port). Ports are 0 when the packet has no UDP/TCP header (ICMP,
other protocols, a non-first fragment: the first fragment of a datagram
counts in its ports' flow, the others in the flow with ports 0). Addresses
are compared in full, IPv6 included (the flow hash folds an IPv6 address to
32 bits; the table does not). Frames that are not IP, or malformed
(``ixypy.vector.BAD``), are counted together as "other". Bytes are frame
bytes as received: Ethernet header included, CRC excluded.

The table (FlowTable): ``slots`` entries (a power of two, at least twice
``max_flows`` by default) of 64 bytes, one cache line each: a key (the 40
bytes of ``Fields.flow_keys``), the flow's packets and bytes and its home
(first slot); an all-zero key is an empty slot. Per batch, after the parse
(``Packets.load``), one C loop (csrc/ixy_flowtable.h) takes each packet's
key and flow hash from the parsed columns; the hash picks its first slot,
and linear probing walks on while the slot holds another key; a packet
whose key is in no slot before the first empty one is a new flow, inserted
there. Keys are never removed; once the table holds ``max_flows`` flows,
packets of new flows are counted as "untracked". ``keys``, ``packets``,
``bytes`` and ``home`` are NumPy views of the slots (no copy), for the top
talkers, the JSON dump and the live view.
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import vector as vec
from ..fastpath.flowtable import EMPTY_WORD, KEY_WORDS, SLOT_SIZE, FlowCounter, Monitor

# a slot as the C code (struct ixy_flow_slot) lays it out: 5 key words, 2 counters, the home slot
SLOT_DTYPE = np.dtype([("key", "=u8", KEY_WORDS), ("packets", "=i8"), ("bytes", "=i8"), ("home", "=i8")])
assert SLOT_DTYPE.itemsize == SLOT_SIZE
_SPORT, _DPORT, _PROTO, _FAMILY = 32, 34, 36, 37     # byte offsets in a key (ports big-endian)
assert EMPTY_WORD == _FAMILY // 8                     # the key word that is 0 in an empty slot: the family's
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6"}


def _slots(n: int) -> np.ndarray:
    """n zeroed slots (SLOT_DTYPE), starting on a 64-byte boundary (a slot per cache line)."""
    raw = np.zeros((n + 1) * SLOT_SIZE, np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip:skip + n * SLOT_SIZE].view(SLOT_DTYPE)


def _unpickle(max_flows: int, slots: np.ndarray, counts: Tuple[int, int, int, int, int]) -> "FlowTable":
    table = FlowTable(max_flows, len(slots))
    table.entries[...] = slots
    table.restore_counts(counts)
    return table


class FlowTable(FlowCounter):
    """Per-flow packet and byte counters (see the module doc).

    max_flows: flows kept; packets of further flows count as untracked.
    slots: table size, a power of two above max_flows (default: the
    smallest at least 2 * max_flows). ``entries``: the slots (SLOT_DTYPE);
    ``keys`` ((slots, 5) uint64), ``packets`` and ``bytes`` (int64),
    ``home`` (int64, a used slot's flow's first slot): views of it, indexed
    by slot; ``flows`` is the number of used slots; other_packets,
    other_bytes, untracked_packets, untracked_bytes (FlowCounter).
    add(pk) counts a batch loaded into pk (one C call, see
    ixypy.fastpath.flowtable); merge(other) adds another worker's table.
    """

    def __init__(self, max_flows: int = 65536, slots: Optional[int] = None) -> None:
        if slots is None:
            slots = 1 << (2 * max(max_flows, 1) - 1).bit_length()
        self.entries = _slots(slots)
        super().__init__(self.entries, max_flows)         # checks max_flows and slots
        self.keys = self.entries["key"]
        self.packets = self.entries["packets"]
        self.bytes = self.entries["bytes"]
        self.home = self.entries["home"]

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickles (a worker's table comes back to the parent so): its
        slots and counts."""
        return _unpickle, (self.max_flows, self.entries, self.counts())

    # --- reading the table (Python per flow: for display and dumps) ----------------

    def top(self, n: int) -> np.ndarray:
        """The slots of the n flows with the most bytes (then packets), most
        first: used()[:n] without sorting every flow."""
        n = min(n, self.flows)
        if n <= 0:
            return np.zeros(0, np.intp)
        by = self.bytes
        nth = by[np.argpartition(by, len(by) - n)[len(by) - n]]     # the n-th most bytes
        s = np.flatnonzero(by >= nth)            # every flow tied with it too, then as used() orders them
        return s[np.lexsort((self.packets[s], by[s]))[::-1][:n]]

    def used(self) -> np.ndarray:
        """The slots holding a flow, most bytes first."""
        s = np.flatnonzero(self.keys[:, EMPTY_WORD])
        return s[np.lexsort((self.packets[s], self.bytes[s]))[::-1]]

    def flow(self, slot: int) -> Dict[str, Any]:
        """One flow as a dict: ip (4 or 6), src, dst (strings), proto,
        sport, dport, packets, bytes."""
        k = self.keys[slot].tobytes()
        family = k[_FAMILY]
        if family == 4:
            src: Any = ipaddress.IPv4Address(k[:4])
            dst: Any = ipaddress.IPv4Address(k[16:20])
        else:
            src, dst = ipaddress.IPv6Address(k[:16]), ipaddress.IPv6Address(k[16:32])
        return {"ip": family, "src": str(src), "dst": str(dst), "proto": k[_PROTO],
                "sport": int.from_bytes(k[_SPORT:_SPORT + 2], "big"), "dport": int.from_bytes(k[_DPORT:_DPORT + 2], "big"),
                "packets": int(self.packets[slot]), "bytes": int(self.bytes[slot])}

    def records(self) -> List[Dict[str, Any]]:
        """Every flow (flow()), most bytes first."""
        return [self.flow(s) for s in self.used()]

    def totals(self) -> Dict[str, int]:
        return {"flows": self.flows, "packets": int(self.packets.sum()), "bytes": int(self.bytes.sum()),
                "other_packets": self.other_packets, "other_bytes": self.other_bytes,
                "untracked_packets": self.untracked_packets, "untracked_bytes": self.untracked_bytes}

    def dump(self, **extra: Any) -> str:
        """The whole table as JSON: {"flows": [...], "totals": {...}, **extra}."""
        return json.dumps({**extra, "totals": self.totals(), "flows": self.records()}, indent=1)


class FlowMonitor(Monitor):
    """The forwarding step: counts every packet of the batch into `table`
    (shared by both directions) and leaves the batch as it is: monitor(batch)
    is one C call (Monitor's: the parse into `packets`, a vec.Packets of
    `capacity`, then FlowTable.add)."""

    def __init__(self, table: FlowTable, capacity: int = 256) -> None:
        super().__init__(table, vec.Packets(capacity))


# --- the live view (rich) -------------------------------------------------------------

def _endpoint(address: str, port: int, family: int) -> str:
    return f"[{address}]:{port}" if family == 6 else f"{address}:{port}"


def _amount(x: float) -> str:
    for unit in ("", "k", "M", "G", "T"):
        if abs(x) < 1000:
            return f"{x:.0f}{unit}" if not unit else f"{x:.1f}{unit}"
        x /= 1000
    return f"{x:.1f}P"


def top_table(table: FlowTable, n: int, seconds: float = 0.0, since: Optional[np.ndarray] = None):
    """A rich Table of the n flows with the most bytes, with each flow's
    rate over the last `seconds`: since its bytes were `since` (a copy of
    table.bytes then), or since 0."""
    from rich.table import Table

    t = table.totals()
    out = Table(title=f"top {min(n, table.flows)} of {table.flows} flows by bytes",
                caption=f"{t['packets']} packets, {t['bytes']} bytes in flows; other (not IP, malformed) "
                        f"{t['other_packets']} packets; untracked (table full) {t['untracked_packets']} packets")
    for col in ("#", "proto", "source", "destination", "packets", "bytes", "Mbit/s", "share"):
        out.add_column(col, justify="left" if col in ("proto", "source", "destination") else "right", no_wrap=True)
    total = max(t["bytes"], 1)
    for rank, slot in enumerate(table.top(n), 1):
        f = table.flow(slot)
        recent = f["bytes"] - (int(since[slot]) if since is not None else 0)
        rate = f"{recent * 8 / seconds / 1e6:.3f}" if seconds > 0 else ""
        out.add_row(str(rank), PROTO_NAMES.get(f["proto"], str(f["proto"])), _endpoint(f["src"], f["sport"], f["ip"]),
                    _endpoint(f["dst"], f["dport"], f["ip"]), _amount(f["packets"]), _amount(f["bytes"]), rate,
                    f"{100 * f['bytes'] / total:.1f}%")
    return out


class LiveView:
    """The top talkers on a terminal, redrawn at most every `interval`
    seconds by refresh(), from the forwarding loop's own thread (no other
    thread reads the table while it is written)."""

    def __init__(self, table: FlowTable, n: int, interval: float = 0.25) -> None:
        import time

        from rich.live import Live

        self.table, self.n, self.interval, self.clock = table, n, interval, time.monotonic
        self.since = table.bytes.copy()
        self.last = self.next = self.clock()
        self.live = Live(top_table(table, n), auto_refresh=False, transient=False)
        self.live.start()

    def refresh(self, force: bool = False) -> None:
        now = self.clock()
        if now < self.next and not force:
            return
        self.live.update(top_table(self.table, self.n, now - self.last, self.since), refresh=True)
        np.copyto(self.since, self.table.bytes)
        self.last, self.next = now, now + self.interval

    def stop(self) -> None:
        """Draw the table as it is now (rates over the last interval), leave it on screen."""
        self.refresh(force=True)
        self.live.stop()
