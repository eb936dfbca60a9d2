"""The virtio sim devices: ixypy's virtio driver on the legacy virtio-net
model (csrc/sim/virtio_model.c), no VM needed.

``sim:virtio-sink``, ``sim:virtio-source`` and ``sim:virtio-loop`` name the
same wires as the 82599 sim devices; the model shares the process's sim DMA
domain, so a buffer from any sim device can be sent on any other. Opened
with interrupts=True, the device's MSI-X is enabled as vfio-pci enables a
real one (SimBus.attach_irqs), and the driver sleeps on its rx vector.
"""
from __future__ import annotations

from ..fastpath.mempool import DmaMemory
from ..fastpath.regs import Bar, PortIo
from ..errors import DeviceNotFound
from ..memory import VirtualAllocator
from ..packets import SEQ_OFFSET
from . import BASE_MAC, SimBus, _dma_map, _dma_unmap, connect, register_model
from ._model import IO_SIZE, VirtioSim

QUEUE_NUM = 256        # QEMU's default virtqueue size
LOW_MEMORY = 1 << 40   # where virtio sim memory is mapped: QUEUE_PFN reaches 44 bits of address (4.1.4.8)


def new_virtio_model(ndevs: int, queue_num: int = QUEUE_NUM, busy_poll: bool = False) -> VirtioSim:
    """A started virtio model with ndevs devices that sees all of the process's sim DMA memory."""
    return register_model(VirtioSim(ndevs, BASE_MAC, queue_num), busy_poll)


def attach(address: str, wire: str, flows: int) -> "VirtioSimBus":
    """A Bus for a new one-device model wired as `wire` ("sink", "source" of `flows` flows, "loop")."""
    model = new_virtio_model(1)
    connect(model.device(0), wire, SEQ_OFFSET, flows=flows)     # the sink checks the sequence numbers
    return VirtioSimBus(address, model, model.device(0), wire)


class LowVirtualAllocator(VirtualAllocator):
    """The sim DMA domain (DMA address = virtual address), mapped below 2**44
    where it can be: a legacy QUEUE_PFN holds a 32-bit page number, and
    ordinary mmaps land near 2**47. Each mapping asks for the range after
    the previous one (mmap's hint: the kernel may still choose another)."""

    next_hint = LOW_MEMORY

    def _map(self, size: int) -> DmaMemory:
        memory = DmaMemory(size, address_hint=LowVirtualAllocator.next_hint, shared=True)
        if memory.address < 1 << 44:
            LowVirtualAllocator.next_hint = memory.address + size
        return memory


class VirtioSimBus(SimBus):
    """A model device as the virtio driver sees a PCI function: I/O BAR0,
    memory BAR1 (the MSI-X table and PBA), config space with the MSI-X
    capability, DMA memory whose DMA address is its virtual address, and
    MSI-X vectors signalled on eventfds (SimBus). ``function`` is the
    VirtioSimDevice."""

    def __init__(self, address: str, sim: VirtioSim, dev, wire: str, owns_sim: bool = True) -> None:
        super().__init__(address, sim, dev, wire, owns_sim)
        self.dma = LowVirtualAllocator(_dma_map, _dma_unmap)

    def bar(self, index: int) -> Bar:
        if index != 1:
            raise DeviceNotFound(f"the sim virtio-net has no memory BAR{index}: BAR0 is I/O ports (ioport(0)), "
                                 f"BAR1 holds the MSI-X table")
        return Bar(ops=self.function.msix_reg_ops(), keepalive=self.function)

    def ioport(self, index: int) -> PortIo:
        if index != 0:
            raise DeviceNotFound(f"the sim virtio-net has no I/O-port BAR{index}")
        return PortIo(-1, 0, IO_SIZE, ops=self.function.port_ops(), keepalive=self.function)
