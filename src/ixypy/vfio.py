"""VFIO: container, group and device, through the ioctls of linux/vfio.h.

One :class:`VfioContainer` per process (:func:`get_container`) holds every
group we open, so all devices share one IOMMU context and one set of DMA
mappings. A group, once attached, stays attached until the container is
closed: detaching the last group would tear down the IOMMU context and with
it every DMA mapping the memory layer made.

Usage from a guest script::

    from ixypy import vfio
    dev = vfio.open_device("0000:00:10.0", "vfio")     # binds to vfio-pci if needed
    port = dev.ioport(0)                                # legacy virtio: I/O-port BAR0
    dev.enable_bus_master()
    vfio.get_container().map_dma(vaddr, iova, 2 << 20)

ioctls go through libc's ``ioctl`` via ctypes: ``VFIO_GROUP_GET_DEVICE_FD``
returns the new fd as the ioctl's return value, which ``fcntl.ioctl`` with a
buffer argument would drop.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import pci
from .errors import (
    BarError,
    DeviceBusy,
    DeviceNotFound,
    DriverUnavailable,
    InterruptsUnavailable,
    IommuError,
    PermissionDenied,
)
from .memory import DmaSpace

if TYPE_CHECKING:
    from .fastpath.regs import PortIo
    from .memory import DmaAllocator

DEV = Path("/dev")

# --------------------------------------------------------------------------- ioctl numbers
# include/uapi/asm-generic/ioctl.h: _IOC(dir, type, nr, size); VFIO uses _IO only.
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30


def _IOC(direction: int, type_: int, nr: int, size: int) -> int:
    return (direction << _IOC_DIRSHIFT) | (type_ << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) | (size << _IOC_SIZESHIFT)


def _IO(type_: int, nr: int) -> int:
    return _IOC(0, type_, nr, 0)


VFIO_TYPE = ord(";")
VFIO_BASE = 100

VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0)
VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1)
VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2)
VFIO_GROUP_GET_STATUS = _IO(VFIO_TYPE, VFIO_BASE + 3)
VFIO_GROUP_SET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 4)
VFIO_GROUP_UNSET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 5)
VFIO_GROUP_GET_DEVICE_FD = _IO(VFIO_TYPE, VFIO_BASE + 6)
VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7)
VFIO_DEVICE_GET_REGION_INFO = _IO(VFIO_TYPE, VFIO_BASE + 8)
VFIO_DEVICE_GET_IRQ_INFO = _IO(VFIO_TYPE, VFIO_BASE + 9)
VFIO_DEVICE_SET_IRQS = _IO(VFIO_TYPE, VFIO_BASE + 10)
VFIO_DEVICE_RESET = _IO(VFIO_TYPE, VFIO_BASE + 11)
VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12)
VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13)
VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14)

_IOCTL_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("VFIO_") and isinstance(v, int) and v > 0x3B00}

VFIO_API_VERSION = 0
VFIO_TYPE1_IOMMU = 1

VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1
VFIO_DEVICE_FLAGS_RESET = 1 << 0
VFIO_DEVICE_FLAGS_PCI = 1 << 1
VFIO_REGION_INFO_FLAG_READ = 1 << 0
VFIO_REGION_INFO_FLAG_WRITE = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2
VFIO_IRQ_INFO_EVENTFD = 1 << 0
VFIO_IRQ_INFO_NORESIZE = 1 << 3
VFIO_IRQ_SET_DATA_NONE = 1 << 0
VFIO_IRQ_SET_DATA_BOOL = 1 << 1
VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2
VFIO_IRQ_SET_ACTION_MASK = 1 << 3
VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4
VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5
VFIO_DMA_MAP_FLAG_READ = 1 << 0
VFIO_DMA_MAP_FLAG_WRITE = 1 << 1
VFIO_IOMMU_INFO_PGSIZES = 1 << 0
VFIO_IOMMU_INFO_CAPS = 1 << 1
VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1

# vfio-pci's fixed region and irq indexes
VFIO_PCI_BAR0_REGION_INDEX = 0
VFIO_PCI_ROM_REGION_INDEX = 6
VFIO_PCI_CONFIG_REGION_INDEX = 7
VFIO_PCI_INTX_IRQ_INDEX = 0
VFIO_PCI_MSI_IRQ_INDEX = 1
VFIO_PCI_MSIX_IRQ_INDEX = 2


# --------------------------------------------------------------------------- structs

class _Struct(ctypes.Structure):
    def __init__(self, **kw: int) -> None:
        super().__init__(argsz=ctypes.sizeof(self), **kw)


class vfio_group_status(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class vfio_device_info(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("num_regions", ctypes.c_uint32),
                ("num_irqs", ctypes.c_uint32), ("cap_offset", ctypes.c_uint32)]


class vfio_region_info(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("index", ctypes.c_uint32),
                ("cap_offset", ctypes.c_uint32), ("size", ctypes.c_uint64), ("offset", ctypes.c_uint64)]


class vfio_irq_info(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("index", ctypes.c_uint32),
                ("count", ctypes.c_uint32)]


class vfio_irq_set(_Struct):
    """The fixed head of struct vfio_irq_set; ``data[]`` follows (see irq_set_buffer)."""
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("index", ctypes.c_uint32),
                ("start", ctypes.c_uint32), ("count", ctypes.c_uint32)]


class vfio_iommu_type1_info(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("iova_pgsizes", ctypes.c_uint64),
                ("cap_offset", ctypes.c_uint32)]


class vfio_iommu_type1_dma_map(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("vaddr", ctypes.c_uint64),
                ("iova", ctypes.c_uint64), ("size", ctypes.c_uint64)]


class vfio_iommu_type1_dma_unmap(_Struct):
    _fields_ = [("argsz", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("iova", ctypes.c_uint64),
                ("size", ctypes.c_uint64)]


class vfio_info_cap_header(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint16), ("version", ctypes.c_uint16), ("next", ctypes.c_uint32)]


# --------------------------------------------------------------------------- ioctl

_libc = ctypes.CDLL(None, use_errno=True)
_libc_ioctl = _libc.ioctl
_libc_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
_libc_ioctl.restype = ctypes.c_int

IoctlArg = Union[int, bytes, ctypes.Structure, ctypes.Array, ctypes.c_int]


def ioctl(fd: int, request: int, arg: IoctlArg = 0) -> int:
    """libc ioctl; returns its (non-negative) result, raises OSError on -1.
    ``arg``: an int passed by value, bytes (a C string), or a ctypes object
    passed by address."""
    if isinstance(arg, (ctypes.Structure, ctypes.Array, ctypes._SimpleCData)):
        ptr: object = ctypes.addressof(arg)
    elif isinstance(arg, bytes):
        ptr = ctypes.cast(ctypes.c_char_p(arg), ctypes.c_void_p)
    else:
        ptr = int(arg)
    ret = _libc_ioctl(fd, request, ptr)
    if ret < 0:
        err = ctypes.get_errno()
        name = _IOCTL_NAMES.get(request, f"ioctl {request:#x}")
        raise OSError(err, f"{name}: {os.strerror(err)}")
    return ret


def irq_set_buffer(index: int, flags: int, start: int, fds: Sequence[int] = (),
                   count: Optional[int] = None) -> "ctypes.Array[ctypes.c_char]":
    """A struct vfio_irq_set with ``fds`` as its s32 data[] (ctypes buffer)."""
    n = len(fds) if count is None else count
    head = ctypes.sizeof(vfio_irq_set)
    raw = struct.pack(f"=5I{len(fds)}i", head + 4 * len(fds), flags, index, start, n, *fds)
    return ctypes.create_string_buffer(raw, len(raw))


def parse_iova_ranges(buf: bytes, cap_offset: int) -> List[Tuple[int, int]]:
    """Walk the capability chain of a vfio_iommu_type1_info buffer and return
    the IOVA_RANGE capability's (start, end) pairs (end inclusive)."""
    ranges: List[Tuple[int, int]] = []
    off, seen = cap_offset, set()
    while off and off not in seen and off + 8 <= len(buf):
        seen.add(off)
        cap_id, _version, nxt = struct.unpack_from("=HHI", buf, off)
        if cap_id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
            (nr,) = struct.unpack_from("=I", buf, off + 8)
            for i in range(nr):
                ranges.append(struct.unpack_from("=QQ", buf, off + 16 + 16 * i))
        off = nxt
    return ranges


