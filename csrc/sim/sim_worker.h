/* The worker thread every device model runs (intel_model.h, virtio_model.h):
 * it plays the DMA engines of the model's functions, one pass after another,
 * and what it does between passes that found no work is the one policy
 * below, with two parameters. Also the clock and the pause of a spin-wait
 * the models share.
 *
 * Idle policy: after a pass without work the worker
 *   - spins briefly (16 pauses) while busy polling is on (benchmarks: one
 *     core for the model), and for the first IDLE_SPIN_NS of an idle spell
 *     unless yield_when_idle is set, in which case it yields its core
 *     instead (a driver sharing it gets to run);
 *   - after that sleeps up to sleep_ns at a time, or until
 *     sim_worker_kick() (a notify: the virtio-net model) wakes it.
 *
 * Memory order: running, busy, sleeping and kicked are sequentially
 * consistent: kick stores kicked and then loads sleeping, the worker stores
 * sleeping and then loads kicked, and one of them must see the other's
 * store (on x86 the loads are plain moves; the stores are in start, stop,
 * set_busy and kick only). */
#ifndef SIM_WORKER_H
#define SIM_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define IDLE_SPIN_NS 1000000       /* how long an idle worker keeps spinning or yielding */

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct sim_worker {
    unsigned (*pass)(void *model);  /* one pass of the model's DMA engines: the work done */
    void *model;
    int yield_when_idle;            /* early in an idle spell: yield the core rather than spin */
    int64_t sleep_ns;               /* then: sleep this long at a time (or until a kick) */
    pthread_t thread;
    int running, busy;              /* atomic */
    int sleeping, kicked;           /* atomic: the worker sleeps; a kick came since the last pass */
    pthread_mutex_t life_lock;      /* start and stop */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
};

void sim_worker_init(struct sim_worker *w, unsigned (*pass)(void *model), void *model,
                     int yield_when_idle, int64_t sleep_ns);
/* Stops the worker, then frees what init made. */
void sim_worker_destroy(struct sim_worker *w);
/* Start the thread (idempotent). Returns 0 or an errno. */
int sim_worker_start(struct sim_worker *w);
/* Stop the thread and wait for it (idempotent). */
void sim_worker_stop(struct sim_worker *w);
void sim_worker_set_busy(struct sim_worker *w, int busy);
/* Wake the worker if it sleeps; if it is in a pass, it does not sleep after it. */
void sim_worker_kick(struct sim_worker *w);

/* struct sim_model_ops entries (sim_model.h) for a model whose struct
 * begins with its struct sim_worker: start, stop, set_busy_poll. */
int sim_worker_model_start(void *model);
void sim_worker_model_stop(void *model);
void sim_worker_model_set_busy_poll(void *model, int busy);

static inline int sim_worker_running(const struct sim_worker *w)
{
    return __atomic_load_n(&w->running, __ATOMIC_SEQ_CST);
}

/* The worker runs and spins instead of sleeping. */
static inline int sim_worker_busy_polling(const struct sim_worker *w)
{
    return sim_worker_running(w) && __atomic_load_n(&w->busy, __ATOMIC_SEQ_CST);
}

#endif
