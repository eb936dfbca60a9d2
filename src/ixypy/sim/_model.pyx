# cython: language_level=3
"""Python wrappers of the device models (csrc/sim/): ``IntelModel``, the 82599
or the 82576 (intel_model.h), and ``VirtioSim``, the legacy virtio-net
(virtio_model.c).

``Model`` is what every model offers through its struct sim_model_ops
(csrc/sim/sim_model.h): its place in the process's engine (one thread
playing every started model, csrc/sim/sim_worker.h) and the DMA map. ``Function`` is
one of its PCI functions: an ``IntelFunction`` (a network port of an
IntelModel) or a ``VirtioSimDevice``.

A model lives in memory shared across fork (csrc/sim/sim_shared.h), its DMA
memory too (memory.VirtualAllocator): a worker process forked after the
model was opened drives its functions, and the process that opened it sees
what the worker did."""
from cpython.pycapsule cimport PyCapsule_New
from libc.errno cimport ENOMEM, EPERM
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t


from ixypy.fastpath.poll_hook cimport ixy_poll_hook

cdef extern from "sim_worker.h" nogil:
    int sim_engine_help(void *unused) noexcept
    uint64_t sim_engine_helped() noexcept
    void sim_engine_gave_way(uint64_t *yielded, uint64_t *paused) noexcept

cdef extern from "sim_model.h" nogil:
    struct sim_model_ops:
        int (*start)(void *sim) noexcept nogil
        void (*stop)(void *sim) noexcept nogil
        void (*destroy)(void *sim) noexcept nogil
        int (*poll)(void *sim) noexcept nogil
        void (*set_busy_poll)(void *sim, int busy) noexcept nogil
        int (*dma_map)(void *sim, uint64_t dma_addr, void *vaddr, uint64_t len) noexcept nogil
        int (*dma_unmap)(void *sim, uint64_t dma_addr, uint64_t len) noexcept nogil

cdef extern from "sim_flows.h" nogil:
    uint32_t SIM_FLOWS_MAX

import array
import os as _os

#: the most flows a source wire's frames carry (wire_source's flows)
MAX_SOURCE_FLOWS = SIM_FLOWS_MAX


cdef uint32_t source_flows(long flows) except 0:
    """flows for wire_source, checked: 1 .. MAX_SOURCE_FLOWS."""
    if not 1 <= flows <= SIM_FLOWS_MAX:
        raise ValueError(f"flows={flows}: a source sends 1 to {SIM_FLOWS_MAX} flows")
    return <uint32_t> flows

cdef str refused(int rc):
    """What rc from a model's start, dma_map, dma_unmap or set_irq_eventfd
    means, where strerror does not say it."""
    if rc == EPERM:
        return (": the model is the process's that opened it, a process forked from that one uses it as it is "
                "(DMA memory mapped before the fork; csrc/sim/sim_shared.h)")
    return ""

cdef ixy_poll_hook _engine_help


def engine_help_hook():
    """PyCapsule "ixypy.poll_hook": one sweep of the process's engine in the
    caller's thread, unless the engine's thread is in one (sim_worker.h,
    "Help"); what the queues run when a call finds no work."""
    _engine_help.poll = sim_engine_help
    _engine_help.ctx = NULL
    return PyCapsule_New(&_engine_help, b"ixypy.poll_hook", NULL)


def engine_helped_sweeps() -> int:
    """How many sweeps of the engine callers of engine_help_hook()'s hook
    (the queues) have run: of this process's engine, or of the one it
    inherited (then in the processes that share it)."""
    return sim_engine_helped()


def engine_gave_way() -> tuple:
    """(yielded, paused): how often the engine's thread, finding a driver's
    sweep running or done while it had no work, yielded its CPU (the driver
    had helped from that CPU) or paused and went on (from another CPU)."""
    cdef uint64_t yielded, paused
    sim_engine_gave_way(&yielded, &paused)
    return yielded, paused


