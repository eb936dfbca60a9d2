/* The Intel device model's shared core (82599 and 82576): see intel_model.h
 * for the contract. What every file of the model shares: the state of a
 * function, its rings, statistics and MSI-X machinery, the variant table each
 * register map fills in, and the functions the files call in one another.
 *
 * The files, one concern each:
 *   intel_model.c    life cycle, worker, DMA map, PCI config space, logs
 *   intel_faults.c   what a test does to a port: cable out, rx drops, a stalled DMA engine, removal
 *   intel_engines.c  the DMA engines: receive, transmit, the source wire
 *   intel_queues.c   rings: enable checks, head/tail, the queue registers
 *   intel_msix.c     MSI-X (7.3): causes, masks, throttling, eventfds
 *   intel_regs.c     BAR0 decode both register maps share, reset
 *   intel_wire.c     the cable: sink, pair, source, inject, wire statistics
 *   intel_1588.c     IEEE 1588 time sync: SYSTIM, the tx and rx time latches
 *   intel_82599.c    the 82599 register map
 *   intel_82576.c    the 82576 register map and its copper PHY (MDIC)
 *
 * Written from the 82599 datasheet (bare section numbers in comments refer to
 * it) and the 82576 datasheet (the "82576 register map" section, and where
 * a comment names the 82576).
 *
 * Events (intel_model_event), recorded when the driver reaches a bring-up milestone:
 *   "CTRL.RST"            CTRL.RST or CTRL.LRST written (device reset requested)
 *   "EEC.ARD"             first read of EEC with ARD (auto read done) set after a reset
 *   "RDRXCTL.DMAIDONE"    first read of RDRXCTL with DMAIDONE set after a reset
 *   "AUTOC.RESTART_AN"    AUTOC written with RESTART_AN (link bring-up starts)
 *   "LINKS.LINK_UP"       first read of LINKS with LINK_UP set after a restart
 *   "RXCTRL.RXEN"         RXCTRL.RXEN accepted (0 -> 1)
 *   "RXDCTL[n].ENABLE"    rx queue n enabled (ring accepted)
 *   "DMATXCTL.TE"         DMATXCTL.TE set (0 -> 1)
 *   "TXDCTL[n].ENABLE"    tx queue n enabled (ring accepted)
 *   "FCTRL.UPE=1" / "FCTRL.UPE=0"   unicast promiscuous switched on / off
 *
 * Modelling choices (where the datasheet leaves room or the model simplifies):
 *  - Received traffic goes to rx queue 0, or with RSS on (MRQC, intel_rss.c)
 *    to the queue the hash's redirection-table entry names; no pools, no
 *    filters beyond the destination MAC check against RAR(0), BAM, MPE, UPE.
 *  - No free rx descriptor: with SRRCTL.DROP_EN the frame is dropped and
 *    counted in QPRDC (0x1430 + 0x40*n, the per-queue drop counter; QPRC is
 *    at 0x1030). Without DROP_EN the 82599 keeps the frame in its packet
 *    buffer until that overflows, then counts RXMPC; the model has no packet
 *    buffer, so it drops at once and counts RXMPC(0) (0x3FA0).
 *  - GPRC/GORC count frames that passed the address filter and length checks,
 *    including those later dropped for lack of descriptors. GORC/GOTC count
 *    bytes from the destination address through the CRC (8.2.3.23).
 *    64-bit counters: reading the low register takes (and clears) the whole
 *    count and latches the high half, which the high register then returns.
 *  - Per-queue counters QPRC/QPRDC/QBRC and QPTC/QBTC use the RQSMR/TQSM
 *    queue-to-counter mapping (16 counters; default: every queue -> 0).
 *  - wire_stats bytes exclude the CRC (what the application sent/received).
 *  - Tx waits for link: while LINKS.LINK_UP is 0, tx descriptors stay pending
 *    (the frames would sit in the packet buffer). Frames reaching a function whose
 *    link is down or whose RXCTRL.RXEN is 0 are lost without counting.
 *  - A ring must lie inside one DMA mapping (one contiguous region).
 *  - Interrupts (7.3): MSI-X only. A vector is "attached" when an eventfd is
 *    set for it (intel_model_set_irq_eventfd, what VFIO_DEVICE_SET_IRQS does); the
 *    model dup()s the fd as VFIO takes a reference. IVAR maps each queue's rx
 *    and tx cause to one of 64 vectors (valid bit). A cause sets the vector's
 *    EICR bit and makes it pending; a pending, unmasked (EIMS) vector sends
 *    its message (an 8-byte write of 1 to its eventfd) once its EITR interval
 *    since the previous message has passed, else when the interval ends (the
 *    worker checks every pass). On sending: EICR bit cleared if set in EIAC
 *    (vectors 16..63 always auto-clear: EIAC has 16 bits), EIMS bit cleared
 *    if GPIE.EIAME and the EIAM bit is set. Unmasking a vector whose EICR bit
 *    is set sends it (the cause was kept while masked). Nothing is sent unless
 *    GPIE.MSIX_MODE is set. EICR/EIMS/EIMC/EICS/EIAM bits 15:0 are vectors
 *    0..15; the _EX registers reach vectors 0..63 (bits 16..30 of EIMS, EICR
 *    stay plain "other cause" bits, never raised). In MSI-X mode a read of
 *    EICR does not clear it (write 1 to clear); otherwise it reads to clear.
 *    A write-back raises the cause once per engine pass (rx batch), not per
 *    descriptor: the same to the driver, since EICR is a sticky bit.
 *
 * The 82576 (variant INTEL_MODEL_82576) shares all of the above; intel_82576.c
 * says how its register map differs.
 *
 * Threading: the driver's threads call the register functions; the engine
 * thread (the worker, sim_worker.h) runs the DMA engines. Shared state is accessed with GCC __atomic
 * builtins only. The worker increments sim->round at the start and at the
 * end of every pass (odd = inside a pass); a driver thread that disables a
 * queue, resets the function or changes the DMA map clears the flag first, then
 * waits until the pass it may have raced with has ended (quiesce()), so the
 * worker no longer touches the old ring or mapping when the call returns.
 * rx paths (worker and intel_model_inject) serialise per function on a spin lock.
 */
