"""Intel 82574 gigabit driver, "e1000e" (PCI 8086:10d3, QEMU's ``-device e1000e``).

Bring-up follows the 82574 datasheet, section 4.6 (software initialization
sequence): mask interrupts (4.6.1), global reset after the PCIe master
disable (4.6.2), link set-up through the copper PHY and statistics (the
two steps in between; their subsection numbers not checked), receive init
(4.6.5) and transmit init (4.6.6). Register names and bits are the
datasheet's (chapter 10); rings, the rx/tx fast path, link,
MAC, statistics and the stop sequence are the ones intel.py shares with
ixgbe and igb:
- rx: extended receive descriptors (RFCTL.EXSTEN; section 7.1, receive,
  subsection number not checked), whose read and
  write-back formats put the buffer address, the status/errors dword and
  the length where the advanced descriptors have them, so IntelRxQueue
  reads them unchanged;
- tx: the extended TCP/IP data descriptor (DEXT, DTYP 0001b; 7.2), the
  advanced data descriptor's dwords without PAYLEN: IntelTxQueue with
  TX_EXTENDED. (The legacy descriptor would fit too, but it puts CSO and
  CSS where the extended one has DTYP and POPTS; the extended one keeps
  the DCMD bits where the advanced one has them.)
- the 82574's queues have no enable bit (RXDCTL/TXDCTL bit 25 is reserved,
  and in TXDCTL part of LWTHRESH): the rings run with RCTL.EN and TCTL.EN
  (QUEUE_ENABLE = 0).

MSI-X interrupts (VFIO only): e1000e_irq.

One rx and one tx queue: the 82574's second pair needs RSS (its RETA names
the queue in bit 7 of each entry, unlike the 82576/82599) for rx, which is
not implemented (enable_rss raises RssConfigError).

QEMU's e1000e model (QEMU 10) is what the tests run on. Where it differs
from the datasheet, the driver does what the datasheet asks and stays
correct on the model:
- CTRL.RST resets the PHY registers too but leaves STATUS.LU set, with the
  PHY's autonegotiation not complete: the driver restarts autonegotiation
  (as on real copper), which takes the link down for 0.5 s of guest time.
- A ring transmits only while its TARC has the ENABLE bit (bit 10): the
  model checks it on every TDT write. Its reset value has it; the driver
  sets it anyway.
- GORC and GOTC count the 4 CRC bytes of every frame, as the datasheet says.
  Unlike QEMU 10's igb, its GPRC/GPTC are not refreshed from TPR/TPT: the
  counters read twice add up without reading TPR/TPT (tried: the hub test
  reads them between two runs), so the driver reads only what it reports.
- When the rx ring has no free descriptor the model stops taking frames and
  QEMU queues them in front of the NIC: MPC stays 0.
- RXCSUM's offloads (on after reset) make the model verify checksums in
  software for every frame; the driver turns them off (it reads none).
"""
from __future__ import annotations

import time
from typing import Dict, Optional, Sequence

from ..errors import PacketTooLarge, RssConfigError
from ..fastpath.intel import TX_EXTENDED
from ..interrupts import Interrupts
from . import e1000e_irq
from .intel import CopperPhyLink, IntelDevice, LinkRegs, StatsRegs

# --- registers (82574 datasheet, chapter 10) ---------------------------------
CTRL = 0x00000
STATUS = 0x00008
EECD = 0x00010
CTRL_EXT = 0x00018
MDIC = 0x00020
ICR = 0x000C0
IMS = 0x000D0
IMC = 0x000D8
RCTL = 0x00100
TCTL = 0x00400
TIPG = 0x00410
RXCSUM = 0x05000
RFCTL = 0x05008
RAL0 = 0x05400
RAH0 = 0x05404
def MTA(n: int) -> int: return 0x05200 + 4 * n      # multicast table, 128 registers
def TARC(n: int) -> int: return 0x03840 + 0x100 * n  # transmit arbitration count, queue n
def TXDCTL(n: int) -> int: return 0x03828 + 0x100 * n
# statistics, clear on read; the octet counters are (low, high) pairs
CRCERRS = 0x04000
MPC = 0x04010
GPRC = 0x04074
GPTC = 0x04080
GORCL = 0x04088
GORCH = 0x0408C
GOTCL = 0x04090
GOTCH = 0x04094
ROC = 0x040AC


# the ring registers: RDBAL at 0x02800 and TDBAL at 0x03800, queue 1 at +0x100,
# in the same order as the 82576's (QueueRegs.block)
def _rxq(n: int) -> int:
    return 0x02800 + 0x100 * n


def _txq(n: int) -> int:
    return 0x03800 + 0x100 * n


