/* The process's engine playing every started model: see sim_worker.h. */
#define _GNU_SOURCE
#include "sim_worker.h"
#include "sim_shared.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#define LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

/* What the members ask of the engine when a sweep finds no work. */
struct idle_policy {
    int busy, yield;
    int64_t sleep_ns;
};

/* An engine, in memory shared across fork (sim_shared.h): the processes
 * forked from its owner kick it and help it sweep. */
struct sim_engine {
    pid_t owner;                    /* the process that made it: runs its thread, changes its members */
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
    pthread_cond_t wake;            /* CLOCK_MONOTONIC */
};

/* The engine this process helps: the one it made, or until it makes one
 * (its first model), the one of the process it was forked from. */
static struct sim_engine *engine;
static pthread_mutex_t make_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sim_engine *engine_new(pid_t owner)
{
    struct sim_engine *e = sim_shared_calloc(sizeof(*e));
    if (!e)
        return NULL;
    e->owner = owner;
    e->helper_cpu = -1;
    sim_shared_mutex_init(&e->life_lock);
    sim_shared_mutex_init(&e->wake_lock);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &ca);
    pthread_condattr_destroy(&ca);
    return e;
}

/* The engine this process owns, made at its first call in the process; NULL
 * if out of memory. */
static struct sim_engine *own_engine(void)
{
    pid_t pid = getpid();
    pthread_mutex_lock(&make_lock);
    struct sim_engine *e = engine;
    if (!e || e->owner != pid) {
        e = engine_new(pid);
        if (e)
            ST(&engine, e);
    }
    pthread_mutex_unlock(&make_lock);
    return e;
}

/* Every member's pass once; the members' idle policy in *policy. One
 * thread at a time (sweeping held). */
static unsigned sweep(struct sim_engine *e, struct idle_policy *policy)
{
    unsigned work = 0;
    *policy = (struct idle_policy){0, 0, INT64_MAX};
    __atomic_add_fetch(&e->sweeps, 1, __ATOMIC_SEQ_CST);
    for (struct sim_worker **m = LD(&e->members); m && *m; m++) {
        struct sim_worker *w = *m;
        work += w->pass(w->model);
        policy->busy |= LD(&w->busy);
        policy->yield |= w->yield_when_idle;
        if (w->sleep_ns < policy->sleep_ns)
            policy->sleep_ns = w->sleep_ns;
    }
    __atomic_add_fetch(&e->sweeps, 1, __ATOMIC_SEQ_CST);
    ST(&e->busy, policy->busy);
    return work;
}

/* Sleep until a kick (or sleep_ns); not at all if one came since the last sweep. */
static void idle_sleep(struct sim_engine *e, int64_t sleep_ns)
{
    pthread_mutex_lock(&e->wake_lock);
    ST(&e->sleeping, 1);
    if (!LD(&e->kicked) && LD(&e->running)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + sleep_ns;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&e->wake, &e->wake_lock, &ts);
    }
    ST(&e->sleeping, 0);
    pthread_mutex_unlock(&e->wake_lock);
}

static void idle(struct sim_engine *e, const struct idle_policy *policy, int64_t idle_for)
{
    int early = idle_for < IDLE_SPIN_NS;
    if (policy->busy || (early && !policy->yield)) {
        for (int k = 0; k < 16; k++)
            cpu_relax();
    } else if (early) {
        sched_yield();
    } else {
        idle_sleep(e, policy->sleep_ns);
    }
}

/* A sweep unless another thread is in one: returns 0 then, else 1 with the
 * sweep's work in *work. */
static int try_sweep(struct sim_engine *e, struct idle_policy *policy, unsigned *work)
{
    if (LD(&e->sweeping) || __atomic_test_and_set(&e->sweeping, __ATOMIC_ACQUIRE))
        return 0;
    *work = sweep(e, policy);
    __atomic_clear(&e->sweeping, __ATOMIC_RELEASE);
    return 1;
}

/* A driver swept, or sweeps: yield the core if it shares this one (it then
 * gets it); on a core of its own, yielding would only make it sweep again
 * (the engine would seem to have no core) and the two would take turns at
 * the models' cache lines: pause instead. */
static void give_way(struct sim_engine *e)
{
    if (sched_getcpu() == LD(&e->helper_cpu)) {
        __atomic_add_fetch(&e->yielded, 1, __ATOMIC_RELAXED);
        sched_yield();
    } else {
        __atomic_add_fetch(&e->paused, 1, __ATOMIC_RELAXED);
        for (int k = 0; k < 16; k++)
            cpu_relax();
    }
}

static void *run(void *arg)
{
    struct sim_engine *e = arg;
    int64_t idle_since = 0;   /* 0: busy in the last sweep */
    uint64_t helped = LD(&e->helped);
    struct idle_policy policy = {0, 0, IDLE_SPIN_NS};
    unsigned work;
    while (LD(&e->running)) {
        ST(&e->kicked, 0);
        /* A driver that waits plays the models (it sweeps now, or did since
         * the last idle sweep): it had a core when this thread had none, or
         * it has this thread's: yield it. */
        if (!try_sweep(e, &policy, &work) || (!work && LD(&e->helped) != helped)) {
            helped = LD(&e->helped);
            idle_since = 0;
            give_way(e);
            continue;
        }
        if (work) {
            idle_since = 0;
            continue;
        }
        int64_t now = now_ns();
        if (!idle_since)
            idle_since = now;
        idle(e, &policy, now - idle_since);
    }
    return NULL;
}

