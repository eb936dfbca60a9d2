"""A flow monitor: per-flow packet and byte counters, kept per batch with
NumPy in an open-addressing hash table (no Python object per packet).

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
``max_flows`` by default), each a key (the 40 bytes of
``Fields.flow_keys``, zero-padded to 64) and two counters; an all-zero key
is an empty slot. A packet's flow hash picks its first slot; linear probing
walks on while the slot holds another key; a packet whose key is in no slot
before the first empty one is a new flow, inserted there. Per batch: the
keys and hashes in C (``pk.flow_keys``, ``pk.flow_hash``), then a few NumPy
calls: gather the keys at every packet's first slot and compare the whole
keys; usually every packet found its flow there and np.add.at counts. The
others probe in rounds, each looking at the next 8 slots of every pending
packet at once: the first slot holding its key, or empty, ends its probe;
a new flow is inserted in that empty slot (one claimant per slot wins, the
others compare again). Keys are never removed; once the table
holds ``max_flows`` flows, packets of new flows are counted as "untracked".
"""
from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import vector as vec
from ..fastpath.batch import PacketBatch

# a slot's key: the 40 bytes of Fields.flow_keys (addresses, ports, proto, family) and 24 zero
# bytes, so that the comparison of a key's 8 words gives 8 booleans read as one uint64
KEY_WORDS = 8
_SPORT, _DPORT, _PROTO, _FAMILY = 32, 34, 36, 37     # byte offsets in a key (ports big-endian)
_ALL_EQUAL = np.uint64(0x0101010101010101)           # 8 True booleans as one uint64
_WINDOW = np.arange(8)                               # slots a probe round looks at, from a packet's position
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6"}


