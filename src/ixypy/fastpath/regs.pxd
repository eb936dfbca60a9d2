# Register access: a memory BAR (MMIO, or a device model's register ops) and
# an I/O-port BAR (exact-width pread/pwrite, or a model's port ops).
from libc.stdint cimport uint8_t, uint16_t, uint32_t

cdef extern from "ixy_regs.h" nogil:
    struct ixy_reg_ops:
        uint32_t (*read32)(void *ctx, uint32_t offset)
        void (*write32)(void *ctx, uint32_t offset, uint32_t value)
        void *ctx
    struct ixy_bar:
        volatile uint8_t *base
        const ixy_reg_ops *ops
        size_t len
    void ixy_rmb()
    void ixy_cpu_relax()
    uint32_t ixy_read32(const ixy_bar *bar, uint32_t off)
    void ixy_write32(const ixy_bar *bar, uint32_t off, uint32_t value)
    uint8_t ixy_mmio_read8(volatile uint8_t *base, uint32_t off)
    uint16_t ixy_mmio_read16(volatile uint8_t *base, uint32_t off)
    void ixy_mmio_write8(volatile uint8_t *base, uint32_t off, uint8_t value)
    void ixy_mmio_write16(volatile uint8_t *base, uint32_t off, uint16_t value)

cdef extern from "ixy_portio.h" nogil:
    struct ixy_port_ops:
        uint32_t (*read)(void *ctx, uint32_t offset, unsigned width)
        void (*write)(void *ctx, uint32_t offset, unsigned width, uint32_t value)
        void *ctx


cdef class Bar:
    cdef ixy_bar bar
    cdef object keepalive
    cdef void _check(self, uint32_t offset, uint32_t width=*) except *


cdef class PortIo:
    cdef readonly int fd
    cdef readonly long base
    cdef readonly unsigned length
    cdef const ixy_port_ops *ops
    cdef object keepalive
    cdef long _pos(self, unsigned offset, unsigned width) except -1
    cdef uint32_t _read(self, unsigned offset, unsigned width) except? 0xFFFFFFFF
    cdef int _write(self, unsigned offset, unsigned width, uint32_t value) except -1
