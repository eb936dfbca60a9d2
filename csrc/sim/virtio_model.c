/* The legacy virtio-net device model: see virtio_model.h for the contract.
 *
 * Written from the VirtIO 1.x specification (section numbers in comments
 * refer to it); the legacy interface is guest-endian, and the model runs in
 * the driver's process on x86: little-endian throughout.
 *
 * Modelling choices:
 *  - Offered features: MAC, STATUS, CTRL_VQ, CTRL_RX and ANY_LAYOUT, as
 *    QEMU's virtio-net offers them on every backend; a test can withdraw
 *    ANY_LAYOUT (vnsim_offer_any_layout). With ANY_LAYOUT negotiated any
 *    framing is taken (2.4.4 "Message Framing" in VirtIO 1.0, 2.7.4 in
 *    1.2): header and frame split anywhere across the chain's
 *    descriptors, or together in one; on receive the header and the frame
 *    are written back to back into the chain, in one buffer if it is one
 *    descriptor. Without it, the virtio_net_hdr must fill a descriptor of
 *    its own on transmit and receive (legacy framing, 2.4.4.3 / 2.7.4.3
 *    and 5.1.6), else the chain is refused and logged.
 *  - Interrupts are MSI-X, as QEMU's virtio-net-pci offers them: the
 *    capability at 0x40, the table (one vector per queue and one for
 *    configuration changes) at 0 and the PBA at 0x800 of memory BAR1; the
 *    table, the masks and the pending bits are sim_msix.c's. While MSI-X
 *    is enabled the I/O BAR has config_msix_vector at 20 and
 *    queue_msix_vector at 22, and the device config moves to 24 (4.1.4.8);
 *    a used-buffer notification is the queue's vector's message, none for
 *    NO_VECTOR, and the ISR is not used (4.1.5.1.2). While it is disabled a
 *    notification only sets ISR bit 0 (4.1.4.5): there is no INTx line.
 *    Either way, only while the driver has VRING_AVAIL_F_NO_INTERRUPT
 *    clear (2.7.7). The configuration never changes (the link stays up):
 *    config_msix_vector is kept, never signalled.
 *  - The device consumes buffers only after DRIVER_OK (3.1.1), with bus
 *    mastering on, and stops on its first invalid chain: it sets
 *    DEVICE_NEEDS_RESET (2.1.1) and does nothing more until a reset.
 *  - It polls its rings. While the worker busy-polls it sets
 *    VRING_USED_F_NO_NOTIFY (2.7.10), otherwise a notify wakes it.
 *  - Used ring: entries written, then one release store of used.idx per
 *    queue per pass (2.7.8), then avail.flags read after a full barrier.
 *
 * Threading: the worker runs a pass with sim->lock held; register and
 * configuration accesses take it too (announcing themselves in
 * sim->waiters, so a spinning worker lets them in), except QUEUE_NOTIFY
 * writes, which only read queue state that is atomic.
 */
#define _GNU_SOURCE
#include "virtio_model.h"
#include "sim_dma.h"
#include "sim_flows.h"
#include "sim_msix.h"
#include "sim_shared.h"
#include "sim_worker.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* ---- the specification's numbers ------------------------------------------ */
/* 4.1.4.8 legacy I/O BAR: the common header, then while MSI-X is enabled
 * the two vector registers, then the device config */
enum {
    HOST_FEATURES = 0, GUEST_FEATURES = 4, QUEUE_PFN = 8, QUEUE_NUM = 12,
    QUEUE_SEL = 14, QUEUE_NOTIFY = 16, DEVICE_STATUS = 18, ISR_STATUS = 19,
    MSI_CONFIG_VECTOR = 20, MSI_QUEUE_VECTOR = 22,
    NET_CONFIG = 20, NET_CONFIG_MSIX = 24,
};
/* 5.1.4 device config, offsets in it: mac[6], then status (16 bits) */
enum { NET_MAC = 0, NET_STATUS = 6 };
#define NO_VECTOR 0xFFFFu          /* VIRTIO_MSI_NO_VECTOR (4.1.5.1.2) */
/* 2.1 device status */
#define S_ACKNOWLEDGE 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 64u
#define S_FAILED 128u
/* 5.1.3 feature bits */
#define F_MAC (1u << 5)
#define F_STATUS (1u << 16)
#define F_CTRL_VQ (1u << 17)
#define F_CTRL_RX (1u << 18)
#define F_ANY_LAYOUT (1u << 27)
#define OFFERED (F_MAC | F_STATUS | F_CTRL_VQ | F_CTRL_RX | F_ANY_LAYOUT)
#define NET_S_LINK_UP 1u
/* 2.7.5 / 2.7.6 / 2.7.8 split virtqueue */
#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u
#define USED_F_NO_NOTIFY 1u
#define LEGACY_ALIGN 4096u           /* 2.7.2 legacy queue alignment; QUEUE_PFN is in these */
/* 5.1.6: the header without MRG_RXBUF; 5.1.6.5 control queue */
#define NET_HDR_LEN 10u
#define HDR_F_NEEDS_CSUM 1u
#define CTRL_RX 0
#define CTRL_RX_PROMISC 0
#define CTRL_RX_ALLMULTI 1
#define CTRL_OK 0
#define CTRL_ERR 1
/* PCI: COMMAND register bits the model implements; the capability list */
#define PCI_COMMAND 4
#define CMD_IO 0x0001u
#define CMD_MEM 0x0002u
#define CMD_MASTER 0x0004u
#define CMD_INTX_DISABLE 0x0400u
#define PCI_STATUS 6
#define STATUS_CAP_LIST 0x0010u
#define PCI_CAP_PTR 0x34
#define MSIX_CAP 0x40               /* where QEMU puts it */
#define MSIX_BAR 1
#define MSIX_TABLE 0x000            /* in BAR1, as QEMU's msix_init_exclusive_bar */
#define MSIX_PBA 0x800

enum { RXQ = 0, TXQ = 1, CTRLQ = 2 };
enum wire { WIRE_SINK, WIRE_SOURCE, WIRE_PAIR };
enum rx_result { RX_DELIVERED, RX_DROPPED, RX_NO_BUFFER };

#define LOG_ENTRIES 64
#define ERR_LEN 160
#define IDLE_SLEEP_NS 1000000   /* the idle worker's sleep, unless a notify wakes it */

/* ---- state ------------------------------------------------------------------ */
struct vq {
    unsigned num;                 /* QUEUE_NUM: fixed by the device (legacy) */
    uint32_t pfn;                 /* atomic: QUEUE_PFN, 0 while the queue has no ring */
    uint8_t *desc, *avail, *used; /* the ring's three parts, host addresses */
    uint16_t last_avail;          /* next avail entry the device takes (free-running) */
    uint16_t used_idx;            /* next used entry the device fills */
    uint16_t published;           /* used.idx as last stored */
    uint16_t used_flags;          /* used.flags as last stored */
    uint16_t vector;              /* queue_msix_vector */
};

