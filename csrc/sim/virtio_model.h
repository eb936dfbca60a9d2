/* A model of a legacy virtio-net PCI device (1af4:1000, the "transitional"
 * device QEMU offers with disable-modern=on), written from the VirtIO 1.x
 * specification: the legacy I/O BAR of 4.1.4.8, split virtqueues in the
 * legacy layout (2.7, 2.7.2), the network device of 5.1 (virtio_net_hdr,
 * control queue VIRTIO_NET_CTRL_RX), with MSI-X as QEMU's virtio-net-pci
 * offers it (4.1.5.1.2; the PCI part: sim_msix.h). For ixypy's tests and
 * benchmarks.
 *
 * It is strict: what a real device would not accept (a register accessed
 * with the wrong width, the status bits set out of order, features the
 * device did not offer, a ring outside the DMA map, a looping descriptor
 * chain, a notify for a queue without a ring, DMA without bus mastering)
 * is recorded in the device's error log and refused.
 *
 * Threading: any function may be called from any thread while the worker
 * runs, also from a process forked after the model was made (its state is
 * shared, sim_shared.h; what such a process may not do: sim_model.h); the
 * worker and the register functions serialise on the model's lock (a
 * process-shared one), except QUEUE_NOTIFY writes (the driver's fast path),
 * which take no lock.
 */
#ifndef VIRTIO_MODEL_H
#define VIRTIO_MODEL_H

#include <stdint.h>
#include "ixy_portio.h"
#include "ixy_regs.h"
#include "sim_model.h"

#define VNSIM_MAX_DEVS 8
#define VNSIM_IO_SIZE 32          /* legacy header (20 bytes), MSI-X vectors (4), net config (8) */
#define VNSIM_NUM_QUEUES 3        /* 0 receiveq, 1 transmitq, 2 controlq (5.1.2) */
#define VNSIM_MSIX_VECTORS (VNSIM_NUM_QUEUES + 1)   /* one per queue, one for config changes (as QEMU) */
#define VNSIM_MSIX_BAR_SIZE 4096  /* BAR1: the MSI-X table at 0, the PBA at 0x800 */
#define VNSIM_CTRL_QUEUE_NUM 64
#define VNSIM_MAX_FRAME 65535     /* the longest frame the wire carries */

struct vnsim;        /* devices sharing one membership of the engine and one DMA map */
struct vnsim_dev;    /* one virtio-net function: PCI config, I/O BAR, a wire end */

/* ---- life cycle ------------------------------------------------------- */
/* ndevs devices; device i gets MAC base_mac with i added to the last byte;
 * queue_num: the size of the rx and tx queues (a power of two, 2..32768).
 * The rest of the life cycle (joining the engine, the DMA map all the
 * devices reach, destroy) is vnsim_ops, see sim_model.h: the engine plays
 * every device; set_busy_poll(1) also sets VRING_USED_F_NO_NOTIFY (the
 * device polls, 2.7.10), set_busy_poll(0) (default) sleeps when idle, woken
 * by a notify or after 1 ms; poll's work is the chains consumed. */
struct vnsim *vnsim_create(unsigned ndevs, const uint8_t base_mac[6], unsigned queue_num);
extern const struct sim_model_ops vnsim_ops;
/* vnsim_ops.poll, by name: benchmarks/instructions.py counts what it runs
 * as the model's work, not the driver's. */
int vnsim_poll(void *sim);
struct vnsim_dev *vnsim_dev(struct vnsim *sim, unsigned index);

/* ---- PCI configuration space (256 bytes) ------------------------------- */
/* Vendor 0x1AF4, device 0x1000, subsystem device 1 (network), class
 * 0x020000; BAR0 I/O, BAR1 32-bit memory (the MSI-X table and PBA); one
 * capability, MSI-X at 0x40 (Table Size VNSIM_MSIX_VECTORS; Enable and
 * Function Mask writable, both clear after creation).
 * COMMAND: I/O and memory space enabled; bus master (bit 2) clear until the
 * driver sets it. */
uint32_t vnsim_config_read(struct vnsim_dev *dev, uint32_t offset, unsigned size);
void vnsim_config_write(struct vnsim_dev *dev, uint32_t offset, unsigned size, uint32_t value);

/* ---- the legacy I/O BAR (4.1.4.8), VNSIM_IO_SIZE bytes ----------------- */
/* width 1, 2 or 4 and exactly the register's: otherwise an error is logged,
 * a read returns all ones and a write is ignored. ctx is the vnsim_dev.
 * While MSI-X is enabled, config_msix_vector (20) and queue_msix_vector
 * (22, of the queue QUEUE_SEL names) come before the device config, which
 * moves from 20 to 24; a vector beyond the table is logged and reads back
 * NO_VECTOR (0xFFFF), as do all of them after a reset. */
