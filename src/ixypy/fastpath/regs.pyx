# cython: language_level=3, binding=False, always_allow_keywords=False
"""Register access for the drivers: :class:`Bar` (a memory BAR, 32-bit
MMIO; 8 and 16 bits too on a mapped BAR, for registers that must be
accessed at their own width) and :class:`PortIo` (an I/O-port BAR, exact-width accesses). Either
may be backed by a device model's ops instead of real hardware."""
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from libc.errno cimport errno

import os as _os

from ..errors import DeviceError


cdef extern from "<unistd.h>" nogil:
    ssize_t pread(int fd, void *buf, size_t count, long offset)
    ssize_t pwrite(int fd, const void *buf, size_t count, long offset)


cdef class Bar:
    """A device's register BAR: an mmap'd BAR (address, length) or a device
    model's register ops (a PyCapsule named "ixypy.reg_ops")."""

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

    cdef void _check(self, uint32_t offset, uint32_t width=4) except *:
        if self.bar.ops == NULL and self.bar.base == NULL:
            raise DeviceError("register access after the device was closed", "open the device again")
        if self.bar.ops != NULL and width != 4:
            raise DeviceError(f"a {8 * width}-bit access at {offset:#x}: a device model's registers take 32 bits only")
        if self.bar.ops == NULL and (offset & (width - 1) or offset + width > self.bar.len):
            raise IndexError(f"register offset {offset:#x} outside the {self.bar.len:#x}-byte BAR or unaligned")

    def read32(self, uint32_t offset) -> int:
        self._check(offset)
        return ixy_read32(&self.bar, offset)

    def write32(self, uint32_t offset, uint32_t value) -> None:
        self._check(offset)
        ixy_write32(&self.bar, offset, value)

    def read8(self, uint32_t offset) -> int:
        self._check(offset, 1)
        return ixy_mmio_read8(self.bar.base, offset)

    def read16(self, uint32_t offset) -> int:
        self._check(offset, 2)
        return ixy_mmio_read16(self.bar.base, offset)

    def write8(self, uint32_t offset, uint8_t value) -> None:
        self._check(offset, 1)
        ixy_mmio_write8(self.bar.base, offset, value)

    def write16(self, uint32_t offset, uint16_t value) -> None:
        self._check(offset, 2)
        ixy_mmio_write16(self.bar.base, offset, value)

    def detach(self) -> None:
        """Forget the mapping (the device is closed): later accesses raise."""
        self.bar.base = NULL
        self.bar.ops = NULL
        self.bar.len = 0
        self.keepalive = None


cdef class PortIo:
    """An I/O-port BAR reached through a file: sysfs ``resourceN`` under UIO,
    or the VFIO device fd at the region's offset; or a device model's port
    ops (a PyCapsule named "ixypy.port_ops", fd -1, base 0). I/O ports take
    exactly the register's width: 1, 2 or 4 bytes per access (a 6-byte read
    fails)."""

    def __cinit__(self, int fd, long base, unsigned length, object ops=None, object keepalive=None):
        if ops is not None:
            if not PyCapsule_IsValid(ops, b"ixypy.port_ops"):
                raise TypeError("ops must be a PyCapsule named 'ixypy.port_ops'")
            self.ops = <const ixy_port_ops *> PyCapsule_GetPointer(ops, b"ixypy.port_ops")
        self.fd = fd
        self.base = base
        self.length = length
        self.keepalive = keepalive

    cdef long _pos(self, unsigned offset, unsigned width) except -1:
        if offset + width > self.length:
            raise IndexError(f"I/O port offset {offset:#x}+{width} outside the {self.length}-byte BAR")
        return self.base + offset

    cdef uint32_t _read(self, unsigned offset, unsigned width) except? 0xFFFFFFFF:
        cdef uint32_t v = 0
        cdef long pos = self._pos(offset, width)
        cdef ssize_t n
        if self.ops != NULL:
            return self.ops.read(self.ops.ctx, pos, width)
        with nogil:
            n = pread(self.fd, &v, width, pos)
        if n != <ssize_t> width:
            raise OSError(errno if n < 0 else 5, f"{width}-byte I/O port read at {offset:#x}: {_os.strerror(errno) if n < 0 else 'short read'}")
        return v

    cdef int _write(self, unsigned offset, unsigned width, uint32_t value) except -1:
        cdef long pos = self._pos(offset, width)
        cdef ssize_t n
        if self.ops != NULL:
            self.ops.write(self.ops.ctx, pos, width, value)
            return 0
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
