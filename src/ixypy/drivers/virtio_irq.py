"""MSI-X interrupts of virtio-net (4.1.5.1.2.1 MSI-X vector configuration,
through the transport: the common configuration's config_msix_vector and
queue_msix_vector on the 1.x interface, the two registers of the 4.1.4.8
legacy layout on the legacy one; 2.7.7 used buffer notification
suppression).

Vectors: the rx virtqueue (queue 0) signals MSI-X vector 0, the only eventfd
ixypy.interrupts attaches. The config vector, the tx and the control queue
get NO_VECTOR: link state is polled, tx buffers are reclaimed on the next
send and control commands are polled, so none of them needs a wake-up.

Order (legacy: the vector registers exist only while MSI-X is on in the PCI
function, and then the device config moves from offset 20 to 24): the
eventfds are attached (VFIO_DEVICE_SET_IRQS enables MSI-X) before bring-up,
which then sees MSI-X on, reads the MAC at 24 and, after the reset (which
sets every vector to NO_VECTOR), writes each vector and reads it back:
NO_VECTOR read back means the device refused it (4.1.5.1.2.1).

Masking: VFIO cannot mask an MSI-X vector (its mask action is for INTx), so
masking is the ring's own hint: VRING_AVAIL_F_NO_INTERRUPT set while polling,
cleared only while the queue sleeps; with EVENT_IDX, used_event at the next
used entry while it sleeps and behind the last one seen while polling
(_Virtqueue.set_interrupt). It is a write to guest memory, not a system
call; the device tests it after each used-ring update.
Legacy virtio has no interrupt moderation: itr_us is ignored; at most one
message per sleep matters, later ones are drained before the next sleep.
The ISR is not used with MSI-X and never read (reading clears it).
"""
from __future__ import annotations

from typing import Callable

from ..errors import InterruptsUnavailable
from ..interrupts import Interrupts, IrqControl
from .virtio_pci import NO_VECTOR

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


def set_vector(write: Callable[[int], int], vector: int, what: str, address: str) -> int:
    """Write a vector register through write(vector), which returns what
    reads back (4.1.5.1.2.1: NO_VECTOR read back means refused)."""
    got = write(vector)
    if got != vector:
        raise InterruptsUnavailable(f"{address}: the virtio device refused MSI-X vector {vector} for {what} "
                                    f"(read back {got:#06x})",
                                    "open it with interrupts=False and poll")
    return got


def vectors(dev) -> dict:
    """The vectors the device holds now (for tests and diagnostics)."""
    transport = dev.transport
    out = {"config": transport.config_vector()}
    for name, index in (("rx", 0), ("tx", 1), ("ctrl", 2)):
        if name == "ctrl" and dev.ctrl is None:
            continue
        out[name] = transport.queue_vector(index)
    return out
