# The legacy virtio-net model (csrc/sim/virtio_model.c), included in
# _model.pyx: ``VirtioSim`` owns the model (devices, membership of the engine, DMA map);
# ``VirtioSimDevice`` is one virtio-net function: its PCI config space, its
# legacy I/O BAR, its MSI-X (BAR1 and the eventfds), its wire and its error log.

cdef extern from "ixy_portio.h" nogil:
    struct ixy_port_ops:
        pass

cdef extern from "virtio_model.h" nogil:
    struct vnsim:
        pass
    struct vnsim_dev:
        pass
    struct vnsim_wire_stats:
        uint64_t tx_packets, tx_bytes, tx_seq_errors, rx_packets, rx_bytes, rx_no_buffer, rx_filtered
    int VNSIM_MAX_DEVS
    int VNSIM_IO_SIZE
    int VNSIM_MAX_FRAME
    int VNSIM_MSIX_BAR_SIZE
    vnsim *vnsim_create(unsigned ndevs, const uint8_t *base_mac, unsigned queue_num)
    vnsim_dev *vnsim_dev_at "vnsim_dev"(vnsim *sim, unsigned index)
    const sim_model_ops vnsim_ops
    uint32_t vnsim_config_read(vnsim_dev *dev, uint32_t offset, unsigned size)
    void vnsim_config_write(vnsim_dev *dev, uint32_t offset, unsigned size, uint32_t value)
    uint32_t vnsim_io_read(void *dev, uint32_t offset, unsigned width)
    void vnsim_io_write(void *dev, uint32_t offset, unsigned width, uint32_t value)
    const ixy_port_ops *vnsim_port_ops(vnsim_dev *dev)
    uint32_t vnsim_msix_read32(void *dev, uint32_t offset)
    void vnsim_msix_write32(void *dev, uint32_t offset, uint32_t value)
    const ixy_reg_ops *vnsim_msix_reg_ops(vnsim_dev *dev)
    int vnsim_set_irq_eventfd(vnsim_dev *dev, unsigned vector, int fd)
    unsigned vnsim_msix_vectors(vnsim_dev *dev)
    uint64_t vnsim_irq_count(vnsim_dev *dev, unsigned vector)
    void vnsim_wire_sink(vnsim_dev *dev, int seq_offset)
    void vnsim_wire_pair(vnsim_dev *a, vnsim_dev *b)
    void vnsim_wire_source(vnsim_dev *dev, const uint8_t *frame, uint32_t len, uint64_t count, int seq_offset, uint32_t flows)
    void vnsim_fault_plug(vnsim_dev *d, int plugged)
    void vnsim_fault_drop_rx(vnsim_dev *d, uint64_t n)
    void vnsim_fault_stall(vnsim_dev *d, int stalled)
    void vnsim_fault_remove(vnsim_dev *d)
    void vnsim_get_wire_stats(vnsim_dev *dev, vnsim_wire_stats *out)
    unsigned vnsim_rx_mode(vnsim_dev *dev)
    void vnsim_offer_any_layout(vnsim_dev *dev, int offered)
    unsigned vnsim_isr_peek(vnsim_dev *dev)
    unsigned vnsim_error_count(vnsim_dev *dev)
    const char *vnsim_error(vnsim_dev *dev, unsigned index)
    void vnsim_clear_errors(vnsim_dev *dev)

IO_SIZE = VNSIM_IO_SIZE
MSIX_BAR_SIZE = VNSIM_MSIX_BAR_SIZE
PORT_OPS_CAPSULE = "ixypy.port_ops"


cdef class VirtioSim(Model):
    """A legacy virtio-net model with ``ndevs`` devices (MACs: ``mac`` + index),
    rx and tx queues of ``queue_num`` entries."""
    cdef readonly int ndevs

    def __cinit__(self, int ndevs=1, bytes mac=b"\x02\x00\x00\x00\x00\x00", unsigned queue_num=256):
        if len(mac) != 6:
            raise ValueError("mac must be 6 bytes")
        if ndevs < 1 or ndevs > VNSIM_MAX_DEVS:
            raise ValueError(f"ndevs must be 1..{VNSIM_MAX_DEVS}")
        if queue_num < 2 or queue_num > 32768 or queue_num & (queue_num - 1):
            raise ValueError(f"queue_num {queue_num} must be a power of two from 2 to 32768")
        self.ops = &vnsim_ops
        self.sim = vnsim_create(<unsigned> ndevs, <const uint8_t *> mac, queue_num)
        if self.sim == NULL:
            raise MemoryError("vnsim_create failed")
        self.ndevs = ndevs
        self._functions = functions_of(self, VirtioSimDevice, ndevs)

    def device(self, int i):
        """Device ``i`` (0-based)."""
        return self._function(i, "device")


