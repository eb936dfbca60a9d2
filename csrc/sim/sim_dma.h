/* The DMA map of a device model: which bus addresses the device may reach
 * and where they are in this process (what an IOMMU's page table says).
 * A growable array in memory shared across fork (sim_shared.h); the caller
 * serialises changes against lookups (or, as intel_model.c does, changes a
 * copy and then replaces the map). */
#ifndef SIM_DMA_H
#define SIM_DMA_H

#include "sim_shared.h"

#include <errno.h>
#include <stdint.h>

struct sim_dma_ent { uint64_t dma, len; uint8_t *va; };
struct sim_dma_map { unsigned n, cap; struct sim_dma_ent *e; };

static inline int sim_dma_ent_holds(const struct sim_dma_ent *e, uint64_t addr, uint64_t len)
{
    return addr - e->dma < e->len && len <= e->len - (addr - e->dma);
}

/* The host address of [addr, addr + len), or NULL. *hint (NULL at first)
 * remembers the last mapping found: consecutive buffers share it. */
static inline uint8_t *sim_dma_find(const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                                    uint64_t addr, uint64_t len)
{
    const struct sim_dma_ent *h = *hint;
    if (h && sim_dma_ent_holds(h, addr, len))
        return h->va + (addr - h->dma);
    for (unsigned i = 0; i < m->n; i++) {
        if (sim_dma_ent_holds(&m->e[i], addr, len)) {
            *hint = &m->e[i];
            return m->e[i].va + (addr - m->e[i].dma);
        }
    }
    return NULL;
}

/* Returns 0, EINVAL (empty or wrapping), EEXIST (overlaps) or ENOMEM.
 * Moves the entries: hints from before are invalid afterwards. */
static inline int sim_dma_add(struct sim_dma_map *m, uint64_t dma, void *va, uint64_t len)
{
    if (len == 0 || !va || dma + len < dma)
        return EINVAL;
    for (unsigned i = 0; i < m->n; i++)
        if (dma < m->e[i].dma + m->e[i].len && m->e[i].dma < dma + len)
            return EEXIST;
    if (m->n == m->cap) {
        unsigned cap = m->cap ? 2 * m->cap : 16;
        struct sim_dma_ent *e = sim_shared_realloc(m->e, cap * sizeof(*e));
        if (!e)
            return ENOMEM;
        m->e = e;
        m->cap = cap;
    }
    m->e[m->n++] = (struct sim_dma_ent){dma, len, va};
    return 0;
}

/* Removes the mappings that lie inside [dma, dma + len): 0, or ENOENT. */
static inline int sim_dma_remove(struct sim_dma_map *m, uint64_t dma, uint64_t len)
{
    unsigned k = 0, n = m->n;
    for (unsigned i = 0; i < n; i++)
        if (!(m->e[i].dma >= dma && m->e[i].dma + m->e[i].len <= dma + len))
            m->e[k++] = m->e[i];
    m->n = k;
    return k == n ? ENOENT : 0;
}

/* A copy of m with room for one more entry, or NULL: for a map that is
 * changed in a copy and replaced as a whole (intel_model.c). Free it with
 * sim_dma_free, then sim_shared_free. */
static inline struct sim_dma_map *sim_dma_copy(const struct sim_dma_map *m)
{
    struct sim_dma_map *c = sim_shared_calloc(sizeof(*c));
    struct sim_dma_ent *e = sim_shared_calloc((m->n + 1) * sizeof(*e));
    if (!c || !e) {
        sim_shared_free(c);
        sim_shared_free(e);
        return NULL;
    }
    for (unsigned i = 0; i < m->n; i++)
        e[i] = m->e[i];
    *c = (struct sim_dma_map){m->n, m->n + 1, e};
    return c;
}

static inline void sim_dma_free(struct sim_dma_map *m)
{
    sim_shared_free(m->e);
    m->e = NULL;
    m->n = m->cap = 0;
}

#endif