# --- bits ----------------------------------------------------------------------
CTRL_GIO_MASTER_DISABLE = 1 << 2
CTRL_RST = 1 << 26
STATUS_LU = 1 << 1
STATUS_SPEED_MASK = 0x3 << 6
STATUS_SPEED_MBITS = {0x0 << 6: 10, 0x1 << 6: 100, 0x2 << 6: 1000, 0x3 << 6: 1000}
STATUS_GIO_MASTER_ENABLE = 1 << 19
EECD_AUTO_RD = 1 << 9
IMC_ALL = 0x01FFFFFF                  # causes 24:0; 31:25 reserved
RCTL_EN = 1 << 1
RCTL_UPE = 1 << 3
RCTL_MPE = 1 << 4
RCTL_BAM = 1 << 15
RCTL_BSIZE_2048 = 0x0 << 16           # with RCTL.BSEX 0
RCTL_SECRC = 1 << 26
RFCTL_EXSTEN = 1 << 15                # extended rx descriptors
TCTL_EN = 1 << 1
TCTL_PSP = 1 << 3
TCTL_CT_15 = 0xF << 4                 # collision threshold (the datasheet's recommended 15)
TCTL_COLD_FULL_DUPLEX = 0x3F << 12    # collision distance for full duplex
TIPG_COPPER = 8 | 8 << 10 | 6 << 20   # IPGT 8, IPGR1 8, IPGR2 6: the datasheet's values for copper
TXDCTL_WTHRESH_1 = 1 << 16
TXDCTL_BIT22 = 1 << 22                # reserved, to be written 1 (as Linux's e1000e does)
TXDCTL_GRAN = 1 << 24                 # thresholds count descriptors
TARC_ENABLE = 1 << 10

NAMES: Dict[int, str] = {globals()[name]: name for name in (
    "CTRL", "STATUS", "EECD", "CTRL_EXT", "MDIC", "ICR", "IMS", "IMC", "RCTL", "TCTL", "TIPG", "RXCSUM", "RFCTL",
    "RAL0", "RAH0")}

# --- PCI ids --------------------------------------------------------------------
INTEL = 0x8086
DEVICE_IDS = {0x10D3: "82574L"}

MAX_QUEUES = 1
RESET_TIMEOUT = 1.0
MASTER_DISABLE_TIMEOUT = 0.1          # Linux's e1000e waits up to 80 ms
EEPROM_TIMEOUT = 0.05
LINK_TIMEOUT = 10.0                   # copper autonegotiation takes seconds on real PHYs


