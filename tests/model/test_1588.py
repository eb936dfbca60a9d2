"""The models' IEEE 1588 time sync (csrc/sim/intel_1588.c) against what
the datasheets say (82599 7.9 / 8.2.3.26, 82576 7.9 / 8.16), through the
registers only: SYSTIM's rate from TIMINCA, the tx latch for a packet
with the 1588 bit, the rx latch only for the PTP frames the filters
name, each held until its high register is read."""
from __future__ import annotations

import time

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.drivers import ieee1588
from ixypy.drivers.ieee1588 import ETQF_1588, ETQF_PTP, TSYNC_ENABLED, TSYNC_VALID
from ixypy.packets import PTP_ETHERTYPE, ptp_sync_frame, udp_frame

MODELS = ["sim:loop", "sim:igb-loop"]
SYNC, DELAY_REQ = 0x0, 0x1


def systim(regs, at) -> int:
    low = regs.read(at.systiml)
    return low | regs.read(at.systimh) << 32


@pytest.mark.parametrize("address", MODELS)
def test_systim_counts_ns_at_the_timinca_rate_and_stands_still_without_it(address: str):
    """With the driver's TIMINCA, SYSTIM advances as CLOCK_MONOTONIC does
    (within 1 % over 20 ms; the 82599's in 32 ns steps); twice the
    increment value, twice as fast; TIMINCA 0: it stands still. Mutation:
    the clock period taken as 1 ns on the 82599 (cycle 10 tenths): 6.4 times
    too fast, fails."""
    with ixypy.open(address) as dev:
        regs, at = dev.regs, dev.CLOCK
        for timinca, rate in ((at.timinca_ns, 1.0), (at.timinca_ns + (at.timinca_ns & 0xFFFFFF), 2.0)):
            regs.write(at.timinca, timinca)
            t0, s0 = time.monotonic_ns(), systim(regs, at)
            time.sleep(0.02)
            s1, t1 = systim(regs, at), time.monotonic_ns()
            assert s1 - s0 == pytest.approx(rate * (t1 - t0), rel=0.01)
        regs.write(at.timinca, at.timinca_ns)
        if at is ieee1588.I82599:
            assert systim(regs, at) % 32 == 0
        regs.write(at.timinca, 0)
        s0 = systim(regs, at)
        time.sleep(0.005)
        assert systim(regs, at) == s0


def ptp(dst: str, message_type: int, seq: int, ethertype: int = PTP_ETHERTYPE) -> bytes:
    frame = bytearray(ptp_sync_frame(64, src_mac="02:00:00:00:00:09", dst_mac=dst))
    frame[12:14] = ethertype.to_bytes(2, "big")
    frame[14] = message_type
    frame[14 + 30:14 + 32] = seq.to_bytes(2, "big")
    return bytes(frame)


def send(dev, frame: bytes, stamped: bool) -> None:
    pool = dev.mempool(64)
    pool.fill([frame])
    batch = PacketBatch(1)
    batch.alloc(pool, 1)
    txq = dev.tx_queue(0)
    assert (txq.tx_timestamped(batch) if stamped else txq.tx(batch)) == 1
    dev.flush_tx()
    got = PacketBatch(8)
    deadline = time.monotonic() + 2
    while not dev.rx_queue(0).rx(got) and time.monotonic() < deadline:
        pass
    assert len(got) == 1
    got.free()


@pytest.mark.parametrize("address", MODELS)
def test_the_latches_take_only_what_the_datasheet_names_and_hold_it_until_read(address: str):
    """tx: only a packet with the 1588 bit, only while EN; held (a second
    one leaves it) until TXSTMPH is read. rx: only a PTP v2 frame of the
    messageType set, its EtherType in an ETQF filter with the 1588 bit;
    RXSATRH 31:16 its sequenceId; held until RXSTMPH is read. Mutations:
    the rx messageType check dropped (the Delay_Req latches), fails;
    VALID not cleared by TXSTMPH (the third send finds the old time), fails."""
    with ixypy.open(address) as dev:
        regs, at = dev.regs, dev.CLOCK
        regs.write(at.timinca, at.timinca_ns)
        regs.write(at.tsynctxctl, TSYNC_ENABLED)
        regs.write(at.tsyncrxctl, TSYNC_ENABLED)
        regs.write(at.rx_msgtype, SYNC << 8)
        mac = dev.mac
        # tx: a plain send latches nothing; a stamped one does, between the clock's readings
        send(dev, udp_frame(64, dst_mac=mac), stamped=False)
        assert regs.read(at.tsynctxctl) == TSYNC_ENABLED
        before = systim(regs, at)
        send(dev, udp_frame(64, dst_mac=mac), stamped=True)
        after = systim(regs, at)
        assert regs.read(at.tsynctxctl) == TSYNC_ENABLED | TSYNC_VALID
        first = regs.read(at.txstmpl) | regs.read(at.txstmph) << 32
        assert before <= first <= after
        assert regs.read(at.tsynctxctl) == TSYNC_ENABLED            # TXSTMPH freed it
        send(dev, udp_frame(64, dst_mac=mac), stamped=True)
        between = systim(regs, at)
        send(dev, udp_frame(64, dst_mac=mac), stamped=True)          # held: the second leaves the first
        held = regs.read(at.txstmpl) | regs.read(at.txstmph) << 32
        assert first < held <= between
        # rx: no ETQF filter yet, then the wrong messageType, a non-PTP EtherType: nothing
        send(dev, ptp(mac, SYNC, 7), stamped=False)
        regs.write(at.etqf(ETQF_PTP), at.etqf_enable | PTP_ETHERTYPE)       # without the 1588 bit
        send(dev, ptp(mac, SYNC, 7), stamped=False)
        regs.write(at.etqf(ETQF_PTP), at.etqf_enable | ETQF_1588 | PTP_ETHERTYPE)
        send(dev, ptp(mac, DELAY_REQ, 7), stamped=False)
        send(dev, ptp(mac, SYNC, 7, ethertype=0x88B5), stamped=False)
        assert regs.read(at.tsyncrxctl) == TSYNC_ENABLED
        before = systim(regs, at)
        send(dev, ptp(mac, SYNC, 0x1234), stamped=False)
        send(dev, ptp(mac, SYNC, 0x5678), stamped=False)                 # held: the first stays
        assert regs.read(at.tsyncrxctl) == TSYNC_ENABLED | TSYNC_VALID
        stamp = regs.read(at.rxstmpl) | regs.read(at.rxstmph) << 32
        assert before <= stamp <= systim(regs, at)
        assert regs.read(at.rxsatrh) >> 16 == 0x1234
        assert regs.read(at.tsyncrxctl) == TSYNC_ENABLED            # RXSTMPH freed it
