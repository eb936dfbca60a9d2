/* The 82599 and 82576 device model: see ixgbe_model.h for the contract.
 *
 * Written from the 82599 datasheet (bare section numbers in comments refer to
 * it) and the 82576 datasheet (the "82576 register map" section, and where
 * a comment names the 82576).
 *
 * Events (ixsim_event), recorded when the driver reaches a bring-up milestone:
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
 *  - All received traffic goes to rx queue 0 (no RSS, no pools, no filters
 *    beyond the destination MAC check against RAR(0), BAM, MPE, UPE).
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
 *    (the frames would sit in the packet buffer). Frames reaching a port whose
 *    link is down or whose RXCTRL.RXEN is 0 are lost without counting.
 *  - A ring must lie inside one DMA mapping (one contiguous region).
 *  - Interrupts (7.3): MSI-X only. A vector is "attached" when an eventfd is
 *    set for it (ixsim_set_irq_eventfd, what VFIO_DEVICE_SET_IRQS does); the
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
 * The 82576 (variant IXSIM_82576) shares all of the above; its register
 * front end maps its registers onto the same state:
 *  - Queue blocks at 0xC000/0xE000 + 0x40*n (16 queues), queues 0..3 also at
 *    the 82575-compatible 0x2800/0x3800 + 0x100*n (one register, two
 *    addresses); SRRCTL at +0x0C (BSIZEPACKET bits 6:0, DROP_EN bit 31),
 *    RQDPC at +0x30 counts the DROP_EN drops of its own queue; MPC the
 *    drops without DROP_EN. No per-queue tx counters.
 *  - RCTL.EN / TCTL.EN play RXCTRL.RXEN / DMATXCTL.TE (TCTL.EN may come
 *    after the queues are enabled); RCTL.UPE/MPE/BAM the FCTRL filter bits,
 *    taken at once also while rx is enabled (the datasheet sets no
 *    condition); RCTL.SECRC strips the CRC, RCTL.LPE with RLPML allows long
 *    frames, TCTL.PSP pads; the CRC is always appended (TXD IFCS).
 *  - Link: the internal copper PHY at MDIC PHYADD 1 (BMCR, BMSR, PHY id;
 *    other PHY registers are plain storage). It has autonegotiated when the
 *    model is created; a BMCR restart (or reset, or power-up) takes
 *    link_delay_us, after which BMSR reads autonegotiation complete and link up. STATUS.LU (1000 Mb/s,
 *    full duplex) is the PHY's link while CTRL.SLU is set; CTRL.RST clears
 *    CTRL.SLU but leaves the PHY as it is. MDIC completes at once.
 *  - MSI-X: 25 vectors, EICR/EIMS/... bits 24:0, EIAC covers every vector,
 *    IVAR[n] holds queues n and n+8, EITR's interval is bits 14:2 in 1 us.
 *    EICR reads as on the 82599 (not cleared in MSI-X mode), whatever
 *    GPIE.NSICR says.
 *  - Events: "EECD.AUTO_RD", "BMCR.RESTART_AN", "STATUS.LU", "RCTL.EN",
 *    "TCTL.EN", "RCTL.UPE=1" / "RCTL.UPE=0" instead of the 82599's.
 *
 * Threading: the driver's threads call the register functions; the worker
 * thread runs the DMA engines. Shared state is accessed with GCC __atomic
 * builtins only. The worker increments sim->round at the start and at the
 * end of every pass (odd = inside a pass); a driver thread that disables a
 * queue, resets the port or changes the DMA map clears the flag first, then
 * waits until the pass it may have raced with has ended (quiesce()), so the
 * worker no longer touches the old ring or mapping when the call returns.
 * rx paths (worker and ixsim_inject) serialise per port on a spin lock.
 */
#define _GNU_SOURCE
#include "ixgbe_model.h"
#include "sim_dma.h"
#include "sim_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- registers (8.2.3) ---------------------------------------------------- */
#define R_CTRL        0x00000
#define   CTRL_LRST   (1u << 3)
#define   CTRL_RST    (1u << 26)
#define R_STATUS      0x00008
#define R_EICR        0x00800
#define R_EICS        0x00808
#define R_EIAC        0x00810
#define R_EIMS        0x00880
#define R_EIMC        0x00888
#define R_EIAM        0x00890
#define R_GPIE        0x00898
#define   GPIE_MSIX_MODE   (1u << 4)
#define   GPIE_OCD         (1u << 5)
#define   GPIE_EIAME       (1u << 30)
#define   GPIE_PBA_SUPPORT (1u << 31)
#define R_EITR_LO(n)  (0x00820 + 4 * (n))      /* vectors 0..23 */
#define R_EITR_HI(n)  (0x12300 + 4 * ((n) - 24))   /* vectors 24..127 */
#define   EITR_INTERVAL    0x00000FF8u        /* bits 11:3, 2.048 us units (8.2.3.5.12) */
#define   EITR_LLI_MOD     (1u << 15)
#define   EITR_CNT_WDIS    (1u << 31)
#define R_IVAR(n)     (0x00900 + 4 * (n))      /* 64: queues 2n, 2n+1 */
#define   IVAR_VALID       0x80u
#define R_IVAR_MISC   0x00A00
#define R_EICS_EX(n)  (0x00A90 + 4 * (n))      /* 2 */
#define R_EIMS_EX(n)  (0x00AA0 + 4 * (n))
#define R_EIMC_EX(n)  (0x00AB0 + 4 * (n))
#define R_EIAM_EX(n)  (0x00AD0 + 4 * (n))
#define R_EEC         0x10010
#define   EEC_PRES    (1u << 8)
#define   EEC_ARD     (1u << 9)
#define R_RDBAL(n)    (0x01000 + 0x40 * (n))
#define R_RDBAH(n)    (0x01004 + 0x40 * (n))
#define R_RDLEN(n)    (0x01008 + 0x40 * (n))
#define R_RDH(n)      (0x01010 + 0x40 * (n))
#define R_SRRCTL(n)   (0x01014 + 0x40 * (n))
#define R_RDT(n)      (0x01018 + 0x40 * (n))
#define R_RXDCTL(n)   (0x01028 + 0x40 * (n))
#define R_QPRC(n)     (0x01030 + 0x40 * (n))   /* 16 */
#define R_QBRC_L(n)   (0x01034 + 0x40 * (n))
#define R_QBRC_H(n)   (0x01038 + 0x40 * (n))
#define R_QPRDC(n)    (0x01430 + 0x40 * (n))   /* 16 */
#define R_SRRCTL_ALIAS(n) (0x02100 + 4 * (n)) /* 16 */
#define R_RQSMR(n)    (0x02300 + 4 * (n))      /* 32 */
#define   SRRCTL_BSIZEPKT_MASK 0x1Fu
#define   SRRCTL_DESCTYPE(v)   (((v) >> 25) & 7u)
#define   SRRCTL_DROP_EN       (1u << 28)
#define   RXDCTL_ENABLE        (1u << 25)
#define R_RDRXCTL     0x02F00
#define   RDRXCTL_CRCSTRIP     (1u << 1)
#define   RDRXCTL_DMAIDONE     (1u << 3)
#define   RDRXCTL_RSCFRSTSIZE  0x003E0000u
#define   RDRXCTL_RSCACKC      (1u << 25)
#define   RDRXCTL_FCOE_WRFIX   (1u << 26)
#define R_RXCTRL      0x03000
#define   RXCTRL_RXEN (1u << 0)
#define R_RXPBSIZE(n) (0x03C00 + 4 * (n))
#define R_RXMPC(n)    (0x03FA0 + 4 * (n))      /* 8 */
#define R_CRCERRS     0x04000
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
#define R_HLREG0      0x04240
#define   HLREG0_TXCRCEN   (1u << 0)
#define   HLREG0_RXCRCSTRP (1u << 1)
#define   HLREG0_JUMBOEN   (1u << 2)
#define   HLREG0_TXPADEN   (1u << 10)
#define R_MAXFRS      0x04268
#define R_AUTOC       0x042A0
#define   AUTOC_RESTART_AN (1u << 12)
#define   AUTOC_LMS(v)     (((v) >> 13) & 7u)
#define R_LINKS       0x042A4
#define   LINKS_STATUS     (1u << 7)
#define   LINKS_UP         (1u << 30)
#define R_DMATXCTL    0x04A80
#define   DMATXCTL_TE (1u << 0)
#define R_FCTRL       0x05080
#define   FCTRL_MPE   (1u << 8)
#define   FCTRL_UPE   (1u << 9)
#define   FCTRL_BAM   (1u << 10)
#define R_TDBAL(n)    (0x06000 + 0x40 * (n))
#define R_TDBAH(n)    (0x06004 + 0x40 * (n))
#define R_TDLEN(n)    (0x06008 + 0x40 * (n))
#define R_TDH(n)      (0x06010 + 0x40 * (n))
#define R_TDT(n)      (0x06018 + 0x40 * (n))
#define R_TXDCTL(n)   (0x06028 + 0x40 * (n))
#define   TXDCTL_ENABLE (1u << 25)
#define R_DTXMXSZRQ   0x08100
#define R_TQSM(n)     (0x08600 + 4 * (n))      /* 32 */
#define R_QPTC(n)     (0x08680 + 4 * (n))      /* 16 */
#define R_QBTC_L(n)   (0x08700 + 8 * (n))
#define R_QBTC_H(n)   (0x08704 + 8 * (n))
#define R_RAL(n)      (0x0A200 + 8 * (n))
#define R_RAH(n)      (0x0A204 + 8 * (n))
#define   RAH_AV      (1u << 31)
#define R_TXPBSIZE(n) (0x0CC00 + 4 * (n))

/* advanced descriptors (7.1.6 rx, 7.2.3.2.4 tx) */
#define RXD_STAT_DD   (1u << 0)
#define RXD_STAT_EOP  (1u << 1)
#define TXD_DTYP_CTXT 0x2u
#define TXD_DTYP_DATA 0x3u
#define TXD_CMD_EOP   (1u << 24)
#define TXD_CMD_IFCS  (1u << 25)
#define TXD_CMD_RS    (1u << 27)
#define TXD_CMD_DEXT  (1u << 29)
#define TXD_STAT_DD   (1u << 0)
#define TX_MAX_SEGS   40          /* 7.2.3.2: at most 40 descriptors per packet */

#define NSTAT 16
#define LOG_ENTRIES 256
#define ERR_LEN 176
#define EVT_LEN 40
#define NEVER INT64_MAX
#define RESET_NS 1000000          /* CTRL.RST reads 1 for ~1 ms */
#define DEFAULT_LINK_DELAY_US 5000
#define TX_BUDGET 512             /* descriptors per queue per pass */
#define RX_BUDGET 256             /* source frames per port per pass */

#define LD(p)      __atomic_load_n((p), __ATOMIC_RELAXED)
#define ST(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LDA(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STR(p, v)  __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)  __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define XCHG0(p)   __atomic_exchange_n((p), 0, __ATOMIC_RELAXED)

enum { WIRE_SINK = 0, WIRE_PAIR = 1, WIRE_SOURCE = 2 };

struct ring {                 /* one rx or tx queue */
    uint32_t enabled;         /* atomic: the worker may use the ring */
    uint32_t faulted;         /* worker-only once enabled: stopped after a DMA fault */
    uint32_t tail, head;      /* atomic: tail written by driver, head by the engine */
    uint32_t bal, bah, len;   /* atomic: the ring's registers xDBAL, xDBAH, xDLEN, */
    uint32_t ctl, srrctl;     /* RXDCTL/TXDCTL and (rx) SRRCTL, in the variant's layout */
    uint32_t size;            /* descriptors; latched at enable */
    uint32_t stat;            /* RQSMR/TQSM counter index, latched at enable */
    uint32_t bsize;           /* rx: buffer bytes (SRRCTL.BSIZEPACKET) */
    uint32_t drop_en;         /* rx: SRRCTL.DROP_EN */
    uint32_t bme_reported, paylen_reported;
    uint8_t *ring;            /* host view of the descriptors; latched at enable */
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

/* What differs between the 82599 and the 82576: the register decode front
 * end (queue blocks, the rest of BAR0, reset defaults) and a few bit
 * layouts. Everything else is shared. */
struct variant {
    uint16_t device_id;
    unsigned nqueues, msix_vectors;
    uint32_t ctrl_rst;                  /* CTRL bits that reset the port */
    uint32_t ral0;                      /* RAL(0); RAH(0) follows */
    uint32_t srrctl_slot, srrctl_bsizepkt, srrctl_drop_en;
    int te_before_queues;               /* TXDCTL.ENABLE needs tx on first */
    struct eirq_layout eirq;
    struct eitr_layout eitr;
    int (*queue_at)(struct ixsim_port *p, uint32_t off, struct qreg *r);
    uint32_t (*queue_stat_read)(struct ixsim_port *p, const struct qreg *r);
    uint32_t (*rx_stat)(struct ixsim_port *p, unsigned qi);   /* a queue's counter index */
    uint32_t (*tx_stat)(struct ixsim_port *p, unsigned qi);
    uint32_t (*read)(struct ixsim_port *p, uint32_t off, int64_t now, int in_reset);
    void (*write)(struct ixsim_port *p, uint32_t off, uint32_t v, int64_t now);
    void (*reset)(struct ixsim_port *p);
};

struct ixsim_port {
    struct ixsim *sim;
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
    int64_t link_delay_us;
    uint32_t link_speed;      /* LINKS bits 29:28 when up */
    uint16_t phy[32];         /* 82576: the PHY's registers (under p->lock) */
    int64_t phy_an_at;        /* 82576: ns when the PHY's autonegotiation is complete; NEVER: off */
    uint32_t ev_ard, ev_dmaidone, ev_link;   /* event armed (driver side) */
    uint64_t txmask, rxmask;  /* atomic: enabled queues */
    struct ring tx[IXSIM_NUM_QUEUES], rx[IXSIM_NUM_QUEUES];