class E1000eDevice(CopperPhyLink, IntelDevice):
    """An 82574 NIC. Opened by ixypy.open(); do not construct directly."""

    driver_name = "e1000e"
    MAX_QUEUES = MAX_QUEUES
    LINK_TIMEOUT = LINK_TIMEOUT
    LINK = LinkRegs(STATUS, STATUS_LU, STATUS_SPEED_MASK, STATUS_SPEED_MBITS)
    # MPC: no room in the packet buffer; ROC, CRCERRS: frames dropped as
    # too long or with a bad CRC
    STATS = StatsRegs(rx_packets=GPRC, tx_packets=GPTC, rx_bytes=(GORCL, GORCH), tx_bytes=(GOTCL, GOTCH),
                      rx_dropped=[MPC], rx_errors=[ROC, CRCERRS])
    RAL0 = RAL0
    RAH0 = RAH0
    NAMES = NAMES
    QUEUE_ENABLE = 0                  # no per-queue enable: RCTL.EN / TCTL.EN
    TX_CMD_TYPE = TX_EXTENDED
    TX_PAYLEN = False
    rx_queue_block = staticmethod(_rxq)
    tx_queue_block = staticmethod(_txq)

    # --- bring-up steps, 4.6 (the sequence: IntelDevice._bring_up) ----------------

    def _disable_interrupts(self) -> None:
        """4.6.1: mask every cause (IMC), then read ICR to clear what is pending."""
        self.regs.write(IMC, IMC_ALL)
        self.regs.read(ICR)

    def _enable_interrupts(self, itr_us: Optional[float]) -> Interrupts:
        """MSI-X, one vector for the rx queue (e1000e_irq)."""
        return e1000e_irq.enable(self, e1000e_irq.DEFAULT_ITR_US if itr_us is None else itr_us)

    def _global_reset(self) -> None:
        """4.6.2: with rx and tx off, stop the NIC's PCIe master requests
        (CTRL.GIO_MASTER_DISABLE, until STATUS.GIO_MASTER_ENABLE reads 0),
        then CTRL.RST, which resets the MAC and self-clears; wait 1 ms more
        before touching registers."""
        self.regs.clear_flags(RCTL, RCTL_EN)
        self.regs.clear_flags(TCTL, TCTL_EN)
        self.regs.set_flags(CTRL, CTRL_GIO_MASTER_DISABLE)
        self.regs.wait_clear(STATUS, STATUS_GIO_MASTER_ENABLE, MASTER_DISABLE_TIMEOUT)
        self.regs.set_flags(CTRL, CTRL_RST)
        self.regs.wait_clear(CTRL, CTRL_RST, RESET_TIMEOUT)
        time.sleep(0.001)

    def _wait_reset_done(self) -> None:
        """The NIC reads its NVM (MAC address, defaults) after a reset and
        then sets EECD.AUTO_RD (QEMU's model has it set from the reset on)."""
        self.regs.wait_set(EECD, EECD_AUTO_RD, EEPROM_TIMEOUT)

    # _setup_link (the link step of 4.6, subsection number not checked; copper:
    # the PHY at address 1 through MDIC): CopperPhyLink

    def _init_rx(self) -> None:
        """4.6.5, with RCTL.EN still 0: an empty multicast table, extended
        descriptors (RFCTL.EXSTEN), no checksum offload, then RCTL: accept
        broadcast, strip the CRC, 2 KiB buffers, promiscuous as asked."""
        self._disable_rx()
        if self._rx_buffer_kib() > 2:
            raise PacketTooLarge(f"frames of {self.MAX_FRAME} bytes need more than the 82574's 2 KiB buffers",
                                 "open the device without jumbo frames")
        for n in range(128):
            self.regs.write(MTA(n), 0)
        self.regs.write(RFCTL, RFCTL_EXSTEN)
        self.regs.write(RXCSUM, 0)
        # RCTL.LPE is 0: the MAC refuses frames above MAX_FRAME (1522), so
        # the NIC never writes more than that into a buffer of 2 KiB declared
        # size; _rx_buffer_kib checked the buffers hold MAX_FRAME
        self.regs.write(RCTL, RCTL_BAM | RCTL_SECRC | RCTL_BSIZE_2048 | (RCTL_UPE | RCTL_MPE if self._promisc else 0))
        for n in range(self.num_rx_queues):
            self.rx_queues.append(self._setup_rx_ring(n))

    def _init_tx(self) -> None:
        """4.6.6: the ring, TXDCTL (descriptor granularity, write-back
        threshold 1, bit 22 set), the queue's TARC.ENABLE, the inter-packet
        gap for copper, TCTL: pad short frames, full-duplex collision
        settings; TCTL.EN once the ring is set."""
        for n in range(self.num_tx_queues):
            self.tx_queues.append(self._setup_tx_ring(n))
            self.regs.write(TXDCTL(n), TXDCTL_GRAN | TXDCTL_BIT22 | TXDCTL_WTHRESH_1)
            self.regs.set_flags(TARC(n), TARC_ENABLE)
        self.regs.write(TIPG, TIPG_COPPER)
        self.regs.write(TCTL, TCTL_PSP | TCTL_CT_15 | TCTL_COLD_FULL_DUPLEX)

    def _enable_rx(self) -> None:
        self.regs.set_flags(RCTL, RCTL_EN)

    def _disable_rx(self) -> None:
        self.regs.clear_flags(RCTL, RCTL_EN)

    def _enable_tx(self) -> None:
        self.regs.set_flags(TCTL, TCTL_EN)

    def _disable_queues(self) -> None:
        """No per-queue enable on the 82574: the transmit unit off (rx is
        already off), the global reset that follows does the rest."""
        self.regs.clear_flags(TCTL, TCTL_EN)

    # --- control -------------------------------------------------------------------

    @property
    def promisc(self) -> bool:
        return bool(self.regs.read(RCTL) & RCTL_UPE)

    def set_promisc(self, enabled: bool) -> None:
        """Unicast and multicast promiscuous (RCTL.UPE/MPE); the datasheet
        sets no condition on changing them while rx is enabled."""
        self.regs.update(RCTL, RCTL_UPE | RCTL_MPE, RCTL_UPE | RCTL_MPE if enabled else 0)
        self._promisc = enabled

    def enable_rss(self, queues: Optional[int] = None, key: Optional[bytes] = None,
                   reta: Optional[Sequence[int]] = None, ports: bool = True,
                   types: Optional[Sequence[str]] = None) -> None:
        raise RssConfigError("RSS is not implemented for the 82574 (e1000e): ixypy opens one rx queue on it",
                             "open it with rx_queues=1 and leave RSS off; the ixgbe and igb drivers have RSS")

    @property
    def rss_enabled(self) -> bool:
        return False