#define _GNU_SOURCE
#ifndef INTEL_CORE_H
#define INTEL_CORE_H

#include "intel_model.h"
#include "sim_dma.h"
#include "sim_flows.h"
#include "sim_msix.h"
#include "sim_worker.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* ---- registers both maps have at the same offset (82599 8.2.3, 82576 ch. 8) */
#define R_CTRL        0x00000
#define   CTRL_LRST   (1u << 3)
#define   CTRL_RST    (1u << 26)
#define R_GPRC        0x04074
#define R_BPRC        0x04078
#define R_MPRC        0x0407C
#define R_GPTC        0x04080
#define R_GORCL       0x04088
#define R_GORCH       0x0408C
#define R_GOTCL       0x04090
#define R_GOTCH       0x04094
#define R_RUC         0x040A4
#define R_ROC         0x040AC
#define R_TPR         0x040D0
#define R_TPT         0x040D4

/* ---- bits both variants share --------------------------------------------- */
#define   GPIE_MSIX_MODE   (1u << 4)
#define   GPIE_OCD         (1u << 5)
#define   GPIE_EIAME       (1u << 30)
#define   GPIE_PBA_SUPPORT (1u << 31)
#define   EITR_LLI_MOD     (1u << 15)
#define   EITR_CNT_WDIS    (1u << 31)
#define   IVAR_VALID       0x80u
#define   EEC_PRES    (1u << 8)        /* 82599 EEC, 82576 EECD */
#define   EEC_ARD     (1u << 9)
#define   SRRCTL_DESCTYPE(v)   (((v) >> 25) & 7u)
#define   RXDCTL_ENABLE        (1u << 25)
#define   TXDCTL_ENABLE        (1u << 25)
#define   RAH_AV      (1u << 31)
/* The engines' configuration, in the 82599's terms (the 82576's register map
 * translates its RCTL/TCTL into these): FCTRL's filter bits, HLREG0's. */
#define   FCTRL_MPE   (1u << 8)
#define   FCTRL_UPE   (1u << 9)
#define   FCTRL_BAM   (1u << 10)
#define   HLREG0_TXCRCEN   (1u << 0)
#define   HLREG0_RXCRCSTRP (1u << 1)
#define   HLREG0_JUMBOEN   (1u << 2)
#define   HLREG0_TXPADEN   (1u << 10)

