/* MSI-X of the Intel model (82599 7.3, 82576 7.3): causes raise vectors,
 * EIMS/EIMC mask them, EITR throttles them, a message is an 8-byte write to
 * the vector's eventfd (the delivery every model shares: sim_msix.h; the
 * PCI MSI-X table and its masks are not modelled, EIMS/EIMC are the masks).
 * The interrupt registers' layouts are the variant's (struct eirq_layout,
 * struct eitr_layout). See intel_core.h.
 */
#define _GNU_SOURCE
#include "intel_core.h"

_Static_assert(INTEL_MODEL_MSIX_VECTORS <= SIM_MSIX_MAX_VECTORS, "struct sim_msix holds every vector");

static void msix_log(void *ctx, const char *msg) { ERR((struct intel_function *)ctx, "%s", msg); }

void intel_msix_init(struct intel_function *p) { sim_msix_init(&p->msix, p->v->msix_vectors, msix_log, p); }

/* Send every pending, unmasked vector whose EITR interval has passed; the
 * others stay pending (the worker retries them every pass). irq_lock held. */
void intel_irq_eval(struct intel_function *p, int64_t now)
{
    if (!(p->gpie & GPIE_MSIX_MODE)) {
        ST(&p->irq_wait, 0);
        return;
    }
    uint64_t ready = p->pend & p->eims, waiting = 0;
    while (ready) {
        unsigned v = __builtin_ctzll(ready);
        uint64_t b = 1ull << v;
        ready &= ready - 1;
        if (now < p->next_ok[v]) {     /* 7.3.2.1: no more often than EITR allows */
            waiting |= b;
            continue;
        }
        p->pend &= ~b;
        p->next_ok[v] = now + p->itr_ns[v];
        if ((p->v->eirq.autoclear | p->eiac) & b)           /* auto-clear */
            p->eicr &= ~b;
        if ((p->gpie & GPIE_EIAME) && (p->eiam & b))   /* auto-mask */
            p->eims &= ~b;
        sim_msix_send(&p->msix, v);   /* irq_lock held: it serialises p->msix */
    }
    ST(&p->irq_wait, waiting != 0);
}

void intel_irq_raise(struct intel_function *p, uint64_t vectors, int64_t now)
{
    pthread_mutex_lock(&p->irq_lock);
    p->eicr |= vectors;
    p->pend |= vectors;
    intel_irq_eval(p, now);
    pthread_mutex_unlock(&p->irq_lock);
}

/* Unmask vectors (EIMS, EIMS_EX): one whose cause was kept while masked fires. */
void intel_irq_unmask(struct intel_function *p, uint64_t vectors, int64_t now, const char *reg)
{
    pthread_mutex_lock(&p->irq_lock);
    if (p->gpie & GPIE_MSIX_MODE) {
        for (uint64_t m = vectors & ~p->eims; m; m &= m - 1) {
            unsigned v = __builtin_ctzll(m);
            if (!sim_msix_attached(&p->msix, v))
                ERR(p, "%s unmasks MSI-X vector %u, which has no eventfd attached", reg, v);
        }
    }
    p->pend |= vectors & ~p->eims & p->eicr;
    p->eims |= vectors;
    intel_irq_eval(p, now);
    pthread_mutex_unlock(&p->irq_lock);
}

void intel_irq_mask(struct intel_function *p, uint64_t vectors)
{
    pthread_mutex_lock(&p->irq_lock);
    p->eims &= ~vectors;
    pthread_mutex_unlock(&p->irq_lock);
}

/* EITR of vector v at offset off: the interval field and its unit are the
 * variant's; bit 15 (82599 LLI_MOD, 82576 LLI_EN) is kept, bit 31 (82599
 * CNT_WDIS, 82576 CNT_INGR) keeps the write from loading the ITR counter. */