struct seg { uint8_t *va; uint32_t len; };

struct vnsim_dev {
    struct vnsim *sim;
    unsigned index;
    struct ixy_port_ops ops;
    uint8_t cfg[256];             /* PCI configuration space */
    struct sim_msix msix;         /* its capability, BAR1's table and PBA, the eventfds */
    struct ixy_reg_ops msix_ops;  /* BAR1 */
    uint16_t config_vector;       /* config_msix_vector */
    uint32_t offered;             /* HOST_FEATURES: OFFERED, less ANY_LAYOUT if withdrawn */
    uint32_t guest_features;
    int features_written;         /* GUEST_FEATURES written since reset */
    uint16_t queue_sel;
    uint8_t status;               /* atomic */
    uint8_t isr;                  /* atomic */
    uint8_t mac[6];
    unsigned rx_mode;             /* bit 0 promiscuous, bit 1 all-multicast */
    struct vq vq[VNSIM_NUM_QUEUES];
    struct seg *segs;             /* the chain being processed */
    unsigned nsegs;
    enum wire wire;
    struct vnsim_dev *peer;
    int seq_offset;               /* sink: check it; source: write it; < 0: none */
    uint64_t seq;                 /* the next sequence number */
    uint64_t src_count;           /* source: frames to send, 0 without end */
    uint32_t src_len;
    uint8_t *src_frame;
    struct sim_flows src_flows;   /* source: the flows its frames carry (sim_flows.h) */
    uint8_t *frame;               /* a transmitted frame, gathered */
    struct vnsim_wire_stats st;
    uint32_t unplugged, stalled, removed;   /* atomic, faults: cable out, DMA stopped, gone from the bus */
    uint64_t drop_rx;             /* atomic, faults: arriving frames still to drop */
    pthread_mutex_t log_lock;
    unsigned nerr;
    char errs[LOG_ENTRIES][ERR_LEN];
};

struct vnsim {
    struct sim_worker worker;     /* first (sim_worker.h): the engine plays every device, worker_pass; a notify kicks it */
    unsigned ndevs;
    struct vnsim_dev *devs[VNSIM_MAX_DEVS];
    struct sim_dma_map map;
    pthread_mutex_t lock;         /* a pass, registers, the map */
    unsigned waiters;             /* atomic: threads waiting for lock */
};
_Static_assert(offsetof(struct vnsim, worker) == 0, "sim_worker_model_* need the worker first");

/* ---- helpers ---------------------------------------------------------------- */
static void err(struct vnsim_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(struct vnsim_dev *d, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&d->log_lock);
    if (d->nerr < LOG_ENTRIES) {
        va_start(ap, fmt);
        vsnprintf(d->errs[d->nerr], ERR_LEN, fmt, ap);
        va_end(ap);
        __atomic_store_n(&d->nerr, d->nerr + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&d->log_lock);
}

static inline uint16_t ld16(const uint8_t *a) { uint16_t v; memcpy(&v, a, 2); return v; }
static inline uint32_t ld32(const uint8_t *a) { uint32_t v; memcpy(&v, a, 4); return v; }
static inline uint64_t ld64(const uint8_t *a) { uint64_t v; memcpy(&v, a, 8); return v; }
static inline void st16(uint8_t *a, uint16_t v) { memcpy(a, &v, 2); }
static inline void st32(uint8_t *a, uint32_t v) { memcpy(a, &v, 4); }

static void ctl_lock(struct vnsim *s)
{
    __atomic_add_fetch(&s->waiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&s->lock);
    __atomic_sub_fetch(&s->waiters, 1, __ATOMIC_SEQ_CST);
}

static void ctl_unlock(struct vnsim *s) { pthread_mutex_unlock(&s->lock); }

static uint16_t command(const struct vnsim_dev *d) { return ld16(d->cfg + PCI_COMMAND); }

/* 2.1.1: the device found the driver's state invalid; it stops until reset. */
static int broken(struct vnsim_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int broken(struct vnsim_dev *d, const char *fmt, ...)
{
    char msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err(d, "%s: DEVICE_NEEDS_RESET", msg);
    __atomic_or_fetch(&d->status, S_NEEDS_RESET, __ATOMIC_SEQ_CST);
    return -1;
}

static int live(const struct vnsim_dev *d)
{
    uint8_t s = LD(&d->status);
    return (s & S_DRIVER_OK) && !(s & (S_NEEDS_RESET | S_FAILED)) && (command(d) & CMD_MASTER) &&
           !LD(&d->stalled) && !LD(&d->removed);
}

/* A frame arriving now is lost to a fault: the cable is out, or it is one
 * of a burst to drop (counted as without a buffer). */
static int fault_drops(struct vnsim_dev *d)
{
    if (LD(&d->unplugged))
        return 1;
    if (!LD(&d->drop_rx))
        return 0;
    __atomic_sub_fetch(&d->drop_rx, 1, __ATOMIC_SEQ_CST);
    d->st.rx_no_buffer++;
    return 1;
}

/* ---- the split virtqueue, legacy layout (2.7.2) --------------------------------- */
static uint64_t vring_used_offset(unsigned num)
{
    uint64_t end_avail = 16ull * num + 2ull * (3 + num);    /* descriptors, avail ring */
    return (end_avail + LEGACY_ALIGN - 1) & ~(uint64_t)(LEGACY_ALIGN - 1);
}

static uint64_t vring_bytes(unsigned num) { return vring_used_offset(num) + 2 * 3 + 8ull * num; }

static uint16_t avail_idx(const struct vq *q)
{
    return __atomic_load_n((const uint16_t *)(q->avail + 2), __ATOMIC_ACQUIRE);
}

static uint16_t avail_ring(const struct vq *q, uint16_t i) { return ld16(q->avail + 4 + 2 * (i & (q->num - 1))); }

static void used_add(struct vq *q, uint16_t head, uint32_t len)
{
    uint8_t *e = q->used + 4 + 8 * (q->used_idx & (q->num - 1));
    st32(e, head);
    st32(e + 4, len);
    q->used_idx++;
}

/* A used buffer notification: with MSI-X enabled the queue's vector's
 * message, none for NO_VECTOR, and the ISR is unused (4.1.5.1.2); without,
 * ISR bit 0 (4.1.4.5). */
static void used_notify(struct vnsim_dev *d, const struct vq *q)
{
    if (!sim_msix_enabled(&d->msix))
        __atomic_or_fetch(&d->isr, 1, __ATOMIC_SEQ_CST);
    else if (q->vector != NO_VECTOR)
        sim_msix_notify(&d->msix, q->vector);
}

/* 2.7.8 + 2.7.7: publish the used entries, then notify unless suppressed. */
static void used_flush(struct vnsim_dev *d, struct vq *q)
{
    if (q->published == q->used_idx)
        return;
    __atomic_store_n((uint16_t *)(q->used + 2), q->used_idx, __ATOMIC_RELEASE);
    q->published = q->used_idx;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);   /* used.idx visible before avail.flags is read */
    if (!(*(volatile uint16_t *)q->avail & AVAIL_F_NO_INTERRUPT))
        used_notify(d, q);
}

static void set_no_notify(struct vq *q, int on)
{
    uint16_t flags = on ? USED_F_NO_NOTIFY : 0;
    if (q->used_flags != flags) {
        *(volatile uint16_t *)q->used = flags;
        q->used_flags = flags;
    }
}

/* New avail entries, or -1 if avail.idx ran more than the queue ahead (2.7.6). */
static int avail_pending(struct vnsim_dev *d, unsigned qi, struct vq *q)
{
    uint16_t n = (uint16_t)(avail_idx(q) - q->last_avail);
    if (n > q->num)
        return broken(d, "queue %u: avail.idx is %u entries ahead of the device, the queue has %u", qi, n, q->num);
    return n;
}

/* 2.7.5, 2.7.4.2: the chain at head into d->segs; -1 if it is invalid.
 * writable_from: the index of the first device-writable descriptor. */
static int chain_read(struct vnsim_dev *d, unsigned qi, uint16_t head, const struct sim_dma_ent **hint,
                      unsigned *writable_from)
{
    const struct vq *q = &d->vq[qi];
    unsigned n = 0;
    uint16_t i = head;
    *writable_from = ~0u;
    for (;;) {
        if (i >= q->num)
            return broken(d, "queue %u: descriptor index %u beyond the queue's %u", qi, i, q->num);
        if (n == q->num)
            return broken(d, "queue %u: the chain at descriptor %u loops (more than %u descriptors)", qi, head, q->num);
        const uint8_t *desc = q->desc + 16 * i;
        uint64_t addr = ld64(desc);
        uint32_t len = ld32(desc + 8);
        uint16_t flags = ld16(desc + 12);
        if (flags & DESC_F_INDIRECT)
            return broken(d, "queue %u: descriptor %u is INDIRECT, VIRTIO_RING_F_INDIRECT_DESC was not offered", qi, i);
        if ((flags & DESC_F_WRITE) && *writable_from == ~0u)
            *writable_from = n;
        else if (!(flags & DESC_F_WRITE) && *writable_from != ~0u)
            return broken(d, "queue %u: device-readable descriptor %u after a writable one (2.7.4.2)", qi, i);
        uint8_t *va = sim_dma_find(&d->sim->map, hint, addr, len ? len : 1);
        if (!va)
            return broken(d, "queue %u: descriptor %u buffer %#llx+%u outside the DMA map", qi, i,
                          (unsigned long long)addr, len);
        d->segs[n++] = (struct seg){va, len};
        if (!(flags & DESC_F_NEXT))
            break;
        i = ld16(desc + 14);
    }
    d->nsegs = n;
    return (int)n;
}

/* What the device does with one chain, read into d->segs (device-readable
 * up to writable_from): returns the bytes it wrote into it (used.len). */
typedef uint32_t chain_fn(struct vnsim_dev *d, unsigned writable_from, const struct sim_dma_ent **hint);

/* The chains the driver made available on queue qi (2.7.6), each served
 * and returned in the used ring (2.7.8), until one is invalid. Returns the
 * chains served. */
static unsigned queue_serve(struct vnsim_dev *d, unsigned qi, const struct sim_dma_ent **hint, chain_fn *serve)
{
    struct vq *q = &d->vq[qi];
    unsigned work = 0, writable_from;
    int pending = avail_pending(d, qi, q);
    for (; pending > 0; pending--, work++) {
        uint16_t head = avail_ring(q, q->last_avail++);
        if (chain_read(d, qi, head, hint, &writable_from) < 0)
            break;
        used_add(q, head, serve(d, writable_from, hint));
    }
    return work;
}

/* ---- the wire --------------------------------------------------------------- */
static int rx_filter_pass(const struct vnsim_dev *d, const uint8_t *frame, uint32_t len)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    if ((d->rx_mode & 1) || len < 6 || !memcmp(frame, d->mac, 6) || !memcmp(frame, bcast, 6))
        return 1;
    return (frame[0] & 1) && (d->rx_mode & 2);
}

