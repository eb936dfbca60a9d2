"""ixgbe interrupts (MSI-X, one vector per rx queue) against the 82599 model,
and the adaptive poll/sleep policy of ixypy.interrupts.

Bounded waits only; CPU and time are asserted with generous bounds."""
from __future__ import annotations

import os
import threading
import time

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.drivers import ixgbe_irq
from ixypy.drivers.ixgbe import IxgbeDevice
from ixypy.errors import InterruptsUnavailable
from ixypy.packets import udp_frame
from ixypy.sim import attach

from ..simdev import model_errors


@pytest.fixture
def pair():
    """A polling sender and a receiver with interrupts."""
    a = ixypy.open("sim:pair0", num_rx_desc=512, num_tx_desc=512)
    b = ixypy.open("sim:pair1", num_rx_desc=512, num_tx_desc=512, interrupts=True)
    yield a, b
    a.close()
    b.close()
    assert model_errors(a, b) == []


def send_packets(dev, n, pool):
    """Send exactly n 60-byte packets, one batch of up to 32 at a time."""
    left = n
    while left:
        k = min(left, 32)
        batch = PacketBatch(k)
        batch.alloc(pool, length=60)
        while len(batch):
            left -= dev.tx_batch(0, batch)
    return n


def drain(dev, timeout=0.05):
    batch = PacketBatch(64)
    total = 0
    while True:
        got = dev.rx_batch(0, batch, timeout=timeout)
        if not got:
            return total
        total += got
        batch.free()


def test_registers_after_bring_up():
    with ixypy.open("sim:sink", rx_queues=3, interrupts=True, itr_us=100) as dev:
        r = dev.regs.read
        gpie = r(ixgbe_irq.GPIE)
        assert gpie & ixgbe_irq.GPIE_MSIX_MODE and gpie & ixgbe_irq.GPIE_PBA_SUPPORT and gpie & ixgbe_irq.GPIE_EIAME
        assert r(ixgbe_irq.IVAR(0)) == 0x00810080          # rx 0 -> 0, rx 1 -> 1, valid
        assert r(ixgbe_irq.IVAR(1)) & 0xFF == 0x82           # rx 2 -> 2
        assert r(ixgbe_irq.EITR(0)) == ixgbe_irq.eitr_value(100) == 49 << 3
        assert r(ixgbe_irq.EIAC) == 0b111 and r(ixgbe_irq.EIAM) & 0xFFFF == 0b111
        assert r(ixgbe_irq.EIMS) & 0xFFFF == 0                # masked while polling
    assert model_errors(dev) == []


def test_idle_receiver_sleeps(pair):
    _, b = pair
    batch = PacketBatch(32)
    wall0, cpu0 = time.monotonic(), time.thread_time()
    while time.monotonic() - wall0 < 0.5:
        assert b.rx_batch(0, batch, timeout=0.05) == 0
    wall, cpu = time.monotonic() - wall0, time.thread_time() - cpu0
    assert cpu < 0.1 * wall, (cpu, wall)
    st = b.interrupts.stats(0)
    assert st["sleeps"] >= 5 and st["timeouts"] >= 5


def test_polling_timeout_spins_and_returns_zero():
    with ixypy.open("sim:sink") as dev:
        t = time.monotonic()
        assert dev.rx_batch(0, PacketBatch(8), timeout=0.05) == 0
        assert 0.04 < time.monotonic() - t < 2.0
        assert dev.interrupts is None


def test_wakes_when_a_packet_arrives(pair):
    a, b = pair
    pool = a.mempool()
    batch = PacketBatch(32)
    assert b.rx_batch(0, batch, timeout=0.05) == 0          # idle: armed and asleep next time
    timer = threading.Timer(0.1, send_packets, (a, 1, pool))
    t = time.monotonic()
    timer.start()
    got = b.rx_batch(0, batch, timeout=5.0)
    took = time.monotonic() - t
    timer.join()
    assert got == 1
    assert 0.05 < took < 2.0, took
    assert b.interrupts.stats(0)["wakeups"] >= 1
    batch.free()


def test_nothing_lost_across_idle_and_busy(pair):
    a, b = pair
    pool = a.mempool()
    bursts = [1, 64, 3, 200, 17, 0, 100, 5, 300, 2]
    total = sum(bursts)

    def sender():
        for n in bursts:
            send_packets(a, n, pool)
            time.sleep(0.02)                                 # long enough for b to fall asleep

    th = threading.Thread(target=sender)
    th.start()
    received = 0
    batch = PacketBatch(64)
    deadline = time.monotonic() + 20
    while received < total and time.monotonic() < deadline:
        received += b.rx_batch(0, batch, timeout=0.2)
        batch.free()
    th.join()
    received += drain(b)
    assert received == total
    assert b.stats().rx_dropped == 0
    st = b.interrupts.stats(0)
    assert st["sleeps"] >= 3 and st["wakeups"] >= 3, st


def test_masked_vector_does_not_wake_unmasked_does(pair):
    a, b = pair
    pool = a.mempool()
    irq = b.interrupts
    irq.control.mask(0)
    send_packets(a, 1, pool)
    assert not irq.wait(0, 0.2)
    assert drain(b) == 1
    irq.control.unmask(0)
    send_packets(a, 1, pool)
    assert irq.wait(0, 5.0)
    assert b.regs.read(ixgbe_irq.EIMS) & 1 == 0             # auto-masked when it fired
    assert drain(b) == 1


def test_events_for_other_queues_are_kept():
    with ixypy.open("sim:sink", rx_queues=3, interrupts=True) as dev:
        irq = dev.interrupts
        for v in (1, 2):
            irq.control.unmask(v)
        dev.regs.write(0x00808, 1 << 1)                      # EICS: vector 1 raised by software
        assert not irq.wait(2, 0.05)
        assert irq.wait(1, 0)
        dev.regs.write(0x00808, 1 << 2)
        assert irq.wait(2, 1.0)
    assert model_errors(dev) == []


def count_signals(itr_us, n=200):
    """n frames injected one by one (each its own write-back) into a receiver
    with the vector unmasked and auto-masking off: how many messages?"""
    with ixypy.open("sim:sink", interrupts=True, itr_us=itr_us) as dev:
        port, q = dev.bus.function, dev.interrupts.queues[0]
        dev.regs.write(ixgbe_irq.EIAM, 0)
        dev.interrupts.control.unmask(0)
        frame = udp_frame(dst_mac=dev.mac)
        t = time.monotonic()
        for _ in range(n):
            assert port.inject(frame)
        took = time.monotonic() - t
        time.sleep(0.01)                                      # the last pending cause is sent at the interval's end
        signals = os.eventfd_read(q.fd)
        assert drain(dev) == n
    assert model_errors(dev) == []
    return signals, took


def test_throttling_limits_the_wake_up_rate():
    fast, _ = count_signals(0)
    slow, took = count_signals(1000)
    assert fast == 200
    interval = 1000e-6
    assert 1 <= slow <= 2 + took / interval, (slow, took)
    assert slow < fast


def test_uio_like_bus_refuses_interrupts():
    bus = attach("sim:sink")
    bus.supports_interrupts = False
    with pytest.raises(InterruptsUnavailable, match="VFIO"):
        IxgbeDevice(bus, interrupts=True)
    assert bus.closed


def test_too_few_vectors(monkeypatch):
    from ixypy.sim import SimBus

    monkeypatch.setattr(SimBus, "msix_vectors", lambda self: 2)
    with pytest.raises(InterruptsUnavailable, match="2 MSI-X vector"):
        ixypy.open("sim:sink", rx_queues=3, interrupts=True)
