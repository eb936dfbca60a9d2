"""Two devices in one VFIO container (ixypy's is process-wide) must get
disjoint IOVAs: each device's allocator draws from the container's range."""
from types import SimpleNamespace

from ixypy.memory import HUGEPAGE_SIZE, VfioAllocator


class RecordingContainer:
    def __init__(self) -> None:
        self.maps = []

    def map_dma(self, vaddr: int, iova: int, size: int) -> None:
        assert all(iova + size <= i or i + s <= iova for _, i, s in self.maps), "IOVA ranges overlap"
        self.maps.append((vaddr, iova, size))


def test_allocators_sharing_a_container_never_overlap():
    container, other = RecordingContainer(), RecordingContainer()
    first, second, elsewhere = VfioAllocator(container), VfioAllocator(container), VfioAllocator(other)
    memory = SimpleNamespace(address=0x7F0000000000, size=4 * HUGEPAGE_SIZE)
    pages = first._translate(memory) + second._translate(memory) + first._translate(memory)
    assert len(set(pages)) == len(pages) == 12
    assert [iova for _, iova, _ in container.maps] == [VfioAllocator.IOVA_BASE + k * 4 * HUGEPAGE_SIZE for k in range(3)]
    assert elsewhere._translate(memory)[0] == VfioAllocator.IOVA_BASE     # another container: its own range