/* Header (all zero: no offloads negotiated) and frame into the rx chain
 * (5.1.6.4); the bytes written, or 0 if the chain is unusable. */
static uint32_t rx_scatter(struct vnsim_dev *d, unsigned writable_from, const uint8_t *frame, uint32_t len)
{
    static const uint8_t hdr[NET_HDR_LEN];
    uint64_t room = 0;
    if (writable_from != 0) {
        err(d, "receiveq: chain with a device-readable descriptor");
        return 0;
    }
    if (!(d->guest_features & F_ANY_LAYOUT) && d->segs[0].len != NET_HDR_LEN) {
        err(d, "receiveq: header descriptor of %u bytes without ANY_LAYOUT (must be %u)", d->segs[0].len, NET_HDR_LEN);
        return 0;
    }
    for (unsigned k = 0; k < d->nsegs; k++)
        room += d->segs[k].len;
    if (room < NET_HDR_LEN + len) {
        err(d, "receiveq: chain of %llu bytes cannot take a %u-byte frame and its header",
            (unsigned long long)room, len);
        return 0;
    }
    const uint8_t *parts[2] = {hdr, frame};
    uint32_t part_len[2] = {NET_HDR_LEN, len}, done = 0;
    unsigned k = 0;
    uint32_t at = 0;          /* bytes used of segs[k] */
    for (int p = 0; p < 2; p++) {
        uint32_t off = 0;
        while (off < part_len[p]) {
            uint32_t n = d->segs[k].len - at;
            if (n > part_len[p] - off)
                n = part_len[p] - off;
            memcpy(d->segs[k].va + at, parts[p] + off, n);
            off += n;
            at += n;
            if (at == d->segs[k].len) {
                k++;
                at = 0;
            }
        }
        done += part_len[p];
    }
    return done;
}

static enum rx_result rx_deliver(struct vnsim_dev *d, const uint8_t *frame, uint32_t len,
                                 const struct sim_dma_ent **hint)
{
    struct vq *q = &d->vq[RXQ];
    unsigned writable_from;
    if (!live(d) || !LD(&q->pfn) || avail_pending(d, RXQ, q) <= 0)
        return RX_NO_BUFFER;
    if (!rx_filter_pass(d, frame, len)) {
        d->st.rx_filtered++;
        return RX_DROPPED;
    }
    if (fault_drops(d))
        return RX_DROPPED;
    uint16_t head = avail_ring(q, q->last_avail++);
    if (chain_read(d, RXQ, head, hint, &writable_from) < 0)
        return RX_NO_BUFFER;
    uint32_t written = rx_scatter(d, writable_from, frame, len);
    used_add(q, head, written);
    if (!written)
        return RX_DROPPED;
    d->st.rx_packets++;
    d->st.rx_bytes += len;
    return RX_DELIVERED;
}