void intel_eitr_write(struct intel_function *p, unsigned v, uint32_t off, uint32_t val, int64_t now)
{
    const struct eitr_layout *l = &p->v->eitr;
    uint32_t reserved = (l->interval & -l->interval) - 1;    /* the bits below the interval */
    if (val & reserved) {
        ERR(p, "EITR[%u]=0x%x: %s", v, val, l->reserved_name);
        val &= ~reserved;
    }
    reg_set(p, off, val & (l->interval | EITR_LLI_MOD | EITR_CNT_WDIS));
    pthread_mutex_lock(&p->irq_lock);
    p->itr_ns[v] = (int64_t)((val & l->interval) >> l->shift) * l->unit_ns;
    if (!(val & EITR_CNT_WDIS))     /* the write also loads the ITR counter (0): it expires now */
        p->next_ok[v] = 0;
    intel_irq_eval(p, now);
    pthread_mutex_unlock(&p->irq_lock);
}

/* IVAR[n]'s four entries (reserved bits already cleared), a vector and
 * IVAR_VALID each: bytes 0..3 are rx q0, tx q0, rx q1, tx q1. */
void intel_ivar_latch(struct intel_function *p, unsigned n, uint32_t v, unsigned q0, unsigned q1)
{
    for (unsigned b = 0; b < 4; b++) {
        uint8_t e = (uint8_t)(v >> (8 * b));
        if ((e & IVAR_VALID) && (e & 0x3Fu) >= p->v->msix_vectors)
            ERR(p, "IVAR[%u]=0x%08x: vector %u does not exist (%u MSI-X vectors)", n, v, e & 0x3Fu,
                p->v->msix_vectors);
    }
    ST(&p->rx_ivar[q0], (uint8_t)v);
    ST(&p->tx_ivar[q0], (uint8_t)(v >> 8));
    ST(&p->rx_ivar[q1], (uint8_t)(v >> 16));
    ST(&p->tx_ivar[q1], (uint8_t)(v >> 24));
}

void intel_gpie_write(struct intel_function *p, uint32_t off, uint32_t v)
{
    pthread_mutex_lock(&p->irq_lock);
    if ((v & GPIE_MSIX_MODE) && !(p->gpie & GPIE_MSIX_MODE)) {
        int any = 0;
        for (unsigned i = 0; i < INTEL_MODEL_MSIX_VECTORS; i++)
            any |= sim_msix_attached(&p->msix, i);
        if (!any)
            ERR(p, "GPIE.MSIX_MODE set while no MSI-X vector has an eventfd attached (MSI-X not enabled)");
        if (!(v & GPIE_PBA_SUPPORT))
            ERR(p, "GPIE.MSIX_MODE set without GPIE.PBA_SUPPORT (must be 1 in MSI-X mode)");
    }
    p->gpie = v;
    reg_set(p, off, v);
    pthread_mutex_unlock(&p->irq_lock);
}

/* EICR, EICS, EIMS, EIMC, EIAC, EIAM: one bit per MSI-X vector (l->vectors),
 * the rest other causes, kept as written but never raised (l->other), or
 * reserved (l->reserved). The same on both, at different offsets and widths
 * (82599 8.2.3.5, 82576 8.8). Returns 0 if off is none of them. */
int intel_eirq_read(struct intel_function *p, uint32_t off, uint32_t *v)
{
    const struct eirq_layout *l = &p->v->eirq;
    if (off == l->eicr) {
        pthread_mutex_lock(&p->irq_lock);
        *v = (uint32_t)(p->eicr & l->vectors) | (reg(p, off) & ~l->vectors);
        if (!(p->gpie & GPIE_MSIX_MODE)) {     /* read to clear outside MSI-X mode */
            p->eicr &= ~(uint64_t)l->vectors;
            p->pend &= ~(uint64_t)l->vectors;
            reg_set(p, off, 0);
        }
        pthread_mutex_unlock(&p->irq_lock);
    } else if (off == l->eims || off == l->eiam) {
        pthread_mutex_lock(&p->irq_lock);
        uint64_t m = off == l->eims ? p->eims : p->eiam;
        pthread_mutex_unlock(&p->irq_lock);
        *v = (uint32_t)(m & l->vectors) | (reg(p, off) & l->other);
    } else if (off == l->eimc || off == l->eics) {
        *v = 0;     /* write-only */
    } else {
        return 0;
    }
    return 1;
}

