"""The loops both benchmarks measure (throughput and instruction counts):
Python-driven, written as an application would, and C-driven
(ixypy.fastpath.bench: the same per-batch C functions with no Python between
batches). `stalled` is called when the loop cannot progress (tx ring full,
nothing received): a no-op while the model runs on its own thread, the
model's pass when it runs in this one."""
from __future__ import annotations

import importlib
from typing import Callable

from ixypy import Mempool, PacketBatch
from ixypy.fastpath.bench import bench_fwd, bench_rx, bench_tx
from ixypy.packets import SEQ_OFFSET

DRIVERS = ("ixgbe", "igb", "virtio")    # a rig each: benchmarks/rig_<driver>.py
KINDS = ("tx", "rx", "fwd")
# how each kind is driven: from Python as an app writes it, fwd also with the
# one-call step (Queue.forward), and from C (ixypy.fastpath.bench)
MODES = {"tx": ("python", "c"), "rx": ("python", "c"), "fwd": ("python", "step", "c")}

Loop = Callable[[PacketBatch, int], int]


def open_rig(driver: str, threaded: bool):
    """The driver's rig (see rig_ixgbe.Rig): its queues on a device model."""
    return importlib.import_module(f"rig_{driver}").open_rig(threaded)


def loop_for(rig, kind: str, mode: str) -> Loop:
    """loop(batch, packets) moving at least `packets` packets through the rig."""
    txq, rxq, pool, poll, hook = rig.txq, rig.rxq, rig.pool, rig.poll, rig.hook
    return {
        ("tx", "python"): lambda batch, n: python_tx(txq, pool, batch, n, poll),
        ("rx", "python"): lambda batch, n: python_rx(rxq, batch, n, poll),
        ("fwd", "python"): lambda batch, n: python_fwd(rxq, txq, batch, n, poll),
        ("fwd", "step"): lambda batch, n: step_fwd(rxq, txq, batch, n, poll),
        ("tx", "c"): lambda batch, n: bench_tx(txq, pool, batch.capacity, n, SEQ_OFFSET, hook),
        ("rx", "c"): lambda batch, n: bench_rx(rxq, batch, n, hook)[0],
        ("fwd", "c"): lambda batch, n: bench_fwd(rxq, txq, batch, n, hook)[0],
    }[(kind, mode)]


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
    """Receive into the batch's free slots, send; what the tx ring does not
    take waits in the batch (Queue.forward written out in Python, with room
    for the app's own work between rx and tx)."""
    sent = 0
    while sent < packets:
        rxq.rx(batch)
        n = txq.tx(batch)
        sent += n
        if not n:
            stalled()
    return sent


def step_fwd(rxq, txq, batch: PacketBatch, packets: int, stalled: Callable[[], None] = nothing) -> int:
    """The same with the one-call step."""
    sent = 0
    while sent < packets:
        n = rxq.forward(txq, batch)
        sent += n
        if not n:
            stalled()
    return sent
