"""MSI-X interrupts of legacy virtio-net (VirtIO 1.x 4.1.4.8 legacy layout,
4.1.5.1.2.1 MSI-X vector configuration; 2.7.7 used buffer notification
suppression).

Vectors: the rx virtqueue (queue 0) signals MSI-X vector 0, the only eventfd
ixypy.interrupts attaches. The config vector, the tx and the control queue
get NO_VECTOR: link state is polled, tx buffers are reclaimed on the next
send and control commands are polled, so none of them needs a wake-up.

Order (the vector registers exist only while MSI-X is on in the PCI
function, and then the device config moves from offset 20 to 24): the
eventfds are attached (VFIO_DEVICE_SET_IRQS enables MSI-X) before bring-up,
which then sees MSI-X on, reads the MAC at 24 and, after the reset (which
sets every vector to NO_VECTOR), writes each vector and reads it back:
NO_VECTOR read back means the device refused it (4.1.5.1.2.1).

Masking: VFIO cannot mask an MSI-X vector (its mask action is for INTx), so
masking is the ring's own hint: VRING_AVAIL_F_NO_INTERRUPT set while polling,
cleared only while the queue sleeps. It is a write to guest memory, not a
system call; the device tests it after each used-ring update (no EVENT_IDX).
Legacy virtio has no interrupt moderation: itr_us is ignored; at most one
message per sleep matters, later ones are drained before the next sleep.
The ISR (offset 19) is not used with MSI-X and never read (reading clears it).
"""
from __future__ import annotations

from ..errors import InterruptsUnavailable
from ..interrupts import Interrupts, IrqControl

MSI_CONFIG_VECTOR = 0x14   # 16 bits, only while MSI-X is enabled (4.1.4.8)
MSI_QUEUE_VECTOR = 0x16    # 16 bits, for the queue in QUEUE_SEL
NO_VECTOR = 0xFFFF         # VIRTIO_MSI_NO_VECTOR
RX_VECTOR = 0              # rx queue n on vector n: ixypy.interrupts' convention


class VirtioIrqControl(IrqControl):
    """Mask/unmask an rx queue's vector through its avail.flags."""

    auto_masks = False            # the device keeps signalling until the flag is set again

    def __init__(self, dev) -> None:
        self.dev = dev

    def mask(self, vector: int) -> None:
        self.dev.rx_queues[vector].set_interrupt(False)

    def unmask(self, vector: int) -> None:
        # no cause to clear: the eventfd was drained, and the ISR is unused with MSI-X
        self.dev.rx_queues[vector].set_interrupt(True)


def attach(dev) -> Interrupts:
    """Before bring-up: one eventfd for rx queue 0 on MSI-X vector 0 (this
    enables MSI-X in the PCI function through VFIO)."""
    return Interrupts(dev.bus, dev.num_rx_queues, VirtioIrqControl(dev))


def set_vector(port, register: int, vector: int, what: str, address: str) -> int:
    """Write a 16-bit vector register and read it back (4.1.5.1.2.1)."""
    port.write16(register, vector)
    got = port.read16(register)
    if got != vector:
        raise InterruptsUnavailable(f"{address}: the virtio device refused MSI-X vector {vector} for {what} "
                                    f"(read back {got:#06x})",
                                    "open it with interrupts=False and poll")
    return got


def vectors(dev) -> dict:
    """The vectors the device holds now (for tests and diagnostics)."""
    port = dev.port
    out = {"config": port.read16(MSI_CONFIG_VECTOR)}
    for name, index in (("rx", 0), ("tx", 1), ("ctrl", 2)):
        if name == "ctrl" and dev.ctrl is None:
            continue
        port.write16(0x0E, index)                   # QUEUE_SEL
        out[name] = port.read16(MSI_QUEUE_VECTOR)
    return out