cdef class VirtioSimDevice(Function):
    """One virtio-net function of a :class:`VirtioSim`."""

    cdef vnsim_dev *_d(self) except NULL:
        return vnsim_dev_at(<vnsim *> self.sim._get(), self.index)

    def port_ops(self):
        """PyCapsule "ixypy.port_ops" for ``ixypy.fastpath.regs.PortIo(-1, 0, IO_SIZE, ops=...)``.
        Keep this device (or its VirtioSim) alive while the capsule is used."""
        return PyCapsule_New(<void *> vnsim_port_ops(self._d()), b"ixypy.port_ops", NULL)

    def msix_reg_ops(self):
        """PyCapsule "ixypy.reg_ops" of BAR1 (the MSI-X table at 0, the PBA at
        0x800) for ``ixypy.fastpath.regs.Bar(ops=...)``. Keep this device (or
        its VirtioSim) alive while the capsule is used."""
        return PyCapsule_New(<void *> vnsim_msix_reg_ops(self._d()), _CAPSULE_NAME, NULL)

    cdef int _set_irq_eventfd(self, unsigned vector, int fd) except -1:
        return vnsim_set_irq_eventfd(self._d(), vector, fd)

    cdef unsigned _msix_vectors(self) except? 0:
        return vnsim_msix_vectors(self._d())

    cdef uint64_t _irq_count(self, unsigned vector) except? 0:
        return vnsim_irq_count(self._d(), vector)

    def io_read(self, uint32_t offset, unsigned width) -> int:
        """Read the I/O BAR with a 1-, 2- or 4-byte access."""
        cdef vnsim_dev *d = self._d()
        cdef uint32_t v
        with nogil:
            v = vnsim_io_read(d, offset, width)
        return v

    def io_write(self, uint32_t offset, unsigned width, uint32_t value) -> None:
        """Write the I/O BAR with a 1-, 2- or 4-byte access."""
        cdef vnsim_dev *d = self._d()
        with nogil:
            vnsim_io_write(d, offset, width, value)

    def config_read(self, uint32_t offset, unsigned size=4) -> int:
        """Read 1, 2 or 4 bytes of PCI configuration space."""
        cdef vnsim_dev *d = self._d()
        cdef uint32_t v
        with nogil:
            v = vnsim_config_read(d, offset, size)
        return v

    def config_write(self, uint32_t offset, unsigned size, uint32_t value) -> None:
        """Write 1, 2 or 4 bytes of PCI configuration space."""
        cdef vnsim_dev *d = self._d()
        with nogil:
            vnsim_config_write(d, offset, size, value)

    def wire_sink(self, int seq_offset=-1) -> None:
        """tx is counted and dropped (the default); with seq_offset >= 0 the
        sink checks a 64-bit LE sequence number there (tx_seq_errors)."""
        cdef vnsim_dev *d = self._d()
        with nogil:
            vnsim_wire_sink(d, seq_offset)

    def wire_pair(self, VirtioSimDevice other) -> None:
        """Cable this device to ``other`` (itself: loopback)."""
        if other.sim is not self.sim:
            raise ValueError("both devices must belong to the same VirtioSim")
        cdef vnsim_dev *a = self._d()
        cdef vnsim_dev *b = other._d()
        with nogil:
            vnsim_wire_pair(a, b)

    def wire_source(self, bytes frame, uint64_t count=0, int seq_offset=-1, long flows=1) -> None:
        """A generator sends ``count`` copies of ``frame`` (0: forever) as fast
        as rx buffers are posted; a 64-bit LE sequence number at ``seq_offset``;
        copy i of flow i % ``flows``, its IPv4 source address frame's plus
        that (csrc/sim/sim_flows.h; one flow for a frame that is not IPv4,
        logged as a model error)."""
        if len(frame) > VNSIM_MAX_FRAME or (seq_offset >= 0 and seq_offset + 8 > len(frame)):
            raise ValueError(f"frame longer than {VNSIM_MAX_FRAME} bytes, or seq_offset beyond it")
        cdef vnsim_dev *d = self._d()
        cdef const uint8_t *f = frame
        cdef uint32_t n = len(frame)
        cdef uint32_t nflows = source_flows(flows)
        with nogil:
            vnsim_wire_source(d, f, n, count, seq_offset, nflows)

    # --- faults (csrc/sim/virtio_model.h): the names ixypy.testing.Faults uses

    def plug(self, bint plugged) -> None:
        """Pull the cable out (False: no LINK_UP, nothing crosses) or plug it back in."""
        vnsim_fault_plug(self._d(), plugged)

    def drop_rx(self, uint64_t n) -> None:
        """Drop the next n frames that arrive (the wire's rx_no_buffer counts them)."""
        vnsim_fault_drop_rx(self._d(), n)

    def stall(self, bint stalled) -> None:
        """Stop the device consuming chains (True) or let it go on (False)."""
        cdef vnsim_dev *d = self._d()
        with nogil:
            vnsim_fault_stall(d, stalled)

    def remove(self) -> None:
        """Surprise removal: reads return all ones, writes vanish, no DMA."""
        cdef vnsim_dev *d = self._d()
        with nogil:
            vnsim_fault_remove(d)

    def wire_stats(self) -> dict:
        """What crossed the cable (the model's own counters)."""
        cdef vnsim_wire_stats st
        vnsim_get_wire_stats(self._d(), &st)
        return st

    def offer_any_layout(self, bint offered) -> None:
        """Offer VIRTIO_F_ANY_LAYOUT (True, the default, as QEMU does) or not
        (False: the driver must keep the header in a descriptor of its own).
        Set it before the driver brings the device up."""
        cdef vnsim_dev *d = self._d()
        with nogil:
            vnsim_offer_any_layout(d, offered)

    @property
    def promisc(self) -> bool:
        """The rx filter's promiscuous mode (set through the control queue)."""
        return bool(vnsim_rx_mode(self._d()) & 1)

    @property
    def isr_pending(self) -> bool:
        """ISR bit 0 (used-buffer notification while MSI-X is disabled), without clearing it."""
        return bool(vnsim_isr_peek(self._d()) & 1)

    def errors(self) -> list:
        """Things a real device would not accept, oldest first."""
        cdef vnsim_dev *d = self._d()
        cdef unsigned i, n = vnsim_error_count(d)
        return [vnsim_error(d, i).decode() for i in range(n)]

    def clear_errors(self) -> None:
        vnsim_clear_errors(self._d())
