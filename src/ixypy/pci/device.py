"""One PCI function seen through sysfs (``/sys/bus/pci/devices/ADDR``):
its ids and class, its driver and interfaces, its config space and BARs.
Binding is :mod:`ixypy.pci.binding`'s job; the methods here hand over to it.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence, Set, Tuple

from ..errors import (BarError, DeviceBusy, DeviceError, DeviceNotFound, InterruptsUnavailable, PermissionDenied,
                      UnsupportedDevice)
from . import binding
from .address import normalize_address
from .bars import BarInfo, MappedBar, map_fd
from .config import PCI_CLASS_NETWORK, pread_exact, pwrite_exact, set_bus_master
from .sysfs import PROC, SYSFS, permission_denied, read_sysfs

if TYPE_CHECKING:
    from ..guard import DmaGuard
    from ..fastpath.regs import PortIo
    from ..memory import DmaAllocator


class PciDevice:
    """A PCI device seen through sysfs (``/sys/bus/pci/devices/ADDR``).

    Opened ports and mappings are owned by the device object: ``close()``
    (or leaving a ``with`` block) closes them. Bound to uio_pci_generic, it
    is what a driver's PciBus uses (see ixypy.bus.PciFunction).
    """

    #: UIO cannot deliver MSI-X to user space
    supports_interrupts = False

    def __init__(self, address: object, sysfs_root: Path = SYSFS, proc_root: Path = PROC) -> None:
        self.address = normalize_address(address)
        self.sysfs_root = Path(sysfs_root)
        self.proc_root = Path(proc_root)
        self.path = self.sysfs_root / "bus/pci/devices" / self.address
        self._fds: List[int] = []
        self._maps: List[mmap.mmap] = []
        if not self.path.exists():
            raise DeviceNotFound(f"no PCI device at {self.address} (no {self.path})")

    def __repr__(self) -> str:
        return f"PciDevice({self.address!r}, {self.vendor_id:04x}:{self.device_id:04x}, driver={self.driver!r})"

    # ---- identity
    def _hex_attr(self, name: str) -> int:
        path = self.path / name
        try:
            return int(read_sysfs(path), 16)
        except FileNotFoundError:
            raise DeviceNotFound(f"{self.address}: no {path}; did the device go away?") from None
        except ValueError:
            raise DeviceError(f"{self.address}: unexpected content in {path}") from None

    @property
    def vendor_id(self) -> int:
        return self._hex_attr("vendor")

    @property
    def device_id(self) -> int:
        return self._hex_attr("device")

    @property
    def ids(self) -> Tuple[int, int]:
        return (self.vendor_id, self.device_id)

    @property
    def class_code(self) -> int:
        """The 24-bit class code, e.g. 0x020000 for an Ethernet controller."""
        return self._hex_attr("class")

    @property
    def is_network(self) -> bool:
        return self.class_code >> 16 == PCI_CLASS_NETWORK

    def require_network(self) -> "PciDevice":
        cls = self.class_code
        if cls >> 16 != PCI_CLASS_NETWORK:
            raise UnsupportedDevice(f"{self.address} is not a network controller (class {cls:#08x}, "
                                    f"a NIC is class 0x02xxxx)")
        return self

    @property
    def driver(self) -> Optional[str]:
        """Name of the bound driver, or None."""
        link = self.path / "driver"
        try:
            return os.path.basename(os.readlink(link))
        except FileNotFoundError:
            return None
        except PermissionError as e:
            raise permission_denied("read", link, e) from None

    @property
    def iommu_group(self) -> Optional[int]:
        try:
            return int(os.path.basename(os.readlink(self.path / "iommu_group")))
        except (FileNotFoundError, ValueError):
            return None

    def _interface_dirs(self) -> List[Path]:
        # ixgbe/igb: ADDR/net/IF; virtio-net: ADDR/virtioN/net/IF
        dirs: List[Path] = []
        for net in [self.path / "net", *sorted(self.path.glob("virtio*/net"))]:
            try:
                dirs.extend(net.iterdir())
            except (FileNotFoundError, NotADirectoryError):
                continue
        return sorted(dirs, key=lambda p: p.name)

    @property
    def interfaces(self) -> List[str]:
        """Kernel network interfaces of this device (``net/*``, ``virtio*/net/*``)."""
        return [p.name for p in self._interface_dirs()]

    # ---- is the NIC carrying traffic?
    def _routed_interfaces(self) -> Set[str]:
        try:
            text = (self.proc_root / "net/route").read_text()
        except FileNotFoundError:
            return set()
        except PermissionError as e:
            raise PermissionDenied(f"cannot read {self.proc_root / 'net/route'}: {e.strerror}") from None
        return {line.split()[0] for line in text.splitlines()[1:] if line.strip()}

    def busy_interfaces(self) -> List[str]:
        """Interfaces of this NIC that are up and carry an IPv4 route."""
        routed = self._routed_interfaces()
        busy = []
        for d in self._interface_dirs():
            try:
                state = read_sysfs(d / "operstate")
            except FileNotFoundError:
                continue
            if state in ("up", "unknown") and d.name in routed:
                busy.append(d.name)
        return busy

    def check_not_busy(self) -> None:
        busy = self.busy_interfaces()
        if busy:
            names = ", ".join(busy)
            raise DeviceBusy(f"{self.address} is in use by the kernel: interface {names} is up and carries a route",
                             hint=f"take it down first (`ip link set {busy[0]} down`), or pass force=True "
                                  f"(--force) if you really mean to cut it off")

    # ---- binding (see ixypy.pci.binding)
    def bind(self, driver: str, *, force: bool = False, timeout: Optional[float] = None) -> None:
        """Bind the NIC to ``driver`` (e.g. ``"vfio-pci"``); see :func:`binding.bind`."""
        binding.bind(self, driver, force=force, timeout=timeout)

    def bind_uio(self, *, force: bool = False) -> None:
        self.bind(binding.UIO_DRIVER, force=force)

    def bind_vfio(self, *, force: bool = False) -> None:
        self.bind(binding.VFIO_DRIVER, force=force)

    def unbind(self, *, force: bool = False, timeout: Optional[float] = None) -> Optional[str]:
        """Detach the device from its driver; returns the driver it had (or None)."""
        return binding.unbind(self, force=force, timeout=timeout)

    def release(self, *, timeout: Optional[float] = None) -> Optional[str]:
        """Hand the NIC back to its kernel driver; returns the driver that took it."""
        return binding.release(self, timeout=timeout)

    unbind_to_kernel = release

    # ---- config space
    def _open(self, name: str, flags: int) -> int:
        path = self.path / name
        try:
            return os.open(path, flags)
        except PermissionError as e:
            raise permission_denied("open", path, e) from None
        except FileNotFoundError:
            raise DeviceNotFound(f"{self.address}: no {path}") from None

    def config_read(self, offset: int, size: int) -> int:
        fd = self._open("config", os.O_RDONLY)
        try:
            return pread_exact(fd, size, offset, f"{self.address} config space")
        finally:
            os.close(fd)

    def config_write(self, offset: int, size: int, value: int) -> None:
        fd = self._open("config", os.O_RDWR)
        try:
            pwrite_exact(fd, size, offset, value, f"{self.address} config space")
        finally:
            os.close(fd)

    def enable_bus_master(self) -> None:
        set_bus_master(self, True)

    # ---- BARs
    def resources(self) -> List[BarInfo]:
        """All lines of the ``resource`` file: (index, start, size, flags)."""
        text = read_sysfs(self.path / "resource")
        out = []
        for i, line in enumerate(text.splitlines()):
            start, end, flags = (int(x, 16) for x in line.split()[:3])
            size = end - start + 1 if end else 0
            out.append(BarInfo(i, start, size, flags))
        return out

    def bar_info(self, index: int) -> BarInfo:
        if not 0 <= index <= 5:
            raise BarError(f"BAR index {index} out of range 0..5")
        res = self.resources()
        if index >= len(res) or res[index].size == 0:
            raise BarError(f"{self.address}: BAR{index} is not implemented (size 0)")
        return res[index]

    def map_resource(self, index: int) -> MappedBar:
        """mmap memory BAR ``index`` (``resourceN``, O_RDWR|O_SYNC, MAP_SHARED)."""
        info = self.bar_info(index)
        if info.is_io or not info.is_memory:
            raise BarError(f"{self.address}: BAR{index} is an I/O-port BAR (flags {info.flags:#x}); "
                           f"it cannot be mapped, open it with ioport({index})")
        fd = self._open(f"resource{index}", os.O_RDWR | os.O_SYNC)
        try:
            mapped = map_fd(fd, info.size)
        finally:
            os.close(fd)
        self._maps.append(mapped.mmap)
        return mapped

    map_bar = map_resource

    def open_ioport(self, index: int) -> "PortIo":
        """A fast-path ``PortIo`` on I/O-port BAR ``index`` (``resourceN``).
        Valid until this device is closed."""
        from ..fastpath.regs import PortIo
        info = self.bar_info(index)
        if not info.is_io:
            raise BarError(f"{self.address}: BAR{index} is a memory BAR (flags {info.flags:#x}), not I/O ports; "
                           f"map it with map_bar({index})")
        fd = self._open(f"resource{index}", os.O_RDWR)
        self._fds.append(fd)
        return PortIo(fd, 0, info.size)

    ioport = open_ioport

    # ---- what a driver's bus asks of a UIO device
    def dma_allocator(self, bypasses_iommu: bool) -> "DmaAllocator":
        """Hugepages with physical DMA addresses: without VFIO nothing maps
        them for the device, so every device gets physical addresses."""
        from ..memory import HugepageAllocator
        return HugepageAllocator()

    def dma_guard(self) -> Optional["DmaGuard"]:
        """Under UIO nothing stops the NIC when this process dies: a guard
        process (ixypy.guard) clears Bus Master Enable then."""
        from ..guard import DmaGuard
        return DmaGuard(self.path / "config")

    def msix_vectors(self) -> int:
        return 0

    def enable_msix(self, eventfds: Sequence[int], start: int = 0) -> None:
        raise InterruptsUnavailable(f"{self.address}: UIO cannot deliver MSI-X interrupts to user space",
                                    hint="bind the NIC to vfio-pci for interrupts")

    def disable_msix(self) -> None:
        """Nothing to undo: enable_msix never succeeds under UIO."""

    def close(self) -> None:
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:
                pass  # a Bar still uses it; it is unmapped when that goes away
        for fd in self._fds:
            os.close(fd)
        self._maps.clear()
        self._fds.clear()

    def __enter__(self) -> "PciDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
