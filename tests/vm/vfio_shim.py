"""A stand-in for ``ixypy.vfio`` until that module exists (guest side only).

The VM tests import VFIO through :func:`vfio_module`: ``ixypy.vfio`` as soon
as it exists, this shim before. The shim follows the intended API
(``VfioDevice(address)``, ``.region_info(i)``, ``.ioport(i)``,
``.map_region(i)``, ``.irq_info(i)``, ``.container.map_dma(vaddr, iova,
size)``) with the few ioctls the tests need, nothing more. Delete it once
``ixypy.vfio`` lands. Facts: linux/vfio.h and /work/shared/VM-RIG.md.
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
from types import ModuleType
from typing import NamedTuple, Optional

_IO = lambda nr: (ord(";") << 8) | (100 + nr)  # noqa: E731  _IO(VFIO_TYPE, VFIO_BASE + nr)
VFIO_GET_API_VERSION = _IO(0)
VFIO_CHECK_EXTENSION = _IO(1)
VFIO_SET_IOMMU = _IO(2)
VFIO_GROUP_GET_STATUS = _IO(3)
VFIO_GROUP_SET_CONTAINER = _IO(4)
VFIO_GROUP_GET_DEVICE_FD = _IO(6)
VFIO_DEVICE_GET_INFO = _IO(7)
VFIO_DEVICE_GET_REGION_INFO = _IO(8)
VFIO_DEVICE_GET_IRQ_INFO = _IO(9)
VFIO_IOMMU_MAP_DMA = _IO(13)
VFIO_TYPE1_IOMMU = 1
VFIO_GROUP_FLAGS_VIABLE = 1
VFIO_REGION_INFO_FLAG_MMAP = 4
VFIO_DMA_MAP_FLAG_READ_WRITE = 3

_libc = ctypes.CDLL(None, use_errno=True)


def vfio_module() -> ModuleType:
    """``ixypy.vfio`` if the package has it, else this shim."""
    if importlib.util.find_spec("ixypy.vfio") is not None:
        return importlib.import_module("ixypy.vfio")
    return importlib.import_module(__name__)


def ioctl(fd: int, request: int, arg: object = 0) -> int:
    if isinstance(arg, ctypes.Structure):
        arg = ctypes.byref(arg)
    ret = _libc.ioctl(fd, ctypes.c_ulong(request), arg)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"VFIO ioctl {request:#x}: {os.strerror(err)}")
    return ret


class _Struct(ctypes.Structure):
    def __init__(self, **kw: int) -> None:
        super().__init__(argsz=ctypes.sizeof(self), **kw)


class GroupStatus(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class DeviceInfo(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("num_regions", ctypes.c_uint32), ("num_irqs", ctypes.c_uint32)]


class RegionInfo(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("index", ctypes.c_uint32),
                ("cap_offset", ctypes.c_uint32), ("size", ctypes.c_uint64), ("offset", ctypes.c_uint64)]


class IrqInfo(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("index", ctypes.c_uint32), ("count", ctypes.c_uint32)]


class DmaMap(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("vaddr", ctypes.c_uint64), ("iova", ctypes.c_uint64), ("size", ctypes.c_uint64)]


class Region(NamedTuple):
    index: int
    flags: int
    size: int
    offset: int


class Irq(NamedTuple):
    index: int
    flags: int
    count: int


class Container:
    """The process-wide VFIO container (type-1 IOMMU)."""

    def __init__(self) -> None:
        self.fd = os.open("/dev/vfio/vfio", os.O_RDWR)
        self.api_version = ioctl(self.fd, VFIO_GET_API_VERSION)
        if not ioctl(self.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU):
            raise OSError("VFIO: no type-1 IOMMU")
        self.groups: dict = {}

    def add_group(self, group: int) -> int:
        if group not in self.groups:
            fd = os.open(f"/dev/vfio/{group}", os.O_RDWR)
            status = GroupStatus()
            ioctl(fd, VFIO_GROUP_GET_STATUS, status)
            if not status.flags & VFIO_GROUP_FLAGS_VIABLE:
                raise OSError(f"VFIO group {group} is not viable: bind all its devices to vfio-pci")
            ioctl(fd, VFIO_GROUP_SET_CONTAINER, ctypes.byref(ctypes.c_int(self.fd)))
            if not self.groups:
                ioctl(self.fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)
            self.groups[group] = fd
        return self.groups[group]

    def map_dma(self, vaddr: int, iova: int, size: int) -> None:
        ioctl(self.fd, VFIO_IOMMU_MAP_DMA, DmaMap(flags=VFIO_DMA_MAP_FLAG_READ_WRITE,
                                                  vaddr=vaddr, iova=iova, size=size))


_container: Optional[Container] = None


def get_container() -> Container:
    global _container
    if _container is None:
        _container = Container()
    return _container


class VfioDevice:
    """A device bound to vfio-pci, opened through the process-wide container."""

    def __init__(self, address: str) -> None:
        self.address = address
        group = int(os.path.basename(os.readlink(f"/sys/bus/pci/devices/{address}/iommu_group")))
        self.container = get_container()
        group_fd = self.container.add_group(group)
        self.fd = ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, ctypes.c_char_p(address.encode()))
        info = DeviceInfo()
        ioctl(self.fd, VFIO_DEVICE_GET_INFO, info)
        self.num_regions, self.num_irqs = info.num_regions, info.num_irqs
        self._maps: list = []

    def region_info(self, index: int) -> Region:
        r = RegionInfo(index=index)
        ioctl(self.fd, VFIO_DEVICE_GET_REGION_INFO, r)
        return Region(index, r.flags, r.size, r.offset)

    def irq_info(self, index: int) -> Irq:
        i = IrqInfo(index=index)
        ioctl(self.fd, VFIO_DEVICE_GET_IRQ_INFO, i)
        return Irq(index, i.flags, i.count)

    def ioport(self, index: int):
        from ixypy._fastpath import PortIo
        r = self.region_info(index)
        return PortIo(self.fd, r.offset, r.size)

    def map_region(self, index: int):
        from ixypy.pci import map_fd
        r = self.region_info(index)
        if not r.flags & VFIO_REGION_INFO_FLAG_MMAP:
            raise OSError(f"VFIO region {index} of {self.address} cannot be mmapped")
        mapped = map_fd(self.fd, r.size, r.offset)
        self._maps.append(mapped.mmap)
        return mapped

    def close(self) -> None:
        """Unmap the regions and close the device fd. Needed before unbinding
        vfio-pci: the kernel's unbind waits, uninterruptibly once signalled,
        until every fd and mapping of the device is gone, so a process that
        unbinds its own open device hangs for good."""
        for mm in self._maps:
            mm.close()
        self._maps.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "VfioDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
