"""ixypy: user-space network drivers for Python.

    import ixypy
    with ixypy.open("sim:pair0") as dev:          # or a PCI address, "0000:03:00.0"
        pool = dev.mempool()
        batch = ixypy.PacketBatch(32)
        batch.alloc(pool, length=60)
        dev.tx_batch(0, batch)
"""
from __future__ import annotations

from typing import Optional

from .fastpath.batch import PacketBatch
from .fastpath.mempool import DmaMemory, Mempool
from .device import Device, DeviceStats
from .errors import IxyError

__all__ = ["open", "Device", "DeviceStats", "Mempool", "PacketBatch", "DmaMemory", "IxyError"]
__version__ = "0.1.0"


def open(address: str, rx_queues: int = 1, tx_queues: int = 1, *, method: str = "auto", num_rx_desc: int = 512, num_tx_desc: int = 512,
         mempool: Optional[Mempool] = None, promisc: bool = True, interrupts: bool = False,
         itr_us: Optional[float] = None) -> Device:
    """Open the NIC at a PCI address (e.g. "0000:03:00.0") or a sim device
    ("sim:sink", "sim:source", "sim:loop", "sim:pair0", "sim:pair1"; an 82576
    with an igb- prefix: "sim:igb-sink", ...; on the virtio-net model
    "sim:virtio-sink", "sim:virtio-source", "sim:virtio-loop"), bring it up
    and start its queues. method: "auto", "uio" or "vfio" (PCI only).

    interrupts=True: each rx queue gets an MSI-X vector, and
    ``dev.rx_batch(q, batch, timeout=...)`` sleeps on it once the queue is
    idle instead of spinning (needs VFIO or the sim device; UIO raises
    InterruptsUnavailable). itr_us: the least time between two interrupts of
    a queue (the driver's default if None)."""
    from .bus import Bus
    from .drivers import driver_for

    bus: Bus
    if address.startswith("sim:"):
        from . import sim

        bus = sim.attach(address)
        driver = driver_for(*bus.ids)
    else:
        from .bus import attach_pci
        from .pci import PciDevice

        dev = PciDevice(address).require_network()
        driver = driver_for(*dev.ids)      # refuse before touching its binding
        bus = attach_pci(dev.address, driver, method)
    if interrupts:
        from .interrupts import require

        try:
            require(bus, rx_queues)           # before bring-up: fail fast
        except BaseException:
            bus.close()
            raise
    return driver(bus, rx_queues, tx_queues, num_rx_desc=num_rx_desc, num_tx_desc=num_tx_desc,
                  mempool=mempool, promisc=promisc, interrupts=interrupts, itr_us=itr_us)
