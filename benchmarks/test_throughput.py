"""tx, rx and fwd through each driver's fast path, Python-driven vs C-driven;
ixy C's forwarder (loops.IXY_FWD) on two ports, the same two ways; and the
vector apps next to the bare forward step and to their per-packet Python
versions (loops.APP_KINDS) on the ixgbe rig."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch

from .conftest import BATCH_SIZES, PACKETS, measure
from loops import APP_KINDS, DRIVERS, IXY_FWD_MODES, KINDS, MODES, app_loop_for, ixy_loop_for, loop_for


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("kind,mode", [(k, m) for k in KINDS for m in MODES[k]])
@pytest.mark.parametrize("rig", DRIVERS, indirect=True)
def test_throughput(benchmark, rig, kind, mode, batch_size):
    loop = loop_for(rig, kind, mode)
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: loop(batch, PACKETS), PACKETS)
    batch.free()


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("mode", list(IXY_FWD_MODES))
@pytest.mark.parametrize("ports", DRIVERS, indirect=True)
def test_ixy_fwd(benchmark, ports, mode, batch_size):
    loop = ixy_loop_for(ports, mode)
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: loop(batch, PACKETS), PACKETS)
    batch.free()


APP_BATCH_SIZES = [32, 256]


@pytest.mark.parametrize("batch_size", APP_BATCH_SIZES)
@pytest.mark.parametrize("kind", list(APP_KINDS))
@pytest.mark.parametrize("rig", ["ixgbe"], indirect=True)
def test_apps(benchmark, rig, kind, batch_size):
    """Packets received and processed (forwarded, or dropped by the
    firewall) a second; the per-packet Python loops move a tenth of the
    packets (they are some 100x slower)."""
    packets = PACKETS // 10 if kind.endswith("-python") else PACKETS
    loop = app_loop_for(rig, kind, batch_size)
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: loop(batch, packets), packets)
    batch.free()
