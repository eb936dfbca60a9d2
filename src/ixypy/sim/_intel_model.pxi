# The Intel model, 82599 or 82576 (csrc/sim/intel_model.h), included in
# _model.pyx: ``IntelModel`` owns the model (PCI functions, membership of the engine, DMA
# map); ``IntelFunction`` is one function, one of the NIC's network ports: its
# PCI config space, its BAR0 registers, its wire and its logs.

cdef extern from "ixy_regs.h" nogil:
    struct ixy_reg_ops:
        pass

cdef extern from "intel_model.h" nogil:
    struct intel_model:
        pass
    struct intel_function:
        pass
    struct intel_wire_stats:
        uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes, rx_no_desc_drops, rx_filtered, delay_drops
    int INTEL_MODEL_MAX_FUNCTIONS
    int INTEL_MODEL_MAX_FRAME
    enum intel_model_variant:
        INTEL_MODEL_82599
        INTEL_MODEL_82576
    unsigned intel_model_msix_vectors(intel_function *fn)
    int intel_model_set_irq_eventfd(intel_function *fn, unsigned vector, int fd)
    uint64_t intel_model_irq_count(intel_function *fn, unsigned vector)
    intel_model *intel_model_create(unsigned nfunctions, const uint8_t *base_mac, intel_model_variant variant)
    intel_function *intel_model_function(intel_model *sim, unsigned index)
    const sim_model_ops intel_model_ops
    uint32_t intel_model_config_read(intel_function *fn, uint32_t offset, unsigned size)
    void intel_model_config_write(intel_function *fn, uint32_t offset, unsigned size, uint32_t value)
    uint32_t intel_model_read32(void *fn, uint32_t offset)
    void intel_model_write32(void *fn, uint32_t offset, uint32_t value)
    const ixy_reg_ops *intel_model_reg_ops(intel_function *fn)
    void intel_model_wire_sink(intel_function *fn)
    void intel_model_wire_pair(intel_function *a, intel_function *b)
    void intel_model_wire_source(intel_function *fn, const uint8_t *frame, uint32_t len,
                                 uint64_t count, int seq_offset, uint32_t flows)
    int intel_model_inject(intel_function *fn, const uint8_t *frame, uint32_t len)
    void intel_model_set_link_delay(intel_function *fn, int64_t usec)
    int intel_model_set_wire_delay(intel_function *fn, int64_t delay_ns, int64_t jitter_ns, uint32_t frames)
    void intel_model_fault_plug(intel_function *fn, int plugged)
    void intel_model_fault_drop_rx(intel_function *fn, uint64_t n)
    void intel_model_fault_stall(intel_function *fn, int stalled)
    void intel_model_fault_remove(intel_function *fn)
    void intel_model_get_wire_stats(intel_function *fn, intel_wire_stats *out)
    int intel_model_log_departures(intel_function *fn, uint32_t frames)
    const int64_t *intel_model_departures(intel_function *fn, uint32_t *n)
    unsigned intel_model_error_count(intel_function *fn)
    const char *intel_model_error(intel_function *fn, unsigned index)
    void intel_model_clear_errors(intel_function *fn)
    unsigned intel_model_event_count(intel_function *fn)
    const char *intel_model_event(intel_function *fn, unsigned index)
    void intel_model_clear_events(intel_function *fn)

REG_OPS_CAPSULE = "ixypy.reg_ops"
DEFAULT_DELAY_FRAMES = 1024   # a delay line's slots: 10 GbE's 14.88 Mpps of 64-byte frames for 68 us
VARIANTS = {"82599": INTEL_MODEL_82599, "82576": INTEL_MODEL_82576}
cdef const char *_CAPSULE_NAME = "ixypy.reg_ops"


