# C declarations shared by the fast path and the device model wrapper.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "ixy_regs.h" nogil:
    struct ixy_reg_ops:
        uint32_t (*read32)(void *ctx, uint32_t offset)
        void (*write32)(void *ctx, uint32_t offset, uint32_t value)
        void *ctx
    struct ixy_bar:
        volatile uint8_t *base
        const ixy_reg_ops *ops
        size_t len
    uint32_t ixy_read32(const ixy_bar *bar, uint32_t off)
    void ixy_write32(const ixy_bar *bar, uint32_t off, uint32_t value)
