"""The Device base class: the interface every driver implements (its
abstract methods), and the life cycle they share.

A device is opened (bring-up, queues set up and started), used (rx_batch,
tx_batch, stats, promiscuous mode, link) and closed (DMA stopped first, then
its memory released). A NIC is never left writing into freed memory:
- devices still open when the interpreter exits are closed by an atexit hook
  (SIGTERM is routed through a normal exit);
- a device that loses its last reference without close() is stopped by its
  finaliser: Bus Master Enable off, the one control every PCI function obeys
  whatever its driver, then its bus (DMA memory, device files) released;
- a process killed outright (SIGKILL, a segfault) leaves its NIC to the
  kernel's reset under VFIO and to the DMA guard under UIO (ixypy.guard).
"""
from __future__ import annotations

import abc
import atexit
import signal
import threading
import weakref
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, List, Optional, Protocol, Sequence, TypeVar

from .fastpath.batch import PacketBatch
from .fastpath.mempool import Mempool
from .fastpath.queue import Queue
from .errors import BatchError, QueueError, TimestampsUnavailable
from .memory import unreachable

if TYPE_CHECKING:
    from .bus import Bus
    from .drivers.ieee1588 import Ieee1588Clock
    from .interrupts import Interrupts


FCS_BYTES = 4               # the frame check sequence (CRC-32) that ends every Ethernet frame on the wire
L1_OVERHEAD_BYTES = 20      # what the wire carries besides each frame: preamble 7, SFD 1, inter-frame gap 12


def l1_bytes(packets: float, l2_bytes: float) -> float:
    """What the wire carries for `packets` frames of `l2_bytes` in all (frame
    bytes with their FCS, as DeviceStats counts them): each frame plus its
    preamble, SFD and inter-frame gap."""
    return l2_bytes + packets * L1_OVERHEAD_BYTES


def link_text(mbits: int) -> str:
    """A link's state as Device.link_speed gives it, for messages."""
    return f"link up, {mbits} Mbit/s" if mbits else "link down"


def l1_pps(gbps: float, frame_bytes: float) -> float:
    """The frames a second of frame_bytes each (with their FCS) that fill
    gbps Gbit/s on the wire (L1): 14.88 Mpps of 64 bytes at 10."""
    return gbps * 1e9 / 8 / l1_bytes(1, frame_bytes)


