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
