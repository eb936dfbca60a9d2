"""The ixy-style forwarder loops report what they did: the count each
returns is what left the two ports by the model's own counters (not the
count asked for), both directions carried traffic, and every packet
received was sent or freed. Deterministic rig (the model runs only when the
loop stalls); no timing."""
from __future__ import annotations

import pytest

from ixypy import PacketBatch

from loops import DRIVERS, IXY_FWD_MODES, ixy_loop_for, open_ports


@pytest.mark.parametrize("mode", list(IXY_FWD_MODES))
@pytest.mark.parametrize("driver", DRIVERS)
def test_ixy_fwd_returns_what_left_the_ports(driver, mode):
    ports = open_ports(driver, threaded=False)
    try:
        batch = PacketBatch(32)
        forwarded = ixy_loop_for(ports, mode)(batch, 10_000)
        while ports.poll():                 # the model sends what the tx rings hold
            pass
        assert 10_000 <= forwarded < 10_000 + 2 * 32
        assert sum(end.wire_stats()["tx_packets"] for end in ports.ends) == forwarded
        assert ports.txq_a.packets > 0 and ports.txq_b.packets > 0
        assert ports.txq_a.packets + ports.txq_b.packets == forwarded
        assert len(batch) == 0
    finally:
        ports.close()
