"""MSI-X on the Intel NICs with extended interrupt registers (82599 and
82576 families): what ixgbe_irq and igb_irq share.

Both map each rx queue's interrupt cause to its own vector (IVAR, laid out
differently per family), keep one bit per vector in EICR (cause, write 1 to
clear), EIMS (unmask: write 1), EIMC (mask: write 1) and EIAC (clear the
cause when the message goes out), and throttle each vector with EITR (the
interval field and its unit differ). A family module supplies the register
offsets and its set-up of GPIE, IVAR and EITR; this module supplies the
mask/unmask control and the common set-up frame: vectors attached through
the bus, everything masked, the family's programming, cleanup on failure.
"""
from __future__ import annotations

from typing import Callable

from ..interrupts import Interrupts, IrqControl


class ExtendedIrqControl(IrqControl):
    """Mask and unmask one vector through one bit of EIMC/EIMS; an unmask
    first clears the vector's cause left from the polling phase in EICR
    (it would only wake the queue for packets it already took)."""

    def __init__(self, regs, eicr: int, eims: int, eimc: int, auto_masks: bool = False) -> None:
        self.write = regs.write
        self.eicr, self.eims, self.eimc = eicr, eims, eimc
        self.auto_masks = auto_masks

    def mask(self, vector: int) -> None:
        self.write(self.eimc, 1 << vector)

    def unmask(self, vector: int) -> None:
        self.write(self.eicr, 1 << vector)
        self.write(self.eims, 1 << vector)


def enable(dev, control: IrqControl, program: Callable[[Interrupts], None]) -> Interrupts:
    """One MSI-X vector and eventfd per rx queue of dev (queue n on vector n),
    attached through dev.bus; every cause masked (dev._disable_interrupts),
    then program(irq) sets the family's registers. The vectors stay masked:
    the policy in ixypy.interrupts unmasks a queue's vector when it idles."""
    irq = Interrupts(dev.bus, dev.num_rx_queues, control)
    try:
        dev._disable_interrupts()
        program(irq)
    except BaseException:
        irq.close()
        raise
    return irq
