/* What a test does to a port of the Intel model: the cable pulled out, a
 * burst of rx drops, a stalled DMA engine, surprise removal (intel_model.h). */
#define _GNU_SOURCE
#include "intel_core.h"

void intel_model_fault_plug(struct intel_function *p, int plugged)
{
    ST(&p->unplugged, !plugged);
}

void intel_model_fault_drop_rx(struct intel_function *p, uint64_t n)
{
    ST(&p->drop_rx, n);
}

void intel_model_fault_stall(struct intel_function *p, int stalled)
{
    ST(&p->stalled, !!stalled);
    if (stalled)
        quiesce(p->sim);    /* on return no pass touches the rings */
}

void intel_model_fault_remove(struct intel_function *p)
{
    ST(&p->removed, 1);
    quiesce(p->sim);
}

int intel_fault_drop(struct intel_function *p)
{
    uint64_t n = LD(&p->drop_rx);
    while (n && !__atomic_compare_exchange_n(&p->drop_rx, &n, n - 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
    if (!n)
        return 0;
    p->acc.rxmpc[0]++;
    p->wacc.rx_no_desc_drops++;
    return 1;
}
