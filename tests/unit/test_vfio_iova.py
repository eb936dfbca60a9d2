"""IOVAs in ixypy's process-wide VFIO container: every device's allocator
maps into the same container, and so does the IOVA = physical allocator of
legacy virtio. The chosen IOVAs must never overlap a mapping already there,
nor physical RAM (an identity mapping made later would collide), and must
stay inside the IOMMU's valid ranges."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from ixypy import vfio
from ixypy.memory import (HUGEPAGE_SIZE, DmaSpace, HugepageAllocator, IdentityVfioAllocator, VfioAllocator, free_iova,
                          physical_ram_end)

from .fakevfio import FakeVfio

GIB = 1 << 30


class RecordingContainer:
    """Only the container's registry of mappings (no IOMMU ranges)."""

    def __init__(self) -> None:
        self.mappings = {}
        self.dma_space = DmaSpace("IOVAs of a recording container")

    def map_dma(self, vaddr: int, iova: int, size: int) -> None:
        assert all(iova + size <= i or i + s <= iova for i, (_, s) in self.mappings.items()), "IOVA ranges overlap"
        self.mappings[iova] = (vaddr, size)


def pages(n: int):
    return SimpleNamespace(address=0x7F0000000000, size=n * HUGEPAGE_SIZE)


def test_allocators_sharing_a_container_never_overlap():
    container, other = RecordingContainer(), RecordingContainer()
    first, second, elsewhere = (VfioAllocator(c, ram_end=0) for c in (container, container, other))
    got = first._translate(pages(4)) + second._translate(pages(4)) + first._translate(pages(4))
    assert len(set(got)) == len(got) == 12
    assert sorted(container.mappings) == [VfioAllocator.IOVA_BASE + k * 4 * HUGEPAGE_SIZE for k in range(3)]
    assert elsewhere._translate(pages(4))[0] == VfioAllocator.IOVA_BASE     # another container: its own range


def test_free_iova_first_fit_around_mappings_and_windows():
    taken = [(0x1000_0000, 0x40_0000), (0x1060_0000, 0x20_0000)]
    windows = [(0, 0xFEDF_FFFF), (0xFEF0_0000, (1 << 39) - 1)]
    assert free_iova(0x20_0000, taken, windows, 0x1000_0000, HUGEPAGE_SIZE) == 0x1040_0000   # the hole fits
    assert free_iova(0x40_0000, taken, windows, 0x1000_0000, HUGEPAGE_SIZE) == 0x1080_0000   # it does not
    # a range that would cross the MSI window goes above it
    assert free_iova(0x40_0000, [], windows, 0xFEC0_0000, HUGEPAGE_SIZE) == 0xFF00_0000
    assert free_iova(0x40_0000, [], [(0, 0x3F_FFFF)], 0x20_0000, HUGEPAGE_SIZE) is None


def test_physical_ram_end(tmp_path: Path):
    iomem = tmp_path / "iomem"
    iomem.write_text("00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n000a0000-000bffff : PCI Bus 0000:00\n"
                     "00100000-3ffdffff : System RAM\n  01000000-01ffffff : Kernel code\nfeb80000-febfffff : PCI Bus\n")
    assert physical_ram_end(iomem) == 0x3FFE0000
    iomem.write_text("00000000-00000000 : System RAM\n")       # what a non-root reader sees
    assert physical_ram_end(iomem) == 0
    assert physical_ram_end(tmp_path / "missing") == 0


@pytest.fixture
def container(tmp_path, monkeypatch, fake):
    fv = FakeVfio(tmp_path / "vfiofake")
    monkeypatch.setattr(vfio, "ioctl", fv.ioctl)
    monkeypatch.setattr(vfio, "_containers", {})
    fake.add_device("0000:00:10.0", driver="vfio-pci", iommu_group=7)
    c = vfio.VfioContainer(dev_root=fv.dev, sysfs_root=fake.sys)
    c.group(7)
    c.fake = fv
    yield c
    c.close()


@pytest.mark.parametrize("identity_first", [True, False])
def test_identity_and_iova_allocators_in_one_container(container, monkeypatch, identity_first):
    """Legacy virtio (IOVA = physical) next to igb (chosen IOVAs) in one
    process: the kernel (here the fake, which refuses overlaps with EEXIST
    as type1 does) accepts every mapping, in either order."""
    ram = GIB                                              # a 1 GiB guest: RAM at 0 .. 1 GiB
    physical = [0x1000_0000, 0x1020_0000, 0x3FE0_0000]     # hugepages right where IOVA_BASE used to start
    monkeypatch.setattr(HugepageAllocator, "_translate", lambda self, memory: physical[: memory.size // HUGEPAGE_SIZE])
    identity = IdentityVfioAllocator(container)
    chosen = VfioAllocator(container, ram_end=ram)
    if identity_first:
        got_identity = identity._translate(pages(3))
        got_chosen = chosen._translate(pages(4))
    else:
        got_chosen = chosen._translate(pages(4))
        got_identity = identity._translate(pages(3))
    assert got_identity == physical
    assert got_chosen[0] >= ram and got_chosen[-1] + HUGEPAGE_SIZE <= (1 << 39)
    assert len(container.fake.maps) == 3 + 1
    # a second device's allocator in the same container: after the first one, and freed ranges are reused
    other = VfioAllocator(container, ram_end=ram)
    second = other._translate(pages(1))
    assert second[0] == got_chosen[-1] + HUGEPAGE_SIZE
    container.unmap_dma(got_chosen[0], 4 * HUGEPAGE_SIZE)
    assert other._translate(pages(2))[0] == got_chosen[0]


def test_iova_allocator_skips_the_reserved_msi_window(container):
    container.fake.iova_ranges = [(0, 0xFEDF_FFFF), (0xFEF0_0000, (1 << 39) - 1)]
    got = VfioAllocator(container, ram_end=0xFED0_0000)._translate(pages(2))
    assert got[0] == 0xFF00_0000



def test_which_devices_reach_which_pools():
    """A device behind the container's IOMMU reaches IOVA pools and IOVA =
    physical ones; a device that uses physical addresses (UIO, or one that
    bypasses the IOMMU) reaches physical and IOVA = physical ones, never
    IOVAs; another container's IOVAs are its own."""
    container, other = RecordingContainer(), RecordingContainer()
    allocators = {"iova": VfioAllocator(container, ram_end=0), "identity": IdentityVfioAllocator(container),
                  "uio": HugepageAllocator(), "other": VfioAllocator(other, ram_end=0)}
    reach = {(device, pool) for device, d in allocators.items() for pool, p in allocators.items()
             if d.device_space in p.pool_spaces}
    assert reach == {("iova", "iova"), ("iova", "identity"), ("identity", "identity"), ("identity", "uio"),
                     ("uio", "identity"), ("uio", "uio"), ("other", "other")}
