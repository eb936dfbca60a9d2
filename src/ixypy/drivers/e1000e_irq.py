"""MSI-X interrupts of the 82574 (datasheet section 7.4, interrupts, MSI-X
mode in 7.4.2; ICR, IMS, IMC, EIAC, IVAR, EITR in chapter 10): one vector for
the rx queue.

The 82574 has 5 MSI-X vectors and no per-vector EICR/EIMS like the 82576:
in MSI-X mode its causes stay bits of ICR, IMS and IMC (RxQ0 is bit 20,
RxQ1 21, TxQ0 22, TxQ1 23, Other 24), and the one IVAR register maps each
of these five causes to a vector: 4 bits each (vector in bits 2:0, valid
bit 3), RxQ0 in bits 3:0, RxQ1 7:4, TxQ0 11:8, TxQ1 15:12, Other 19:16.
EIAC clears a cause in ICR when its message goes out; EITR (one per vector)
throttles in 256 ns units.

Set-up, after the queue is up: the bus attaches one eventfd per rx queue
(MSI-X enabled in the PCI function); CTRL_EXT.PBA_CLR (a cause unmasked in
IMS clears its vector's pending bit, as Linux's e1000e sets it); IVAR maps
RxQ0 to vector 0; EITR throttles it; EIAC auto-clears RxQ0. The cause
starts masked: the policy in ixypy.interrupts unmasks it (IMS) when the
queue goes idle, after clearing a stale cause (ICR is write-1-to-clear).
Shutdown masks everything (IMC) and the global reset clears the rest.

The driver masks the cause itself once it woke up (auto_masks False): QEMU's
model also clears IMS's bit with EIAC's unless CTRL_EXT.IAME is set, which
the datasheet does not promise; one register write, right on both.
"""
from __future__ import annotations

from ..interrupts import Interrupts, IrqControl
from . import intel_irq

CTRL_EXT = 0x00018
CTRL_EXT_PBA_CLR = 1 << 31
ICR = 0x000C0
IMS = 0x000D0
IMC = 0x000D8
EIAC = 0x000DC
IVAR = 0x000E4
IVAR_VALID = 0x8
IVAR_RXQ0_SHIFT = 0
ICR_RXQ0 = 1 << 20
MAX_VECTORS = 5
EITR_INTERVAL_MASK = 0xFFFF         # in 256 ns units
DEFAULT_ITR_US = 10                 # at most ~100k interrupts/s


def EITR(v: int) -> int: return 0x000E8 + 4 * v


def eitr_value(itr_us: float) -> int:
    """EITR for a minimum interval of itr_us between two messages (0: none)."""
    if itr_us <= 0:
        return 0
    return max(1, min(round(itr_us * 1000 / 256), EITR_INTERVAL_MASK))


class CauseIrqControl(IrqControl):
    """Mask and unmask rx queue 0's vector through its cause bit in IMC/IMS;
    an unmask first clears the cause left from the polling phase in ICR."""

    def __init__(self, regs) -> None:
        self.write = regs.write

    def mask(self, vector: int) -> None:
        self.write(IMC, ICR_RXQ0 << vector)

    def unmask(self, vector: int) -> None:
        self.write(ICR, ICR_RXQ0 << vector)
        self.write(IMS, ICR_RXQ0 << vector)


def enable(dev, itr_us: float = DEFAULT_ITR_US) -> Interrupts:
    """Give dev's rx queue its MSI-X vector (0) and eventfd."""
    regs = dev.regs

    def program(irq: Interrupts) -> None:
        (q,) = irq.queues                    # the driver opens one rx queue
        if q.vector >= MAX_VECTORS:
            raise ValueError(f"the 82574 has MSI-X vectors 0..{MAX_VECTORS - 1}, not {q.vector}")
        regs.set_flags(CTRL_EXT, CTRL_EXT_PBA_CLR)
        regs.update(IVAR, 0xF << IVAR_RXQ0_SHIFT, (q.vector | IVAR_VALID) << IVAR_RXQ0_SHIFT)
        regs.write(EITR(q.vector), eitr_value(itr_us))
        regs.write(ICR, ICR_RXQ0)            # nothing stale from before
        regs.write(EIAC, ICR_RXQ0)

    return intel_irq.enable(dev, CauseIrqControl(regs), program)