class FlowTable:
    """Per-flow packet and byte counters (see the module doc).

    max_flows: flows kept; packets of further flows count as untracked.
    slots: table size, a power of two above max_flows (default: the
    smallest at least 2 * max_flows). ``packets`` and ``bytes`` are int64
    arrays indexed by slot; ``flows`` is the number of used slots.
    """

    _views: Dict[int, Tuple[np.ndarray, ...]]

    def __init__(self, max_flows: int = 65536, slots: Optional[int] = None) -> None:
        if max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, not {max_flows}")
        if slots is None:
            slots = 1 << (2 * max_flows - 1).bit_length()
        if slots & (slots - 1) or slots <= max_flows:
            raise ValueError(f"slots ({slots}) must be a power of two above max_flows ({max_flows})")
        self.max_flows = max_flows
        self.mask = np.uint32(slots - 1)
        self.keys = np.zeros((slots, KEY_WORDS), np.uint64)
        self.packets = np.zeros(slots, np.int64)
        self.bytes = np.zeros(slots, np.int64)
        self.home = np.zeros(slots, np.intp)               # a used slot's flow's first slot (hash & mask)
        self.flows = 0
        self.other_packets = self.other_bytes = 0          # not IP, or malformed
        self.untracked_packets = self.untracked_bytes = 0  # new flows while the table held max_flows
        self._owner = np.zeros(slots, np.intp)             # scratch: who claims an empty slot
        self._scratch(0)

    @property
    def slots(self) -> int:
        return len(self.keys)

    def _scratch(self, capacity: int) -> None:
        """Arrays for a batch of up to capacity packets: its keys, the keys
        at its slots, their comparison."""
        self._keys = np.zeros((capacity, KEY_WORDS), np.uint64)
        self._cur = np.zeros((capacity, KEY_WORDS), np.uint64)
        self._eq = np.zeros((capacity, KEY_WORDS), bool)
        self._pos = np.zeros(capacity, np.intp)
        self._views = {}                         # n -> the scratch arrays' first n rows

    def _rows(self, n: int) -> Tuple[np.ndarray, ...]:
        """(keys, pos, cur, eq) scratch for n packets: views made once per n."""
        v = self._views.get(n)
        if v is None:
            if len(self._keys) < n:
                self._scratch(n)
            v = self._views[n] = (self._keys[:n], self._pos[:n], self._cur[:n], self._eq[:n])
        return v

    def add(self, pk: vec.Packets) -> None:
        """Count the packets of the batch pk was loaded with; pk.flow_hash()
        must have been called since."""
        n = pk.count
        if not n:
            return
        if len(self._keys) < pk.capacity:
            self._scratch(pk.capacity)
        keys, pos, _, _ = self._rows(n)
        flows = pk.flow_keys(keys)               # C: each packet's key, zero if not a flow
        np.bitwise_and(pk.hash, self.mask, out=pos)                    # as intp: indexes with no cast
        length = pk.length.astype(np.int64)
        if flows < n:                            # leave out what is not a flow
            flow = keys[:, 4] != 0               # the word with the family byte
            self.other_packets += n - flows
            self.other_bytes += int(length[~flow].sum())
            keys, pos, length = keys[flow], pos[flow], length[flow]
        slot, full = self._lookup(keys, pos)
        if full:                                 # some packets of new flows found the table full
            lost = slot < 0
            self.untracked_packets += int(np.count_nonzero(lost))
            self.untracked_bytes += int(length[lost].sum())
            slot, length = slot[~lost], length[~lost]
        np.add.at(self.packets, slot, 1)
        np.add.at(self.bytes, slot, length)

    def _equal(self, slots: np.ndarray, keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(the keys at slots, the word-by-word comparison with keys: (n, 8)
        booleans; a row's 8 as one uint64 is _ALL_EQUAL where the keys are
        equal)."""
        _, _, cur, eq = self._rows(len(keys))
        self.keys.take(slots, axis=0, out=cur, mode="clip")      # clip: in range, so no buffering
        np.equal(cur, keys, out=eq)
        return cur, eq

    def _lookup(self, keys: np.ndarray, pos: np.ndarray) -> Tuple[np.ndarray, bool]:
        """(the slot of each key, inserting new ones; whether some could not
        be inserted, the table being full: their slot is -1). pos: each
        key's first slot (its hash & mask), intp, overwritten."""
        table, owner, mask = self.keys, self._owner, self.mask
        _, eq = self._equal(pos, keys)
        if eq.all():                             # every flow known, at its first slot: the common case
            return pos, False
        home = pos.copy()
        hit = eq.view(np.uint64)[:, 0] == _ALL_EQUAL
        slot = np.full(len(keys), -1, np.intp)
        slot[hit] = pos[hit]
        todo = np.flatnonzero(~hit)              # indices into keys of the packets still looking
        full = False
        rounds = 0
        while len(todo):
            rounds += 1
            if rounds > self.slots:              # a probe ends within a lap of the table (it has empty slots)
                raise RuntimeError("FlowTable: a probe went round the whole table (a bug)")
            # each pending packet looks at WINDOW slots from its position at once: the first that
            # holds its key, or is empty (then the key is in no slot: a new flow), ends its probe
            p, k = pos[todo], keys[todo]
            at = (p[:, None] + _WINDOW) & mask                                  # (t, WINDOW) slots
            cur = table.take(at, axis=0)                                        # (t, WINDOW, 8)
            match = (cur == k[:, None, :]).view(np.uint64)[:, :, 0] == _ALL_EQUAL
            stop = match | (cur[:, :, 4] == 0)
            first = stop.argmax(axis=1)          # the first stop in the window (0 if none)
            rows = np.arange(len(todo))
            stopped = stop[rows, first]
            here = at[rows, first]
            found = stopped & match[rows, first]
            slot[todo[found]] = here[found]
            done = found
            # no stop in the window: go on after it; a stop: stay there (a new flow's empty slot)
            pos[todo] = np.where(stopped, here, (p + _WINDOW.size) & mask)
            new = np.flatnonzero(stopped & ~found)
            if len(new):
                e_pos = here[new]
                room = self.max_flows - self.flows
                if room > 0:
                    owner[e_pos] = new           # several may claim a slot: one write survives
                    won = new[owner[e_pos] == new][:room]
                    table[here[won]] = k[won]
                    self.home[here[won]] = home[todo[won]]
                    self.flows += len(won)
                # the others compare again from there next round (their key, or another one's);
                # a slot still empty was not given (the table is full): those packets are untracked
                lost = table[e_pos, 4] == 0
                if lost.any():
                    full = True
                    done[new[lost]] = True       # slot stays -1
            todo = todo[~done]
        return slot, full

    def merge(self, other: "FlowTable") -> None:
        """Count other's flows (another worker's table, of as many slots) in
        this one too; flows beyond max_flows count as untracked."""
        if other.slots != self.slots:
            raise ValueError(f"a table of {other.slots} slots does not merge into one of {self.slots}")
        s = np.flatnonzero(other.keys[:, 4])
        slot, full = self._lookup(other.keys[s], other.home[s].copy())
        if full:
            lost = slot < 0
            self.untracked_packets += int(other.packets[s[lost]].sum())
            self.untracked_bytes += int(other.bytes[s[lost]].sum())
            s, slot = s[~lost], slot[~lost]
        np.add.at(self.packets, slot, other.packets[s])
        np.add.at(self.bytes, slot, other.bytes[s])
        self.other_packets += other.other_packets
        self.other_bytes += other.other_bytes
        self.untracked_packets += other.untracked_packets
        self.untracked_bytes += other.untracked_bytes

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
        s = np.flatnonzero(self.keys[:, 4])
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


class FlowMonitor:
    """The forwarding step: counts every packet of the batch into `table`
    (shared by both directions) and leaves the batch as it is."""

    def __init__(self, table: FlowTable, capacity: int = 256) -> None:
        self.table = table
        self.packets = vec.Packets(capacity)

    def __call__(self, batch: PacketBatch) -> int:
        pk = self.packets
        n = pk.load(batch)
        pk.flow_hash()
        self.table.add(pk)
        return n


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
