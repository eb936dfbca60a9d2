/* The device models' worker thread: see sim_worker.h. */
#define _GNU_SOURCE
#include "sim_worker.h"

#include <sched.h>

#define LD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

void sim_worker_init(struct sim_worker *w, unsigned (*pass)(void *model), void *model,
                     int yield_when_idle, int64_t sleep_ns)
{
    w->pass = pass;
    w->model = model;
    w->yield_when_idle = yield_when_idle;
    w->sleep_ns = sleep_ns;
    w->running = w->busy = w->sleeping = w->kicked = 0;
    pthread_mutex_init(&w->life_lock, NULL);
    pthread_mutex_init(&w->wake_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
}

void sim_worker_destroy(struct sim_worker *w)
{
    sim_worker_stop(w);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->wake_lock);
    pthread_mutex_destroy(&w->life_lock);
}

/* Sleep until a kick (or sleep_ns); not at all if one came since the last pass. */
static void idle_sleep(struct sim_worker *w)
{
    pthread_mutex_lock(&w->wake_lock);
    ST(&w->sleeping, 1);
    if (!LD(&w->kicked) && LD(&w->running)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + w->sleep_ns;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&w->wake, &w->wake_lock, &ts);
    }
    ST(&w->sleeping, 0);
    pthread_mutex_unlock(&w->wake_lock);
}

void sim_worker_kick(struct sim_worker *w)
{
    ST(&w->kicked, 1);
    if (!LD(&w->sleeping))
        return;
    pthread_mutex_lock(&w->wake_lock);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->wake_lock);
}

static void idle(struct sim_worker *w, int64_t idle_for)
{
    int early = idle_for < IDLE_SPIN_NS;
    if (LD(&w->busy) || (early && !w->yield_when_idle)) {
        for (int k = 0; k < 16; k++)
            cpu_relax();
    } else if (early) {
        sched_yield();
    } else {
        idle_sleep(w);
    }
}

static void *run(void *arg)
{
    struct sim_worker *w = arg;
    int64_t idle_since = 0;   /* 0: busy in the last pass */
    while (LD(&w->running)) {
        ST(&w->kicked, 0);
        if (w->pass(w->model)) {
            idle_since = 0;
            continue;
        }
        int64_t now = now_ns();
        if (!idle_since)
            idle_since = now;
        idle(w, now - idle_since);
    }
    return NULL;
}

int sim_worker_start(struct sim_worker *w)
{
    int rc = 0;
    pthread_mutex_lock(&w->life_lock);
    if (!LD(&w->running)) {
        ST(&w->running, 1);
        rc = pthread_create(&w->thread, NULL, run, w);
        if (rc)
            ST(&w->running, 0);
    }
    pthread_mutex_unlock(&w->life_lock);
    return rc;
}

void sim_worker_stop(struct sim_worker *w)
{
    pthread_mutex_lock(&w->life_lock);
    if (LD(&w->running)) {
        ST(&w->running, 0);
        sim_worker_kick(w);
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_unlock(&w->life_lock);
}

void sim_worker_set_busy(struct sim_worker *w, int busy)
{
    ST(&w->busy, !!busy);
}

/* The model's struct begins with its worker: a pointer to it is one to the worker. */
int sim_worker_model_start(void *model) { return sim_worker_start(model); }
void sim_worker_model_stop(void *model) { sim_worker_stop(model); }
void sim_worker_model_set_busy_poll(void *model, int busy) { sim_worker_set_busy(model, busy); }