uint32_t vnsim_io_read(void *ctx, uint32_t offset, unsigned width);
void vnsim_io_write(void *ctx, uint32_t offset, unsigned width, uint32_t value);
const struct ixy_port_ops *vnsim_port_ops(struct vnsim_dev *dev);

/* ---- MSI-X: BAR1 and the eventfds --------------------------------------- */
/* BAR1's 32-bit accesses (ctx is the vnsim_dev): the table and the PBA, see
 * sim_msix.h; with COMMAND.MEM clear an error is logged (reads: all ones). */
uint32_t vnsim_msix_read32(void *ctx, uint32_t offset);
void vnsim_msix_write32(void *ctx, uint32_t offset, uint32_t value);
const struct ixy_reg_ops *vnsim_msix_reg_ops(struct vnsim_dev *dev);
/* What VFIO_DEVICE_SET_IRQS does for a real device: vector's messages
 * become 8-byte writes of 1 to (a duplicate of) fd; fd < 0 detaches.
 * Returns 0 or an errno (EINVAL: vector >= VNSIM_MSIX_VECTORS; EPERM in a
 * process forked from the model's, as intel_model_set_irq_eventfd). */
int vnsim_set_irq_eventfd(struct vnsim_dev *dev, unsigned vector, int fd);
unsigned vnsim_msix_vectors(struct vnsim_dev *dev);
/* Messages vector has sent since the model was created (tests). */
uint64_t vnsim_irq_count(struct vnsim_dev *dev, unsigned vector);

/* ---- the wire ----------------------------------------------------------- */
/* Default: tx is counted and dropped, nothing arrives. With seq_offset >= 0
 * the sink checks a 64-bit LE sequence number (0, 1, 2, ...) there and
 * counts frames out of order (tx_seq_errors). */
void vnsim_wire_sink(struct vnsim_dev *dev, int seq_offset);
/* a's tx arrives at b's rx and b's tx at a's rx (a == b: loopback). */
void vnsim_wire_pair(struct vnsim_dev *a, struct vnsim_dev *b);
/* count copies of frame (0: without end) arrive as fast as rx buffers are
 * posted, a 64-bit LE sequence number at seq_offset if >= 0, copy i of flow
 * i % flows (its IPv4 source address plus that, sim_flows.h); tx goes to a sink. */
void vnsim_wire_source(struct vnsim_dev *dev, const uint8_t *frame, uint32_t len,
                       uint64_t count, int seq_offset, uint32_t flows);

struct vnsim_wire_stats {
    uint64_t tx_packets, tx_bytes, tx_seq_errors;   /* frames the device sent */
    uint64_t rx_packets, rx_bytes;                  /* frames written into rx buffers */
    uint64_t rx_no_buffer;                          /* arrived, no rx buffer posted */
    uint64_t rx_filtered;                           /* arrived, refused by the rx filter */
};
void vnsim_get_wire_stats(struct vnsim_dev *dev, struct vnsim_wire_stats *out);

/* ---- faults (what a test does to a device) ----------------------------- */
/* The cable out (plugged = 0): the config status has no LINK_UP, nothing
 * is sent or received; plugged back in (!= 0). */
void vnsim_fault_plug(struct vnsim_dev *dev, int plugged);
/* The next n arriving frames that pass the rx filter are dropped (counted
 * in the wire's rx_no_buffer: virtio has no drop counter of its own). */
void vnsim_fault_drop_rx(struct vnsim_dev *dev, uint64_t n);
/* stalled != 0: the device consumes no chain and writes no used entry
 * (arriving frames find no buffer) until called with 0. */
void vnsim_fault_stall(struct vnsim_dev *dev, int stalled);
/* Surprise removal, for good: I/O, BAR1 and config reads return all ones,
 * writes and notifies vanish, no DMA. */
void vnsim_fault_remove(struct vnsim_dev *dev);
/* The rx filter as the control queue set it (5.1.6.5.1): bit 0 promiscuous,
 * bit 1 all-multicast. Promiscuous after reset, as QEMU's device is. */
unsigned vnsim_rx_mode(struct vnsim_dev *dev);
/* ISR status bit 0 (a used-buffer notification while MSI-X is disabled,
 * 4.1.4.5) without reading it (a read of the register clears it). */
unsigned vnsim_isr_peek(struct vnsim_dev *dev);

/* ---- features ------------------------------------------------------------ */
/* VIRTIO_F_ANY_LAYOUT (bit 27) is offered (offered != 0, the default, as
 * QEMU does) or not (0: a device such as VirtualBox's, where the driver
 * must frame the header in a descriptor of its own). Takes effect from the
 * next HOST_FEATURES read; set it before the driver's bring-up. */
void vnsim_offer_any_layout(struct vnsim_dev *dev, int offered);

/* ---- what the tests assert on ------------------------------------------- */
unsigned vnsim_error_count(struct vnsim_dev *dev);
const char *vnsim_error(struct vnsim_dev *dev, unsigned index);  /* NULL past the end */
void vnsim_clear_errors(struct vnsim_dev *dev);

#endif
