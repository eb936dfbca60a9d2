"""A fake VFIO kernel for host tests: stands in for ixypy.vfio.ioctl, fills
the structs the way vfio.h describes, and logs every call. /dev/vfio/* are
plain files; the device fd is a plain file laid out like vfio-pci's regions
(region i at offset i << REGION_SHIFT), so pread/pwrite/mmap on it work."""
from __future__ import annotations

import ctypes
import errno
import os
import struct
from pathlib import Path
from typing import Dict, List, Tuple

from ixypy import vfio

REGION_SHIFT = 20  # vfio-pci uses 40; 1 MiB keeps the sparse file small


class FakeVfio:
    def __init__(self, root: Path, group: int = 7) -> None:
        self.dev = root / "dev"
        (self.dev / "vfio").mkdir(parents=True)
        (self.dev / "vfio/vfio").touch()
        (self.dev / "vfio" / str(group)).touch()
        self.device_file = root / "vfio-device"
        self.calls: List[Tuple[str, object]] = []
        self.viable = True
        self.type1 = True
        self.iommu_set = False
        self.containers: Dict[int, int] = {}  # group fd -> container fd
        self.maps: Dict[int, Tuple[int, int]] = {}
        self.irq_sets: List[Tuple[int, int, int, int, Tuple[int, ...]]] = []
        self.msix_count = 4
        self.iova_ranges = [(0, 0xFEDFFFFF), (0xFEF00000, (1 << 39) - 1)]
        # regions: index -> (size, flags); BAR0 32-byte I/O ports, BAR1 4 KiB memory
        rw = vfio.VFIO_REGION_INFO_FLAG_READ | vfio.VFIO_REGION_INFO_FLAG_WRITE
        self.regions = {0: (32, rw), 1: (4096, rw | vfio.VFIO_REGION_INFO_FLAG_MMAP), 7: (256, rw)}
        with open(self.device_file, "wb") as f:
            f.truncate(9 << REGION_SHIFT)
            cfg = bytearray(256)
            cfg[0:4] = (0x10001AF4).to_bytes(4, "little")
            cfg[4:6] = (0x0003).to_bytes(2, "little")
            cfg[0x10:0x14] = (0xC001).to_bytes(4, "little")      # BAR0: I/O
            cfg[0x14:0x18] = (0xFEBD1000).to_bytes(4, "little")  # BAR1: memory
            f.seek(7 << REGION_SHIFT)
            f.write(cfg)

    def names(self) -> List[str]:
        return [n for n, _ in self.calls]

    def _fail(self, err: int) -> None:
        raise OSError(err, os.strerror(err))

    def ioctl(self, fd: int, request: int, arg=0) -> int:
        name = vfio._IOCTL_NAMES[request]
        self.calls.append((name, arg))
        if name == "VFIO_GET_API_VERSION":
            return 0
        if name == "VFIO_CHECK_EXTENSION":
            return int(self.type1 and arg == vfio.VFIO_TYPE1_IOMMU)
        if name == "VFIO_SET_IOMMU":
            if not self.containers:
                self._fail(errno.EINVAL)
            self.iommu_set = True
            return 0
        if name == "VFIO_GROUP_GET_STATUS":
            arg.flags = vfio.VFIO_GROUP_FLAGS_VIABLE if self.viable else 0
            return 0
        if name == "VFIO_GROUP_SET_CONTAINER":
            self.containers[fd] = arg.value
            return 0
        if name == "VFIO_GROUP_UNSET_CONTAINER":
            self.containers.pop(fd, None)
            return 0
        if name == "VFIO_GROUP_GET_DEVICE_FD":
            if fd not in self.containers:
                self._fail(errno.EINVAL)
            return os.open(self.device_file, os.O_RDWR)
        if name == "VFIO_DEVICE_GET_INFO":
            arg.flags = vfio.VFIO_DEVICE_FLAGS_PCI | vfio.VFIO_DEVICE_FLAGS_RESET
            arg.num_regions, arg.num_irqs = 9, 5
            return 0
        if name == "VFIO_DEVICE_GET_REGION_INFO":
            size, flags = self.regions.get(arg.index, (0, 0))
            arg.size, arg.flags, arg.offset = size, flags, arg.index << REGION_SHIFT
            return 0
        if name == "VFIO_DEVICE_GET_IRQ_INFO":
            arg.flags = vfio.VFIO_IRQ_INFO_EVENTFD | vfio.VFIO_IRQ_INFO_NORESIZE
            arg.count = self.msix_count if arg.index == vfio.VFIO_PCI_MSIX_IRQ_INDEX else 1
            return 0
        if name == "VFIO_DEVICE_SET_IRQS":
            raw = bytes(arg)
            argsz, flags, index, start, count = struct.unpack_from("=5I", raw)
            assert argsz == len(raw)
            nfds = (argsz - 20) // 4
            self.irq_sets.append((flags, index, start, count, struct.unpack_from(f"={nfds}i", raw, 20)))
            return 0
        if name == "VFIO_DEVICE_RESET":
            return 0
        if name == "VFIO_IOMMU_MAP_DMA":
            if not self.iommu_set:
                self._fail(errno.EINVAL)
            assert arg.argsz == 32 and arg.flags == 3
            if any(arg.iova < iova + size and iova < arg.iova + arg.size for iova, (_, size) in self.maps.items()):
                self._fail(errno.EEXIST)      # as type1 refuses an IOVA range overlapping a mapping
            self.maps[arg.iova] = (arg.vaddr, arg.size)
            return 0
        if name == "VFIO_IOMMU_UNMAP_DMA":
            self.maps.pop(arg.iova, None)
            return 0
        if name == "VFIO_IOMMU_GET_INFO":
            head = ctypes.sizeof(vfio.vfio_iommu_type1_info)
            need = head + 16 + 16 * len(self.iova_ranges)
            (argsz,) = struct.unpack_from("=I", bytes(arg)[:4])
            info = bytearray(struct.pack("=IIQI4x", need, vfio.VFIO_IOMMU_INFO_PGSIZES | vfio.VFIO_IOMMU_INFO_CAPS,
                                         0x40201000, head if argsz >= need else 0))
            if argsz >= need:
                info += struct.pack("=HHIII", vfio.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0, len(self.iova_ranges), 0)
                for start, end in self.iova_ranges:
                    info += struct.pack("=QQ", start, end)
            ctypes.memmove(ctypes.addressof(arg), bytes(info), min(len(info), argsz))
            return 0
        raise AssertionError(f"unexpected ioctl {name}")
