"""The ixgbe driver against the 82599 device model (no hardware needed).

The model is strict (see csrc/sim/intel_model.h): every test also checks
that it logged no error, i.e. the driver did nothing real hardware refuses.
"""
from __future__ import annotations

import time
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ixypy
from ixypy import PacketBatch
from ixypy.drivers import driver_for
from ixypy.drivers.ixgbe import IxgbeDevice
from ixypy.errors import BatchError, DeviceError, LinkDown, QueueError, UnsupportedDevice
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.sim import attach

from ..simdev import CRC, Receiver, model_errors, send, wait_until


@pytest.fixture
def pair(ixypy_sim):
    """Two ports cabled together, 64-descriptor rings: a sender and a receiver."""
    return ixypy_sim.pair(num_rx_desc=64, num_tx_desc=64)


def test_bring_up_follows_the_datasheet_sequence():
    with ixypy.open("sim:sink") as dev:
        assert dev.bus.function.events() == [
            "CTRL.RST", "EEC.ARD", "RDRXCTL.DMAIDONE", "AUTOC.RESTART_AN", "FCTRL.UPE=1",
            "DMATXCTL.TE", "RXDCTL[0].ENABLE", "RXCTRL.RXEN", "TXDCTL[0].ENABLE", "LINKS.LINK_UP",
        ]
        assert dev.bus.function.errors() == []
        assert dev.link_speed() == 10000
        assert dev.mac == "02:a0:c9:00:00:00"
        assert dev.bus.config_read(4, 2) & 0x4            # bus mastering on


def test_close_stops_dma_and_returns_every_buffer(pair):
    a, b = pair
    pool = a.mempool(256)
    pool.fill(udp_frame(dst_mac=b.mac))
    send(a, pool, 40, 20)
    assert wait_until(lambda: b.bus.function.wire_stats()["rx_packets"] == 40)
    b_pool = b.rx_mempool
    b.close()
    assert b_pool.free_count == b_pool.num_bufs          # the ring's buffers came back
    port = b.bus.function                                      # the cable's other end keeps the model alive
    assert not port.config_read(4, 2) & 0x4                # bus mastering off
    send(a, pool, 40, 20)
    time.sleep(0.05)
    assert port.wire_stats()["rx_packets"] == 40           # nothing more written into b's memory
    assert port.errors() == []


def test_a_closed_device_refuses_use_instead_of_touching_freed_memory():
    dev = ixypy.open("sim:sink")
    rxq = dev.rx_queue(0)
    dev.close()
    dev.close()                                            # idempotent
    with pytest.raises(QueueError, match="closed"):
        dev.rx_batch(0, PacketBatch(8))
    with pytest.raises(QueueError, match="closed"):
        rxq.rx(PacketBatch(8))
    with pytest.raises(DeviceError, match="after the device was closed"):
        dev.stats()


def test_pktgen_to_receiver_every_packet_in_order_and_stats_agree(pair):
    a, b = pair
    pool = a.mempool(1024)
    pool.fill(udp_frame(size=100, dst_mac=b.mac))
    rx = Receiver(b)
    n = 20000
    send(a, pool, n, 32, receiver=rx)
    rx.drain(n)
    assert rx.count == n and rx.out_of_order == 0 and rx.expected == n
    assert rx.bytes == 100 * n
    sa, sb = a.stats(), b.stats()
    assert (sa.tx_packets, sa.tx_bytes) == (n, (100 + CRC) * n)       # GOTC counts the CRC
    assert (sb.rx_packets, sb.rx_bytes) == (n, (100 + CRC) * n)
    assert sb.rx_dropped == 0 and sb.rx_errors == 0
    assert a.stats() == sa                                           # accumulated, not cleared away
    a.tx_queue(0).reclaim()
    assert pool.num_bufs - pool.free_count == a.tx_queue(0).in_flight < 32   # reclaimed in groups of 32
    a.close()
    assert pool.free_count == pool.num_bufs                          # nothing leaks


