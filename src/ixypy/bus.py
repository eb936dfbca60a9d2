"""How a driver reaches its device: BARs, PCI config space, DMA memory.

A driver never cares whether the NIC sits behind UIO, VFIO or is the device
model: it asks its Bus for a BAR (memory-mapped registers) or I/O ports, for
bus mastering, and for DMA memory, and closes the Bus when done.
"""
from __future__ import annotations

from typing import Tuple

from ._fastpath import Bar, PortIo
from .memory import DmaAllocator

PCI_COMMAND = 0x04
PCI_COMMAND_MASTER = 0x4     # bus master enable: the device may DMA


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
        """Allow or forbid the device's DMA (PCI command register)."""
        cmd = self.config_read(PCI_COMMAND, 2)
        cmd = cmd | PCI_COMMAND_MASTER if enabled else cmd & ~PCI_COMMAND_MASTER
        self.config_write(PCI_COMMAND, 2, cmd)

    def close(self) -> None:
        """Release DMA memory and the device (after its DMA has stopped)."""
        self.dma.release_all()
