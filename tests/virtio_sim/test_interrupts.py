"""MSI-X of the legacy virtio-net model, as QEMU's virtio-net-pci has it:
the capability in config space, the table and PBA in BAR1, the vector
registers of the legacy I/O BAR (VirtIO 1.x 4.1.4.8, 4.1.5.1.2), used
buffer notifications on the queue's vector unless the driver suppresses
them (2.7.7); and the virtio driver sleeping on its rx vector.

Model-level tests run the model's passes in the test's thread (RawDriver:
the engine stopped, poll()), so what they count is exact. Driver-level
waits are bounded with generous timeouts and assert on counts, not times."""
from __future__ import annotations

import os
import threading

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.drivers import virtio_irq
from ixypy.drivers.virtio import VirtioDevice
from ixypy.packets import udp_frame
from ixypy.pci import msix_capability, msix_enabled
from ixypy.sim.virtio import VirtioSimBus

from ..simdev import wait_until
from .conftest import (DESC_F_NEXT, DEVICE_STATUS, ISR_STATUS, PCI_COMMAND, CMD_IO, CMD_MASTER, QUEUE_NOTIFY,
                       QUEUE_SEL, AVAIL_F_NO_INTERRUPT, RawDriver, buffer)

TX = 1
MSI_CONFIG_VECTOR, MSI_QUEUE_VECTOR = 20, 22          # while MSI-X is enabled (4.1.4.8)
NO_VECTOR = 0xFFFF
MSIX_ENABLE, MSIX_MASKALL = 1 << 15, 1 << 14          # Message Control
PBA = 0x800                                           # in BAR1, as QEMU
MAC = "02:a0:c9:00:00:00"
GENEROUS = 20.0                                       # s: a bound for what takes milliseconds


def set_control(dev, bits: int) -> None:
    """Write the MSI-X capability's Message Control (Enable, Function Mask)."""
    dev.config_write(msix_capability(dev) + 2, 2, bits)


def vector_ctrl(vector: int) -> int:
    """The offset of an MSI-X table entry's Vector Control in BAR1."""
    return 16 * vector + 12


def efd_read(fd: int) -> int:
    try:
        return os.eventfd_read(fd)
    except BlockingIOError:
        return 0


@pytest.fixture
def raw(model):
    return RawDriver(model)


@pytest.fixture
def msix(raw, model):
    """Device 0 with MSI-X enabled as vfio-pci enables it (VirtioSimBus.attach_irqs),
    an eventfd on each of its 4 vectors: (raw, its bus, the eventfds)."""
    bus = VirtioSimBus("sim:vtest0", model, model.device(0), "sink", owns_sim=False)
    fds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for _ in range(model.device(0).msix_vectors())]
    bus.attach_irqs(fds)
    yield raw, bus, fds
    bus.detach_irqs()
    for fd in fds:
        os.close(fd)


def tx_on_vector(raw, vector: int):
    """Device 0 running, its transmitq on `vector`, one (header, frame) chain
    in the ring: (ring, send), send() offering the chain, notifying and
    running one pass."""
    raw.init()
    ring = raw.queue(TX)
    raw.dev.io_write(QUEUE_SEL, 2, TX)
    raw.dev.io_write(MSI_QUEUE_VECTOR, 2, vector)
    raw.driver_ok()
    ring.desc(0, buffer(raw.sim, bytes(10)), 10, DESC_F_NEXT, 1)
    ring.desc(1, buffer(raw.sim, udp_frame()), 60)

    def send():
        ring.offer(0)
        raw.dev.io_write(QUEUE_NOTIFY, 2, TX)
        raw.sim.poll()
    return ring, send


# --- the model ---------------------------------------------------------------------------

def test_the_capability_and_table_as_qemu_has_them(model):
    """One MSI-X capability, Table Size 4 (3 queues + config), table at 0
    and PBA at 0x800 of BAR1; disabled, every entry masked, nothing pending."""
    dev = model.device(0)
    cap = msix_capability(dev)
    assert cap == 0x40 and dev.config_read(cap, 1) == 0x11 and dev.config_read(cap + 1, 1) == 0
    assert dev.config_read(cap + 2, 2) == 3 and dev.msix_vectors() == 4
    assert dev.config_read(cap + 4, 4) == 0x000 | 1 and dev.config_read(cap + 8, 4) == PBA | 1
    table = VirtioSimBus("sim:vtest0", model, dev, "sink", owns_sim=False).bar(1)
    assert [table.read32(vector_ctrl(v)) for v in range(4)] == [1, 1, 1, 1]
    assert table.read32(PBA) == 0
    assert not msix_enabled(dev) and dev.errors() == []


