# cython: language_level=3
"""ixypy's fast path: register access, DMA memory, mempools, packet batches
and the descriptor loops. Everything per packet runs without the GIL and
without Python objects; Python is touched once per batch."""
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

REG_OPS_CAPSULE = "ixypy.reg_ops"


cdef class Bar:
    """A device's register BAR: an mmap'd BAR (address, length) or a device
    model's register ops (a PyCapsule named "ixypy.reg_ops")."""
    cdef ixy_bar bar
    cdef object keepalive

    def __cinit__(self, size_t address=0, size_t length=0, object ops=None, object keepalive=None):
        if ops is not None:
            if not PyCapsule_IsValid(ops, b"ixypy.reg_ops"):
                raise TypeError("ops must be a PyCapsule named 'ixypy.reg_ops'")
            self.bar.ops = <const ixy_reg_ops *> PyCapsule_GetPointer(ops, b"ixypy.reg_ops")
        elif address == 0:
            raise ValueError("a Bar needs a mapped address or register ops")
        self.bar.base = <volatile uint8_t *> address
        self.bar.len = length
        self.keepalive = keepalive

    cdef inline void _check(self, uint32_t offset) except *:
        if self.bar.ops == NULL and (offset & 3 or offset + 4 > self.bar.len):
            raise IndexError(f"register offset {offset:#x} outside the {self.bar.len:#x}-byte BAR or unaligned")

    def read32(self, uint32_t offset) -> int:
        self._check(offset)
        return ixy_read32(&self.bar, offset)

    def write32(self, uint32_t offset, uint32_t value) -> None:
        self._check(offset)
        ixy_write32(&self.bar, offset, value)


cdef extern from "<unistd.h>" nogil:
    ssize_t pread(int fd, void *buf, size_t count, long offset)
    ssize_t pwrite(int fd, const void *buf, size_t count, long offset)

from libc.errno cimport errno
import os as _os


cdef class PortIo:
    """An I/O-port BAR reached through a file: sysfs ``resourceN`` under UIO,
    or the VFIO device fd at the region's offset. I/O ports take exactly
    the register's width: 1, 2 or 4 bytes per access (a 6-byte read fails)."""
    cdef readonly int fd
    cdef readonly long base
    cdef readonly unsigned length

    def __cinit__(self, int fd, long base, unsigned length):
        self.fd = fd
        self.base = base
        self.length = length

    cdef inline long _pos(self, unsigned offset, unsigned width) except -1:
        if offset + width > self.length:
            raise IndexError(f"I/O port offset {offset:#x}+{width} outside the {self.length}-byte BAR")
        return self.base + offset

    cdef uint32_t _read(self, unsigned offset, unsigned width) except? 0xFFFFFFFF:
        cdef uint32_t v = 0
        cdef long pos = self._pos(offset, width)
        cdef ssize_t n
        with nogil:
            n = pread(self.fd, &v, width, pos)
        if n != <ssize_t> width:
            raise OSError(errno if n < 0 else 5, f"{width}-byte I/O port read at {offset:#x}: {_os.strerror(errno) if n < 0 else 'short read'}")
        return v

    cdef int _write(self, unsigned offset, unsigned width, uint32_t value) except -1:
        cdef long pos = self._pos(offset, width)
        cdef ssize_t n
        with nogil:
            n = pwrite(self.fd, &value, width, pos)
        if n != <ssize_t> width:
            raise OSError(errno if n < 0 else 5, f"{width}-byte I/O port write at {offset:#x}: {_os.strerror(errno) if n < 0 else 'short write'}")
        return 0

    def read8(self, unsigned offset) -> int:
        return self._read(offset, 1)

    def read16(self, unsigned offset) -> int:
        return self._read(offset, 2)

    def read32(self, unsigned offset) -> int:
        return self._read(offset, 4)

    def write8(self, unsigned offset, uint8_t value) -> None:
        self._write(offset, 1, value)

    def write16(self, unsigned offset, uint16_t value) -> None:
        self._write(offset, 2, value)

    def write32(self, unsigned offset, uint32_t value) -> None:
        self._write(offset, 4, value)
