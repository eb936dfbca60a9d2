"""What the Intel NICs with advanced descriptors share (82599/X540/X550 and
82576/I350), and the 82574 with its extended descriptors of the same
layout: descriptor rings in DMA memory, queue enable with a timed wait,
the rx/tx fast path (IntelRxQueue/IntelTxQueue in ixypy.fastpath.intel), register
helpers, the device life cycle (bring-up guarded by close, the stop
sequence), link, MAC and clear-on-read statistics. A driver supplies its
register offsets and bits as data (LinkRegs, StatsRegs, RAL0/RAH0, NAMES)
and its bring-up steps; where a family differs in the queues themselves it
sets a hook (QUEUE_ENABLE, TX_CMD_TYPE, TX_PAYLEN) rather than its own copy."""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple, Type

from ..fastpath.batch import PacketBatch
from ..fastpath.intel import TX_ADVANCED, IntelRxQueue, IntelTxQueue
from ..fastpath.mempool import Mempool
from ..fastpath.regs import Bar
from ..device import Device, DeviceStats, format_mac
from ..errors import (DeviceError, DeviceGone, DeviceTimeout, InterruptsUnavailable, IxyError, LinkDown, PacketTooLarge, QueueError,
                      RssConfigError)
from ..interrupts import Interrupts, rx_wait
from ..memory import DmaRegion
from .ieee1588 import ClockRegs, Ieee1588Clock

if TYPE_CHECKING:
    from ..bus import Bus

DESC_SIZE = 16
RING_ALIGN = 128     # descriptor rings: 128-byte aligned, length a multiple of 128


ALL_ONES = 0xFFFFFFFF


class Registers:
    """32-bit register access with the read-modify-write and wait helpers
    bring-up needs. Every wait has a timeout and names the register. A read
    of all ones, what a PCIe read of a device that is gone returns, raises
    DeviceGone if the presence register (one that never reads all ones on a
    live device) reads so too."""

    def __init__(self, bar: Bar, names: Callable[[int], str], presence: int) -> None:
        self.bar = bar
        self._read32 = bar.read32
        self.write = bar.write32
        self.name_of = names
        self.presence = presence

    def read(self, reg: int) -> int:
        value = self._read32(reg)
        if value == ALL_ONES:
            self.ensure_present()
        return value

    def ensure_present(self) -> None:
        if self._read32(self.presence) == ALL_ONES:
            raise DeviceGone(f"the NIC stopped answering: {self.name_of(self.presence)} reads {ALL_ONES:#x}")

    def set_flags(self, reg: int, flags: int) -> None:
        self.write(reg, self.read(reg) | flags)

    def clear_flags(self, reg: int, flags: int) -> None:
        self.write(reg, self.read(reg) & ~flags & 0xFFFFFFFF)

    def update(self, reg: int, clear: int, set_: int) -> None:
        self.write(reg, (self.read(reg) & ~clear & 0xFFFFFFFF) | set_)

    def wait(self, reg: int, mask: int, value: int, timeout: float, error: Type[IxyError] = DeviceTimeout) -> float:
        """Poll until reg & mask == value; returns seconds waited."""
        start = time.monotonic()
        delay = 1e-5
        while self.read(reg) & mask != value:
            waited = time.monotonic() - start
            if waited > timeout:
                raise error(f"{self.name_of(reg)} (offset {reg:#x}) did not reach {value:#x} under mask {mask:#x} "
                            f"within {timeout:g} s (reads {self.read(reg):#010x})")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        return time.monotonic() - start

    def wait_set(self, reg: int, mask: int, timeout: float, error: Type[IxyError] = DeviceTimeout) -> float:
        return self.wait(reg, mask, mask, timeout, error)

    def wait_clear(self, reg: int, mask: int, timeout: float, error: Type[IxyError] = DeviceTimeout) -> float:
        return self.wait(reg, mask, 0, timeout, error)