def test_msix_enable_moves_the_device_config(raw):
    """4.1.4.8: with MSI-X enabled the vector registers take offsets 20..23
    and the device config moves to 24; an access meant for the old place
    reaches the vector registers (and is refused at the wrong width)."""
    d = raw.dev
    assert d.io_read(20, 1) == 0x02 and d.io_read(26, 2) == 1          # mac[0], status (link up)
    set_control(d, MSIX_ENABLE)
    assert d.io_read(24, 1) == 0x02 and d.io_read(26, 1) == 0xC9 and d.io_read(30, 2) == 1
    assert d.io_read(MSI_CONFIG_VECTOR, 2) == NO_VECTOR and d.io_read(MSI_QUEUE_VECTOR, 2) == NO_VECTOR
    assert d.errors() == []
    assert d.io_read(20, 1) == 0xFF
    assert d.io_read(26, 2) == 0xFFFF
    assert d.errors() == ["1-byte read of config_msix_vector at 0x14: the register is 2 bytes",
                          "2-byte read of mac[2] at 0x1a: the register is 1 bytes"]
    set_control(d, 0)
    assert d.io_read(20, 1) == 0x02


def test_vector_registers_read_back_and_reset_unmaps_them(raw):
    """4.1.5.1.2.1: a vector written reads back; one beyond the table is
    refused (NO_VECTOR read back, and logged: 4.1.5.1.2.2); a reset unmaps
    every event."""
    d = raw.dev
    set_control(d, MSIX_ENABLE)
    raw.init()

    def queue_vector(q):
        d.io_write(QUEUE_SEL, 2, q)
        return d.io_read(MSI_QUEUE_VECTOR, 2)

    d.io_write(MSI_CONFIG_VECTOR, 2, 3)
    for q in range(3):
        d.io_write(QUEUE_SEL, 2, q)
        d.io_write(MSI_QUEUE_VECTOR, 2, q)
    assert d.io_read(MSI_CONFIG_VECTOR, 2) == 3
    assert [queue_vector(q) for q in range(3)] == [0, 1, 2]
    assert d.errors() == []
    d.io_write(MSI_CONFIG_VECTOR, 2, 4)
    assert d.io_read(MSI_CONFIG_VECTOR, 2) == NO_VECTOR
    d.io_write(QUEUE_SEL, 2, 3)
    d.io_write(MSI_QUEUE_VECTOR, 2, 0)
    assert d.io_read(MSI_QUEUE_VECTOR, 2) == NO_VECTOR
    assert d.errors() == ["config_msix_vector 4: the MSI-X table has 4 entries (reads back NO_VECTOR)",
                          "queue_msix_vector for queue 3: the device has 3"]
    d.io_write(MSI_CONFIG_VECTOR, 2, 2)
    d.io_write(DEVICE_STATUS, 1, 0)
    assert d.io_read(MSI_CONFIG_VECTOR, 2) == NO_VECTOR
    assert [queue_vector(q) for q in range(3)] == [NO_VECTOR] * 3


def test_used_buffers_signal_the_queues_vector_unless_suppressed(msix):
    """2.7.7: with VRING_AVAIL_F_NO_INTERRUPT set, no message; clear, one on
    the queue's vector's eventfd and none elsewhere; NO_VECTOR, none at all.
    The ISR is not used with MSI-X (4.1.5.1.2)."""
    raw, bus, fds = msix
    ring, send = tx_on_vector(raw, 1)
    ring.set_avail_flags(AVAIL_F_NO_INTERRUPT)
    send()
    assert ring.used_idx() == 1
    assert [efd_read(fd) for fd in fds] == [0, 0, 0, 0] and raw.dev.irq_count(1) == 0
    ring.set_avail_flags(0)
    send()
    assert ring.used_idx() == 2
    assert [efd_read(fd) for fd in fds] == [0, 1, 0, 0] and raw.dev.irq_count(1) == 1
    assert not raw.dev.isr_pending
    raw.dev.io_write(MSI_QUEUE_VECTOR, 2, NO_VECTOR)          # QUEUE_SEL is still TX
    send()
    assert ring.used_idx() == 3
    assert [efd_read(fd) for fd in fds] == [0, 0, 0, 0]
    assert [raw.dev.irq_count(v) for v in range(4)] == [0, 1, 0, 0]
    assert not raw.dev.isr_pending and raw.dev.io_read(ISR_STATUS, 1) == 0
    assert bus.bar(1).read32(PBA) == 0
    assert raw.dev.errors() == []


def test_a_masked_vector_is_pending_and_fires_when_unmasked(msix):
    """PCI MSI-X: an event on a masked vector (its entry's Mask bit, or the
    Function Mask) sets its pending bit instead of sending; clearing the
    mask sends the message and clears the bit."""
    raw, bus, fds = msix
    ring, send = tx_on_vector(raw, 1)
    table = bus.bar(1)
    table.write32(vector_ctrl(1), 1)
    send()
    assert efd_read(fds[1]) == 0 and table.read32(PBA) == 0b10
    table.write32(vector_ctrl(1), 0)
    assert efd_read(fds[1]) == 1 and table.read32(PBA) == 0
    set_control(raw.dev, MSIX_ENABLE | MSIX_MASKALL)
    send()
    assert efd_read(fds[1]) == 0 and table.read32(PBA) == 0b10
    set_control(raw.dev, MSIX_ENABLE)
    assert efd_read(fds[1]) == 1 and table.read32(PBA) == 0
    assert raw.dev.irq_count(1) == 2 and ring.used_idx() == 2
    assert raw.dev.errors() == []


