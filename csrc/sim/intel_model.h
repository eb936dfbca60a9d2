/* A model of the Intel 82599 10 GbE controller (X520) and of the Intel 82576
 * 1 GbE controller, written from their datasheets, for ixypy's tests,
 * benchmarks and its no-hardware "sim" device. It models BAR0 (the register
 * file), the PCI command register's bus master enable, advanced rx/tx
 * descriptor DMA, the statistics registers and a "wire" per function
 * (each PCI function is one of the NIC's network ports). The process's
 * engine thread (sim_worker.h) plays the NIC's DMA engines.
 *
 * Both controllers use the same advanced descriptors, so the DMA engines,
 * the DMA map, the wire, the statistics and the MSI-X machinery are shared;
 * each variant has its own register map (a decode front end onto that
 * shared state) and its own link: the 82599's AUTOC/LINKS, the 82576's
 * copper PHY behind MDIC.
 *
 * It is strict: what real hardware would not accept (a queue enabled before
 * its ring is set, a tail beyond the ring, a descriptor address outside the
 * DMA map, DMA without bus mastering, writes to reserved bits that the
 * datasheet says must stay 0, FCTRL changed while rx is enabled, ...) is
 * recorded in the function's error log, and the model does what the hardware
 * would (refuse the enable, drop the packet) instead of silently working.
 *
 * Threading: every function here may be called from any thread while the
 * worker runs, also from a process forked after the model was made (its
 * state is shared, sim_shared.h; what such a process may not do: sim_model.h).
 * Register reads and writes are what the driver's MMIO would be.
 */
#ifndef INTEL_MODEL_H
#define INTEL_MODEL_H

#include <stdint.h>
#include "ixy_regs.h"
#include "sim_model.h"

#define INTEL_MODEL_NUM_QUEUES 64        /* rx and tx queues modelled (of the 82599's 128) */
#define INTEL_MODEL_MAX_FUNCTIONS 8
#define INTEL_MODEL_BAR0_SIZE 0x20000    /* 128 KiB of register space */
#define INTEL_MODEL_MAX_FRAME 16384      /* largest frame the wire carries (jumbo) */
#define INTEL_MODEL_MSIX_VECTORS 64      /* MSI-X table size of an 82599 function */

struct intel_model;      /* functions sharing one membership of the engine and one DMA map (IOMMU view) */
struct intel_function;   /* one PCI function (a port of the NIC): PCI config, BAR0, one end of a wire */

/* Which controller every function of a model is. */
enum intel_model_variant {
    INTEL_MODEL_82599 = 0,   /* PCI 8086:10FB, 64 queues modelled */
    INTEL_MODEL_82576 = 1,   /* PCI 8086:10C9, 16 queues, 25 MSI-X vectors */
};

/* ---- life cycle ------------------------------------------------------- */
/* nfunctions functions of one variant; function i gets MAC base_mac with i
 * added to the last byte, stored as the EEPROM would leave it in
 * RAL(0)/RAH(0) after reset. NULL for a bad nfunctions or variant. The rest
 * of the life cycle (joining the engine, the DMA map, destroy) is
 * intel_model_ops, see sim_model.h: the engine runs the DMA engines of all
 * functions; set_busy_poll(0) (default) lets it spin briefly, then sleep
 * ~50 us per idle round; poll's work is descriptors and frames. */
struct intel_model *intel_model_create(unsigned nfunctions, const uint8_t base_mac[6],
                                       enum intel_model_variant variant);
extern const struct sim_model_ops intel_model_ops;
/* intel_model_ops.poll, by name: benchmarks/instructions.py counts what it runs
 * as the model's work, not the driver's. */
int intel_model_poll(void *sim);
struct intel_function *intel_model_function(struct intel_model *sim, unsigned index);

/* ---- PCI configuration space (256 bytes: ids, command register) --------- */
/* Vendor 0x8086, device 0x10FB (82599 SFI/SFP+) or 0x10C9 (82576 copper),
 * class 0x020000. DMA while
 * COMMAND.BME (bit 2) is clear is an error and the DMA does not happen. */
