"""Guest-side helpers for the igb tests (imported by scripts run in the
guest: the harness directory is on the guest's PYTHONPATH).

transfer() is a sender and a receiver in one loop: the sender stamps
sequence numbers and keeps at most `window` packets in flight, so nothing is
lost to a full rx ring; the receiver checks the numbers as they come."""
from __future__ import annotations

import json
import time
from typing import Dict, List, Optional, Sequence

from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET


class Receiver:
    """Receives on one queue, checking the sequence numbers."""

    def __init__(self, dev, queue: int = 0, batch_size: int = 32, keep: bool = False) -> None:
        self.rxq = dev.rx_queue(queue)
        self.batch = PacketBatch(batch_size)
        self.count = self.bytes = self.expected = self.out_of_order = 0
        self.frames: Optional[List[bytes]] = [] if keep else None

    def poll(self) -> int:
        got = self.rxq.rx(self.batch)
        if got:
            self.expected, bad = self.batch.check_seq_u64(SEQ_OFFSET, self.expected)
            self.out_of_order += bad
            self.count += got
            self.bytes += self.batch.total_bytes()
            if self.frames is not None:
                self.frames.extend(bytes(self.batch[i]) for i in range(got))
            self.batch.free()
        return got

    def drain(self, idle: float = 0.5, until: Optional[int] = None, timeout: float = 20.0) -> None:
        """Poll until `until` packets arrived, or nothing came for `idle` seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and (until is None or self.count < until):
            if self.poll():
                last = time.monotonic()
            elif time.monotonic() - last > idle:
                break


class Sender:
    """Sends copies of frames with a 64-bit sequence number at SEQ_OFFSET."""

    def __init__(self, dev, frames: Sequence[bytes], queue: int = 0, batch_size: int = 32) -> None:
        self.pool = dev.mempool(4096)
        self.pool.fill(list(frames))
        self.txq = dev.tx_queue(queue)
        self.batch = PacketBatch(batch_size)
        self.seq = self.sent = self.bytes = 0

    def send(self, upto: int) -> int:
        """Send until `upto` packets in total (or the ring is full)."""
        if not len(self.batch) and self.sent < upto:
            self.batch.alloc(self.pool, min(self.batch.capacity, upto - self.sent))
            self.seq = self.batch.stamp_u64(SEQ_OFFSET, self.seq)
        before = self.batch.total_bytes()
        n = self.txq.tx(self.batch)
        self.bytes += before - self.batch.total_bytes()
        self.sent += n
        return n

    def close(self) -> None:
        self.batch.free()


def transfer(tx_dev, rx_dev, count: int, frames: Sequence[bytes], window: int = 256,
             batch_size: int = 32, tx_queue: int = 0, timeout: float = 30.0) -> Dict[str, int]:
    """Send count packets from tx_dev to rx_dev, never more than window in
    flight; returns what both sides saw."""
    sender = Sender(tx_dev, frames, tx_queue, batch_size)
    receiver = Receiver(rx_dev, batch_size=batch_size)
    deadline = time.monotonic() + timeout
    try:
        while receiver.count < count and time.monotonic() < deadline:
            if sender.sent < count and sender.sent - receiver.count < window:
                sender.send(min(count, receiver.count + window))
            receiver.poll()
        receiver.drain(idle=0.2)      # anything beyond count would be a bug
    finally:
        sender.close()
    return {"sent": sender.sent, "sent_bytes": sender.bytes, "received": receiver.count,
            "received_bytes": receiver.bytes, "out_of_order": receiver.out_of_order,
            "expected": receiver.expected}


def stats_dict(dev) -> Dict[str, int]:
    return vars(dev.stats()).copy()


def emit(obj) -> None:
    """The result line the host test parses (the last line of stdout)."""
    print(json.dumps(obj), flush=True)
