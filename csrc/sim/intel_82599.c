/* The 82599 register map (82599 datasheet 8.2.3; bare section numbers in
 * comments refer to it): the decode front end that puts the 82599's
 * registers onto the Intel model's shared state (intel_core.h).
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
 */
#define _GNU_SOURCE
#include "intel_core.h"

/* ---- registers (8.2.3) ---------------------------------------------------- */
#define R_STATUS      0x00008
#define R_EICR        0x00800
#define R_EICS        0x00808
#define R_EIAC        0x00810
#define R_EIMS        0x00880
#define R_EIMC        0x00888
#define R_EIAM        0x00890
#define R_GPIE        0x00898
#define R_EITR_LO(n)  (0x00820 + 4 * (n))      /* vectors 0..23 */
#define R_EITR_HI(n)  (0x12300 + 4 * ((n) - 24))   /* vectors 24..127 */
#define   EITR_INTERVAL    0x00000FF8u        /* bits 11:3, 2.048 us units (8.2.3.5.12) */
#define R_IVAR(n)     (0x00900 + 4 * (n))      /* 64: queues 2n, 2n+1 */
#define R_IVAR_MISC   0x00A00
#define R_EICS_EX(n)  (0x00A90 + 4 * (n))      /* 2 */
#define R_EIMS_EX(n)  (0x00AA0 + 4 * (n))
#define R_EIMC_EX(n)  (0x00AB0 + 4 * (n))
#define R_EIAM_EX(n)  (0x00AD0 + 4 * (n))
#define R_EEC         0x10010
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
#define   SRRCTL_DROP_EN       (1u << 28)
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
#define R_HLREG0      0x04240
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
#define R_TDBAL(n)    (0x06000 + 0x40 * (n))
#define R_TDBAH(n)    (0x06004 + 0x40 * (n))
#define R_TDLEN(n)    (0x06008 + 0x40 * (n))
#define R_TDH(n)      (0x06010 + 0x40 * (n))
#define R_TDT(n)      (0x06018 + 0x40 * (n))
#define R_TXDCTL(n)   (0x06028 + 0x40 * (n))
#define R_DTXMXSZRQ   0x08100
#define R_TQSM(n)     (0x08600 + 4 * (n))      /* 32 */
#define R_QPTC(n)     (0x08680 + 4 * (n))      /* 16 */
#define R_QBTC_L(n)   (0x08700 + 8 * (n))
#define R_QBTC_H(n)   (0x08704 + 8 * (n))
#define R_RAL(n)      (0x0A200 + 8 * (n))
#define R_RAH(n)      (0x0A204 + 8 * (n))
#define R_TXPBSIZE(n) (0x0CC00 + 4 * (n))

static int rdrxctl_ok(struct intel_function *p, uint32_t v, const char *why)
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

/* ---- the 82599 register map (8.2.3) ------------------------------------------ */
static int ixgbe_queue_at(struct intel_function *p, uint32_t off, struct qreg *r)
{
    if (off >= R_RDBAL(0) && off < R_RDBAL(INTEL_MODEL_NUM_QUEUES))
        return intel_queue_reg(p, r, 1, (off - R_RDBAL(0)) / 0x40, (off - R_RDBAL(0)) % 0x40, off);
    if (off >= R_TDBAL(0) && off < R_TDBAL(INTEL_MODEL_NUM_QUEUES))
        return intel_queue_reg(p, r, 0, (off - R_TDBAL(0)) / 0x40, (off - R_TDBAL(0)) % 0x40, off);
    return 0;
}

/* QPRC/QBRC of counters 0..15 in the rx blocks of queues 0..15; QPRDC
 * (8.2.3.23.74) of counters 0..15 at offset 0x30 of the blocks of 16..31. */
static uint32_t ixgbe_queue_stat_read(struct intel_function *p, const struct qreg *r)
{
    unsigned qi = r->qi;
    if (r->rx && r->slot == 0x30 && qi >= NSTAT && qi < 2 * NSTAT)
        return sat32(XCHG0(&p->st.qprdc[qi - NSTAT]));
    if (r->rx && qi < NSTAT) {
        switch (r->slot) {
        case 0x30: return sat32(XCHG0(&p->st.qprc[qi]));
        case 0x34: return intel_stat_read64(&p->st.qbrc[qi], &p->qbrc_hi[qi], 0);
        case 0x38: return intel_stat_read64(&p->st.qbrc[qi], &p->qbrc_hi[qi], 1);
        }
    }
    return reg(p, r->off);
}

/* RQSMR/TQSM: queue -> one of the 16 statistics counters */
static uint32_t stat_index(struct intel_function *p, uint32_t base, unsigned qi)
{
    return (reg(p, base + 4 * (qi / 4)) >> (8 * (qi % 4))) & 0xF;
}

static uint32_t ixgbe_rx_stat(struct intel_function *p, unsigned qi) { return stat_index(p, R_RQSMR(0), qi); }
static uint32_t ixgbe_tx_stat(struct intel_function *p, unsigned qi) { return stat_index(p, R_TQSM(0), qi); }

