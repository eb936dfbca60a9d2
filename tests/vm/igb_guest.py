"""Guest-side helpers for the igb tests (imported by scripts run in the
guest: the harness directory is on the guest's PYTHONPATH).

transfer() is a sender and a receiver in one loop: the sender stamps
sequence numbers and keeps at most `window` packets in flight, so nothing is
lost to a full rx ring; the receiver checks the numbers as they come."""
from __future__ import annotations

import json
import time
from typing import Dict, List, Optional, Sequence

from ixypy import PacketBatch, pci
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


def msix_enabled(address: str) -> bool:
    """The MSI-X enable bit of the function's capability, as the kernel
    reads config space (sysfs; root sees past the first 64 bytes)."""
    return pci.msix_enabled(pci.PciDevice(address))


def is_eventfd(fd: int) -> bool:
    import os
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except OSError:
        return False


def stats_dict(dev) -> Dict[str, int]:
    return vars(dev.stats()).copy()


def emit(obj) -> None:
    """The result line the host test parses (the last line of stdout)."""
    print(json.dumps(obj), flush=True)


def count_delivered(tx_dev, rx_dev, frame: bytes, n: int = 50, idle: float = 0.3) -> int:
    """Send n copies of frame from tx_dev; how many rx_dev received."""
    sender = Sender(tx_dev, [frame])
    receiver = Receiver(rx_dev)
    try:
        while sender.sent < n:
            sender.send(n)
            receiver.poll()
        receiver.drain(idle=idle, until=n)
        receiver.drain(idle=0.05)        # and nothing beyond
    finally:
        sender.close()
    return receiver.count


def raw_frame(dst: str, src: str, size: int, tag: int, ethertype: int = 0x88B5) -> bytes:
    """A frame of size bytes with a local experimental ethertype and a
    payload that differs with tag and size."""
    head = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + ethertype.to_bytes(2, "big")
    body = bytes((tag * 7 + i * 13 + size) & 0xFF for i in range(size - len(head)))
    return head + body


def rx_raw(dev, want: int, ethertype: int = 0x88B5, timeout: float = 10.0) -> List[bytes]:
    """Frames with ethertype received on queue 0 (others are dropped)."""
    rxq = dev.rx_queue(0)
    batch = PacketBatch(32)
    got: List[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        if rxq.rx(batch):
            for i in range(len(batch)):
                frame = bytes(batch[i])
                if int.from_bytes(frame[12:14], "big") == ethertype:
                    got.append(frame)
            batch.free()
    return got


def tx_raw(dev, frames: Sequence[bytes], timeout: float = 10.0) -> None:
    """Send exactly these frames on queue 0."""
    pool = dev.mempool(4096)
    txq = dev.tx_queue(0)
    batch = PacketBatch(32)
    pending = list(frames)
    deadline = time.monotonic() + timeout
    while (pending or len(batch)) and time.monotonic() < deadline:
        if not len(batch):
            chunk, pending = pending[:32], pending[32:]
            batch.alloc(pool, len(chunk))
            for i, frame in enumerate(chunk):
                batch.write(i, frame)
        txq.tx(batch)
    batch.free()
