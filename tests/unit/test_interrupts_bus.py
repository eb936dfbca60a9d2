"""The VFIO path of Bus.attach_irqs (no device: a stand-in records the calls)
and the generic layer's refusals."""
import pytest

from ixypy.bus import Bus, PciBus
from ixypy.errors import InterruptsUnavailable
from ixypy.interrupts import Interrupts, IrqControl, require


class FakeVfio:
    address = "0000:00:00.0"

    def __init__(self, vectors):
        self.vectors, self.calls = vectors, []

    def msix_vectors(self):
        return self.vectors

    def enable_msix(self, fds, start=0):
        self.calls.append(("enable", list(fds), start))

    def disable_msix(self):
        self.calls.append(("disable",))


def pci_bus(vectors, vfio=True):
    bus = PciBus.__new__(PciBus)
    bus.dev, bus.address, bus.supports_interrupts, bus._msix = FakeVfio(vectors), "0000:00:00.0", vfio, False
    return bus


def test_vfio_bus_enables_one_vector_per_queue_in_one_call():
    bus = pci_bus(8)
    irq = Interrupts(bus, 3, IrqControl())
    fds = [q.fd for q in irq.queues]
    assert bus.dev.calls == [("enable", fds, 0)]
    irq.close()
    assert bus.dev.calls[-1] == ("disable",)
    irq.close()                                   # idempotent
    assert len(bus.dev.calls) == 2


def test_refusals():
    with pytest.raises(InterruptsUnavailable, match="VFIO"):
        require(pci_bus(8, vfio=False), 1)
    with pytest.raises(InterruptsUnavailable, match="2 MSI-X vector"):
        require(pci_bus(2), 4)
    bus = Bus()
    bus.address = "x"
    with pytest.raises(InterruptsUnavailable):
        require(bus, 1)
