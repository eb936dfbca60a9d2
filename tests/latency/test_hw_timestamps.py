"""Hardware time stamps (ixypy.drivers.ieee1588, measure_latency's
hw_timestamps) where the host can check them: the refusals on devices
without a 1588 clock, and the time-stamped send's own rules. The clock
itself is QEMU's igb: tests/vm/test_vm_igb.py (latency_hw)."""
from __future__ import annotations

import pytest

import ixypy
from ixypy.drivers import ieee1588
from ixypy.errors import BatchError, TimestampsUnavailable
from ixypy.fastpath.batch import PacketBatch
from ixypy.latency import HW_PROBE_FRAME_MIN, measure_latency
from ixypy.packets import udp_frame


def test_the_igb_model_has_no_clock_and_is_left_as_it_was():
    """The ixypy 82576 model has no 1588 clock: SYSTIM stands still, so
    enable() refuses (mutation: the check removed: the run goes on and
    returns, fails) and turns the latches it set off again (mutation:
    no disable() before the raise: TSYNCTXCTL reads 0x10, fails); the device
    then measures with software time stamps as before."""
    with ixypy.open("sim:igb-loop") as dev:
        with pytest.raises(TimestampsUnavailable, match="SYSTIM"):
            measure_latency(dev, dev, probes=10, hw_timestamps=True)
        regs = dev.ieee1588().regs
        assert [regs.read(r) for r in (ieee1588.TSYNCTXCTL, ieee1588.TSYNCRXCTL, ieee1588.ETQF(ieee1588.ETQF_PTP))] \
            == [0, 0, 0]
        result = measure_latency(dev, dev, probes=100)
    assert result.received == 100 and result.timestamps == "software" and result.software is None


def test_a_device_without_a_clock_driver_refuses():
    with ixypy.open("sim:loop") as dev:
        with pytest.raises(TimestampsUnavailable, match="no IEEE 1588 clock"):
            dev.ieee1588()


def test_a_time_stamped_send_takes_one_packet_and_sends_it_unchanged():
    """tx_timestamped refuses a batch of two (the NIC latches one time) and
    sends a batch of one with its length intact: the 1588 bit lies outside
    DTALEN (mutation: the bit at 0x8000, inside the length: the frame
    arrives 32 KiB long or not at all, fails)."""
    frame = udp_frame(HW_PROBE_FRAME_MIN)
    with ixypy.open("sim:igb-loop") as dev:
        pool = dev.mempool(64)
        pool.fill([frame])
        txq, rxq = dev.tx_queue(0), dev.rx_queue(0)
        batch = PacketBatch(2)
        batch.alloc(pool, 2)
        with pytest.raises(BatchError, match="a batch of one packet, not 2"):
            txq.tx_timestamped(batch)
        assert len(batch) == 2 and txq.packets == 0
        batch.free()
        batch.alloc(pool, 1)
        assert txq.tx_timestamped(batch) == 1 and len(batch) == 0
        got = PacketBatch(8)
        for _ in range(100_000):
            if rxq.rx(got):
                break
        assert [bytes(got[i]) for i in range(len(got))] == [frame]
        got.free()


def test_the_probe_frame_is_a_ptp_v2_sync_message():
    """What the rx latch matches (EtherType 0x88F7, messageType Sync,
    versionPTP 2), laid out as IEEE 1588-2008 13.3 says."""
    frame = ieee1588.ptp_probe_frame(70, "52:54:00:00:00:02", "52:54:00:00:00:01")
    assert len(frame) == 70
    assert frame[:12] == bytes.fromhex("525400000002" "525400000001")
    assert frame[12:14] == b"\x88\xf7"
    assert frame[14] & 0x0F == 0 and frame[15] & 0x0F == 2
    assert int.from_bytes(frame[16:18], "big") == 44
    assert frame[18:] == bytes(52)
