"""DMA memory: where the NIC may read and write, and the addresses it uses.

Three ways to get it, one per way of reaching a device:

* ``HugepageAllocator`` (UIO): 2 MiB hugepages, locked, with the physical
  address of each page read from ``/proc/self/pagemap`` (needs root).
* ``VfioAllocator`` (VFIO): hugepages mapped into the device's IOMMU domain at
  IOVAs we choose (``VFIO_IOMMU_MAP_DMA``); no physical addresses involved.
* ``VirtualAllocator`` (the sim device): ordinary memory whose DMA address is
  its virtual address, registered with the device model as an IOMMU would be.

Each allocator says what its DMA addresses mean (a ``DmaSpace``): to the
device that uses it (``device_space``) and where the addresses of the memory
it gives out are valid (``pool_spaces``); a tx queue refuses buffers from a
pool whose addresses its device would read as other memory.

Buffers for packets come as a ``Mempool`` cut from a region; a pool may span
pages that are not contiguous in DMA space because every buffer's address is
translated on its own page. Rings need contiguous DMA memory: a region asked
for as contiguous is checked, and refused if the pages are not.
"""
from __future__ import annotations

import errno
import os
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, FrozenSet, Iterable, Iterator, List, Optional, Tuple

from .fastpath.mempool import DmaMemory, Mempool
from .errors import DmaMemoryError, DmaSpaceMismatch, HugepagesUnavailable, PermissionDenied

if TYPE_CHECKING:
    from .vfio import VfioContainer

HUGEPAGE_SIZE = 2 * 1024 * 1024
HUGEPAGES_SYSFS = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
PAGEMAP_PRESENT = 1 << 63
PAGEMAP_PFN_MASK = (1 << 55) - 1
DEFAULT_ENTRY_SIZE = 2048


def round_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


class DmaSpace:
    """What a DMA address means: one address space a device's DMA uses,
    named for error messages. Compared by identity: each VFIO container is
    a space of its own."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<DmaSpace {self.name}>"


def unreachable(device: str, space: DmaSpace, pool_spaces: Iterable[DmaSpace], doing: str) -> DmaSpaceMismatch:
    """The error for a device whose DMA uses `space` given a pool whose
    addresses are valid in `pool_spaces` only."""
    valid = " and ".join(sorted(s.name for s in pool_spaces))
    return DmaSpaceMismatch(f"{device} cannot {doing}: its DMA uses {space.name}, but the pool's addresses are {valid}")


#: physical addresses: a device under UIO, or one that bypasses the IOMMU
PHYSICAL = DmaSpace("physical addresses")
#: the sim models' addresses (every model maps every region: sim._dma_map)
SIM = DmaSpace("the sim models' addresses")


@dataclass
class DmaRegion:
    """DMA memory plus the DMA address of each of its pages."""

    memory: DmaMemory
    page_size: int
    page_dma: List[int]
    _on_release: Optional[Callable[["DmaRegion"], None]] = field(default=None, repr=False)

    @property
    def address(self) -> int:
        """Virtual address of the first byte."""
        return self.memory.address

    @property
    def size(self) -> int:
        return self.memory.size

    @property
    def contiguous(self) -> bool:
        first = self.page_dma[0]
        return all(dma == first + i * self.page_size for i, dma in enumerate(self.page_dma))

    def dma(self, offset: int = 0) -> int:
        """The DMA address of the byte at offset."""
        if not 0 <= offset < self.size:
            raise ValueError(f"offset {offset:#x} outside the {self.size:#x}-byte region")
        return self.page_dma[offset // self.page_size] + offset % self.page_size

    def view(self) -> memoryview:
        return memoryview(self.memory)

    def release(self) -> None:
        """Withdraw the device's access (IOMMU or model mapping) once it has
        stopped using the region. The memory itself is unmapped when the last
        Python reference to it (mempool, queue, memoryview) goes."""
        if self._on_release is not None:
            self._on_release(self)
            self._on_release = None


class DmaAllocator:
    """Allocates DMA regions for one device (or several sharing an IOMMU domain)."""

    page_size = HUGEPAGE_SIZE
    device_space: DmaSpace              # what the device using this allocator reads an address as
    pool_spaces: FrozenSet[DmaSpace]    # where the addresses of memory from here are valid

    def __init__(self) -> None:
        self.regions: List[DmaRegion] = []

    def _map(self, size: int) -> DmaMemory:
        raise NotImplementedError

    def _translate(self, memory: DmaMemory) -> List[int]:
        raise NotImplementedError

    def _unmap_dma(self, region: DmaRegion) -> None:
        """Undo what _translate registered with an IOMMU or model."""

    def allocate(self, size: int, contiguous: bool = False) -> DmaRegion:
        """At least size bytes, zeroed, in whole pages. contiguous=True: one
        DMA-contiguous block (descriptor rings); refused if it cannot be."""
        size = round_up(max(size, 1), self.page_size)
        memory = self._map(size)
        region = DmaRegion(memory, self.page_size, self._translate(memory), self._unmap_dma)
        if contiguous and not region.contiguous:
            region.release()
            raise DmaMemoryError(
                f"{size} bytes of DMA memory are not contiguous in DMA space",
                "ask for at most one hugepage (2 MiB) of contiguous memory, or use VFIO where IOVAs are contiguous",
            )
        self.regions.append(region)
        return region

    def mempool(self, num_bufs: int, entry_size: int = DEFAULT_ENTRY_SIZE, debug: bool = False) -> Mempool:
        """A pool of num_bufs packet buffers of entry_size bytes (header included)."""
        region = self.allocate(num_bufs * entry_size)
        return Mempool(region.memory, num_bufs, entry_size, region.page_dma, region.page_size, debug,
                       dma_spaces=self.pool_spaces)

    def release_all(self) -> None:
        while self.regions:
            self.regions.pop().release()


# --- hugepages -----------------------------------------------------------


def hugetlbfs_mounts(mounts: Path = Path("/proc/mounts")) -> Iterator[Path]:
    """Mount points of hugetlbfs with 2 MiB pages."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "hugetlbfs":
            opts = parts[3].split(",")
            if "pagesize=1024M" in opts or "pagesize=1G" in opts:
                continue
            yield Path(parts[1])