# --------------------------------------------------------------------------- container

_PERM_HINT = "run as root, or give your user the VFIO files: `sudo chown $USER {path}`"


def _open_dev(path: Path, missing: Exception) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise missing from None
    except PermissionError as e:
        raise PermissionDenied(f"cannot open {path}: {e.strerror}", hint=_PERM_HINT.format(path=path)) from None
    except OSError as e:
        if e.errno == _errno.EBUSY:
            raise DeviceBusy(f"{path} is busy: another process (or this one) has it open",
                             hint="stop the other user of the NIC (another ixypy, DPDK or a VM); one process per IOMMU group") from None
        raise


class VfioContainer:
    """``/dev/vfio/vfio``: an IOMMU context with its DMA mappings.

    ``map_dma`` before any group is attached is remembered and done when the
    first group attaches (the IOMMU type can only be set then)."""

    def __init__(self, dev_root: Path = DEV, sysfs_root: Path = pci.SYSFS) -> None:
        self.dev_root = Path(dev_root)
        self.sysfs_root = Path(sysfs_root)
        path = self.dev_root / "vfio/vfio"
        self.fd = _open_dev(path, DriverUnavailable(f"no {path}: the vfio module is not loaded",
                                                    hint="load it with `modprobe vfio-pci`"))
        self.groups: Dict[int, VfioGroup] = {}
        self.iommu_set = False
        self.mappings: Dict[int, Tuple[int, int]] = {}  # iova -> (vaddr, size)
        self.dma_space = DmaSpace("IOVAs of this process's VFIO container")   # what its devices behind the IOMMU read
        try:
            try:
                version = ioctl(self.fd, VFIO_GET_API_VERSION)
            except OSError as e:
                raise IommuError(f"{path} is not a VFIO container ({e.strerror})") from None
            if version != VFIO_API_VERSION:
                raise IommuError(f"unknown VFIO API version {version} (expected {VFIO_API_VERSION})")
            if not ioctl(self.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU):
                raise IommuError("VFIO has no type-1 IOMMU support (VFIO_CHECK_EXTENSION(VFIO_TYPE1_IOMMU) is 0)",
                                 hint="load vfio_iommu_type1 and boot with intel_iommu=on or amd_iommu=on")
        except BaseException:
            os.close(self.fd)
            raise

    def group(self, number: int) -> "VfioGroup":
        """The attached group ``number``, opened and attached on first use."""
        g = self.groups.get(number)
        if g is None:
            g = VfioGroup(number, self.dev_root, self.sysfs_root)
            try:
                g.set_container(self)
                self.groups[number] = g
                if not self.iommu_set:
                    self._set_iommu()
            except BaseException:
                self.groups.pop(number, None)
                g.close()
                raise
        return g

    def _set_iommu(self) -> None:
        try:
            ioctl(self.fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)
        except OSError as e:
            raise IommuError(f"VFIO_SET_IOMMU(TYPE1) failed: {e.strerror}") from None
        self.iommu_set = True
        for iova, (vaddr, size) in sorted(self.mappings.items()):
            self._map(vaddr, iova, size)

    def _map(self, vaddr: int, iova: int, size: int) -> None:
        m = vfio_iommu_type1_dma_map(flags=VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                                     vaddr=vaddr, iova=iova, size=size)
        try:
            ioctl(self.fd, VFIO_IOMMU_MAP_DMA, m)
        except OSError as e:
            raise IommuError(f"VFIO_IOMMU_MAP_DMA of {size:#x} bytes at vaddr {vaddr:#x} to IOVA {iova:#x} failed: {e.strerror}",
                             hint="DMA mappings count against the locked-memory limit (`ulimit -l`, or run as root); "
                                  "the IOVA must fit the IOMMU's address width (VfioContainer.iova_width) and not overlap another mapping") from None

    def map_dma(self, vaddr: int, iova: Optional[int] = None, size: int = 0) -> int:
        """Map ``size`` bytes at ``vaddr`` for device reads and writes at
        ``iova`` (default: iova = vaddr). Returns the IOVA."""
        iova = vaddr if iova is None else iova
        if size <= 0:
            raise ValueError("map_dma needs a positive size")
        if self.iommu_set:
            self._map(vaddr, iova, size)
        self.mappings[iova] = (vaddr, size)
        return iova

    def unmap_dma(self, iova: int, size: int) -> None:
        self.mappings.pop(iova, None)
        if not self.iommu_set:
            return
        u = vfio_iommu_type1_dma_unmap(iova=iova, size=size)
        try:
            ioctl(self.fd, VFIO_IOMMU_UNMAP_DMA, u)
        except OSError as e:
            raise IommuError(f"VFIO_IOMMU_UNMAP_DMA of {size:#x} bytes at IOVA {iova:#x} failed: {e.strerror}") from None

    def iova_ranges(self) -> List[Tuple[int, int]]:
        """Valid IOVA ranges (start, end inclusive) from VFIO_IOMMU_GET_INFO;
        empty if the kernel does not report them (before 5.4) or no group is
        attached yet."""
        if not self.iommu_set:
            return []
        info = vfio_iommu_type1_info()
        ioctl(self.fd, VFIO_IOMMU_GET_INFO, info)
        if not info.flags & VFIO_IOMMU_INFO_CAPS or info.argsz <= ctypes.sizeof(info):
            return []
        buf = ctypes.create_string_buffer(info.argsz)
        struct.pack_into("=I", buf, 0, info.argsz)
        ioctl(self.fd, VFIO_IOMMU_GET_INFO, buf)
        full = vfio_iommu_type1_info.from_buffer_copy(buf.raw[: ctypes.sizeof(vfio_iommu_type1_info)])
        return parse_iova_ranges(buf.raw, full.cap_offset)

    @property
    def iova_width(self) -> Optional[int]:
        """Bits of IOVA the IOMMU accepts (e.g. 39 or 48), if the kernel says."""
        ranges = self.iova_ranges()
        return max(end for _, end in ranges).bit_length() if ranges else None

    def close(self) -> None:
        for g in list(self.groups.values()):
            g.close()
        self.groups.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.iommu_set = False
        for key, c in list(_containers.items()):
            if c is self:
                del _containers[key]

    def __enter__(self) -> "VfioContainer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_containers: Dict[Path, VfioContainer] = {}


