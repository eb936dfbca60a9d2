# The 82599 or 82576 model (csrc/sim/ixgbe_model.c), included in _model.pyx:
# ``Sim`` owns the model (ports, worker thread, DMA map); ``SimPort`` is one
# port: its PCI config space, its BAR0 registers, its wire and its logs.

cdef extern from "ixy_regs.h" nogil:
    struct ixy_reg_ops:
        pass

cdef extern from "ixgbe_model.h" nogil:
    struct ixsim:
        pass
    struct ixsim_port:
        pass
    struct ixsim_wire_stats:
        uint64_t tx_packets, tx_bytes, rx_packets, rx_bytes, rx_no_desc_drops, rx_filtered
    int IXSIM_MAX_PORTS
    int IXSIM_MAX_FRAME
    enum ixsim_variant:
        IXSIM_82599
        IXSIM_82576
    unsigned ixsim_msix_vectors(ixsim_port *port)
    int ixsim_set_irq_eventfd(ixsim_port *port, unsigned vector, int fd)
    uint64_t ixsim_irq_count(ixsim_port *port, unsigned vector)
    ixsim *ixsim_create(unsigned nports, const uint8_t *base_mac, ixsim_variant variant)
    ixsim_port *ixsim_get_port "ixsim_port"(ixsim *sim, unsigned index)
    const sim_model_ops ixsim_ops
    uint32_t ixsim_config_read(ixsim_port *port, uint32_t offset, unsigned size)
    void ixsim_config_write(ixsim_port *port, uint32_t offset, unsigned size, uint32_t value)
    uint32_t ixsim_read32(void *port, uint32_t offset)
    void ixsim_write32(void *port, uint32_t offset, uint32_t value)
    const ixy_reg_ops *ixsim_reg_ops(ixsim_port *port)
    void ixsim_wire_sink(ixsim_port *port)
    void ixsim_wire_pair(ixsim_port *a, ixsim_port *b)
    void ixsim_wire_source(ixsim_port *port, const uint8_t *frame, uint32_t len,
                           uint64_t count, int seq_offset)
    int ixsim_inject(ixsim_port *port, const uint8_t *frame, uint32_t len)
    void ixsim_set_link_delay(ixsim_port *port, int64_t usec)
    void ixsim_get_wire_stats(ixsim_port *port, ixsim_wire_stats *out)
    unsigned ixsim_error_count(ixsim_port *port)
    const char *ixsim_error(ixsim_port *port, unsigned index)
    void ixsim_clear_errors(ixsim_port *port)
    unsigned ixsim_event_count(ixsim_port *port)
    const char *ixsim_event(ixsim_port *port, unsigned index)
    void ixsim_clear_events(ixsim_port *port)

REG_OPS_CAPSULE = "ixypy.reg_ops"
VARIANTS = {"82599": IXSIM_82599, "82576": IXSIM_82576}
cdef const char *_CAPSULE_NAME = "ixypy.reg_ops"