def hugepage_counts(sysfs: Path = HUGEPAGES_SYSFS) -> tuple:
    """(reserved, free) 2 MiB hugepages."""
    try:
        return (int((sysfs / "nr_hugepages").read_text()), int((sysfs / "free_hugepages").read_text()))
    except OSError:
        return (0, 0)


def reserve_hugepages(count: int, mount_point: Path, sysfs: Path = HUGEPAGES_SYSFS) -> tuple:
    """Reserve count 2 MiB hugepages and mount hugetlbfs at mount_point
    unless one is mounted already. Returns (pages reserved, mount or None)."""
    try:
        (sysfs / "nr_hugepages").write_text(str(count))
    except PermissionError as err:
        raise PermissionDenied(f"cannot reserve hugepages: {err.strerror}", "run `sudo ixypy hugepages N`") from err
    reserved, _ = hugepage_counts(sysfs)
    if reserved < count:
        raise HugepagesUnavailable(f"only {reserved} of {count} hugepages could be reserved (memory is fragmented or short)",
                                   "ask for fewer pages, or reserve them early after boot (kernel option hugepages=N)")
    mounted = next(hugetlbfs_mounts(), None)
    if count and mounted is None:
        mount_point.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "hugetlbfs", str(mount_point)],
                                capture_output=True, text=True)
        if result.returncode:
            raise HugepagesUnavailable(f"mounting hugetlbfs at {mount_point} failed: {result.stderr.strip()}")
        mounted = mount_point
    return reserved, mounted


def _hugepage_error(size: int, err: OSError) -> Exception:
    if err.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(f"no permission to map or lock {size} bytes of hugepage memory: {err.strerror}",
                                "run as root, or raise the memlock limit (ulimit -l) and give your user a hugetlbfs mount")
    reserved, free = hugepage_counts()
    if reserved == 0:
        why = "no 2 MiB hugepages are reserved"
    else:
        why = f"{free} of {reserved} reserved 2 MiB hugepages are free, {size // HUGEPAGE_SIZE} needed"
    return HugepagesUnavailable(f"cannot allocate {size} bytes of hugepage DMA memory: {why}")