static void eirq_reserved(struct intel_function *p, const char *name, uint32_t v)
{
    const struct eirq_layout *l = &p->v->eirq;
    if (v & l->reserved)
        ERR(p, "%s %s reserved: write 0x%08x (mask all with 0x%08x)", name, l->reserved_name, v,
            l->vectors | l->other);
}

int intel_eirq_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now)
{
    const struct eirq_layout *l = &p->v->eirq;
    uint32_t vec = v & l->vectors, other = v & l->other;
    if (off == l->eims) {
        eirq_reserved(p, "EIMS", v);
        __atomic_fetch_or(&p->regs[off >> 2], other, __ATOMIC_RELAXED);
        if (vec)
            intel_irq_unmask(p, vec, now, "EIMS");
    } else if (off == l->eimc) {
        eirq_reserved(p, "EIMC", v);
        __atomic_fetch_and(&p->regs[l->eims >> 2], ~other, __ATOMIC_RELAXED);
        intel_irq_mask(p, vec);
    } else if (off == l->eicr) {    /* write 1 to clear */
        __atomic_fetch_and(&p->regs[off >> 2], ~(v & ~l->vectors), __ATOMIC_RELAXED);
        pthread_mutex_lock(&p->irq_lock);
        p->eicr &= ~(uint64_t)vec;
        p->pend &= ~(uint64_t)vec;
        pthread_mutex_unlock(&p->irq_lock);
    } else if (off == l->eics) {    /* software-raised causes */
        __atomic_fetch_or(&p->regs[l->eicr >> 2], other, __ATOMIC_RELAXED);
        if (vec)
            intel_irq_raise(p, vec, now);
    } else if (off == l->eiac) {
        reg_set(p, off, vec);
        pthread_mutex_lock(&p->irq_lock);
        p->eiac = vec;
        pthread_mutex_unlock(&p->irq_lock);
    } else if (off == l->eiam) {
        reg_set(p, off, other);
        pthread_mutex_lock(&p->irq_lock);
        p->eiam = (p->eiam & ~(uint64_t)l->vectors) | vec;
        pthread_mutex_unlock(&p->irq_lock);
    } else {
        return 0;
    }
    return 1;
}

int intel_model_set_irq_eventfd(struct intel_function *p, unsigned vector, int fd)
{
    if (!sim_worker_owned(&p->sim->worker))
        return EPERM;
    pthread_mutex_lock(&p->irq_lock);
    int rc = sim_msix_set_eventfd(&p->msix, vector, fd);
    pthread_mutex_unlock(&p->irq_lock);
    return rc;
}

unsigned intel_model_msix_vectors(struct intel_function *p) { return p->v->msix_vectors; }

uint64_t intel_model_irq_count(struct intel_function *p, unsigned vector)
{
    return sim_msix_sent(&p->msix, vector);
}

/* The interrupt registers to their defaults (a function reset); the attached
 * eventfds stay: they belong to the PCI function's MSI-X set-up, not to BAR0. */
void intel_msix_reset(struct intel_function *p)
{
    pthread_mutex_lock(&p->irq_lock);
    p->gpie = p->eiac = 0;
    p->eicr = p->eims = p->eiam = p->pend = 0;
    for (unsigned i = 0; i < INTEL_MODEL_MSIX_VECTORS; i++)
        p->itr_ns[i] = p->next_ok[i] = 0;
    ST(&p->irq_wait, 0);
    pthread_mutex_unlock(&p->irq_lock);
}