/* advanced descriptors (7.1.6 rx, 7.2.3.2.4 tx) */
#define RXD_STAT_DD   (1u << 0)
#define RXD_STAT_EOP  (1u << 1)
#define TXD_DTYP_CTXT 0x2u
#define TXD_DTYP_DATA 0x3u
#define TXD_CMD_EOP   (1u << 24)
#define TXD_CMD_IFCS  (1u << 25)
#define TXD_CMD_RS    (1u << 27)
#define TXD_CMD_DEXT  (1u << 29)
#define TXD_MAC_1588  (1u << 19)   /* time-stamp this packet (intel_1588.c) */
#define TXD_STAT_DD   (1u << 0)
#define TX_MAX_SEGS   40          /* 7.2.3.2: at most 40 descriptors per packet */

#define NSTAT 16
#define LOG_ENTRIES 256
#define ERR_LEN 176
#define EVT_LEN 40
#define NEVER INT64_MAX

#define LD(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define ST(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LDA(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STR(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)  __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define XCHG0(p)   __atomic_exchange_n((p), 0, __ATOMIC_RELAXED)

enum { WIRE_SINK = 0, WIRE_PAIR = 1, WIRE_SOURCE = 2 };

#define SOURCE_QUEUES 16      /* the rx queues a RETA entry can name (82599: bits 3:0), so a source's flows reach */
#define RX_WB_DESCS 4         /* rx descriptors (16 bytes) a 64-byte cache line holds */

/* One rx or tx queue, on three cache lines, so that neither side's writes
 * take a line the other reads per frame or per call: what both read (set at
 * enable or by register writes outside the hot path), what the engine writes
 * per frame, and the tail, which the driver writes per batch. */
struct ring {
    uint32_t enabled;         /* atomic: the worker may use the ring */
    uint32_t faulted;         /* worker-only once enabled: stopped after a DMA fault */
    uint32_t bal, bah, len;   /* atomic: the ring's registers xDBAL, xDBAH, xDLEN, */
    uint32_t ctl, srrctl;     /* RXDCTL/TXDCTL and (rx) SRRCTL, in the variant's layout */
    uint32_t size;            /* descriptors; latched at enable */
    uint32_t stat;            /* RQSMR/TQSM counter index, latched at enable */
    uint32_t bsize;           /* rx: buffer bytes (SRRCTL.BSIZEPACKET) */
    uint32_t drop_en;         /* rx: SRRCTL.DROP_EN */
    uint32_t bme_reported, paylen_reported;
    uint8_t *ring;            /* host view of the descriptors; latched at enable */
    uint32_t head __attribute__((aligned(64)));   /* atomic: written by the engine */
    uint32_t room;            /* rx, engine-only: descriptors the device owns from head, as of its last tail read */
    uint32_t wb_first, wb_count;  /* rx, under the rx lock: descriptors written back at the next flush */
    uint16_t wb_len[RX_WB_DESCS];
    uint8_t wb_eop[RX_WB_DESCS];
    uint64_t wb_lo[RX_WB_DESCS];  /* write-back dwords 0 (RSS type) and 1 (RSS hash) */
    uint32_t tail __attribute__((aligned(64)));   /* atomic: written by the driver */
};

/* A source flow: its own bytes (computed at wire_source, used with RSS on
 * or off) and, with RSS on, its rx queue and write-back dwords 0-1 (RSS
 * type, hash), those valid while gen equals the function's rss_gen. */
struct src_flow_rss {
    uint64_t lo;
    uint32_t gen;
    uint8_t queue;
    struct sim_flow_bytes bytes;  /* the flow's own bytes, computed once (wire_source) */
};

/* A frame in flight on a wire with a delay (intel_wire.c): its bytes (and
 * its FCS after them when the driver sent one) and when it is due at the
 * peer's rx (ns). */
struct wire_slot {
    int64_t due;
    uint32_t len;
    uint8_t has_crc;
    uint8_t data[INTEL_MODEL_MAX_FRAME + 4];
};

/* The delay line of a function's tx on a pair or loop wire: a FIFO of
 * frames in flight, leaving it in order. Set while the wire is detached from the engine
 * (intel_model_set_wire_delay); otherwise the worker's alone. */
