/* The engine that plays the device models' DMA engines: one thread per
 * process, shared by every started model (intel_model.h, virtio_model.h).
 * Each model holds a struct sim_worker, its membership: its pass (one pass
 * of its DMA engines) and its idle policy. A sweep of the engine runs the
 * pass of every member; models opened in one process (sim:source and
 * sim:sink in `ixypy fwd`) thus share one thread instead of one each, and
 * a process with a driver thread needs two cores, not one per model.
 * Also the clock and the pause of a spin-wait the models share.
 *
 * Idle policy: after a sweep without work the engine
 *   - spins briefly (16 pauses) while any member busy-polls (benchmarks:
 *     one core for the models), and for the first IDLE_SPIN_NS of an idle
 *     spell unless a member sets yield_when_idle, in which case it yields
 *     its core instead (a driver sharing it gets to run);
 *   - after that sleeps up to the smallest sleep_ns of its members at a
 *     time, or until sim_worker_kick() (a notify: the virtio-net model)
 *     wakes it.
 *
 * Help: a driver whose call found no work runs a sweep itself
 * (sim_engine_help, through the queues' idle hook: ixy_poll_hook.h) when
 * no thread has swept since its previous call (the engine has no core
 * now), unless the engine is in one or a member busy-polls (benchmarks:
 * the models have a core of their own, the driver's figures are its own).
 * On a machine whose cores are busy, the models then progress while the
 * driver has a core, not only when the engine's thread gets one; with a
 * core each, the engine plays the models and the driver forwards, neither
 * taking the other's cache lines. Sweeps never overlap. An engine that
 * finds a driver sweeping, or no work after a driver helped, yields its
 * core if that driver last helped from the engine's own CPU (the driver
 * then gets it); on another CPU it pauses and sweeps again, since a yield
 * there would leave the sweep count still and draw the driver into
 * sweeping once more, the two taking turns at the models' cache lines.
 *
 * Membership: sim_worker_start() adds a model to the engine (starting the
 * thread for the first), sim_worker_stop() removes it and returns once the
 * engine no longer runs its pass (stopping the thread with the last). The
 * engine reads the member list without a lock: a change publishes a new
 * list and waits until the sweep that may hold the old one has ended.
 *
 * Processes: the engine, like the models (sim_shared.h), lives in memory
 * shared across fork, its locks and condition variable process-shared. It
 * belongs to the process that made it (with its first model), which alone
 * runs its thread and changes its members. A worker process forked from
 * that one drives the models it inherited as its parent does: its kicks
 * wake the parent's thread, its helping sweeps take turns with it (the
 * sweeping flag and the sweep count are shared); it cannot start or stop
 * them (sim_worker_start refuses a model not started yet, sim_worker_stop
 * does nothing). A model the forked process makes itself joins an engine
 * of the process's own, which its sim_engine_help then helps instead.
 *
 * Memory order: the engine's flags are sequentially consistent: kick
 * stores kicked and then loads sleeping, the engine stores sleeping and
 * then loads kicked, and one of them must see the other's store; a sweep
 * makes its counter odd before it loads the member list, a change stores
 * the list before it loads the counter. */
#ifndef SIM_WORKER_H
#define SIM_WORKER_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define IDLE_SPIN_NS 1000000       /* how long an idle engine keeps spinning or yielding */

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct sim_engine;

/* A model's membership of an engine. */
struct sim_worker {
    struct sim_engine *engine;      /* of the process that made the model */
    unsigned (*pass)(void *model);  /* one pass of the model's DMA engines: the work done */
    void *model;
    int yield_when_idle;            /* early in an idle spell: yield the core rather than spin */
    int64_t sleep_ns;               /* then: sleep at most this long at a time (or until a kick) */
    int running, busy;              /* atomic: a member of the engine; busy polling */
};

/* Membership of this process's engine (made at the process's first call):
 * 0, or ENOMEM. */
int sim_worker_init(struct sim_worker *w, unsigned (*pass)(void *model), void *model,
                    int yield_when_idle, int64_t sleep_ns);
/* This process made the model (it owns w's engine): it alone may start,
 * stop or free the model, or change what the model allocates (sim_shared.h). */
int sim_worker_owned(const struct sim_worker *w);
/* The same as sim_worker_stop: a model calls it before it frees itself. */
void sim_worker_destroy(struct sim_worker *w);
/* Join the engine, starting its thread if this is the first member
 * (idempotent). Returns 0 or an errno: EPERM for a model not started by
 * the process that made it. */
int sim_worker_start(struct sim_worker *w);
/* Leave the engine; on return it no longer runs w's pass (idempotent).
 * Nothing in a process that does not own w. */
void sim_worker_stop(struct sim_worker *w);
void sim_worker_set_busy(struct sim_worker *w, int busy);
/* Wake the engine if it sleeps; if it is in a sweep, it does not sleep after it. */
void sim_worker_kick(struct sim_worker *w);

/* One sweep of the engine this process helps (its own, else the one it
 * inherited) in the caller's thread, unless another thread is in one or no
 * model is started: the work done (an ixy_poll_hook's poll; unused: NULL). */
int sim_engine_help(void *unused);
/* How many sweeps sim_engine_help has run on that engine (in any process). */
uint64_t sim_engine_helped(void);
/* How often the engine, finding a driver sweeping or no work after a
 * driver helped, yielded its CPU (the driver helped from it) or paused on it. */
void sim_engine_gave_way(uint64_t *yielded, uint64_t *paused);

/* struct sim_model_ops entries (sim_model.h) for a model whose struct
 * begins with its struct sim_worker: start, stop, set_busy_poll. */
int sim_worker_model_start(void *model);
void sim_worker_model_stop(void *model);
void sim_worker_model_set_busy_poll(void *model, int busy);

static inline int sim_worker_running(const struct sim_worker *w)
{
    return __atomic_load_n(&w->running, __ATOMIC_SEQ_CST);
}

/* The model is in the engine and asked it to spin instead of sleeping. */
static inline int sim_worker_busy_polling(const struct sim_worker *w)
{
    return sim_worker_running(w) && __atomic_load_n(&w->busy, __ATOMIC_SEQ_CST);
}

#endif
