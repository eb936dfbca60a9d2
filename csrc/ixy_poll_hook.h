/* A device model's DMA engines run in the caller's thread: a benchmark's
 * C-driven loop (ixypy.fastpath.bench) calls poll(ctx) when it makes no
 * progress, instead of spinning while another thread plays the NIC. The
 * models hand one out as a PyCapsule named "ixypy.poll_hook". */
#ifndef IXY_POLL_HOOK_H
#define IXY_POLL_HOOK_H

struct ixy_poll_hook {
    int (*poll)(void *ctx);
    void *ctx;
};

#endif
