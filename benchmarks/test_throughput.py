"""tx, rx and fwd through the ixgbe fast path, Python-driven vs C-driven."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET, udp_frame

from .conftest import BATCH_SIZES, PACKETS, measure


def python_tx(dev, batch_size: int, packets: int) -> int:
    """The pktgen loop: a fresh batch when the last one is gone, stamp, send."""
    pool = dev.bench_pool
    batch = PacketBatch(batch_size)
    txq = dev.tx_queue(0)
    sent = seq = 0
    while sent < packets:
        if not len(batch):
            batch.alloc(pool)
            seq = batch.stamp_u64(SEQ_OFFSET, seq)
        sent += txq.tx(batch)
    batch.free()
    return sent


def python_rx(dev, batch_size: int, packets: int) -> int:
    batch = PacketBatch(batch_size)
    rxq = dev.rx_queue(0)
    got = 0
    while got < packets:
        if rxq.rx(batch):
            got += len(batch)
            batch.free()
    return got


def python_fwd(src, dst, batch_size: int, packets: int) -> int:
    batch = PacketBatch(batch_size)
    rxq, txq = src.rx_queue(0), dst.tx_queue(0)
    got = 0
    while got < packets:
        n = rxq.rx(batch)
        if n:
            got += n
            txq.tx(batch)
            batch.free()
    return got


def tx_device(ports):
    (dev,) = ports("sink")
    dev.bench_pool = dev.mempool(4096)
    dev.bench_pool.fill(udp_frame())
    return dev


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_tx_python(benchmark, ports, batch_size):
    dev = tx_device(ports)
    measure(benchmark, lambda: python_tx(dev, batch_size, PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_tx_c_reference(benchmark, ports, batch_size):
    dev = tx_device(ports)
    measure(benchmark, lambda: dev.tx_queue(0).bench_tx(dev.bench_pool, batch_size, PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_rx_python(benchmark, ports, batch_size):
    (dev,) = ports("source")
    measure(benchmark, lambda: python_rx(dev, batch_size, PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_rx_c_reference(benchmark, ports, batch_size):
    (dev,) = ports("source")
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: PACKETS if dev.rx_queue(0).bench_rx(batch, PACKETS) >= 0 else 0, PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fwd_python(benchmark, ports, batch_size):
    src, dst = ports("source", "sink")
    measure(benchmark, lambda: python_fwd(src, dst, batch_size, PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fwd_c_reference(benchmark, ports, batch_size):
    src, dst = ports("source", "sink")
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: PACKETS if src.rx_queue(0).bench_fwd(dst.tx_queue(0), batch, PACKETS) >= 0 else 0, PACKETS)
