"""tx, rx and fwd through each driver's fast path, Python-driven vs C-driven;
and ixy C's forwarder (loops.IXY_FWD) on two ports, the same two ways."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch

from .conftest import BATCH_SIZES, PACKETS, measure
from loops import DRIVERS, IXY_FWD_MODES, KINDS, MODES, ixy_loop_for, loop_for


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