class HugepageAllocator(DmaAllocator):
    """Hugepages with physical addresses from /proc/self/pagemap (for UIO)."""

    device_space = PHYSICAL
    pool_spaces = frozenset({PHYSICAL})

    def __init__(self, mount: Optional[Path] = None, pagemap: Path = Path("/proc/self/pagemap")) -> None:
        super().__init__()
        self.mount = mount if mount is not None else next(hugetlbfs_mounts(), None)
        self.pagemap = pagemap

    def _map(self, size: int) -> DmaMemory:
        try:
            if self.mount is None:
                # shared: a worker forked after set-up sees what the NIC writes (ixypy.processes)
                return DmaMemory(size, hugetlb=True, lock=True, shared=True)
            fd = self._open_backing_file(self.mount)
            try:
                os.ftruncate(fd, size)
                return DmaMemory(size, fd=fd, lock=True)
            finally:
                os.close(fd)
        except OSError as err:
            raise _hugepage_error(size, err) from err

    def _open_backing_file(self, mount: Path) -> int:
        # an unlinked file: the pages go back to the pool when the mapping goes
        path = mount / f"ixypy-{os.getpid()}-{len(self.regions)}-{id(self)}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o600)
        except PermissionError as err:
            raise PermissionDenied(f"cannot create a file in the hugetlbfs mount {mount}: {err.strerror}") from err
        os.unlink(path)
        return fd

    def _translate(self, memory: DmaMemory) -> List[int]:
        return [virt_to_phys(memory.address + off, self.pagemap) for off in range(0, memory.size, self.page_size)]


