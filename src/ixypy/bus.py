"""How a driver reaches its device: BARs, PCI config space, DMA memory.

A driver never cares whether the NIC sits behind UIO, VFIO or is the device
model: it asks its Bus for a BAR (memory-mapped registers) or I/O ports, for
bus mastering, and for DMA memory, and closes the Bus when done.
"""
from __future__ import annotations

from typing import Sequence, Tuple

from .fastpath.regs import Bar, PortIo
from .errors import InterruptsUnavailable
from .memory import DmaAllocator, HugepageAllocator, VfioAllocator
from . import pci


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

    def close(self) -> None:
        """Release DMA memory and the device (after its DMA has stopped)."""
        self.dma.release_all()

    # --- MSI-X (see ixypy.interrupts) ---------------------------------------

    def msix_vectors(self) -> int:
        """How many MSI-X vectors the device can signal (0: none)."""
        return 0

    def attach_irqs(self, eventfds: Sequence[int]) -> None:
        """MSI-X vector i signals eventfds[i]."""
        raise InterruptsUnavailable(f"{self.address}: this bus cannot deliver interrupts")

    def detach_irqs(self) -> None:
        """Undo attach_irqs (after the device's interrupts are masked)."""


class PciBus(Bus):
    """A real PCI function, bound to uio_pci_generic (physical DMA addresses
    from pagemap) or vfio-pci (IOVAs in the process's VFIO container)."""

    def __init__(self, dev) -> None:
        from .vfio import VfioDevice

        self.dev = dev
        self.address = dev.address
        self.ids = (dev.pci if isinstance(dev, VfioDevice) else dev).ids
        self.supports_interrupts = isinstance(dev, VfioDevice)
        self.dma = VfioAllocator(dev.container) if self.supports_interrupts else HugepageAllocator()

    def bar(self, index: int) -> Bar:
        return self.dev.map_bar(index).bar()

    def ioport(self, index: int) -> PortIo:
        return self.dev.ioport(index)

    def config_read(self, offset: int, size: int) -> int:
        return self.dev.config_read(offset, size)

    def config_write(self, offset: int, size: int, value: int) -> None:
        self.dev.config_write(offset, size, value)

    def msix_vectors(self) -> int:
        return self.dev.irq_info().count if self.supports_interrupts else 0

    def attach_irqs(self, eventfds: Sequence[int]) -> None:
        """One VFIO_DEVICE_SET_IRQS for vectors 0..n-1 (vfio-pci sizes the
        MSI-X set at its first enable; rebinding one vector later must use
        start = that vector, count = 1)."""
        if not self.supports_interrupts:
            super().attach_irqs(eventfds)
        self.dev.enable_msix(list(eventfds), start=0)
        self._msix = True

    def detach_irqs(self) -> None:
        if getattr(self, "_msix", False):
            self._msix = False
            self.dev.disable_msix()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.dev.close()


def attach_pci(address: str, method: str = "auto", force: bool = False) -> PciBus:
    """Bind the NIC for user-space access (method "auto", "uio" or "vfio"; a
    NIC already bound to one of them stays so) and open it."""
    from .vfio import open_device

    return PciBus(open_device(address, method, force=force))
