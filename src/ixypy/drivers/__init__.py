"""Driver lookup by PCI id."""
from __future__ import annotations

from typing import Dict, Tuple, Type

from ..device import Device
from ..errors import UnsupportedDevice
from . import igb, ixgbe, virtio


def supported_ids() -> Dict[Tuple[int, int], Tuple[Type[Device], str]]:
    """(vendor, device) -> (driver class, model name)."""
    ids = {(ixgbe.INTEL, dev): (ixgbe.IxgbeDevice, name) for dev, name in ixgbe.DEVICE_IDS.items()}
    ids[(virtio.VIRTIO_VENDOR, virtio.LEGACY_NET_DEVICE)] = (virtio.VirtioDevice, "legacy virtio-net")
    ids.update({(igb.INTEL, dev): (igb.IgbDevice, name) for dev, name in igb.DEVICE_IDS.items()})
    return ids


def driver_for(vendor: int, device: int) -> Type[Device]:
    try:
        return supported_ids()[(vendor, device)][0]
    except KeyError:
        virtio.check_supported(vendor, device)   # a clearer reason for modern-only virtio
        raise UnsupportedDevice(f"PCI id {vendor:04x}:{device:04x} is not a NIC ixypy supports") from None
