"""MSI-X interrupts of the 82576 virtual function: its rx queue on vector 0.

A VF has three MSI-X vectors (its own MSI-X table, BAR3) and its own view
of the extended interrupt registers, one bit per VF vector: VFEICR (cause,
write 1 to clear), VFEIMS (unmask), VFEIMC (mask), VFEIAC (clear the cause
when the message goes out), VFEITR(0..2) (throttling, the igb EITR format)
and VFIVAR0, which maps the VF's rx queue 0 (byte 0) and tx queue 0 (byte 1)
to a vector (its number in the low bits, valid bit 7); the mailbox cause
(VFIVAR_MISC) is left unmapped. What the PF's driver owns stays its own:
GPIE (MSI-X mode) is the port's, and Linux's igb sets MSI-X mode when it
uses MSI-X itself.

QEMU 10's model maps these onto the PF's EICR bits 22-24 (VF 0) downwards
and delivers through the VF's MSI-X table; it does not auto-mask (EIAM), so
the policy in ixypy.interrupts masks the vector itself, as for igb.
"""
from __future__ import annotations

from ..interrupts import Interrupts
from . import intel_irq
from .igb_irq import DEFAULT_ITR_US, IVAR_VALID, eitr_value

VFEIMS = 0x1524
VFEIMC = 0x1528
VFEIAC = 0x152C
VFEICR = 0x1580
VFIVAR0 = 0x1700
VF_VECTORS = 3
IVAR_RX0_MASK = 0xFF               # byte 0: rx queue 0's entry


def VFEITR(v: int) -> int: return 0x1680 + 4 * v


def enable(dev, itr_us: float = DEFAULT_ITR_US) -> Interrupts:
    """Give the VF's rx queue its MSI-X vector and eventfd."""
    regs = dev.regs

    def program(irq: Interrupts) -> None:
        auto = 0
        for q in irq.queues:
            if q.vector >= VF_VECTORS or q.queue != 0:
                raise ValueError(f"an 82576 VF maps rx queue 0 to one of vectors 0..{VF_VECTORS - 1}, "
                                 f"not queue {q.queue} to {q.vector}")
            regs.update(VFIVAR0, IVAR_RX0_MASK, q.vector | IVAR_VALID)
            regs.write(VFEITR(q.vector), eitr_value(itr_us))
            auto |= 1 << q.vector
        regs.write(VFEICR, auto)                 # nothing stale from before
        regs.write(VFEIAC, auto)

    return intel_irq.enable(dev, intel_irq.ExtendedIrqControl(regs, VFEICR, VFEIMS, VFEIMC), program)
