"""Legacy virtio-net (PCI 1af4:1000), as QEMU and other hypervisors offer it.

Bring-up follows VirtIO 1.x, 3.1.2 (legacy interface: device initialization):
reset, ACKNOWLEDGE, DRIVER, feature negotiation, virtqueue set-up (4.1.5.1.3
legacy: QUEUE_SEL, QUEUE_NUM, QUEUE_PFN), DRIVER_OK. Registers are in I/O
port BAR0 with the layout of 4.1.4.8 (legacy interfaces: a note on PCI
device layout), each accessed with its exact width.

Features: only what the driver uses is asked for, nothing is required:
MAC (read the address), STATUS (link state), CTRL_VQ + CTRL_RX (promiscuous
mode through the control queue), ANY_LAYOUT (one descriptor per packet).
Never CSUM, GUEST_CSUM, MRG_RXBUF, GSO or EVENT_IDX: so the virtio_net_hdr
is the 10-byte one and notifications are suppressed by flags only.

Message framing is chosen once, at bring-up, from the negotiated features
(the queues are built for it, fastpath/virtio.pyx): with VIRTIO_F_ANY_LAYOUT
(QEMU offers it on every backend) the header sits in the buffer's headroom
right before the frame and one descriptor carries both (2.4.4 "Message
Framing" in VirtIO 1.0, 2.7.4 in 1.2); without it the legacy framing rule
(5.1.6; 2.4.4.3 "Legacy Interface: Message Framing") puts the header in a
descriptor of its own, the data in the next.

Queues: 0 = rx, 1 = tx, 2 = control. Their sizes are fixed by the device
(legacy devices do not let the driver choose), so num_rx_desc/num_tx_desc
are ignored; a 256-entry queue holds 256 packets with ANY_LAYOUT, 128
without (two descriptors each).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, List, Optional

from ..fastpath.batch import PacketBatch
from ..fastpath.mempool import Mempool
from ..fastpath.regs import PortIo
from ..fastpath.virtio import VirtioCtrlQueue, VirtioRxQueue, VirtioTxQueue, vring_size
from ..device import FCS_BYTES, Device, DeviceStats, format_mac
from ..errors import BarError, DeviceError, DeviceGone, DeviceTimeout, PacketTooLarge, QueueError, UnsupportedDevice
from ..interrupts import rx_wait
from ..pci import msix_enabled
from . import virtio_irq

if TYPE_CHECKING:
    from ..bus import Bus

VIRTIO_VENDOR = 0x1AF4
LEGACY_NET_DEVICE = 0x1000      # transitional / legacy network device (4.1.2.3)
MODERN_NET_DEVICE = 0x1041      # 0x1040 + device type 1: modern-only

# --- legacy PCI header (4.1.4.8), offset: width ------------------------------
HOST_FEATURES = 0x00     # 32, device features (bits 0..31)
GUEST_FEATURES = 0x04    # 32, driver features
QUEUE_PFN = 0x08         # 32, queue address >> 12
QUEUE_NUM = 0x0C         # 16, queue size (read-only in legacy)
QUEUE_SEL = 0x0E         # 16
QUEUE_NOTIFY = 0x10      # 16
DEVICE_STATUS = 0x12     # 8
ISR_STATUS = 0x13        # 8, clears on read: never read it by accident
CONFIG = 0x14            # device config without MSI-X
CONFIG_MSIX = 0x18       # with MSI-X enabled two 16-bit vector registers come first

# --- device status (2.1) ---------------------------------------------------------
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FAILED = 128
DEVICE_NEEDS_RESET = 64

# --- feature bits (5.1.3), as masks -------------------------------------------------
F_CSUM = 1 << 0
F_GUEST_CSUM = 1 << 1
F_MAC = 1 << 5
F_MRG_RXBUF = 1 << 15
F_STATUS = 1 << 16
F_CTRL_VQ = 1 << 17
F_CTRL_RX = 1 << 18
F_ANY_LAYOUT = 1 << 27
WANTED_FEATURES = F_MAC | F_STATUS | F_CTRL_VQ | F_CTRL_RX | F_ANY_LAYOUT

# --- device config (5.1.4) and control queue (5.1.6.5) ------------------------------
CONFIG_MAC = 0           # 6 bytes, read one by one (I/O ports take 1, 2 or 4 bytes)
CONFIG_STATUS = 6        # 16 bits, valid with F_STATUS
S_LINK_UP = 1
CTRL_RX = 0
CTRL_RX_PROMISC = 0
CTRL_OK = 0

RX_QUEUE, TX_QUEUE, CTRL_QUEUE = 0, 1, 2
PAGE = 4096
MAX_FRAME = 1514 + 4     # Ethernet frame with a VLAN tag, no CRC: no GSO is negotiated
LINK_SPEED = 1000        # legacy virtio-net reports no speed: a nominal 1 Gbit/s while up
CTRL_TIMEOUT = 1.0


def check_supported(vendor: int, device: int) -> None:
    """UnsupportedDevice with the reason for virtio devices ixypy cannot drive."""
    if vendor == VIRTIO_VENDOR and 0x1040 <= device <= 0x107F:
        kind = "virtio-net" if device == MODERN_NET_DEVICE else f"virtio device type {device - 0x1040}"
        raise UnsupportedDevice(
            f"PCI id {vendor:04x}:{device:04x} is a modern-only {kind} (VirtIO 1.x without the legacy interface): "
            f"ixypy drives legacy virtio-net (1af4:1000) only",
            "give the VM a legacy or transitional device, e.g. QEMU `-device virtio-net-pci,disable-modern=on`")


class VirtioDevice(Device):
    """A legacy virtio-net NIC. Opened by ixypy.open(); do not construct directly."""

    driver_name = "virtio"
    # a legacy device cannot negotiate VIRTIO_F_ACCESS_PLATFORM (6.1), so it
    # bypasses the IOMMU and uses physical addresses (QEMU does): under VFIO
    # the bus maps IOVA = physical, so its accesses are right either way
    dma_bypasses_iommu = True
    port: PortIo              # I/O-port BAR0, opened at bring-up

    def __init__(self, bus: "Bus", rx_queues: int = 1, tx_queues: int = 1, num_rx_desc: int = 0, num_tx_desc: int = 0,
                 mempool: Optional[Mempool] = None, promisc: bool = True, interrupts: bool = False,
                 itr_us: Optional[float] = None) -> None:
        if rx_queues != 1 or tx_queues != 1:
            bus.close()     # as a failed bring-up would: the caller gets no device to close
            raise QueueError(f"{rx_queues} rx and {tx_queues} tx queues asked for: legacy virtio-net without "
                             f"VIRTIO_NET_F_MQ has exactly one of each",
                             "open it with rx_queues=1, tx_queues=1")
        super().__init__(bus, rx_queues, tx_queues)
        self.rx_queues: List[VirtioRxQueue] = []
        self.tx_queues: List[VirtioTxQueue] = []
        self.ctrl: Optional[VirtioCtrlQueue] = None
        self.features = 0
        self.host_features = 0
        self._promisc: Optional[bool] = None
        self._mempool = mempool
        try:
            if interrupts:
                # before bring-up: enabling MSI-X moves the device config (virtio_irq)
                self.interrupts = virtio_irq.attach(self)
            self._bring_up(promisc)
        except BaseException:
            self.close()
            raise

    # --- bring-up (3.1.2 legacy) -----------------------------------------------------

    def _bring_up(self, promisc: bool) -> None:
        try:
            self.port = self.bus.ioport(0)
        except BarError as e:
            raise UnsupportedDevice(f"{self.address}: BAR0 is not an I/O-port BAR ({e.message}): not a legacy "
                                    f"virtio device", "ixypy drives only the legacy virtio interface (I/O BAR0)") from None
        self.config = CONFIG_MSIX if msix_enabled(self.bus) else CONFIG   # MSI-X on moves the config (4.1.4.8)
        self._reset()
        self.bus.set_bus_master(True)
        self._set_status(ACKNOWLEDGE)
        self._set_status(DRIVER)
        self._negotiate()
        if self.config == CONFIG_MSIX:
            # no config-change interrupt: link state is polled (4.1.5.1.2.1)
            virtio_irq.set_vector(self.port, virtio_irq.MSI_CONFIG_VECTOR, virtio_irq.NO_VECTOR, "config changes",
                                  self.address)
        self._setup_queues()
        self._set_status(DRIVER_OK)
        status = self.port.read8(DEVICE_STATUS)
        if status & (FAILED | DEVICE_NEEDS_RESET) or not status & DRIVER_OK:
            raise DeviceError(f"{self.address}: virtio device status {status:#x} after DRIVER_OK")
        self.rx_queues[0].fill()      # post every rx buffer, one notify (the device is live now)
        if self.features & F_CTRL_RX:
            self.set_promisc(promisc)
        else:
            self._promisc = None      # the device's own filter (QEMU: promiscuous) stays

    def _reset(self) -> None:
        """Writing 0 to the status resets the device (2.1, 4.1.4.8); read it back."""
        self.port.write8(DEVICE_STATUS, 0)
        if self.port.read8(DEVICE_STATUS) != 0:
            self.ensure_present()
            raise DeviceError(f"{self.address}: virtio device status did not read 0 after reset")

    def _set_status(self, bit: int) -> None:
        self.port.write8(DEVICE_STATUS, self.port.read8(DEVICE_STATUS) | bit)

    def _negotiate(self) -> None:
        """Accept what we use of what is offered; require nothing (5.1.3.1:
        CTRL_RX needs CTRL_VQ)."""
        self.host_features = self.port.read32(HOST_FEATURES)
        features = self.host_features & WANTED_FEATURES
        if not features & F_CTRL_VQ:
            features &= ~F_CTRL_RX
        self.port.write32(GUEST_FEATURES, features)
        self.features = features

    def _queue_size(self, index: int) -> int:
        self.port.write16(QUEUE_SEL, index)
        size = self.port.read16(QUEUE_NUM)
        if size == 0:
            raise DeviceError(f"{self.address}: virtqueue {index} has size 0: the device does not have it",
                              "a legacy virtio-net device has queues 0 (rx) and 1 (tx)")
        if size & (size - 1) or size < 4:
            raise DeviceError(f"{self.address}: virtqueue {index} has size {size}, not a power of two of at least 4")
        return size

    @property
    def any_layout(self) -> bool:
        """Whether VIRTIO_F_ANY_LAYOUT was negotiated: one descriptor per
        packet (header in the headroom + frame), else two."""
        return bool(self.features & F_ANY_LAYOUT)

    def _setup_queues(self) -> None:
        """All queues in one DMA-contiguous region, each page aligned (2.7.2),
        plus one page for the shared tx header (two-descriptor framing only)
        and the control buffers. The framing is fixed here, per queue."""
        indices = [RX_QUEUE, TX_QUEUE] + ([CTRL_QUEUE] if self.features & F_CTRL_VQ else [])
        sizes = {i: self._queue_size(i) for i in indices}
        offsets, total = {}, 0
        for i in indices:
            offsets[i] = total
            total += vring_size(sizes[i])
        extra = total
        self._rings = self.bus.dma.allocate(total + PAGE, contiguous=True)
        memory = self._rings.memory
        rx_pool = self._mempool if self._mempool is not None else self.mempool(max(1024, sizes[RX_QUEUE]))
        if rx_pool.buf_capacity < MAX_FRAME:
            raise PacketTooLarge(f"rx buffers hold {rx_pool.buf_capacity} bytes, frames can have {MAX_FRAME}",
                                 "use a mempool with entry_size 2048 or more")
        self.rx_mempools = [rx_pool]
        for i in indices:
            self.port.write16(QUEUE_SEL, i)
            pfn = self._rings.dma(offsets[i]) >> 12
            if pfn >> 32:
                raise DeviceError(f"{self.address}: ring at DMA address {pfn << 12:#x} is beyond the 44 bits QUEUE_PFN reaches")
            if i == RX_QUEUE:
                self.rx_queues.append(VirtioRxQueue(self.port, i, memory, offsets[i], sizes[i], rx_pool,
                                                    self.any_layout))
            elif i == TX_QUEUE:
                # two-descriptor framing: a zeroed 10-byte header at `extra`, shared by every packet
                self.tx_queues.append(VirtioTxQueue(self.port, i, memory, offsets[i], sizes[i],
                                                    self._rings.dma(extra), MAX_FRAME, self.any_layout))
            else:
                self.ctrl = VirtioCtrlQueue(self.port, i, memory, offsets[i], sizes[i], extra + 512,
                                            self._rings.dma(extra + 512))
            self.port.write32(QUEUE_PFN, pfn)       # the ring is zeroed by now
            if self.config == CONFIG_MSIX:          # rx on its vector when sleeping is wanted, else none
                vector = virtio_irq.RX_VECTOR if i == RX_QUEUE and self.interrupts is not None else virtio_irq.NO_VECTOR
                virtio_irq.set_vector(self.port, virtio_irq.MSI_QUEUE_VECTOR, vector, f"virtqueue {i}", self.address)

    # --- the data path ------------------------------------------------------------

    def rx_batch(self, queue_id: int, batch: PacketBatch, timeout: Optional[float] = None) -> int:
        q = self._queue(self.rx_queues, queue_id, "rx")
        if timeout is not None:
            return rx_wait(self, q, queue_id, batch, timeout)   # sleeps on MSI-X with interrupts=True
        return q.rx(batch)

    def tx_batch(self, queue_id: int, batch: PacketBatch) -> int:
        return self._queue(self.tx_queues, queue_id, "tx").tx(batch)

    def flush_tx(self, timeout: float = 1.0) -> None:
        """Wait until the device has used every tx chain handed to it."""
        deadline = time.monotonic() + timeout
        for q in self.tx_queues:
            q.reclaim()
            while q.in_flight:
                if time.monotonic() > deadline:
                    self.ensure_present()
                    raise DeviceTimeout(f"{self.address}: {q.in_flight} tx packets still not used by the device "
                                        f"after {timeout:g} s")
                time.sleep(0.0001)
                q.reclaim()

    def rx_queue(self, queue_id: int) -> VirtioRxQueue:
        return self._queue(self.rx_queues, queue_id, "rx")

    def tx_queue(self, queue_id: int) -> VirtioTxQueue:
        return self._queue(self.tx_queues, queue_id, "tx")

    # --- control --------------------------------------------------------------------

    @property
    def mac(self) -> str:
        """From the device config (valid with F_MAC, which QEMU always offers)."""
        return format_mac(bytes(self.port.read8(self.config + CONFIG_MAC + i) for i in range(6)))

    def link_up(self) -> bool:
        """Config status LINK_UP; without F_STATUS the link is taken as up (5.1.4.2)."""
        if not self.features & F_STATUS:
            return True
        return bool(self.port.read16(self.config + CONFIG_STATUS) & S_LINK_UP)

    def ensure_present(self) -> None:
        """A live device's status never has every bit set (2.1)."""
        if self.port.read8(DEVICE_STATUS) == 0xFF:
            raise DeviceGone(f"{self.address}: the virtio device stopped answering: its status reads 0xff")

    def link_speed(self) -> int:
        """LINK_SPEED (nominal 1000 Mbit/s: legacy virtio has no speed field) while up, else 0."""
        return LINK_SPEED if self.link_up() else 0

    @property
    def promisc(self) -> Optional[bool]:
        """Last mode set; None if the device has no CTRL_RX (its default filter applies)."""
        return self._promisc

    def set_promisc(self, enabled: bool) -> None:
        """VIRTIO_NET_CTRL_RX_PROMISC through the control queue (5.1.6.5.1)."""
        if self.ctrl is None or not self.features & F_CTRL_RX:
            raise UnsupportedDevice(f"{self.address}: the device offers no VIRTIO_NET_F_CTRL_RX: its receive filter "
                                    f"cannot be changed", "QEMU's virtio-net-pci offers it unless ctrl_rx=off")
        ack = self.ctrl.command(CTRL_RX, CTRL_RX_PROMISC, bytes([1 if enabled else 0]), CTRL_TIMEOUT)
        if ack != CTRL_OK:
            raise DeviceError(f"{self.address}: the device refused promiscuous {'on' if enabled else 'off'} (ack {ack})")
        self._promisc = enabled

    def stats(self) -> DeviceStats:
        """Software counters since open (virtio has no hardware counters).
        The queues count the frames' bytes as handed over, without an FCS;
        the bytes here add FCS_BYTES per frame, as DeviceStats defines them
        (a frame shorter than 60 bytes is counted unpadded). rx_dropped stays
        0: the device drops without telling; rx_errors counts used entries of
        impossible length."""
        rx, tx = self.rx_queues, self.tx_queues
        rx_packets, tx_packets = sum(q.packets for q in rx), sum(q.packets for q in tx)
        return DeviceStats(rx_packets=rx_packets, tx_packets=tx_packets,
                           rx_bytes=sum(q.bytes for q in rx) + FCS_BYTES * rx_packets,
                           tx_bytes=sum(q.bytes for q in tx) + FCS_BYTES * tx_packets,
                           rx_dropped=0, rx_errors=sum(q.errors for q in rx))

    # --- shutdown -------------------------------------------------------------------

    def _stop(self) -> None:
        """Reset (status 0: the device drops its queues, so DMA stops, and its
        MSI-X vectors return to NO_VECTOR), bus mastering off, then the
        buffers in the rings go back to their pools. Device.close then
        disables MSI-X and closes the eventfds."""
        if getattr(self, "port", None) is None:
            return      # BAR0 never opened: the device was not touched
        try:
            self.port.write8(DEVICE_STATUS, 0)
        finally:
            self.bus.set_bus_master(False)
            for q in self.rx_queues + self.tx_queues:
                q.close()
