# A device model's DMA engines run in the caller's thread (csrc/ixy_poll_hook.h):
# handed over as a PyCapsule named "ixypy.poll_hook".
cdef extern from "ixy_poll_hook.h" nogil:
    struct ixy_poll_hook:
        int (*poll)(void *ctx) noexcept nogil
        void *ctx