def get_container(dev_root: Path = DEV, sysfs_root: Path = pci.SYSFS) -> VfioContainer:
    """The process-wide container (one per dev_root)."""
    key = Path(dev_root)
    c = _containers.get(key)
    if c is None:
        c = _containers[key] = VfioContainer(dev_root, sysfs_root)
    return c


# --------------------------------------------------------------------------- group

def group_blockers(number: int, sysfs_root: Path = pci.SYSFS) -> List[Tuple[str, str]]:
    """Devices of IOMMU group ``number`` bound to a driver other than
    vfio-pci: (address, driver). These make the group not viable."""
    base = Path(sysfs_root) / "kernel/iommu_groups" / str(number) / "devices"
    out = []
    try:
        names = sorted(p.name for p in base.iterdir())
    except OSError:
        return []
    for name in names:
        try:
            drv: Optional[str] = os.path.basename(os.readlink(base / name / "driver"))
        except OSError:
            drv = None
        if drv is not None and drv not in (pci.VFIO_DRIVER, "pci-stub"):
            out.append((name, drv))
    return out


class VfioGroup:
    """``/dev/vfio/N``: the unit of isolation; must be viable to be used."""

    def __init__(self, number: int, dev_root: Path = DEV, sysfs_root: Path = pci.SYSFS) -> None:
        self.number = number
        self.sysfs_root = Path(sysfs_root)
        self.path = Path(dev_root) / "vfio" / str(number)
        self.container: Optional[VfioContainer] = None
        self.fd = _open_dev(self.path, IommuError(
            f"no {self.path}: no device of IOMMU group {number} is bound to vfio-pci",
            hint="bind the NIC first: `ixypy bind ADDR --vfio`"))
        try:
            status = vfio_group_status()
            ioctl(self.fd, VFIO_GROUP_GET_STATUS, status)
            if not status.flags & VFIO_GROUP_FLAGS_VIABLE:
                others = group_blockers(number, sysfs_root)
                listed = ", ".join(f"{a} (bound to {d})" for a, d in others) or "see the group's devices"
                raise IommuError(f"IOMMU group {number} is not viable: every device in it must be bound to vfio-pci; "
                                 f"not yet: {listed}",
                                 hint=f"bind each device in /sys/kernel/iommu_groups/{number}/devices to vfio-pci "
                                      f"(`ixypy bind ADDR --vfio`), or move the NIC to a slot with its own group")
        except BaseException:
            os.close(self.fd)
            raise

    def set_container(self, container: VfioContainer) -> None:
        fd = ctypes.c_int(container.fd)
        try:
            ioctl(self.fd, VFIO_GROUP_SET_CONTAINER, fd)
        except OSError as e:
            raise IommuError(f"VFIO_GROUP_SET_CONTAINER for group {self.number} failed: {e.strerror}") from None
        self.container = container

    def device_fd(self, address: str) -> int:
        try:
            return ioctl(self.fd, VFIO_GROUP_GET_DEVICE_FD, address.encode())
        except OSError as e:
            if e.errno == _errno.EBUSY:
                raise DeviceBusy(f"{address} is already open (VFIO allows one open per device)") from None
            raise DeviceNotFound(f"VFIO_GROUP_GET_DEVICE_FD({address}) in group {self.number} failed: {e.strerror}",
                                 hint="check that the device is bound to vfio-pci and belongs to this IOMMU group") from None

    def close(self) -> None:
        if self.fd < 0:
            return
        if self.container is not None:
            try:
                ioctl(self.fd, VFIO_GROUP_UNSET_CONTAINER)
            except OSError:
                pass
            self.container = None
        os.close(self.fd)
        self.fd = -1


