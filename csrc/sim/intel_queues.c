/* The rings of the Intel model: the checks a queue enable must pass (the
 * ring set, inside the DMA map, head and tail within it), head and tail
 * writes, the registers of a queue's block as both register maps decode
 * them, and the fault of a ring that loses its DMA mapping.
 */
#define _GNU_SOURCE
#include "intel_core.h"

void intel_ring_stop(struct intel_function *p, struct ring *q, uint64_t *mask, unsigned qi)
{
    __atomic_fetch_and(mask, ~(1ull << qi), __ATOMIC_SEQ_CST);
    __atomic_store_n(&q->enabled, 0, __ATOMIC_SEQ_CST);
    (void)p;
}

/* ---- queue enable ------------------------------------------------------------ */
/* Validate and latch a ring. Returns 1 if it may be enabled. */
static int ring_check(struct intel_function *p, const char *ctl, const char *pre, unsigned qi,
                      uint32_t bal, uint32_t bah, uint32_t len, uint8_t **va)
{
    uint64_t base = (uint64_t)bah << 32 | bal;
    if (len == 0) {
        ERR(p, "%s[%u].ENABLE set while %sLEN[%u] is 0", ctl, qi, pre, qi);
        return 0;
    }
    if (len % 128) {
        ERR(p, "%s[%u].ENABLE set while %sLEN[%u]=%u is not a multiple of 128", ctl, qi, pre, qi, len);
        return 0;
    }
    if (base % 128) {
        ERR(p, "%s[%u].ENABLE set while %sBA[%u]=0x%llx is not 128-byte aligned", ctl, qi, pre, qi,
            (unsigned long long)base);
        return 0;
    }
    pthread_mutex_lock(&p->sim->map_lock);
    const struct sim_dma_ent *hint = NULL;
    *va = sim_dma_find(p->sim->map, &hint, base, len);
    pthread_mutex_unlock(&p->sim->map_lock);
    if (!*va) {
        ERR(p, "%s[%u].ENABLE set while the ring %sBA[%u]=0x%llx+%sLEN %u is outside the DMA map",
            ctl, qi, pre, qi, (unsigned long long)base, pre, len);
        return 0;
    }
    return 1;
}

static void rxdctl_write(struct intel_function *p, unsigned qi, uint32_t v)
{
    struct ring *q = &p->rx[qi];
    int was = LD(&q->enabled);
    if ((v & RXDCTL_ENABLE) && !was) {
        uint8_t *va;
        uint32_t srrctl = LD(&q->srrctl), len = LD(&q->len);
        if (!ring_check(p, "RXDCTL", "RD", qi, LD(&q->bal), LD(&q->bah), len, &va)) {
            v &= ~RXDCTL_ENABLE;
        } else if (SRRCTL_DESCTYPE(srrctl) != 1) {
            ERR(p, "RXDCTL[%u].ENABLE set while SRRCTL[%u].DESCTYPE=%u: only advanced one-buffer (001b) is modelled",
                qi, qi, SRRCTL_DESCTYPE(srrctl));
            v &= ~RXDCTL_ENABLE;
        } else if ((srrctl & p->v->srrctl_bsizepkt) == 0) {
            ERR(p, "RXDCTL[%u].ENABLE set while SRRCTL[%u].BSIZEPACKET is 0", qi, qi);
            v &= ~RXDCTL_ENABLE;
        } else {
            q->ring = va;
            q->size = len / 16;
            q->bsize = (srrctl & p->v->srrctl_bsizepkt) * 1024;
            q->drop_en = !!(srrctl & p->v->srrctl_drop_en);
            q->stat = p->v->rx_stat(p, qi);
            ST(&q->faulted, 0);
            q->bme_reported = 0;
            q->room = 0;
            if (LD(&q->head) >= q->size || LD(&q->tail) >= q->size) {
                ERR(p, "RXDCTL[%u].ENABLE set while RDH/RDT[%u] lie beyond the ring", qi, qi);
                v &= ~RXDCTL_ENABLE;
            } else {
                rx_lock(p);
                __atomic_store_n(&q->enabled, 1, __ATOMIC_SEQ_CST);
                intel_rx_unlock(p);
                __atomic_fetch_or(&p->rxmask, 1ull << qi, __ATOMIC_SEQ_CST);
                EVT(p, "RXDCTL[%u].ENABLE", qi);
            }
        }
    } else if (!(v & RXDCTL_ENABLE) && was) {
        intel_ring_stop(p, q, &p->rxmask, qi);
        quiesce(p->sim);
        rx_lock(p);
        intel_rx_unlock(p);
    }
    ST(&q->ctl, v);
}

