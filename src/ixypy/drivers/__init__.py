"""Driver lookup by PCI id."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Protocol, Tuple

from ..fastpath.mempool import Mempool
from ..device import Device
from ..errors import UnsupportedDevice
from . import e1000e, igb, igbvf, ixgbe, virtio


if TYPE_CHECKING:
    from ..bus import Bus


class Driver(Protocol):
    """A driver class, as ixypy.open uses it: it declares its DMA needs (for
    the bus) and brings a device up when called."""

    driver_name: str
    dma_bypasses_iommu: bool

    def __call__(self, bus: "Bus", rx_queues: int, tx_queues: int, *, num_rx_desc: int, num_tx_desc: int,
                 mempool: Optional[Mempool], promisc: bool, interrupts: bool, itr_us: Optional[float]) -> Device: ...


def supported_ids() -> Dict[Tuple[int, int], Tuple[Driver, str]]:
    """(vendor, device) -> (driver class, model name)."""
    ids: Dict[Tuple[int, int], Tuple[Driver, str]] = {(ixgbe.INTEL, dev): (ixgbe.IxgbeDevice, name) for dev, name in ixgbe.DEVICE_IDS.items()}
    ids[(virtio.VIRTIO_VENDOR, virtio.LEGACY_NET_DEVICE)] = (virtio.VirtioDevice, "virtio-net (transitional or legacy)")
    ids[(virtio.VIRTIO_VENDOR, virtio.MODERN_NET_DEVICE)] = (virtio.VirtioDevice, "virtio-net (VirtIO 1.x)")
    ids.update({(igb.INTEL, dev): (igb.IgbDevice, name) for dev, name in igb.DEVICE_IDS.items()})
    ids.update({(e1000e.INTEL, dev): (e1000e.E1000eDevice, name) for dev, name in e1000e.DEVICE_IDS.items()})
    ids.update({(igbvf.INTEL, dev): (igbvf.IgbvfDevice, name) for dev, name in igbvf.DEVICE_IDS.items()})
    return ids


def driver_for(vendor: int, device: int) -> Driver:
    try:
        return supported_ids()[(vendor, device)][0]
    except KeyError:
        virtio.check_supported(vendor, device)   # a clearer reason for other virtio devices
        raise UnsupportedDevice(f"PCI id {vendor:04x}:{device:04x} is not a NIC ixypy supports") from None
