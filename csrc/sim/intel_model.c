/* The Intel model's life cycle: create (functions of one variant), the worker
 * thread, destroy, the DMA map; the PCI configuration space; the logs.
 */
#define _GNU_SOURCE
#include "intel_core.h"
#include "sim_shared.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define DEFAULT_LINK_DELAY_US 5000
#define IDLE_SLEEP_NS 50000      /* the idle worker's sleep: the driver's tail writes do not wake it */

/* One pass of the worker (sim_worker.h). */
static unsigned worker_pass(void *ctx)
{
    return intel_one_pass(ctx, now_ns());
}

int intel_model_poll(void *ctx)
{
    struct intel_model *sim = ctx;
    if (sim_worker_running(&sim->worker))
        return -1;
    return (int)intel_one_pass(sim, now_ns());
}

_Static_assert(offsetof(struct intel_model, worker) == 0, "sim_worker_model_* need the worker first");

static const struct variant *const variants[] = {
    [INTEL_MODEL_82599] = &intel_82599_variant,
    [INTEL_MODEL_82576] = &intel_82576_variant,
};

/* ---- helpers ----------------------------------------------------------------- */
void intel_log_add(struct intel_function *p, int err, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&p->log_lock);
    unsigned *n = err ? &p->nerr : &p->nev;
    if (*n < LOG_ENTRIES) {
        va_start(ap, fmt);
        if (err)
            vsnprintf(p->errs[*n], ERR_LEN, fmt, ap);
        else
            vsnprintf(p->evts[*n], EVT_LEN, fmt, ap);
        va_end(ap);
        __atomic_store_n(n, *n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&p->log_lock);
}
/* ---- PCI configuration space --------------------------------------------------- */
uint32_t intel_model_config_read(struct intel_function *p, uint32_t off, unsigned size)
{
    if (!(size == 1 || size == 2 || size == 4) || off % size || off + size > 256) {
        ERR(p, "config read of %u bytes at 0x%x: bad size or alignment", size, off);
        return 0xFFFFFFFF;
    }
    if (LD(&p->removed))
        return size == 4 ? 0xFFFFFFFF : (1u << (8 * size)) - 1;
    uint8_t cs[256] = {0};
    wr32(cs + 0x00, (uint32_t)p->v->device_id << 16 | 0x8086);   /* device, vendor */
    uint16_t cmd = LD(&p->pci_command);
    memcpy(cs + 0x04, &cmd, 2);
    cs[0x06] = 0;
    wr32(cs + 0x08, 0x02000001);                       /* class 0x020000, revision 1 */
    cs[0x0E] = 0x80;                                    /* header type 0, multi-function */
    wr32(cs + 0x10, 0x0000000C);                       /* BAR0: 64-bit prefetchable memory */
    wr32(cs + 0x2C, 0x00038086);                       /* subsystem */
    cs[0x3D] = 1;                                       /* INTA */
    uint32_t v = 0;
    memcpy(&v, cs + off, size);
    return v;
}

void intel_model_config_write(struct intel_function *p, uint32_t off, unsigned size, uint32_t value)
{
    if (!(size == 1 || size == 2 || size == 4) || off % size || off + size > 256) {
        ERR(p, "config write of %u bytes at 0x%x: bad size or alignment", size, off);
        return;
    }
    if (LD(&p->removed))
        return;
    /* only COMMAND (offset 4, 16 bits) is writable in the model */
    for (unsigned i = 0; i < size; i++) {
        uint32_t o = off + i;
        uint8_t b = (value >> (8 * i)) & 0xFF;
        if (o == 4 || o == 5) {
            uint16_t cmd = LD(&p->pci_command);
            cmd = o == 4 ? (cmd & 0xFF00) | b : (cmd & 0x00FF) | (uint16_t)b << 8;
            cmd &= 0x0547;   /* IO, MEM, BME, parity, SERR, INTx disable */
            __atomic_store_n(&p->pci_command, cmd, __ATOMIC_SEQ_CST);
        }
    }
}