static void sink_check(struct vnsim_dev *d, const uint8_t *frame, uint32_t len)
{
    if (d->seq_offset < 0 || len < (uint32_t)d->seq_offset + 8)
        return;
    uint64_t seq = ld64(frame + d->seq_offset);
    d->st.tx_seq_errors += seq != d->seq;
    d->seq = seq + 1;
}

static void wire_send(struct vnsim_dev *d, const uint8_t *frame, uint32_t len, const struct sim_dma_ent **hint)
{
    d->st.tx_packets++;
    d->st.tx_bytes += len;
    if (LD(&d->unplugged))
        return;
    if (d->wire == WIRE_PAIR) {
        if (rx_deliver(d->peer, frame, len, hint) == RX_NO_BUFFER)
            d->peer->st.rx_no_buffer++;
    } else {
        sink_check(d, frame, len);
    }
}

/* ---- transmitq (5.1.6.2) ------------------------------------------------------ */
/* The frame of the chain in d->segs gathered into d->frame: its length, or
 * -1 (logged) if the device would not send it. */
static int64_t tx_gather(struct vnsim_dev *d, unsigned writable_from)
{
    uint64_t total = 0;
    uint8_t hdr[NET_HDR_LEN];
    if (writable_from != ~0u) {
        err(d, "transmitq: chain with a device-writable descriptor");
        return -1;
    }
    if (!(d->guest_features & F_ANY_LAYOUT) && d->segs[0].len != NET_HDR_LEN) {
        err(d, "transmitq: header descriptor of %u bytes without ANY_LAYOUT (must be %u)", d->segs[0].len, NET_HDR_LEN);
        return -1;
    }
    for (unsigned k = 0; k < d->nsegs; k++)
        total += d->segs[k].len;
    if (total < NET_HDR_LEN || total - NET_HDR_LEN > VNSIM_MAX_FRAME) {
        err(d, "transmitq: chain of %llu bytes", (unsigned long long)total);
        return -1;
    }
    uint32_t at = 0;
    for (unsigned k = 0; k < d->nsegs; k++) {
        const struct seg *s = &d->segs[k];
        for (uint32_t off = 0; off < s->len;) {
            uint32_t n = s->len - off;
            if (at < NET_HDR_LEN) {
                n = n < NET_HDR_LEN - at ? n : NET_HDR_LEN - at;
                memcpy(hdr + at, s->va + off, n);
            } else {
                memcpy(d->frame + at - NET_HDR_LEN, s->va + off, n);
            }
            at += n;
            off += n;
        }
    }
    if (hdr[0] & HDR_F_NEEDS_CSUM || hdr[1] != 0) {
        err(d, "transmitq: header asks for checksum or GSO (flags %#x, gso_type %u), neither negotiated", hdr[0], hdr[1]);
        return -1;
    }
    return (int64_t)(total - NET_HDR_LEN);
}

/* A transmitq chain: its frame goes on the wire; the device writes nothing. */
static uint32_t tx_chain(struct vnsim_dev *d, unsigned writable_from, const struct sim_dma_ent **hint)
{
    int64_t len = tx_gather(d, writable_from);
    if (len >= 0)
        wire_send(d, d->frame, (uint32_t)len, hint);
    return 0;
}

/* ---- controlq (5.1.6.5) --------------------------------------------------------- */
static uint8_t ctrl_rx(struct vnsim_dev *d, uint8_t cmd, const uint8_t *data, uint32_t len)
{
    if (!(d->guest_features & F_CTRL_RX)) {
        err(d, "controlq: VIRTIO_NET_CTRL_RX command without VIRTIO_NET_F_CTRL_RX negotiated");
        return CTRL_ERR;
    }
    if ((cmd != CTRL_RX_PROMISC && cmd != CTRL_RX_ALLMULTI) || len != 1)
        return CTRL_ERR;
    unsigned bit = cmd == CTRL_RX_PROMISC ? 1 : 2;
    d->rx_mode = data[0] ? d->rx_mode | bit : d->rx_mode & ~bit;
    return CTRL_OK;
}

/* One command: class, command, data (device-readable), ack (writable). */
static uint32_t ctrl_command(struct vnsim_dev *d, unsigned writable_from, const struct sim_dma_ent **hint)
{
    uint8_t cmd[256];
    uint32_t len = 0;
    if (writable_from == ~0u || writable_from == 0 || d->segs[writable_from].len < 1) {
        err(d, "controlq: command without a readable part and a writable ack byte");
        return 0;
    }
    for (unsigned k = 0; k < writable_from; k++) {
        if (d->segs[k].len > sizeof(cmd) - len) {
            err(d, "controlq: command longer than %zu bytes", sizeof(cmd));
            return 0;
        }
        memcpy(cmd + len, d->segs[k].va, d->segs[k].len);
        len += d->segs[k].len;
    }
    if (len < 2) {
        err(d, "controlq: command of %u bytes (class and command take 2)", len);
        return 0;
    }
    d->segs[writable_from].va[0] = cmd[0] == CTRL_RX ? ctrl_rx(d, cmd[1], cmd + 2, len - 2) : CTRL_ERR;
    return 1;
}

/* ---- the source: frames as fast as rx buffers come ---------------------------------- */
static unsigned source_fill(struct vnsim_dev *d, const struct sim_dma_ent **hint)
{
    unsigned work = 0;
    while ((!d->src_count || d->seq < d->src_count) && work < d->vq[RXQ].num) {
        sim_flows_stamp(&d->src_flows, d->src_frame);
        if (d->seq_offset >= 0)
            memcpy(d->src_frame + d->seq_offset, &d->seq, 8);
        if (rx_deliver(d, d->src_frame, d->src_len, hint) == RX_NO_BUFFER)
            break;
        sim_flows_advance(&d->src_flows);
        d->seq++;
        work++;
    }
    return work;
}

/* ---- a pass --------------------------------------------------------------------- */
static unsigned dev_pass(struct vnsim_dev *d, const struct sim_dma_ent **hint)
{
    unsigned work = 0;
    if (!live(d))
        return 0;
    if (LD(&d->vq[CTRLQ].pfn))
        work += queue_serve(d, CTRLQ, hint, ctrl_command);
    if (LD(&d->vq[TXQ].pfn) && live(d))
        work += queue_serve(d, TXQ, hint, tx_chain);
    if (d->wire == WIRE_SOURCE)
        work += source_fill(d, hint);
    return work;
}