struct wire_delay {
    int64_t delay_ns, jitter_ns;
    uint32_t frames;          /* slots; 0: no delay line */
    uint32_t head, count;     /* the oldest frame in flight, how many are */
    uint64_t rng;             /* xorshift64* state of the jitter */
    struct wire_slot *slot;
};

struct dev_stats {            /* device statistics, read-clear by the driver */
    uint64_t gprc, bprc, mprc, gptc, gorc, gotc, ruc, roc, tpr, tpt, tor, tot;
    uint64_t rxmpc[8];
    uint64_t qprc[NSTAT], qbrc[NSTAT], qprdc[NSTAT], qptc[NSTAT], qbtc[NSTAT];
};

/* A queue register: the ring, and the register's offset in the queue's block
 * (slot). The registers every block has at the same slot on both variants
 * (82599 8.2.3.8 / 8.2.3.9, 82576 8.10 / 8.12): */
enum { Q_BAL = 0x00, Q_BAH = 0x04, Q_LEN = 0x08, Q_H = 0x10, Q_T = 0x18, Q_CTL = 0x28 };
struct qreg { struct ring *q; unsigned qi; int rx; uint32_t slot, off; };

/* EICR, EICS, EIMS, EIMC, EIAC, EIAM: where they are and which bits are vectors. */
struct eirq_layout {
    uint32_t eicr, eics, eims, eimc, eiac, eiam;
    uint32_t vectors, other, reserved;   /* bits: one per MSI-X vector / other causes / reserved */
    const char *reserved_name;
    uint64_t autoclear;                  /* vectors that auto-clear whatever EIAC says */
};

struct eitr_layout {
    uint32_t interval;        /* the interval field */
    unsigned shift;
    int64_t unit_ns;
    const char *reserved_name;
};

/* Where the time sync registers are (intel_1588.c), and what differs in them. */
struct tsync_layout {
    uint32_t systiml, systimh, timinca, tsynctxctl, txstmpl, txstmph;
    uint32_t tsyncrxctl, rxstmpl, rxstmph, rxsatrl, rxsatrh;
    uint32_t rx_msgtype;      /* RXMTRL (82599) / TSYNCRXCFG (82576): the v2 messageType in bits 15:8 */
    uint32_t etqf;            /* ETQF(0); 8 filters, 4 bytes apart */
    uint32_t etqf_enable;     /* ETQF's filter enable bit */
    uint32_t cycle_tenths_ns; /* the clock period SYSTIM counts, in 0.1 ns */
};

/* The time sync state of a function (intel_1588.c). */
struct tsync {
    pthread_mutex_t lock;     /* the clock's base (a TIMINCA write against reads) */
    int64_t base_ns;          /* CLOCK_MONOTONIC when SYSTIM was base_systim */
    uint64_t base_systim;
    uint32_t timinca;         /* atomic */
    uint32_t systimh;         /* atomic: latched by a read of SYSTIML */
    uint32_t txctl, rxctl;    /* atomic: TSYNCTXCTL, TSYNCRXCTL (VALID set by the engine) */
    uint64_t tx_stamp, rx_stamp;   /* atomic */
    uint32_t rxsatrl, rxsatrh;     /* atomic */
};

/* What differs between the 82599 and the 82576: the register decode front
 * end (queue blocks, the rest of BAR0, reset defaults) and a few bit
 * layouts. Everything else is shared. */
struct variant {
    uint16_t device_id;
    unsigned nqueues, msix_vectors;
    uint32_t ctrl_rst;                  /* CTRL bits that reset the function */
    uint32_t ral0;                      /* RAL(0); RAH(0) follows */
    uint32_t srrctl_slot, srrctl_bsizepkt, srrctl_drop_en;
    int te_before_queues;               /* TXDCTL.ENABLE needs tx on first */
    uint32_t mrqc_mrqe, mrqc_rss_only;  /* MRQC's queue-mode field and its RSS-only value */
    uint32_t reta_qindex;               /* the bits of a RETA entry that name the queue */
    struct eirq_layout eirq;
    struct eitr_layout eitr;
    struct tsync_layout tsync;
    int (*queue_at)(struct intel_function *p, uint32_t off, struct qreg *r);
    uint32_t (*queue_stat_read)(struct intel_function *p, const struct qreg *r);
    uint32_t (*rx_stat)(struct intel_function *p, unsigned qi);   /* a queue's counter index */
    uint32_t (*tx_stat)(struct intel_function *p, unsigned qi);
    uint32_t (*read)(struct intel_function *p, uint32_t off, int64_t now, int in_reset);
    void (*write)(struct intel_function *p, uint32_t off, uint32_t v, int64_t now);
    void (*reset)(struct intel_function *p);
    void (*power_up)(struct intel_function *p, int64_t now);  /* at create, after the reset; or NULL */
};