/* ---- life cycle ------------------------------------------------------------------ */
static void function_free(struct intel_function *p)
{
    if (!p)
        return;
    sim_shared_free(p->regs);
    sim_shared_free(p->src_frame);
    sim_shared_free(p->src_rss);
    sim_shared_free(p->scratch);
    sim_shared_free(p->delay.slot);
    sim_shared_free(p->departures);
    sim_msix_free(&p->msix);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->log_lock);
    pthread_mutex_destroy(&p->irq_lock);
    pthread_mutex_destroy(&p->ts.lock);
    sim_shared_free(p);
}

static void map_free(struct sim_dma_map *m)
{
    if (!m)
        return;
    sim_dma_free(m);
    sim_shared_free(m);
}

/* Function i of sim, as after power-up (EEPROM read, DMA init done); NULL
 * if out of memory. */
static struct intel_function *function_new(struct intel_model *sim, unsigned i, const uint8_t base_mac[6],
                                           const struct variant *v)
{
    struct intel_function *p = sim_shared_calloc(sizeof(*p));
    if (!p)
        return NULL;
    p->sim = sim;
    p->v = v;
    p->index = i;
    p->ops.read32 = intel_model_read32;
    p->ops.write32 = intel_model_write32;
    p->ops.ctx = p;
    sim_shared_mutex_init(&p->lock);
    sim_shared_mutex_init(&p->log_lock);
    sim_shared_mutex_init(&p->irq_lock);
    sim_shared_mutex_init(&p->ts.lock);
    intel_msix_init(p);
    p->regs = sim_shared_calloc(INTEL_MODEL_BAR0_SIZE);
    p->src_frame = sim_shared_calloc(INTEL_MODEL_MAX_FRAME + 8);
    p->scratch = sim_shared_calloc(INTEL_MODEL_MAX_FRAME + 64);
    p->src_rss = sim_shared_calloc(sizeof(*p->src_rss));     /* one flow's; wire_source makes room for more */
    if (!p->regs || !p->src_frame || !p->scratch || !p->src_rss) {
        function_free(p);
        return NULL;
    }
    memcpy(p->mac, base_mac, 6);
    p->mac[5] = (uint8_t)(base_mac[5] + i);
    p->link_delay_us = DEFAULT_LINK_DELAY_US;
    p->pci_command = 0;            /* MEM and BME off until the driver enables them */
    p->src_seq_off = -1;
    int64_t now = now_ns();
    intel_function_reset(p, now);
    p->ev_ard = p->ev_dmaidone = 0;
    if (p->v->power_up)
        p->v->power_up(p, now);
    return p;
}

struct intel_model *intel_model_create(unsigned nfunctions, const uint8_t base_mac[6],
                                       enum intel_model_variant variant)
{
    if (nfunctions == 0 || nfunctions > INTEL_MODEL_MAX_FUNCTIONS ||
        (unsigned)variant >= sizeof(variants) / sizeof(variants[0]))
        return NULL;
    intel_fcs_init();
    struct intel_model *sim = sim_shared_calloc(sizeof(*sim));
    if (!sim)
        return NULL;
    sim->nfunctions = nfunctions;
    sim->map = sim_shared_calloc(sizeof(*sim->map));
    if (!sim->map || sim_worker_init(&sim->worker, worker_pass, sim, 0, IDLE_SLEEP_NS))
        goto fail;
    sim_shared_mutex_init(&sim->map_lock);
    for (unsigned i = 0; i < nfunctions; i++) {
        sim->functions[i] = function_new(sim, i, base_mac, variants[variant]);
        if (!sim->functions[i])
            goto fail;
    }
    return sim;
fail:
    for (unsigned i = 0; i < nfunctions; i++)
        function_free(sim->functions[i]);
    map_free(sim->map);
    sim_shared_free(sim);
    return NULL;
}