static unsigned sim_pass(struct vnsim *s)
{
    const struct sim_dma_ent *hint = NULL;
    int no_notify = sim_worker_busy_polling(&s->worker);
    unsigned work = 0;
    for (unsigned i = 0; i < s->ndevs; i++) {
        struct vnsim_dev *d = s->devs[i];
        if (!live(d))
            continue;
        for (unsigned qi = 0; qi < VNSIM_NUM_QUEUES; qi++)
            if (LD(&d->vq[qi].pfn))
                set_no_notify(&d->vq[qi], no_notify);
    }
    for (unsigned i = 0; i < s->ndevs; i++)
        work += dev_pass(s->devs[i], &hint);
    for (unsigned i = 0; i < s->ndevs; i++)
        for (unsigned qi = 0; qi < VNSIM_NUM_QUEUES; qi++)
            if (LD(&s->devs[i]->vq[qi].pfn))
                used_flush(s->devs[i], &s->devs[i]->vq[qi]);
    return work;
}

int vnsim_poll(void *ctx)
{
    struct vnsim *s = ctx;
    if (sim_worker_running(&s->worker))
        return -1;
    pthread_mutex_lock(&s->lock);
    int work = (int)sim_pass(s);
    pthread_mutex_unlock(&s->lock);
    return work;
}

/* One pass of the worker (sim_worker.h): it lets register accesses waiting
 * for the lock in first. */
static unsigned worker_pass(void *ctx)
{
    struct vnsim *s = ctx;
    while (LD(&s->waiters))
        cpu_relax();
    pthread_mutex_lock(&s->lock);
    unsigned work = sim_pass(s);
    pthread_mutex_unlock(&s->lock);
    return work;
}

/* ---- the legacy I/O BAR (4.1.4.8) ------------------------------------------------- */
/* Three parts: the common header; while MSI-X is enabled the vector
 * registers; the device config (5.1.4), its offsets relative to its start. */
enum part { HEADER, MSIX_VECTORS, NET };
struct io_reg { uint8_t offset, width; enum part part; const char *name; };
static const struct io_reg io_regs[] = {
    {HOST_FEATURES, 4, HEADER, "HOST_FEATURES"}, {GUEST_FEATURES, 4, HEADER, "GUEST_FEATURES"},
    {QUEUE_PFN, 4, HEADER, "QUEUE_PFN"}, {QUEUE_NUM, 2, HEADER, "QUEUE_NUM"}, {QUEUE_SEL, 2, HEADER, "QUEUE_SEL"},
    {QUEUE_NOTIFY, 2, HEADER, "QUEUE_NOTIFY"}, {DEVICE_STATUS, 1, HEADER, "DEVICE_STATUS"},
    {ISR_STATUS, 1, HEADER, "ISR_STATUS"},
    {MSI_CONFIG_VECTOR, 2, MSIX_VECTORS, "config_msix_vector"}, {MSI_QUEUE_VECTOR, 2, MSIX_VECTORS, "queue_msix_vector"},
    {NET_MAC, 1, NET, "mac[0]"}, {NET_MAC + 1, 1, NET, "mac[1]"}, {NET_MAC + 2, 1, NET, "mac[2]"},
    {NET_MAC + 3, 1, NET, "mac[3]"}, {NET_MAC + 4, 1, NET, "mac[4]"}, {NET_MAC + 5, 1, NET, "mac[5]"},
    {NET_STATUS, 2, NET, "status"},
};

/* Where the device config starts: 24 while MSI-X is enabled, else 20 (4.1.4.8). */
static unsigned net_config(const struct vnsim_dev *d)
{
    return sim_msix_enabled(&d->msix) ? NET_CONFIG_MSIX : NET_CONFIG;
}

/* The register an access of width at offset reaches; NULL (logged) if the
 * access is not exactly one register (4.1.4.8; device config: 4.1.3.1).
 * With MSI-X enabled, offsets 20 to 23 are the vector registers, whatever
 * the driver meant. */
static const struct io_reg *io_access(struct vnsim_dev *d, uint32_t offset, unsigned width, const char *what)
{
    if (!(command(d) & CMD_IO)) {
        err(d, "I/O %s at %#x while COMMAND.IO is clear", what, offset);
        return NULL;
    }
    unsigned cfg = net_config(d);
    enum part part = offset < MSI_CONFIG_VECTOR ? HEADER : offset < cfg ? MSIX_VECTORS : NET;
    uint32_t rel = part == NET ? offset - cfg : offset;
    for (size_t i = 0; i < sizeof(io_regs) / sizeof(io_regs[0]); i++) {
        const struct io_reg *r = &io_regs[i];
        if (r->part == part && r->offset == rel) {
            if (r->width == width)
                return r;
            err(d, "%u-byte %s of %s at %#x: the register is %u bytes", width, what, r->name, offset, r->width);
            return NULL;
        }
    }
    err(d, "%u-byte %s at %#x: no register starts there", width, what, offset);
    return NULL;
}

static uint32_t io_read_locked(struct vnsim_dev *d, const struct io_reg *r)
{
    struct vq *q = d->queue_sel < VNSIM_NUM_QUEUES ? &d->vq[d->queue_sel] : NULL;
    if (r->part == NET)
        return r->offset == NET_STATUS ? (LD(&d->unplugged) ? 0 : NET_S_LINK_UP) : d->mac[r->offset - NET_MAC];
    switch (r->offset) {
    case HOST_FEATURES: return d->offered;
    case GUEST_FEATURES: return d->guest_features;
    case QUEUE_PFN: return q ? LD(&q->pfn) : 0;
    case QUEUE_NUM: return q ? q->num : 0;
    case QUEUE_SEL: return d->queue_sel;
    case QUEUE_NOTIFY: return 0;
    case DEVICE_STATUS: return LD(&d->status);
    case ISR_STATUS: return __atomic_exchange_n(&d->isr, 0, __ATOMIC_SEQ_CST);   /* read clears (4.1.4.5) */
    case MSI_CONFIG_VECTOR: return d->config_vector;
    default: return q ? q->vector : NO_VECTOR;                                   /* MSI_QUEUE_VECTOR */
    }
}

uint32_t vnsim_io_read(void *ctx, uint32_t offset, unsigned width)
{
    struct vnsim_dev *d = ctx;
    uint32_t ones = width >= 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1;
    if (LD(&d->removed))
        return ones;
    ctl_lock(d->sim);
    const struct io_reg *r = io_access(d, offset, width, "read");
    uint32_t v = r ? io_read_locked(d, r) : ones;
    ctl_unlock(d->sim);
    return v;
}

static void device_reset(struct vnsim_dev *d)
{
    for (unsigned qi = 0; qi < VNSIM_NUM_QUEUES; qi++) {
        struct vq *q = &d->vq[qi];
        ST(&q->pfn, 0);
        q->desc = q->avail = q->used = NULL;
        q->last_avail = q->used_idx = q->published = q->used_flags = 0;
        q->vector = NO_VECTOR;
    }
    d->config_vector = NO_VECTOR;     /* every event unmapped (4.1.5.1.2.1) */
    sim_msix_clear_pending(&d->msix); /* the queues they were for are gone */
    d->guest_features = 0;
    d->features_written = 0;
    d->queue_sel = 0;
    d->rx_mode = 1;
    ST(&d->isr, 0);
    ST(&d->status, 0);
}