@dataclass(frozen=True)
class QueueRegs:
    """Offsets of one ring's registers."""

    bal: int
    bah: int
    len: int
    head: int
    tail: int
    ctl: int

    @classmethod
    def block(cls, base: int) -> "QueueRegs":
        """A queue's registers from its block's base: the layout is the same
        on the 82599 (8.2.3.8, 8.2.3.9) and the 82576 (8.10, 8.12) for rx
        (RDBAL, RDBAH, RDLEN, RDH, RDT, RXDCTL) and tx (TDBAL ... TXDCTL)."""
        return cls(bal=base, bah=base + 0x04, len=base + 0x08, head=base + 0x10, tail=base + 0x18, ctl=base + 0x28)


#: the datasheets' names of the QueueRegs fields
QUEUE_REG_NAMES = {
    "rx": {"bal": "RDBAL", "bah": "RDBAH", "len": "RDLEN", "head": "RDH", "tail": "RDT", "ctl": "RXDCTL"},
    "tx": {"bal": "TDBAL", "bah": "TDBAH", "len": "TDLEN", "head": "TDH", "tail": "TDT", "ctl": "TXDCTL"},
}


# --- receive-side scaling: registers both families have at the same offsets
# (82599 8.2.3.7.12-15, 82576 8.10) and MRQC's hash-field bits, also shared
MRQC = 0x05818
RXCSUM = 0x05000
#: RXCSUM.PCSD, packet checksum disable (RXCSUM at 0x05000 on both
#: families): the rx write-back's dword 1 then carries the RSS hash instead
#: of the IP identification and packet checksum, which share it
RXCSUM_PCSD = 1 << 13
def RETA(n: int) -> int: return 0x05C00 + 4 * n     # 32 registers, 4 one-byte entries each, entry 4n in bits 7:0
def RSSRK(n: int) -> int: return 0x05C80 + 4 * n    # 10 registers, key byte 4n in bits 7:0


#: MRQC's hash-field bits by hash type (the same on both families); the
#: IPv6 types with extension headers (bits 18, 19, 24) are left off
MRQC_RSS_FIELDS = {"tcp-ipv4": 1 << 16, "ipv4": 1 << 17, "ipv6": 1 << 20, "tcp-ipv6": 1 << 21,
                   "udp-ipv4": 1 << 22, "udp-ipv6": 1 << 23}
RSS_ADDRESS_TYPES = ("ipv4", "ipv6")
RSS_PORT_TYPES = ("tcp-ipv4", "udp-ipv4", "tcp-ipv6", "udp-ipv6")

RSS_KEY_LEN = 40
RETA_ENTRIES = 128
#: the default RSS key: the one of Microsoft's RSS verification suite (and of
#: both datasheets' examples), so hashes can be checked against published values
RSS_DEFAULT_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c"
                                "6a42b73bbeac01fa")

#: the RSS type a write-back reports in bits 3:0 of its first dword (both families)
RSS_TYPES = {0x0: None, 0x1: "tcp-ipv4", 0x2: "ipv4", 0x3: "tcp-ipv6", 0x4: "ipv6-ex", 0x5: "ipv6",
             0x6: "tcp-ipv6-ex", 0x7: "udp-ipv4", 0x8: "udp-ipv6", 0x9: "udp-ipv6-ex"}


def default_reta(queues: int) -> List[int]:
    """The redirection table that spreads hashes round-robin over queues."""
    return [i % queues for i in range(RETA_ENTRIES)]


@dataclass(frozen=True)
class LinkRegs:
    """Where a family reports its link: register, link-up bit, speed field."""

    reg: int
    up: int
    speed_mask: int
    speeds_mbits: Dict[int, int]     # speed field value -> Mbit/s


@dataclass(frozen=True)
class StatsRegs:
    """A family's clear-on-read counters. An octet counter is a (low, high)
    pair, read low first. `also_clear` are read only to clear them."""

    rx_packets: int
    tx_packets: int
    rx_bytes: Tuple[int, int]
    tx_bytes: Tuple[int, int]
    rx_dropped: Sequence[int]
    rx_errors: Sequence[int]
    also_clear: Sequence[int] = ()