uint32_t intel_model_config_read(struct intel_function *fn, uint32_t offset, unsigned size);
void intel_model_config_write(struct intel_function *fn, uint32_t offset, unsigned size, uint32_t value);

/* ---- BAR0 --------------------------------------------------------------- */
uint32_t intel_model_read32(void *fn, uint32_t offset);
void intel_model_write32(void *fn, uint32_t offset, uint32_t value);
/* ops bound to this function, for the fast path's struct ixy_bar */
const struct ixy_reg_ops *intel_model_reg_ops(struct intel_function *fn);

/* ---- the wire ----------------------------------------------------------- */
/* Default: the function's tx goes to a sink (counted, discarded), nothing arrives. */
void intel_model_wire_sink(struct intel_function *fn);
/* a's tx arrives at b's rx and b's tx at a's rx (a == b: loopback cable). */
void intel_model_wire_pair(struct intel_function *a, struct intel_function *b);
/* A traffic generator at the far end: count copies of frame (0 = without
 * end) arrive at rx as fast as free rx descriptors allow. If seq_offset >= 0,
 * a 64-bit little-endian sequence number (0, 1, 2, ...) is written into each
 * copy at that byte offset. With flows > 1 (at most SIM_FLOWS_MAX, an IPv4
 * frame), copy i is of flow i % flows: its IPv4 source address is frame's
 * plus that (sim_flows.h); with RSS on, each rx queue takes the flows that
 * hash to it in turn, and a full queue holds back only those. tx still goes
 * to the sink. */
void intel_model_wire_source(struct intel_function *fn, const uint8_t *frame, uint32_t len,
                       uint64_t count, int seq_offset, uint32_t flows);
/* Propagation delay of the frames this function transmits on a pair or
 * loop wire: a frame leaving the tx ring at time t (the engine's pass, ns,
 * CLOCK_MONOTONIC) reaches the peer's rx no sooner than
 *     max(t + delay_ns + U, the arrival of the frame sent before it)
 * where U is drawn uniformly from the integers in [-jitter_ns, +jitter_ns]
 * (xorshift64*): frames stay in order (with jitter > delay, t + delay_ns +
 * U may lie before t: the frame then arrives at once). Frames in flight wait in a delay
 * line of `frames` slots; a frame sent while all are taken is dropped and
 * counted (wire stats delay_drops). delay_ns = jitter_ns = 0: no delay line,
 * frames arrive in the pass that sends them (the default). The engine does
 * not sleep while frames are in flight, so a frame arrives within one pass
 * of its due time. Changing it empties the delay line. Returns 0, EINVAL
 * (negative times, no slots with a delay) or ENOMEM. */
int intel_model_set_wire_delay(struct intel_function *fn, int64_t delay_ns, int64_t jitter_ns, uint32_t frames);

/* The departure log: from now on, when each frame the function transmits
 * leaves its tx ring (ns, CLOCK_MONOTONIC, read once per tx pass after the
 * tail: the frames a pass takes share it), the first `frames` frames;
 * 0 stops logging and frees the log. Returns 0 or ENOMEM. Read it with
 * intel_model_departures once the function's tx is idle. */
int intel_model_log_departures(struct intel_function *fn, uint32_t frames);
/* The frames logged so far (*n), their times in the log (valid until the
 * next intel_model_log_departures). */
const int64_t *intel_model_departures(struct intel_function *fn, uint32_t *n);

/* One frame arrives at the function's rx now (from the caller's thread),
 * through the same receive path (filtering, descriptors, drops, stats).
 * Returns 1 if delivered into a descriptor, 0 if filtered or dropped. */
int intel_model_inject(struct intel_function *fn, const uint8_t *frame, uint32_t len);

