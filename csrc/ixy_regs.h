/* Register access for ixypy: MMIO through a mapped BAR, or through a device
 * model's read/write functions (the sim NIC), behind one inline interface.
 *
 * A real BAR is accessed with volatile 32-bit loads and stores framed by
 * barriers, so neither the compiler nor the CPU moves descriptor writes past
 * a tail write, and no access is merged or split.
 */
#ifndef IXY_REGS_H
#define IXY_REGS_H

#include <stdint.h>
#include <stddef.h>

#define ixy_compiler_barrier() __asm__ __volatile__("" ::: "memory")

/* Ordering, x86 only: loads are not reordered with other loads, and stores
 * (to write-back memory or uncached MMIO) not with earlier stores, so a
 * compiler barrier orders descriptor writes before the tail write that hands
 * them to the NIC (as Linux's wmb/writel on x86). A weakly ordered CPU needs
 * real device-memory barriers here, which nobody has written or tested yet. */
#if !defined(__x86_64__) && !defined(__i386__)
#error "ixypy's fast path is written for x86 memory ordering: ixy_wmb/ixy_rmb need device-memory barriers (as Linux's dma_wmb/wmb) on this architecture"
#endif
#define ixy_rmb() ixy_compiler_barrier()
#define ixy_wmb() ixy_compiler_barrier()
/* a spin-wait hint: an empty poll loop yields the core's pipeline (and the
 * descriptor's cache line) for a moment instead of hammering it */
#define ixy_cpu_relax() __asm__ __volatile__("pause" ::: "memory")

/* A device model's register file (csrc/sim). ctx is the model's port. */
struct ixy_reg_ops {
    uint32_t (*read32)(void *ctx, uint32_t offset);
    void (*write32)(void *ctx, uint32_t offset, uint32_t value);
    void *ctx;
};

/* What the fast path knows about a BAR: a mapping, or a model's ops. */
struct ixy_bar {
    volatile uint8_t *base;          /* mmap of the BAR, NULL for a model */
    const struct ixy_reg_ops *ops;   /* NULL for a real BAR */
    size_t len;
};

/* One MMIO access at its own width on a mapped BAR, framed by barriers:
 * a write comes after every store before it (descriptors before the tail),
 * and no access is merged, split or moved. The 8- and 16-bit ones are for
 * registers that must be accessed at their own width (VirtIO 1.x 4.1.3.1:
 * the common configuration's fields); a model's ops take 32 bits only. */
#define IXY_MMIO(bits)                                                                        \
static inline uint##bits##_t ixy_mmio_read##bits(volatile uint8_t *base, uint32_t off)        \
{                                                                                             \
    ixy_compiler_barrier();                                                                   \
    uint##bits##_t v = *(volatile uint##bits##_t *)(base + off);                              \
    ixy_compiler_barrier();                                                                   \
    return v;                                                                                 \
}                                                                                             \
static inline void ixy_mmio_write##bits(volatile uint8_t *base, uint32_t off, uint##bits##_t value) \
{                                                                                             \
    ixy_wmb();                                                                                \
    *(volatile uint##bits##_t *)(base + off) = value;                                         \
    ixy_compiler_barrier();                                                                   \
}
IXY_MMIO(8)
IXY_MMIO(16)
IXY_MMIO(32)

static inline uint32_t ixy_read32(const struct ixy_bar *bar, uint32_t off)
{
    if (bar->ops)
        return bar->ops->read32(bar->ops->ctx, off);
    return ixy_mmio_read32(bar->base, off);
}

static inline void ixy_write32(const struct ixy_bar *bar, uint32_t off, uint32_t value)
{
    if (bar->ops)
        bar->ops->write32(bar->ops->ctx, off, value);
    else
        ixy_mmio_write32(bar->base, off, value);
}

#endif
