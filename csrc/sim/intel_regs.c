/* BAR0 of the Intel model: what both register maps share (offset checks,
 * CTRL and its reset, the common statistics, the interrupt registers, the
 * queue blocks, the hot tail write) before the variant's map decodes the
 * rest; and the reset to defaults.
 */
#define _GNU_SOURCE
#include "intel_core.h"

#define RESET_NS 1000000          /* CTRL.RST reads 1 for ~1 ms */

/* ---- reset ------------------------------------------------------------------ */
/* Receive address 0 (82599 RAL(0)/RAH(0) 8.2.3.7.9, 82576 8.10.x): the
 * destination address filter's own MAC. */
void intel_set_own_mac(struct intel_function *p)
{
    uint32_t ral = reg(p, p->v->ral0), rah = reg(p, p->v->ral0 + 4);
    uint64_t v = (uint64_t)ral | ((uint64_t)(rah & 0xFFFF) << 32);
    if (rah & RAH_AV)
        v |= 1ull << 63;
    ST(&p->own_mac, v);
}

/* The registers, the rings and the rx path's accumulators to zero, once no
 * pass of the worker uses them. */
static void rings_reset(struct intel_function *p)
{
    rx_lock(p);     /* an inject in flight finishes first */
    memset(p->regs, 0, INTEL_MODEL_BAR0_SIZE);
    for (unsigned i = 0; i < INTEL_MODEL_NUM_QUEUES; i++) {
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
    p->rx_touched = 0;
    intel_rss_reset(p);
    intel_rx_unlock(p);
}

/* Clear the device statistics. */
static void stats_reset(struct intel_function *p)
{
    uint64_t *s = (uint64_t *)&p->st;
    for (size_t i = 0; i < sizeof(p->st) / 8; i++)
        XCHG0(&s[i]);
    p->gorc_hi = p->gotc_hi = p->tor_hi = p->tot_hi = 0;
    memset(p->qbrc_hi, 0, sizeof(p->qbrc_hi));
    memset(p->qbtc_hi, 0, sizeof(p->qbtc_hi));
}

/* RAL(0)/RAH(0) as the EEPROM leaves them: the function's MAC, address valid. */
static void mac_reset(struct intel_function *p)
{
    reg_set(p, p->v->ral0, (uint32_t)p->mac[0] | (uint32_t)p->mac[1] << 8 |
                           (uint32_t)p->mac[2] << 16 | (uint32_t)p->mac[3] << 24);
    reg_set(p, p->v->ral0 + 4, RAH_AV | p->mac[4] | (uint32_t)p->mac[5] << 8);
    intel_set_own_mac(p);
}

/* Registers to their defaults (82599 8.2.3, 82576 chapter 8: "Init val"),
 * queues stopped. Caller holds p->lock. */
void intel_function_reset(struct intel_function *p, int64_t now)
{
    for (unsigned i = 0; i < INTEL_MODEL_NUM_QUEUES; i++) {
        intel_ring_stop(p, &p->tx[i], &p->txmask, i);
        intel_ring_stop(p, &p->rx[i], &p->rxmask, i);
    }
    ST(&p->rxen, 0);
    ST(&p->te, 0);
    ST(&p->link_up_at, NEVER);
    quiesce(p->sim);
    rings_reset(p);
    intel_msix_reset(p);
    intel_tsync_reset(p);
    stats_reset(p);
    mac_reset(p);
    ST(&p->fctrl, 0);
    p->v->reset(p);
    ST(&p->ev_ard, 1);
    ST(&p->ev_dmaidone, 1);
    ST(&p->ev_link, 0);
    ST(&p->rst_until, now);
}

/* ---- BAR0: what both register maps share ------------------------------------ */
static int bad_offset(struct intel_function *p, uint32_t off, const char *what)
{
    if (off >= INTEL_MODEL_BAR0_SIZE || (off & 3)) {
        ERR(p, "%s at BAR0 offset 0x%x: outside the 128 KiB BAR or not 32-bit aligned", what, off);
        return 1;
    }
    return 0;
}

uint32_t intel_stat_read64(uint64_t *ctr, uint32_t *hi, int high)
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


/* Autonegotiation (re)started now: when the link will be up. */
int64_t intel_an_done_at(struct intel_function *p, int64_t now)
{
    int64_t d = LD(&p->link_delay_us);
    return d < 0 ? NEVER : now + d * 1000;
}

/* Rx on or off (82599 RXCTRL.RXEN, 82576 RCTL.EN); when this turns it off,
 * no frame is being received any more. */
void intel_set_rxen(struct intel_function *p, uint32_t on, const char *event)
{
    uint32_t was = LD(&p->rxen);
    ST(&p->rxen, on);
    if (on && !was)
        EVT(p, "%s", event);
    if (was && !on) {
        rx_lock(p);
        intel_rx_unlock(p);
    }
}

/* Tx on or off (82599 DMATXCTL.TE, 82576 TCTL.EN). */
void intel_set_te(struct intel_function *p, uint32_t on, const char *event)
{
    uint32_t was = LD(&p->te);
    ST(&p->te, on);
    if (on && !was)
        EVT(p, "%s", event);
}

/* The address filter's switches, as the 82599's FCTRL bits UPE, MPE, BAM
 * (the 82576's are RCTL's); upe names the UPE bit in the events. */
void intel_set_filter(struct intel_function *p, uint32_t fctrl, const char *upe)
{
    uint32_t old = LD(&p->fctrl);
    ST(&p->fctrl, fctrl);
    if ((fctrl ^ old) & FCTRL_UPE)
        EVT(p, "%s=%u", upe, !!(fctrl & FCTRL_UPE));
}

/* The EEPROM auto-read (82599 EEC.ARD, 82576 EECD.AUTO_RD: the same bits)
 * is done once the reset is. */
uint32_t intel_eeprom_status(struct intel_function *p, int in_reset, const char *event)
{
    if (!in_reset && __atomic_exchange_n(&p->ev_ard, 0, __ATOMIC_RELAXED))
        EVT(p, "%s", event);
    return EEC_PRES | (in_reset ? 0 : EEC_ARD);
}

/* Statistics at the same offsets on both (82599 8.2.3.23, 82576 8.19). */
static int common_stat_read(struct intel_function *p, uint32_t off, uint32_t *v)
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
    case R_GORCL: *v = intel_stat_read64(&p->st.gorc, &p->gorc_hi, 0); return 1;
    case R_GORCH: *v = intel_stat_read64(&p->st.gorc, &p->gorc_hi, 1); return 1;
    case R_GOTCL: *v = intel_stat_read64(&p->st.gotc, &p->gotc_hi, 0); return 1;
    case R_GOTCH: *v = intel_stat_read64(&p->st.gotc, &p->gotc_hi, 1); return 1;
    }
    return 0;
}