@pytest.mark.parametrize("batch_size", [1, 7, 32, 64])
def test_ring_wraps_many_times_with_partial_batches(pair, batch_size):
    a, b = pair
    pool = a.mempool(512)
    pool.fill(udp_frame(dst_mac=b.mac))
    rx = Receiver(b, batch_size=max(1, batch_size // 2))
    n = 64 * 50 + 13                                 # 50 wraps of a 64-descriptor ring, and a bit
    send(a, pool, n, batch_size, receiver=rx)
    rx.drain(n)
    assert (rx.count, rx.out_of_order) == (n, 0)


@pytest.mark.parametrize("ring", [8, 16, 32])
def test_the_smallest_rings_keep_moving(ring):
    """tx reclaims in groups of 32, or of half a smaller ring: with groups
    of 32 an 8- or 16-descriptor ring never reached a group and stalled."""
    a = ixypy.open("sim:pair0", num_rx_desc=ring, num_tx_desc=ring)
    b = ixypy.open("sim:pair1", num_rx_desc=ring, num_tx_desc=ring)
    try:
        pool = a.mempool(256)
        pool.fill(udp_frame(dst_mac=b.mac))
        rx = Receiver(b, batch_size=ring)
        send(a, pool, 20 * ring + 3, ring, receiver=rx)
        rx.drain(20 * ring + 3)
        assert (rx.count, rx.out_of_order) == (20 * ring + 3, 0)
        assert a.tx_queue(0).in_flight < ring
    finally:
        a.close()
        b.close()
    assert pool.free_count == pool.num_bufs
    assert model_errors(a, b) == []


def test_rx_overflow_is_dropped_and_counted(pair):
    a, b = pair
    pool = a.mempool(512)
    pool.fill(udp_frame(dst_mac=b.mac))
    send(a, pool, 200, 50)                                 # nobody receives on b meanwhile
    assert wait_until(lambda: b.bus.function.wire_stats()["rx_no_desc_drops"] == 200 - 63)
    stats = b.stats()
    assert stats.rx_dropped == 200 - 63                    # QPRDC: SRRCTL.DROP_EN is set
    rx = Receiver(b, 64)
    rx.poll()
    assert (rx.count, rx.out_of_order, rx.expected) == (63, 0, 63)   # the ring's worth, in order
    rx.expected = 63
    send(a, pool, 10, 10, seq=200)
    rx.drain(73)
    assert rx.count == 73 and rx.out_of_order == 1         # one gap: 63..199 were dropped


def test_tx_ring_full_returns_fewer_then_drains(pair):
    a, b = pair
    pool = a.mempool(256)
    pool.fill(udp_frame(dst_mac=b.mac))
    a.bus.sim.stop()                                   # the NIC's DMA engines pause
    batch = PacketBatch(64)
    sent = 0
    for _ in range(3):
        batch.alloc(pool)
        sent += a.tx_batch(0, batch)
    assert sent == 63                                  # one descriptor always stays empty
    assert len(batch) == 64 and a.tx_batch(0, batch) == 0
    a.bus.sim.start()
    rx = Receiver(b, 64)
    rx.drain(63)
    assert rx.count == 63
    batch.free()


def test_mempool_exhaustion_under_rx_then_recovery():
    with ixypy.open("sim:source", num_rx_desc=64) as dev:
        pool = dev.rx_mempool
        held = []
        # hold every received buffer: the pool runs dry and rx stops
        assert wait_until(lambda: _hold(dev, held) and pool.free_count == 0)
        assert _hold(dev, held) and dev.rx_batch(0, PacketBatch(8)) == 0
        total = sum(len(b) for b in held)
        assert total + 64 == pool.num_bufs            # the ring still holds its 64
        for b in held:
            b.free()
        rx = Receiver(dev)
        rx.expected = total
        assert wait_until(lambda: rx.poll() >= 0 and rx.count > 100)
        assert rx.out_of_order == 0                    # the source waited: nothing lost, in order
    assert pool.free_count == pool.num_bufs


def _hold(dev, held: list) -> bool:
    batch = PacketBatch(32)
    if dev.rx_batch(0, batch):
        held.append(batch)
    return True


def test_multiple_queues_each_transmit(pair):
    a, b = pair
    a.close()
    a.bus.function.clear_events()
    a = ixypy.open("sim:pair0", rx_queues=4, tx_queues=4, num_rx_desc=64, num_tx_desc=64)
    try:
        assert [e for e in a.bus.function.events() if "DCTL" in e] == \
            [f"RXDCTL[{i}].ENABLE" for i in range(4)] + [f"TXDCTL[{i}].ENABLE" for i in range(4)]
        pool = a.mempool(256)
        pool.fill(udp_frame(dst_mac=b.mac))
        batch = PacketBatch(12)                        # 4 x 12 fit b's 63 free rx descriptors
        for q in range(4):
            batch.alloc(pool)
            batch.stamp_u64(SEQ_OFFSET, 12 * q)
            assert a.tx_batch(q, batch) == 12
        rx = Receiver(b)
        rx.drain(48)
        assert rx.count == 48                          # the model steers all rx to queue 0
        assert a.stats().tx_packets == 48
    finally:
        a.close()
        assert model_errors(a) == []


def test_promiscuous_mode_decides_foreign_frames(pair):
    a, b = pair
    assert b.promisc                                   # bring-up turns it on (test above)
    seen = len(b.bus.function.events())
    b.set_promisc(False)
    assert not b.promisc
    pool = a.mempool(256)
    pool.fill(udp_frame(dst_mac="02:11:22:33:44:55"))  # nobody's MAC
    send(a, pool, 32, 32)
    assert wait_until(lambda: b.bus.function.wire_stats()["rx_filtered"] == 32)
    rx = Receiver(b)
    time.sleep(0.01)
    rx.poll()
    assert rx.count == 0
    b.set_promisc(True)
    send(a, pool, 32, 32, seq=0)
    rx.drain(32)
    assert rx.count == 32
    assert b.promisc
    assert b.bus.function.wire_stats()["rx_filtered"] == 32  # none of the second 32
    # each switch happened once, while rx was off (the model ignores and logs
    # an FCTRL change with RXCTRL.RXEN set; the fixture checks the log)
    assert b.bus.function.events()[seen:] == ["FCTRL.UPE=0", "RXCTRL.RXEN", "FCTRL.UPE=1", "RXCTRL.RXEN"]


def test_bad_queue_ids_and_batches():
    with ixypy.open("sim:sink", num_tx_desc=64) as dev:
        with pytest.raises(QueueError, match="tx queue 1 out of range"):
            dev.tx_batch(1, PacketBatch(8))
        with pytest.raises(QueueError, match="rx queue -1 out of range"):
            dev.rx_batch(-1, PacketBatch(8))
        with pytest.raises(BatchError, match="larger than the 64-descriptor ring"):
            dev.tx_batch(0, PacketBatch(65))
    with pytest.raises(QueueError, match="at most 64"):
        ixypy.open("sim:sink", tx_queues=65)
    with pytest.raises(QueueError, match="power of two"):
        ixypy.open("sim:sink", num_rx_desc=100)


def test_unsupported_pci_id_names_it():
    with pytest.raises(UnsupportedDevice, match="8086:1234"):
        driver_for(0x8086, 0x1234)
    assert driver_for(0x8086, 0x10FB) is IxgbeDevice
    assert driver_for(0x8086, 0x1528) is IxgbeDevice          # X540
    assert driver_for(0x8086, 0x1563) is IxgbeDevice          # X550


def test_link_that_never_comes_up_times_out_naming_links():
    bus = attach("sim:sink")
    bus.function.set_link_delay(-1)
    with pytest.raises(LinkDown, match=r"LINKS \(offset 0x42a4\)"):
        IxgbeDevice(bus, link_timeout=0.2)
    assert bus.model_errors() == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["tx", "rx"]), st.integers(1, 64)), min_size=1, max_size=40))
