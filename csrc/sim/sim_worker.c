/* The process's engine playing every started model: see sim_worker.h. */
#define _GNU_SOURCE
#include "sim_worker.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* What the members ask of the engine when a sweep finds no work. */
struct idle_policy {
    int busy, yield;
    int64_t sleep_ns;
};

static struct {
    pthread_mutex_t life_lock;      /* membership changes and the thread's start and stop */
    struct sim_worker **members;    /* atomic: NULL-terminated; replaced, never changed in place */
    unsigned nmembers;              /* life_lock */
    pthread_t thread;
    int running;                    /* atomic */
    unsigned char sweeping;         /* atomic flag: a thread (the engine's or a helper) sweeps */
    uint64_t sweeps;                /* atomic: odd while a sweep runs */
    uint64_t helped;                /* atomic: sweeps run by sim_engine_help */
    int helper_cpu;                 /* atomic: the CPU of the last sim_engine_help sweep */
    uint64_t yielded, paused;       /* atomic: give_way's choices */
    int busy;                       /* atomic: a member busy-polled at the last sweep */
    int sleeping, kicked;           /* atomic: the engine sleeps; a kick came since the last sweep */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;            /* CLOCK_MONOTONIC, see init_wake */
} engine = {.life_lock = PTHREAD_MUTEX_INITIALIZER, .wake_lock = PTHREAD_MUTEX_INITIALIZER,
          .helper_cpu = -1};

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;

static void init_wake(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&engine.wake, &ca);
    pthread_condattr_destroy(&ca);
}

/* Every member's pass once; the members' idle policy in *policy. One
 * thread at a time (sweeping held). */
static unsigned sweep(struct idle_policy *policy)
{
    unsigned work = 0;
    *policy = (struct idle_policy){0, 0, INT64_MAX};
    __atomic_add_fetch(&engine.sweeps, 1, __ATOMIC_SEQ_CST);
    for (struct sim_worker **m = LD(&engine.members); m && *m; m++) {
        struct sim_worker *w = *m;
        work += w->pass(w->model);
        policy->busy |= LD(&w->busy);
        policy->yield |= w->yield_when_idle;
        if (w->sleep_ns < policy->sleep_ns)
            policy->sleep_ns = w->sleep_ns;
    }
    __atomic_add_fetch(&engine.sweeps, 1, __ATOMIC_SEQ_CST);
    ST(&engine.busy, policy->busy);
    return work;
}

/* Sleep until a kick (or sleep_ns); not at all if one came since the last sweep. */
static void idle_sleep(int64_t sleep_ns)
{
    pthread_mutex_lock(&engine.wake_lock);
    ST(&engine.sleeping, 1);
    if (!LD(&engine.kicked) && LD(&engine.running)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + sleep_ns;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&engine.wake, &engine.wake_lock, &ts);
    }
    ST(&engine.sleeping, 0);
    pthread_mutex_unlock(&engine.wake_lock);
}

static void idle(const struct idle_policy *policy, int64_t idle_for)
{
    int early = idle_for < IDLE_SPIN_NS;
    if (policy->busy || (early && !policy->yield)) {
        for (int k = 0; k < 16; k++)
            cpu_relax();
    } else if (early) {
        sched_yield();
    } else {
        idle_sleep(policy->sleep_ns);
    }
}

/* A sweep unless another thread is in one: returns 0 then, else 1 with the
 * sweep's work in *work. */
static int try_sweep(struct idle_policy *policy, unsigned *work)
{
    if (LD(&engine.sweeping) || __atomic_test_and_set(&engine.sweeping, __ATOMIC_ACQUIRE))
        return 0;
    *work = sweep(policy);
    __atomic_clear(&engine.sweeping, __ATOMIC_RELEASE);
    return 1;
}

/* A driver swept, or sweeps: yield the core if it shares this one (it then
 * gets it); on a core of its own, yielding would only make it sweep again
 * (the engine would seem to have no core) and the two would take turns at
 * the models' cache lines: pause instead. */
static void give_way(void)
{
    if (sched_getcpu() == LD(&engine.helper_cpu)) {
        __atomic_add_fetch(&engine.yielded, 1, __ATOMIC_RELAXED);
        sched_yield();
    } else {
        __atomic_add_fetch(&engine.paused, 1, __ATOMIC_RELAXED);
        for (int k = 0; k < 16; k++)
            cpu_relax();
    }
}

static void *run(void *arg)
{
    (void)arg;
    int64_t idle_since = 0;   /* 0: busy in the last sweep */
    uint64_t helped = LD(&engine.helped);
    struct idle_policy policy = {0, 0, IDLE_SPIN_NS};
    unsigned work;
    while (LD(&engine.running)) {
        ST(&engine.kicked, 0);
        /* A driver that waits plays the models (it sweeps now, or did since
         * the last idle sweep): it had a core when this thread had none, or
         * it has this thread's: yield it. */
        if (!try_sweep(&policy, &work) || (!work && LD(&engine.helped) != helped)) {
            helped = LD(&engine.helped);
            idle_since = 0;
            give_way();
            continue;
        }
        if (work) {
            idle_since = 0;
            continue;
        }
        int64_t now = now_ns();
        if (!idle_since)
            idle_since = now;
        idle(&policy, now - idle_since);
    }
    return NULL;
}

