"""virtio-net (PCI 1af4:1000 transitional or legacy, 1af4:1041 modern), as
QEMU and other hypervisors offer it, through its VirtIO 1.x interface or
the legacy one (drivers/virtio_pci.py chooses: 1.x whenever the function
has its capabilities).

Bring-up follows VirtIO 1.x, 3.1.1 (device initialization): reset,
ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK (1.x only; read back:
the device may refuse the set), virtqueue set-up (4.1.5.1.3), DRIVER_OK.

Features: only what the driver uses is asked for, nothing is required:
MAC (read the address), STATUS (link state), CTRL_VQ + CTRL_RX (promiscuous
mode through the control queue); on the legacy interface ANY_LAYOUT (one
descriptor per packet); on the 1.x interface VERSION_1 (which the device
must offer there, and which implies the free layout: 2.7.4) and
ACCESS_PLATFORM when offered (6.1: the device's DMA then goes through the
IOMMU, so under VFIO the driver's buffers are mapped at IOVAs and no root
is needed; without it the device uses physical addresses); EVENT_IDX when
offered (2.7.10: the driver notifies only when its new avail entries pass
the device's avail_event, and asks for interrupts by used_event; QEMU's
virtio-net then took 205 to 256 packets a notify, against 30 to 40 without
it, in a TCG guest at the same packet rate within its noise).
Never CSUM, GUEST_CSUM, MRG_RXBUF or GSO: so the virtio_net_hdr is the
10-byte legacy one or the 12-byte one of VERSION_1.

Message framing is chosen once, at bring-up, from the negotiated features
(the queues are built for it, fastpath/virtio.pyx): with VIRTIO_F_ANY_LAYOUT
or VERSION_1 the header sits in the buffer's headroom right before the
frame and one descriptor carries both (2.4.4 "Message Framing" in VirtIO
1.0, 2.7.4 in 1.2); without either the legacy framing rule (5.1.6;
2.4.4.3 "Legacy Interface: Message Framing") puts the header in a
descriptor of its own, the data in the next.

Queues: 0 = rx, 1 = tx, 2 = control. A legacy device fixes their sizes, so
num_rx_desc/num_tx_desc are ignored there; the 1.x interface lets the
driver choose (a power of two, capped at the device's maximum; 0: the
maximum; QEMU's is 256 unless rx_queue_size/tx_queue_size say more). A
256-entry queue holds 256 packets with one descriptor each, 128 with two.
"""
from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, List, Optional, Union

from ..fastpath.batch import PacketBatch
from ..fastpath.mempool import Mempool
from ..fastpath.virtio import (VirtioCtrlQueue, VirtioRxQueue, VirtioTxQueue, vring_avail_offset, vring_size,
                               vring_used_offset)
from ..device import FCS_BYTES, Device, DeviceStats, format_mac
from ..errors import DeviceError, DeviceGone, DeviceTimeout, PacketTooLarge, QueueError, UnsupportedDevice
from ..interrupts import rx_wait
from . import virtio_irq
from .virtio_pci import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FAILED, FEATURES_OK, Transport,
                         transport_for)

if TYPE_CHECKING:
    from ..bus import Bus

VIRTIO_VENDOR = 0x1AF4
LEGACY_NET_DEVICE = 0x1000      # transitional / legacy network device (4.1.2.3)
MODERN_NET_DEVICE = 0x1041      # 0x1040 + device type 1: modern-only

# --- feature bits (5.1.3, 6), as masks -------------------------------------------------
F_CSUM = 1 << 0
F_GUEST_CSUM = 1 << 1
F_MAC = 1 << 5
F_MRG_RXBUF = 1 << 15
F_STATUS = 1 << 16
F_CTRL_VQ = 1 << 17
F_CTRL_RX = 1 << 18
F_ANY_LAYOUT = 1 << 27          # legacy only: 1.x drivers do not ask for it
F_EVENT_IDX = 1 << 29           # VIRTIO_RING_F_EVENT_IDX
F_VERSION_1 = 1 << 32
F_ACCESS_PLATFORM = 1 << 33
NET_FEATURES = F_MAC | F_STATUS | F_CTRL_VQ | F_CTRL_RX | F_EVENT_IDX
LEGACY_FEATURES = NET_FEATURES | F_ANY_LAYOUT
MODERN_FEATURES = NET_FEATURES | F_VERSION_1 | F_ACCESS_PLATFORM

# --- device config (5.1.4) and control queue (5.1.6.5) ------------------------------
CONFIG_MAC = 0           # 6 bytes, read one by one (8-bit fields)
CONFIG_STATUS = 6        # 16 bits, valid with F_STATUS
S_LINK_UP = 1
CTRL_RX = 0
CTRL_RX_PROMISC = 0
CTRL_OK = 0