/* 3.1.2 legacy initialization: ACKNOWLEDGE, DRIVER, features, queues,
 * DRIVER_OK; bits are only added, 0 resets (2.1.2). */
static void status_write(struct vnsim_dev *d, uint8_t v)
{
    uint8_t old = LD(&d->status), added = v & ~old;
    if (v == 0) {
        device_reset(d);
        return;
    }
    if (old & ~v & ~S_NEEDS_RESET) {
        err(d, "DEVICE_STATUS %#x clears bits of %#x without a reset", v, old);
        return;
    }
    if (added & S_NEEDS_RESET)
        err(d, "DEVICE_STATUS: the driver set DEVICE_NEEDS_RESET, a device-only bit");
    else if ((added & S_DRIVER) && !(v & S_ACKNOWLEDGE))
        err(d, "DEVICE_STATUS: DRIVER without ACKNOWLEDGE");
    else if ((added & S_DRIVER_OK) && !(v & S_DRIVER))
        err(d, "DEVICE_STATUS: DRIVER_OK without DRIVER");
    else if ((added & S_DRIVER_OK) && !d->features_written)
        err(d, "DEVICE_STATUS: DRIVER_OK before GUEST_FEATURES was written");
    else
        ST(&d->status, (uint8_t)(v | (old & S_NEEDS_RESET)));
}

static void features_write(struct vnsim_dev *d, uint32_t v)
{
    uint8_t status = LD(&d->status);
    if (!(status & S_DRIVER) || (status & S_DRIVER_OK))
        err(d, "GUEST_FEATURES written with DEVICE_STATUS %#x (needs DRIVER, not DRIVER_OK)", status);
    else if (v & ~d->offered)
        err(d, "GUEST_FEATURES %#x: bits %#x were not offered", v, v & ~d->offered);
    else if ((v & F_CTRL_RX) && !(v & F_CTRL_VQ))
        err(d, "GUEST_FEATURES: CTRL_RX without CTRL_VQ (5.1.3.1)");
    else {
        d->guest_features = v;
        d->features_written = 1;
    }
}

/* 4.1.5.1.3 legacy: QUEUE_PFN of the queue QUEUE_SEL names; 0 removes the ring. */
static void pfn_write(struct vnsim_dev *d, uint32_t pfn)
{
    const struct sim_dma_ent *hint = NULL;
    unsigned qi = d->queue_sel;
    if (qi >= VNSIM_NUM_QUEUES) {
        err(d, "QUEUE_PFN for queue %u: the device has %u", qi, VNSIM_NUM_QUEUES);
        return;
    }
    struct vq *q = &d->vq[qi];
    if (pfn == 0) {
        ST(&q->pfn, 0);
        return;
    }
    if (!(LD(&d->status) & S_DRIVER) || !d->features_written) {
        err(d, "QUEUE_PFN for queue %u before the features were negotiated (status %#x)", qi, LD(&d->status));
        return;
    }
    uint64_t base = (uint64_t)pfn * LEGACY_ALIGN;
    uint8_t *va = sim_dma_find(&d->sim->map, &hint, base, vring_bytes(q->num));
    if (!va) {
        err(d, "QUEUE_PFN for queue %u: ring %#llx+%llu outside the DMA map", qi, (unsigned long long)base,
            (unsigned long long)vring_bytes(q->num));
        return;
    }
    q->desc = va;
    q->avail = va + 16 * q->num;
    q->used = va + vring_used_offset(q->num);
    q->last_avail = q->used_idx = q->published = q->used_flags = 0;
    ST(&q->pfn, pfn);
}

/* The driver's fast path: no lock, only atomic state. */
static void notify(struct vnsim_dev *d, uint16_t qi)
{
    if (qi >= VNSIM_NUM_QUEUES)
        err(d, "QUEUE_NOTIFY for queue %u: the device has %u", qi, VNSIM_NUM_QUEUES);
    else if (!LD(&d->vq[qi].pfn))
        err(d, "QUEUE_NOTIFY for queue %u, which has no ring (QUEUE_PFN 0)", qi);
    else if (!(command(d) & CMD_MASTER))
        err(d, "QUEUE_NOTIFY for queue %u while bus mastering is off: the device cannot DMA", qi);
    else
        sim_worker_kick(&d->sim->worker);
}

/* 4.1.5.1.2: an event mapped to vector v, or unmapped (NO_VECTOR). A
 * vector beyond the table is refused: the register reads back NO_VECTOR
 * (4.1.5.1.2.1), and the driver must not ask for it (4.1.5.1.2.2). */
static uint16_t vector_checked(struct vnsim_dev *d, const struct io_reg *r, uint16_t v)
{
    if (v == NO_VECTOR || v < d->msix.nvec)
        return v;
    err(d, "%s %u: the MSI-X table has %u entries (reads back NO_VECTOR)", r->name, v, d->msix.nvec);
    return NO_VECTOR;
}

static void io_write_locked(struct vnsim_dev *d, const struct io_reg *r, uint32_t v)
{
    if (r->part == NET) {
        if (r->offset == NET_STATUS)
            err(d, "write of %#x to read-only %s", v, r->name);
        else
            d->mac[r->offset - NET_MAC] = (uint8_t)v;    /* legacy: the mac is writable (5.1.4) */
        return;
    }
    switch (r->offset) {
    case GUEST_FEATURES: features_write(d, v); break;
    case QUEUE_PFN: pfn_write(d, v); break;
    case QUEUE_SEL: d->queue_sel = (uint16_t)v; break;
    case DEVICE_STATUS: status_write(d, (uint8_t)v); break;
    case MSI_CONFIG_VECTOR: d->config_vector = vector_checked(d, r, (uint16_t)v); break;
    case MSI_QUEUE_VECTOR:
        if (d->queue_sel >= VNSIM_NUM_QUEUES)
            err(d, "queue_msix_vector for queue %u: the device has %u", d->queue_sel, VNSIM_NUM_QUEUES);
        else
            d->vq[d->queue_sel].vector = vector_checked(d, r, (uint16_t)v);
        break;
    default:        /* HOST_FEATURES, QUEUE_NUM, ISR_STATUS */
        err(d, "write of %#x to read-only %s", v, r->name);
        break;
    }
}

void vnsim_io_write(void *ctx, uint32_t offset, unsigned width, uint32_t value)
{
    struct vnsim_dev *d = ctx;
    if (LD(&d->removed))
        return;
    if (offset == QUEUE_NOTIFY && width == 2 && (command(d) & CMD_IO)) {
        notify(d, (uint16_t)value);
        return;
    }
    ctl_lock(d->sim);
    const struct io_reg *r = io_access(d, offset, width, "write");
    if (r)
        io_write_locked(d, r, value);
    ctl_unlock(d->sim);
}

