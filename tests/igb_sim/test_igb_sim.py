"""The igb driver against the 82576 variant of the device model (no
hardware needed).

The model is strict (see csrc/sim/intel_model.h): every test also checks
that it logged no error, i.e. the driver did nothing real hardware refuses.
"""
from __future__ import annotations

import threading

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.drivers.igb import IgbDevice
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.sim import SimBus, close_model, new_intel_model, source_frame

from ..simdev import CRC, Receiver, model_errors, send, wait_until

N = 20_000
OTHER_MAC = "02:00:00:00:99:99"


@pytest.fixture
def ixypy_sim_kind():
    return "igb"


@pytest.fixture
def pair(ixypy_sim):
    """Two 82576 ports cabled together, 64-descriptor rings: a sender and a receiver."""
    return ixypy_sim.pair(num_rx_desc=64, num_tx_desc=64)


@pytest.fixture
def model():
    """A one-function (one-port) 82576 model, to wire and open by hand."""
    sim = new_intel_model(1, variant="82576")
    devs = []

    def open_device(**kw) -> IgbDevice:
        devs.append(IgbDevice(SimBus("sim:igb-test", sim, sim.function(0), "test", owns_sim=False), **kw))
        return devs[-1]

    yield sim.function(0), open_device
    for d in devs:
        d.close()
    assert model_errors(*devs) == []
    close_model(sim)


def test_bring_up_follows_the_datasheet_sequence():
    with ixypy.open("sim:igb-sink") as dev:
        assert isinstance(dev, IgbDevice)
        assert dev.bus.ids == (0x8086, 0x10C9)
        assert dev.bus.function.events() == [
            "CTRL.RST", "EECD.AUTO_RD", "RCTL.UPE=1", "RXDCTL[0].ENABLE", "RCTL.EN",
            "TXDCTL[0].ENABLE", "TCTL.EN", "STATUS.LU",
        ]
        assert dev.bus.function.errors() == []
        assert dev.link_speed() == 1000
        assert dev.mac == "02:a0:c9:00:00:00"
        assert dev.bus.config_read(4, 2) & 0x4            # bus mastering on


def test_a_powered_down_phy_is_restarted_and_the_link_waited_for(model):
    fn, open_device = model
    fn.write32(0x20, 0x04000000 | 1 << 21 | 0 << 16 | 0x1940)    # MDIC: BMCR = power down
    fn.set_link_delay(50_000)
    dev = open_device()
    assert "BMCR.RESTART_AN" in fn.events()
    assert fn.events()[-1] == "STATUS.LU"
    assert dev.link_speed() == 1000


def test_tx_to_the_sink_counts_every_packet():
    with ixypy.open("sim:igb-sink") as dev:
        pool = dev.mempool(1024)
        pool.fill(udp_frame())
        assert send(dev, pool, N, 32) == N                 # sequence numbers 0 .. N-1
        dev.flush_tx()
        wire = dev.bus.function.wire_stats()
        assert (wire["tx_packets"], wire["tx_bytes"]) == (N, 60 * N)
        stats = dev.stats()
        assert (stats.tx_packets, stats.tx_bytes) == (N, (60 + CRC) * N)     # GOTC counts the CRC
        assert dev.bus.function.errors() == []


def test_rx_from_the_source_gets_every_packet_in_order(model):
    fn, open_device = model
    fn.wire_source(source_frame(), N, SEQ_OFFSET)         # exactly N frames, numbered
    dev = open_device()
    rx = Receiver(dev)
    rx.drain(N)
    assert (rx.count, rx.out_of_order, rx.expected, rx.bytes) == (N, 0, N, 60 * N)
    assert not wait_until(lambda: rx.poll(), timeout=0.05)  # and not one more
    stats = dev.stats()
    assert (stats.rx_packets, stats.rx_bytes) == (N, (60 + CRC) * N)
    assert stats.rx_dropped == 0 and stats.rx_errors == 0
    assert fn.wire_stats()["rx_packets"] == N


def test_pair_every_packet_in_order_and_stats_agree(pair):
    a, b = pair
    pool = a.mempool(1024)
    pool.fill(udp_frame(size=100, dst_mac=b.mac))
    rx = Receiver(b)
    send(a, pool, N, 32, receiver=rx)
    rx.drain(N)
    assert (rx.count, rx.out_of_order, rx.expected, rx.bytes) == (N, 0, N, 100 * N)
    sa, sb = a.stats(), b.stats()
    assert (sa.tx_packets, sa.tx_bytes) == (N, (100 + CRC) * N)
    assert (sb.rx_packets, sb.rx_bytes) == (N, (100 + CRC) * N)
    assert sb.rx_dropped == 0 and sb.rx_errors == 0


def test_promiscuous_mode_switches_the_unicast_filter_while_rx_runs(pair):
    a, b = pair
    own, other = a.mempool(64), a.mempool(64)
    own.fill(udp_frame(dst_mac=b.mac))
    other.fill(udp_frame(dst_mac=OTHER_MAC))
    rx = Receiver(b)
    assert b.promisc
    send(a, other, 10, 10)
    rx.drain(10)
    b.set_promisc(False)
    assert not b.promisc
    send(a, other, 10, 10, seq=10)
    assert wait_until(lambda: b.bus.function.wire_stats()["rx_filtered"] == 10)
    send(a, own, 10, 10, seq=20)
    rx.drain(20)
    b.set_promisc(True)
    send(a, other, 10, 10, seq=30)
    rx.drain(30)
    assert (rx.count, rx.out_of_order) == (30, 1)           # 10..19 were filtered
    assert b.bus.function.events()[-2:] == ["RCTL.UPE=0", "RCTL.UPE=1"]


def test_rx_overflow_is_dropped_and_counted_in_rqdpc(pair):
    a, b = pair
    pool = a.mempool(512)
    pool.fill(udp_frame(dst_mac=b.mac))
    send(a, pool, 200, 50)                                 # nobody receives on b meanwhile
    assert wait_until(lambda: b.bus.function.wire_stats()["rx_no_desc_drops"] == 200 - 63)
    assert b.stats().rx_dropped == 200 - 63                # SRRCTL.DROP_EN is set
    rx = Receiver(b, 64)
    rx.poll()
    assert (rx.count, rx.out_of_order) == (63, 0)


def test_msix_wakes_a_receiver_sleeping_on_an_idle_queue():
    a = ixypy.open("sim:igb-pair0")
    b = ixypy.open("sim:igb-pair1", interrupts=True)
    try:
        pool = a.mempool(64)
        pool.fill(udp_frame(dst_mac=b.mac))
        batch = PacketBatch(32)
        assert b.rx_batch(0, batch, timeout=0.1) == 0          # idle: slept on vector 0, timed out
        timer = threading.Timer(0.05, send, (a, pool, 10, 10))
        timer.start()
        got = b.rx_batch(0, batch, timeout=5.0)
        timer.join()
        assert got > 0 and b.bus.function.irq_count(0) >= 1
        batch.free()
    finally:
        a.close()
        b.close()
    assert model_errors(a, b) == []
