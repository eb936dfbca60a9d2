/* The 82576 register map (82576 datasheet, chapter 8) and its internal
 * copper PHY behind MDIC: the decode front end that puts the 82576's
 * registers onto the Intel model's shared state (intel_core.h).
 *
 * Where it differs from the 82599 (the notes in intel_core.h):
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
 */
#define _GNU_SOURCE
#include "intel_core.h"

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

static int igb_block(struct intel_function *p, struct qreg *r, int rx, uint32_t off, uint32_t base,
                     uint32_t stride, unsigned n)
{
    if (off < base || off >= base + stride * n || (off - base) % stride >= 0x40)
        return 0;
    unsigned qi = (off - base) / stride, slot = (off - base) % stride;
    return intel_queue_reg(p, r, rx, qi, slot, (rx ? I_RXQ(qi) : I_TXQ(qi)) + slot);
}

static int igb_queue_at(struct intel_function *p, uint32_t off, struct qreg *r)
{
    return igb_block(p, r, 1, off, I_RXQ_82575(0), 0x100, 4) || igb_block(p, r, 0, off, I_TXQ_82575(0), 0x100, 4) ||
           igb_block(p, r, 1, off, I_RXQ(0), 0x40, I_NUM_QUEUES) || igb_block(p, r, 0, off, I_TXQ(0), 0x40, I_NUM_QUEUES);
}

/* RQDPC (8.10.x): frames queue n dropped for want of a descriptor with SRRCTL.DROP_EN */
static uint32_t igb_queue_stat_read(struct intel_function *p, const struct qreg *r)
{
    if (r->rx && r->slot == I_RQDPC_SLOT)
        return sat32(XCHG0(&p->st.qprdc[r->qi]));
    return reg(p, r->off);
}

static uint32_t igb_rx_stat(struct intel_function *p, unsigned qi) { (void)p; return qi; }
static uint32_t igb_tx_stat(struct intel_function *p, unsigned qi) { (void)p; (void)qi; return 0; }

/* STATUS.LU: the PHY's link, passed on by the MAC while CTRL.SLU is set. */
static void igb_link_update(struct intel_function *p)
{
    int64_t at = (reg(p, R_CTRL) & I_CTRL_SLU) ? LD(&p->phy_an_at) : NEVER;
    if (at != NEVER && at != LD(&p->link_up_at))
        ST(&p->ev_link, 1);
    ST(&p->link_up_at, at);
}

/* The engines' view of RCTL/TCTL, in the 82599's terms (HLREG0, MAXFRS):
 * CRC strip (RCTL.SECRC), long packets (RCTL.LPE, up to RLPML), padding
 * (TCTL.PSP); the CRC is inserted per packet (TXD IFCS) with no global switch. */
static void igb_sync_config(struct intel_function *p)
{
    uint32_t rctl = reg(p, I_RCTL), tctl = reg(p, I_TCTL);
    ST(&p->hlreg0, HLREG0_TXCRCEN | (rctl & RCTL_SECRC ? HLREG0_RXCRCSTRP : 0) |
                   (rctl & RCTL_LPE ? HLREG0_JUMBOEN : 0) | (tctl & TCTL_PSP ? HLREG0_TXPADEN : 0));
    ST(&p->maxfrs, (reg(p, I_RLPML) & 0x3FFFu) << 16);
}

static uint32_t phy_read(struct intel_function *p, unsigned r, int64_t now)
{
    if (r == PHY_BMSR)
        return BMSR_CAPS | (now >= LD(&p->phy_an_at) ? BMSR_AN_DONE | BMSR_LINK : 0);
    return p->phy[r];
}

/* BMCR: a reset or an autonegotiation restart (or a power-up) starts
 * autonegotiation; powered down or with autonegotiation off the link stays
 * down (the model's link partner only autonegotiates). */
static void phy_write(struct intel_function *p, unsigned r, uint16_t v, int64_t now)
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
        ST(&p->phy_an_at, intel_an_done_at(p, now));
    }
    igb_link_update(p);
}

/* 8.2.4 MDIC: one PHY register read or written; the model completes it at once (READY). */
static void mdic_write(struct intel_function *p, uint32_t v, int64_t now)
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
static void rctl_write(struct intel_function *p, uint32_t v)
{
    reg_set(p, I_RCTL, v);
    igb_sync_config(p);
    intel_set_filter(p, (v & RCTL_UPE ? FCTRL_UPE : 0) | (v & RCTL_MPE ? FCTRL_MPE : 0) | (v & RCTL_BAM ? FCTRL_BAM : 0),
               "RCTL.UPE");
    intel_set_rxen(p, !!(v & RCTL_EN), "RCTL.EN");
}

/* 8.8.15 IVAR: bytes rx n, tx n, rx n+8, tx n+8; each bits 4:0 vector,
 * bit 7 valid, bits 6:5 reserved */
