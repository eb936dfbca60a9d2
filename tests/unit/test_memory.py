"""Hugepage DMA memory on the host, for real: pages are reserved for the
test and given back after it."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ixypy import PacketBatch
from ixypy import DmaMemory
from ixypy.errors import DmaMemoryError, HugepagesUnavailable, PermissionDenied
from ixypy.memory import (HUGEPAGE_SIZE, HUGEPAGES_SYSFS, DmaAllocator, HugepageAllocator, hugepage_counts,
                          virt_to_phys)

from ..conftest import require

NR = HUGEPAGES_SYSFS / "nr_hugepages"


def _set_hugepages(n: int) -> int:
    NR.write_text(str(n))
    return int(NR.read_text())


@pytest.fixture
def hugepages():
    """Reserve 8 hugepages for the test, restore the previous count after."""
    require(os.geteuid() == 0, "reserving hugepages needs root")
    require(NR.exists(), f"{NR} missing: the kernel has no 2 MiB hugepages")
    before = int(NR.read_text())
    got = _set_hugepages(before + 8)
    require(got >= before + 8, f"could reserve only {got - before} of 8 hugepages")
    yield
    gc.collect()
    _set_hugepages(before)


def test_hugepage_region_pages_translate_to_distinct_aligned_stable_addresses(hugepages):
    alloc = HugepageAllocator()
    region = alloc.allocate(3 * HUGEPAGE_SIZE)
    assert region.size == 3 * HUGEPAGE_SIZE and region.address % HUGEPAGE_SIZE == 0
    phys = region.page_dma
    assert len(phys) == 3 and len(set(phys)) == 3
    assert all(p % HUGEPAGE_SIZE == 0 for p in phys)
    region.view()[100] = 0xAB                  # touching memory does not move it (hugepages are locked)
    assert [virt_to_phys(region.address + i * HUGEPAGE_SIZE) for i in range(3)] == phys
    assert virt_to_phys(region.address + HUGEPAGE_SIZE + 12345) == phys[1] + 12345
    _, free = hugepage_counts()
    alloc.release_all()
    del region
    assert hugepage_counts()[1] == free + 3     # the pages went back to the pool


@pytest.mark.parametrize("mount", ["hugetlbfs", "none"])
def test_a_forked_worker_shares_the_hugepages(hugepages, tmp_path: Path, mount):
    """A worker process forked after set-up (ixypy.processes) sees the
    NIC's writes and its parent sees the worker's: the pages are the same,
    whether they come from a hugetlbfs file or, with no mount, anonymous
    MAP_HUGETLB memory. Failed on the latter while it was MAP_PRIVATE: the
    worker's write went to a copy of its own."""
    if mount == "hugetlbfs":
        require(subprocess.run(["mount", "-t", "hugetlbfs", "none", str(tmp_path)]).returncode == 0,
                "mounting hugetlbfs needs root")
    try:
        alloc = HugepageAllocator(mount=tmp_path if mount == "hugetlbfs" else None)
        region = alloc.allocate(HUGEPAGE_SIZE)
        pid = os.fork()
        if pid == 0:
            try:
                region.view()[4321] = 0x5A
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert region.view()[4321] == 0x5A
        alloc.release_all()
        del region
        gc.collect()
    finally:
        if mount == "hugetlbfs":
            subprocess.run(["umount", str(tmp_path)])


def test_mempool_in_hugepages_translates_every_buffer(hugepages):
    alloc = HugepageAllocator()
    pool = alloc.mempool(2048)                 # 4 MiB: two pages, likely not contiguous
    per_page = HUGEPAGE_SIZE // 2048
    region = alloc.regions[0]
    for i in (0, 1, per_page - 1, per_page, 2047):
        vaddr = region.address + i * 2048 + 128
        assert pool.buf_dma(i) == virt_to_phys(vaddr)
    batch = PacketBatch(64)
    assert batch.alloc(pool) == 64
    batch.free()


class _FakeDma(DmaAllocator):
    """Anonymous memory whose 4 KiB pages get the DMA addresses given."""

    page_size = 4096

    def __init__(self, dma) -> None:
        super().__init__()
        self.dma = dma
        self.unmapped = []

    def _map(self, size: int) -> DmaMemory:
        return DmaMemory(size)

    def _translate(self, memory: DmaMemory) -> list:
        return self.dma[:memory.size // self.page_size]

    def _unmap_dma(self, region) -> None:
        self.unmapped.append(region)


def test_contiguous_request_checked():
    """A region asked for as contiguous is refused (and its mapping undone)
    when its pages are not contiguous in DMA space; one whose pages are is
    taken; without the request, any pages are."""
    ok = _FakeDma([0x10000, 0x11000, 0x12000])
    assert ok.allocate(3 * 4096, contiguous=True).page_dma == [0x10000, 0x11000, 0x12000]
    bad = _FakeDma([0x10000, 0x12000, 0x13000])
    with pytest.raises(DmaMemoryError, match="12288 bytes of DMA memory are not contiguous"):
        bad.allocate(3 * 4096, contiguous=True)
    assert len(bad.unmapped) == 1 and bad.regions == []
    assert bad.allocate(3 * 4096).page_dma == [0x10000, 0x12000, 0x13000]


def test_no_hugepages_reserved_gives_hint():
    require(os.geteuid() == 0, "changing the hugepage reservation needs root")
    before = int(NR.read_text())
    _set_hugepages(0)
    try:
        with pytest.raises(HugepagesUnavailable, match="no 2 MiB hugepages are reserved") as err:
            HugepageAllocator(mount=None).allocate(HUGEPAGE_SIZE)
        assert "ixypy hugepages" in str(err.value)
    finally:
        _set_hugepages(before)


def test_unprivileged_pagemap_read_is_permission_denied(hugepages, tmp_path: Path):
    """Since Linux 4.2 a process without CAP_SYS_ADMIN reads frame number 0."""
    script = (
        "import os, mmap, ctypes\n"
        "from ixypy.memory import virt_to_phys\n"
        "from ixypy.errors import PermissionDenied\n"
        "os.setgid(65534); os.setuid(65534)   # drop root after the imports\n"
        "m = mmap.mmap(-1, 4096); m[0] = 1\n"
        "addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
        "try:\n"
        "    virt_to_phys(addr)\n"
        "except PermissionDenied as e:\n"
        "    print('DENIED', e)\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(src)}, cwd="/")
    assert "DENIED" in out.stdout, out.stderr
    assert "vfio" in out.stdout.lower()
