# virtio-net split virtqueues (csrc/ixy_virtio.h), legacy and VirtIO 1.x: rx, tx and control.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from .mempool cimport DmaMemory, Mempool, ixy_buf
from .queue cimport Queue
from .regs cimport Bar, PortIo, ixy_port_ops

cdef extern from "ixy_virtio.h" nogil:
    struct ixy_vring_desc:
        uint64_t addr
        uint32_t len
        uint16_t flags
        uint16_t next
    struct ixy_vring_avail:
        uint16_t flags
        uint16_t idx
        uint16_t ring[1]
    struct ixy_vring_used_elem:
        uint32_t id
        uint32_t len
    struct ixy_vring_used:
        uint16_t flags
        uint16_t idx
        ixy_vring_used_elem ring[1]
    enum:
        IXY_VRING_DESC_F_NEXT
        IXY_VRING_DESC_F_WRITE
        IXY_VRING_AVAIL_F_NO_INTERRUPT
        IXY_VRING_ALIGN
        IXY_VIRTIO_NET_HDR_LEN
        IXY_VIRTIO_NET_HDR_LEN_V1
    struct ixy_virtio_doorbell:
        const ixy_port_ops *port_ops
        int fd
        long pos
        uint16_t *mmio
    void ixy_vring_set_used_event(ixy_vring_avail *a, uint32_t num, uint16_t idx)
    const uint16_t *ixy_vring_avail_event(const ixy_vring_used *u, uint32_t num)
    int ixy_vring_notify_wanted(const ixy_vring_used *u, const uint16_t *avail_event, uint16_t new_idx, uint16_t old)
    size_t ixy_vring_avail_offset(uint32_t num)
    size_t ixy_vring_used_offset(uint32_t num)
    size_t ixy_vring_size(uint32_t num)
    void ixy_mb()
    uint16_t ixy_vring_used_idx(const ixy_vring_used *u)
    void ixy_vring_publish(ixy_vring_avail *a, uint16_t idx)
    int ixy_virtio_notify(const ixy_virtio_doorbell *d, uint16_t queue)


cdef class Doorbell:
    cdef ixy_virtio_doorbell db
    cdef object owner             # the PortIo or Bar the doorbell is in, kept alive


cdef class _Virtqueue(Queue):
    cdef DmaMemory memory
    cdef ixy_vring_desc *desc
    cdef ixy_vring_avail *avail
    cdef ixy_vring_used *used
    cdef uint32_t num
    cdef uint16_t mask
    cdef uint16_t avail_idx       # our copy of avail.idx (free-running)
    cdef uint16_t last_used       # next used entry to look at (free-running)
    cdef Doorbell doorbell        # kept alive: its port ops or BAR mapping
    cdef ixy_virtio_doorbell db   # a copy, read without the GIL
    cdef uint16_t queue_index
    cdef readonly uint8_t hdr_len     # virtio_net_hdr bytes before each frame: 10, or 12 with VERSION_1
    cdef readonly uint64_t notifies
    cdef readonly uint64_t notify_errors
    cdef const uint16_t *avail_event  # VIRTIO_RING_F_EVENT_IDX: the device's avail_event (notify by it, not
                                      # the flags); NULL without

    cdef inline void _publish(self, uint16_t added) noexcept nogil:
        """Make `added` new avail entries visible (write barrier inside), then
        notify the device once unless it suppressed notifications: by
        VRING_USED_F_NO_NOTIFY, or with EVENT_IDX unless the new entries
        pass its avail_event (2.7.10)."""
        cdef uint16_t old = self.avail_idx
        cdef uint16_t new = old + added
        cdef ixy_vring_used *used = self.used      # read before the barrier, after which the compiler reloads fields
        cdef const uint16_t *avail_event = self.avail_event
        self.avail_idx = new
        ixy_vring_publish(self.avail, new)
        ixy_mb()     # avail.idx must be visible before used.flags / avail_event is read (2.7.10)
        if ixy_vring_notify_wanted(used, avail_event, new, old):
            self.notifies += 1
            if ixy_virtio_notify(&self.db, self.queue_index) != 0:
                self.notify_errors += 1


cdef class _DataQueue(_Virtqueue):
    cdef ixy_buf **bufs           # buffer behind chain k, or NULL
    cdef uint32_t chains
    cdef uint32_t chain_mask      # chains is a power of two (tx: avail slot s carries chain s & chain_mask)
    cdef readonly bint any_layout     # one descriptor per packet (header + frame), else two
    cdef uint8_t shift            # chain k starts at descriptor k << shift
    cdef int _init_chains(self, bint any_layout, uint8_t hdr_len) except -1


cdef class VirtioRxQueue(_DataQueue):
    cdef Mempool pool
    cdef uint16_t *empty          # FIFO of chains without a buffer (to refill)
    cdef uint32_t empty_head
    cdef uint32_t empty_count
    cdef ixy_buf **fresh          # scratch: buffers taken from the pool for one refill
    cdef uint32_t data_len
    cdef readonly uint64_t errors     # used entries of impossible length (dropped)
    cdef uint32_t _refill(self) noexcept nogil
    cdef uint32_t _rx_take(self, ixy_buf **out, uint32_t ready) noexcept nogil


cdef class VirtioTxQueue(_DataQueue):
    cdef uint32_t in_flight_count # chains handed to the device, not yet reclaimed


cdef class VirtioCtrlQueue(_Virtqueue):
    cdef uint8_t *buf
    cdef uint64_t buf_dma
