"""Helpers for tests that drive a sim device through a driver: the model's
errors, a receiver checking sequence numbers, a sender that
never overruns the receiver's ring."""
from __future__ import annotations

import time
from typing import List

from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET

CRC = 4


def model_errors(*devs) -> List[str]:
    return [e for d in devs for e in d.bus.model_errors()]


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return predicate()


class Receiver:
    """Receives on queue 0, checking the sequence numbers."""

    def __init__(self, dev, batch_size: int = 32) -> None:
        self.dev = dev
        self.batch = PacketBatch(batch_size)
        self.count = 0
        self.bytes = 0
        self.expected = 0
        self.out_of_order = 0
        self.window = dev.num_rx_desc - 1

    def poll(self) -> int:
        n = self.dev.rx_batch(0, self.batch)
        if n:
            self.bytes += self.batch.total_bytes()
            self.expected, bad = self.batch.check_seq_u64(SEQ_OFFSET, self.expected)
            self.out_of_order += bad
            self.count += n
            self.batch.free()
        return n

    def drain(self, until: int, timeout: float = 10.0) -> None:
        wait_until(lambda: self.poll() >= 0 and self.count >= until, timeout)


def send(dev, pool, n: int, batch_size: int, seq: int = 0, receiver: Receiver = None) -> int:
    """Send n packets with sequence numbers from seq; returns the next seq.
    With a receiver, no more than its ring holds is ever in flight (the
    model, like the NIC, drops what finds no free rx descriptor)."""
    batch = PacketBatch(batch_size)
    sent = 0
    deadline = time.monotonic() + 30
    while sent < n:
        assert time.monotonic() < deadline, f"stuck after {sent} of {n} packets"
        if not len(batch):
            batch.alloc(pool, min(batch_size, n - sent, receiver.window if receiver else batch_size))
            seq = batch.stamp_u64(SEQ_OFFSET, seq)
        while receiver is not None and receiver.poll() >= 0 and sent + len(batch) - receiver.count > receiver.window:
            assert time.monotonic() < deadline, f"receiver stuck at {receiver.count} of {sent} packets"
        sent += dev.tx_batch(0, batch)
    return seq