const struct ixy_port_ops *vnsim_port_ops(struct vnsim_dev *d) { return &d->ops; }

/* ---- BAR1: the MSI-X table and PBA -------------------------------------------------- */
uint32_t vnsim_msix_read32(void *ctx, uint32_t offset)
{
    struct vnsim_dev *d = ctx;
    uint32_t v = 0xFFFFFFFFu;
    if (LD(&d->removed))
        return v;
    ctl_lock(d->sim);
    if (!(command(d) & CMD_MEM))
        err(d, "BAR1 read at %#x while COMMAND.MEM is clear", offset);
    else
        v = sim_msix_bar_read(&d->msix, offset);
    ctl_unlock(d->sim);
    return v;
}

void vnsim_msix_write32(void *ctx, uint32_t offset, uint32_t value)
{
    struct vnsim_dev *d = ctx;
    if (LD(&d->removed))
        return;
    ctl_lock(d->sim);
    if (!(command(d) & CMD_MEM))
        err(d, "BAR1 write of %#x at %#x while COMMAND.MEM is clear", value, offset);
    else
        sim_msix_bar_write(&d->msix, offset, value);
    ctl_unlock(d->sim);
}

const struct ixy_reg_ops *vnsim_msix_reg_ops(struct vnsim_dev *d) { return &d->msix_ops; }

int vnsim_set_irq_eventfd(struct vnsim_dev *d, unsigned vector, int fd)
{
    if (!sim_worker_owned(&d->sim->worker))
        return EPERM;
    ctl_lock(d->sim);
    int rc = sim_msix_set_eventfd(&d->msix, vector, fd);
    ctl_unlock(d->sim);
    return rc;
}

unsigned vnsim_msix_vectors(struct vnsim_dev *d) { return d->msix.nvec; }
uint64_t vnsim_irq_count(struct vnsim_dev *d, unsigned vector) { return sim_msix_sent(&d->msix, vector); }

static void msix_log(void *ctx, const char *msg) { err(ctx, "%s", msg); }

/* ---- PCI configuration space ------------------------------------------------------- */
static void config_init(struct vnsim_dev *d)
{
    memset(d->cfg, 0, sizeof(d->cfg));
    st16(d->cfg + 0x00, 0x1AF4);       /* vendor */
    st16(d->cfg + 0x02, 0x1000);       /* legacy virtio-net (4.1.2.3) */
    st16(d->cfg + PCI_COMMAND, CMD_IO | CMD_MEM);    /* as the firmware leaves it */
    st16(d->cfg + PCI_STATUS, STATUS_CAP_LIST);
    d->cfg[0x0B] = 0x02;               /* class: network controller, Ethernet */
    st32(d->cfg + 0x10, 0xC000 | 1);   /* BAR0: I/O space */
    st32(d->cfg + 0x14, 0xFEBF1000);   /* BAR1: 32-bit memory, VNSIM_MSIX_BAR_SIZE bytes */
    st16(d->cfg + 0x2C, 0x1AF4);       /* subsystem vendor */
    st16(d->cfg + 0x2E, 1);            /* subsystem device: network (4.1.2.3 legacy) */
    d->cfg[PCI_CAP_PTR] = MSIX_CAP;
    d->cfg[0x3D] = 1;                  /* interrupt pin INTA# */
    sim_msix_pci_init(&d->msix, d->cfg, MSIX_CAP, 0, MSIX_BAR, MSIX_TABLE, MSIX_PBA);
}

static int config_ok(uint32_t offset, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && offset + size <= 256 && !(offset & (size - 1));
}

uint32_t vnsim_config_read(struct vnsim_dev *d, uint32_t offset, unsigned size)
{
    uint32_t v = 0;
    if (!config_ok(offset, size))
        return 0xFFFFFFFFu;
    if (LD(&d->removed))
        return size == 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
    ctl_lock(d->sim);
    memcpy(&v, d->cfg + offset, size);
    ctl_unlock(d->sim);
    return v;
}

/* Only COMMAND's I/O space, memory space, bus master and INTx disable bits
 * and the MSI-X capability's Function Mask and Enable are writable. */
void vnsim_config_write(struct vnsim_dev *d, uint32_t offset, unsigned size, uint32_t value)
{
    const uint16_t writable = CMD_IO | CMD_MEM | CMD_MASTER | CMD_INTX_DISABLE;
    if (!config_ok(offset, size) || LD(&d->removed))
        return;
    ctl_lock(d->sim);
    for (unsigned i = 0; i < size; i++) {
        unsigned at = offset + i;
        if (at == PCI_COMMAND || at == PCI_COMMAND + 1) {
            uint8_t mask = (uint8_t)(writable >> (8 * (at - PCI_COMMAND)));
            d->cfg[at] = (uint8_t)((d->cfg[at] & ~mask) | ((value >> (8 * i)) & mask));
        }
    }
    sim_msix_config_write(&d->msix, offset, size, value);
    ctl_unlock(d->sim);
}

/* ---- faults (virtio_model.h) ----------------------------------------------------------- */
void vnsim_fault_plug(struct vnsim_dev *d, int plugged) { ST(&d->unplugged, !plugged); }
void vnsim_fault_drop_rx(struct vnsim_dev *d, uint64_t n) { ST(&d->drop_rx, n); }

/* Under the model's lock: on return no pass is using the device. */
void vnsim_fault_stall(struct vnsim_dev *d, int stalled)
{
    ctl_lock(d->sim);
    ST(&d->stalled, !!stalled);
    ctl_unlock(d->sim);
}

void vnsim_fault_remove(struct vnsim_dev *d)
{
    ctl_lock(d->sim);
    ST(&d->removed, 1);
    ctl_unlock(d->sim);
}

/* ---- wires ------------------------------------------------------------------------------- */
void vnsim_wire_sink(struct vnsim_dev *d, int seq_offset)
{
    ctl_lock(d->sim);
    d->wire = WIRE_SINK;
    d->seq_offset = seq_offset;
    d->seq = 0;
    ctl_unlock(d->sim);
}

void vnsim_wire_pair(struct vnsim_dev *a, struct vnsim_dev *b)
{
    ctl_lock(a->sim);
    a->wire = b->wire = WIRE_PAIR;
    a->peer = b;
    b->peer = a;
    ctl_unlock(a->sim);
}

void vnsim_wire_source(struct vnsim_dev *d, const uint8_t *frame, uint32_t len, uint64_t count, int seq_offset,
                       uint32_t flows)
{
    if (len > VNSIM_MAX_FRAME || (seq_offset >= 0 && (uint64_t)seq_offset + 8 > len))
        return;
    ctl_lock(d->sim);
    memcpy(d->src_frame, frame, len);
    if (sim_flows_init(&d->src_flows, d->src_frame, len, flows) < flows)
        err(d, "wire_source: %u flows asked for, the frame is no IPv4 frame whose source address can vary "
            "(or more than %u): one flow", flows, SIM_FLOWS_MAX);
    d->src_len = len;
    d->src_count = count;
    d->seq_offset = seq_offset;
    d->seq = 0;
    d->wire = WIRE_SOURCE;
    ctl_unlock(d->sim);
}

