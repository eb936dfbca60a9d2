"""tx, rx and fwd through each driver's fast path, Python-driven vs C-driven."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch

from .conftest import BATCH_SIZES, PACKETS, measure
from loops import DRIVERS, KINDS, MODES, loop_for


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("kind,mode", [(k, m) for k in KINDS for m in MODES[k]])
@pytest.mark.parametrize("rig", DRIVERS, indirect=True)
def test_throughput(benchmark, rig, kind, mode, batch_size):
    loop = loop_for(rig, kind, mode)
    batch = PacketBatch(batch_size)
    measure(benchmark, lambda: loop(batch, PACKETS), PACKETS)
    batch.free()