# --------------------------------------------------------------------------- device

class RegionInfo(NamedTuple):
    index: int      # type: ignore[assignment]  # the field shadows tuple.index, as meant
    flags: int
    size: int
    offset: int

    @property
    def mappable(self) -> bool:
        return bool(self.flags & VFIO_REGION_INFO_FLAG_MMAP)


class IrqInfo(NamedTuple):
    index: int      # type: ignore[assignment]  # the fields shadow tuple.index and tuple.count, as meant
    flags: int
    count: int      # type: ignore[assignment]


class VfioDevice:
    """A PCI device opened through VFIO. Same access API as
    :class:`ixypy.pci.PciDevice`: ``config_read/config_write``,
    ``enable_bus_master()``, ``map_bar(n)`` -> MappedBar, ``ioport(n)`` -> PortIo.
    Mappings and ports are valid until :meth:`close`. What a driver's PciBus
    uses (see ixypy.bus.PciFunction)."""

    #: MSI-X vectors signal eventfds (VFIO_DEVICE_SET_IRQS)
    supports_interrupts = True

    def __init__(self, address: object, container: Optional[VfioContainer] = None,
                 sysfs_root: Path = pci.SYSFS, dev_root: Path = DEV) -> None:
        self.pci = pci.PciDevice(address, sysfs_root=sysfs_root)
        self.address = self.pci.address
        group = self.pci.iommu_group
        if group is None:
            raise IommuError(f"{self.address} has no IOMMU group",
                             hint="boot with intel_iommu=on (or amd_iommu=on), or use UIO")
        self.container = container if container is not None else get_container(dev_root, sysfs_root)
        self.group = self.container.group(group)
        self.fd = self.group.device_fd(self.address)
        self._maps: list = []
        self._regions: Dict[int, RegionInfo] = {}
        try:
            info = vfio_device_info()
            ioctl(self.fd, VFIO_DEVICE_GET_INFO, info)
        except BaseException:
            os.close(self.fd)
            raise
        self.flags = info.flags
        self.num_regions = info.num_regions
        self.num_irqs = info.num_irqs

    @property
    def ids(self) -> Tuple[int, int]:
        return self.pci.ids

    def dma_allocator(self, bypasses_iommu: bool) -> "DmaAllocator":
        """Hugepages mapped into this device's container: at IOVAs chosen
        by VfioAllocator, or at IOVA = physical address for a device whose
        DMA bypasses the IOMMU (IdentityVfioAllocator; needs root)."""
        from .memory import IdentityVfioAllocator, VfioAllocator
        return IdentityVfioAllocator(self.container) if bypasses_iommu else VfioAllocator(self.container)

    def dma_guard(self) -> None:
        """None needed: when this process dies, however it dies, its device
        file closes and the kernel resets the device (vfio-pci), which stops
        its DMA."""
        return None

    def __repr__(self) -> str:
        return f"VfioDevice({self.address!r}, group={self.group.number}, regions={self.num_regions}, irqs={self.num_irqs})"

    # ---- regions
    def region_info(self, index: int) -> RegionInfo:
        r = self._regions.get(index)
        if r is None:
            if not 0 <= index < self.num_regions:
                raise BarError(f"{self.address}: region {index} out of range 0..{self.num_regions - 1}")
            info = vfio_region_info(index=index)
            ioctl(self.fd, VFIO_DEVICE_GET_REGION_INFO, info)
            r = self._regions[index] = RegionInfo(index, info.flags, info.size, info.offset)
        return r

    def config_read(self, offset: int, size: int) -> int:
        cfg = self.region_info(VFIO_PCI_CONFIG_REGION_INDEX)
        return pci.pread_exact(self.fd, size, cfg.offset + offset, f"{self.address} config space")

    def config_write(self, offset: int, size: int, value: int) -> None:
        cfg = self.region_info(VFIO_PCI_CONFIG_REGION_INDEX)
        pci.pwrite_exact(self.fd, size, cfg.offset + offset, value, f"{self.address} config space")

    def enable_bus_master(self) -> None:
        pci.set_bus_master(self, True)

    def bar_is_io(self, index: int) -> bool:
        """Bit 0 of the BAR register in config space: 1 = I/O space."""
        if not 0 <= index <= 5:
            raise BarError(f"BAR index {index} out of range 0..5")
        return bool(self.config_read(0x10 + 4 * index, 4) & 1)

    def _bar_region(self, index: int) -> RegionInfo:
        if not 0 <= index <= 5:
            raise BarError(f"BAR index {index} out of range 0..5")
        r = self.region_info(index)
        if r.size == 0:
            raise BarError(f"{self.address}: BAR{index} is not implemented (size 0)")
        return r

    def map_region(self, index: int) -> pci.MappedBar:
        """mmap memory BAR ``index`` through the device fd."""
        r = self._bar_region(index)
        if self.bar_is_io(index):
            raise BarError(f"{self.address}: BAR{index} is an I/O-port BAR; it cannot be mapped, open it with ioport({index})")
        if not r.mappable:
            raise BarError(f"{self.address}: VFIO does not allow mmap of BAR{index} (region flags {r.flags:#x})",
                           hint="the BAR may be too small to map (under a page) or hold the MSI-X table")
        mapped = pci.map_fd(self.fd, r.size, r.offset)
        self._maps.append(mapped.mmap)
        return mapped

    map_bar = map_region

    def ioport(self, index: int) -> "PortIo":
        """A fast-path PortIo on I/O-port BAR ``index`` (pread/pwrite on the
        device fd at the region's offset)."""
        from .fastpath.regs import PortIo
        r = self._bar_region(index)
        if not self.bar_is_io(index):
            raise BarError(f"{self.address}: BAR{index} is a memory BAR, not I/O ports; map it with map_bar({index})")
        return PortIo(self.fd, r.offset, r.size)

    open_ioport = ioport

    # ---- interrupts
    def irq_info(self, index: int = VFIO_PCI_MSIX_IRQ_INDEX) -> IrqInfo:
        info = vfio_irq_info(index=index)
        ioctl(self.fd, VFIO_DEVICE_GET_IRQ_INFO, info)
        return IrqInfo(index, info.flags, info.count)

    def msix_vectors(self) -> int:
        return self.irq_info(VFIO_PCI_MSIX_IRQ_INDEX).count

    def enable_msix(self, eventfds: Sequence[int], start: int = 0) -> None:
        """Signal MSI-X vectors ``start .. start+len(eventfds)-1`` on the
        given eventfds (one per vector; -1 leaves a vector unassigned)."""
        if not eventfds:
            raise ValueError("enable_msix needs at least one eventfd")
        info = self.irq_info(VFIO_PCI_MSIX_IRQ_INDEX)
        if info.count == 0:
            raise InterruptsUnavailable(f"{self.address} has no MSI-X vectors")
        if start < 0 or start + len(eventfds) > info.count:
            raise InterruptsUnavailable(f"{self.address}: MSI-X vectors {start}..{start + len(eventfds) - 1} asked for, "
                                        f"the device has {info.count}",
                                        hint="use fewer queues with interrupts, or poll (interrupts=False)")
        buf = irq_set_buffer(VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                             start, list(eventfds))
        try:
            ioctl(self.fd, VFIO_DEVICE_SET_IRQS, buf)
        except OSError as e:
            raise InterruptsUnavailable(f"{self.address}: VFIO_DEVICE_SET_IRQS (MSI-X) failed: {e.strerror}") from None

    def disable_msix(self) -> None:
        buf = irq_set_buffer(VFIO_PCI_MSIX_IRQ_INDEX, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, (), count=0)
        ioctl(self.fd, VFIO_DEVICE_SET_IRQS, buf)

    def reset(self) -> bool:
        """VFIO_DEVICE_RESET if the device supports it; returns whether it did."""
        if not self.flags & VFIO_DEVICE_FLAGS_RESET:
            return False
        ioctl(self.fd, VFIO_DEVICE_RESET)
        return True

    # ---- life cycle
    def close(self) -> None:
        """Unmap BARs, then close the device fd. The group stays attached to
        the container (closing it would drop the container's DMA mappings)."""
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:
                pass
        self._maps.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "VfioDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_device(address: object, method: str = "auto", *, force: bool = False,
                sysfs_root: Path = pci.SYSFS, dev_root: Path = DEV) -> Union[pci.PciDevice, VfioDevice]:
    """Bind the NIC as ``method`` ("auto", "uio", "vfio") asks and open it.
    Returns a VfioDevice or (UIO) a PciDevice; both offer config_read/write,
    enable_bus_master, map_bar and ioport."""
    dev = pci.PciDevice(address, sysfs_root=sysfs_root).require_network()
    if pci.choose_method(dev, method) == "vfio":
        dev.bind_vfio(force=force)
        return VfioDevice(dev.address, sysfs_root=sysfs_root, dev_root=dev_root)
    dev.bind_uio(force=force)
    return dev