struct intel_function {
    struct intel_model *sim;
    const struct variant *v;
    unsigned index;
    struct ixy_reg_ops ops;
    uint8_t mac[6];
    uint16_t pci_command;     /* atomic: PCI COMMAND register */
    pthread_mutex_t lock;     /* serialises the driver's register writes */
    uint32_t *regs;           /* BAR0 backing store (plain registers) */

    /* configuration the engines use (atomic copies of registers) */
    uint32_t fctrl, hlreg0, maxfrs, rxen, te;
    uint64_t own_mac;         /* RAR(0) as 48-bit value, bit 63 = AV */
    int64_t rst_until;        /* ns: CTRL.RST reads 1 until then */
    int64_t link_up_at;       /* ns; NEVER = down */
    uint32_t unplugged;       /* atomic, faults: the cable is out (link down) */
    uint32_t stalled;         /* atomic, faults: the DMA engines do nothing */
    uint32_t removed;         /* atomic, faults: gone from the bus (reads all ones, no DMA) */
    uint64_t drop_rx;         /* atomic, faults: frames still to drop on arrival */
    int64_t link_delay_us;
    uint32_t link_speed;      /* LINKS bits 29:28 when up */
    uint16_t phy[32];         /* 82576: the PHY's registers (under p->lock) */
    int64_t phy_an_at;        /* 82576: ns when the PHY's autonegotiation is complete; NEVER: off */
    uint32_t ev_ard, ev_dmaidone, ev_link;   /* event armed (driver side) */
    uint64_t txmask, rxmask;  /* atomic: enabled queues */
    struct ring tx[INTEL_MODEL_NUM_QUEUES], rx[INTEL_MODEL_NUM_QUEUES];

    /* RSS (intel_rss.c): latched from MRQC, RSSRK, RETA under p->lock */
    uint32_t rss_fields;      /* atomic: MRQC's hash-field bits while RSS is on, else 0 */
    uint8_t rss_key[40];      /* RSSRK, key byte 0 first */
    uint8_t rss_reta[128];    /* RETA: each entry's queue index */
    uint32_t rss_gen;         /* atomic: counts the writes to MRQC, RSSRK, RETA and resets */

    /* wire */
    int wire;                 /* atomic WIRE_* */
    struct intel_function *peer;  /* atomic */
    uint8_t *src_frame;       /* source frame (worker-owned while WIRE_SOURCE) */
    uint32_t src_len;
    int src_seq_off;
    uint32_t src_rss_extent;  /* intel_rss_extent of the source frame */
    struct sim_flows src_flows;
    struct src_flow_rss *src_rss;  /* per flow: its bytes, its queue and hash under RSS (src_flows.n of them) */
    uint64_t src_qpos[SOURCE_QUEUES];  /* with RSS over flows, per queue: where its next flow is looked for (flow pos % n) */
    uint32_t src_qgen;        /* the rss_gen src_qpos holds for */
    unsigned src_qfirst;      /* the queue a pass fills first, in turn */
    uint64_t src_count, src_sent, src_seq;
    uint8_t *scratch;         /* tx frame assembly (worker) */
    struct wire_delay delay;  /* tx's propagation delay on a pair/loop wire */
    struct tsync ts;          /* IEEE 1588 time sync (intel_1588.c) */
    int64_t *departures;      /* departure log: when each frame left a tx ring (ns), or NULL */
    uint32_t departures_cap, departures_n;   /* its slots, and the frames logged (it stops when full) */

    /* rx path lock and per-batch accumulators (under rxlock) */
    uint8_t rxlock;
    uint8_t rx_dirty;
    uint64_t rx_touched;      /* rx queues written since rx_lock (their write-backs flush at unlock) */
    struct dev_stats acc;
    struct intel_wire_stats wacc;

