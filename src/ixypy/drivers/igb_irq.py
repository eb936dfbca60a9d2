"""MSI-X interrupts of the 82576 (datasheet 7.3): one vector per rx queue.

Set-up, after the queues are up: the bus attaches one eventfd per vector
(MSI-X enabled in the PCI function); GPIE selects MSI-X mode (one EICR bit
per vector instead of legacy causes; written first: the other extended
registers take vector bits only in that mode), with PBA support and NSICR;
IVAR maps rx queue n's cause to vector n; EITR throttles each vector; EIAC
clears a vector's cause when its message is sent. Every vector starts
masked: the policy in ixypy.interrupts unmasks (EIMS) a queue's vector when
the queue goes idle. Shutdown masks everything (EIMC) and the global reset
clears the rest.

The 82576's IVAR (8.8.15) is a table of 8 registers by 4 bytes: queue q's
rx entry is byte 0 (q < 8) or byte 2 (q >= 8) of IVAR[q % 8], its tx entry
bytes 1 or 3; each byte is a vector number (bits 4:0) and a valid bit (7).
(The 82599's IVAR pairs queues 2n and 2n+1 in one register instead.)

Auto-masking (GPIE.EIAME with EIAM) is not used: QEMU 10's igb model does
not implement it (a message leaves EIMS as it was), so the driver masks a
vector itself once it woke up: one register write, right on both.
"""
from __future__ import annotations

from typing import Tuple

from ..interrupts import Interrupts
from . import intel_irq

GPIE = 0x01514
GPIE_NSICR = 1 << 0
GPIE_MSIX_MODE = 1 << 4
GPIE_PBA_SUPPORT = 1 << 31
EIMS = 0x01524
EIMC = 0x01528
EIAC = 0x0152C
EICR = 0x01580
IVAR_VALID = 0x80
IVAR_VECTOR_MASK = 0x1F
EITR_INTERVAL_MASK = 0x7FFC        # bits 14:2, in 1 us units
MAX_VECTORS = 25                   # vectors 0..24 (EIMS bits 24:0)
DEFAULT_ITR_US = 10                # at most ~100k interrupts/s per queue


def EITR(v: int) -> int: return 0x01680 + 4 * v
def IVAR(n: int) -> int: return 0x01700 + 4 * n


def ivar_rx_entry(queue: int) -> Tuple[int, int]:
    """(register, bit shift) of rx queue's IVAR byte."""
    return IVAR(queue % 8), 16 * (queue // 8)


def eitr_value(itr_us: float) -> int:
    """EITR for a minimum interval of itr_us between two messages (0: none)."""
    if itr_us <= 0:
        return 0
    return max(1, min(round(itr_us), EITR_INTERVAL_MASK >> 2)) << 2


def enable(dev, itr_us: float = DEFAULT_ITR_US) -> Interrupts:
    """Give each of dev's rx queues its own MSI-X vector and eventfd."""
    regs = dev.regs

    def program(irq: Interrupts) -> None:
        regs.write(GPIE, regs.read(GPIE) | GPIE_MSIX_MODE | GPIE_PBA_SUPPORT | GPIE_NSICR)
        auto = 0
        for q in irq.queues:
            if q.vector >= MAX_VECTORS:
                raise ValueError(f"the 82576 has MSI-X vectors 0..{MAX_VECTORS - 1}, not {q.vector}")
            reg, shift = ivar_rx_entry(q.queue)
            regs.update(reg, 0xFF << shift, (q.vector | IVAR_VALID) << shift)
            regs.write(EITR(q.vector), eitr_value(itr_us))
            auto |= 1 << q.vector
        regs.write(EICR, auto)                 # nothing stale from before
        regs.write(EIAC, auto)

    return intel_irq.enable(dev, intel_irq.ExtendedIrqControl(regs, EICR, EIMS, EIMC), program)