def test_msix_misuse_is_logged(msix):
    """A vector firing with no eventfd (lost: said once), a write to the
    read-only PBA, an unmasked entry's data changed, an access beyond the
    table and PBA, BAR1 with memory space disabled."""
    raw, bus, fds = msix
    _, send = tx_on_vector(raw, 2)
    raw.dev.set_irq_eventfd(2, -1)
    send()
    send()
    table = bus.bar(1)
    table.write32(PBA, 0)
    table.write32(16 * 0 + 8, 7)
    table.write32(0x40, 0)
    assert table.read32(16 * 0 + 8) == 0                        # as attach_irqs wrote it
    raw.dev.config_write(PCI_COMMAND, 2, CMD_IO | CMD_MASTER)
    assert table.read32(0) == 0xFFFFFFFF
    assert raw.dev.irq_count(2) == 2
    assert raw.dev.errors() == [
        "MSI-X vector 2 fired with no eventfd attached (interrupt lost)",
        "write of 0 to the MSI-X PBA at 0x800: the Pending Bits are read-only (6.8.2.10)",
        "MSI-X entry 0 Message Data written while the entry is unmasked (undefined; ignored)",
        "MSI-X BAR write at 0x40: neither the table (0..0x3f) nor the PBA (0x800..0x807)",
        "BAR1 read at 0 while COMMAND.MEM is clear",
    ]


# --- the driver ---------------------------------------------------------------------------

def test_open_with_interrupts():
    """As in the guest against QEMU: MSI-X on, the config at 24, rx on
    vector 0, config, tx and control on NO_VECTOR, rx polled (flag set)."""
    with ixypy.open("sim:virtio-loop", interrupts=True) as dev:
        assert msix_enabled(dev.bus) and dev.transport.config == 24 and dev.mac == MAC and dev.link_up()
        assert virtio_irq.vectors(dev) == {"config": NO_VECTOR, "rx": 0, "tx": NO_VECTOR, "ctrl": NO_VECTOR}
        assert not dev.rx_queue(0).interrupt_enabled
        assert dev.bus.model_errors() == []
    assert dev.bus.model_errors() == []


def test_idle_receiver_sleeps_and_a_frame_wakes_it():
    """rx_batch with a timeout sleeps on the eventfd while the queue is
    idle (each call one sleep ended by its timeout); a frame sent on the
    loopback once the receiver is asleep ends the sleep through the
    interrupt, not the timeout."""
    with ixypy.open("sim:virtio-loop", interrupts=True) as dev:
        irq, batch = dev.interrupts, PacketBatch(32)
        for _ in range(3):
            assert dev.rx_batch(0, batch, timeout=0.05) == 0
        st = irq.stats(0)
        assert st["sleeps"] >= 1 and st["timeouts"] == st["sleeps"] and st["wakeups"] == 0 and st["signals"] == 0
        pool, asleep = dev.mempool(64), st["sleeps"] + 1

        def send_once_asleep():
            assert wait_until(lambda: irq.stats(0)["sleeps"] == asleep, GENEROUS)
            out = PacketBatch(1)
            out.alloc(pool, length=60)
            dev.tx_batch(0, out)

        sender = threading.Thread(target=send_once_asleep)
        sender.start()
        got = dev.rx_batch(0, batch, timeout=GENEROUS)
        sender.join()
        assert got == 1
        batch.free()
        st = irq.stats(0)
        assert st["sleeps"] == asleep and st["wakeups"] == 1 and st["signals"] >= 1, st
        assert dev.bus.function.irq_count(0) >= 1
        assert not dev.rx_queue(0).interrupt_enabled                # masked again while polling
    assert dev.bus.model_errors() == []


def test_close_disables_msix_and_polling_finds_the_config_at_20(model):
    """Closing masks the vector and disables MSI-X (VFIO's disable); the
    device opened again without interrupts has its config back at 20."""
    fn = model.device(0)

    def open_device(interrupts):
        return VirtioDevice(VirtioSimBus("sim:vtest0", model, fn, "sink", owns_sim=False), interrupts=interrupts)

    dev = open_device(True)
    table = dev.bus.bar(1)
    assert msix_enabled(fn) and table.read32(vector_ctrl(0)) == 0
    dev.close()
    assert not msix_enabled(fn) and table.read32(vector_ctrl(0)) == 1
    dev = open_device(False)
    assert dev.transport.config == 20 and dev.mac == MAC and dev.interrupts is None
    dev.close()
    assert fn.errors() == []
