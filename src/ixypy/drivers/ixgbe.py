"""Intel 82599 / X520, X540 and X550 (ixgbe) driver.

Bring-up follows the 82599 datasheet, section 4.6.3 (initialization
sequence): mask interrupts, global reset, wait for the EEPROM auto-read and
DMA init, link set-up, statistics, rx and tx init (4.6.7, 4.6.8), enable
queues, wait for link. Register names and bits are the datasheet's.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

from ..interrupts import Interrupts
from . import ixgbe_irq
from .ixgbe_irq import EICR, EIMC, EIMS   # interrupt registers: defined with the MSI-X set-up
from .ieee1588 import I82599
from .intel import IntelDevice, LinkRegs, StatsRegs

# --- registers (82599 datasheet, chapter 8) ---------------------------------
CTRL = 0x00000
STATUS = 0x00008
CTRL_EXT = 0x00018
EEC = 0x10010
RXCTRL = 0x03000
RDRXCTL = 0x02F00
HLREG0 = 0x04240
AUTOC = 0x042A0
LINKS = 0x042A4
RTTDCS = 0x04900
DMATXCTL = 0x04A80
FCTRL = 0x05080
DTXMXSZRQ = 0x08100
RAL0 = 0x0A200
RAH0 = 0x0A204
# statistics, clear on read (8.2.3.23)
GPRC = 0x04074
GPTC = 0x04080
GORCL = 0x04088
GORCH = 0x0408C
GOTCL = 0x04090
GOTCH = 0x04094
ROC = 0x040AC


def RXPBSIZE(n: int) -> int: return 0x03C00 + 4 * n
def TXPBSIZE(n: int) -> int: return 0x0CC00 + 4 * n
def RXMPC(n: int) -> int: return 0x03FA0 + 4 * n
def QPRDC(n: int) -> int: return 0x01430 + 0x40 * n     # 16 counters, queues mapped by RQSMR


# queue n's block of registers (layout: intel.QueueRegs.block)
def _rxq(n: int) -> int:
    return 0x01000 + 0x40 * n if n < 64 else 0x0D000 + 0x40 * (n - 64)


def _txq(n: int) -> int:
    return 0x06000 + 0x40 * n


def DCA_RXCTRL(n: int) -> int: return _rxq(n) + 0x0C
def SRRCTL(n: int) -> int: return _rxq(n) + 0x14
def TXDCTL(n: int) -> int: return _txq(n) + 0x28


# --- bits ----------------------------------------------------------------------
CTRL_LRST = 1 << 3
CTRL_RST = 1 << 26
CTRL_RST_MASK = CTRL_LRST | CTRL_RST
CTRL_EXT_NS_DIS = 1 << 16
EIMC_ALL = 0x7FFFFFFF                 # bit 31 is reserved
EEC_ARD = 1 << 9
RDRXCTL_CRCSTRIP = 1 << 1
RDRXCTL_DMAIDONE = 1 << 3
RDRXCTL_RSCFRSTSIZE = 0x1F << 17      # must be 0
RDRXCTL_RSCACKC = 1 << 25             # must be 1
RDRXCTL_FCOE_WRFIX = 1 << 26          # must be 1
RXCTRL_RXEN = 1 << 0
HLREG0_TXCRCEN = 1 << 0
HLREG0_RXCRCSTRP = 1 << 1
HLREG0_TXPADEN = 1 << 10
AUTOC_LMS_MASK = 0x7 << 13
AUTOC_LMS_10G_SERIAL = 0x3 << 13
AUTOC_10G_PMA_PMD_MASK = 0x3 << 7
AUTOC_10G_XAUI = 0x0 << 7
AUTOC_RESTART_AN = 1 << 12
LINKS_UP = 1 << 30
LINKS_SPEED_MASK = 0x3 << 28
LINKS_SPEED_MBITS = {0x1 << 28: 100, 0x2 << 28: 1000, 0x3 << 28: 10000}
RTTDCS_ARBDIS = 1 << 6
DMATXCTL_TE = 1 << 0
FCTRL_MPE = 1 << 8
FCTRL_UPE = 1 << 9
FCTRL_BAM = 1 << 10
SRRCTL_BSIZEPACKET_MASK = 0x1F        # 1 KiB units
SRRCTL_DESCTYPE_MASK = 0x7 << 25
SRRCTL_DESCTYPE_ADV_ONEBUF = 0x1 << 25
SRRCTL_DROP_EN = 1 << 28
DCA_RXCTRL_RX_DESC_WRO_EN = 1 << 12   # must be cleared (datasheet: reserved, write 0)
TXDCTL_THRESH_MASK = 0x7F | 0x7F << 8 | 0x7F << 16
TXDCTL_PTHRESH_36_HTHRESH_8_WTHRESH_4 = 36 | 8 << 8 | 4 << 16
RAH_AV = 1 << 31

RXPBSIZE_128KB = 128 << 10
TXPBSIZE_40KB = 40 << 10
DTXMXSZRQ_MAX = 0xFFF                 # bits 15:12 reserved

NAMES: Dict[int, str] = {globals()[name]: name for name in (
    "CTRL", "STATUS", "CTRL_EXT", "EICR", "EIMS", "EIMC", "EEC", "RXCTRL", "RDRXCTL", "HLREG0", "AUTOC",
    "LINKS", "RTTDCS", "DMATXCTL", "FCTRL", "DTXMXSZRQ", "RAL0", "RAH0")}

# --- PCI ids --------------------------------------------------------------------
INTEL = 0x8086
DEVICE_IDS = {
    0x10F7: "82599 KX4", 0x10F8: "82599 combo backplane", 0x10F9: "82599 CX4", 0x10FB: "82599 SFP+ (X520)",
    0x10FC: "82599 XAUI/BX4", 0x1507: "82599 KX4 mezzanine", 0x1514: "82599 KR", 0x1517: "82599 SFP+ EM",
    0x151C: "82599 10GBASE-T", 0x1529: "82599 SFP+ FCoE", 0x152A: "82599 backplane FCoE", 0x154D: "82599 SFP+ SF2",
    0x1557: "82599 SFP+ SF quad", 0x1558: "82599 QSFP+ SF quad",
    0x1528: "X540-AT2", 0x1560: "X540-AT1",
    0x1563: "X550-T2", 0x15D1: "X550-T1", 0x15AA: "X550EM_x KX4", 0x15AB: "X550EM_x KR", 0x15AC: "X550EM_x SFP+",
    0x15AD: "X550EM_x 10GBASE-T", 0x15AE: "X550EM_x 1GBASE-T",
}

MAX_QUEUES = 64
RESET_TIMEOUT = 1.0
EEPROM_TIMEOUT = 1.0
DMA_INIT_TIMEOUT = 1.0
LINK_TIMEOUT = 10.0     # a real 82599 took up to 8 s in Snabb's measurements


class IxgbeDevice(IntelDevice):
    """An 82599-family NIC. Opened by ixypy.open(); do not construct directly."""

    driver_name = "ixgbe"
    MAX_QUEUES = MAX_QUEUES
    LINK_TIMEOUT = LINK_TIMEOUT
    LINK = LinkRegs(LINKS, LINKS_UP, LINKS_SPEED_MASK, LINKS_SPEED_MBITS)
    # 8.2.3.23; the low half of an octet counter is read before the high half
    STATS = StatsRegs(rx_packets=GPRC, tx_packets=GPTC, rx_bytes=(GORCL, GORCH), tx_bytes=(GOTCL, GOTCH),
                      rx_dropped=[QPRDC(n) for n in range(16)] + [RXMPC(n) for n in range(8)], rx_errors=[ROC])
    RAL0 = RAL0
    RAH0 = RAH0
    NAMES = NAMES
    rx_queue_block = staticmethod(_rxq)
    tx_queue_block = staticmethod(_txq)
    # RSS (7.1.2.8): MRQC.MRQE bits 3:0, 0001b RSS only (8.2.3.7.12); RETA
    # entries name one of 16 queues in bits 3:0 (8.2.3.7.14)
    RSS_MAX_QUEUES = 16
    MRQC_MRQE_MASK = 0xF
    MRQC_RSS_ONLY = 0x1
    RETA_QUEUE_MASK = 0xF
    CLOCK = I82599

    # --- bring-up steps, 4.6.3 (the sequence: IntelDevice._bring_up) -------------

    def _disable_interrupts(self) -> None:
        self.regs.write(EIMC, EIMC_ALL)

    def _enable_interrupts(self, itr_us: Optional[float]) -> Interrupts:
        return ixgbe_irq.enable(self, ixgbe_irq.DEFAULT_ITR_US if itr_us is None else itr_us)

    def _global_reset(self) -> None:
        """4.6.3.2: CTRL.RST (and link reset), wait for it to self-clear, then 10 ms."""
        self.regs.write(CTRL, CTRL_RST_MASK)
        self.regs.wait_clear(CTRL, CTRL_RST_MASK, RESET_TIMEOUT)
        time.sleep(0.01)

    def _wait_reset_done(self) -> None:
        """4.6.3: the EEPROM auto-read, then DMA initialization."""
        self.regs.wait_set(EEC, EEC_ARD, EEPROM_TIMEOUT)
        self.regs.wait_set(RDRXCTL, RDRXCTL_DMAIDONE, DMA_INIT_TIMEOUT)

    def _enable_rx(self) -> None:
        self.regs.set_flags(RXCTRL, RXCTRL_RXEN)   # 4.6.7: rx on once every queue is set

    def _disable_rx(self) -> None:
        self.regs.clear_flags(RXCTRL, RXCTRL_RXEN)

    def _enable_tx(self) -> None:
        """Nothing left: DMATXCTL.TE went on before the queues (4.6.8)."""

    def _setup_link(self) -> None:
        """4.6.4: 10G serial link mode, XAUI PMA/PMD, restart autonegotiation."""
        self.regs.update(AUTOC, AUTOC_LMS_MASK | AUTOC_10G_PMA_PMD_MASK, AUTOC_LMS_10G_SERIAL | AUTOC_10G_XAUI)
        self.regs.set_flags(AUTOC, AUTOC_RESTART_AN)

    def _init_rx(self) -> None:
        """4.6.7, with rx still disabled."""
        self._disable_rx()
        # one packet buffer of 128 KiB, the other seven unused
        self.regs.write(RXPBSIZE(0), RXPBSIZE_128KB)
        for n in range(1, 8):
            self.regs.write(RXPBSIZE(n), 0)
        # strip the CRC in the MAC and in DMA (both must agree)
        self.regs.set_flags(HLREG0, HLREG0_RXCRCSTRP)
        self.regs.update(RDRXCTL, RDRXCTL_RSCFRSTSIZE, RDRXCTL_CRCSTRIP | RDRXCTL_RSCACKC | RDRXCTL_FCOE_WRFIX)
        # accept broadcast; promiscuous as asked: FCTRL may change only while RXCTRL.RXEN is 0
        self.regs.update(FCTRL, FCTRL_UPE | FCTRL_MPE, FCTRL_BAM | (FCTRL_UPE | FCTRL_MPE if self._promisc else 0))
        # with HLREG0.JUMBOEN clear the MAC refuses frames above MAX_FRAME,
        # so the NIC never writes more than that into a buffer
        bsize_kib = self._rx_buffer_kib()
        for n in range(self.num_rx_queues):
            self.rx_queues.append(self._setup_rx_ring(n))
            # advanced one-buffer descriptors; drop when no descriptor is free
            # instead of blocking the packet buffer for every queue
            self.regs.write(SRRCTL(n), SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN | bsize_kib)
            self.regs.clear_flags(DCA_RXCTRL(n), DCA_RXCTRL_RX_DESC_WRO_EN)
        self.regs.set_flags(CTRL_EXT, CTRL_EXT_NS_DIS)

    def _init_tx(self) -> None:
        """4.6.8."""
        self.regs.set_flags(HLREG0, HLREG0_TXCRCEN | HLREG0_TXPADEN)
        self.regs.write(TXPBSIZE(0), TXPBSIZE_40KB)
        for n in range(1, 8):
            self.regs.write(TXPBSIZE(n), 0)
        self.regs.write(DTXMXSZRQ, DTXMXSZRQ_MAX)
        self.regs.clear_flags(RTTDCS, RTTDCS_ARBDIS)
        for n in range(self.num_tx_queues):
            self.tx_queues.append(self._setup_tx_ring(n))
            self.regs.update(TXDCTL(n), TXDCTL_THRESH_MASK, TXDCTL_PTHRESH_36_HTHRESH_8_WTHRESH_4)
        self.regs.write(DMATXCTL, DMATXCTL_TE)   # before any TXDCTL.ENABLE

    # --- control -------------------------------------------------------------------

    @property
    def promisc(self) -> bool:
        return bool(self.regs.read(FCTRL) & FCTRL_UPE)

    def set_promisc(self, enabled: bool) -> None:
        """FCTRL may change only while rx is disabled: stop rx around the change."""
        self._disable_rx()
        self.regs.update(FCTRL, FCTRL_UPE | FCTRL_MPE, FCTRL_UPE | FCTRL_MPE if enabled else 0)
        self._enable_rx()
        self._promisc = enabled