def test_random_interleavings_lose_nothing_silently(pair, ops: List[Tuple[str, int]]):
    """Whatever the interleaving: every packet sent is received exactly once,
    in order, or counted as dropped by the receiving NIC (its ring was full)."""
    a, b = pair
    pool = a.mempool(512)
    pool.fill(udp_frame(dst_mac=b.mac))
    dropped_before = b.stats().rx_dropped
    seq = sent = 0
    pending = PacketBatch(64)
    got: List[int] = []

    def receive(n: int) -> None:
        batch = PacketBatch(n)
        b.rx_batch(0, batch)
        got.extend(int.from_bytes(batch[i][SEQ_OFFSET:SEQ_OFFSET + 8], "little") for i in range(len(batch)))
        batch.free()

    for op, n in ops:
        if op == "tx":
            pending.alloc(pool, n)
            seq = pending.stamp_u64(SEQ_OFFSET, seq)
            sent += a.tx_batch(0, pending)
            seq -= len(pending)                    # unsent ones are dropped and their numbers reused
            pending.free()
        else:
            receive(n)

    def settled() -> bool:
        receive(64)
        return len(got) + b.stats().rx_dropped - dropped_before >= sent

    assert wait_until(settled)
    assert len(got) + b.stats().rx_dropped - dropped_before == sent
    assert all(x < y for x, y in zip(got, got[1:])) and all(0 <= x < sent for x in got)
    a.tx_queue(0).reclaim()
    assert pool.num_bufs - pool.free_count <= a.tx_queue(0).in_flight < 32   # the rest came back


@pytest.mark.parametrize("how", ["exit", "sigterm", "sigint"])
def test_process_end_stops_the_device(tmp_path, how):
    """A script that ends (normally, by SIGTERM or by Ctrl-C) without closing
    its device: ixypy still stops the device's DMA on the way out."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    marker = tmp_path / "stopped"
    script = f"""
import os, sys, time, ixypy
dev = ixypy.open("sim:source")
stop = dev._stop
def stop_and_mark():
    stop()
    open({str(marker)!r}, "w").write(str(dev.bus.function.config_read(4, 2) & 4))
dev._stop = stop_and_mark
print("ready", flush=True)
if {how!r} != "exit":
    time.sleep(60)
"""
    src = Path(__file__).resolve().parents[2] / "src"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(src)})
    assert proc.stdout.readline().strip() == "ready"
    if how != "exit":
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    proc.wait(timeout=30)
    assert marker.read_text() == "0"            # stopped, and bus mastering is off