uint32_t intel_model_read32(void *ctx, uint32_t off)
{
    struct intel_function *p = ctx;
    if (LD(&p->removed) || bad_offset(p, off, "read"))
        return 0xFFFFFFFF;
    struct qreg r;
    if (p->v->queue_at(p, off, &r))
        return intel_queue_read(p, &r);
    int64_t now = now_ns();
    int in_reset = now < LD(&p->rst_until);
    uint32_t v;
    if (off == R_CTRL)      /* CTRL.RST (bit 26 on both) reads 1 until the reset is done */
        return reg(p, R_CTRL) | (in_reset ? CTRL_RST : 0);
    if (common_stat_read(p, off, &v) || intel_eirq_read(p, off, &v) || intel_tsync_read(p, off, now, &v))
        return v;
    return p->v->read(p, off, now, in_reset);
}

/* Under p->lock: a reset, or what the variant's register map makes of the write. */
static void write_locked(struct intel_function *p, uint32_t off, uint32_t v, int64_t now)
{
    if (off == R_CTRL && (v & p->v->ctrl_rst)) {
        /* 82599 4.2.1.6, 82576 4.3.1 software reset: registers to defaults, RST self-clears */
        EVT(p, "CTRL.RST");
        intel_function_reset(p, now);
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
        intel_queue_write(p, &r, v);
    else if (!intel_eirq_write(p, off, v, now) && !intel_rss_write(p, off, v) && !intel_tsync_write(p, off, v, now))
        p->v->write(p, off, v, now);
}

void intel_model_write32(void *ctx, uint32_t off, uint32_t v)
{
    struct intel_function *p = ctx;
    if (LD(&p->removed) || bad_offset(p, off, "write"))
        return;
    struct qreg r;
    if (p->v->queue_at(p, off, &r) && r.slot == Q_T) {   /* tails: the hot path, no lock */
        intel_tail_write(p, r.q, r.rx ? "RDT" : "TDT", r.qi, v);
        return;
    }
    pthread_mutex_lock(&p->lock);
    write_locked(p, off, v, now_ns());
    pthread_mutex_unlock(&p->lock);
}

const struct ixy_reg_ops *intel_model_reg_ops(struct intel_function *fn)
{
    return &fn->ops;
}