struct intel_function *intel_model_function(struct intel_model *sim, unsigned index)
{
    return index < sim->nfunctions ? sim->functions[index] : NULL;
}


static void intel_model_destroy(void *ctx)
{
    struct intel_model *sim = ctx;
    if (!sim || !sim_worker_owned(&sim->worker))   /* the model of the process this one was forked from: it frees it */
        return;
    sim_worker_destroy(&sim->worker);
    for (unsigned i = 0; i < sim->nfunctions; i++)
        function_free(sim->functions[i]);
    map_free(sim->map);
    pthread_mutex_destroy(&sim->map_lock);
    sim_shared_free(sim);
}

/* ---- DMA map ---------------------------------------------------------------------- */
/* The worker reads the map without a lock: a change is made to a copy that
 * then replaces the map as a whole. */
static void map_replace(struct intel_model *sim, struct sim_dma_map *nm)
{
    struct sim_dma_map *old = sim->map;
    __atomic_store_n(&sim->map, nm, __ATOMIC_SEQ_CST);
    quiesce(sim);
    map_free(old);
}

static int intel_model_dma_map(void *ctx, uint64_t dma_addr, void *vaddr, uint64_t len)
{
    struct intel_model *sim = ctx;
    if (!sim_worker_owned(&sim->worker))
        return EPERM;
    pthread_mutex_lock(&sim->map_lock);
    struct sim_dma_map *nm = sim_dma_copy(sim->map);
    int rc = nm ? sim_dma_add(nm, dma_addr, vaddr, len) : ENOMEM;
    if (rc == 0)
        map_replace(sim, nm);
    else
        map_free(nm);
    pthread_mutex_unlock(&sim->map_lock);
    return rc;
}


static int intel_model_dma_unmap(void *ctx, uint64_t dma_addr, uint64_t len)
{
    struct intel_model *sim = ctx;
    if (!sim_worker_owned(&sim->worker))
        return EPERM;
    pthread_mutex_lock(&sim->map_lock);
    struct sim_dma_map *nm = sim_dma_copy(sim->map);
    int rc = nm ? sim_dma_remove(nm, dma_addr, len) : ENOMEM;
    if (rc == 0) {
        intel_rings_unmapped(sim, dma_addr, len);
        map_replace(sim, nm);
    } else {
        map_free(nm);
    }
    pthread_mutex_unlock(&sim->map_lock);
    return rc;
}

const struct sim_model_ops intel_model_ops = {
    .start = sim_worker_model_start, .stop = sim_worker_model_stop, .destroy = intel_model_destroy,
    .poll = intel_model_poll, .set_busy_poll = sim_worker_model_set_busy_poll,
    .dma_map = intel_model_dma_map, .dma_unmap = intel_model_dma_unmap,
};

/* ---- logs -------------------------------------------------------------------------------- */
static void log_clear(struct intel_function *p, unsigned *n)
{
    pthread_mutex_lock(&p->log_lock);
    __atomic_store_n(n, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->log_lock);
}

unsigned intel_model_error_count(struct intel_function *p)
{
    return __atomic_load_n(&p->nerr, __ATOMIC_ACQUIRE);
}

const char *intel_model_error(struct intel_function *p, unsigned i)
{
    return i < intel_model_error_count(p) ? p->errs[i] : NULL;
}

void intel_model_clear_errors(struct intel_function *p) { log_clear(p, &p->nerr); }

unsigned intel_model_event_count(struct intel_function *p)
{
    return __atomic_load_n(&p->nev, __ATOMIC_ACQUIRE);
}

const char *intel_model_event(struct intel_function *p, unsigned i)
{
    return i < intel_model_event_count(p) ? p->evts[i] : NULL;
}

void intel_model_clear_events(struct intel_function *p) { log_clear(p, &p->nev); }