    /* MSI-X (7.3). The IVAR latches are read by the engines (atomic); the
     * rest is under irq_lock, the innermost lock (taken after p->lock or the
     * rx lock, never the other way round). */
    uint8_t rx_ivar[INTEL_MODEL_NUM_QUEUES], tx_ivar[INTEL_MODEL_NUM_QUEUES];  /* vector | IVAR_VALID */
    uint64_t rx_cause;        /* under the rx lock: vectors raised since rx_lock */
    pthread_mutex_t irq_lock;
    uint32_t gpie, eiac;
    uint64_t eicr, eims, eiam, pend;   /* one bit per vector */
    uint32_t irq_wait;        /* atomic: a pending unmasked vector waits for its EITR interval */
    struct sim_msix msix;     /* the messages' delivery: eventfds, counts (sim_msix.h) */
    int64_t itr_ns[INTEL_MODEL_MSIX_VECTORS], next_ok[INTEL_MODEL_MSIX_VECTORS];

    struct dev_stats st;      /* atomic counters */
    uint32_t gorc_hi, gotc_hi, tor_hi, tot_hi, qbrc_hi[NSTAT], qbtc_hi[NSTAT]; /* latched high halves */
    struct intel_wire_stats wst;   /* atomic */

    pthread_mutex_t log_lock;
    unsigned nerr, nev;
    char errs[LOG_ENTRIES][ERR_LEN];
    char evts[LOG_ENTRIES][EVT_LEN];
};

struct intel_model {
    struct sim_worker worker; /* first (sim_worker.h): the engine plays the DMA engines, intel_one_pass */
    unsigned nfunctions;
    struct intel_function *functions[INTEL_MODEL_MAX_FUNCTIONS];
    struct sim_dma_map *map;  /* atomic pointer, replaced as a whole */
    pthread_mutex_t map_lock; /* map writers and the non-worker DMA users */
    uint64_t round;           /* atomic: odd while the worker is inside a pass */
};

/* The functions the files call in one another are not exported from the
 * extension module. */
#pragma GCC visibility push(hidden)

/* ---- helpers ----------------------------------------------------------------- */
void intel_log_add(struct intel_function *p, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define ERR(p, ...) intel_log_add((p), 1, __VA_ARGS__)
#define EVT(p, ...) intel_log_add((p), 0, __VA_ARGS__)

static inline uint32_t rd32(const uint8_t *a) { uint32_t v; memcpy(&v, a, 4); return v; }
static inline uint64_t rd64(const uint8_t *a) { uint64_t v; memcpy(&v, a, 8); return v; }
static inline void wr32(uint8_t *a, uint32_t v) { memcpy(a, &v, 4); }
static inline void wr64(uint8_t *a, uint64_t v) { memcpy(a, &v, 8); }

static inline uint32_t reg(struct intel_function *p, uint32_t off) { return LD(&p->regs[off >> 2]); }
static inline void reg_set(struct intel_function *p, uint32_t off, uint32_t v) { ST(&p->regs[off >> 2], v); }

/* Wait until the worker has finished any pass that started before now. */
static inline void quiesce(struct intel_model *sim)
{
    uint64_t r = __atomic_load_n(&sim->round, __ATOMIC_SEQ_CST);
    if (!(r & 1))
        return;
    while (__atomic_load_n(&sim->round, __ATOMIC_SEQ_CST) == r)
        cpu_relax();
}

static inline void rx_lock(struct intel_function *p)
{
    while (__atomic_test_and_set(&p->rxlock, __ATOMIC_ACQUIRE))
        cpu_relax();
}

static inline int link_is_up(struct intel_function *p, int64_t now)
{
    return now >= LD(&p->link_up_at) && !LD(&p->unplugged);
}

/* The function's DMA engines may run (intel_faults.c: not stalled or removed). */
static inline int dma_runs(struct intel_function *p)
{
    return !LD(&p->stalled) && !LD(&p->removed);
}

static inline uint32_t sat32(uint64_t v) { return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)v; }