    /* wire */
    int wire;                 /* atomic WIRE_* */
    struct ixsim_port *peer;  /* atomic */
    uint8_t *src_frame;       /* source frame (worker-owned while WIRE_SOURCE) */
    uint32_t src_len;
    int src_seq_off;
    uint64_t src_count, src_sent, src_seq;
    uint8_t *scratch;         /* tx frame assembly (worker) */

    /* rx path lock and per-batch accumulators (under rxlock) */
    uint8_t rxlock;
    uint8_t rx_dirty;
    struct dev_stats acc;
    struct ixsim_wire_stats wacc;

    /* MSI-X (7.3). The IVAR latches are read by the engines (atomic); the
     * rest is under irq_lock, the innermost lock (taken after p->lock or the
     * rx lock, never the other way round). */
    uint8_t rx_ivar[IXSIM_NUM_QUEUES], tx_ivar[IXSIM_NUM_QUEUES];  /* vector | IVAR_VALID */
    uint64_t rx_cause;        /* under the rx lock: vectors raised since rx_lock */
    pthread_mutex_t irq_lock;
    uint32_t gpie, eiac;
    uint64_t eicr, eims, eiam, pend;   /* one bit per vector */
    uint32_t irq_wait;        /* atomic: a pending unmasked vector waits for its EITR interval */
    uint64_t lost_reported;   /* vectors whose lost message was logged */
    int efd[IXSIM_MSIX_VECTORS];       /* dup of the attached eventfd, -1: none */
    int64_t itr_ns[IXSIM_MSIX_VECTORS], next_ok[IXSIM_MSIX_VECTORS];
    uint64_t sent[IXSIM_MSIX_VECTORS]; /* atomic: messages sent */

    struct dev_stats st;      /* atomic counters */
    uint32_t gorc_hi, gotc_hi, tor_hi, tot_hi, qbrc_hi[NSTAT], qbtc_hi[NSTAT]; /* latched high halves */
    struct ixsim_wire_stats wst;   /* atomic */

