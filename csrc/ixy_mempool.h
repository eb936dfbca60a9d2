/* Packet buffers and mempools.
 *
 * A mempool is one DMA region cut into equal entries. Each entry starts with
 * a struct ixy_buf header (what the driver needs to hand the buffer to a NIC),
 * then headroom (so a driver can put a device header, e.g. virtio-net's, in
 * front of the packet without a copy), then the packet data. Free entries are
 * a stack of indices: alloc and free are O(1) per buffer, no locks (a pool
 * belongs to one thread).
 */
#ifndef IXY_MEMPOOL_H
#define IXY_MEMPOOL_H

#include <stdint.h>
#include <stddef.h>

#define IXY_BUF_HEADER 64
#define IXY_BUF_HEADROOM 64
#define IXY_BUF_DATA_OFFSET (IXY_BUF_HEADER + IXY_BUF_HEADROOM)

struct ixy_mempool;

struct ixy_buf {
    uint64_t data_dma;            /* DMA address of data[] (physical or IOVA) */
    struct ixy_mempool *pool;     /* the pool it returns to */
    uint32_t pool_index;
    uint32_t len;                 /* bytes of packet in data[] */
    uint32_t is_free;             /* maintained only in debug pools */
    uint32_t rss_hash;            /* rx with RSS on: the NIC's hash of the packet (else stale) */
    uint32_t rss_type;            /* rx with RSS on: its RSS type (0: none, hash 0) */
    uint8_t reserved[IXY_BUF_HEADER - 36];
    uint8_t headroom[IXY_BUF_HEADROOM];
    uint8_t data[];
};

_Static_assert(sizeof(struct ixy_buf) == IXY_BUF_DATA_OFFSET, "ixy_buf header layout");

struct ixy_mempool {
    uint8_t *base;                /* virtual address of entry 0 */
    uint32_t entry_size;          /* bytes per entry, header included */
    uint32_t num_bufs;
    uint32_t free_count;          /* entries on the free stack */
    uint32_t debug;               /* check double frees */
    uint32_t *free_stack;         /* indices of free entries */
    uint64_t double_frees;        /* debug pools: frees of already-free buffers */
};

static inline struct ixy_buf *ixy_buf_at(const struct ixy_mempool *p, uint32_t index)
{
    return (struct ixy_buf *)(p->base + (size_t)index * p->entry_size);
}

static inline uint32_t ixy_buf_capacity(const struct ixy_mempool *p)
{
    return p->entry_size - IXY_BUF_DATA_OFFSET;
}

/* Take up to n buffers; returns how many were taken. */
static inline uint32_t ixy_mempool_alloc(struct ixy_mempool *p, struct ixy_buf **bufs, uint32_t n)
{
    if (n > p->free_count)
        n = p->free_count;
    uint32_t top = p->free_count;
    const uint32_t *stack = p->free_stack;
    uint8_t *base = p->base;
    size_t size = p->entry_size;
    for (uint32_t i = 0; i < n; i++)
        bufs[i] = (struct ixy_buf *)(base + (size_t)stack[--top] * size);
    if (p->debug)
        for (uint32_t i = 0; i < n; i++)
            bufs[i]->is_free = 0;
    p->free_count = top;
    return n;
}

static inline struct ixy_buf *ixy_mempool_alloc1(struct ixy_mempool *p)
{
    if (p->free_count == 0)
        return NULL;
    struct ixy_buf *b = ixy_buf_at(p, p->free_stack[--p->free_count]);
    if (p->debug)
        b->is_free = 0;
    return b;
}

/* Return a buffer to its own pool. A debug pool ignores and counts a double free. */
static inline void ixy_buf_free(struct ixy_buf *b)
{
    struct ixy_mempool *p = b->pool;
    if (p->debug) {
        if (b->is_free) {
            p->double_frees++;
            return;
        }
        b->is_free = 1;
    }
    p->free_stack[p->free_count++] = b->pool_index;
}

/* Return n buffers. A run of buffers of one pool (the usual case) is pushed
 * with the pool's stack top in a register; debug pools go one by one. */
static inline void ixy_buf_free_n(struct ixy_buf **bufs, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        struct ixy_mempool *p = bufs[i]->pool;
        if (p->debug) {
            ixy_buf_free(bufs[i++]);
            continue;
        }
        uint32_t top = p->free_count;
        uint32_t *stack = p->free_stack;
        do
            stack[top++] = bufs[i++]->pool_index;
        while (i < n && bufs[i]->pool == p);
        p->free_count = top;
    }
}

/* Return the buffers in a ring's slots (NULL: an empty slot) and empty them. */
static inline void ixy_buf_free_slots(struct ixy_buf **slots, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (slots[i]) {
            ixy_buf_free(slots[i]);
            slots[i] = NULL;
        }
    }
}

#endif