cdef class Model:
    """A device model: its functions, their DMA engines played by the
    process's engine thread once started (see :meth:`start`), and one DMA map. A subclass's ``__cinit__``
    creates the model and sets ``ops`` first, then ``sim``."""
    cdef const sim_model_ops *ops
    cdef void *sim
    cdef ixy_poll_hook hook
    cdef list _functions

    def __dealloc__(self):
        self._destroy()

    cdef void _destroy(self) noexcept:
        cdef void *s = self.sim
        cdef const sim_model_ops *ops = self.ops
        self.sim = NULL
        if s != NULL:
            with nogil:
                ops.destroy(s)

    cdef void *_get(self) except NULL:
        if self.sim == NULL:
            raise ValueError(f"{type(self).__name__} is closed")
        return self.sim

    cdef object _function(self, int i, str kind):
        """Function ``i`` (0-based), a ``kind`` ("function", "device")."""
        self._get()
        if i < 0 or i >= len(self._functions):
            raise IndexError(f"{kind} {i} out of range 0..{len(self._functions) - 1}")
        return self._functions[i]

    def start(self) -> None:
        """Join the process's engine: its one thread plays this model with
        every other started model (idempotent). In a process forked from the
        one that made the model, it only finds the model started (OSError
        EPERM if not): the engine is that process's."""
        cdef int rc = self.ops.start(self._get())
        if rc:
            raise OSError(rc, _os.strerror(rc) + refused(rc))

    def stop(self) -> None:
        """Leave the engine; on return it runs none of this model (idempotent).
        Nothing in a process forked from the one that made the model."""
        cdef void *s = self._get()
        cdef const sim_model_ops *ops = self.ops
        with nogil:
            ops.stop(s)

    def close(self) -> None:
        """Leave the engine and free the model (idempotent); in a process
        forked from the one that made the model, only this object lets go of
        it (that process frees it)."""
        self._destroy()

    @property
    def closed(self) -> bool:
        return self.sim == NULL

    def poll(self) -> int:
        """Stopped (out of the engine): one pass of the DMA engines in this
        thread (deterministic measurements). Returns the work done: the
        82599/82576 descriptors and frames, the virtio-net chains consumed."""
        cdef int work = self.ops.poll(self._get())
        if work < 0:
            raise RuntimeError(f"poll() needs the model stopped ({type(self).__name__}.stop())")
        return work

    def poll_hook(self):
        """PyCapsule "ixypy.poll_hook": lets a C-driven benchmark loop run
        poll() itself when it makes no progress (see the loops of
        ixypy.fastpath.bench)."""
        self.hook.poll = self.ops.poll
        self.hook.ctx = self._get()
        return PyCapsule_New(&self.hook, b"ixypy.poll_hook", NULL)

    def set_busy_poll(self, bint busy) -> None:
        """Let the engine spin without sleeping when idle (benchmarks) or not (default); the
        virtio-net model also suppresses notifies while it spins."""
        self.ops.set_busy_poll(self._get(), busy)

    def dma_map(self, uint64_t dma_addr, size_t vaddr, uint64_t length) -> None:
        """Let the model's functions reach ``length`` bytes at host ``vaddr`` as ``dma_addr``."""
        cdef void *s = self._get()
        cdef const sim_model_ops *ops = self.ops
        cdef int rc
        with nogil:
            rc = ops.dma_map(s, dma_addr, <void *> vaddr, length)
        if rc:
            raise OSError(rc, f"dma_map({dma_addr:#x}, {length}): {_os.strerror(rc)}{refused(rc)}")

    def dma_unmap(self, uint64_t dma_addr, uint64_t length) -> None:
        """Remove the mappings inside [dma_addr, dma_addr + length)."""
        cdef void *s = self._get()
        cdef const sim_model_ops *ops = self.ops
        cdef int rc
        with nogil:
            rc = ops.dma_unmap(s, dma_addr, length)
        if rc:
            raise OSError(rc, f"dma_unmap({dma_addr:#x}, {length}): {_os.strerror(rc)}{refused(rc)}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


cdef class Function:
    """One PCI function of a :class:`Model` (a NIC port, a device): number ``index``
    of model ``sim``, which makes it. Its MSI-X messages go to eventfds, as
    vfio-pci delivers a real function's (csrc/sim/sim_msix.h); a subclass
    gives the model's three functions for that."""
    cdef readonly int index
    cdef readonly Model sim

    def __init__(self):
        raise TypeError(f"{type(self).__name__}: use IntelModel.function(i) or VirtioSim.device(i)")

    cdef int _set_irq_eventfd(self, unsigned vector, int fd) except -1:
        raise NotImplementedError

    cdef unsigned _msix_vectors(self) except? 0:
        raise NotImplementedError

    cdef uint64_t _irq_count(self, unsigned vector) except? 0:
        raise NotImplementedError

    def set_irq_eventfd(self, unsigned vector, int fd) -> None:
        """Signal MSI-X ``vector`` on eventfd ``fd`` (the model keeps a
        duplicate, as VFIO_DEVICE_SET_IRQS keeps a reference); fd < 0 detaches."""
        cdef int rc = self._set_irq_eventfd(vector, fd)
        if rc:
            raise OSError(rc, f"set_irq_eventfd(vector={vector}, fd={fd}): {_os.strerror(rc)}{refused(rc)}")

    def msix_vectors(self) -> int:
        """The size of the function's MSI-X table (82599: 64, 82576: 25, virtio-net: 4)."""
        return self._msix_vectors()

    def irq_count(self, unsigned vector) -> int:
        """MSI-X messages ``vector`` has sent (whether or not an eventfd took them)."""
        return self._irq_count(vector)

    def __repr__(self):
        return f"<{type(self).__name__} {self.index} of {len(self.sim._functions)}>"


cdef list functions_of(Model sim, type kind, int n):
    """The ``n`` functions of ``sim``, of ``kind`` (a Function subclass)."""
    cdef Function f
    functions = []
    for i in range(n):
        f = <Function> kind.__new__(kind)
        f.sim = sim
        f.index = i
        functions.append(f)
    return functions


include "_intel_model.pxi"
include "_virtio_model.pxi"
