"""Intel 82576 (and I350) gigabit driver, "igb".

Bring-up follows the 82576 datasheet, section 4.5 (software initialization):
mask interrupts, global reset, wait for the EEPROM auto-read, link set-up
(copper PHY autonegotiation through MDIC), statistics, rx and tx init,
enable queues, wait for link. Register names and bits are the datasheet's
(chapter 8); the rings, the rx/tx fast path, link, MAC, statistics and the
stop sequence are shared with ixgbe in intel.py.

QEMU's igb model (QEMU 10, 8086:10c9) is what the tests run on. Where it
differs from the datasheet, the driver does what the datasheet asks and
stays correct on the model:
- CTRL.RST resets the PHY's autonegotiation too: the link stays down until
  the driver restarts it (as on real copper).
- EECD.AUTO_RD is never set (see _wait_reset_done).
- GPRC/GORC and GPTC/GOTC are copies of TPR/TOR and TPT/TOT, refreshed on
  every packet: TPR/TOR/TPT/TOT are read (and so cleared) with them, or a
  clear of GPRC would be undone by the next packet (a frame arriving
  between the two reads can still be counted twice there).
- GORC and GOTC count the 4 CRC bytes of every frame, as the datasheet says.
- When no enabled rx queue has a free descriptor, the model does not drop:
  it stops taking frames and QEMU queues them in front of the NIC (a hub
  drops beyond its queue, uncounted), so MPC and RQDPC stay 0 there. With
  RSS, a frame whose own queue is full while another queue has room is
  dropped, and counted nowhere either.
- Ring registers exist for queues 0..7 only; the 82576 has 16.
- RSS is off unless RXCSUM.PCSD is set (on the 82576, PCSD only chooses
  whether the write-back carries the hash or the packet checksum):
  enable_rss sets it, as Linux's igb does. MRQC bit 21 (TCP/IPv6) is
  ignored: the model hashes TCP over IPv6 with its ports only under bit 18
  (TCP/IPv6 with extension headers), which enable_rss leaves off, so such
  frames are hashed by their addresses and reported as type ipv6.

Link set-up is for copper (the internal PHY through MDIC): the fiber and
SerDes 82576 variants (registered below, as Linux lists them) would need
the PCS link set-up instead, and fail here with an MDIC error.

The I350 (ids registered below) shares this register layout and data path;
what it would need beyond this driver: 8 queues, not 16; the PHY behind
MDICNFG (external MDIO) on some boards; PHY and EEPROM access guarded by
the SW_FW_SYNC semaphore it shares with firmware and the other ports (the
82576 has it too, unused here because only this driver touches the PHY);
energy-efficient Ethernet and DMA coalescing defaults that Linux turns off.
Untested on either: no hardware here.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

from ..errors import DeviceTimeout
from ..interrupts import Interrupts
from . import igb_irq
from .ieee1588 import I82576
from .intel import CopperPhyLink, IntelDevice, LinkRegs, StatsRegs

# --- registers (82576 datasheet, chapter 8) ---------------------------------
CTRL = 0x00000
STATUS = 0x00008
EECD = 0x00010
CTRL_EXT = 0x00018
MDIC = 0x00020
IMC = 0x000D8
RCTL = 0x00100
TCTL = 0x00400
EIMC = 0x01528
RAL0 = 0x05400
RAH0 = 0x05404
# statistics, clear on read (8.19); the octet counters are (low, high) pairs
CRCERRS = 0x04000
MPC = 0x04010
GPRC = 0x04074
GPTC = 0x04080
GORCL = 0x04088
GORCH = 0x0408C
GOTCL = 0x04090
GOTCH = 0x04094
ROC = 0x040AC
TORL = 0x040C0
TORH = 0x040C4
TOTL = 0x040C8
TOTH = 0x040CC
TPR = 0x040D0
TPT = 0x040D4


# Queue registers: 0x0C000 + 0x40 n (rx) and 0x0E000 + 0x40 n (tx) for all 16
# queues; queues 0..3 also answer at the 82575-compatible 0x02800/0x03800 +
# 0x100 n, the addresses Linux uses and the only ones QEMU's model decodes.
def _rxq(n: int) -> int:
    return 0x02800 + 0x100 * n if n < 4 else 0x0C000 + 0x40 * n


def _txq(n: int) -> int:
    return 0x03800 + 0x100 * n if n < 4 else 0x0E000 + 0x40 * n


def SRRCTL(n: int) -> int: return _rxq(n) + 0x0C
def RQDPC(n: int) -> int: return _rxq(n) + 0x30


# --- bits ----------------------------------------------------------------------
CTRL_RST = 1 << 26
STATUS_LU = 1 << 1
STATUS_SPEED_MASK = 0x3 << 6
STATUS_SPEED_MBITS = {0x0 << 6: 10, 0x1 << 6: 100, 0x2 << 6: 1000, 0x3 << 6: 1000}
EECD_AUTO_RD = 1 << 9
RAH_AV = 1 << 31
IMC_ALL = 0xFFFFFFFF
EIMC_ALL = 0xC1FFFFFF                 # vectors 24:0, TCP timer 30, other 31; 29:25 reserved
RCTL_EN = 1 << 1
RCTL_UPE = 1 << 3
RCTL_MPE = 1 << 4
RCTL_BAM = 1 << 15
RCTL_SECRC = 1 << 26
TCTL_EN = 1 << 1
TCTL_PSP = 1 << 3
TCTL_CT_15 = 0xF << 4                 # collision threshold (the datasheet's recommended 15)
TCTL_COLD_FULL_DUPLEX = 0x3F << 12    # collision distance for full duplex
SRRCTL_DESCTYPE_ADV_ONEBUF = 0x1 << 25
SRRCTL_DROP_EN = 1 << 31

NAMES: Dict[int, str] = {globals()[name]: name for name in (
    "CTRL", "STATUS", "EECD", "CTRL_EXT", "MDIC", "IMC", "RCTL", "TCTL", "EIMC", "RAL0", "RAH0")}

# --- PCI ids (as Linux's igb and DPDK's e1000 base code list them) -------------
INTEL = 0x8086
DEVICE_IDS = {
    0x10C9: "82576", 0x10E6: "82576 fiber", 0x10E7: "82576 SerDes", 0x10E8: "82576 quad copper",
    0x1526: "82576 quad copper ET2", 0x150A: "82576 NS", 0x1518: "82576 NS SerDes", 0x150D: "82576 SerDes quad",
    0x1521: "I350 copper", 0x1522: "I350 fiber", 0x1523: "I350 SerDes", 0x1524: "I350 SGMII",
}

MAX_QUEUES = 16
RESET_TIMEOUT = 1.0
EEPROM_TIMEOUT = 0.05
LINK_TIMEOUT = 10.0      # copper autonegotiation takes seconds on real PHYs


class IgbDevice(CopperPhyLink, IntelDevice):
    """An 82576-family NIC. Opened by ixypy.open(); do not construct directly."""

    driver_name = "igb"
    MAX_QUEUES = MAX_QUEUES
    LINK_TIMEOUT = LINK_TIMEOUT
    LINK = LinkRegs(STATUS, STATUS_LU, STATUS_SPEED_MASK, STATUS_SPEED_MBITS)
    # MPC: no room in the packet buffer; RQDPC: dropped for want of a
    # descriptor (SRRCTL.DROP_EN). TPR/TOR/TPT/TOT: see the module notes.
    STATS = StatsRegs(rx_packets=GPRC, tx_packets=GPTC, rx_bytes=(GORCL, GORCH), tx_bytes=(GOTCL, GOTCH),
                      rx_dropped=[MPC] + [RQDPC(n) for n in range(MAX_QUEUES)], rx_errors=[ROC, CRCERRS],
                      also_clear=[TPR, TORL, TORH, TPT, TOTL, TOTH])
    RAL0 = RAL0
    RAH0 = RAH0
    NAMES = NAMES
    rx_queue_block = staticmethod(_rxq)
    tx_queue_block = staticmethod(_txq)
    # RSS (7.1.1.7): MRQC's Multiple Receive Queues Enable bits 2:0, 010b
    # RSS only; RETA entries name one of 8 queues in bits 2:0 (8.10)
    RSS_MAX_QUEUES = 8
    MRQC_MRQE_MASK = 0x7
    MRQC_RSS_ONLY = 0x2
    RETA_QUEUE_MASK = 0x7
    CLOCK = I82576

    # --- bring-up steps, 4.5 (the sequence: IntelDevice._bring_up) ----------------

    def _disable_interrupts(self) -> None:
        """4.5.1: mask every interrupt cause, legacy (IMC) and extended (EIMC)."""
        self.regs.write(IMC, IMC_ALL)
        self.regs.write(EIMC, EIMC_ALL)

    def _enable_interrupts(self, itr_us: Optional[float]) -> Interrupts:
        """MSI-X, one vector per rx queue (igb_irq)."""
        return igb_irq.enable(self, igb_irq.DEFAULT_ITR_US if itr_us is None else itr_us)

    def _global_reset(self) -> None:
        """4.5.2: CTRL.RST resets the MAC (rings, filters, RSS off) and
        self-clears when done; wait 1 ms more before touching registers."""
        self.regs.set_flags(CTRL, CTRL_RST)
        self.regs.wait_clear(CTRL, CTRL_RST, RESET_TIMEOUT)
        time.sleep(0.001)

    def _enable_rx(self) -> None:
        self.regs.set_flags(RCTL, RCTL_EN)

    def _disable_rx(self) -> None:
        self.regs.clear_flags(RCTL, RCTL_EN)

    def _enable_tx(self) -> None:
        self.regs.set_flags(TCTL, TCTL_EN)      # 4.5.10: after the queues are enabled

    def _wait_reset_done(self) -> None:
        """The NIC reads its EEPROM (MAC address, defaults) after a reset and
        then sets EECD.AUTO_RD. QEMU 10's model never sets it (EECD reads
        0x1110), so, as Linux's igb does, a missing AUTO_RD is not fatal once
        the auto-read's result is there: receive address 0 marked valid."""
        try:
            self.regs.wait_set(EECD, EECD_AUTO_RD, EEPROM_TIMEOUT)
        except DeviceTimeout:
            if not self.regs.read(RAH0) & RAH_AV:
                raise

    # _setup_link (4.5.7, copper: the PHY through MDIC, 8.2.4): CopperPhyLink

    def _init_rx(self) -> None:
        """4.5.9, with RCTL.EN still 0: accept broadcast, strip the CRC,
        promiscuous as asked; one advanced one-buffer ring per queue."""
        self._disable_rx()
        self.regs.write(RCTL, RCTL_BAM | RCTL_SECRC | (RCTL_UPE | RCTL_MPE if self._promisc else 0))
        # RCTL.LPE is 0: the MAC refuses frames above MAX_FRAME, one buffer holds any other
        bsize_kib = self._rx_buffer_kib()
        for n in range(self.num_rx_queues):
            self.rx_queues.append(self._setup_rx_ring(n))
            # drop when the queue has no descriptor instead of stalling the others
            self.regs.write(SRRCTL(n), SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN | bsize_kib)

    def _init_tx(self) -> None:
        """4.5.10: pad short frames, full-duplex collision settings; TCTL.EN
        once the queues are enabled."""
        self.regs.write(TCTL, TCTL_PSP | TCTL_CT_15 | TCTL_COLD_FULL_DUPLEX)
        for n in range(self.num_tx_queues):
            self.tx_queues.append(self._setup_tx_ring(n))

    # --- control -------------------------------------------------------------------

    @property
    def promisc(self) -> bool:
        return bool(self.regs.read(RCTL) & RCTL_UPE)

    def set_promisc(self, enabled: bool) -> None:
        """Unicast and multicast promiscuous (RCTL.UPE/MPE). Unlike the
        82599's FCTRL, the 82576 datasheet sets no condition on changing them
        while rx is enabled: one write of RCTL, as Linux's igb does."""
        self.regs.update(RCTL, RCTL_UPE | RCTL_MPE, RCTL_UPE | RCTL_MPE if enabled else 0)
        self._promisc = enabled