/* ---- MSI-X ---------------------------------------------------------------- */
/* What VFIO_DEVICE_SET_IRQS (MSI-X, eventfd trigger) does for a real device:
 * vector's messages become 8-byte writes of 1 to fd. The model keeps its own
 * duplicate of fd (close yours whenever you like); fd < 0 detaches. Returns
 * 0 or an errno (EINVAL: vector >= intel_model_msix_vectors; EPERM in a
 * process forked from the model's, whose fds are not the ones its engine
 * writes to, sim_worker.h). See intel_msix.c for what raises, masks, clears
 * and throttles a vector. */
int intel_model_set_irq_eventfd(struct intel_function *fn, unsigned vector, int fd);
/* The function's MSI-X table size: 64 (82599 as modelled), 25 (82576). */
unsigned intel_model_msix_vectors(struct intel_function *fn);
/* Messages vector has sent since the model was created (tests). */
uint64_t intel_model_irq_count(struct intel_function *fn, unsigned vector);

/* Link: the time from an autonegotiation restart (82599: AUTOC.RESTART_AN;
 * 82576: a restart through the PHY's BMCR) until the link is up
 * (LINKS.LINK_UP, STATUS.LU), in microseconds; < 0: the link never comes up. */
void intel_model_set_link_delay(struct intel_function *fn, int64_t usec);

/* ---- faults (what a test does to a port) ---------------------------------- */
/* The cable pulled out (plugged = 0): the link is down (LINKS, STATUS.LU),
 * nothing is sent or received; plugged back in (plugged != 0): the link is
 * as the driver last set it up. */
void intel_model_fault_plug(struct intel_function *fn, int plugged);
/* The next n frames that arrive and pass the address filter are dropped as
 * if the rx ring had no room (counted as such: RXMPC, the wire's
 * rx_no_desc_drops). */
void intel_model_fault_drop_rx(struct intel_function *fn, uint64_t n);
/* stalled != 0: the DMA engines stop (no descriptor fetched or written, no
 * interrupt; arriving frames are dropped as without room) until called
 * with 0. */
void intel_model_fault_stall(struct intel_function *fn, int stalled);
/* Surprise removal, for good: register and configuration reads return all
 * ones, writes are ignored, no DMA, no interrupt. */
void intel_model_fault_remove(struct intel_function *fn);

/* What crossed this function's cable, counted by the model itself (not the
 * clear-on-read device statistics the driver reads). */
struct intel_wire_stats {
    uint64_t tx_packets, tx_bytes;     /* frames the function transmitted */
    uint64_t rx_packets, rx_bytes;     /* frames written to rx descriptors */
    uint64_t rx_no_desc_drops;         /* arrived, no free rx descriptor */
    uint64_t rx_filtered;              /* arrived, refused by the MAC address filter */
    uint64_t delay_drops;              /* transmitted onto a pair/loop wire whose delay line was full (lost) */
};
void intel_model_get_wire_stats(struct intel_function *fn, struct intel_wire_stats *out);

/* ---- what the tests assert on ------------------------------------------- */
/* Errors: things real hardware would not accept, one message each, e.g.
 * "RXDCTL[0].ENABLE set while RDLEN[0] is 0". */
unsigned intel_model_error_count(struct intel_function *fn);
const char *intel_model_error(struct intel_function *fn, unsigned index);  /* NULL past the end */
void intel_model_clear_errors(struct intel_function *fn);

/* Events: milestones of bring-up in the order the driver caused them, one
 * short name each (see intel_82599.c and intel_82576.c for the lists, e.g. "CTRL.RST",
 * "EEC.ARD", "RDRXCTL.DMAIDONE", "AUTOC.RESTART_AN", "RXCTRL.RXEN",
 * "RXDCTL[0].ENABLE", "DMATXCTL.TE", "TXDCTL[0].ENABLE", "LINKS.LINK_UP";
 * 82576: "EECD.AUTO_RD", "BMCR.RESTART_AN", "STATUS.LU", "RCTL.EN", "TCTL.EN"). */
unsigned intel_model_event_count(struct intel_function *fn);
const char *intel_model_event(struct intel_function *fn, unsigned index);
void intel_model_clear_events(struct intel_function *fn);

#endif