cdef class IntelModel(Model):
    """A model with ``nfunctions`` PCI functions (ports) of one ``variant``,
    "82599" or "82576" (MACs: ``mac`` + function index)."""
    cdef readonly int nfunctions
    cdef readonly str variant

    def __cinit__(self, int nfunctions=1, bytes mac=b"\x02\x00\x00\x00\x00\x00", str variant="82599"):
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        if nfunctions < 1 or nfunctions > INTEL_MODEL_MAX_FUNCTIONS:
            raise ValueError(f"nfunctions must be 1..{INTEL_MODEL_MAX_FUNCTIONS}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        self.variant = variant
        self.ops = &intel_model_ops
        self.sim = intel_model_create(<unsigned> nfunctions, <const uint8_t *> mac, <intel_model_variant> VARIANTS[variant])
        if self.sim == NULL:
            raise MemoryError("intel_model_create failed")
        self.nfunctions = nfunctions
        self._functions = functions_of(self, IntelFunction, nfunctions)

    def function(self, int i):
        """Function ``i`` (0-based)."""
        return self._function(i, "function")


cdef class IntelFunction(Function):
    """One PCI function (a network port) of an :class:`IntelModel`."""

    cdef intel_function *_fn(self) except NULL:
        return intel_model_function(<intel_model *> self.sim._get(), self.index)

    def reg_ops(self):
        """PyCapsule "ixypy.reg_ops" for ``ixypy.fastpath.regs.Bar(ops=...)``.
        Keep this function (or its IntelModel) alive while the capsule is used."""
        return PyCapsule_New(<void *> intel_model_reg_ops(self._fn()), _CAPSULE_NAME, NULL)

    def read32(self, uint32_t off) -> int:
        """Read a BAR0 register."""
        cdef intel_function *fn = self._fn()
        cdef uint32_t v
        with nogil:
            v = intel_model_read32(fn, off)
        return v

    def write32(self, uint32_t off, uint32_t value) -> None:
        """Write a BAR0 register."""
        cdef intel_function *fn = self._fn()
        with nogil:
            intel_model_write32(fn, off, value)

    def config_read(self, uint32_t off, unsigned size=4) -> int:
        """Read 1, 2 or 4 bytes of PCI configuration space."""
        return intel_model_config_read(self._fn(), off, size)

    def config_write(self, uint32_t off, unsigned size, uint32_t value) -> None:
        """Write 1, 2 or 4 bytes of PCI configuration space."""
        cdef intel_function *fn = self._fn()
        with nogil:
            intel_model_config_write(fn, off, size, value)

    def wire_sink(self) -> None:
        """tx is counted and discarded; nothing arrives (the default)."""
        cdef intel_function *fn = self._fn()
        with nogil:
            intel_model_wire_sink(fn)

    def wire_pair(self, IntelFunction other) -> None:
        """Cable this function to ``other`` (itself: loopback)."""
        if other.sim is not self.sim:
            raise ValueError("both functions must belong to the same IntelModel")
        cdef intel_function *a = self._fn()
        cdef intel_function *b = other._fn()
        with nogil:
            intel_model_wire_pair(a, b)

    def wire_source(self, bytes frame, uint64_t count=0, int seq_offset=-1, long flows=1) -> None:
        """A generator sends ``count`` copies of ``frame`` (0: forever) as fast
        as rx descriptors free up; a 64-bit LE sequence number at ``seq_offset``;
        copy i of flow i % ``flows``, its IPv4 source address frame's plus
        that (csrc/sim/sim_flows.h; one flow for a frame that is not IPv4,
        logged as a model error)."""
        if len(frame) > INTEL_MODEL_MAX_FRAME:
            raise ValueError(f"frame longer than {INTEL_MODEL_MAX_FRAME} bytes")
        cdef intel_function *fn = self._fn()
        cdef const uint8_t *f = frame
        cdef uint32_t n = len(frame)
        cdef uint32_t nflows = source_flows(flows)
        with nogil:
            intel_model_wire_source(fn, f, n, count, seq_offset, nflows)

    def inject(self, bytes frame) -> bool:
        """One frame arrives now; True if written to rx descriptors."""
        cdef intel_function *fn = self._fn()
        cdef const uint8_t *f = frame
        cdef uint32_t n = len(frame)
        cdef int r
        with nogil:
            r = intel_model_inject(fn, f, n)
        return r != 0

    cdef int _set_irq_eventfd(self, unsigned vector, int fd) except -1:
        return intel_model_set_irq_eventfd(self._fn(), vector, fd)

    cdef unsigned _msix_vectors(self) except? 0:
        return intel_model_msix_vectors(self._fn())

    cdef uint64_t _irq_count(self, unsigned vector) except? 0:
        return intel_model_irq_count(self._fn(), vector)

    def set_link_delay(self, int64_t usec) -> None:
        """Time from an autonegotiation restart to link up (82599:
        AUTOC.RESTART_AN to LINKS.LINK_UP; 82576: the PHY's BMCR restart to
        STATUS.LU); < 0: never up."""
        intel_model_set_link_delay(self._fn(), usec)

    def set_wire_delay(self, int64_t delay_ns, int64_t jitter_ns=0, uint32_t frames=DEFAULT_DELAY_FRAMES) -> None:
        """Propagation delay of the frames this function sends on a pair or
        loop wire: each reaches the peer's rx no sooner than its departure
        (ns, CLOCK_MONOTONIC) + ``delay_ns`` + a jitter drawn uniformly from
        [-``jitter_ns``, +``jitter_ns``], and never before the frame sent
        before it. ``frames``: the delay line's slots; a frame sent while all
        hold frames in flight is dropped (wire_stats()["delay_drops"]). 0, 0:
        no delay. Empties the delay line."""
        cdef intel_function *fn = self._fn()
        cdef int rc
        with nogil:
            rc = intel_model_set_wire_delay(fn, delay_ns, jitter_ns, frames)
        if rc == ENOMEM:
            raise MemoryError(f"no memory for a delay line of {frames} frames")
        if rc:
            raise ValueError(f"delay {delay_ns} ns, jitter {jitter_ns} ns, {frames} frames: "
                             "times must be >= 0, and a delay needs at least one frame")

    def log_departures(self, uint32_t frames) -> None:
        """From now on, log when each of the next `frames` frames this
        function transmits leaves its tx ring (ns, CLOCK_MONOTONIC; the
        frames of one tx pass share a time); 0 stops and drops the log."""
        cdef intel_function *fn = self._fn()
        cdef int rc
        with nogil:
            rc = intel_model_log_departures(fn, frames)
        if rc:
            raise MemoryError(f"no memory for a departure log of {frames} frames")

    def departures(self) -> array.array:
        """The departure times logged so far (ns), as array('q')."""
        cdef uint32_t n
        cdef const int64_t *t = intel_model_departures(self._fn(), &n)
        out = array.array("q")
        if n:
            out.frombytes((<const char *> t)[:8 * n])
        return out

    # --- faults (csrc/sim/intel_model.h): the names ixypy.testing.Faults uses

    def plug(self, bint plugged) -> None:
        """Pull the cable out (False: link down, nothing crosses) or plug it back in."""
        intel_model_fault_plug(self._fn(), plugged)

    def drop_rx(self, uint64_t n) -> None:
        """Drop the next n frames that arrive, as a full rx ring would (counted)."""
        intel_model_fault_drop_rx(self._fn(), n)

    def stall(self, bint stalled) -> None:
        """Stop the DMA engines (True) or let them go on (False)."""
        cdef intel_function *fn = self._fn()
        with nogil:
            intel_model_fault_stall(fn, stalled)

    def remove(self) -> None:
        """Surprise removal: reads return all ones, writes vanish, no DMA."""
        cdef intel_function *fn = self._fn()
        with nogil:
            intel_model_fault_remove(fn)

    def wire_stats(self) -> dict:
        """What crossed the cable (model's own counters, not clear-on-read)."""
        cdef intel_wire_stats st
        intel_model_get_wire_stats(self._fn(), &st)
        return st

    def errors(self) -> list:
        """Things real hardware would not accept, oldest first."""
        cdef intel_function *fn = self._fn()
        cdef unsigned i, n = intel_model_error_count(fn)
        return [intel_model_error(fn, i).decode() for i in range(n)]

    def clear_errors(self) -> None:
        intel_model_clear_errors(self._fn())

    def events(self) -> list:
        """Bring-up milestones in the order the driver caused them."""
        cdef intel_function *fn = self._fn()
        cdef unsigned i, n = intel_model_event_count(fn)
        return [intel_model_event(fn, i).decode() for i in range(n)]

    def clear_events(self) -> None:
        intel_model_clear_events(self._fn())