/* ---- what the files call in one another ---------------------------------------- */
/* intel_faults.c: 1 if the frame arriving now is one of a burst to drop (counted) */
int intel_fault_drop(struct intel_function *p);
/* intel_engines.c */
void intel_fcs_init(void);
int intel_rx_frame(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                   const uint8_t *data, uint32_t len, const uint8_t *crc, int64_t now);
void intel_rx_unlock(struct intel_function *p);
unsigned intel_one_pass(struct intel_model *sim, int64_t now);
/* intel_wire.c: the delay line. The frame (len bytes, its FCS at crc or
 * NULL) leaves p's tx now onto the delay line (or is dropped, counted);
 * the frames due by now reach p's peer: returns the frames still in flight
 * (work: the engine keeps running while any are). */
void intel_wire_depart(struct intel_function *p, const uint8_t *data, uint32_t len, const uint8_t *crc,
                       int64_t now);
unsigned intel_wire_arrive(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                           int64_t now);
/* intel_rss.c: MRQC/RSSRK/RETA (1 if off is one of them); the queue and
 * write-back dwords 0-1 (RSS type, hash) of a frame while RSS is on */
int intel_rss_write(struct intel_function *p, uint32_t off, uint32_t v);
void intel_rss_reset(struct intel_function *p);
/* Where the bytes intel_rss_queue may read of a frame end, whatever the
 * hash types: what lies beyond never changes the frame's queue. */
uint32_t intel_rss_extent(const uint8_t *data, uint32_t len);
unsigned intel_rss_queue(struct intel_function *p, uint32_t fields, const uint8_t *data, uint32_t len, uint64_t *lo);
/* intel_1588.c: the time sync registers (1 if off is one of them), the
 * transmit latch for a packet with the 1588 bit leaving at sent_at, the
 * receive latch for a frame reaching the receive path at now */
int intel_tsync_read(struct intel_function *p, uint32_t off, int64_t now, uint32_t *v);
int intel_tsync_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now);
void intel_tsync_reset(struct intel_function *p);
int intel_tsync_tx_enabled(struct intel_function *p);
void intel_tsync_tx(struct intel_function *p, int64_t sent_at);
void intel_tsync_rx(struct intel_function *p, const uint8_t *data, uint32_t len, int64_t now);
/* intel_msix.c */
void intel_irq_eval(struct intel_function *p, int64_t now);
void intel_irq_raise(struct intel_function *p, uint64_t vectors, int64_t now);
void intel_irq_unmask(struct intel_function *p, uint64_t vectors, int64_t now, const char *reg);
void intel_irq_mask(struct intel_function *p, uint64_t vectors);
void intel_msix_init(struct intel_function *p);
void intel_msix_reset(struct intel_function *p);
void intel_eitr_write(struct intel_function *p, unsigned v, uint32_t off, uint32_t val, int64_t now);
void intel_ivar_latch(struct intel_function *p, unsigned n, uint32_t v, unsigned q0, unsigned q1);
void intel_gpie_write(struct intel_function *p, uint32_t off, uint32_t v);
int intel_eirq_read(struct intel_function *p, uint32_t off, uint32_t *v);
int intel_eirq_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now);
/* intel_queues.c */
void intel_ring_stop(struct intel_function *p, struct ring *q, uint64_t *mask, unsigned qi);
void intel_tail_write(struct intel_function *p, struct ring *q, const char *name, unsigned qi, uint32_t v);
int intel_queue_reg(struct intel_function *p, struct qreg *r, int rx, unsigned qi, uint32_t slot, uint32_t off);
uint32_t intel_queue_read(struct intel_function *p, const struct qreg *r);
void intel_queue_write(struct intel_function *p, const struct qreg *r, uint32_t v);
void intel_rings_unmapped(struct intel_model *sim, uint64_t dma_addr, uint64_t len);
/* intel_regs.c */
void intel_function_reset(struct intel_function *p, int64_t now);
void intel_set_own_mac(struct intel_function *p);
uint32_t intel_stat_read64(uint64_t *ctr, uint32_t *hi, int high);
int64_t intel_an_done_at(struct intel_function *p, int64_t now);
void intel_set_rxen(struct intel_function *p, uint32_t on, const char *event);
void intel_set_te(struct intel_function *p, uint32_t on, const char *event);
void intel_set_filter(struct intel_function *p, uint32_t fctrl, const char *upe);
uint32_t intel_eeprom_status(struct intel_function *p, int in_reset, const char *event);
/* the register maps: intel_82599.c, intel_82576.c */
extern const struct variant intel_82599_variant, intel_82576_variant;
#pragma GCC visibility pop

#endif
