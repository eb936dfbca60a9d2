/* Register access for ixypy: MMIO through a mapped BAR, or through a device
 * model's read/write functions (the sim NIC), behind one inline interface.
 *
 * A real BAR is accessed with volatile 32-bit loads and stores framed by
 * compiler barriers, so the compiler neither reorders descriptor writes past
 * a tail write nor merges or splits the access. On x86 stores to uncached
 * MMIO are not reordered with earlier stores to write-back memory, so no
 * fence instruction is needed (as in the Linux writel on x86).
 */
#ifndef IXY_REGS_H
#define IXY_REGS_H

#include <stdint.h>
#include <stddef.h>

#define ixy_compiler_barrier() __asm__ __volatile__("" ::: "memory")

#if defined(__x86_64__) || defined(__i386__)
#define ixy_rmb() ixy_compiler_barrier()
#define ixy_wmb() ixy_compiler_barrier()
/* a spin-wait hint: an empty poll loop yields the core's pipeline (and the
 * descriptor's cache line) for a moment instead of hammering it */
#define ixy_cpu_relax() __asm__ __volatile__("pause" ::: "memory")
#else
#define ixy_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define ixy_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#define ixy_cpu_relax() ixy_compiler_barrier()
#endif

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

static inline uint32_t ixy_read32(const struct ixy_bar *bar, uint32_t off)
{
    if (bar->ops)
        return bar->ops->read32(bar->ops->ctx, off);
    ixy_compiler_barrier();
    uint32_t v = *(volatile uint32_t *)(bar->base + off);
    ixy_compiler_barrier();
    return v;
}

static inline void ixy_write32(const struct ixy_bar *bar, uint32_t off, uint32_t value)
{
    if (bar->ops) {
        bar->ops->write32(bar->ops->ctx, off, value);
        return;
    }
    ixy_compiler_barrier();
    *(volatile uint32_t *)(bar->base + off) = value;
    ixy_compiler_barrier();
}

#endif
