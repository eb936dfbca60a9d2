"""The loops both benchmarks measure (throughput and instruction counts):
Python-driven, written as an application would, and C-driven (the queues'
bench_* methods: the same per-batch C functions with no Python between
batches). `stalled` is called when the loop cannot progress (tx ring full,
nothing received): a no-op while the model runs on its own thread, the
model's pass when it runs in this one."""
from __future__ import annotations

import importlib
from typing import Callable

from ixypy import Mempool, PacketBatch
from ixypy.packets import SEQ_OFFSET

DRIVERS = ("ixgbe",)    # a rig each: benchmarks/rig_<driver>.py
KINDS = ("tx", "rx", "fwd")
MODES = ("python", "c")

Loop = Callable[[PacketBatch, int], int]


def open_rig(driver: str, threaded: bool):
    """The driver's rig (see rig_ixgbe.Rig): its queues on a device model."""
    return importlib.import_module(f"rig_{driver}").open_rig(threaded)


def loop_for(rig, kind: str, mode: str) -> Loop:
    """loop(batch, packets) moving `packets` packets through the rig."""
    txq, rxq, pool = rig.txq, rig.rxq, rig.pool
    if mode == "python":
        return {
            "tx": lambda batch, n: python_tx(txq, pool, batch, n, rig.poll),
            "rx": lambda batch, n: python_rx(rxq, batch, n, rig.poll),
            "fwd": lambda batch, n: python_fwd(rxq, txq, batch, n, rig.poll),
        }[kind]
    return {
        "tx": lambda batch, n: txq.bench_tx(pool, batch.capacity, n, SEQ_OFFSET, rig.hook),
        "rx": lambda batch, n: n if rxq.bench_rx(batch, n, rig.hook) >= 0 else 0,
        "fwd": lambda batch, n: n if rxq.bench_fwd(txq, batch, n, rig.hook) >= 0 else 0,
    }[kind]


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