def virt_to_phys(address: int, pagemap: Path = Path("/proc/self/pagemap")) -> int:
    """Physical address of a mapped, present virtual address."""
    small_page = os.sysconf("SC_PAGE_SIZE")
    try:
        fd = os.open(pagemap, os.O_RDONLY)
    except PermissionError as err:
        raise PermissionDenied(f"cannot read {pagemap}: {err.strerror}",
                               "physical addresses need root; bind the NIC to vfio-pci to run without them") from err
    try:
        entry = os.pread(fd, 8, address // small_page * 8)
    finally:
        os.close(fd)
    if len(entry) != 8:
        raise DmaMemoryError(f"short read of {pagemap} for address {address:#x}")
    (value,) = struct.unpack("<Q", entry)
    if not value & PAGEMAP_PRESENT:
        raise DmaMemoryError(f"page at {address:#x} is not present in memory")
    pfn = value & PAGEMAP_PFN_MASK
    if pfn == 0:
        raise PermissionDenied("/proc/self/pagemap hides physical frame numbers from this process",
                               "physical addresses need root (CAP_SYS_ADMIN); bind the NIC to vfio-pci to run without them")
    return pfn * small_page + address % small_page


def physical_ram_end(iomem: Path = Path("/proc/iomem")) -> int:
    """One past the highest physical address of RAM ("System RAM" in
    /proc/iomem), or 0 when unknown: without root the kernel shows every
    range as 0, and then no IOVA = physical mapping can exist in this process
    either (IdentityVfioAllocator needs pagemap, so root)."""
    end = 0
    try:
        lines = iomem.read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        span, _, name = line.partition(" : ")
        if name.strip() == "System RAM" and "-" in span:
            last = int(span.strip().split("-")[1], 16)
            if last:                   # 0-0: the addresses are hidden from this reader
                end = max(end, last + 1)
    return end


def free_iova(size: int, taken: Iterable[Tuple[int, int]], windows: Iterable[Tuple[int, int]], lowest: int,
              align: int) -> Optional[int]:
    """The lowest IOVA >= lowest, aligned, where size bytes fit inside one of
    windows ((start, end inclusive) ranges) without touching any (iova, size)
    in taken; None if there is none."""
    taken = sorted(taken)
    for start, end in sorted(windows):
        pos = round_up(max(start, lowest), align)
        for iova, length in taken:
            if iova + length <= pos:
                continue
            if iova >= pos + size:
                break
            pos = round_up(iova + length, align)
        if pos + size - 1 <= end:
            return pos
    return None


class VfioAllocator(HugepageAllocator):
    """Hugepages mapped into a VFIO container at IOVAs we choose.

    The container is process-wide: every device's allocator maps into it,
    and so does IdentityVfioAllocator (IOVA = physical address) for legacy
    virtio. An IOVA is therefore the lowest free one that avoids every range
    already mapped in the container (its `mappings`, the one registry of
    what is mapped), lies inside the IOMMU's valid ranges
    (`iova_ranges()`, which leave out e.g. the MSI window) and starts above
    physical RAM, so a later IOVA = physical mapping cannot collide with it.
    Above RAM is still low: an IOMMU with a 39-bit address width takes it."""

    IOVA_BASE = 0x1000_0000
    ALIGN = HUGEPAGE_SIZE

    def __init__(self, container: "VfioContainer", mount: Optional[Path] = None, ram_end: Optional[int] = None) -> None:
        super().__init__(mount)
        self.container = container
        self.ram_end = physical_ram_end() if ram_end is None else ram_end
        self.device_space = container.dma_space
        self.pool_spaces = frozenset({container.dma_space})

    def _translate(self, memory: DmaMemory) -> List[int]:
        taken = [(iova, size) for iova, (_, size) in self.container.mappings.items()]
        ranges = getattr(self.container, "iova_ranges", None)
        windows = (ranges() if ranges is not None else []) or [(0, (1 << 64) - 1)]
        iova = free_iova(memory.size, taken, windows, max(self.IOVA_BASE, self.ram_end), self.ALIGN)
        if iova is None:
            raise DmaMemoryError(f"no free IOVA range of {memory.size:#x} bytes above {max(self.IOVA_BASE, self.ram_end):#x} "
                                 f"in the IOMMU's valid ranges {[(hex(a), hex(b)) for a, b in windows]}",
                                 "release DMA memory (close devices, drop mempools) or allocate less")
        self.container.map_dma(memory.address, iova, memory.size)
        return [iova + off for off in range(0, memory.size, self.page_size)]

    def _unmap_dma(self, region: DmaRegion) -> None:
        self.container.unmap_dma(region.page_dma[0], region.size)


class VirtualAllocator(DmaAllocator):
    """Ordinary memory, DMA address = virtual address (the sim device). The
    model is told each region (on_map) as an IOMMU would be. The memory is
    shared across fork, as the models are (csrc/sim/sim_shared.h): a worker
    process forked after the device was opened receives and sends in it."""

    device_space = SIM
    pool_spaces = frozenset({SIM})

    def __init__(self, on_map: Callable[[int, int], None], on_unmap: Callable[[int, int], None]) -> None:
        super().__init__()
        self.on_map = on_map
        self.on_unmap = on_unmap

    def _map(self, size: int) -> DmaMemory:
        return DmaMemory(size, shared=True)

    def _translate(self, memory: DmaMemory) -> List[int]:
        self.on_map(memory.address, memory.size)
        return [memory.address + off for off in range(0, memory.size, self.page_size)]

    def _unmap_dma(self, region: DmaRegion) -> None:
        self.on_unmap(region.address, region.size)


class IdentityVfioAllocator(HugepageAllocator):
    """Hugepages mapped into a VFIO container at IOVA = physical address.

    For devices that bypass the IOMMU: a virtio device that has not
    negotiated VIRTIO_F_ACCESS_PLATFORM (VirtIO 1.x, 6.1) uses physical
    addresses, and a legacy device cannot negotiate it. Mapping IOVA =
    physical keeps both worlds right: the device's bypassed accesses and any
    translated ones land on the same pages. Needs physical addresses, so
    root (pagemap); each hugepage is mapped on its own."""

    def __init__(self, container: "VfioContainer", mount: Optional[Path] = None) -> None:
        super().__init__(mount)
        self.container = container
        # mapped at IOVA = physical: valid for devices that bypass the IOMMU and for those behind it
        self.pool_spaces = frozenset({PHYSICAL, container.dma_space})

    def _translate(self, memory: DmaMemory) -> List[int]:
        try:
            pages = super()._translate(memory)
        except PermissionDenied as err:
            raise PermissionDenied(
                f"{err.message}: this device bypasses the IOMMU (a virtio device that offers no "
                f"VIRTIO_F_ACCESS_PLATFORM, as every legacy one), so even under VFIO it needs physical addresses",
                "run as root (CAP_SYS_ADMIN reads /proc/self/pagemap), or give the VM a VirtIO 1.x NIC that offers "
                "ACCESS_PLATFORM (QEMU: -device virtio-net-pci,iommu_platform=on): then VFIO alone suffices") from None
        for i, phys in enumerate(pages):
            self.container.map_dma(memory.address + i * self.page_size, phys, self.page_size)
        return pages

    def _unmap_dma(self, region: DmaRegion) -> None:
        for phys in region.page_dma:
            self.container.unmap_dma(phys, region.page_size)