@dataclass
class DeviceStats:
    """Counters since the device was opened.

    rx_bytes and tx_bytes count whole Ethernet frames, from the destination
    MAC address through the 4-byte FCS (CRC) inclusive, as Ethernet counters
    conventionally do (the Intel NICs' GORC and GOTC): the layer-2 size. They
    leave out what the wire adds around each frame, L1_OVERHEAD_BYTES of
    preamble, start-of-frame delimiter and inter-frame gap. Every driver
    counts so: ixgbe and igb read the NIC's counters, which include the FCS
    whether or not it is stripped on receive; virtio, whose device hands over
    frames without an FCS, adds FCS_BYTES to each frame it counts.
    """

    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_dropped: int = 0   # arrived but no rx descriptor/buffer was free
    rx_errors: int = 0    # refused frames: oversize, multi-descriptor, CRC

    def __sub__(self, other: "DeviceStats") -> "DeviceStats":
        return DeviceStats(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def __add__(self, other: "DeviceStats") -> "DeviceStats":
        return DeviceStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class RxQueue(Protocol):
    """What Device.rx_queue returns: a driver's rx queue of the fast path."""

    @property
    def packets(self) -> int: ...

    def rx(self, batch: PacketBatch) -> int: ...

    def forward(self, txq: Queue, batch: PacketBatch) -> int: ...


class TxQueue(Protocol):
    """What Device.tx_queue returns: a driver's tx queue of the fast path."""

    @property
    def packets(self) -> int: ...

    def tx(self, batch: PacketBatch) -> int: ...


Q = TypeVar("Q")
QueueT = TypeVar("QueueT", bound=Queue)

_open_devices: "weakref.WeakSet[Device]" = weakref.WeakSet()


@atexit.register
def _close_open_devices() -> None:
    for dev in list(_open_devices):
        dev.close()


class _Held:
    """What a device's finaliser needs to stop its DMA without the device
    object (which is gone by then): its bus and its interrupts."""

    def __init__(self, bus: "Bus") -> None:
        self.bus = bus
        self.interrupts: Optional[Interrupts] = None


def _stop_abandoned(held: _Held) -> None:
    """A device was garbage-collected without close(): its driver's stop
    sequence needs the device, so stop DMA at the bus (COMMAND.BME = 0),
    then release what it held, so the NIC can be opened again."""
    try:
        held.bus.set_bus_master(False)
    finally:
        if held.interrupts is not None:
            held.interrupts.close()
        held.bus.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _route_sigterm_through_exit() -> None:
    """SIGTERM's default action ends the process without running atexit, so a
    NIC would keep doing DMA into memory that is about to be freed. While no
    one else handles SIGTERM, make it exit through the normal path."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)


class Device(abc.ABC):
    """A NIC driven by ixypy. Use as a context manager, or call close().

    A driver implements every abstract method below; a class that misses
    one cannot be instantiated."""

    driver_name = "?"
    #: whether the device's DMA bypasses the IOMMU, so that its DMA addresses
    #: must be physical even under VFIO; the bus then maps IOVA = physical
    #: (see PciBus, memory.IdentityVfioAllocator)
    dma_bypasses_iommu: ClassVar[bool] = False

    def __init__(self, bus: "Bus", rx_queues: int, tx_queues: int) -> None:
        if rx_queues < 0 or tx_queues < 0 or rx_queues + tx_queues == 0:
            raise QueueError(f"cannot open a device with {rx_queues} rx and {tx_queues} tx queues",
                             "ask for at least one queue: ixypy.open(addr, rx_queues=1, tx_queues=1)")
        self.bus = bus
        self.address = bus.address
        self.num_rx_queues = rx_queues
        self.num_tx_queues = tx_queues
        self.closed = False
        self._held = _Held(bus)
        self._finalizer = weakref.finalize(self, _stop_abandoned, self._held)
        self._finalizer.atexit = False      # at exit the atexit hook closes it properly
        _open_devices.add(self)
        _route_sigterm_through_exit()

    @property
    def interrupts(self) -> Optional[Interrupts]:
        """ixypy.interrupts.Interrupts when opened with interrupts=True."""
        return self._held.interrupts

    @interrupts.setter
    def interrupts(self, value: Optional[Interrupts]) -> None:
        self._held.interrupts = value

    # --- the data path --------------------------------------------------

    @abc.abstractmethod
    def rx_batch(self, queue_id: int, batch: PacketBatch, timeout: Optional[float] = None) -> int:
        """Receive into batch's free slots from rx queue queue_id; returns the
        number of packets added (0 when none are waiting). With a timeout (s):
        wait for packets that long, sleeping on the queue's interrupt once the
        queue is idle if the device was opened with interrupts=True."""

    @abc.abstractmethod
    def tx_batch(self, queue_id: int, batch: PacketBatch) -> int:
        """Send packets from the front of batch on tx queue queue_id. Sent
        packets leave the batch (the driver frees their buffers once the NIC
        is done); returns how many were sent, fewer when the ring is full."""

    @abc.abstractmethod
    def flush_tx(self, timeout: float = 1.0) -> None:
        """Wait until the device has taken every packet handed to tx_batch
        (so the statistics that follow count them all)."""

    @abc.abstractmethod
    def rx_queue(self, queue_id: int) -> RxQueue:
        """Rx queue queue_id itself, for loops that skip the per-call checks
        (``q.rx(batch)``, ``q.forward(txq, batch)``)."""

    @abc.abstractmethod
    def tx_queue(self, queue_id: int) -> TxQueue:
        """Tx queue queue_id itself (``q.tx(batch)``)."""

    rx_mempools: List[Mempool]      # rx queue i fills from rx_mempools[i] (set by the driver at bring-up)

    @property
    def rx_mempool(self) -> Mempool:
        """The pool rx queue 0 fills its ring from (rx_mempools[i] for queue i):
        the buffers its received packets are in."""
        return self.rx_mempools[0]

    def mempool(self, num_bufs: int = 4096, entry_size: int = 2048, debug: bool = False) -> Mempool:
        """A new pool of packet buffers in DMA memory this device can reach."""
        return self.bus.dma.mempool(num_bufs, entry_size, debug)

    def reaches(self, pool: Mempool) -> bool:
        """This device's DMA can use pool's buffers: it reads DMA addresses
        as they are valid in pool (memory.DmaSpace). False e.g. for IOVAs of
        the VFIO container and a device that uses physical addresses."""
        return pool.dma_spaces is None or self.bus.dma.device_space in pool.dma_spaces

    def _rx_pool(self, pool: Mempool) -> Mempool:
        """pool (the mempool= given to open) if this device's DMA reaches its buffers."""
        if pool.dma_spaces is not None and not self.reaches(pool):
            raise unreachable(self.address, self.bus.dma.device_space, pool.dma_spaces,
                              "fill its rx ring from this mempool")
        return pool

    def _tx_ring(self, queue: QueueT) -> QueueT:
        """queue, a new tx queue, told what its device reads DMA addresses as:
        it refuses buffers its device cannot reach (Queue.set_dma_space)."""
        queue.set_dma_space(self.bus.dma.device_space, self.address)
        return queue

    # --- control ---------------------------------------------------------

    @abc.abstractmethod
    def stats(self) -> DeviceStats:
        """Counters since open, read from the device (or kept in software)."""

    @property
    @abc.abstractmethod
    def mac(self) -> str:
        """The MAC address as aa:bb:cc:dd:ee:ff."""

    @abc.abstractmethod
    def link_speed(self) -> int:
        """Link speed in Mbit/s; 0 while the link is down."""

    @abc.abstractmethod
    def ensure_present(self) -> None:
        """Raise DeviceGone if the device no longer answers (its registers
        read all ones: removed, powered off, reset behind the driver). The
        app loops call it once a second: rx and tx on a gone device find no
        work rather than fail."""

    @property
    @abc.abstractmethod
    def promisc(self) -> Optional[bool]:
        """The receive filter last set: True accepts frames for any address
        (None: the device's own filter applies, the driver cannot set it)."""

    @abc.abstractmethod
    def set_promisc(self, enabled: bool) -> None:
        """Accept frames for any destination address, or only this NIC's."""

    def ieee1588(self) -> "Ieee1588Clock":
        """The NIC's IEEE 1588 clock, for hardware time stamps (ixgbe and igb)."""
        raise TimestampsUnavailable(f"{self.address} ({self.driver_name}): ixypy drives no IEEE 1588 clock on it")

    def close(self) -> None:
        """Stop DMA, give the NIC's buffers back, release DMA memory."""
        if self.closed:
            return
        self.closed = True
        self._finalizer.detach()
        try:
            self._stop()
        finally:
            if self.interrupts is not None:
                self.interrupts.close()
            self.bus.close()
            _open_devices.discard(self)

    @abc.abstractmethod
    def _stop(self) -> None:
        """Stop every DMA engine of the device (driver-specific)."""

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.num_rx_queues} rx/{self.num_tx_queues} tx queues"
        return f"<{type(self).__name__} {self.address} {state}>"

    # --- helpers for drivers -----------------------------------------------

    @staticmethod
    def _queue(queues: Sequence[Q], queue_id: int, kind: str) -> Q:
        if not 0 <= queue_id < len(queues):
            raise QueueError(f"{kind} queue {queue_id} out of range: this device has {len(queues)} {kind} queue(s)")
        return queues[queue_id]

    @staticmethod
    def _check_batch(batch: PacketBatch, ring_size: int) -> None:
        if batch.capacity > ring_size:
            raise BatchError(f"a batch of capacity {batch.capacity} is larger than the {ring_size}-descriptor ring")


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
