/* The life cycle every device model offers (intel_model.h, virtio_model.h),
 * as a table of functions: one Python wrapper (src/ixypy/sim/_model.pyx)
 * drives any model through it. Each function takes the model (the struct
 * its create function returned) as sim.
 *
 * A model holds its functions (ports, devices), its membership of the
 * process's engine (sim_worker.h: one thread playing the DMA engines of
 * every started model), and one DMA map (what an IOMMU's page table says),
 * all in memory shared across fork (sim_shared.h). Only the process that
 * made it starts, stops, frees it or changes its map: elsewhere start
 * returns EPERM (unless started), stop and destroy do nothing, dma_map and
 * dma_unmap return EPERM. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stdint.h>

struct sim_model_ops {
    /* Join the engine: its thread runs the model's passes (idempotent).
     * Returns 0 or an errno. */
    int (*start)(void *sim);
    /* Leave the engine; on return it runs none of the model (idempotent). */
    void (*stop)(void *sim);
    /* Leave the engine, then free the model. */
    void (*destroy)(void *sim);
    /* Out of the engine (stopped): one pass of the DMA engines in the caller's
     * thread (deterministic measurements: no second thread, no spinning).
     * Returns the work done, or -1 while the model is in the engine. */
    int (*poll)(void *sim);
    /* busy != 0: the idle engine spins without sleeping (benchmarks, one
     * core for the models); busy == 0 (default): it sleeps when idle. */
    void (*set_busy_poll)(void *sim, int busy);
    /* Descriptors and buffers carry dma_addr; the model reaches that memory
     * at vaddr. DMA outside the mapped ranges is an error (an IOMMU fault).
     * Returns 0, EINVAL (empty or wrapping), EEXIST (overlaps), ENOMEM or EPERM. */
    int (*dma_map)(void *sim, uint64_t dma_addr, void *vaddr, uint64_t len);
    /* Removes the mappings inside [dma_addr, dma_addr + len); a ring that
     * loses its mapping faults. Returns 0, ENOENT, ENOMEM or EPERM. */
    int (*dma_unmap)(void *sim, uint64_t dma_addr, uint64_t len);
};

#endif
