/* Memory the device models share with the processes forked from the one
 * that made them: every piece of a model's state that a driver's register
 * access or a sweep of the engine (sim_worker.h) touches is allocated here,
 * in a MAP_SHARED anonymous mapping of its own, so a worker process forked
 * after the devices were opened drives them as its parent does (as a real
 * NIC's BAR and hugepage DMA memory are shared mappings), and the parent
 * sees what its workers did (registers, statistics).
 *
 * A fork shares what was mapped before it; what either side allocates
 * afterwards is its own. So the process that made a model changes what the
 * model allocates, and only while no process forked from it uses the
 * model: its DMA map (a forked process's dma_map is refused, its memory
 * would be its own: sim_model.h), its engine's members (sim_worker.h), a
 * source wire's flows. Fork after opening the devices and allocating their
 * DMA memory; close them after the workers have ended.
 *
 * The locks in shared state are process-shared (sim_shared_mutex_init). */
#ifndef SIM_SHARED_H
#define SIM_SHARED_H

#include <pthread.h>
#include <stddef.h>

/* size bytes, zeroed, 64-byte aligned; NULL if out of memory. */
void *sim_shared_calloc(size_t size);
/* p (from sim_shared_calloc, or NULL) resized to size bytes, its contents
 * kept up to the lesser size, what is new zeroed; NULL if out of memory
 * (p is then unchanged). */
void *sim_shared_realloc(void *p, size_t size);
void sim_shared_free(void *p);
/* A mutex that threads of every process sharing it may take. */
void sim_shared_mutex_init(pthread_mutex_t *m);

#endif