    pthread_mutex_t log_lock;
    unsigned nerr, nev;
    char errs[LOG_ENTRIES][ERR_LEN];
    char evts[LOG_ENTRIES][EVT_LEN];
};

struct ixsim {
    unsigned nports;
    struct ixsim_port *ports[IXSIM_MAX_PORTS];
    struct sim_dma_map *map;  /* atomic pointer, replaced as a whole */
    pthread_mutex_t map_lock; /* map writers and the non-worker DMA users */
    pthread_t thread;
    int running;              /* atomic */
    int busy;                 /* atomic */
    uint64_t round;           /* atomic: odd while the worker is inside a pass */
    pthread_mutex_t life_lock;
};

/* ---- helpers ----------------------------------------------------------------- */
static void log_add(struct ixsim_port *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_add(struct ixsim_port *p, int err, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&p->log_lock);
    unsigned *n = err ? &p->nerr : &p->nev;
    if (*n < LOG_ENTRIES) {
        va_start(ap, fmt);
        if (err)
            vsnprintf(p->errs[*n], ERR_LEN, fmt, ap);
        else
            vsnprintf(p->evts[*n], EVT_LEN, fmt, ap);
        va_end(ap);
        __atomic_store_n(n, *n + 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&p->log_lock);
}
#define ERR(p, ...) log_add((p), 1, __VA_ARGS__)
#define EVT(p, ...) log_add((p), 0, __VA_ARGS__)

static inline uint32_t rd32(const uint8_t *a) { uint32_t v; memcpy(&v, a, 4); return v; }
static inline uint64_t rd64(const uint8_t *a) { uint64_t v; memcpy(&v, a, 8); return v; }
static inline void wr32(uint8_t *a, uint32_t v) { memcpy(a, &v, 4); }
static inline void wr64(uint8_t *a, uint64_t v) { memcpy(a, &v, 8); }

static inline uint32_t reg(struct ixsim_port *p, uint32_t off) { return LD(&p->regs[off >> 2]); }
static inline void reg_set(struct ixsim_port *p, uint32_t off, uint32_t v) { ST(&p->regs[off >> 2], v); }

/* Wait until the worker has finished any pass that started before now. */
static void quiesce(struct ixsim *sim)
{
    uint64_t r = __atomic_load_n(&sim->round, __ATOMIC_SEQ_CST);
    if (!(r & 1))
        return;
    while (__atomic_load_n(&sim->round, __ATOMIC_SEQ_CST) == r)
        cpu_relax();
}

static inline void rx_lock(struct ixsim_port *p)
{
    while (__atomic_test_and_set(&p->rxlock, __ATOMIC_ACQUIRE))
        cpu_relax();
}

static void rx_unlock(struct ixsim_port *p);

/* Ethernet FCS (CRC-32, reflected 0xEDB88320), only computed when a
 * receiver keeps the CRC (HLREG0.RXCRCSTRP = 0). */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}
static uint32_t eth_fcs(const uint8_t *d, uint32_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < len; i++)
        c = crc_table[(c ^ d[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* ---- receive path -------------------------------------------------------- */
static inline int link_is_up(struct ixsim_port *p, int64_t now)
{
    return now >= LD(&p->link_up_at);
}

/* A frame (without CRC: len bytes; crc = the 4 FCS bytes or NULL to compute)
 * arrives at port p. Caller holds p's rx lock. Returns 1 if written to
 * descriptors. Counters go to p->acc / p->wacc, flushed by rx_unlock. */
static int rx_frame(struct ixsim_port *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                    const uint8_t *data, uint32_t len, const uint8_t *crc, int64_t now)
{
    if (!LD(&p->rxen) || !link_is_up(p, now) || now < LD(&p->rst_until))
        return 0;
    p->rx_dirty = 1;
    uint32_t wire_len = len + 4;
    uint32_t fctrl = LD(&p->fctrl);
    int bcast = 0, mcast = 0;
    /* 7.1.1 destination address filter */
    uint64_t da = 0;
    for (int i = 0; i < 6; i++)
        da |= (uint64_t)data[i] << (8 * i);
    int pass = 0;
    if (da == 0xFFFFFFFFFFFFull) {
        bcast = 1;
        pass = (fctrl & (FCTRL_BAM | FCTRL_UPE)) != 0;
    } else if (data[0] & 1) {
        mcast = 1;
        pass = (fctrl & (FCTRL_MPE | FCTRL_UPE)) != 0;
    } else {
        uint64_t own = LD(&p->own_mac);
        pass = (fctrl & FCTRL_UPE) || ((own >> 63) && (own & 0xFFFFFFFFFFFFull) == da);
    }
    if (!pass) {
        p->wacc.rx_filtered++;
        return 0;
    }
    p->acc.tpr++;
    p->acc.tor += wire_len;
    uint32_t hl = LD(&p->hlreg0);
    uint32_t maxfs = (hl & HLREG0_JUMBOEN) ? (LD(&p->maxfrs) >> 16) : 1518;
    if (wire_len > maxfs) {   /* 8.2.3.23.x ROC */
        p->acc.roc++;
        return 0;
    }
    if (wire_len < 64) {
        p->acc.ruc++;
        return 0;
    }
    p->acc.gprc++;
    p->acc.gorc += wire_len;
    p->acc.bprc += bcast;
    p->acc.mprc += mcast;

    struct ring *q = &p->rx[0];
    uint32_t dlen = (hl & HLREG0_RXCRCSTRP) ? len : wire_len;
    uint32_t size = 0, head = 0, ndesc = 0, avail = 0;
    int ok = LDA(&q->enabled) && !LD(&q->faulted);
    if (ok) {
        size = q->size;
        head = LD(&q->head);
    }
    if (ok && !(LD(&p->pci_command) & 4)) {
        if (!q->bme_reported) {
            q->bme_reported = 1;
            ERR(p, "rx DMA for RXDCTL[0] queue while PCI COMMAND.BME is clear: frame dropped");
        }
        ok = 0;
    }
    if (ok) {
        uint32_t tail = LDA(&q->tail);
        avail = (tail + size - head) % size;
        ndesc = (dlen + q->bsize - 1) / q->bsize;
        ok = avail >= ndesc;
    }
    if (!ok) {
        if (q->drop_en && LD(&q->enabled))
            p->acc.qprdc[q->stat]++;
        else
            p->acc.rxmpc[0]++;
        p->wacc.rx_no_desc_drops++;
        return 0;
    }
    uint8_t fcs[4];
    if (dlen > len) {
        uint32_t c = crc ? rd32(crc) : eth_fcs(data, len);
        memcpy(fcs, &c, 4);
    }
    uint32_t done = 0;
    for (uint32_t k = 0; k < ndesc; k++) {
        uint8_t *d = q->ring + (size_t)head * 16;
        uint64_t addr = rd64(d);
        uint32_t chunk = dlen - done < q->bsize ? dlen - done : q->bsize;
        uint8_t *buf = sim_dma_find(m, hint, addr, chunk);
        if (!buf) {
            ERR(p, "RXD[%u] of queue 0: buffer 0x%llx+%u outside the DMA map (queue stopped)",
                head, (unsigned long long)addr, chunk);
            ST(&q->faulted, 1);
            STR(&q->head, head);
            return 0;
        }
        /* copy data bytes, then CRC bytes if kept */
        uint32_t from_data = done < len ? (len - done < chunk ? len - done : chunk) : 0;
        memcpy(buf, data + done, from_data);
        if (from_data < chunk)
            memcpy(buf + from_data, fcs + (done + from_data - len), chunk - from_data);
        done += chunk;
        wr64(d, 0);                     /* packet type, RSS: none */
        wr32(d + 12, chunk);            /* PKT_LEN 15:0, VLAN tag 0 */
        __atomic_store_n((uint32_t *)(d + 8), RXD_STAT_DD | (k == ndesc - 1 ? RXD_STAT_EOP : 0),
                         __ATOMIC_RELEASE);
        head = head + 1 == size ? 0 : head + 1;
    }
    STR(&q->head, head);
    uint32_t iv = LD(&p->rx_ivar[0]);      /* 7.3.4: rx cause of queue 0 -> its vector */
    if (iv & IVAR_VALID)
        p->rx_cause |= 1ull << (iv & 63);
    p->acc.qprc[q->stat]++;
    p->acc.qbrc[q->stat] += dlen;
    p->wacc.rx_packets++;
    p->wacc.rx_bytes += len;
    return 1;
}

static void flush_stats(struct dev_stats *dst, struct dev_stats *src)
{
    uint64_t *d = (uint64_t *)dst, *s = (uint64_t *)src;
    for (size_t i = 0; i < sizeof(*src) / 8; i++)
        if (s[i]) {
            ADD(&d[i], s[i]);
            s[i] = 0;
        }
}

static void flush_wire(struct ixsim_wire_stats *dst, struct ixsim_wire_stats *src)
{
    uint64_t *d = (uint64_t *)dst, *s = (uint64_t *)src;
    for (size_t i = 0; i < sizeof(*src) / 8; i++)
        if (s[i]) {
            ADD(&d[i], s[i]);
            s[i] = 0;
        }
}

static void irq_raise(struct ixsim_port *p, uint64_t vectors, int64_t now);

static void rx_unlock(struct ixsim_port *p)
{
    if (p->rx_dirty) {
        flush_stats(&p->st, &p->acc);
        flush_wire(&p->wst, &p->wacc);
        p->rx_dirty = 0;
    }
    uint64_t cause = p->rx_cause;
    p->rx_cause = 0;
    if (cause)     /* the descriptors are written: the message may follow */
        irq_raise(p, cause, now_ns());
    __atomic_clear(&p->rxlock, __ATOMIC_RELEASE);
}

/* ---- MSI-X (7.3) ------------------------------------------------------------ */
/* Send vector v's message: an 8-byte write of 1 to its eventfd. irq_lock held. */
static void msix_send(struct ixsim_port *p, unsigned v)
{
    ADD(&p->sent[v], 1);
    if (p->efd[v] < 0) {
        if (!(p->lost_reported & (1ull << v))) {
            p->lost_reported |= 1ull << v;
            ERR(p, "MSI-X vector %u fired with no eventfd attached (interrupt lost)", v);
        }
        return;
    }
    uint64_t one = 1;
    ssize_t r = write(p->efd[v], &one, sizeof(one));
    (void)r;    /* EAGAIN only if the counter would overflow: the reader is woken anyway */
}

/* Send every pending, unmasked vector whose EITR interval has passed; the
 * others stay pending (the worker retries them every pass). irq_lock held. */
static void irq_eval(struct ixsim_port *p, int64_t now)
{
    if (!(p->gpie & GPIE_MSIX_MODE)) {
        ST(&p->irq_wait, 0);
        return;
    }
    uint64_t ready = p->pend & p->eims, waiting = 0;
    while (ready) {
        unsigned v = __builtin_ctzll(ready);
        uint64_t b = 1ull << v;
        ready &= ready - 1;
        if (now < p->next_ok[v]) {     /* 7.3.2.1: no more often than EITR allows */
            waiting |= b;
            continue;
        }
        p->pend &= ~b;
        p->next_ok[v] = now + p->itr_ns[v];
        if ((p->v->eirq.autoclear | p->eiac) & b)           /* auto-clear */
            p->eicr &= ~b;
        if ((p->gpie & GPIE_EIAME) && (p->eiam & b))   /* auto-mask */
            p->eims &= ~b;
        msix_send(p, v);
    }
    ST(&p->irq_wait, waiting != 0);
}

static void irq_raise(struct ixsim_port *p, uint64_t vectors, int64_t now)
{
    pthread_mutex_lock(&p->irq_lock);
    p->eicr |= vectors;
    p->pend |= vectors;
    irq_eval(p, now);
    pthread_mutex_unlock(&p->irq_lock);
}

/* Unmask vectors (EIMS, EIMS_EX): one whose cause was kept while masked fires. */
static void irq_unmask(struct ixsim_port *p, uint64_t vectors, int64_t now, const char *reg)
{
    pthread_mutex_lock(&p->irq_lock);
    if (p->gpie & GPIE_MSIX_MODE) {
        for (uint64_t m = vectors & ~p->eims; m; m &= m - 1) {
            unsigned v = __builtin_ctzll(m);
            if (p->efd[v] < 0)
                ERR(p, "%s unmasks MSI-X vector %u, which has no eventfd attached", reg, v);
        }
    }
    p->pend |= vectors & ~p->eims & p->eicr;
    p->eims |= vectors;
    irq_eval(p, now);
    pthread_mutex_unlock(&p->irq_lock);
}

static void irq_mask(struct ixsim_port *p, uint64_t vectors)
{
    pthread_mutex_lock(&p->irq_lock);
    p->eims &= ~vectors;
    pthread_mutex_unlock(&p->irq_lock);
}

/* EITR of vector v at offset off: the interval field and its unit are the
 * variant's; bit 15 (82599 LLI_MOD, 82576 LLI_EN) is kept, bit 31 (82599
 * CNT_WDIS, 82576 CNT_INGR) keeps the write from loading the ITR counter. */
static void eitr_write(struct ixsim_port *p, unsigned v, uint32_t off, uint32_t val, int64_t now)
{
    const struct eitr_layout *l = &p->v->eitr;
    uint32_t reserved = (l->interval & -l->interval) - 1;    /* the bits below the interval */
    if (val & reserved) {
        ERR(p, "EITR[%u]=0x%x: %s", v, val, l->reserved_name);
        val &= ~reserved;
    }
    reg_set(p, off, val & (l->interval | EITR_LLI_MOD | EITR_CNT_WDIS));
    pthread_mutex_lock(&p->irq_lock);
    p->itr_ns[v] = (int64_t)((val & l->interval) >> l->shift) * l->unit_ns;
    if (!(val & EITR_CNT_WDIS))     /* the write also loads the ITR counter (0): it expires now */
        p->next_ok[v] = 0;
    irq_eval(p, now);
    pthread_mutex_unlock(&p->irq_lock);
}

/* IVAR[n]'s four entries (reserved bits already cleared), a vector and
 * IVAR_VALID each: bytes 0..3 are rx q0, tx q0, rx q1, tx q1. */
static void ivar_latch(struct ixsim_port *p, unsigned n, uint32_t v, unsigned q0, unsigned q1)
{
    for (unsigned b = 0; b < 4; b++) {
        uint8_t e = (uint8_t)(v >> (8 * b));
        if ((e & IVAR_VALID) && (e & 0x3Fu) >= p->v->msix_vectors)
            ERR(p, "IVAR[%u]=0x%08x: vector %u does not exist (%u MSI-X vectors)", n, v, e & 0x3Fu,
                p->v->msix_vectors);
    }
    ST(&p->rx_ivar[q0], (uint8_t)v);
    ST(&p->tx_ivar[q0], (uint8_t)(v >> 8));
    ST(&p->rx_ivar[q1], (uint8_t)(v >> 16));
    ST(&p->tx_ivar[q1], (uint8_t)(v >> 24));
}

static void gpie_write(struct ixsim_port *p, uint32_t off, uint32_t v)
{
    pthread_mutex_lock(&p->irq_lock);
    if ((v & GPIE_MSIX_MODE) && !(p->gpie & GPIE_MSIX_MODE)) {
        int any = 0;
        for (unsigned i = 0; i < IXSIM_MSIX_VECTORS; i++)
            any |= p->efd[i] >= 0;
        if (!any)
            ERR(p, "GPIE.MSIX_MODE set while no MSI-X vector has an eventfd attached (MSI-X not enabled)");
        if (!(v & GPIE_PBA_SUPPORT))
            ERR(p, "GPIE.MSIX_MODE set without GPIE.PBA_SUPPORT (must be 1 in MSI-X mode)");
    }
    p->gpie = v;
    reg_set(p, off, v);
    pthread_mutex_unlock(&p->irq_lock);
}

/* ---- transmit path --------------------------------------------------------- */
static void fault_tx(struct ixsim_port *p, struct ring *q)
{
    ST(&q->faulted, 1);
    (void)p;
}

/* Process one tx queue. Returns descriptors consumed. */
static unsigned tx_queue(struct ixsim_port *p, unsigned qi, const struct sim_dma_map *m,
                         const struct sim_dma_ent **hint, int64_t now)
{
    struct ring *q = &p->tx[qi];
    if (LD(&q->faulted))
        return 0;
    uint32_t tail = LDA(&q->tail), head = LD(&q->head);
    if (head == tail || !LD(&p->te) || !link_is_up(p, now))
        return 0;
    if (!(LD(&p->pci_command) & 4)) {
        if (!q->bme_reported) {
            q->bme_reported = 1;
            ERR(p, "tx DMA for TXDCTL[%u] queue (TDT[%u]=%u) while PCI COMMAND.BME is clear: nothing fetched",
                qi, qi, tail);
        }
        return 0;
    }
    const uint32_t size = q->size;
    int mode = LDA(&p->wire);
    struct ixsim_port *peer = mode == WIRE_PAIR ? LDA(&p->peer) : NULL;
    int peer_locked = 0;
    uint32_t hl = LD(&p->hlreg0);
    uint64_t gptc = 0, gotc = 0, bytes = 0;
    unsigned consumed = 0;
    const uint8_t *seg_p[TX_MAX_SEGS];
    uint32_t seg_l[TX_MAX_SEGS];

    while (head != tail && consumed < TX_BUDGET) {
        uint32_t i = head, n = 0, total = 0, paylen = 0;
        int complete = 0, bad = 0;
        for (;;) {
            uint8_t *d = q->ring + (size_t)i * 16;
            uint32_t cmd = rd32(d + 8);
            uint32_t dtyp = (cmd >> 20) & 0xF;
            if (!(cmd & TXD_CMD_DEXT) || (dtyp != TXD_DTYP_DATA && dtyp != TXD_DTYP_CTXT)) {
                ERR(p, "TXD[%u] of queue %u: %s descriptor (DCMD.DEXT=%u DTYP=%u), only advanced data/context descriptors are supported (queue stopped)",
                    i, qi, (cmd & TXD_CMD_DEXT) ? "unknown" : "legacy", !!(cmd & TXD_CMD_DEXT), dtyp);
                bad = 1;
                break;
            }
            if (dtyp == TXD_DTYP_CTXT) {
                if (n) {
                    ERR(p, "TXD[%u] of queue %u: context descriptor inside a packet (queue stopped)", i, qi);
                    bad = 1;
                    break;
                }
                /* a context descriptor alone: consumed, no data */
                complete = 1;
                break;
            }
            uint32_t len = cmd & 0xFFFF;
            uint64_t addr = rd64(d);
            const uint8_t *buf = sim_dma_find(m, hint, addr, len ? len : 1);
            if (!buf) {
                ERR(p, "TXD[%u] of queue %u: buffer 0x%llx+%u outside the DMA map (queue stopped)",
                    i, qi, (unsigned long long)addr, len);
                bad = 1;
                break;
            }
            if (n == 0)
                paylen = rd32(d + 12) >> 14;
            if (n == TX_MAX_SEGS) {
                ERR(p, "TXD[%u] of queue %u: packet uses more than %u descriptors (queue stopped)", i, qi, TX_MAX_SEGS);
                bad = 1;
                break;
            }
            seg_p[n] = buf;
            seg_l[n] = len;
            n++;
            total += len;
            if (cmd & TXD_CMD_EOP) {
                complete = 1;
                break;
            }
            i = i + 1 == size ? 0 : i + 1;
            if (i == tail)
                break;   /* rest of the packet not handed over yet */
        }
        if (bad) {
            fault_tx(p, q);
            break;
        }
        if (!complete)
            break;
        /* deliver the frame (n == 0: a lone context descriptor) */
        if (n) {
            uint32_t ifcs = rd32(q->ring + (size_t)head * 16 + 8) & TXD_CMD_IFCS;  /* first descriptor */
            int send = 1;
            if (paylen != total) {
                if (!q->paylen_reported) {
                    q->paylen_reported = 1;
                    ERR(p, "TXD[%u] of queue %u: PAYLEN %u differs from the packet's DTALEN sum %u (frame dropped)",
                        head, qi, paylen, total);
                }
                send = 0;
            }
            uint32_t len = total;
            int crc_in_data = !(ifcs && (hl & HLREG0_TXCRCEN));
            if (crc_in_data) {
                if (total < 4)
                    send = 0;
                else
                    len = total - 4;
            }
            if (send && total > IXSIM_MAX_FRAME) {
                ERR(p, "queue %u: tx packet of %u bytes exceeds the largest frame %u (dropped)", qi, total, IXSIM_MAX_FRAME);
                send = 0;
            }
            if (send) {
                uint32_t wlen = len;
                if ((hl & HLREG0_TXPADEN) && wlen < 60)
                    wlen = 60;
                gptc++;
                gotc += wlen + 4;
                bytes += wlen;
                if (peer) {
                    const uint8_t *data = seg_p[0];
                    const uint8_t *crc = NULL;
                    if (n > 1 || wlen != len) {
                        uint8_t *s = p->scratch, *o = s;
                        for (uint32_t k = 0; k < n; k++) {
                            memcpy(o, seg_p[k], seg_l[k]);
                            o += seg_l[k];
                        }
                        if (wlen != len) {      /* pad (before any software CRC) */
                            memset(s + len, 0, wlen - len);
                            crc_in_data = 0;
                        }
                        data = s;
                    }
                    if (crc_in_data)
                        crc = data + len;
                    if (!peer_locked) {
                        rx_lock(peer);
                        peer_locked = 1;
                    }
                    rx_frame(peer, m, hint, data, wlen, crc, now);
                }
            }
        }
        /* write back DD on descriptors with RS (7.2.3.2.4 / 7.2.3.5) */
        uint32_t j = head;
        for (;;) {
            uint8_t *d = q->ring + (size_t)j * 16;
            if (rd32(d + 8) & TXD_CMD_RS) {
                uint32_t sta = rd32(d + 12);
                __atomic_store_n((uint32_t *)(d + 12), sta | TXD_STAT_DD, __ATOMIC_RELEASE);
            }
            consumed++;
            if (j == i)
                break;
            j = j + 1 == size ? 0 : j + 1;
        }
        head = i + 1 == size ? 0 : i + 1;
    }
    if (peer_locked)
        rx_unlock(peer);
    STR(&q->head, head);
    if (consumed) {
        uint32_t iv = LD(&p->tx_ivar[qi]);     /* 7.3.4: tx cause of queue qi */
        if (iv & IVAR_VALID)
            irq_raise(p, 1ull << (iv & 63), now);
    }
    if (gptc) {
        ADD(&p->st.gptc, gptc);
        ADD(&p->st.tpt, gptc);
        ADD(&p->st.gotc, gotc);
        ADD(&p->st.tot, gotc);
        ADD(&p->st.qptc[q->stat], gptc);
        ADD(&p->st.qbtc[q->stat], gotc - 4 * gptc);
        ADD(&p->wst.tx_packets, gptc);
        ADD(&p->wst.tx_bytes, bytes);
    }
    return consumed;
}

/* The traffic generator at the far end of a source wire. */
static unsigned source_fill(struct ixsim_port *p, const struct sim_dma_map *m,
                            const struct sim_dma_ent **hint, int64_t now)
{
    if (!LD(&p->rxen) || !link_is_up(p, now))
        return 0;
    struct ring *q = &p->rx[0];
    if (!LDA(&q->enabled) || LD(&q->faulted) || !(LD(&p->pci_command) & 4))
        return 0;
    unsigned sent = 0;
    rx_lock(p);
    uint32_t dlen = p->src_len + ((LD(&p->hlreg0) & HLREG0_RXCRCSTRP) ? 0 : 4);
    uint32_t need = (dlen + q->bsize - 1) / q->bsize;
    while (sent < RX_BUDGET && (p->src_count == 0 || p->src_sent < p->src_count)) {
        uint32_t avail = (LDA(&q->tail) + q->size - LD(&q->head)) % q->size;
        if (avail < need || LD(&q->faulted))
            break;
        if (p->src_seq_off >= 0)
            wr64(p->src_frame + p->src_seq_off, p->src_seq);
        p->src_seq++;
        p->src_sent++;
        rx_frame(p, m, hint, p->src_frame, p->src_len, NULL, now);
        sent++;
    }
    rx_unlock(p);
    return sent;
}

static unsigned port_pass(struct ixsim_port *p, const struct sim_dma_map *m, int64_t now)
{
    const struct sim_dma_ent *hint = NULL;
    unsigned work = 0;
    if (now < LD(&p->rst_until))
        return 0;
    if (LD(&p->irq_wait)) {        /* an EITR interval may have ended */
        pthread_mutex_lock(&p->irq_lock);
        irq_eval(p, now);
        pthread_mutex_unlock(&p->irq_lock);
    }
    uint64_t mask = LDA(&p->txmask);
    while (mask) {
        unsigned qi = __builtin_ctzll(mask);
        mask &= mask - 1;
        if (__atomic_load_n(&p->tx[qi].enabled, __ATOMIC_SEQ_CST))
            work += tx_queue(p, qi, m, &hint, now);
    }
    if (LDA(&p->wire) == WIRE_SOURCE)
        work += source_fill(p, m, &hint, now);
    return work;
}

#define IDLE_SPIN_NS 1000000

/* One pass of every port's DMA engines. The round counter is odd while the
 * pass runs, so quiesce() can wait for it to end. */
static unsigned one_pass(struct ixsim *sim, int64_t now)
{
    __atomic_fetch_add(&sim->round, 1, __ATOMIC_SEQ_CST);   /* odd: inside */
    const struct sim_dma_map *m = __atomic_load_n(&sim->map, __ATOMIC_SEQ_CST);
    unsigned work = 0;
    for (unsigned i = 0; i < sim->nports; i++)
        work += port_pass(sim->ports[i], m, now);
    __atomic_fetch_add(&sim->round, 1, __ATOMIC_SEQ_CST);   /* even: outside */
    return work;
}

int ixsim_poll(void *ctx)
{
    struct ixsim *sim = ctx;
    if (LD(&sim->running))
        return -1;
    return (int)one_pass(sim, now_ns());
}

static void *worker(void *arg)
{
    struct ixsim *sim = arg;
    int64_t idle_since = 0;   /* 0: busy in the last pass */
    while (__atomic_load_n(&sim->running, __ATOMIC_ACQUIRE)) {
        int64_t now = now_ns();
        unsigned work = one_pass(sim, now);
        if (work) {
            idle_since = 0;
            continue;
        }
        if (!idle_since)
            idle_since = now;
        /* keep spinning through the short gaps of a driver that sends or
         * receives continuously; sleep only after 1 ms without work */
        if (LD(&sim->busy) || now - idle_since < IDLE_SPIN_NS) {
            for (int k = 0; k < 16; k++)
                cpu_relax();
            continue;
        }
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* ---- reset ------------------------------------------------------------------ */
/* Receive address 0 (82599 RAL(0)/RAH(0) 8.2.3.7.9, 82576 8.10.x): the
 * destination address filter's own MAC. */
static void set_own_mac(struct ixsim_port *p)
{
    uint32_t ral = reg(p, p->v->ral0), rah = reg(p, p->v->ral0 + 4);
    uint64_t v = (uint64_t)ral | ((uint64_t)(rah & 0xFFFF) << 32);
    if (rah & RAH_AV)
        v |= 1ull << 63;
    ST(&p->own_mac, v);
}

static void ring_stop(struct ixsim_port *p, struct ring *q, uint64_t *mask, unsigned qi)
{
    __atomic_fetch_and(mask, ~(1ull << qi), __ATOMIC_SEQ_CST);
    __atomic_store_n(&q->enabled, 0, __ATOMIC_SEQ_CST);
    (void)p;
}

/* Registers to their defaults (82599 8.2.3, 82576 chapter 8: "Init val"),
 * queues stopped. Caller holds p->lock. */
static void port_reset(struct ixsim_port *p, int64_t now)
{
    for (unsigned i = 0; i < IXSIM_NUM_QUEUES; i++) {
        ring_stop(p, &p->tx[i], &p->txmask, i);
        ring_stop(p, &p->rx[i], &p->rxmask, i);
    }
    ST(&p->rxen, 0);
    ST(&p->te, 0);
    ST(&p->link_up_at, NEVER);
    quiesce(p->sim);
    rx_lock(p);     /* an inject in flight finishes first */
    memset(p->regs, 0, IXSIM_BAR0_SIZE);
    for (unsigned i = 0; i < IXSIM_NUM_QUEUES; i++) {
        struct ring *t = &p->tx[i], *r = &p->rx[i];
        memset(t, 0, sizeof(*t));
        memset(r, 0, sizeof(*r));
        r->srrctl = 0x00000402;   /* BSIZEHEADER 256 B, BSIZEPACKET 2 KiB, legacy (both variants) */
    }
    memset(&p->acc, 0, sizeof(p->acc));
    memset(&p->wacc, 0, sizeof(p->wacc));
    memset(p->rx_ivar, 0, sizeof(p->rx_ivar));
    memset(p->tx_ivar, 0, sizeof(p->tx_ivar));
    p->rx_cause = 0;
    rx_unlock(p);
    /* interrupt registers to their defaults; the attached eventfds stay
     * (they belong to the PCI function's MSI-X set-up, not to BAR0) */
    pthread_mutex_lock(&p->irq_lock);
    p->gpie = p->eiac = 0;
    p->eicr = p->eims = p->eiam = p->pend = 0;
    for (unsigned i = 0; i < IXSIM_MSIX_VECTORS; i++)
        p->itr_ns[i] = p->next_ok[i] = 0;
    ST(&p->irq_wait, 0);
    pthread_mutex_unlock(&p->irq_lock);
    /* clear the device statistics */
    uint64_t *s = (uint64_t *)&p->st;
    for (size_t i = 0; i < sizeof(p->st) / 8; i++)
        XCHG0(&s[i]);
    p->gorc_hi = p->gotc_hi = p->tor_hi = p->tot_hi = 0;
    memset(p->qbrc_hi, 0, sizeof(p->qbrc_hi));
    memset(p->qbtc_hi, 0, sizeof(p->qbtc_hi));

    reg_set(p, p->v->ral0, (uint32_t)p->mac[0] | (uint32_t)p->mac[1] << 8 |
                           (uint32_t)p->mac[2] << 16 | (uint32_t)p->mac[3] << 24);
    reg_set(p, p->v->ral0 + 4, RAH_AV | p->mac[4] | (uint32_t)p->mac[5] << 8);
    set_own_mac(p);
    ST(&p->fctrl, 0);
    p->v->reset(p);
    ST(&p->ev_ard, 1);
    ST(&p->ev_dmaidone, 1);
    ST(&p->ev_link, 0);
    ST(&p->rst_until, now);
}

/* ---- queue enable ------------------------------------------------------------ */
/* Validate and latch a ring. Returns 1 if it may be enabled. */
static int ring_check(struct ixsim_port *p, const char *ctl, const char *pre, unsigned qi,
                      uint32_t bal, uint32_t bah, uint32_t len, uint8_t **va)
{
    uint64_t base = (uint64_t)bah << 32 | bal;
    if (len == 0) {
        ERR(p, "%s[%u].ENABLE set while %sLEN[%u] is 0", ctl, qi, pre, qi);
        return 0;
    }
    if (len % 128) {
        ERR(p, "%s[%u].ENABLE set while %sLEN[%u]=%u is not a multiple of 128", ctl, qi, pre, qi, len);
        return 0;
    }
    if (base % 128) {
        ERR(p, "%s[%u].ENABLE set while %sBA[%u]=0x%llx is not 128-byte aligned", ctl, qi, pre, qi,
            (unsigned long long)base);
        return 0;
    }
    pthread_mutex_lock(&p->sim->map_lock);
    const struct sim_dma_ent *hint = NULL;
    *va = sim_dma_find(p->sim->map, &hint, base, len);
    pthread_mutex_unlock(&p->sim->map_lock);
    if (!*va) {
        ERR(p, "%s[%u].ENABLE set while the ring %sBA[%u]=0x%llx+%sLEN %u is outside the DMA map",
            ctl, qi, pre, qi, (unsigned long long)base, pre, len);
        return 0;
    }
    return 1;
}

static void rxdctl_write(struct ixsim_port *p, unsigned qi, uint32_t v)
{
    struct ring *q = &p->rx[qi];
    int was = LD(&q->enabled);
    if ((v & RXDCTL_ENABLE) && !was) {
        uint8_t *va;
        uint32_t srrctl = LD(&q->srrctl), len = LD(&q->len);
        if (!ring_check(p, "RXDCTL", "RD", qi, LD(&q->bal), LD(&q->bah), len, &va)) {
            v &= ~RXDCTL_ENABLE;
        } else if (SRRCTL_DESCTYPE(srrctl) != 1) {
            ERR(p, "RXDCTL[%u].ENABLE set while SRRCTL[%u].DESCTYPE=%u: only advanced one-buffer (001b) is modelled",
                qi, qi, SRRCTL_DESCTYPE(srrctl));
            v &= ~RXDCTL_ENABLE;
        } else if ((srrctl & p->v->srrctl_bsizepkt) == 0) {
            ERR(p, "RXDCTL[%u].ENABLE set while SRRCTL[%u].BSIZEPACKET is 0", qi, qi);
            v &= ~RXDCTL_ENABLE;
        } else {
            q->ring = va;
            q->size = len / 16;
            q->bsize = (srrctl & p->v->srrctl_bsizepkt) * 1024;
            q->drop_en = !!(srrctl & p->v->srrctl_drop_en);
            q->stat = p->v->rx_stat(p, qi);
            ST(&q->faulted, 0);
            q->bme_reported = 0;
            if (LD(&q->head) >= q->size || LD(&q->tail) >= q->size) {
                ERR(p, "RXDCTL[%u].ENABLE set while RDH/RDT[%u] lie beyond the ring", qi, qi);
                v &= ~RXDCTL_ENABLE;
            } else {
                rx_lock(p);
                __atomic_store_n(&q->enabled, 1, __ATOMIC_SEQ_CST);
                rx_unlock(p);
                __atomic_fetch_or(&p->rxmask, 1ull << qi, __ATOMIC_SEQ_CST);
                EVT(p, "RXDCTL[%u].ENABLE", qi);
            }
        }
    } else if (!(v & RXDCTL_ENABLE) && was) {
        ring_stop(p, q, &p->rxmask, qi);
        quiesce(p->sim);
        rx_lock(p);
        rx_unlock(p);
    }
    ST(&q->ctl, v);
}

static void txdctl_write(struct ixsim_port *p, unsigned qi, uint32_t v)
{
    struct ring *q = &p->tx[qi];
    int was = LD(&q->enabled);
    if ((v & TXDCTL_ENABLE) && !was) {
        uint8_t *va;
        uint32_t len = LD(&q->len);
        if (p->v->te_before_queues && !(LD(&p->te))) {
            /* 82599 4.6.8: DMATXCTL.TE before the first TXDCTL.ENABLE */
            ERR(p, "TXDCTL[%u].ENABLE set while DMATXCTL.TE is 0", qi);
            v &= ~TXDCTL_ENABLE;
        } else if (!ring_check(p, "TXDCTL", "TD", qi, LD(&q->bal), LD(&q->bah), len, &va)) {
            v &= ~TXDCTL_ENABLE;
        } else {
            q->ring = va;
            q->size = len / 16;
            q->stat = p->v->tx_stat(p, qi);
            ST(&q->faulted, 0);
            q->bme_reported = 0;
            q->paylen_reported = 0;
            if (LD(&q->head) >= q->size || LD(&q->tail) >= q->size) {
                ERR(p, "TXDCTL[%u].ENABLE set while TDH/TDT[%u] lie beyond the ring", qi, qi);
                v &= ~TXDCTL_ENABLE;
            } else {
                __atomic_store_n(&q->enabled, 1, __ATOMIC_SEQ_CST);
                __atomic_fetch_or(&p->txmask, 1ull << qi, __ATOMIC_SEQ_CST);
                EVT(p, "TXDCTL[%u].ENABLE", qi);
            }
        }
    } else if (!(v & TXDCTL_ENABLE) && was) {
        ring_stop(p, q, &p->txmask, qi);
        quiesce(p->sim);
    }
    ST(&q->ctl, v);
}

static int rdrxctl_ok(struct ixsim_port *p, uint32_t v, const char *why)
{
    /* 8.2.3.8.8 RDRXCTL: RSCFRSTSIZE must be 0, RSCACKC and FCOE_WRFIX must be 1,
     * CRCSTRIP must match HLREG0.RXCRCSTRP. */
    if (v & RDRXCTL_RSCFRSTSIZE) {
        ERR(p, "%s: RDRXCTL.RSCFRSTSIZE=0x%x must be 0", why, (v & RDRXCTL_RSCFRSTSIZE) >> 17);
        return 0;
    }
    if (!(v & RDRXCTL_RSCACKC)) {
        ERR(p, "%s: RDRXCTL.RSCACKC must be 1", why);
        return 0;
    }
    if (!(v & RDRXCTL_FCOE_WRFIX)) {
        ERR(p, "%s: RDRXCTL.FCOE_WRFIX must be 1", why);
        return 0;
    }
    if (!!(v & RDRXCTL_CRCSTRIP) != !!(reg(p, R_HLREG0) & HLREG0_RXCRCSTRP)) {
        ERR(p, "%s: RDRXCTL.CRCSTRIP=%u differs from HLREG0.RXCRCSTRP=%u", why,
            !!(v & RDRXCTL_CRCSTRIP), !!(reg(p, R_HLREG0) & HLREG0_RXCRCSTRP));
        return 0;
    }
    return 1;
}

static void tail_write(struct ixsim_port *p, struct ring *q, const char *name, unsigned qi, uint32_t v)
{
    uint32_t size = LD(&q->enabled) ? q->size : LD(&q->len) / 16;
    if (v != 0 && v >= size) {
        ERR(p, "%s[%u]=%u written beyond the ring of %u descriptors (ignored)", name, qi, v, size);
        return;
    }
    STR(&q->tail, v);
}

static void head_write(struct ixsim_port *p, struct ring *q, const char *name, unsigned qi, uint32_t v)
{
    if (LD(&q->enabled)) {
        ERR(p, "%s[%u] written while the queue is enabled (ignored)", name, qi);
        return;
    }
    if (v & ~0xFFFFu) {
        ERR(p, "%s[%u]=0x%x has reserved bits 31:16 set (ignored)", name, qi, v);
        return;
    }
    ST(&q->head, v);
}

/* ---- BAR0: what both register maps share ------------------------------------ */
static int bad_offset(struct ixsim_port *p, uint32_t off, const char *what)
{
    if (off >= IXSIM_BAR0_SIZE || (off & 3)) {
        ERR(p, "%s at BAR0 offset 0x%x: outside the 128 KiB BAR or not 32-bit aligned", what, off);
        return 1;
    }
    return 0;
}

static uint32_t stat_read64(uint64_t *ctr, uint32_t *hi, int high)
{
    if (high) {
        uint32_t v = *hi;
        *hi = 0;
        return v;
    }
    uint64_t v = XCHG0(ctr);
    *hi = (uint32_t)(v >> 32);
    return (uint32_t)v;
}

static inline uint32_t sat32(uint64_t v) { return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)v; }

/* Autonegotiation (re)started now: when the link will be up. */
static int64_t an_done_at(struct ixsim_port *p, int64_t now)
{
    int64_t d = LD(&p->link_delay_us);
    return d < 0 ? NEVER : now + d * 1000;
}

/* Rx on or off (82599 RXCTRL.RXEN, 82576 RCTL.EN); when this turns it off,
 * no frame is being received any more. */
static void set_rxen(struct ixsim_port *p, uint32_t on, const char *event)
{
    uint32_t was = LD(&p->rxen);
    ST(&p->rxen, on);
    if (on && !was)
        EVT(p, "%s", event);
    if (was && !on) {
        rx_lock(p);
        rx_unlock(p);
    }
}

/* Tx on or off (82599 DMATXCTL.TE, 82576 TCTL.EN). */
static void set_te(struct ixsim_port *p, uint32_t on, const char *event)
{
    uint32_t was = LD(&p->te);
    ST(&p->te, on);
    if (on && !was)
        EVT(p, "%s", event);
}

/* The address filter's switches, as the 82599's FCTRL bits UPE, MPE, BAM
 * (the 82576's are RCTL's); upe names the UPE bit in the events. */
static void set_filter(struct ixsim_port *p, uint32_t fctrl, const char *upe)
{
    uint32_t old = LD(&p->fctrl);
    ST(&p->fctrl, fctrl);
    if ((fctrl ^ old) & FCTRL_UPE)
        EVT(p, "%s=%u", upe, !!(fctrl & FCTRL_UPE));
}

/* A queue's registers: the ring, and the register's offset in the queue's
 * block; off is where an unmodelled register of the block is stored (one
 * place for a register that has two addresses). */
static int queue_reg(struct ixsim_port *p, struct qreg *r, int rx, unsigned qi, uint32_t slot, uint32_t off)
{
    r->rx = rx;
    r->qi = qi;
    r->slot = slot;
    r->off = off;
    r->q = rx ? &p->rx[qi] : &p->tx[qi];
    return 1;
}

static uint32_t queue_read(struct ixsim_port *p, const struct qreg *r)
{
    struct ring *q = r->q;
    switch (r->slot) {
    case Q_BAL: return LD(&q->bal);
    case Q_BAH: return LD(&q->bah);
    case Q_LEN: return LD(&q->len);
    case Q_H: return LDA(&q->head);
    case Q_T: return LD(&q->tail);
    case Q_CTL: return LD(&q->ctl);
    }
    if (r->rx && r->slot == p->v->srrctl_slot)
        return LD(&q->srrctl);
    return p->v->queue_stat_read(p, r);
}

/* Under p->lock. The tails do not come here: ixsim_write32 takes them. */
static void queue_write(struct ixsim_port *p, const struct qreg *r, uint32_t v)
{
    struct ring *q = r->q;
    switch (r->slot) {
    case Q_BAL: ST(&q->bal, v); return;
    case Q_BAH: ST(&q->bah, v); return;
    case Q_LEN: ST(&q->len, v); return;
    case Q_H: head_write(p, q, r->rx ? "RDH" : "TDH", r->qi, v); return;
    case Q_CTL:
        if (r->rx)
            rxdctl_write(p, r->qi, v);
        else
            txdctl_write(p, r->qi, v);
        return;
    }
    if (r->rx && r->slot == p->v->srrctl_slot)
        ST(&q->srrctl, v);
    else
        reg_set(p, r->off, v);
}

/* The EEPROM auto-read (82599 EEC.ARD, 82576 EECD.AUTO_RD: the same bits)
 * is done once the reset is. */
static uint32_t eeprom_status(struct ixsim_port *p, int in_reset, const char *event)
{
    if (!in_reset && __atomic_exchange_n(&p->ev_ard, 0, __ATOMIC_RELAXED))
        EVT(p, "%s", event);
    return EEC_PRES | (in_reset ? 0 : EEC_ARD);
}

/* Statistics at the same offsets on both (82599 8.2.3.23, 82576 8.19). */
static int common_stat_read(struct ixsim_port *p, uint32_t off, uint32_t *v)
{
    switch (off) {
    case R_GPRC: *v = sat32(XCHG0(&p->st.gprc)); return 1;
    case R_BPRC: *v = sat32(XCHG0(&p->st.bprc)); return 1;
    case R_MPRC: *v = sat32(XCHG0(&p->st.mprc)); return 1;
    case R_GPTC: *v = sat32(XCHG0(&p->st.gptc)); return 1;
    case R_RUC: *v = sat32(XCHG0(&p->st.ruc)); return 1;
    case R_ROC: *v = sat32(XCHG0(&p->st.roc)); return 1;
    case R_TPR: *v = sat32(XCHG0(&p->st.tpr)); return 1;
    case R_TPT: *v = sat32(XCHG0(&p->st.tpt)); return 1;
    case R_GORCL: *v = stat_read64(&p->st.gorc, &p->gorc_hi, 0); return 1;
    case R_GORCH: *v = stat_read64(&p->st.gorc, &p->gorc_hi, 1); return 1;
    case R_GOTCL: *v = stat_read64(&p->st.gotc, &p->gotc_hi, 0); return 1;
    case R_GOTCH: *v = stat_read64(&p->st.gotc, &p->gotc_hi, 1); return 1;
    }
    return 0;
}

/* EICR, EICS, EIMS, EIMC, EIAC, EIAM: one bit per MSI-X vector (l->vectors),
 * the rest other causes, kept as written but never raised (l->other), or
 * reserved (l->reserved). The same on both, at different offsets and widths
 * (82599 8.2.3.5, 82576 8.8). Returns 0 if off is none of them. */
static int eirq_read(struct ixsim_port *p, uint32_t off, uint32_t *v)
{
    const struct eirq_layout *l = &p->v->eirq;
    if (off == l->eicr) {
        pthread_mutex_lock(&p->irq_lock);
        *v = (uint32_t)(p->eicr & l->vectors) | (reg(p, off) & ~l->vectors);
        if (!(p->gpie & GPIE_MSIX_MODE)) {     /* read to clear outside MSI-X mode */
            p->eicr &= ~(uint64_t)l->vectors;
            p->pend &= ~(uint64_t)l->vectors;
            reg_set(p, off, 0);
        }
        pthread_mutex_unlock(&p->irq_lock);
    } else if (off == l->eims || off == l->eiam) {
        pthread_mutex_lock(&p->irq_lock);
        uint64_t m = off == l->eims ? p->eims : p->eiam;
        pthread_mutex_unlock(&p->irq_lock);
        *v = (uint32_t)(m & l->vectors) | (reg(p, off) & l->other);
    } else if (off == l->eimc || off == l->eics) {
        *v = 0;     /* write-only */
    } else {
        return 0;
    }
    return 1;
}

static void eirq_reserved(struct ixsim_port *p, const char *name, uint32_t v)
{
    const struct eirq_layout *l = &p->v->eirq;
    if (v & l->reserved)
        ERR(p, "%s %s reserved: write 0x%08x (mask all with 0x%08x)", name, l->reserved_name, v,
            l->vectors | l->other);
}

static int eirq_write(struct ixsim_port *p, uint32_t off, uint32_t v, int64_t now)
{
    const struct eirq_layout *l = &p->v->eirq;
    uint32_t vec = v & l->vectors, other = v & l->other;
    if (off == l->eims) {
        eirq_reserved(p, "EIMS", v);
        __atomic_fetch_or(&p->regs[off >> 2], other, __ATOMIC_RELAXED);
        if (vec)
            irq_unmask(p, vec, now, "EIMS");
    } else if (off == l->eimc) {
        eirq_reserved(p, "EIMC", v);
        __atomic_fetch_and(&p->regs[l->eims >> 2], ~other, __ATOMIC_RELAXED);
        irq_mask(p, vec);
    } else if (off == l->eicr) {    /* write 1 to clear */
        __atomic_fetch_and(&p->regs[off >> 2], ~(v & ~l->vectors), __ATOMIC_RELAXED);
        pthread_mutex_lock(&p->irq_lock);
        p->eicr &= ~(uint64_t)vec;
        p->pend &= ~(uint64_t)vec;
        pthread_mutex_unlock(&p->irq_lock);
    } else if (off == l->eics) {    /* software-raised causes */
        __atomic_fetch_or(&p->regs[l->eicr >> 2], other, __ATOMIC_RELAXED);
        if (vec)
            irq_raise(p, vec, now);
    } else if (off == l->eiac) {
        reg_set(p, off, vec);
        pthread_mutex_lock(&p->irq_lock);
        p->eiac = vec;
        pthread_mutex_unlock(&p->irq_lock);
    } else if (off == l->eiam) {
        reg_set(p, off, other);
        pthread_mutex_lock(&p->irq_lock);
        p->eiam = (p->eiam & ~(uint64_t)l->vectors) | vec;
        pthread_mutex_unlock(&p->irq_lock);
    } else {
        return 0;
    }
    return 1;
}

uint32_t ixsim_read32(void *ctx, uint32_t off)
{
    struct ixsim_port *p = ctx;
    if (bad_offset(p, off, "read"))
        return 0xFFFFFFFF;
    struct qreg r;
    if (p->v->queue_at(p, off, &r))
        return queue_read(p, &r);
    int64_t now = now_ns();
    int in_reset = now < LD(&p->rst_until);
    uint32_t v;
    if (off == R_CTRL)      /* CTRL.RST (bit 26 on both) reads 1 until the reset is done */
        return reg(p, R_CTRL) | (in_reset ? CTRL_RST : 0);
    if (common_stat_read(p, off, &v) || eirq_read(p, off, &v))
        return v;
    return p->v->read(p, off, now, in_reset);
}

/* Under p->lock: a reset, or what the variant's register map makes of the write. */
static void write_locked(struct ixsim_port *p, uint32_t off, uint32_t v, int64_t now)
{
    if (off == R_CTRL && (v & p->v->ctrl_rst)) {
        /* 82599 4.2.1.6, 82576 4.3.1 software reset: registers to defaults, RST self-clears */
        EVT(p, "CTRL.RST");
        port_reset(p, now);
        ST(&p->rst_until, now + RESET_NS);
        reg_set(p, R_CTRL, v & ~p->v->ctrl_rst);
        return;
    }
    if (now < LD(&p->rst_until)) {
        ERR(p, "write of 0x%x to BAR0 offset 0x%x while CTRL.RST is in progress (ignored)", v, off);
        return;
    }
    struct qreg r;
    if (p->v->queue_at(p, off, &r))
        queue_write(p, &r, v);
    else if (!eirq_write(p, off, v, now))
        p->v->write(p, off, v, now);
}

void ixsim_write32(void *ctx, uint32_t off, uint32_t v)
{
    struct ixsim_port *p = ctx;
    if (bad_offset(p, off, "write"))
        return;
    struct qreg r;
    if (p->v->queue_at(p, off, &r) && r.slot == Q_T) {   /* tails: the hot path, no lock */
        tail_write(p, r.q, r.rx ? "RDT" : "TDT", r.qi, v);
        return;
    }
    pthread_mutex_lock(&p->lock);
    write_locked(p, off, v, now_ns());
    pthread_mutex_unlock(&p->lock);
}

const struct ixy_reg_ops *ixsim_reg_ops(struct ixsim_port *port)
{
    return &port->ops;
}

/* ---- the 82599 register map (8.2.3) ------------------------------------------ */
static int ixgbe_queue_at(struct ixsim_port *p, uint32_t off, struct qreg *r)
{
    if (off >= R_RDBAL(0) && off < R_RDBAL(IXSIM_NUM_QUEUES))
        return queue_reg(p, r, 1, (off - R_RDBAL(0)) / 0x40, (off - R_RDBAL(0)) % 0x40, off);
    if (off >= R_TDBAL(0) && off < R_TDBAL(IXSIM_NUM_QUEUES))
        return queue_reg(p, r, 0, (off - R_TDBAL(0)) / 0x40, (off - R_TDBAL(0)) % 0x40, off);
    return 0;
}

/* QPRC/QBRC of counters 0..15 in the rx blocks of queues 0..15; QPRDC
 * (8.2.3.23.74) of counters 0..15 at offset 0x30 of the blocks of 16..31. */
static uint32_t ixgbe_queue_stat_read(struct ixsim_port *p, const struct qreg *r)
{
    unsigned qi = r->qi;
    if (r->rx && r->slot == 0x30 && qi >= NSTAT && qi < 2 * NSTAT)
        return sat32(XCHG0(&p->st.qprdc[qi - NSTAT]));
    if (r->rx && qi < NSTAT) {
        switch (r->slot) {
        case 0x30: return sat32(XCHG0(&p->st.qprc[qi]));
        case 0x34: return stat_read64(&p->st.qbrc[qi], &p->qbrc_hi[qi], 0);
        case 0x38: return stat_read64(&p->st.qbrc[qi], &p->qbrc_hi[qi], 1);
        }
    }
    return reg(p, r->off);
}

/* RQSMR/TQSM: queue -> one of the 16 statistics counters */
static uint32_t stat_index(struct ixsim_port *p, uint32_t base, unsigned qi)
{
    return (reg(p, base + 4 * (qi / 4)) >> (8 * (qi % 4))) & 0xF;
}

static uint32_t ixgbe_rx_stat(struct ixsim_port *p, unsigned qi) { return stat_index(p, R_RQSMR(0), qi); }
static uint32_t ixgbe_tx_stat(struct ixsim_port *p, unsigned qi) { return stat_index(p, R_TQSM(0), qi); }

static uint32_t ixgbe_read(struct ixsim_port *p, uint32_t off, int64_t now, int in_reset)
{
    if (off >= R_SRRCTL_ALIAS(0) && off < R_SRRCTL_ALIAS(16))
        return LD(&p->rx[(off - R_SRRCTL_ALIAS(0)) / 4].srrctl);
    if (off >= R_RXMPC(0) && off < R_RXMPC(8))
        return sat32(XCHG0(&p->st.rxmpc[(off - R_RXMPC(0)) / 4]));
    if (off >= R_QPTC(0) && off < R_QPTC(NSTAT))
        return sat32(XCHG0(&p->st.qptc[(off - R_QPTC(0)) / 4]));
    if (off >= R_QBTC_L(0) && off < R_QBTC_L(NSTAT)) {
        unsigned i = (off - R_QBTC_L(0)) / 8;
        return stat_read64(&p->st.qbtc[i], &p->qbtc_hi[i], off & 4);
    }
    switch (off) {
    case R_STATUS: {
        uint32_t v = (p->index & 1) << 2;                 /* LAN ID */
        if (link_is_up(p, now))
            v |= 1u << 7;                                 /* LinkUp */
        if (LD(&p->pci_command) & 4)
            v |= 1u << 19;                                /* GIO master enable status */
        return v;
    }
    case R_EEC:
        return eeprom_status(p, in_reset, "EEC.ARD");
    case R_RDRXCTL: {
        int done = !in_reset;
        if (done && __atomic_exchange_n(&p->ev_dmaidone, 0, __ATOMIC_RELAXED))
            EVT(p, "RDRXCTL.DMAIDONE");
        return reg(p, R_RDRXCTL) | (done ? RDRXCTL_DMAIDONE : 0);
    }
    case R_LINKS: {
        if (!link_is_up(p, now))
            return 0;
        if (__atomic_exchange_n(&p->ev_link, 0, __ATOMIC_RELAXED))
            EVT(p, "LINKS.LINK_UP");
        return LINKS_UP | LD(&p->link_speed) << 28 | LINKS_STATUS;
    }
    case R_EIMS_EX(0): case R_EIMS_EX(1): case R_EIAM_EX(0): case R_EIAM_EX(1): {
        int ex = off >= R_EIAM_EX(0);
        unsigned n = (off - (ex ? R_EIAM_EX(0) : R_EIMS_EX(0))) / 4;
        pthread_mutex_lock(&p->irq_lock);
        uint64_t m = ex ? p->eiam : p->eims;
        pthread_mutex_unlock(&p->irq_lock);
        return (uint32_t)(m >> (32 * n));
    }
    case R_EIMC_EX(0): case R_EIMC_EX(1): case R_EICS_EX(0): case R_EICS_EX(1):
        return 0;   /* write-only */
    }
    return reg(p, off);
}

/* 8.2.3.5.x IVAR: per byte, bits 5:0 vector, bit 7 valid, bit 6 reserved;
 * bytes: rx 2n, tx 2n, rx 2n+1, tx 2n+1 */
static void ixgbe_ivar_write(struct ixsim_port *p, unsigned n, uint32_t v)
{
    if (v & 0x40404040u) {
        ERR(p, "IVAR[%u]=0x%08x: bits 6, 14, 22 and 30 are reserved", n, v);
        v &= ~0x40404040u;
    }
    reg_set(p, R_IVAR(n), v);
    if (2 * n + 1 < IXSIM_NUM_QUEUES)
        ivar_latch(p, n, v, 2 * n, 2 * n + 1);
}

/* Register defaults after a reset (the rest reads 0). */
static void ixgbe_reset(struct ixsim_port *p)
{
    reg_set(p, R_HLREG0, HLREG0_TXCRCEN | HLREG0_RXCRCSTRP | HLREG0_TXPADEN);
    reg_set(p, R_MAXFRS, 1518u << 16);
    reg_set(p, R_RDRXCTL, 0x8u << 17);        /* RSCFRSTSIZE defaults to nonzero */
    reg_set(p, R_RXPBSIZE(0), 0x200u << 10);   /* 512 KiB */
    reg_set(p, R_TXPBSIZE(0), 0xA0u << 10);    /* 160 KiB */
    reg_set(p, R_DTXMXSZRQ, 0x10);
    ST(&p->hlreg0, reg(p, R_HLREG0));
    ST(&p->maxfrs, reg(p, R_MAXFRS));
}

static void ixgbe_write(struct ixsim_port *p, uint32_t off, uint32_t v, int64_t now)
{
    if (off >= R_SRRCTL_ALIAS(0) && off < R_SRRCTL_ALIAS(16)) {
        ST(&p->rx[(off - R_SRRCTL_ALIAS(0)) / 4].srrctl, v);
        return;
    }
    if (off >= R_EITR_LO(0) && off < R_EITR_LO(24)) {
        eitr_write(p, (off - R_EITR_LO(0)) / 4, off, v, now);
        return;
    }
    if (off >= R_EITR_HI(24) && off < R_EITR_HI(IXSIM_MSIX_VECTORS)) {
        eitr_write(p, 24 + (off - R_EITR_HI(24)) / 4, off, v, now);
        return;
    }
    if (off >= R_IVAR(0) && off < R_IVAR(64)) {
        ixgbe_ivar_write(p, (off - R_IVAR(0)) / 4, v);
        return;
    }
    switch (off) {
    case R_CTRL:
        reg_set(p, off, v);
        return;
    case R_STATUS: case R_EEC: case R_LINKS:
        return;  /* read-only */
    case R_EIMS_EX(0): case R_EIMS_EX(1):
        if (v)
            irq_unmask(p, (uint64_t)v << (32 * ((off - R_EIMS_EX(0)) / 4)), now, "EIMS_EX");
        return;
    case R_EIMC_EX(0): case R_EIMC_EX(1):
        irq_mask(p, (uint64_t)v << (32 * ((off - R_EIMC_EX(0)) / 4)));
        return;
    case R_EICS_EX(0): case R_EICS_EX(1):
        if (v)
            irq_raise(p, (uint64_t)v << (32 * ((off - R_EICS_EX(0)) / 4)), now);
        return;
    case R_EIAM_EX(0): case R_EIAM_EX(1): {
        unsigned sh = 32 * ((off - R_EIAM_EX(0)) / 4);
        pthread_mutex_lock(&p->irq_lock);
        p->eiam = (p->eiam & ~(0xFFFFFFFFull << sh)) | ((uint64_t)v << sh);
        pthread_mutex_unlock(&p->irq_lock);
        return;
    }
    case R_GPIE:
        gpie_write(p, off, v);
        return;
    case R_AUTOC: {
        reg_set(p, off, v & ~AUTOC_RESTART_AN);
        if (v & AUTOC_RESTART_AN) {
            uint32_t lms = AUTOC_LMS(v);
            EVT(p, "AUTOC.RESTART_AN");
            /* LMS 000/010/110: 1 GbE modes; the rest: 10 GbE */
            ST(&p->link_speed, (lms == 0 || lms == 2 || lms == 6) ? 2u : 3u);
            ST(&p->link_up_at, an_done_at(p, now));
            ST(&p->ev_link, 1);
        }
        return;
    }
    case R_HLREG0:
        reg_set(p, off, v);
        ST(&p->hlreg0, v);
        return;
    case R_MAXFRS:
        reg_set(p, off, v);
        ST(&p->maxfrs, v);
        return;
    case R_FCTRL: {
        uint32_t old = reg(p, R_FCTRL);
        if (v != old && LD(&p->rxen)) {
            /* 8.2.3.7.1: FCTRL may change only while RXCTRL.RXEN is 0 */
            ERR(p, "FCTRL changed from 0x%x to 0x%x while RXCTRL.RXEN is 1 (ignored)", old, v);
            return;
        }
        reg_set(p, off, v);
        set_filter(p, v, "FCTRL.UPE");
        return;
    }
    case R_RDRXCTL:
        v &= ~RDRXCTL_DMAIDONE;   /* read-only status */
        if (LD(&p->rxen) && !rdrxctl_ok(p, v, "RDRXCTL written while RXCTRL.RXEN is 1"))
            return;
        reg_set(p, off, v);
        return;
    case R_RXCTRL:
        if ((v & RXCTRL_RXEN) && !LD(&p->rxen) && !rdrxctl_ok(p, reg(p, R_RDRXCTL), "RXCTRL.RXEN set (refused)"))
            v &= ~RXCTRL_RXEN;
        reg_set(p, off, v);
        set_rxen(p, v & RXCTRL_RXEN, "RXCTRL.RXEN");
        return;
    case R_DTXMXSZRQ:
        if (v & 0xF000u) {
            ERR(p, "DTXMXSZRQ bits 15:12 are reserved: write 0x%x (use at most 0xFFF)", v);
            v &= ~0xF000u;
        }
        reg_set(p, off, v);
        return;
    case R_DMATXCTL:
        reg_set(p, off, v);
        set_te(p, v & DMATXCTL_TE, "DMATXCTL.TE");
        return;
    case R_RAL(0): case R_RAH(0):
        reg_set(p, off, v);
        set_own_mac(p);
        return;
    }
    reg_set(p, off, v);
}


/* ---- the 82576 register map (82576 datasheet, chapter 8) -------------------------- */
#define I_STATUS      0x00008
#define   I_STATUS_FD         (1u << 0)
#define   I_STATUS_LU         (1u << 1)
#define   I_STATUS_SPEED_1000 (2u << 6)
#define   I_STATUS_GIO_MASTER (1u << 19)
#define I_CTRL_SLU    (1u << 6)
#define I_EECD        0x00010
#define I_MDIC        0x00020
#define   MDIC_DATA       0xFFFFu
#define   MDIC_REGADD(v)  (((v) >> 16) & 0x1Fu)
#define   MDIC_PHYADD(v)  (((v) >> 21) & 0x1Fu)
#define   MDIC_OP(v)      (((v) >> 26) & 0x3u)      /* 01b write, 10b read */
#define   MDIC_READY      (1u << 28)
#define   MDIC_ERROR      (1u << 30)
#define I_RCTL        0x00100
#define   RCTL_EN     (1u << 1)
#define   RCTL_UPE    (1u << 3)
#define   RCTL_MPE    (1u << 4)
#define   RCTL_LPE    (1u << 5)
#define   RCTL_BAM    (1u << 15)
#define   RCTL_SECRC  (1u << 26)
#define I_TCTL        0x00400
#define   TCTL_EN     (1u << 1)
#define   TCTL_PSP    (1u << 3)
#define I_GPIE        0x01514
#define I_EICS        0x01520
#define I_EIMS        0x01524
#define I_EIMC        0x01528
#define I_EIAC        0x0152C
#define I_EIAM        0x01530
#define I_EICR        0x01580
#define I_EITR(n)     (0x01680 + 4 * (n))      /* 25 */
#define I_IVAR(n)     (0x01700 + 4 * (n))      /* 8 */
#define I_MPC         0x04010
#define I_TORL        0x040C0
#define I_TORH        0x040C4
#define I_TOTL        0x040C8
#define I_TOTH        0x040CC
#define I_RLPML       0x05004
#define I_RAL(n)      (0x05400 + 8 * (n))
#define I_RAH(n)      (0x05404 + 8 * (n))
#define I_RXQ(n)      (0x0C000 + 0x40 * (n))   /* 16 queue blocks: RDBAL ... RXDCTL, RQDPC */
#define I_TXQ(n)      (0x0E000 + 0x40 * (n))
#define I_RXQ_82575(n) (0x02800 + 0x100 * (n)) /* queues 0..3 also answer here */
#define I_TXQ_82575(n) (0x03800 + 0x100 * (n))
#define I_NUM_QUEUES  16
#define I_MSIX_VECTORS 25
#define I_SRRCTL_SLOT 0x0C
#define   I_SRRCTL_BSIZEPKT 0x7Fu
#define   I_SRRCTL_DROP_EN  (1u << 31)
#define I_RQDPC_SLOT  0x30

/* the internal copper PHY, through MDIC (IEEE 802.3 clause 22 registers) */
#define PHY_ADDR      1
#define PHY_BMCR      0
#define   BMCR_RESET       (1u << 15)
#define   BMCR_AN_ENABLE   (1u << 12)
#define   BMCR_POWER_DOWN  (1u << 11)
#define   BMCR_AN_RESTART  (1u << 9)
#define   BMCR_DEFAULT     0x1140u   /* autonegotiation on, full duplex, 1000 Mb/s */
#define PHY_BMSR      1
#define   BMSR_CAPS        0x7949u   /* 10/100 half/full, extended status, can autonegotiate */
#define   BMSR_AN_DONE     (1u << 5)
#define   BMSR_LINK        (1u << 2)
#define PHY_ID1       2
#define PHY_ID2       3
#define   PHY_ID           0x02A80390u   /* IGP3, as Linux's igb identifies the 82576's PHY */

static int igb_block(struct ixsim_port *p, struct qreg *r, int rx, uint32_t off, uint32_t base,
                     uint32_t stride, unsigned n)
{
    if (off < base || off >= base + stride * n || (off - base) % stride >= 0x40)
        return 0;
    unsigned qi = (off - base) / stride, slot = (off - base) % stride;
    return queue_reg(p, r, rx, qi, slot, (rx ? I_RXQ(qi) : I_TXQ(qi)) + slot);
}

static int igb_queue_at(struct ixsim_port *p, uint32_t off, struct qreg *r)
{
    return igb_block(p, r, 1, off, I_RXQ_82575(0), 0x100, 4) || igb_block(p, r, 0, off, I_TXQ_82575(0), 0x100, 4) ||
           igb_block(p, r, 1, off, I_RXQ(0), 0x40, I_NUM_QUEUES) || igb_block(p, r, 0, off, I_TXQ(0), 0x40, I_NUM_QUEUES);
}

/* RQDPC (8.10.x): frames queue n dropped for want of a descriptor with SRRCTL.DROP_EN */
static uint32_t igb_queue_stat_read(struct ixsim_port *p, const struct qreg *r)
{
    if (r->rx && r->slot == I_RQDPC_SLOT)
        return sat32(XCHG0(&p->st.qprdc[r->qi]));
    return reg(p, r->off);
}

static uint32_t igb_rx_stat(struct ixsim_port *p, unsigned qi) { (void)p; return qi; }
static uint32_t igb_tx_stat(struct ixsim_port *p, unsigned qi) { (void)p; (void)qi; return 0; }

/* STATUS.LU: the PHY's link, passed on by the MAC while CTRL.SLU is set. */
static void igb_link_update(struct ixsim_port *p)
{
    int64_t at = (reg(p, R_CTRL) & I_CTRL_SLU) ? LD(&p->phy_an_at) : NEVER;
    if (at != NEVER && at != LD(&p->link_up_at))
        ST(&p->ev_link, 1);
    ST(&p->link_up_at, at);
}

/* The engines' view of RCTL/TCTL, in the 82599's terms (HLREG0, MAXFRS):
 * CRC strip (RCTL.SECRC), long packets (RCTL.LPE, up to RLPML), padding
 * (TCTL.PSP); the CRC is inserted per packet (TXD IFCS) with no global switch. */
static void igb_sync_config(struct ixsim_port *p)
{
    uint32_t rctl = reg(p, I_RCTL), tctl = reg(p, I_TCTL);
    ST(&p->hlreg0, HLREG0_TXCRCEN | (rctl & RCTL_SECRC ? HLREG0_RXCRCSTRP : 0) |
                   (rctl & RCTL_LPE ? HLREG0_JUMBOEN : 0) | (tctl & TCTL_PSP ? HLREG0_TXPADEN : 0));
    ST(&p->maxfrs, (reg(p, I_RLPML) & 0x3FFFu) << 16);
}

static uint32_t phy_read(struct ixsim_port *p, unsigned r, int64_t now)
{
    if (r == PHY_BMSR)
        return BMSR_CAPS | (now >= LD(&p->phy_an_at) ? BMSR_AN_DONE | BMSR_LINK : 0);
    return p->phy[r];
}

/* BMCR: a reset or an autonegotiation restart (or a power-up) starts
 * autonegotiation; powered down or with autonegotiation off the link stays
 * down (the model's link partner only autonegotiates). */
static void phy_write(struct ixsim_port *p, unsigned r, uint16_t v, int64_t now)
{
    if (r == PHY_BMSR || r == PHY_ID1 || r == PHY_ID2)
        return;     /* read-only */
    if (r != PHY_BMCR) {
        p->phy[r] = v;
        return;
    }
    if (v & BMCR_RESET)
        v = BMCR_DEFAULT | BMCR_AN_RESTART;
    int restart = (v & BMCR_AN_RESTART) || ((p->phy[PHY_BMCR] & BMCR_POWER_DOWN) && !(v & BMCR_POWER_DOWN));
    p->phy[PHY_BMCR] = v & ~(BMCR_RESET | BMCR_AN_RESTART);     /* self-clearing */
    if (!(v & BMCR_AN_ENABLE) || (v & BMCR_POWER_DOWN)) {
        ST(&p->phy_an_at, NEVER);
    } else if (restart) {
        EVT(p, "BMCR.RESTART_AN");
        ST(&p->phy_an_at, an_done_at(p, now));
    }
    igb_link_update(p);
}

/* 8.2.4 MDIC: one PHY register read or written; the model completes it at once (READY). */
static void mdic_write(struct ixsim_port *p, uint32_t v, int64_t now)
{
    uint32_t op = MDIC_OP(v), data = v & MDIC_DATA, r = MDIC_REGADD(v);
    uint32_t done = v & ~(MDIC_DATA | MDIC_READY | MDIC_ERROR);
    if (MDIC_PHYADD(v) != PHY_ADDR || op == 0 || op == 3) {
        ERR(p, "MDIC=0x%08x: %s (MDIC.E set)", v,
            MDIC_PHYADD(v) != PHY_ADDR ? "PHYADD is not 1, the internal PHY" : "OP 00b and 11b are reserved");
        reg_set(p, I_MDIC, done | MDIC_READY | MDIC_ERROR);
        return;
    }
    if (op == 2)
        data = phy_read(p, r, now);
    else
        phy_write(p, r, (uint16_t)data, now);
    reg_set(p, I_MDIC, done | data | MDIC_READY);
}

/* 8.10.1 RCTL. The 82576 datasheet sets no condition on changing the filter
 * bits (UPE, MPE, BAM) while RCTL.EN is 1, so the model takes them at once. */
static void rctl_write(struct ixsim_port *p, uint32_t v)
{
    reg_set(p, I_RCTL, v);
    igb_sync_config(p);
    set_filter(p, (v & RCTL_UPE ? FCTRL_UPE : 0) | (v & RCTL_MPE ? FCTRL_MPE : 0) | (v & RCTL_BAM ? FCTRL_BAM : 0),
               "RCTL.UPE");
    set_rxen(p, !!(v & RCTL_EN), "RCTL.EN");
}

/* 8.8.15 IVAR: bytes rx n, tx n, rx n+8, tx n+8; each bits 4:0 vector,
 * bit 7 valid, bits 6:5 reserved */
static void igb_ivar_write(struct ixsim_port *p, unsigned n, uint32_t v)
{
    if (v & 0x60606060u) {
        ERR(p, "IVAR[%u]=0x%08x: bits 6:5 of each byte are reserved", n, v);
        v &= ~0x60606060u;
    }
    reg_set(p, I_IVAR(n), v);
    ivar_latch(p, n, v, n, n + 8);
}

static uint32_t igb_read(struct ixsim_port *p, uint32_t off, int64_t now, int in_reset)
{
    switch (off) {
    case I_STATUS: {
        uint32_t v = (p->index & 1) << 2;                  /* LAN ID */
        if (link_is_up(p, now)) {
            v |= I_STATUS_LU | I_STATUS_FD | I_STATUS_SPEED_1000;
            if (__atomic_exchange_n(&p->ev_link, 0, __ATOMIC_RELAXED))
                EVT(p, "STATUS.LU");
        }
        if (LD(&p->pci_command) & 4)
            v |= I_STATUS_GIO_MASTER;
        return v;
    }
    case I_EECD: return eeprom_status(p, in_reset, "EECD.AUTO_RD");
    case I_MPC: return sat32(XCHG0(&p->st.rxmpc[0]));
    case I_TORL: return stat_read64(&p->st.tor, &p->tor_hi, 0);
    case I_TORH: return stat_read64(&p->st.tor, &p->tor_hi, 1);
    case I_TOTL: return stat_read64(&p->st.tot, &p->tot_hi, 0);
    case I_TOTH: return stat_read64(&p->st.tot, &p->tot_hi, 1);
    }
    return reg(p, off);
}

static void igb_write(struct ixsim_port *p, uint32_t off, uint32_t v, int64_t now)
{
    if (off >= I_EITR(0) && off < I_EITR(I_MSIX_VECTORS)) {
        eitr_write(p, (off - I_EITR(0)) / 4, off, v, now);
        return;
    }
    if (off >= I_IVAR(0) && off < I_IVAR(8)) {
        igb_ivar_write(p, (off - I_IVAR(0)) / 4, v);
        return;
    }
    switch (off) {
    case R_CTRL:
        reg_set(p, off, v);
        igb_link_update(p);
        return;
    case I_STATUS: case I_EECD:
        return;     /* read-only */
    case I_MDIC:
        mdic_write(p, v, now);
        return;
    case I_RCTL:
        rctl_write(p, v);
        return;
    case I_TCTL:
        reg_set(p, off, v);
        igb_sync_config(p);
        set_te(p, !!(v & TCTL_EN), "TCTL.EN");
        return;
    case I_RLPML:
        reg_set(p, off, v);
        igb_sync_config(p);
        return;
    case I_GPIE:
        gpie_write(p, off, v);
        return;
    case I_RAL(0): case I_RAH(0):
        reg_set(p, off, v);
        set_own_mac(p);
        return;
    }
    reg_set(p, off, v);
}

/* Register defaults after a reset (the rest reads 0). CTRL.SLU, which the
 * EEPROM may set, is 0: the driver sets it. CTRL.RST leaves the PHY as it is. */
static void igb_reset(struct ixsim_port *p)
{
    igb_sync_config(p);
}

/* ---- the variants ---------------------------------------------------------------- */
static const struct variant variants[] = {
    [IXSIM_82599] = {
        .device_id = 0x10FB, .nqueues = IXSIM_NUM_QUEUES, .msix_vectors = IXSIM_MSIX_VECTORS,
        .ctrl_rst = CTRL_RST | CTRL_LRST, .ral0 = R_RAL(0),
        .srrctl_slot = 0x14, .srrctl_bsizepkt = SRRCTL_BSIZEPKT_MASK, .srrctl_drop_en = SRRCTL_DROP_EN,
        .te_before_queues = 1,
        /* 8.2.3.5: bits 15:0 vectors 0..15 (the _EX registers reach 16..63), EIAC 16 bits */
        .eirq = {R_EICR, R_EICS, R_EIMS, R_EIMC, R_EIAC, R_EIAM, 0x0000FFFFu, 0x7FFF0000u, 0x80000000u,
                 "bit 31 is", ~0xFFFFull},
        /* 8.2.3.5.12: interval bits 11:3 in 2.048 us units */
        .eitr = {EITR_INTERVAL, 3, 2048, "bits 2:0 are reserved (the interval is bits 11:3)"},
        .queue_at = ixgbe_queue_at, .queue_stat_read = ixgbe_queue_stat_read,
        .rx_stat = ixgbe_rx_stat, .tx_stat = ixgbe_tx_stat,
        .read = ixgbe_read, .write = ixgbe_write, .reset = ixgbe_reset,
    },
    [IXSIM_82576] = {
        .device_id = 0x10C9, .nqueues = I_NUM_QUEUES, .msix_vectors = I_MSIX_VECTORS,
        .ctrl_rst = CTRL_RST, .ral0 = I_RAL(0),
        .srrctl_slot = I_SRRCTL_SLOT, .srrctl_bsizepkt = I_SRRCTL_BSIZEPKT, .srrctl_drop_en = I_SRRCTL_DROP_EN,
        .te_before_queues = 0,
        /* 8.8: bits 24:0 vectors, 30 TCP timer, 31 other causes; 29:25 reserved */
        .eirq = {I_EICR, I_EICS, I_EIMS, I_EIMC, I_EIAC, I_EIAM, 0x01FFFFFFu, 0xC0000000u, 0x3E000000u,
                 "bits 29:25 are", 0},
        /* 8.8.12: interval bits 14:2 in 1 us units */
        .eitr = {0x7FFCu, 2, 1000, "bits 1:0 are reserved (the interval is bits 14:2)"},
        .queue_at = igb_queue_at, .queue_stat_read = igb_queue_stat_read,
        .rx_stat = igb_rx_stat, .tx_stat = igb_tx_stat,
        .read = igb_read, .write = igb_write, .reset = igb_reset,
    },
};

/* ---- PCI configuration space --------------------------------------------------- */
uint32_t ixsim_config_read(struct ixsim_port *p, uint32_t off, unsigned size)
{
    if (!(size == 1 || size == 2 || size == 4) || off % size || off + size > 256) {
        ERR(p, "config read of %u bytes at 0x%x: bad size or alignment", size, off);
        return 0xFFFFFFFF;
    }
    uint8_t cs[256] = {0};
    wr32(cs + 0x00, (uint32_t)p->v->device_id << 16 | 0x8086);   /* device, vendor */
    uint16_t cmd = LD(&p->pci_command);
    memcpy(cs + 0x04, &cmd, 2);
    cs[0x06] = 0;
    wr32(cs + 0x08, 0x02000001);                       /* class 0x020000, revision 1 */
    cs[0x0E] = 0x80;                                    /* header type 0, multi-function */
    wr32(cs + 0x10, 0x0000000C);                       /* BAR0: 64-bit prefetchable memory */
    wr32(cs + 0x2C, 0x00038086);                       /* subsystem */
    cs[0x3D] = 1;                                       /* INTA */
    uint32_t v = 0;
    memcpy(&v, cs + off, size);
    return v;
}

void ixsim_config_write(struct ixsim_port *p, uint32_t off, unsigned size, uint32_t value)
{
    if (!(size == 1 || size == 2 || size == 4) || off % size || off + size > 256) {
        ERR(p, "config write of %u bytes at 0x%x: bad size or alignment", size, off);
        return;
    }
    /* only COMMAND (offset 4, 16 bits) is writable in the model */
    for (unsigned i = 0; i < size; i++) {
        uint32_t o = off + i;
        uint8_t b = (value >> (8 * i)) & 0xFF;
        if (o == 4 || o == 5) {
            uint16_t cmd = LD(&p->pci_command);
            cmd = o == 4 ? (cmd & 0xFF00) | b : (cmd & 0x00FF) | (uint16_t)b << 8;
            cmd &= 0x0547;   /* IO, MEM, BME, parity, SERR, INTx disable */
            __atomic_store_n(&p->pci_command, cmd, __ATOMIC_SEQ_CST);
        }
    }
}

/* ---- life cycle ------------------------------------------------------------------ */
static void port_free(struct ixsim_port *p)
{
    if (!p)
        return;
    free(p->regs);
    free(p->src_frame);
    free(p->scratch);
    for (unsigned v = 0; v < IXSIM_MSIX_VECTORS; v++)
        if (p->efd[v] >= 0)
            close(p->efd[v]);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->log_lock);
    pthread_mutex_destroy(&p->irq_lock);
    free(p);
}

static void map_free(struct sim_dma_map *m)
{
    if (!m)
        return;
    sim_dma_free(m);
    free(m);
}

struct ixsim *ixsim_create(unsigned nports, const uint8_t base_mac[6], enum ixsim_variant variant)
{
    if (nports == 0 || nports > IXSIM_MAX_PORTS || (unsigned)variant >= sizeof(variants) / sizeof(variants[0]))
        return NULL;
    pthread_once(&crc_once, crc_init);
    struct ixsim *sim = calloc(1, sizeof(*sim));
    if (!sim)
        return NULL;
    sim->nports = nports;
    sim->map = calloc(1, sizeof(*sim->map));
    if (!sim->map)
        goto fail;
    pthread_mutex_init(&sim->map_lock, NULL);
    pthread_mutex_init(&sim->life_lock, NULL);
    for (unsigned i = 0; i < nports; i++) {
        struct ixsim_port *p = calloc(1, sizeof(*p));
        if (!p)
            goto fail;
        sim->ports[i] = p;
        p->sim = sim;
        p->v = &variants[variant];
        p->index = i;
        p->ops.read32 = ixsim_read32;
        p->ops.write32 = ixsim_write32;
        p->ops.ctx = p;
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->log_lock, NULL);
        pthread_mutex_init(&p->irq_lock, NULL);
        for (unsigned v = 0; v < IXSIM_MSIX_VECTORS; v++)
            p->efd[v] = -1;
        p->regs = calloc(1, IXSIM_BAR0_SIZE);
        p->src_frame = calloc(1, IXSIM_MAX_FRAME + 8);
        p->scratch = calloc(1, IXSIM_MAX_FRAME + 64);
        if (!p->regs || !p->src_frame || !p->scratch)
            goto fail;
        memcpy(p->mac, base_mac, 6);
        p->mac[5] = (uint8_t)(base_mac[5] + i);
        p->link_delay_us = DEFAULT_LINK_DELAY_US;
        p->pci_command = 0;            /* MEM and BME off until the driver enables them */
        p->src_seq_off = -1;
        int64_t now = now_ns();
        port_reset(p, now);            /* power-up: EEPROM already read, DMA init done */
        p->ev_ard = p->ev_dmaidone = 0;
        /* 82576: the PHY autonegotiated at power-up, before any driver came
         * (the 82599 ignores these) */
        p->phy[PHY_BMCR] = BMCR_DEFAULT;
        p->phy[PHY_ID1] = PHY_ID >> 16;
        p->phy[PHY_ID2] = PHY_ID & 0xFFFF;
        p->phy_an_at = now;
    }
    return sim;
fail:
    for (unsigned i = 0; i < nports; i++)
        port_free(sim->ports[i]);
    map_free(sim->map);
    free(sim);
    return NULL;
}

struct ixsim_port *ixsim_port(struct ixsim *sim, unsigned index)
{
    return index < sim->nports ? sim->ports[index] : NULL;
}


static int ixsim_start(void *ctx)
{
    struct ixsim *sim = ctx;
    int rc = 0;
    pthread_mutex_lock(&sim->life_lock);
    if (!LD(&sim->running)) {
        __atomic_store_n(&sim->running, 1, __ATOMIC_RELEASE);
        rc = pthread_create(&sim->thread, NULL, worker, sim);
        if (rc)
            __atomic_store_n(&sim->running, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&sim->life_lock);
    return rc;
}

static void ixsim_stop(void *ctx)
{
    struct ixsim *sim = ctx;
    pthread_mutex_lock(&sim->life_lock);
    if (LD(&sim->running)) {
        __atomic_store_n(&sim->running, 0, __ATOMIC_RELEASE);
        pthread_join(sim->thread, NULL);
    }
    pthread_mutex_unlock(&sim->life_lock);
}

static void ixsim_set_busy_poll(void *ctx, int busy)
{
    struct ixsim *sim = ctx;
    ST(&sim->busy, !!busy);
}

static void ixsim_destroy(void *ctx)
{
    struct ixsim *sim = ctx;
    if (!sim)
        return;
    ixsim_stop(sim);
    for (unsigned i = 0; i < sim->nports; i++)
        port_free(sim->ports[i]);
    map_free(sim->map);
    pthread_mutex_destroy(&sim->map_lock);
    pthread_mutex_destroy(&sim->life_lock);
    free(sim);
}

/* ---- DMA map ---------------------------------------------------------------------- */
/* The worker reads the map without a lock: a change is made to a copy that
 * then replaces the map as a whole. */
static void map_replace(struct ixsim *sim, struct sim_dma_map *nm)
{
    struct sim_dma_map *old = sim->map;
    __atomic_store_n(&sim->map, nm, __ATOMIC_SEQ_CST);
    quiesce(sim);
    map_free(old);
}

static int ixsim_dma_map(void *ctx, uint64_t dma_addr, void *vaddr, uint64_t len)
{
    struct ixsim *sim = ctx;
    pthread_mutex_lock(&sim->map_lock);
    struct sim_dma_map *nm = sim_dma_copy(sim->map);
    int rc = nm ? sim_dma_add(nm, dma_addr, vaddr, len) : ENOMEM;
    if (rc == 0)
        map_replace(sim, nm);
    else
        map_free(nm);
    pthread_mutex_unlock(&sim->map_lock);
    return rc;
}

/* A queue whose ring is being unmapped faults (an IOMMU fault on real hardware). */
static void rings_unmapped(struct ixsim *sim, uint64_t dma_addr, uint64_t len)
{
    for (unsigned pi = 0; pi < sim->nports; pi++) {
        struct ixsim_port *p = sim->ports[pi];
        for (unsigned qi = 0; qi < p->v->nqueues; qi++) {
            for (int rx = 0; rx < 2; rx++) {
                struct ring *q = rx ? &p->rx[qi] : &p->tx[qi];
                if (!LD(&q->enabled))
                    continue;
                uint64_t base = (uint64_t)LD(&q->bah) << 32 | LD(&q->bal);
                if (base < dma_addr + len && dma_addr < base + (uint64_t)q->size * 16) {
                    ERR(p, "DMA unmap of 0x%llx+%llu while %s[%u] uses it for its ring (queue stopped)",
                        (unsigned long long)dma_addr, (unsigned long long)len, rx ? "RXDCTL" : "TXDCTL", qi);
                    ring_stop(p, q, rx ? &p->rxmask : &p->txmask, qi);
                    ST(&q->faulted, 1);
                    ST(&q->ctl, LD(&q->ctl) & ~RXDCTL_ENABLE);
                }
            }
        }
        rx_lock(p);
        rx_unlock(p);
    }
}

static int ixsim_dma_unmap(void *ctx, uint64_t dma_addr, uint64_t len)
{
    struct ixsim *sim = ctx;
    pthread_mutex_lock(&sim->map_lock);
    struct sim_dma_map *nm = sim_dma_copy(sim->map);
    int rc = nm ? sim_dma_remove(nm, dma_addr, len) : ENOMEM;
    if (rc == 0) {
        rings_unmapped(sim, dma_addr, len);
        map_replace(sim, nm);
    } else {
        map_free(nm);
    }
    pthread_mutex_unlock(&sim->map_lock);
    return rc;
}

const struct sim_model_ops ixsim_ops = {
    .start = ixsim_start, .stop = ixsim_stop, .destroy = ixsim_destroy, .poll = ixsim_poll,
    .set_busy_poll = ixsim_set_busy_poll, .dma_map = ixsim_dma_map, .dma_unmap = ixsim_dma_unmap,
};

/* ---- the wire ------------------------------------------------------------------------ */
static void wire_detach(struct ixsim_port *p)
{
    __atomic_store_n(&p->wire, WIRE_SINK, __ATOMIC_SEQ_CST);
    quiesce(p->sim);
    rx_lock(p);
    rx_unlock(p);
}

void ixsim_wire_sink(struct ixsim_port *p)
{
    struct ixsim_port *peer = LD(&p->peer);
    wire_detach(p);
    ST(&p->peer, NULL);
    if (peer && peer != p && LD(&peer->peer) == p) {
        wire_detach(peer);
        ST(&peer->peer, NULL);
    }
}

void ixsim_wire_pair(struct ixsim_port *a, struct ixsim_port *b)
{
    ixsim_wire_sink(a);
    ixsim_wire_sink(b);
    ST(&a->peer, b);
    ST(&b->peer, a);
    __atomic_store_n(&a->wire, WIRE_PAIR, __ATOMIC_RELEASE);
    __atomic_store_n(&b->wire, WIRE_PAIR, __ATOMIC_RELEASE);
}

void ixsim_wire_source(struct ixsim_port *p, const uint8_t *frame, uint32_t len,
                       uint64_t count, int seq_offset)
{
    ixsim_wire_sink(p);
    if (len > IXSIM_MAX_FRAME)
        len = IXSIM_MAX_FRAME;
    memcpy(p->src_frame, frame, len);
    p->src_len = len;
    p->src_count = count;
    p->src_sent = 0;
    p->src_seq = 0;
    p->src_seq_off = (seq_offset >= 0 && (uint32_t)seq_offset + 8 <= len) ? seq_offset : -1;
    if (seq_offset >= 0 && p->src_seq_off < 0)
        ERR(p, "wire_source: sequence offset %d does not fit a %u-byte frame (no sequence numbers)",
            seq_offset, len);
    __atomic_store_n(&p->wire, WIRE_SOURCE, __ATOMIC_RELEASE);
}

int ixsim_inject(struct ixsim_port *p, const uint8_t *frame, uint32_t len)
{
    if (len > IXSIM_MAX_FRAME)
        return 0;
    struct ixsim *sim = p->sim;
    pthread_mutex_lock(&sim->map_lock);
    const struct sim_dma_ent *hint = NULL;
    rx_lock(p);
    int r = rx_frame(p, sim->map, &hint, frame, len, NULL, now_ns());
    rx_unlock(p);
    pthread_mutex_unlock(&sim->map_lock);
    return r;
}

int ixsim_set_irq_eventfd(struct ixsim_port *p, unsigned vector, int fd)
{
    if (vector >= p->v->msix_vectors)
        return EINVAL;
    int nfd = -1;
    if (fd >= 0) {
        nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);    /* a reference, as VFIO takes one */
        if (nfd < 0)
            return errno;
    }
    pthread_mutex_lock(&p->irq_lock);
    int old = p->efd[vector];
    p->efd[vector] = nfd;
    p->lost_reported &= ~(1ull << vector);
    pthread_mutex_unlock(&p->irq_lock);
    if (old >= 0)
        close(old);
    return 0;
}

unsigned ixsim_msix_vectors(struct ixsim_port *p) { return p->v->msix_vectors; }

uint64_t ixsim_irq_count(struct ixsim_port *p, unsigned vector)
{
    return vector < IXSIM_MSIX_VECTORS ? LD(&p->sent[vector]) : 0;
}

void ixsim_set_link_delay(struct ixsim_port *p, int64_t usec)
{
    ST(&p->link_delay_us, usec);
}

void ixsim_get_wire_stats(struct ixsim_port *p, struct ixsim_wire_stats *out)
{
    out->tx_packets = LD(&p->wst.tx_packets);
    out->tx_bytes = LD(&p->wst.tx_bytes);
    out->rx_packets = LD(&p->wst.rx_packets);
    out->rx_bytes = LD(&p->wst.rx_bytes);
    out->rx_no_desc_drops = LD(&p->wst.rx_no_desc_drops);
    out->rx_filtered = LD(&p->wst.rx_filtered);
}

/* ---- logs -------------------------------------------------------------------------------- */
unsigned ixsim_error_count(struct ixsim_port *p) { return __atomic_load_n(&p->nerr, __ATOMIC_ACQUIRE); }
const char *ixsim_error(struct ixsim_port *p, unsigned i) { return i < ixsim_error_count(p) ? p->errs[i] : NULL; }
void ixsim_clear_errors(struct ixsim_port *p)
{
    pthread_mutex_lock(&p->log_lock);
    __atomic_store_n(&p->nerr, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->log_lock);
}
unsigned ixsim_event_count(struct ixsim_port *p) { return __atomic_load_n(&p->nev, __ATOMIC_ACQUIRE); }
const char *ixsim_event(struct ixsim_port *p, unsigned i) { return i < ixsim_event_count(p) ? p->evts[i] : NULL; }
void ixsim_clear_events(struct ixsim_port *p)
{
    pthread_mutex_lock(&p->log_lock);
    __atomic_store_n(&p->nev, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&p->log_lock);
}