RX_QUEUE, TX_QUEUE, CTRL_QUEUE = 0, 1, 2
PAGE = 4096
MAX_FRAME = 1514 + 4     # Ethernet frame with a VLAN tag, no CRC: no GSO is negotiated
LINK_SPEED = 1000        # virtio-net without VIRTIO_NET_F_SPEED_DUPLEX reports no speed: a nominal 1 Gbit/s while up
CTRL_TIMEOUT = 1.0
LEGACY_HDR_LEN = 10      # virtio_net_hdr without num_buffers (5.1.6, legacy, no MRG_RXBUF)
V1_HDR_LEN = 12          # with VERSION_1 num_buffers is always there


def check_supported(vendor: int, device: int) -> None:
    """UnsupportedDevice with the reason for virtio devices ixypy cannot drive."""
    if vendor == VIRTIO_VENDOR and 0x1040 <= device <= 0x107F:
        raise UnsupportedDevice(
            f"PCI id {vendor:04x}:{device:04x} is a virtio device of type {device - 0x1040}, not a network "
            f"device (type 1, 1af4:1041)", "ixypy drives virtio-net only")


class VirtioDevice(Device):
    """A virtio-net NIC. Opened by ixypy.open(); do not construct directly."""

    driver_name = "virtio"
    # a device without VIRTIO_F_ACCESS_PLATFORM (every legacy one, and a 1.x
    # one that does not offer it) bypasses the IOMMU and uses physical
    # addresses (QEMU does): under VFIO the bus starts out mapping IOVA =
    # physical, so its accesses are right either way; negotiation switches
    # to plain IOVAs when ACCESS_PLATFORM is accepted (_negotiate)
    dma_bypasses_iommu = True
    transport: Transport      # the legacy or the 1.x interface, chosen at bring-up

    def __init__(self, bus: "Bus", rx_queues: int = 1, tx_queues: int = 1, num_rx_desc: int = 0, num_tx_desc: int = 0,
                 mempool: Optional[Mempool] = None, promisc: bool = True, interrupts: bool = False,
                 itr_us: Optional[float] = None) -> None:
        if rx_queues != 1 or tx_queues != 1:
            bus.close()     # as a failed bring-up would: the caller gets no device to close
            raise QueueError(f"{rx_queues} rx and {tx_queues} tx queues asked for: virtio-net without "
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
        self._wanted_sizes = {RX_QUEUE: num_rx_desc, TX_QUEUE: num_tx_desc, CTRL_QUEUE: 0}
        try:
            if interrupts:
                # before bring-up: enabling MSI-X moves a legacy device's config (virtio_irq)
                self.interrupts = virtio_irq.attach(self)
            self._bring_up(promisc)
        except BaseException:
            self.close()
            raise

    # --- bring-up (3.1.1) ---------------------------------------------------------

    def _bring_up(self, promisc: bool) -> None:
        self.transport = transport_for(self.bus)
        self._reset()
        self.bus.set_bus_master(True)
        self.transport.add_status(ACKNOWLEDGE)
        self.transport.add_status(DRIVER)
        self._negotiate()
        if self.transport.has_vectors:
            # no config-change interrupt: link state is polled (4.1.5.1.2.1)
            virtio_irq.set_vector(self.transport.set_config_vector, virtio_irq.NO_VECTOR, "config changes", self.address)
        self._setup_queues()
        self.transport.add_status(DRIVER_OK)
        status = self.transport.status()
        if status & (FAILED | DEVICE_NEEDS_RESET) or not status & DRIVER_OK:
            raise DeviceError(f"{self.address}: virtio device status {status:#x} after DRIVER_OK")
        self.rx_queues[0].fill()      # post every rx buffer, one notify (the device is live now)
        if self.features & F_CTRL_RX:
            self.set_promisc(promisc)
        else:
            self._promisc = None      # the device's own filter (QEMU: promiscuous) stays

    def _reset(self) -> None:
        """Writing 0 to the status resets the device (2.1); it reads 0 when done."""
        try:
            self.transport.reset()
        except DeviceError:
            self.ensure_present()
            raise

    @property
    def modern(self) -> bool:
        """Whether the device is driven through its VirtIO 1.x interface."""
        return self.transport.modern

    def _negotiate(self) -> None:
        """Accept what we use of what is offered (5.1.3.1: CTRL_RX needs
        CTRL_VQ). On the 1.x interface VERSION_1 is required, ACCESS_PLATFORM
        taken when offered (the DMA memory then follows the IOMMU), and the
        set must survive FEATURES_OK (3.1.1 step 5-6)."""
        self.host_features = self.transport.device_features()
        wanted = MODERN_FEATURES if self.modern else LEGACY_FEATURES
        features = self.host_features & wanted
        if not features & F_CTRL_VQ:
            features &= ~F_CTRL_RX
        if self.modern and not features & F_VERSION_1:
            raise UnsupportedDevice(f"{self.address}: the virtio device's 1.x interface does not offer VIRTIO_F_VERSION_1 "
                                    f"(features {self.host_features:#x})", "a 1.x device must offer it (6.1)")
        if features & F_ACCESS_PLATFORM:
            self.bus.choose_dma(bypasses_iommu=False)
        self.transport.set_driver_features(features)
        self.features = features
        if self.modern:
            self.transport.add_status(FEATURES_OK)
            if not self.transport.status() & FEATURES_OK:
                raise DeviceError(f"{self.address}: the virtio device refused features {features:#x} (FEATURES_OK "
                                  f"did not stick; it offered {self.host_features:#x})",
                                  "the device needs a feature ixypy does not take: ixypy takes MAC, STATUS, CTRL_VQ, "
                                  "CTRL_RX, EVENT_IDX, VERSION_1 and ACCESS_PLATFORM")

    def _queue_size(self, index: int) -> int:
        size = self.transport.queue_max(index)
        if size == 0:
            raise DeviceError(f"{self.address}: virtqueue {index} has size 0: the device does not have it",
                              "a virtio-net device without VIRTIO_NET_F_MQ has queues 0 (rx) and 1 (tx)")
        if size & (size - 1) or size < 4:
            raise DeviceError(f"{self.address}: virtqueue {index} has size {size}, not a power of two of at least 4")
        wanted = self._wanted_sizes[index]
        if not self.modern or not wanted:
            return size
        if wanted & (wanted - 1) or wanted < 4:
            raise QueueError(f"{self.address}: {wanted} descriptors asked for virtqueue {index}: the size of a "
                             f"split virtqueue is a power of two (2.7), here from 4 to the device's {size}",
                             "open it with num_rx_desc/num_tx_desc a power of two, or 0 for the device's maximum")
        return min(wanted, size)

    @property
    def any_layout(self) -> bool:
        """Whether one descriptor carries a packet (header in the headroom +
        frame): VIRTIO_F_ANY_LAYOUT or VERSION_1 negotiated; else two."""
        return bool(self.features & (F_ANY_LAYOUT | F_VERSION_1))

    @property
    def hdr_len(self) -> int:
        """Bytes of virtio_net_hdr before each frame: 12 with VERSION_1, else 10 (5.1.6)."""
        return V1_HDR_LEN if self.features & F_VERSION_1 else LEGACY_HDR_LEN

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
        rx_pool = self._rx_pool(self._mempool) if self._mempool is not None else self.mempool(max(1024, sizes[RX_QUEUE]))
        if rx_pool.buf_capacity < MAX_FRAME:
            raise PacketTooLarge(f"rx buffers hold {rx_pool.buf_capacity} bytes, frames can have {MAX_FRAME}",
                                 "use a mempool with entry_size 2048 or more")
        self.rx_mempools = [rx_pool]
        layout, hdr_len = self.any_layout, self.hdr_len
        for i in indices:
            doorbell = self.transport.doorbell(i)
            queue: Union[VirtioRxQueue, VirtioTxQueue, VirtioCtrlQueue]
            if i == RX_QUEUE:
                queue = VirtioRxQueue(doorbell, i, memory, offsets[i], sizes[i], rx_pool, layout, hdr_len)
                self.rx_queues.append(queue)
            elif i == TX_QUEUE:
                # two-descriptor framing: a zeroed header at `extra`, shared by every packet
                queue = VirtioTxQueue(doorbell, i, memory, offsets[i], sizes[i], self._rings.dma(extra), MAX_FRAME,
                                      layout, hdr_len)
                self.tx_queues.append(self._tx_ring(queue))
            else:
                queue = self.ctrl = VirtioCtrlQueue(doorbell, i, memory, offsets[i], sizes[i], extra + 512,
                                                    self._rings.dma(extra + 512))
            if self.features & F_EVENT_IDX:
                queue.use_event_idx()
            desc = self._rings.dma(offsets[i])      # the ring is zeroed by now
            self.transport.activate_queue(i, sizes[i], desc, desc + vring_avail_offset(sizes[i]),
                                          desc + vring_used_offset(sizes[i]))
            if self.transport.has_vectors:          # rx on its vector when sleeping is wanted, else none
                vector = virtio_irq.RX_VECTOR if i == RX_QUEUE and self.interrupts is not None else virtio_irq.NO_VECTOR
                virtio_irq.set_vector(partial(self.transport.set_queue_vector, i), vector, f"virtqueue {i}",
                                      self.address)

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
        return format_mac(self.transport.config_bytes(CONFIG_MAC, 6))

    def link_up(self) -> bool:
        """Config status LINK_UP; without F_STATUS the link is taken as up (5.1.4.2)."""
        if not self.features & F_STATUS:
            return True
        return bool(self.transport.config16(CONFIG_STATUS) & S_LINK_UP)

    def ensure_present(self) -> None:
        """A live device's status never has every bit set (2.1)."""
        if self.transport.status() == 0xFF:
            raise DeviceGone(f"{self.address}: the virtio device stopped answering: its status reads 0xff")

    def link_speed(self) -> int:
        """LINK_SPEED (nominal 1000 Mbit/s: no VIRTIO_NET_F_SPEED_DUPLEX is negotiated) while up, else 0."""
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
        if getattr(self, "transport", None) is None:
            return      # no BAR opened: the device was not touched
        try:
            self.transport.stop()
        finally:
            self.bus.set_bus_master(False)
            for q in self.rx_queues + self.tx_queues:
                q.close()