class CopperPhyLink:
    """Link set-up through the internal copper PHY, for the gigabit families
    whose MAC reaches the PHY through MDIC at 0x00020 with the same fields
    (82576 8.2.4, 82574 chapter 10, MDIC: data 15:0, PHY register 20:16, PHY address
    25:21, opcode 27:26, ready 28, error 30) and whose CTRL has SLU, FRCSPD
    and FRCDPX at bits 6, 11, 12. Mixed into an IntelDevice (uses self.regs)."""

    CTRL = 0x00000
    MDIC = 0x00020
    CTRL_SLU = 1 << 6
    CTRL_FRCSPD = 1 << 11
    CTRL_FRCDPX = 1 << 12
    MDIC_DATA_MASK = 0xFFFF
    MDIC_REG_SHIFT = 16
    MDIC_PHY_SHIFT = 21
    MDIC_OP_WRITE = 0x1 << 26
    MDIC_OP_READ = 0x2 << 26
    MDIC_READY = 1 << 28
    MDIC_ERROR = 1 << 30
    MDIC_TIMEOUT = 0.1
    PHY_ADDR = 1                       # the internal copper PHY
    PHY_CTRL = 0                       # IEEE control register
    PHY_STATUS = 1                     # IEEE status register
    MII_SR_AUTONEG_COMPLETE = 1 << 5
    MII_CR_RESTART_AUTO_NEG = 1 << 9
    MII_CR_POWER_DOWN = 1 << 11
    MII_CR_AUTO_NEG_EN = 1 << 12
    regs: Registers

    def _setup_link(self) -> None:
        """Copper: the MAC takes speed and duplex from the PHY (nothing
        forced) and sets link up; the PHY, powered up, autonegotiates. A
        restart takes the link down for the whole negotiation (0.5 s on
        QEMU), so it is skipped when the PHY reports autonegotiation complete."""
        self.regs.update(self.CTRL, self.CTRL_FRCSPD | self.CTRL_FRCDPX, self.CTRL_SLU)
        phy_ctrl = self._phy_read(self.PHY_CTRL)
        wanted = (phy_ctrl | self.MII_CR_AUTO_NEG_EN) & ~self.MII_CR_POWER_DOWN
        if wanted != phy_ctrl or not self._phy_read(self.PHY_STATUS) & self.MII_SR_AUTONEG_COMPLETE:
            self._phy_write(self.PHY_CTRL, wanted | self.MII_CR_RESTART_AUTO_NEG)

    def _mdic(self, command: int) -> int:
        self.regs.write(self.MDIC, command)
        self.regs.wait_set(self.MDIC, self.MDIC_READY, self.MDIC_TIMEOUT)
        value = self.regs.read(self.MDIC)
        if value & self.MDIC_ERROR:
            raise DeviceError(f"MDIC reports an error for PHY command {command:#010x} (reads {value:#010x})")
        return value & self.MDIC_DATA_MASK

    def _phy_read(self, reg: int) -> int:
        return self._mdic(self.MDIC_OP_READ | self.PHY_ADDR << self.MDIC_PHY_SHIFT | reg << self.MDIC_REG_SHIFT)

    def _phy_write(self, reg: int, value: int) -> None:
        self._mdic(self.MDIC_OP_WRITE | self.PHY_ADDR << self.MDIC_PHY_SHIFT | reg << self.MDIC_REG_SHIFT | value)