cdef class Sim(Model):
    """A model with ``nports`` ports of one ``variant``, "82599" or "82576"
    (MACs: ``mac`` + port index)."""
    cdef readonly int nports
    cdef readonly str variant

    def __cinit__(self, int nports=1, bytes mac=b"\x02\x00\x00\x00\x00\x00", str variant="82599"):
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        if nports < 1 or nports > IXSIM_MAX_PORTS:
            raise ValueError(f"nports must be 1..{IXSIM_MAX_PORTS}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        self.variant = variant
        self.ops = &ixsim_ops
        self.sim = ixsim_create(<unsigned> nports, <const uint8_t *> mac, <ixsim_variant> VARIANTS[variant])
        if self.sim == NULL:
            raise MemoryError("ixsim_create failed")
        self.nports = nports
        self._functions = functions_of(self, SimPort, nports)

    def port(self, int i):
        """Port ``i`` (0-based)."""
        return self._function(i, "port")


cdef class SimPort(Function):
    """One port of a :class:`Sim`."""

    cdef ixsim_port *_p(self) except NULL:
        return ixsim_get_port(<ixsim *> self.sim._get(), self.index)

    def reg_ops(self):
        """PyCapsule "ixypy.reg_ops" for ``ixypy._fastpath.Bar(ops=...)``.
        Keep this port (or its Sim) alive while the capsule is used."""
        return PyCapsule_New(<void *> ixsim_reg_ops(self._p()), _CAPSULE_NAME, NULL)

    def read32(self, uint32_t off) -> int:
        """Read a BAR0 register."""
        cdef ixsim_port *p = self._p()
        cdef uint32_t v
        with nogil:
            v = ixsim_read32(p, off)
        return v

    def write32(self, uint32_t off, uint32_t value) -> None:
        """Write a BAR0 register."""
        cdef ixsim_port *p = self._p()
        with nogil:
            ixsim_write32(p, off, value)

    def config_read(self, uint32_t off, unsigned size=4) -> int:
        """Read 1, 2 or 4 bytes of PCI configuration space."""
        return ixsim_config_read(self._p(), off, size)

    def config_write(self, uint32_t off, unsigned size, uint32_t value) -> None:
        """Write 1, 2 or 4 bytes of PCI configuration space."""
        cdef ixsim_port *p = self._p()
        with nogil:
            ixsim_config_write(p, off, size, value)

    def wire_sink(self) -> None:
        """tx is counted and discarded; nothing arrives (the default)."""
        cdef ixsim_port *p = self._p()
        with nogil:
            ixsim_wire_sink(p)

    def wire_pair(self, SimPort other) -> None:
        """Cable this port to ``other`` (itself: loopback)."""
        if other.sim is not self.sim:
            raise ValueError("both ports must belong to the same Sim")
        cdef ixsim_port *a = self._p()
        cdef ixsim_port *b = other._p()
        with nogil:
            ixsim_wire_pair(a, b)

    def wire_source(self, bytes frame, uint64_t count=0, int seq_offset=-1) -> None:
        """A generator sends ``count`` copies of ``frame`` (0: forever) as fast
        as rx descriptors free up; a 64-bit LE sequence number at ``seq_offset``."""
        if len(frame) > IXSIM_MAX_FRAME:
            raise ValueError(f"frame longer than {IXSIM_MAX_FRAME} bytes")
        cdef ixsim_port *p = self._p()
        cdef const uint8_t *f = frame
        cdef uint32_t n = len(frame)
        with nogil:
            ixsim_wire_source(p, f, n, count, seq_offset)

    def inject(self, bytes frame) -> bool:
        """One frame arrives now; True if written to rx descriptors."""
        cdef ixsim_port *p = self._p()
        cdef const uint8_t *f = frame
        cdef uint32_t n = len(frame)
        cdef int r
        with nogil:
            r = ixsim_inject(p, f, n)
        return r != 0

    def set_irq_eventfd(self, unsigned vector, int fd) -> None:
        """Signal MSI-X ``vector`` on eventfd ``fd`` (the model keeps a
        duplicate, as VFIO_DEVICE_SET_IRQS keeps a reference); fd < 0 detaches."""
        cdef int rc = ixsim_set_irq_eventfd(self._p(), vector, fd)
        if rc:
            raise OSError(rc, f"set_irq_eventfd(vector={vector}, fd={fd}): {_os.strerror(rc)}")

    def msix_vectors(self) -> int:
        """The size of the port's MSI-X table (64 on the 82599 model, 25 on the 82576)."""
        return ixsim_msix_vectors(self._p())

    def irq_count(self, unsigned vector) -> int:
        """MSI-X messages ``vector`` has sent (whether or not an eventfd took them)."""
        return ixsim_irq_count(self._p(), vector)

    def set_link_delay(self, int64_t usec) -> None:
        """Time from an autonegotiation restart to link up (82599:
        AUTOC.RESTART_AN to LINKS.LINK_UP; 82576: the PHY's BMCR restart to
        STATUS.LU); < 0: never up."""
        ixsim_set_link_delay(self._p(), usec)

    def wire_stats(self) -> dict:
        """What crossed the cable (model's own counters, not clear-on-read)."""
        cdef ixsim_wire_stats st
        ixsim_get_wire_stats(self._p(), &st)
        return st

    def errors(self) -> list:
        """Things real hardware would not accept, oldest first."""
        cdef ixsim_port *p = self._p()
        cdef unsigned i, n = ixsim_error_count(p)
        return [ixsim_error(p, i).decode() for i in range(n)]

    def clear_errors(self) -> None:
        ixsim_clear_errors(self._p())

    def events(self) -> list:
        """Bring-up milestones in the order the driver caused them."""
        cdef ixsim_port *p = self._p()
        cdef unsigned i, n = ixsim_event_count(p)
        return [ixsim_event(p, i).decode() for i in range(n)]

    def clear_events(self) -> None:
        ixsim_clear_events(self._p())