static uint32_t ixgbe_read(struct intel_function *p, uint32_t off, int64_t now, int in_reset)
{
    if (off >= R_SRRCTL_ALIAS(0) && off < R_SRRCTL_ALIAS(16))
        return LD(&p->rx[(off - R_SRRCTL_ALIAS(0)) / 4].srrctl);
    if (off >= R_RXMPC(0) && off < R_RXMPC(8))
        return sat32(XCHG0(&p->st.rxmpc[(off - R_RXMPC(0)) / 4]));
    if (off >= R_QPTC(0) && off < R_QPTC(NSTAT))
        return sat32(XCHG0(&p->st.qptc[(off - R_QPTC(0)) / 4]));
    if (off >= R_QBTC_L(0) && off < R_QBTC_L(NSTAT)) {
        unsigned i = (off - R_QBTC_L(0)) / 8;
        return intel_stat_read64(&p->st.qbtc[i], &p->qbtc_hi[i], off & 4);
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
        return intel_eeprom_status(p, in_reset, "EEC.ARD");
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
static void ixgbe_ivar_write(struct intel_function *p, unsigned n, uint32_t v)
{
    if (v & 0x40404040u) {
        ERR(p, "IVAR[%u]=0x%08x: bits 6, 14, 22 and 30 are reserved", n, v);
        v &= ~0x40404040u;
    }
    reg_set(p, R_IVAR(n), v);
    if (2 * n + 1 < INTEL_MODEL_NUM_QUEUES)
        intel_ivar_latch(p, n, v, 2 * n, 2 * n + 1);
}

/* Register defaults after a reset (the rest reads 0). */
static void ixgbe_reset(struct intel_function *p)
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

/* The interrupt registers only the 82599 has (8.2.3.5): EITR, IVAR, GPIE
 * and the _EX registers of vectors 16..63. Returns 0 if off is none. */
static int ixgbe_irq_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now)
{
    if (off >= R_EITR_LO(0) && off < R_EITR_LO(24)) {
        intel_eitr_write(p, (off - R_EITR_LO(0)) / 4, off, v, now);
        return 1;
    }
    if (off >= R_EITR_HI(24) && off < R_EITR_HI(INTEL_MODEL_MSIX_VECTORS)) {
        intel_eitr_write(p, 24 + (off - R_EITR_HI(24)) / 4, off, v, now);
        return 1;
    }
    if (off >= R_IVAR(0) && off < R_IVAR(64)) {
        ixgbe_ivar_write(p, (off - R_IVAR(0)) / 4, v);
        return 1;
    }
    switch (off) {
    case R_EIMS_EX(0): case R_EIMS_EX(1):
        if (v)
            intel_irq_unmask(p, (uint64_t)v << (32 * ((off - R_EIMS_EX(0)) / 4)), now, "EIMS_EX");
        return 1;
    case R_EIMC_EX(0): case R_EIMC_EX(1):
        intel_irq_mask(p, (uint64_t)v << (32 * ((off - R_EIMC_EX(0)) / 4)));
        return 1;
    case R_EICS_EX(0): case R_EICS_EX(1):
        if (v)
            intel_irq_raise(p, (uint64_t)v << (32 * ((off - R_EICS_EX(0)) / 4)), now);
        return 1;
    case R_EIAM_EX(0): case R_EIAM_EX(1): {
        unsigned sh = 32 * ((off - R_EIAM_EX(0)) / 4);
        pthread_mutex_lock(&p->irq_lock);
        p->eiam = (p->eiam & ~(0xFFFFFFFFull << sh)) | ((uint64_t)v << sh);
        pthread_mutex_unlock(&p->irq_lock);
        return 1;
    }
    case R_GPIE:
        intel_gpie_write(p, off, v);
        return 1;
    }
    return 0;
}

/* The receive configuration (8.2.3.7, 8.2.3.8, 8.2.3.22): what may change
 * only while rx is off, and what turns it on. Returns 0 if off is none. */
static int ixgbe_rx_config_write(struct intel_function *p, uint32_t off, uint32_t v)
{
    if (off >= R_SRRCTL_ALIAS(0) && off < R_SRRCTL_ALIAS(16)) {
        ST(&p->rx[(off - R_SRRCTL_ALIAS(0)) / 4].srrctl, v);
        return 1;
    }
    switch (off) {
    case R_HLREG0:
        reg_set(p, off, v);
        ST(&p->hlreg0, v);
        return 1;
    case R_MAXFRS:
        reg_set(p, off, v);
        ST(&p->maxfrs, v);
        return 1;
    case R_FCTRL: {
        uint32_t old = reg(p, R_FCTRL);
        if (v != old && LD(&p->rxen)) {
            /* 8.2.3.7.1: FCTRL may change only while RXCTRL.RXEN is 0 */
            ERR(p, "FCTRL changed from 0x%x to 0x%x while RXCTRL.RXEN is 1 (ignored)", old, v);
            return 1;
        }
        reg_set(p, off, v);
        intel_set_filter(p, v, "FCTRL.UPE");
        return 1;
    }
    case R_RDRXCTL:
        v &= ~RDRXCTL_DMAIDONE;   /* read-only status */
        if (LD(&p->rxen) && !rdrxctl_ok(p, v, "RDRXCTL written while RXCTRL.RXEN is 1"))
            return 1;
        reg_set(p, off, v);
        return 1;
    case R_RXCTRL:
        if ((v & RXCTRL_RXEN) && !LD(&p->rxen) && !rdrxctl_ok(p, reg(p, R_RDRXCTL), "RXCTRL.RXEN set (refused)"))
            v &= ~RXCTRL_RXEN;
        reg_set(p, off, v);
        intel_set_rxen(p, v & RXCTRL_RXEN, "RXCTRL.RXEN");
        return 1;
    case R_RAL(0): case R_RAH(0):
        reg_set(p, off, v);
        intel_set_own_mac(p);
        return 1;
    }
    return 0;
}

/* AUTOC.RESTART_AN (8.2.3.22.19): the link comes up after the link delay. */
static void autoc_write(struct intel_function *p, uint32_t v, int64_t now)
{
    reg_set(p, R_AUTOC, v & ~AUTOC_RESTART_AN);
    if (v & AUTOC_RESTART_AN) {
        uint32_t lms = AUTOC_LMS(v);
        EVT(p, "AUTOC.RESTART_AN");
        /* LMS 000/010/110: 1 GbE modes; the rest: 10 GbE */
        ST(&p->link_speed, (lms == 0 || lms == 2 || lms == 6) ? 2u : 3u);
        ST(&p->link_up_at, intel_an_done_at(p, now));
        ST(&p->ev_link, 1);
    }
}

static void ixgbe_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now)
{
    if (ixgbe_irq_write(p, off, v, now) || ixgbe_rx_config_write(p, off, v))
        return;
    switch (off) {
    case R_STATUS: case R_EEC: case R_LINKS:
        return;  /* read-only */
    case R_AUTOC:
        autoc_write(p, v, now);
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
        intel_set_te(p, v & DMATXCTL_TE, "DMATXCTL.TE");
        return;
    }
    reg_set(p, off, v);     /* CTRL and the plain registers */
}