static void txdctl_write(struct intel_function *p, unsigned qi, uint32_t v)
{
    struct ring *q = &p->tx[qi];
    int was = LD(&q->enabled);
    if ((v & TXDCTL_ENABLE) && !was) {
        uint8_t *va;
        uint32_t len = LD(&q->len);
        if (p->v->te_before_queues && !(LD(&p->te))) {
            /* 82599 4.6.8: DMATXCTL.TE before the first TXDCTL.ENABLE */
            ERR(p, "TXDCTL[%u].ENABLE set while DMATXCTL.TE is 0", qi);
            v &= ~TXDCTL_ENABLE;
        } else if (!ring_check(p, "TXDCTL", "TD", qi, LD(&q->bal), LD(&q->bah), len, &va)) {
            v &= ~TXDCTL_ENABLE;
        } else {
            q->ring = va;
            q->size = len / 16;
            q->stat = p->v->tx_stat(p, qi);
            ST(&q->faulted, 0);
            q->bme_reported = 0;
            q->paylen_reported = 0;
            if (LD(&q->head) >= q->size || LD(&q->tail) >= q->size) {
                ERR(p, "TXDCTL[%u].ENABLE set while TDH/TDT[%u] lie beyond the ring", qi, qi);
                v &= ~TXDCTL_ENABLE;
            } else {
                __atomic_store_n(&q->enabled, 1, __ATOMIC_SEQ_CST);
                __atomic_fetch_or(&p->txmask, 1ull << qi, __ATOMIC_SEQ_CST);
                EVT(p, "TXDCTL[%u].ENABLE", qi);
            }
        }
    } else if (!(v & TXDCTL_ENABLE) && was) {
        intel_ring_stop(p, q, &p->txmask, qi);
        quiesce(p->sim);
    }
    ST(&q->ctl, v);
}

void intel_tail_write(struct intel_function *p, struct ring *q, const char *name, unsigned qi, uint32_t v)
{
    uint32_t size = LD(&q->enabled) ? q->size : LD(&q->len) / 16;
    if (v != 0 && v >= size) {
        ERR(p, "%s[%u]=%u written beyond the ring of %u descriptors (ignored)", name, qi, v, size);
        return;
    }
    STR(&q->tail, v);
}

static void head_write(struct intel_function *p, struct ring *q, const char *name, unsigned qi, uint32_t v)
{
    if (LD(&q->enabled)) {
        ERR(p, "%s[%u] written while the queue is enabled (ignored)", name, qi);
        return;
    }
    if (v & ~0xFFFFu) {
        ERR(p, "%s[%u]=0x%x has reserved bits 31:16 set (ignored)", name, qi, v);
        return;
    }
    ST(&q->head, v);
}

/* A queue's registers: the ring, and the register's offset in the queue's
 * block; off is where an unmodelled register of the block is stored (one
 * place for a register that has two addresses). */
int intel_queue_reg(struct intel_function *p, struct qreg *r, int rx, unsigned qi, uint32_t slot, uint32_t off)
{
    r->rx = rx;
    r->qi = qi;
    r->slot = slot;
    r->off = off;
    r->q = rx ? &p->rx[qi] : &p->tx[qi];
    return 1;
}

uint32_t intel_queue_read(struct intel_function *p, const struct qreg *r)
{
    struct ring *q = r->q;
    switch (r->slot) {
    case Q_BAL: return LD(&q->bal);
    case Q_BAH: return LD(&q->bah);
    case Q_LEN: return LD(&q->len);
    case Q_H: return LDA(&q->head);
    case Q_T: return LD(&q->tail);
    case Q_CTL: return LD(&q->ctl);
    }
    if (r->rx && r->slot == p->v->srrctl_slot)
        return LD(&q->srrctl);
    return p->v->queue_stat_read(p, r);
}

/* Under p->lock. The tails do not come here: intel_model_write32 takes them. */
void intel_queue_write(struct intel_function *p, const struct qreg *r, uint32_t v)
{
    struct ring *q = r->q;
    switch (r->slot) {
    case Q_BAL: ST(&q->bal, v); return;
    case Q_BAH: ST(&q->bah, v); return;
    case Q_LEN: ST(&q->len, v); return;
    case Q_H: head_write(p, q, r->rx ? "RDH" : "TDH", r->qi, v); return;
    case Q_CTL:
        if (r->rx)
            rxdctl_write(p, r->qi, v);
        else
            txdctl_write(p, r->qi, v);
        return;
    }
    if (r->rx && r->slot == p->v->srrctl_slot)
        ST(&q->srrctl, v);
    else
        reg_set(p, r->off, v);
}

/* A queue whose ring is being unmapped faults (an IOMMU fault on real
 * hardware); a removed function does no DMA, its rings are not used. */
void intel_rings_unmapped(struct intel_model *sim, uint64_t dma_addr, uint64_t len)
{
    for (unsigned pi = 0; pi < sim->nfunctions; pi++) {
        struct intel_function *p = sim->functions[pi];
        for (unsigned qi = 0; !LD(&p->removed) && qi < p->v->nqueues; qi++) {
            for (int rx = 0; rx < 2; rx++) {
                struct ring *q = rx ? &p->rx[qi] : &p->tx[qi];
                if (!LD(&q->enabled))
                    continue;
                uint64_t base = (uint64_t)LD(&q->bah) << 32 | LD(&q->bal);
                if (base < dma_addr + len && dma_addr < base + (uint64_t)q->size * 16) {
                    ERR(p, "DMA unmap of 0x%llx+%llu while %s[%u] uses it for its ring (queue stopped)",
                        (unsigned long long)dma_addr, (unsigned long long)len, rx ? "RXDCTL" : "TXDCTL", qi);
                    intel_ring_stop(p, q, rx ? &p->rxmask : &p->txmask, qi);
                    ST(&q->faulted, 1);
                    ST(&q->ctl, LD(&q->ctl) & ~RXDCTL_ENABLE);
                }
            }
        }
        rx_lock(p);
        intel_rx_unlock(p);
    }
}
