/* IEEE 1588 time sync of the Intel model (82599 7.9 and 8.2.3.26; 82576
 * 7.9 and 8.16): the system time SYSTIM and the transmit and receive time
 * latches. The two variants differ only in where the registers are, in
 * ETQF's enable bit and in the clock period SYSTIM counts (struct
 * tsync_layout in the variant).
 *
 * - SYSTIM adds TIMINCA.IV (23:0) every TIMINCA.IP (31:24) clock periods
 *   (82599: 6.4 ns, the 10 Gb/s clock; 82576: 16 ns); with IV or IP 0 it
 *   stands still. The model computes it from CLOCK_MONOTONIC: a TIMINCA
 *   write keeps the time it has and changes the rate from then on. A read
 *   of SYSTIML latches SYSTIMH.
 * - Transmit: a packet whose first data descriptor has the 1588 bit (MAC
 *   bit 19), while TSYNCTXCTL.EN is set and VALID clear, has the time it
 *   leaves the ring latched in TXSTMPL/H and VALID set; a read of TXSTMPH
 *   clears VALID.
 * - Receive: a frame that passed the address filter, while TSYNCRXCTL.EN is
 *   set and VALID clear, TSYNCRXCTL.TYPE is 000b (PTP v2 over Ethernet),
 *   whose EtherType an enabled ETQF filter with its 1588 bit names, whose
 *   PTP versionPTP (byte 1, bits 3:0) is 2 and whose messageType (byte 0,
 *   bits 3:0) is the one in bits 15:8 of RXMTRL (82599) / TSYNCRXCFG
 *   (82576), has the time it reaches the receive path latched in
 *   RXSTMPL/H, RXSATRL = bytes 24..27 of the PTP header (the low 32 bits
 *   of the 48-bit source identity at 22..27, big-endian) and RXSATRH =
 *   bytes 22..23 | the sequenceId (bytes 30..31) << 16, and VALID set; a
 *   read of RXSTMPH clears VALID. Other TYPE values (UDP, v1) and VLAN-tagged
 *   frames are not time-stamped by the model.
 * - A reset (CTRL.RST) clears it all, SYSTIM included.
 *
 * A frame's departure and arrival are the model's: a frame that goes
 * straight to its peer arrives when it leaves (the same clock reading), one
 * on a wire with a delay when the engine takes it off the delay line.
 *
 * Threading: the driver's threads read and write the registers, the engine
 * sets the latches: the times are stored before VALID is set (release) and
 * read after VALID was seen (acquire); only the driver clears VALID. */
#define _GNU_SOURCE
#include "intel_core.h"

#define TSYNC_VALID     (1u << 0)
#define TSYNC_EN        (1u << 4)
#define TSYNCRXCTL_TYPE (7u << 1)
#define ETQF_1588       (1u << 30)
#define ETQF_FILTERS    8
#define ETH_HLEN        14
#define PTP_HEADER      34

static uint64_t systim_at(struct tsync *t, uint32_t cycle_tenths_ns, int64_t now)
{
    uint32_t iv = t->timinca & 0xFFFFFFu, ip = t->timinca >> 24;
    if (!iv || !ip)
        return t->base_systim;
    uint64_t periods = (uint64_t)(now - t->base_ns) * 10u / ((uint64_t)ip * cycle_tenths_ns);
    return t->base_systim + periods * iv;
}

void intel_tsync_reset(struct intel_function *p)
{
    pthread_mutex_lock(&p->ts.lock);
    p->ts.timinca = 0;
    p->ts.base_systim = 0;
    p->ts.base_ns = now_ns();
    p->ts.systimh = 0;
    pthread_mutex_unlock(&p->ts.lock);
    ST(&p->ts.txctl, 0);
    ST(&p->ts.rxctl, 0);
}

static uint64_t systim_now(struct intel_function *p, int64_t now)
{
    pthread_mutex_lock(&p->ts.lock);
    uint64_t v = systim_at(&p->ts, p->v->tsync.cycle_tenths_ns, now);
    pthread_mutex_unlock(&p->ts.lock);
    return v;
}