static void kick(void)
{
    ST(&engine.kicked, 1);
    if (!LD(&engine.sleeping))
        return;
    pthread_mutex_lock(&engine.wake_lock);
    pthread_cond_signal(&engine.wake);
    pthread_mutex_unlock(&engine.wake_lock);
}

/* Publish a new member list (life_lock held) and free the old one once no
 * sweep can be reading it. */
static void publish(struct sim_worker **members)
{
    struct sim_worker **old = engine.members;
    ST(&engine.members, members);
    uint64_t s = LD(&engine.sweeps);
    if (s & 1) {
        while (LD(&engine.sweeps) == s)
            sched_yield();
    }
    free(old);
}

/* The member list without `drop` and with `add` (either may be NULL). */
static struct sim_worker **members_with(struct sim_worker *drop, struct sim_worker *add)
{
    struct sim_worker **list = calloc(engine.nmembers + 2, sizeof(*list));
    if (!list)
        return NULL;
    unsigned n = 0;
    for (struct sim_worker **m = engine.members; m && *m; m++)
        if (*m != drop)
            list[n++] = *m;
    if (add)
        list[n++] = add;
    return list;
}

static void stop_thread(void)
{
    ST(&engine.running, 0);
    kick();
    pthread_join(engine.thread, NULL);
}

void sim_worker_init(struct sim_worker *w, unsigned (*pass)(void *model), void *model,
                     int yield_when_idle, int64_t sleep_ns)
{
    pthread_once(&wake_once, init_wake);
    *w = (struct sim_worker){.pass = pass, .model = model, .yield_when_idle = yield_when_idle,
                             .sleep_ns = sleep_ns};
}

void sim_worker_destroy(struct sim_worker *w)
{
    sim_worker_stop(w);
}

int sim_worker_start(struct sim_worker *w)
{
    int rc = 0;
    pthread_mutex_lock(&engine.life_lock);
    if (LD(&w->running))
        goto out;
    struct sim_worker **list = members_with(NULL, w);
    if (!list) {
        rc = ENOMEM;
        goto out;
    }
    ST(&w->running, 1);
    publish(list);
    engine.nmembers++;
    if (!LD(&engine.running)) {
        ST(&engine.running, 1);
        rc = pthread_create(&engine.thread, NULL, run, NULL);
        if (rc) {
            ST(&engine.running, 0);
            publish(members_with(w, NULL));
            engine.nmembers--;
            ST(&w->running, 0);
        }
    }
out:
    pthread_mutex_unlock(&engine.life_lock);
    return rc;
}

void sim_worker_stop(struct sim_worker *w)
{
    pthread_mutex_lock(&engine.life_lock);
    if (LD(&w->running)) {
        if (engine.nmembers == 1) {
            stop_thread();
            free(engine.members);
            engine.members = NULL;
        } else {
            /* without memory for a new list, wait for it: w must leave */
            struct sim_worker **list;
            while (!(list = members_with(w, NULL)))
                sched_yield();
            publish(list);
        }
        engine.nmembers--;
        ST(&w->running, 0);
    }
    pthread_mutex_unlock(&engine.life_lock);
}

/* The engine's sweep count when this thread last looked (sim_engine_help). */
static _Thread_local uint64_t seen_sweeps;

int sim_engine_help(void *unused)
{
    (void)unused;
    struct idle_policy policy;
    unsigned work = 0;
    uint64_t sweeps = LD(&engine.sweeps);
    if (sweeps != seen_sweeps) {
        /* another thread swept since this one last looked: the engine has a core */
        seen_sweeps = sweeps;
        return 0;
    }
    if (!LD(&engine.members) || LD(&engine.busy))
        return 0;
    int cpu = sched_getcpu();
    if (LD(&engine.helper_cpu) != cpu)
        ST(&engine.helper_cpu, cpu);
    if (try_sweep(&policy, &work)) {
        __atomic_add_fetch(&engine.helped, 1, __ATOMIC_RELAXED);
        seen_sweeps = LD(&engine.sweeps);
    }
    return (int)work;
}

uint64_t sim_engine_helped(void)
{
    return __atomic_load_n(&engine.helped, __ATOMIC_RELAXED);
}

void sim_engine_gave_way(uint64_t *yielded, uint64_t *paused)
{
    *yielded = __atomic_load_n(&engine.yielded, __ATOMIC_RELAXED);
    *paused = __atomic_load_n(&engine.paused, __ATOMIC_RELAXED);
}

void sim_worker_set_busy(struct sim_worker *w, int busy)
{
    ST(&w->busy, !!busy);
}

void sim_worker_kick(struct sim_worker *w)
{
    (void)w;
    kick();
}

/* The model's struct begins with its worker: a pointer to it is one to the worker. */
int sim_worker_model_start(void *model) { return sim_worker_start(model); }
void sim_worker_model_stop(void *model) { sim_worker_stop(model); }
void sim_worker_model_set_busy_poll(void *model, int busy) { sim_worker_set_busy(model, busy); }
