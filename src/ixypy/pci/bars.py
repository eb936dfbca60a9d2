"""BARs: what the ``resource`` file says about them, and a memory BAR
mapped into this process.

A memory BAR is mapped (from sysfs ``resourceN`` or a VFIO region) and
returned as a :class:`MappedBar` ``(mmap, address, length)``;
``MappedBar.bar()`` wraps it in a fast-path ``Bar``. An I/O-port BAR cannot
be mapped: the device's ``ioport(n)`` returns a fast-path ``PortIo`` that
does exact-width pread/pwrite on it.
"""
from __future__ import annotations

import ctypes
import mmap
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..fastpath.regs import Bar

#: resource-file flags (include/linux/ioport.h)
IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200


class BarInfo(NamedTuple):
    index: int      # type: ignore[assignment]  # the field shadows tuple.index, as meant
    start: int
    size: int
    flags: int

    @property
    def is_io(self) -> bool:
        return bool(self.flags & IORESOURCE_IO)

    @property
    def is_memory(self) -> bool:
        return bool(self.flags & IORESOURCE_MEM)


class MappedBar(NamedTuple):
    """A memory BAR mapped into this process: ``(mmap, address, length)``.
    The mapping lives as long as ``mmap`` is open; ``bar()`` wraps it in a
    fast-path ``Bar`` that keeps the mmap alive."""

    mmap: mmap.mmap
    address: int
    length: int

    def bar(self) -> "Bar":
        from ..fastpath.regs import Bar
        return Bar(address=self.address, length=self.length, keepalive=self.mmap)


def _mmap_address(mm: mmap.mmap) -> int:
    # The temporary c_char export is dropped at once, so mm.close() still works.
    return ctypes.addressof(ctypes.c_char.from_buffer(mm))


def map_fd(fd: int, length: int, offset: int = 0) -> MappedBar:
    """mmap ``length`` bytes of ``fd`` at ``offset``, shared, read/write."""
    mm = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
    return MappedBar(mm, _mmap_address(mm), length)
