"""Finding NICs: the network-class PCI devices under sysfs."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from ..errors import DeviceError, DeviceNotFound, InvalidAddress, PermissionDenied
from .device import PciDevice
from .sysfs import PROC, SYSFS


def list_devices(sysfs_root: Path = SYSFS, supported: Optional[Iterable[Tuple[int, int]]] = None,
                 proc_root: Path = PROC) -> List[PciDevice]:
    """Network-class PCI devices, sorted by address; with ``supported`` (a set
    of (vendor, device) ids, as the drivers register them) only those."""
    base = Path(sysfs_root) / "bus/pci/devices"
    wanted = set(supported) if supported is not None else None
    out = []
    try:
        names = sorted(p.name for p in base.iterdir())
    except FileNotFoundError:
        return []
    except PermissionError as e:
        raise PermissionDenied(f"cannot list {base}: {e.strerror}") from None
    for name in names:
        try:
            dev = PciDevice(name, sysfs_root=sysfs_root, proc_root=proc_root)
            if not dev.is_network:
                continue
            if wanted is not None and dev.ids not in wanted:
                continue
        except (InvalidAddress, DeviceNotFound, DeviceError):
            continue
        out.append(dev)
    return out