int intel_tsync_read(struct intel_function *p, uint32_t off, int64_t now, uint32_t *v)
{
    const struct tsync_layout *l = &p->v->tsync;
    struct tsync *t = &p->ts;
    if (off == l->systiml) {
        uint64_t s = systim_now(p, now);
        ST(&t->systimh, (uint32_t)(s >> 32));
        *v = (uint32_t)s;
    } else if (off == l->systimh) {
        *v = LD(&t->systimh);
    } else if (off == l->timinca) {
        *v = LD(&t->timinca);
    } else if (off == l->tsynctxctl) {
        *v = LDA(&t->txctl);
    } else if (off == l->txstmpl) {
        *v = (uint32_t)LD(&t->tx_stamp);
    } else if (off == l->txstmph) {
        *v = (uint32_t)(LD(&t->tx_stamp) >> 32);
        __atomic_fetch_and(&t->txctl, ~TSYNC_VALID, __ATOMIC_RELEASE);
    } else if (off == l->tsyncrxctl) {
        *v = LDA(&t->rxctl);
    } else if (off == l->rxstmpl) {
        *v = (uint32_t)LD(&t->rx_stamp);
    } else if (off == l->rxstmph) {
        *v = (uint32_t)(LD(&t->rx_stamp) >> 32);
        __atomic_fetch_and(&t->rxctl, ~TSYNC_VALID, __ATOMIC_RELEASE);
    } else if (off == l->rxsatrl) {
        *v = LD(&t->rxsatrl);
    } else if (off == l->rxsatrh) {
        *v = LD(&t->rxsatrh);
    } else {
        return 0;
    }
    return 1;
}

int intel_tsync_write(struct intel_function *p, uint32_t off, uint32_t v, int64_t now)
{
    const struct tsync_layout *l = &p->v->tsync;
    struct tsync *t = &p->ts;
    if (off == l->timinca) {            /* the time so far at the old rate, the new rate from now */
        pthread_mutex_lock(&t->lock);
        t->base_systim = systim_at(t, l->cycle_tenths_ns, now);
        t->base_ns = now;
        ST(&t->timinca, v);
        pthread_mutex_unlock(&t->lock);
    } else if (off == l->tsynctxctl) {  /* VALID is read-only */
        uint32_t keep = LD(&t->txctl) & TSYNC_VALID;
        __atomic_store_n(&t->txctl, (v & ~TSYNC_VALID) | keep, __ATOMIC_RELEASE);
    } else if (off == l->tsyncrxctl) {
        uint32_t keep = LD(&t->rxctl) & TSYNC_VALID;
        __atomic_store_n(&t->rxctl, (v & ~TSYNC_VALID) | keep, __ATOMIC_RELEASE);
    } else if (off == l->systiml || off == l->systimh || off == l->txstmpl || off == l->txstmph ||
               off == l->rxstmpl || off == l->rxstmph || off == l->rxsatrl || off == l->rxsatrh) {
        ERR(p, "write of 0x%x to read-only time sync register 0x%x (ignored)", v, off);
    } else {
        return 0;                       /* ETQF, RXMTRL/TSYNCRXCFG: plain registers */
    }
    return 1;
}

int intel_tsync_tx_enabled(struct intel_function *p)
{
    return (LD(&p->ts.txctl) & (TSYNC_EN | TSYNC_VALID)) == TSYNC_EN;
}

void intel_tsync_tx(struct intel_function *p, int64_t sent_at)
{
    struct tsync *t = &p->ts;
    if (!intel_tsync_tx_enabled(p))
        return;
    ST(&t->tx_stamp, systim_now(p, sent_at));
    __atomic_fetch_or(&t->txctl, TSYNC_VALID, __ATOMIC_RELEASE);
}

/* Whether an enabled ETQF filter with the 1588 bit names ethertype. */
static int etqf_1588(struct intel_function *p, uint32_t ethertype)
{
    const struct tsync_layout *l = &p->v->tsync;
    for (unsigned i = 0; i < ETQF_FILTERS; i++) {
        uint32_t f = reg(p, l->etqf + 4 * i);
        if ((f & l->etqf_enable) && (f & ETQF_1588) && (f & 0xFFFFu) == ethertype)
            return 1;
    }
    return 0;
}

void intel_tsync_rx(struct intel_function *p, const uint8_t *data, uint32_t len, int64_t now)
{
    struct tsync *t = &p->ts;
    uint32_t ctl = LDA(&t->rxctl);
    if ((ctl & (TSYNC_EN | TSYNC_VALID)) != TSYNC_EN || (ctl & TSYNCRXCTL_TYPE) || len < ETH_HLEN + PTP_HEADER)
        return;
    uint32_t ethertype = (uint32_t)data[12] << 8 | data[13];
    const uint8_t *ptp = data + ETH_HLEN;
    uint32_t msgt = (reg(p, p->v->tsync.rx_msgtype) >> 8) & 0xFu;
    if (!etqf_1588(p, ethertype) || (ptp[1] & 0xFu) != 2 || (ptp[0] & 0xFu) != msgt)
        return;
    ST(&t->rx_stamp, systim_now(p, now));
    ST(&t->rxsatrl, (uint32_t)ptp[24] << 24 | (uint32_t)ptp[25] << 16 | (uint32_t)ptp[26] << 8 | ptp[27]);
    ST(&t->rxsatrh, ((uint32_t)ptp[30] << 8 | ptp[31]) << 16 | (uint32_t)ptp[22] << 8 | ptp[23]);
    __atomic_fetch_or(&t->rxctl, TSYNC_VALID, __ATOMIC_RELEASE);
}
