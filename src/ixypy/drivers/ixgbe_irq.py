"""MSI-X interrupts of the 82599 (datasheet 7.3): one vector per rx queue.

Set-up, after the queues are up: the bus attaches one eventfd per vector
(MSI-X enabled in the PCI function), then GPIE selects MSI-X mode with PBA
support and auto-masking (EIAME), IVAR maps rx queue n's cause to vector n
(valid bit), EITR throttles each vector, EIAC auto-clears and EIAM auto-masks
the vector's cause when its message is sent. Every vector starts masked: the
polling policy in ixypy.interrupts unmasks (EIMS) a queue's vector when the
queue goes idle. Shutdown masks everything (EIMC, bit 31 reserved) and the
global reset clears the rest.
"""
from __future__ import annotations

from ..interrupts import Interrupts
from . import intel_irq

EICR = 0x00800
EIAC = 0x00810
EIMS = 0x00880
EIMC = 0x00888
EIAM = 0x00890
GPIE = 0x00898
GPIE_MSIX_MODE = 1 << 4
GPIE_EIAME = 1 << 30
GPIE_PBA_SUPPORT = 1 << 31
IVAR_ALLOC_VAL = 0x80            # per IVAR byte: bits 5:0 vector, bit 7 valid
EITR_INTERVAL_MASK = 0x0FF8      # bits 11:3, in 2.048 us units
EITR_UNIT_US = 2.048
EIMC_ALL = 0x7FFFFFFF            # bit 31 is reserved
DEFAULT_ITR_US = 10              # at most ~100k interrupts/s per queue


def EITR(v: int) -> int: return 0x00820 + 4 * v if v < 24 else 0x12300 + 4 * (v - 24)
def IVAR(n: int) -> int: return 0x00900 + 4 * n        # rx 2n, tx 2n, rx 2n+1, tx 2n+1
def EIMS_EX(n: int) -> int: return 0x00AA0 + 4 * n
def EIMC_EX(n: int) -> int: return 0x00AB0 + 4 * n
def EIAM_EX(n: int) -> int: return 0x00AD0 + 4 * n


def eitr_value(itr_us: float) -> int:
    """EITR for a minimum interval of itr_us between two messages (0: none)."""
    if itr_us <= 0:
        return 0
    units = max(1, min(round(itr_us / EITR_UNIT_US), EITR_INTERVAL_MASK >> 3))
    return units << 3


class IxgbeIrqControl(intel_irq.ExtendedIrqControl):
    """Vectors 0..15 through EIMS/EIMC/EICR, the others through the _EX registers."""

    def __init__(self, regs) -> None:
        # EIAM + GPIE.EIAME: the device masks a vector when it sends its message
        super().__init__(regs, EICR, EIMS, EIMC, auto_masks=True)

    def mask(self, vector: int) -> None:
        if vector < 16:
            super().mask(vector)
        else:
            self.write(EIMC_EX(vector // 32), 1 << (vector % 32))

    def unmask(self, vector: int) -> None:
        if vector < 16:
            super().unmask(vector)
        else:                                 # no EICR bit above 15: a stale cause fires once
            self.write(EIMS_EX(vector // 32), 1 << (vector % 32))


def enable(dev, itr_us: float = DEFAULT_ITR_US) -> Interrupts:
    """Give each of dev's rx queues its own MSI-X vector and eventfd."""
    regs = dev.regs

    def program(irq: Interrupts) -> None:
        regs.write(EIMC_EX(0), 0xFFFFFFFF)
        regs.write(EIMC_EX(1), 0xFFFFFFFF)
        regs.write(GPIE, regs.read(GPIE) | GPIE_MSIX_MODE | GPIE_PBA_SUPPORT | GPIE_EIAME)
        auto = 0
        for q in irq.queues:
            n, shift = q.queue // 2, 16 * (q.queue % 2)       # the rx byte of the queue's half
            regs.update(IVAR(n), 0xFF << shift, (q.vector | IVAR_ALLOC_VAL) << shift)
            regs.write(EITR(q.vector), eitr_value(itr_us))
            auto |= 1 << q.vector
        regs.write(EIAC, auto & 0xFFFF)
        regs.write(EIAM, auto & 0xFFFF)
        regs.write(EIAM_EX(0), auto & 0xFFFFFFFF)
        regs.write(EIAM_EX(1), auto >> 32)

    return intel_irq.enable(dev, IxgbeIrqControl(regs), program)
