/* Split virtqueues and the virtio-net header, legacy and VirtIO 1.x.
 *
 * VirtIO 1.x, 2.7 (split virtqueues) and 2.7.2 "Legacy Interfaces: A Note on
 * Virtqueue Layout": descriptor table, available ring, padding to the queue
 * alignment (4096 for legacy PCI), used ring. A VirtIO 1.x device is given
 * the three parts' addresses one by one (4.1.4.3) and needs less alignment
 * (2.7: 16, 2 and 4 bytes), so the same layout serves both. Everything
 * little-endian (legacy is guest-endian, 1.x little-endian; ixypy runs on x86).
 */
#ifndef IXY_VIRTIO_H
#define IXY_VIRTIO_H

#include <stdint.h>
#include <stddef.h>
#include <unistd.h>
#include "ixy_portio.h"

struct ixy_vring_desc {
    uint64_t addr;        /* DMA address of the buffer */
    uint32_t len;
    uint16_t flags;       /* VRING_DESC_F_* */
    uint16_t next;        /* next descriptor of the chain if F_NEXT */
};

struct ixy_vring_avail {
    uint16_t flags;       /* VRING_AVAIL_F_NO_INTERRUPT */
    uint16_t idx;         /* where the driver puts the next entry (free-running) */
    uint16_t ring[];      /* heads of descriptor chains; then used_event */
};

struct ixy_vring_used_elem {
    uint32_t id;          /* head of the chain the device is done with */
    uint32_t len;         /* bytes the device wrote into it */
};

struct ixy_vring_used {
    uint16_t flags;       /* VRING_USED_F_NO_NOTIFY */
    uint16_t idx;
    struct ixy_vring_used_elem ring[];
};

_Static_assert(sizeof(struct ixy_vring_desc) == 16, "vring descriptor size");
_Static_assert(sizeof(struct ixy_vring_used_elem) == 8, "used element size");

#define IXY_VRING_DESC_F_NEXT 1u
#define IXY_VRING_DESC_F_WRITE 2u
#define IXY_VRING_AVAIL_F_NO_INTERRUPT 1u
#define IXY_VRING_USED_F_NO_NOTIFY 1u
#define IXY_VRING_ALIGN 4096u

/* 2.7.2 legacy layout: bytes for a queue of num entries. */
static inline size_t ixy_vring_avail_offset(uint32_t num)
{
    return (size_t)num * sizeof(struct ixy_vring_desc);
}

static inline size_t ixy_vring_used_offset(uint32_t num)
{
    size_t end_avail = ixy_vring_avail_offset(num) + 2 * (3 + (size_t)num);
    return (end_avail + IXY_VRING_ALIGN - 1) & ~(size_t)(IXY_VRING_ALIGN - 1);
}

static inline size_t ixy_vring_size(uint32_t num)
{
    size_t end_used = ixy_vring_used_offset(num) + 2 * 3 + 8 * (size_t)num;
    return (end_used + IXY_VRING_ALIGN - 1) & ~(size_t)(IXY_VRING_ALIGN - 1);
}

/* 5.1.6 virtio_net_hdr: 10 bytes for a legacy device without
 * VIRTIO_NET_F_MRG_RXBUF; with VIRTIO_F_VERSION_1 num_buffers (16 bits)
 * always follows, 12 bytes (5.1.6 "Legacy Interface: Device Operation").
 * All zero on transmit (no checksum or segmentation offload is negotiated). */
struct ixy_virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
} __attribute__((packed));

_Static_assert(sizeof(struct ixy_virtio_net_hdr) == 10, "virtio-net header size");
#define IXY_VIRTIO_NET_HDR_LEN 10u
#define IXY_VIRTIO_NET_HDR_LEN_V1 12u

/* used.idx, used.flags and avail.idx are shared with the device: volatile
 * accesses, so the compiler reads them fresh on every poll. */
static inline uint16_t ixy_vring_used_idx(const struct ixy_vring_used *u)
{
    return *(const volatile uint16_t *)&u->idx;
}

static inline uint16_t ixy_vring_used_flags(const struct ixy_vring_used *u)
{
    return *(const volatile uint16_t *)&u->flags;
}

/* Publish new avail entries: the ring slots (and descriptors) before idx (2.7.13). */
static inline void ixy_vring_publish(struct ixy_vring_avail *a, uint16_t idx)
{
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __asm__ __volatile__("" ::: "memory");
    *(volatile uint16_t *)&a->idx = idx;
}

/* VIRTIO_RING_F_EVENT_IDX (2.7.10): where the device's avail_event is, the
 * 16 bits after the used ring's num entries, and the driver's used_event,
 * after the available ring's. */
static inline const uint16_t *ixy_vring_avail_event(const struct ixy_vring_used *u, uint32_t num)
{
    return (const uint16_t *)&u->ring[num];
}

static inline void ixy_vring_set_used_event(struct ixy_vring_avail *a, uint32_t num, uint16_t idx)
{
    *(volatile uint16_t *)&a->ring[num] = idx;
}

/* 2.7.10: whether moving an index from old to new_idx passed event (the
 * other side asked to hear of the entry at event). */
static inline int ixy_vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Whether the device wants a notify for the avail entries old..new_idx:
 * with EVENT_IDX (avail_event from ixy_vring_avail_event) when they pass
 * avail_event; without (NULL) unless it set VRING_USED_F_NO_NOTIFY
 * (2.7.7). */
static inline int ixy_vring_notify_wanted(const struct ixy_vring_used *u, const uint16_t *avail_event,
                                          uint16_t new_idx, uint16_t old)
{
    if (__builtin_expect(avail_event != NULL, 0))
        return ixy_vring_need_event(*(const volatile uint16_t *)avail_event, new_idx, old);
    return !(ixy_vring_used_flags(u) & IXY_VRING_USED_F_NO_NOTIFY);
}

/* A full barrier: the driver must publish avail.idx before it reads
 * used.flags (2.7.10 / 2.7.7), a store-load order x86 does not keep alone. */
#define ixy_mb() __atomic_thread_fence(__ATOMIC_SEQ_CST)

/* Where a virtqueue's available-buffer notifications go (4.1.4.4, 4.1.4.8):
 * - legacy: the 16-bit QUEUE_NOTIFY register of I/O-port BAR0, written
 *   through a model's port ops, or with a pwrite of exactly two bytes on the
 *   I/O-port file (UIO resourceN or the VFIO device fd) at pos;
 * - modern: the queue's notify address in a mapped memory BAR
 *   (notify structure offset + queue_notify_off * notify_off_multiplier),
 *   a 16-bit store of the queue index (no VIRTIO_F_NOTIFICATION_DATA). */
struct ixy_virtio_doorbell {
    const struct ixy_port_ops *port_ops;
    int fd;
    long pos;
    volatile uint16_t *mmio;    /* set for a modern queue, else NULL */
};

/* Ring the doorbell for queue. Returns 0 or -1. Called without the GIL;
 * the caller has made the avail ring visible (ixy_vring_publish, ixy_mb). */
static inline int ixy_virtio_notify(const struct ixy_virtio_doorbell *d, uint16_t queue)
{
    if (d->mmio) {
        *d->mmio = queue;
        return 0;
    }
    if (d->port_ops) {
        d->port_ops->write(d->port_ops->ctx, (uint32_t)d->pos, 2, queue);
        return 0;
    }
    return pwrite(d->fd, &queue, 2, d->pos) == 2 ? 0 : -1;
}

#endif