static void kick(struct sim_engine *e)
{
    ST(&e->kicked, 1);
    if (!LD(&e->sleeping))
        return;
    pthread_mutex_lock(&e->wake_lock);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->wake_lock);
}

/* Publish a new member list (life_lock held) and free the old one once no
 * sweep can be reading it. */
static void publish(struct sim_engine *e, struct sim_worker **members)
{
    struct sim_worker **old = e->members;
    ST(&e->members, members);
    uint64_t s = LD(&e->sweeps);
    if (s & 1) {
        while (LD(&e->sweeps) == s)
            sched_yield();
    }
    sim_shared_free(old);
}

/* The member list without `drop` and with `add` (either may be NULL). */
static struct sim_worker **members_with(struct sim_engine *e, struct sim_worker *drop, struct sim_worker *add)
{
    struct sim_worker **list = sim_shared_calloc((e->nmembers + 2) * sizeof(*list));
    if (!list)
        return NULL;
    unsigned n = 0;
    for (struct sim_worker **m = e->members; m && *m; m++)
        if (*m != drop)
            list[n++] = *m;
    if (add)
        list[n++] = add;
    return list;
}

static void stop_thread(struct sim_engine *e)
{
    ST(&e->running, 0);
    kick(e);
    pthread_join(e->thread, NULL);
}

int sim_worker_init(struct sim_worker *w, unsigned (*pass)(void *model), void *model,
                    int yield_when_idle, int64_t sleep_ns)
{
    struct sim_engine *e = own_engine();
    if (!e)
        return ENOMEM;
    *w = (struct sim_worker){.engine = e, .pass = pass, .model = model, .yield_when_idle = yield_when_idle,
                             .sleep_ns = sleep_ns};
    return 0;
}

int sim_worker_owned(const struct sim_worker *w)
{
    return w->engine->owner == getpid();
}

void sim_worker_destroy(struct sim_worker *w)
{
    sim_worker_stop(w);
}

int sim_worker_start(struct sim_worker *w)
{
    struct sim_engine *e = w->engine;
    int rc = 0;
    if (!sim_worker_owned(w))
        return LD(&w->running) ? 0 : EPERM;
    pthread_mutex_lock(&e->life_lock);
    if (LD(&w->running))
        goto out;
    struct sim_worker **list = members_with(e, NULL, w);
    if (!list) {
        rc = ENOMEM;
        goto out;
    }
    ST(&w->running, 1);
    publish(e, list);
    e->nmembers++;
    if (!LD(&e->running)) {
        ST(&e->running, 1);
        rc = pthread_create(&e->thread, NULL, run, e);
        if (rc) {
            ST(&e->running, 0);
            publish(e, members_with(e, w, NULL));
            e->nmembers--;
            ST(&w->running, 0);
        }
    }
out:
    pthread_mutex_unlock(&e->life_lock);
    return rc;
}

void sim_worker_stop(struct sim_worker *w)
{
    struct sim_engine *e = w->engine;
    if (!sim_worker_owned(w))
        return;
    pthread_mutex_lock(&e->life_lock);
    if (LD(&w->running)) {
        if (e->nmembers == 1) {
            stop_thread(e);
            sim_shared_free(e->members);
            e->members = NULL;
        } else {
            /* without memory for a new list, wait for it: w must leave */
            struct sim_worker **list;
            while (!(list = members_with(e, w, NULL)))
                sched_yield();
            publish(e, list);
        }
        e->nmembers--;
        ST(&w->running, 0);
    }
    pthread_mutex_unlock(&e->life_lock);
}

/* The engine's sweep count when this thread last looked (sim_engine_help). */
static _Thread_local uint64_t seen_sweeps;

int sim_engine_help(void *unused)
{
    (void)unused;
    struct sim_engine *e = LD(&engine);
    struct idle_policy policy;
    unsigned work = 0;
    if (!e)
        return 0;
    uint64_t sweeps = LD(&e->sweeps);
    if (sweeps != seen_sweeps) {
        /* another thread swept since this one last looked: the engine has a core */
        seen_sweeps = sweeps;
        return 0;
    }
    if (!LD(&e->members) || LD(&e->busy))
        return 0;
    int cpu = sched_getcpu();
    if (LD(&e->helper_cpu) != cpu)
        ST(&e->helper_cpu, cpu);
    if (try_sweep(e, &policy, &work)) {
        __atomic_add_fetch(&e->helped, 1, __ATOMIC_RELAXED);
        seen_sweeps = LD(&e->sweeps);
    }
    return (int)work;
}

uint64_t sim_engine_helped(void)
{
    struct sim_engine *e = LD(&engine);
    return e ? __atomic_load_n(&e->helped, __ATOMIC_RELAXED) : 0;
}

void sim_engine_gave_way(uint64_t *yielded, uint64_t *paused)
{
    struct sim_engine *e = LD(&engine);
    *yielded = e ? __atomic_load_n(&e->yielded, __ATOMIC_RELAXED) : 0;
    *paused = e ? __atomic_load_n(&e->paused, __ATOMIC_RELAXED) : 0;
}

void sim_worker_set_busy(struct sim_worker *w, int busy)
{
    ST(&w->busy, !!busy);
}

void sim_worker_kick(struct sim_worker *w)
{
    kick(w->engine);
}

/* The model's struct begins with its worker: a pointer to it is one to the worker. */
int sim_worker_model_start(void *model) { return sim_worker_start(model); }
void sim_worker_model_stop(void *model) { sim_worker_stop(model); }
void sim_worker_model_set_busy_poll(void *model, int busy) { sim_worker_set_busy(model, busy); }