/* ---- the variant ---------------------------------------------------------------- */
const struct variant intel_82599_variant = {
    .device_id = 0x10FB, .nqueues = INTEL_MODEL_NUM_QUEUES, .msix_vectors = INTEL_MODEL_MSIX_VECTORS,
    .ctrl_rst = CTRL_RST | CTRL_LRST, .ral0 = R_RAL(0),
    .srrctl_slot = 0x14, .srrctl_bsizepkt = SRRCTL_BSIZEPKT_MASK, .srrctl_drop_en = SRRCTL_DROP_EN,
    .te_before_queues = 1,
    /* 8.2.3.7.12 MRQC: MRQE bits 3:0, 0001b RSS only; 8.2.3.7.14 RETA: entry bits 3:0 the queue */
    .mrqc_mrqe = 0xFu, .mrqc_rss_only = 0x1u, .reta_qindex = 0xFu,
    /* 8.2.3.5: bits 15:0 vectors 0..15 (the _EX registers reach 16..63), EIAC 16 bits */
    .eirq = {R_EICR, R_EICS, R_EIMS, R_EIMC, R_EIAC, R_EIAM, 0x0000FFFFu, 0x7FFF0000u, 0x80000000u,
             "bit 31 is", ~0xFFFFull},
    /* 8.2.3.5.12: interval bits 11:3 in 2.048 us units */
    .eitr = {EITR_INTERVAL, 3, 2048, "bits 2:0 are reserved (the interval is bits 11:3)"},
    /* 8.2.3.26: time sync; 8.2.3.7.x ETQF (filter enable bit 31); the 10 Gb/s clock, 6.4 ns */
    .tsync = {.systiml = 0x08C0C, .systimh = 0x08C10, .timinca = 0x08C14, .tsynctxctl = 0x08C00,
              .txstmpl = 0x08C04, .txstmph = 0x08C08, .tsyncrxctl = 0x05188, .rxstmpl = 0x051E8,
              .rxstmph = 0x051A4, .rxsatrl = 0x051A0, .rxsatrh = 0x051A8, .rx_msgtype = 0x05120,
              .etqf = 0x05128, .etqf_enable = 1u << 31, .cycle_tenths_ns = 64},
    .queue_at = ixgbe_queue_at, .queue_stat_read = ixgbe_queue_stat_read,
    .rx_stat = ixgbe_rx_stat, .tx_stat = ixgbe_tx_stat,
    .read = ixgbe_read, .write = ixgbe_write, .reset = ixgbe_reset,
};