class IntelDevice(Device):
    """Queue management, the data path and the life cycle shared by ixgbe and igb.

    A family sets the class data below and implements the bring-up steps
    _bring_up calls, _disable_rx, the queue register layout, promisc and
    set_promisc."""

    #: RXDCTL.ENABLE / TXDCTL.ENABLE (82599, 82576); 0 for a family whose
    #: queues have no enable bit (82574: the rings run with RCTL.EN/TCTL.EN)
    QUEUE_ENABLE = 1 << 25
    QUEUE_ENABLE_TIMEOUT = 1.0
    MAX_QUEUES: int
    LINK_TIMEOUT: float
    LINK: LinkRegs
    STATS: StatsRegs
    RAL0: int
    RAH0: int
    MAX_FRAME = 1522            # without jumbo frames: 1518 + a VLAN tag
    STATUS = 0x00008            # device status, never all ones (82599 8.2.3.1.2, 82576 8.2.2)
    #: the tx data descriptor's DCMD/DTYP (IntelTxQueue's cmd_type) and
    #: whether it carries PAYLEN: advanced data descriptors here
    TX_CMD_TYPE = TX_ADVANCED
    TX_PAYLEN = True
    #: where the IEEE 1588 time sync registers are (ieee1588.ClockRegs), or
    #: None for a family whose clock ixypy does not drive
    CLOCK: Optional[ClockRegs] = None
    NAMES: Dict[int, str] = {}
    _ring_memory: DmaRegion       # every ring, allocated at bring-up (_allocate_rings)

    def __init__(self, bus: "Bus", rx_queues: int = 1, tx_queues: int = 1, num_rx_desc: int = 512,
                 num_tx_desc: int = 512, mempool: Optional[Mempool] = None, promisc: bool = True,
                 link_timeout: Optional[float] = None, interrupts: bool = False,
                 itr_us: Optional[float] = None) -> None:
        for kind, n in (("rx", rx_queues), ("tx", tx_queues)):
            if n > self.MAX_QUEUES:
                raise QueueError(f"{n} {kind} queues asked for, this driver supports at most {self.MAX_QUEUES}")
        for kind, n in (("rx", num_rx_desc), ("tx", num_tx_desc)):
            if n < 8 or n > 4096 or n & (n - 1):
                raise QueueError(f"{kind} ring size {n} must be a power of two from 8 to 4096")
        super().__init__(bus, rx_queues, tx_queues)
        self.num_rx_desc = num_rx_desc
        self.num_tx_desc = num_tx_desc
        self.rx_queues: List[IntelRxQueue] = []
        self.tx_queues: List[IntelTxQueue] = []
        self._totals = DeviceStats()
        self._promisc = promisc
        try:
            self.regs = Registers(bus.bar(0), self.register_name, self.STATUS)
            # a pool per rx queue (a pool serves one thread: the workers of
            # apps.run_loops each run one queue), together at least the 4096
            # buffers one pool had, each four rings' worth: its own ring, a
            # forwarder's tx ring and batch; a mempool given is the caller's
            # to share
            self.rx_mempools = [self._rx_pool(mempool) if mempool is not None else
                                self.mempool(max(4096 // rx_queues, 4 * num_rx_desc)) for _ in range(rx_queues)]
            self._bring_up(self.LINK_TIMEOUT if link_timeout is None else link_timeout)
            if interrupts:
                self.interrupts = self._enable_interrupts(itr_us)
        except BaseException:
            self.close()
            raise

    # per-family register layout: where queue n's block of registers starts
    @staticmethod
    @abc.abstractmethod
    def rx_queue_block(n: int) -> int:
        """Offset of rx queue n's register block."""

    @staticmethod
    @abc.abstractmethod
    def tx_queue_block(n: int) -> int:
        """Offset of tx queue n's register block."""

    def rx_queue_regs(self, n: int) -> QueueRegs:
        return QueueRegs.block(self.rx_queue_block(n))

    def tx_queue_regs(self, n: int) -> QueueRegs:
        return QueueRegs.block(self.tx_queue_block(n))

    # --- bring-up: the sequence both datasheets give (82599 4.6.3, 82576 4.5) ----

    def _bring_up(self, link_timeout: float) -> None:
        self.bus.set_bus_master(True)
        self._disable_interrupts()
        self._global_reset()
        self._disable_interrupts()          # the reset re-enables the defaults
        self._wait_reset_done()
        self._setup_link()
        self._read_stats()                  # clear the counters: they count from here
        self._allocate_rings()
        self._init_rx()
        self._init_tx()
        for n in range(self.num_rx_queues):
            self._start_rx_queue(n)
        self._enable_rx()                   # once every rx queue is set
        for n in range(self.num_tx_queues):
            self._start_tx_queue(n)
        self._enable_tx()
        self.wait_for_link(link_timeout)

    # the steps a family implements
    @abc.abstractmethod
    def _disable_interrupts(self) -> None:
        """Mask every interrupt cause."""

    def _enable_interrupts(self, itr_us: Optional[float]) -> Interrupts:
        """MSI-X per rx queue, at most one interrupt per itr_us (None: the family's default)."""
        raise InterruptsUnavailable(f"interrupts are not implemented for {self.driver_name} yet",
                                    "open it with interrupts=False (the default) and poll")

    @abc.abstractmethod
    def _global_reset(self) -> None:
        """Reset the whole device (registers to their defaults)."""

    @abc.abstractmethod
    def _wait_reset_done(self) -> None:
        """Wait for what the NIC does after a reset (EEPROM auto-read, ...)."""

    @abc.abstractmethod
    def _setup_link(self) -> None:
        """Start link establishment (autonegotiation or the fixed mode)."""

    @abc.abstractmethod
    def _init_rx(self) -> None:
        """Rx with rx disabled: filters, CRC stripping, one ring per queue."""

    @abc.abstractmethod
    def _init_tx(self) -> None:
        """Tx with tx disabled: one ring per queue, thresholds."""

    @abc.abstractmethod
    def _enable_rx(self) -> None:
        """Turn the receive unit on (after every rx queue is set)."""

    @abc.abstractmethod
    def _disable_rx(self) -> None:
        """Turn the receive unit off."""

    @abc.abstractmethod
    def _enable_tx(self) -> None:
        """Turn the transmit unit on."""

    def register_name(self, offset: int) -> str:
        for n in range(self.MAX_QUEUES):
            for kind, regs in (("rx", self.rx_queue_regs(n)), ("tx", self.tx_queue_regs(n))):
                for field, name in QUEUE_REG_NAMES[kind].items():
                    if getattr(regs, field) == offset:
                        return f"{name}[{n}]"
        return self.NAMES.get(offset, f"register {offset:#x}")

    def _rx_buffer_kib(self) -> int:
        """Rx buffer size in KiB for SRRCTL.BSIZEPACKET: one frame of up to
        MAX_FRAME per buffer (the MAC refuses larger ones without jumbo frames)."""
        capacity = min(pool.buf_capacity for pool in self.rx_mempools)
        if capacity < self.MAX_FRAME:
            raise PacketTooLarge(f"rx buffers hold {capacity} bytes, frames can have {self.MAX_FRAME}",
                                 "use a mempool with entry_size 2048 or more")
        return (self.MAX_FRAME + 1023) // 1024

    # --- rings ----------------------------------------------------------------

    def _allocate_rings(self) -> None:
        """One contiguous DMA region holding every ring, each 128-byte aligned."""
        sizes = [self.num_rx_desc * DESC_SIZE] * self.num_rx_queues + [self.num_tx_desc * DESC_SIZE] * self.num_tx_queues
        self._ring_memory = self.bus.dma.allocate(sum(sizes), contiguous=True)
        self._ring_offsets: List[int] = []
        offset = 0
        for size in sizes:
            self._ring_offsets.append(offset)
            offset += (size + RING_ALIGN - 1) // RING_ALIGN * RING_ALIGN

    def _program_ring(self, regs: QueueRegs, offset: int, num_desc: int) -> None:
        dma = self._ring_memory.dma(offset)
        self.regs.write(regs.bal, dma & 0xFFFFFFFF)
        self.regs.write(regs.bah, dma >> 32)
        self.regs.write(regs.len, num_desc * DESC_SIZE)

    def _setup_rx_ring(self, n: int) -> IntelRxQueue:
        regs = self.rx_queue_regs(n)
        offset = self._ring_offsets[n]
        self._program_ring(regs, offset, self.num_rx_desc)
        return IntelRxQueue(self.regs.bar, regs.tail, self._ring_memory.memory, offset, self.num_rx_desc, self.rx_mempools[n])

    def _setup_tx_ring(self, n: int) -> IntelTxQueue:
        regs = self.tx_queue_regs(n)
        offset = self._ring_offsets[self.num_rx_queues + n]
        self._program_ring(regs, offset, self.num_tx_desc)
        return self._tx_ring(IntelTxQueue(self.regs.bar, regs.tail, self._ring_memory.memory, offset,
                                          self.num_tx_desc, self.TX_CMD_TYPE, self.TX_PAYLEN))

    def _start_rx_queue(self, n: int) -> None:
        """Buffers into every descriptor, head to 0 while the queue is still
        disabled, enable, then hand all descriptors but one to the NIC."""
        q, regs = self.rx_queues[n], self.rx_queue_regs(n)
        tail = q.fill()
        self.regs.write(regs.head, 0)
        self._enable_queue(regs)
        self.regs.write(regs.tail, tail)

    def _start_tx_queue(self, n: int) -> None:
        regs = self.tx_queue_regs(n)
        self.regs.write(regs.head, 0)
        self.regs.write(regs.tail, 0)
        self._enable_queue(regs)

    def _enable_queue(self, regs: QueueRegs) -> None:
        """Set the queue's enable bit and wait for it to read 1 (none to set
        when QUEUE_ENABLE is 0)."""
        if self.QUEUE_ENABLE:
            self.regs.set_flags(regs.ctl, self.QUEUE_ENABLE)
            self.regs.wait_set(regs.ctl, self.QUEUE_ENABLE, self.QUEUE_ENABLE_TIMEOUT)

    def _disable_queues(self) -> None:
        """Clear every queue's enable bit and wait for it to read 0 (a family
        without QUEUE_ENABLE overrides this)."""
        if not self.QUEUE_ENABLE:
            return
        for regs in [self.rx_queue_regs(n) for n in range(len(self.rx_queues))] + \
                    [self.tx_queue_regs(n) for n in range(len(self.tx_queues))]:
            self.regs.clear_flags(regs.ctl, self.QUEUE_ENABLE)
            self.regs.wait_clear(regs.ctl, self.QUEUE_ENABLE, self.QUEUE_ENABLE_TIMEOUT)

    def _close_queues(self) -> None:
        """After DMA stopped: ring buffers back to their pools, queues and
        registers unusable (a late call raises instead of touching freed memory)."""
        for q in self.rx_queues + self.tx_queues:
            q.close()
        self.regs.bar.detach()

    def flush_tx(self, timeout: float = 1.0) -> None:
        """Wait for each tx queue's head to reach its tail: the NIC fetched
        every descriptor handed to it."""
        for n in range(len(self.tx_queues)):
            regs = self.tx_queue_regs(n)
            tail = self.regs.read(regs.tail)
            self.regs.wait(regs.head, 0xFFFFFFFF, tail, timeout)

    # --- the data path ------------------------------------------------------

    def rx_batch(self, queue_id: int, batch: PacketBatch, timeout: Optional[float] = None) -> int:
        q = self._queue(self.rx_queues, queue_id, "rx")
        self._check_batch(batch, self.num_rx_desc)
        if timeout is not None:
            return rx_wait(self, q, queue_id, batch, timeout)   # sleeps on the interrupt, or polls
        return q.rx(batch)

    def tx_batch(self, queue_id: int, batch: PacketBatch) -> int:
        q = self._queue(self.tx_queues, queue_id, "tx")
        self._check_batch(batch, self.num_tx_desc)
        return q.tx(batch)

    def rx_queue(self, queue_id: int) -> IntelRxQueue:
        """The queue object itself, for loops that skip the per-call checks."""
        return self._queue(self.rx_queues, queue_id, "rx")

    def tx_queue(self, queue_id: int) -> IntelTxQueue:
        return self._queue(self.tx_queues, queue_id, "tx")

    # --- receive-side scaling (82599 7.1.2.8, 82576 7.1.1.7) -------------------
    # A family sets: RSS_MAX_QUEUES (what a RETA entry can name),
    # MRQC_MRQE_MASK and MRQC_RSS_ONLY (MRQC's queue-mode field and its
    # "RSS only" value), RETA_QUEUE_MASK (the entry bits that name the queue).
    RSS_MAX_QUEUES: int
    MRQC_MRQE_MASK: int
    MRQC_RSS_ONLY: int
    RETA_QUEUE_MASK: int

    def enable_rss(self, queues: Optional[int] = None, key: Optional[bytes] = None,
                   reta: Optional[Sequence[int]] = None, ports: bool = True,
                   types: Optional[Sequence[str]] = None) -> None:
        """Spread received IPv4/IPv6 flows over rx queues 0..queues-1 (default:
        every rx queue opened) by the Toeplitz hash of their addresses (and
        TCP/UDP ports with ports=True) under key (default RSS_DEFAULT_KEY),
        through the 128-entry redirection table reta (default round-robin).
        types (names of MRQC_RSS_FIELDS) replaces the hash types ports
        selects. Frames without a hash type (not IP) stay on queue 0. Each
        rx queue then leaves the hash and the RSS type in the packet's
        buffer (ops.rss_hashes, ops.rss_types). RssConfigError for settings
        the device cannot take."""
        queues, key, reta = self._check_rss(queues, key, reta)
        fields = self._rss_fields(RSS_ADDRESS_TYPES + (RSS_PORT_TYPES if ports else ()) if types is None else types)
        self._write_rss_key(key)
        self._write_reta(reta)
        # the hash in the write-back, as Linux's igb and ixgbe set it; QEMU's
        # igb model (hw/net/igb_core.c) does no RSS at all without PCSD
        self.regs.set_flags(RXCSUM, RXCSUM_PCSD)
        self._enable_mrqc(fields)
        for q in self.rx_queues:
            q.set_rss_hash(True)

    def disable_rss(self) -> None:
        """Every frame to queue 0 again (MRQC queue mode 0), the packet
        checksum back in the write-back (RXCSUM.PCSD 0, its reset value)."""
        self.regs.write(MRQC, 0)
        self.regs.clear_flags(RXCSUM, RXCSUM_PCSD)
        for q in self.rx_queues:
            q.set_rss_hash(False)

    @property
    def rss_enabled(self) -> bool:
        return self.regs.read(MRQC) & self.MRQC_MRQE_MASK == self.MRQC_RSS_ONLY

    def _check_rss(self, queues: Optional[int], key: Optional[bytes],
                   reta: Optional[Sequence[int]]) -> Tuple[int, bytes, List[int]]:
        queues = self.num_rx_queues if queues is None else queues
        if not 1 <= queues <= self.num_rx_queues:
            raise RssConfigError(f"RSS over {queues} queues asked for, the device was opened with "
                                 f"{self.num_rx_queues} rx queues",
                                 f"open it with ixypy.open(..., rx_queues={max(queues, 1)})")
        if queues > self.RSS_MAX_QUEUES:
            raise RssConfigError(f"RSS over {queues} queues asked for, a {self.driver_name} redirection table "
                                 f"entry names at most {self.RSS_MAX_QUEUES}",
                                 f"use at most {self.RSS_MAX_QUEUES} queues for RSS")
        key = RSS_DEFAULT_KEY if key is None else bytes(key)
        if len(key) != RSS_KEY_LEN:
            raise RssConfigError(f"RSS key of {len(key)} bytes, the hash takes {RSS_KEY_LEN}",
                                 f"pass a {RSS_KEY_LEN}-byte key, or none for the default")
        reta = default_reta(queues) if reta is None else [int(e) for e in reta]
        if len(reta) != RETA_ENTRIES:
            raise RssConfigError(f"redirection table of {len(reta)} entries, the device has {RETA_ENTRIES}",
                                 f"pass {RETA_ENTRIES} queue numbers (repeat a shorter table to fill it)")
        bad = [e for e in reta if not 0 <= e < queues]
        if bad:
            raise RssConfigError(f"redirection table entry {bad[0]} is not one of the {queues} RSS queues",
                                 f"entries run from 0 to {queues - 1}")
        return queues, key, reta

    @staticmethod
    def _rss_fields(types: Sequence[str]) -> int:
        unknown = sorted(set(types) - set(MRQC_RSS_FIELDS))
        if unknown:
            raise RssConfigError(f"unknown RSS hash type {unknown[0]!r}",
                                 f"the types are {', '.join(MRQC_RSS_FIELDS)}")
        fields = 0
        for name in types:
            fields |= MRQC_RSS_FIELDS[name]
        return fields

    def _write_rss_key(self, key: bytes) -> None:
        """RSSRK: ten registers, key byte 0 in bits 7:0 of the first."""
        for n in range(RSS_KEY_LEN // 4):
            self.regs.write(RSSRK(n), int.from_bytes(key[4 * n:4 * n + 4], "little"))

    def _write_reta(self, reta: Sequence[int]) -> None:
        """RETA: 32 registers of four one-byte entries, entry 4n in bits 7:0;
        the queue in the family's index bits of each entry."""
        for n in range(RETA_ENTRIES // 4):
            value = 0
            for j in range(4):
                value |= (reta[4 * n + j] & self.RETA_QUEUE_MASK) << (8 * j)
            self.regs.write(RETA(n), value)

    def _enable_mrqc(self, fields: int) -> None:
        """MRQC: RSS only, with the hash types in fields (written last, once
        key and table are in place)."""
        self.regs.write(MRQC, self.MRQC_RSS_ONLY | fields)

    # --- control ----------------------------------------------------------------

    def ieee1588(self) -> Ieee1588Clock:
        """The NIC's IEEE 1588 clock and time latches (not yet enabled):
        hardware time stamps for IntelTxQueue.tx_timestamped sends and PTP
        frames received (ixypy.drivers.ieee1588, ixypy.latency)."""
        if self.CLOCK is None:
            return super().ieee1588()
        return Ieee1588Clock(self.regs, self.address, self.CLOCK)

    def ensure_present(self) -> None:
        self.regs.ensure_present()

    def link_speed(self) -> int:
        value = self.regs.read(self.LINK.reg)
        if not value & self.LINK.up:
            return 0
        return self.LINK.speeds_mbits.get(value & self.LINK.speed_mask, 0)

    def wait_for_link(self, timeout: Optional[float] = None) -> int:
        """Wait for the link-up bit; returns the speed in Mbit/s. LinkDown
        (naming the register) after timeout seconds."""
        self.regs.wait_set(self.LINK.reg, self.LINK.up, self.LINK_TIMEOUT if timeout is None else timeout,
                           error=LinkDown)
        return self.link_speed()

    @property
    def mac(self) -> str:
        """Receive address 0, which the NIC loads from its EEPROM."""
        low, high = self.regs.read(self.RAL0), self.regs.read(self.RAH0)
        return format_mac(low.to_bytes(4, "little") + (high & 0xFFFF).to_bytes(2, "little"))

    def _read_stats(self) -> DeviceStats:
        """Read (and so clear) the hardware counters."""
        r, regs = self.regs.read, self.STATS
        for reg in regs.also_clear:
            r(reg)
        rx_bytes = r(regs.rx_bytes[0])
        rx_bytes |= r(regs.rx_bytes[1]) << 32
        tx_bytes = r(regs.tx_bytes[0])
        tx_bytes |= r(regs.tx_bytes[1]) << 32
        return DeviceStats(rx_packets=r(regs.rx_packets), tx_packets=r(regs.tx_packets),
                           rx_bytes=rx_bytes, tx_bytes=tx_bytes,
                           rx_dropped=sum(r(reg) for reg in regs.rx_dropped),
                           rx_errors=sum(r(reg) for reg in regs.rx_errors))

    def stats(self) -> DeviceStats:
        """Counters since open. The hardware's clear on read, so they are
        accumulated here; rx_errors adds the frames the driver dropped for
        spanning several descriptors."""
        self._totals = self._totals + self._read_stats()
        return replace(self._totals, rx_errors=self._totals.rx_errors + sum(q.dropped_multidesc for q in self.rx_queues))

    # --- shutdown ---------------------------------------------------------------

    def _stop(self) -> None:
        """Stop all DMA: rx off, queues off, a global reset, bus mastering off;
        then the buffers left in the rings go back to their pools."""
        if getattr(self, "regs", None) is None:
            return      # failed before the BAR was mapped: the device was never touched
        try:
            try:
                self._disable_rx()
                self._disable_queues()
            finally:
                self._disable_interrupts()
                self._global_reset()
        except DeviceGone:
            pass        # nothing answers, nothing to stop on the device: the memory is released below
        finally:
            self.bus.set_bus_master(False)
            self._close_queues()
