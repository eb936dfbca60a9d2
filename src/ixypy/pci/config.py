"""PCI config space: exact-width access on a file descriptor, and the two
things ixypy does with it, bus mastering and the MSI-X enable bit. The
helpers work on anything with ``config_read``/``config_write``: a
PciDevice (sysfs ``config``), a VfioDevice (VFIO config region) or a
driver's Bus."""
from __future__ import annotations

import os
from typing import Iterator, Protocol, Tuple

from ..errors import DeviceError

# config space layout (PCI Local Bus 3.0, 6.2 and 6.7; MSI-X: 6.8.2;
# include/uapi/linux/pci_regs.h)
PCI_COMMAND = 0x04
PCI_COMMAND_MASTER = 0x4
PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_CAP_PTR = 0x34
PCI_CAP_ID_MSIX = 0x11
# the MSI-X capability: Message Control at +2, Table Offset/BIR at +4, PBA
# Offset/BIR at +8 (BIR in bits 2:0)
PCI_MSIX_FLAGS = 2
PCI_MSIX_TABLE = 4
PCI_MSIX_PBA = 8
PCI_MSIX_BIR = 0x7
MSIX_ENABLE = 1 << 15            # in the MSI-X Message Control word
MSIX_MASKALL = 1 << 14           # Function Mask
MSIX_TABLE_SIZE = 0x7FF          # N - 1
# an MSI-X table entry: Message Address, Upper Address, Data, Vector Control
PCI_MSIX_ENTRY_SIZE = 16
PCI_MSIX_ENTRY_VECTOR_CTRL = 12
PCI_MSIX_ENTRY_CTRL_MASKBIT = 1
PCI_CLASS_NETWORK = 0x02


class ConfigSpace(Protocol):
    """What the helpers below need of a device."""

    address: str

    def config_read(self, offset: int, size: int) -> int: ...

    def config_write(self, offset: int, size: int, value: int) -> None: ...


def _check_width(size: int) -> None:
    if size not in (1, 2, 4):
        raise ValueError(f"config space access width must be 1, 2 or 4 bytes, not {size}")


def pread_exact(fd: int, size: int, offset: int, what: str) -> int:
    """Read an exact-width little-endian value (1, 2 or 4 bytes)."""
    _check_width(size)
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise DeviceError(f"short read of {what}: {len(data)} of {size} bytes at {offset:#x}",
                          hint="config space beyond 64 bytes is readable by root only")
    return int.from_bytes(data, "little")


def pwrite_exact(fd: int, size: int, offset: int, value: int, what: str) -> None:
    _check_width(size)
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"value {value:#x} does not fit {size} bytes")
    n = os.pwrite(fd, value.to_bytes(size, "little"), offset)
    if n != size:
        raise DeviceError(f"short write of {what}: {n} of {size} bytes at {offset:#x}")


def set_bus_master(dev: ConfigSpace, enabled: bool) -> None:
    """Set or clear COMMAND bit 2 (bus master: the device may DMA) and read
    it back. Clearing it on a device that is gone (its configuration space
    reads all ones) is done: it does no DMA."""
    cmd = dev.config_read(PCI_COMMAND, 2)
    if cmd == 0xFFFF and not enabled:
        return
    want = cmd | PCI_COMMAND_MASTER if enabled else cmd & ~PCI_COMMAND_MASTER
    if want != cmd:
        dev.config_write(PCI_COMMAND, 2, want)
    if bool(dev.config_read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) != enabled:
        raise DeviceError(f"{dev.address}: bus master bit did not {'stick' if enabled else 'clear'} "
                          f"in the COMMAND register",
                          hint="the device may be held by another driver; rebind it and retry")


def capabilities(dev: ConfigSpace) -> Iterator[Tuple[int, int]]:
    """(offset, capability id) of each entry of the function's capability
    list, in list order (PCI 3.0, 6.7)."""
    if not dev.config_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST:
        return
    ptr = dev.config_read(PCI_CAP_PTR, 1) & 0xFC
    for _ in range(48):              # at most 48 capabilities fit; a loop in the list must end
        if ptr == 0:
            return
        yield ptr, dev.config_read(ptr, 1)
        ptr = dev.config_read(ptr + 1, 1) & 0xFC


def msix_capability(dev: ConfigSpace) -> int:
    """The offset of the function's MSI-X capability; 0 if it has none."""
    return next((ptr for ptr, cap_id in capabilities(dev) if cap_id == PCI_CAP_ID_MSIX), 0)


def msix_enabled(dev: ConfigSpace) -> bool:
    """Whether the MSI-X Enable bit of the function's MSI-X capability is set."""
    cap = msix_capability(dev)
    return bool(cap) and bool(dev.config_read(cap + PCI_MSIX_FLAGS, 2) & MSIX_ENABLE)
