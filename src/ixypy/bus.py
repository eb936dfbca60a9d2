"""How a driver reaches its device: BARs, PCI config space, DMA memory.

A driver never cares whether the NIC sits behind UIO, VFIO or is the device
model: it asks its Bus for a BAR (memory-mapped registers) or I/O ports, for
bus mastering, and for DMA memory, and closes the Bus when done.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, Sequence, Tuple

from .fastpath.regs import Bar, PortIo
from .errors import DeviceError, InterruptsUnavailable, UnsupportedDevice
from .guard import DmaGuard
from .memory import DmaAllocator
from . import pci

if TYPE_CHECKING:
    from .drivers import Driver


class Bus:
    """One device as seen by its driver."""

    address: str
    ids: Tuple[int, int]          # (vendor, device)
    dma: DmaAllocator
    supports_interrupts = False

    def bar(self, index: int) -> Bar:
        """Memory BAR index, mapped."""
        raise NotImplementedError

    def ioport(self, index: int) -> PortIo:
        """I/O-port BAR index."""
        raise NotImplementedError

    def config_read(self, offset: int, size: int) -> int:
        raise NotImplementedError

    def config_write(self, offset: int, size: int, value: int) -> None:
        raise NotImplementedError

    def set_bus_master(self, enabled: bool) -> None:
        """Allow or forbid the device's DMA (PCI command register), checked."""
        pci.set_bus_master(self, enabled)

    def choose_dma(self, bypasses_iommu: bool) -> None:
        """Before the driver's first DMA allocation: the addresses its device
        uses after all (a virtio device goes through the IOMMU only once
        VIRTIO_F_ACCESS_PLATFORM is negotiated). A model has one kind."""

    def close(self) -> None:
        """Release DMA memory and the device (after its DMA has stopped)."""
        self.dma.release_all()

    # --- MSI-X (see ixypy.interrupts) ---------------------------------------

    def no_interrupts(self) -> InterruptsUnavailable:
        """The error for interrupts=True on this bus (supports_interrupts False)."""
        return InterruptsUnavailable(f"{self.address}: interrupts need MSI-X through eventfds; this device is "
                                     "not bound to vfio-pci (UIO cannot deliver MSI-X to user space)")

    def msix_vectors(self) -> int:
        """How many MSI-X vectors the device can signal (0: none)."""
        return 0

    def attach_irqs(self, eventfds: Sequence[int]) -> None:
        """MSI-X vector i signals eventfds[i]."""
        raise InterruptsUnavailable(f"{self.address}: this bus cannot deliver interrupts")

    def detach_irqs(self) -> None:
        """Undo attach_irqs (after the device's interrupts are masked)."""


class PciFunction(Protocol):
    """An opened PCI function, as PciBus uses it: ixypy.pci.PciDevice (UIO)
    and ixypy.vfio.VfioDevice both are one."""

    address: str
    supports_interrupts: bool    # whether MSI-X can reach this process (VFIO: yes, UIO: no)

    @property
    def ids(self) -> Tuple[int, int]: ...

    def dma_allocator(self, bypasses_iommu: bool) -> DmaAllocator:
        """DMA memory the device reaches; bypasses_iommu: its DMA addresses must be physical."""
        ...

    def dma_guard(self) -> Optional[DmaGuard]:
        """What stops the device's DMA if this process dies without closing
        it (None: the kernel does)."""
        ...

    def map_bar(self, index: int) -> pci.MappedBar: ...

    def ioport(self, index: int) -> PortIo: ...

    def config_read(self, offset: int, size: int) -> int: ...

    def config_write(self, offset: int, size: int, value: int) -> None: ...

    def msix_vectors(self) -> int: ...

    def enable_msix(self, eventfds: Sequence[int], start: int = 0) -> None: ...

    def disable_msix(self) -> None: ...

    def close(self) -> None: ...


class PciBus(Bus):
    """A real PCI function, bound to uio_pci_generic (physical DMA addresses
    from pagemap) or vfio-pci (IOVAs in the process's VFIO container). The
    DMA allocator is the function's answer to what the driver declares
    (Device.dma_bypasses_iommu)."""

    def __init__(self, dev: PciFunction, driver: "Driver") -> None:
        self.dev = dev
        self.address = dev.address
        self.ids = dev.ids
        self.supports_interrupts = dev.supports_interrupts
        self.dma = dev.dma_allocator(driver.dma_bypasses_iommu)
        self._bypasses_iommu = driver.dma_bypasses_iommu
        self.guard = dev.dma_guard()
        self._msix = False

    def choose_dma(self, bypasses_iommu: bool) -> None:
        if bypasses_iommu != self._bypasses_iommu:
            if self.dma.regions:
                raise DeviceError(f"{self.address}: the DMA path changed after memory was allocated for the device")
            self.dma = self.dev.dma_allocator(bypasses_iommu)
            self._bypasses_iommu = bypasses_iommu

    def bar(self, index: int) -> Bar:
        return self.dev.map_bar(index).bar()

    def ioport(self, index: int) -> PortIo:
        return self.dev.ioport(index)

    def config_read(self, offset: int, size: int) -> int:
        return self.dev.config_read(offset, size)

    def config_write(self, offset: int, size: int, value: int) -> None:
        self.dev.config_write(offset, size, value)

    def msix_vectors(self) -> int:
        return self.dev.msix_vectors()

    def attach_irqs(self, eventfds: Sequence[int]) -> None:
        """One VFIO_DEVICE_SET_IRQS for vectors 0..n-1 (vfio-pci sizes the
        MSI-X set at its first enable; rebinding one vector later must use
        start = that vector, count = 1)."""
        self.dev.enable_msix(list(eventfds), start=0)
        self._msix = True

    def detach_irqs(self) -> None:
        if self._msix:
            self._msix = False
            self.dev.disable_msix()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.guard is not None:
                self.guard.release()    # DMA has stopped: the device may go back to the kernel
            self.dev.close()


def attach_pci(address: str, driver: "Driver", method: str = "auto", force: bool = False) -> PciBus:
    """Bind the NIC for user-space access (method "auto", "uio" or "vfio"; a
    NIC already bound to one of them stays so) and open it for driver. A
    driver whose class names its `access_methods` (igbvf: VFIO only) is
    refused any other, before the NIC's binding changes."""
    from .vfio import open_device

    methods = getattr(driver, "access_methods", ("uio", "vfio"))
    dev = pci.PciDevice(address)
    chosen = pci.choose_method(dev, method)
    if chosen not in methods:       # refused before the binding changes
        raise UnsupportedDevice(f"{dev.address}: ixypy's {driver.driver_name} driver is made and tested for "
                                f"{' or '.join(m.upper() for m in methods)} only, not {chosen.upper()}",
                                f"bind it with `ixypy bind {dev.address} --vfio` or open it with "
                                f"ixypy.open(..., method=\"vfio\"); VFIO needs an IOMMU (boot with intel_iommu=on)")
    return PciBus(open_device(address, chosen, force=force), driver)
