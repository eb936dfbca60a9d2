"""tx, rx and fwd through the ixgbe fast path, Python-driven vs C-driven."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch
from ixypy.packets import udp_frame

from .conftest import BATCH_SIZES, PACKETS, measure
from .loops import python_fwd, python_rx, python_tx


def tx_device(ports):
    (dev,) = ports("sink")
    dev.bench_pool = dev.mempool(4096)
    dev.bench_pool.fill(udp_frame())
    return dev


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_tx_python(benchmark, ports, batch_size):
    dev = tx_device(ports)
    measure(benchmark, lambda: python_tx(dev.tx_queue(0), dev.bench_pool, PacketBatch(batch_size), PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_tx_c_reference(benchmark, ports, batch_size):
    dev = tx_device(ports)
    measure(benchmark, lambda: dev.tx_queue(0).bench_tx(dev.bench_pool, batch_size, PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_rx_python(benchmark, ports, batch_size):
    (dev,) = ports("source")
    measure(benchmark, lambda: python_rx(dev.rx_queue(0), PacketBatch(batch_size), PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_rx_c_reference(benchmark, ports, batch_size):
    (dev,) = ports("source")
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: PACKETS if dev.rx_queue(0).bench_rx(batch, PACKETS) >= 0 else 0, PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fwd_python(benchmark, ports, batch_size):
    src, dst = ports("source", "sink")
    measure(benchmark, lambda: python_fwd(src.rx_queue(0), dst.tx_queue(0), PacketBatch(batch_size), PACKETS), PACKETS)


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
def test_fwd_c_reference(benchmark, ports, batch_size):
    src, dst = ports("source", "sink")
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: PACKETS if src.rx_queue(0).bench_fwd(dst.tx_queue(0), batch, PACKETS) >= 0 else 0, PACKETS)