static void igb_ivar_write(struct intel_function *p, unsigned n, uint32_t v)
{
    if (v & 0x60606060u) {
        ERR(p, "IVAR[%u]=0x%08x: bits 6:5 of each byte are reserved", n, v);
        v &= ~0x60606060u;
    }
    reg_set(p, I_IVAR(n), v);
    intel_ivar_latch(p, n, v, n, n + 8);
}

static uint32_t igb_read(struct intel_function *p, uint32_t off, int64_t now, int in_reset)
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
    case I_EECD: return intel_eeprom_status(p, in_reset, "EECD.AUTO_RD");
    case I_MPC: return sat32(XCHG0(&p->st.rxmpc[0]));
    case I_TORL: return intel_stat_read64(&p->st.tor, &p->tor_hi, 0);
    case I_TORH: return intel_stat_read64(&p->st.tor, &p->tor_hi, 1);
    case I_TOTL: return intel_stat_read64(&p->st.tot, &p->tot_hi, 0);
    case I_TOTH: return intel_stat_read64(&p->st.tot, &p->tot_hi, 1);
    }
    return reg(p, off);
}

static void igb_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now)
{
    if (off >= I_EITR(0) && off < I_EITR(I_MSIX_VECTORS)) {
        intel_eitr_write(p, (off - I_EITR(0)) / 4, off, v, now);
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
        intel_set_te(p, !!(v & TCTL_EN), "TCTL.EN");
        return;
    case I_RLPML:
        reg_set(p, off, v);
        igb_sync_config(p);
        return;
    case I_GPIE:
        intel_gpie_write(p, off, v);
        return;
    case I_RAL(0): case I_RAH(0):
        reg_set(p, off, v);
        intel_set_own_mac(p);
        return;
    }
    reg_set(p, off, v);
}

/* Register defaults after a reset (the rest reads 0). CTRL.SLU, which the
 * EEPROM may set, is 0: the driver sets it. CTRL.RST leaves the PHY as it is. */
static void igb_reset(struct intel_function *p)
{
    igb_sync_config(p);
}

/* Power-up: the PHY autonegotiated before any driver came. */
static void igb_power_up(struct intel_function *p, int64_t now)
{
    p->phy[PHY_BMCR] = BMCR_DEFAULT;
    p->phy[PHY_ID1] = PHY_ID >> 16;
    p->phy[PHY_ID2] = PHY_ID & 0xFFFF;
    p->phy_an_at = now;
}

/* ---- the variant ---------------------------------------------------------------- */
const struct variant intel_82576_variant = {
    .device_id = 0x10C9, .nqueues = I_NUM_QUEUES, .msix_vectors = I_MSIX_VECTORS,
    .ctrl_rst = CTRL_RST, .ral0 = I_RAL(0),
    .srrctl_slot = I_SRRCTL_SLOT, .srrctl_bsizepkt = I_SRRCTL_BSIZEPKT, .srrctl_drop_en = I_SRRCTL_DROP_EN,
    .te_before_queues = 0,
    /* MRQC: Multiple Receive Queues Enable bits 2:0, 010b RSS only; RETA: entry bits 2:0 the queue */
    .mrqc_mrqe = 0x7u, .mrqc_rss_only = 0x2u, .reta_qindex = 0x7u,
    /* 8.8: bits 24:0 vectors, 30 TCP timer, 31 other causes; 29:25 reserved */
    .eirq = {I_EICR, I_EICS, I_EIMS, I_EIMC, I_EIAC, I_EIAM, 0x01FFFFFFu, 0xC0000000u, 0x3E000000u,
             "bits 29:25 are", 0},
    /* 8.8.12: interval bits 14:2 in 1 us units */
    .eitr = {0x7FFCu, 2, 1000, "bits 1:0 are reserved (the interval is bits 14:2)"},
    /* 8.16: time sync; ETQF (filter enable bit 26); a 16 ns clock period */
    .tsync = {.systiml = 0x0B600, .systimh = 0x0B604, .timinca = 0x0B608, .tsynctxctl = 0x0B614,
              .txstmpl = 0x0B618, .txstmph = 0x0B61C, .tsyncrxctl = 0x0B620, .rxstmpl = 0x0B624,
              .rxstmph = 0x0B628, .rxsatrl = 0x0B62C, .rxsatrh = 0x0B630, .rx_msgtype = 0x05F50,
              .etqf = 0x05CB0, .etqf_enable = 1u << 26, .cycle_tenths_ns = 160},
    .queue_at = igb_queue_at, .queue_stat_read = igb_queue_stat_read,
    .rx_stat = igb_rx_stat, .tx_stat = igb_tx_stat,
    .read = igb_read, .write = igb_write, .reset = igb_reset, .power_up = igb_power_up,
};
