"""The Python-driven loops both benchmarks measure (throughput and
instruction counts), written as an application would. `stalled` is called
when the loop cannot progress (tx ring full, nothing received): a no-op
while the model runs on its own thread, Sim.poll when it runs in this one."""
from __future__ import annotations

from typing import Callable

from ixypy import Mempool, PacketBatch
from ixypy.packets import SEQ_OFFSET


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
    """Receive, send what the tx ring takes, drop the rest."""
    got = 0
    while got < packets:
        n = rxq.rx(batch)
        if n:
            got += n
            txq.tx(batch)
            if len(batch):
                stalled()
            batch.free()
        else:
            stalled()
    return got