void vnsim_get_wire_stats(struct vnsim_dev *d, struct vnsim_wire_stats *out)
{
    ctl_lock(d->sim);
    *out = d->st;
    ctl_unlock(d->sim);
}

unsigned vnsim_rx_mode(struct vnsim_dev *d) { return d->rx_mode; }

void vnsim_offer_any_layout(struct vnsim_dev *d, int offered)
{
    ctl_lock(d->sim);
    d->offered = offered ? OFFERED : OFFERED & ~F_ANY_LAYOUT;
    ctl_unlock(d->sim);
}
unsigned vnsim_isr_peek(struct vnsim_dev *d) { return LD(&d->isr); }

/* ---- DMA map --------------------------------------------------------------------------------- */
static int vnsim_dma_map(void *ctx, uint64_t dma_addr, void *vaddr, uint64_t len)
{
    struct vnsim *s = ctx;
    if (!sim_worker_owned(&s->worker))
        return EPERM;
    ctl_lock(s);
    int rc = sim_dma_add(&s->map, dma_addr, vaddr, len);
    ctl_unlock(s);
    return rc;
}

/* A ring that loses its mapping faults the device (an IOMMU fault). */
static int vnsim_dma_unmap(void *ctx, uint64_t dma_addr, uint64_t len)
{
    struct vnsim *s = ctx;
    if (!sim_worker_owned(&s->worker))
        return EPERM;
    ctl_lock(s);
    int rc = sim_dma_remove(&s->map, dma_addr, len);
    for (unsigned i = 0; i < s->ndevs && !rc; i++) {
        for (unsigned qi = 0; qi < VNSIM_NUM_QUEUES; qi++) {
            struct vq *q = &s->devs[i]->vq[qi];
            const struct sim_dma_ent *hint = NULL;
            uint32_t pfn = LD(&q->pfn);
            if (pfn && !LD(&s->devs[i]->removed) && !sim_dma_find(&s->map, &hint, (uint64_t)pfn * LEGACY_ALIGN, vring_bytes(q->num))) {
                ST(&q->pfn, 0);
                broken(s->devs[i], "queue %u: its ring was unmapped while in use (IOMMU fault)", qi);
            }
        }
    }
    ctl_unlock(s);
    return rc;
}

/* ---- life cycle ---------------------------------------------------------------------------- */
unsigned vnsim_error_count(struct vnsim_dev *d) { return __atomic_load_n(&d->nerr, __ATOMIC_ACQUIRE); }

const char *vnsim_error(struct vnsim_dev *d, unsigned index)
{
    return index < vnsim_error_count(d) ? d->errs[index] : NULL;
}

void vnsim_clear_errors(struct vnsim_dev *d)
{
    pthread_mutex_lock(&d->log_lock);
    __atomic_store_n(&d->nerr, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&d->log_lock);
}

static void dev_free(struct vnsim_dev *d)
{
    if (!d)
        return;
    sim_shared_free(d->segs);
    sim_shared_free(d->frame);
    sim_shared_free(d->src_frame);
    sim_msix_free(&d->msix);
    pthread_mutex_destroy(&d->log_lock);
    sim_shared_free(d);
}

static struct vnsim_dev *dev_new(struct vnsim *s, unsigned index, const uint8_t base_mac[6], unsigned queue_num)
{
    struct vnsim_dev *d = sim_shared_calloc(sizeof(*d));
    if (!d)
        return NULL;
    sim_shared_mutex_init(&d->log_lock);
    sim_msix_init(&d->msix, VNSIM_MSIX_VECTORS, msix_log, d);
    d->segs = sim_shared_calloc((queue_num > VNSIM_CTRL_QUEUE_NUM ? queue_num : VNSIM_CTRL_QUEUE_NUM) * sizeof(struct seg));
    d->frame = sim_shared_calloc(VNSIM_MAX_FRAME);
    d->src_frame = sim_shared_calloc(VNSIM_MAX_FRAME);
    if (!d->segs || !d->frame || !d->src_frame) {
        dev_free(d);
        return NULL;
    }
    d->sim = s;
    d->index = index;
    d->ops = (struct ixy_port_ops){vnsim_io_read, vnsim_io_write, d};
    d->msix_ops = (struct ixy_reg_ops){vnsim_msix_read32, vnsim_msix_write32, d};
    memcpy(d->mac, base_mac, 6);
    d->mac[5] += index;
    d->vq[RXQ].num = d->vq[TXQ].num = queue_num;
    d->vq[CTRLQ].num = VNSIM_CTRL_QUEUE_NUM;
    d->seq_offset = -1;
    d->offered = OFFERED;
    config_init(d);
    device_reset(d);
    return d;
}

static void vnsim_destroy(void *ctx)
{
    struct vnsim *s = ctx;
    if (!sim_worker_owned(&s->worker))   /* the model of the process this one was forked from: it frees it */
        return;
    sim_worker_destroy(&s->worker);
    for (unsigned i = 0; i < s->ndevs; i++)
        dev_free(s->devs[i]);
    sim_dma_free(&s->map);
    pthread_mutex_destroy(&s->lock);
    sim_shared_free(s);
}

struct vnsim *vnsim_create(unsigned ndevs, const uint8_t base_mac[6], unsigned queue_num)
{
    if (ndevs < 1 || ndevs > VNSIM_MAX_DEVS || queue_num < 2 || queue_num > 32768 || queue_num & (queue_num - 1))
        return NULL;
    struct vnsim *s = sim_shared_calloc(sizeof(*s));
    if (!s)
        return NULL;
    if (sim_worker_init(&s->worker, worker_pass, s, 1, IDLE_SLEEP_NS)) {
        sim_shared_free(s);
        return NULL;
    }
    sim_shared_mutex_init(&s->lock);
    for (unsigned i = 0; i < ndevs; i++) {
        s->devs[i] = dev_new(s, i, base_mac, queue_num);
        s->ndevs = i + 1;
        if (!s->devs[i]) {
            vnsim_destroy(s);
            return NULL;
        }
    }
    return s;
}

struct vnsim_dev *vnsim_dev(struct vnsim *s, unsigned index) { return index < s->ndevs ? s->devs[index] : NULL; }

const struct sim_model_ops vnsim_ops = {
    .start = sim_worker_model_start, .stop = sim_worker_model_stop, .destroy = vnsim_destroy,
    .poll = vnsim_poll, .set_busy_poll = sim_worker_model_set_busy_poll, .dma_map = vnsim_dma_map, .dma_unmap = vnsim_dma_unmap,
};
