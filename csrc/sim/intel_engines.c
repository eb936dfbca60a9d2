/* The Intel model's DMA engines (shared by the 82599 and the 82576): the
 * receive path (address filter, rx descriptor write-back, drops and
 * statistics), the transmit path (tx descriptor fetch, the frame onto the
 * wire, DD write-back) and the traffic generator of a source wire; one pass
 * of every function. See intel_core.h for the design notes.
 */
#define _GNU_SOURCE
#include "intel_core.h"

#include <string.h>

#define TX_BUDGET 512             /* descriptors per queue per pass */
#define RX_BUDGET 256             /* source frames per function per pass */


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
void intel_fcs_init(void)
{
    pthread_once(&crc_once, crc_init);
}

static uint32_t eth_fcs(const uint8_t *d, uint32_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < len; i++)
        c = crc_table[(c ^ d[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* 7.1.1 destination address filter, then the length checks, for n frames
 * alike (the same addresses and length); counts what passes the filter.
 * Returns 1 if the frames (len bytes without CRC) are to be received. */
static inline __attribute__((always_inline)) int
rx_accept(struct intel_function *p, const uint8_t *data, uint32_t len, uint32_t hl, uint32_t n)
{
    uint32_t wire_len = len + 4;
    uint32_t fctrl = LD(&p->fctrl);
    int bcast = 0, mcast = 0;
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
        p->wacc.rx_filtered += n;
        return 0;
    }
    p->acc.tpr += n;
    p->acc.tor += (uint64_t)wire_len * n;
    uint32_t maxfs = (hl & HLREG0_JUMBOEN) ? (LD(&p->maxfrs) >> 16) : 1518;
    if (wire_len > maxfs) {   /* 8.2.3.23.x ROC */
        p->acc.roc += n;
        return 0;
    }
    if (wire_len < 64) {
        p->acc.ruc += n;
        return 0;
    }
    p->acc.gprc += n;
    p->acc.gorc += (uint64_t)wire_len * n;
    p->acc.bprc += bcast * n;
    p->acc.mprc += mcast * n;
    return 1;
}

/* Descriptors the device owns from the head on (at least need, if it has
 * them). The tail is read again only when the count from the last read falls
 * short, as the NIC fetches descriptors in bursts (the datasheets' "Receive
 * Descriptor Fetching"; it never fetches beyond the tail): the
 * driver's tail writes then cost the engine one cache miss a burst, not one
 * a frame. */
static uint32_t rx_ring_room(struct ring *q, uint32_t need)
{
    if (q->room < need)
        q->room = (LDA(&q->tail) + q->size - LD(&q->head)) % q->size;
    return q->room;
}

/* Whether rx queue q can take dlen bytes now: enabled, bus mastering on,
 * enough free descriptors (*ndesc of them). If not, the frame is dropped
 * and counted (QPRDC with SRRCTL.DROP_EN, else RXMPC). */
static inline __attribute__((always_inline)) int rx_room(struct intel_function *p, struct ring *q, unsigned qi, uint32_t dlen, uint32_t *ndesc)
{
    int ok = LDA(&q->enabled) && !LD(&q->faulted) && dma_runs(p);
    if (ok && !(LD(&p->pci_command) & 4)) {
        if (!q->bme_reported) {
            q->bme_reported = 1;
            ERR(p, "rx DMA for RXDCTL[%u] queue while PCI COMMAND.BME is clear: frame dropped", qi);
        }
        ok = 0;
    }
    if (ok) {
        *ndesc = (dlen + q->bsize - 1) / q->bsize;
        ok = rx_ring_room(q, *ndesc) >= *ndesc;
    }
    if (!ok) {
        if (q->drop_en && LD(&q->enabled))
            p->acc.qprdc[q->stat]++;
        else
            p->acc.rxmpc[0]++;
        p->wacc.rx_no_desc_drops++;
    }
    return ok;
}

/* Write back the staged descriptors (advanced format, 7.1.6.2): RSS type
 * and hash (0 without RSS), length, DD and EOP, each DD last. */
static void rx_writeback(struct ring *q)
{
    for (uint32_t i = 0; i < q->wb_count; i++) {
        uint8_t *d = q->ring + (size_t)(q->wb_first + i) * 16;
        wr64(d, q->wb_lo[i]);           /* RSS type (packet type 0), RSS hash */
        wr32(d + 12, q->wb_len[i]);     /* PKT_LEN 15:0, VLAN tag 0 */
        __atomic_store_n((uint32_t *)(d + 8), RXD_STAT_DD | (q->wb_eop[i] ? RXD_STAT_EOP : 0),
                         __ATOMIC_RELEASE);
    }
    q->wb_count = 0;
}

/* Descriptor idx is done (its buffer written). Its write-back waits until
 * the cache line of descriptors it is in is done, or the rx lock is let go
 * (intel_rx_unlock), as the NIC packs write-backs into whole cache lines
 * (the datasheets' "Receive Descriptor Write-Back"): the driver polling the
 * ring then takes each line from the engine once, not once a descriptor. */
static inline __attribute__((always_inline)) void rx_stage_writeback(struct ring *q, uint32_t idx, uint32_t len, int eop, uint64_t lo)
{
    if (!q->wb_count)
        q->wb_first = idx;
    q->wb_len[q->wb_count] = (uint16_t)len;
    q->wb_eop[q->wb_count] = (uint8_t)eop;
    q->wb_lo[q->wb_count] = lo;
    q->wb_count++;
    if ((idx + 1) % RX_WB_DESCS == 0 || idx + 1 == q->size)
        rx_writeback(q);
}

/* Write dlen bytes (the frame's len bytes, then the CRC's if kept) into
 * ndesc descriptors from queue qi's head, with advanced write-back (7.1.6;
 * lo: its dwords 0 and 1). Returns 0 if a buffer lies outside the DMA map
 * (the queue stops). Always inlined: a call with its eleven arguments
 * would cost more per frame than the rest of the write. */
static inline __attribute__((always_inline)) int
rx_write(struct intel_function *p, struct ring *q, unsigned qi, const struct sim_dma_map *m,
         const struct sim_dma_ent **hint, const uint8_t *data, uint32_t len,
         const uint8_t *fcs, uint32_t dlen, uint32_t ndesc, uint64_t lo)
{
    uint32_t head = LD(&q->head), done = 0;
    for (uint32_t k = 0; k < ndesc; k++) {
        uint8_t *d = q->ring + (size_t)head * 16;
        uint64_t addr = rd64(d);
        uint32_t chunk = dlen - done < q->bsize ? dlen - done : q->bsize;
        uint8_t *buf = sim_dma_find(m, hint, addr, chunk);
        if (!buf) {
            rx_writeback(q);
            ERR(p, "RXD[%u] of queue %u: buffer 0x%llx+%u outside the DMA map (queue stopped)",
                head, qi, (unsigned long long)addr, chunk);
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
        rx_stage_writeback(q, head, chunk, k == ndesc - 1, lo);
        head = head + 1 == q->size ? 0 : head + 1;
    }
    q->room -= ndesc;
    STR(&q->head, head);
    return 1;
}

/* n frames of len bytes (dlen with the CRC if kept) are in rx queue qi's
 * buffers: its cause (7.3.4: rx cause of queue qi -> its vector) and counters. */
static inline __attribute__((always_inline)) void
rx_received(struct intel_function *p, struct ring *q, unsigned qi, uint32_t len, uint32_t dlen, uint32_t n)
{
    uint32_t iv = LD(&p->rx_ivar[qi]);
    if (iv & IVAR_VALID)
        p->rx_cause |= 1ull << (iv & 63);
    p->acc.qprc[q->stat] += n;
    p->acc.qbrc[q->stat] += (uint64_t)dlen * n;
    p->wacc.rx_packets += n;
    p->wacc.rx_bytes += (uint64_t)len * n;
}

/* A frame (without CRC: len bytes; crc = the 4 FCS bytes or NULL to compute)
 * arrives at function p. Caller holds p's rx lock. Returns 1 if written to
 * descriptors. Counters go to p->acc / p->wacc, flushed by rx_unlock. The
 * frame goes to rx queue 0, or with RSS on to the queue its hash picks
 * (intel_rss.c): one load and a branch when RSS is off (rx_deliver). */
/* The accepted frame into rx queue qi, write-back dwords 0-1 lo. Inlined
 * into intel_rx_frame with qi and lo the constants 0 (RSS off: the code it
 * always was) and into rx_deliver_rss. */
static inline __attribute__((always_inline)) int
rx_deliver(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
           const uint8_t *data, uint32_t len, const uint8_t *crc, uint32_t hl, unsigned qi, uint64_t lo)
{
    struct ring *q = &p->rx[qi];
    uint32_t dlen = (hl & HLREG0_RXCRCSTRP) ? len : len + 4, ndesc = 0;
    if (!rx_room(p, q, qi, dlen, &ndesc))
        return 0;
    uint8_t fcs[4];
    if (dlen > len) {
        uint32_t c = crc ? rd32(crc) : eth_fcs(data, len);
        memcpy(fcs, &c, 4);
    }
    p->rx_touched |= 1ull << qi;
    if (!rx_write(p, q, qi, m, hint, data, len, fcs, dlen, ndesc, lo))
        return 0;
    rx_received(p, q, qi, len, dlen, 1);
    return 1;
}

/* With RSS on (hash types rss): to the queue the frame's hash picks. */
static __attribute__((noinline)) int
rx_deliver_rss(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
               const uint8_t *data, uint32_t len, const uint8_t *crc, uint32_t hl, uint32_t rss)
{
    uint64_t lo;
    unsigned qi = intel_rss_queue(p, rss, data, len, &lo);
    return rx_deliver(p, m, hint, data, len, crc, hl, qi, lo);
}

int intel_rx_frame(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                   const uint8_t *data, uint32_t len, const uint8_t *crc, int64_t now)
{
    if (!LD(&p->rxen) || !link_is_up(p, now) || now < LD(&p->rst_until))
        return 0;
    p->rx_dirty = 1;
    uint32_t hl = LD(&p->hlreg0);
    if (!rx_accept(p, data, len, hl, 1))
        return 0;
    intel_tsync_rx(p, data, len, now);
    if (LD(&p->drop_rx) && intel_fault_drop(p))
        return 0;
    uint32_t rss = LD(&p->rss_fields);
    if (rss)
        return rx_deliver_rss(p, m, hint, data, len, crc, hl, rss);
    return rx_deliver(p, m, hint, data, len, crc, hl, 0, 0);
}

/* Adds the 64-bit counters of src to dst's (atomically) and zeroes them. */
static void flush_counters(void *dst, void *src, size_t bytes)
{
    uint64_t *d = dst, *s = src;
    for (size_t i = 0; i < bytes / 8; i++)
        if (s[i]) {
            ADD(&d[i], s[i]);
            s[i] = 0;
        }
}

/* Flush the write-backs of every rx queue written since rx_lock, the
 * counters, and the rx causes; then let the lock go. */
void intel_rx_unlock(struct intel_function *p)
{
    uint64_t touched = p->rx_touched;
    p->rx_touched = 0;
    while (touched) {
        struct ring *q = &p->rx[__builtin_ctzll(touched)];
        touched &= touched - 1;
        if (q->wb_count)
            rx_writeback(q);
    }
    if (p->rx_dirty) {
        flush_counters(&p->st, &p->acc, sizeof(p->acc));
        flush_counters(&p->wst, &p->wacc, sizeof(p->wacc));
        p->rx_dirty = 0;
    }
    uint64_t cause = p->rx_cause;
    p->rx_cause = 0;
    if (cause)     /* the descriptors are written: the message may follow */
        intel_irq_raise(p, cause, now_ns());
    __atomic_clear(&p->rxlock, __ATOMIC_RELEASE);
}

/* ---- transmit path --------------------------------------------------------- */
/* One packet's descriptors, fetched from the ring: the first is at the
 * queue's head, the last at last. */
struct tx_packet {
    uint32_t last;
    uint32_t n;               /* data descriptors; 0: a lone context descriptor */
    uint32_t total, paylen;   /* the DTALEN sum; PAYLEN of the first */
    const uint8_t *seg_p[TX_MAX_SEGS];
    uint32_t seg_l[TX_MAX_SEGS];
};

/* What a queue sent in one pass. */
struct tx_sent { uint64_t packets, wire_bytes, bytes; };

/* Fetch the packet that starts at head (7.2.3.2: advanced data descriptors
 * up to EOP, or one context descriptor). Returns 1 (complete, in *pk), 0
 * (the rest not handed over yet) or -1 (an invalid descriptor, logged). */
static int tx_fetch(struct intel_function *p, struct ring *q, unsigned qi, const struct sim_dma_map *m,
                    const struct sim_dma_ent **hint, uint32_t head, uint32_t tail, struct tx_packet *pk)
{
    uint32_t i = head;
    pk->n = pk->total = pk->paylen = 0;
    for (;;) {
        pk->last = i;
        const uint8_t *d = q->ring + (size_t)i * 16;
        uint32_t cmd = rd32(d + 8);
        uint32_t dtyp = (cmd >> 20) & 0xF;
        if (!(cmd & TXD_CMD_DEXT) || (dtyp != TXD_DTYP_DATA && dtyp != TXD_DTYP_CTXT)) {
            ERR(p, "TXD[%u] of queue %u: %s descriptor (DCMD.DEXT=%u DTYP=%u), only advanced data/context descriptors are supported (queue stopped)",
                i, qi, (cmd & TXD_CMD_DEXT) ? "unknown" : "legacy", !!(cmd & TXD_CMD_DEXT), dtyp);
            return -1;
        }
        if (dtyp == TXD_DTYP_CTXT) {
            if (pk->n) {
                ERR(p, "TXD[%u] of queue %u: context descriptor inside a packet (queue stopped)", i, qi);
                return -1;
            }
            return 1;     /* a context descriptor alone: consumed, no data */
        }
        uint32_t len = cmd & 0xFFFF;
        uint64_t addr = rd64(d);
        const uint8_t *buf = sim_dma_find(m, hint, addr, len ? len : 1);
        if (!buf) {
            ERR(p, "TXD[%u] of queue %u: buffer 0x%llx+%u outside the DMA map (queue stopped)",
                i, qi, (unsigned long long)addr, len);
            return -1;
        }
        if (pk->n == 0)
            pk->paylen = rd32(d + 12) >> 14;
        if (pk->n == TX_MAX_SEGS) {
            ERR(p, "TXD[%u] of queue %u: packet uses more than %u descriptors (queue stopped)", i, qi, TX_MAX_SEGS);
            return -1;
        }
        pk->seg_p[pk->n] = buf;
        pk->seg_l[pk->n] = len;
        pk->n++;
        pk->total += len;
        if (cmd & TXD_CMD_EOP)
            return 1;
        i = i + 1 == q->size ? 0 : i + 1;
        if (i == tail)
            return 0;
    }
}

/* Whether the hardware would send the packet (its first descriptor at
 * head); if so, the frame's length without CRC (*len) and whether the CRC
 * is in the data (*crc_in_data: not inserted, IFCS or HLREG0.TXCRCEN clear). */
static int tx_frame_ok(struct intel_function *p, struct ring *q, unsigned qi, uint32_t head, uint32_t hl,
                       const struct tx_packet *pk, uint32_t *len, int *crc_in_data)
{
    uint32_t ifcs = rd32(q->ring + (size_t)head * 16 + 8) & TXD_CMD_IFCS;  /* first descriptor */
    int send = 1;
    if (pk->paylen != pk->total) {
        if (!q->paylen_reported) {
            q->paylen_reported = 1;
            ERR(p, "TXD[%u] of queue %u: PAYLEN %u differs from the packet's DTALEN sum %u (frame dropped)",
                head, qi, pk->paylen, pk->total);
        }
        send = 0;
    }
    *len = pk->total;
    *crc_in_data = !(ifcs && (hl & HLREG0_TXCRCEN));
    if (*crc_in_data) {
        if (pk->total < 4)
            send = 0;
        else
            *len = pk->total - 4;
    }
    if (send && pk->total > INTEL_MODEL_MAX_FRAME) {
        ERR(p, "queue %u: tx packet of %u bytes exceeds the largest frame %u (dropped)", qi, pk->total,
            INTEL_MODEL_MAX_FRAME);
        send = 0;
    }
    return send;
}

/* The frame (len bytes, padded to wlen) into the peer's receive path (or,
 * on a wire with a delay, onto its delay line); the peer's rx lock is
 * taken once per pass (*locked). */
static void tx_to_peer(struct intel_function *p, struct intel_function *peer, int *locked,
                       const struct sim_dma_map *m, const struct sim_dma_ent **hint, const struct tx_packet *pk,
                       uint32_t len, uint32_t wlen, int crc_in_data, int64_t now)
{
    const uint8_t *data = pk->seg_p[0];
    const uint8_t *crc = NULL;
    if (pk->n > 1 || wlen != len) {
        uint8_t *s = p->scratch, *o = s;
        for (uint32_t k = 0; k < pk->n; k++) {
            memcpy(o, pk->seg_p[k], pk->seg_l[k]);
            o += pk->seg_l[k];
        }
        if (wlen != len) {      /* pad (before any software CRC) */
            memset(s + len, 0, wlen - len);
            crc_in_data = 0;
        }
        data = s;
    }
    if (crc_in_data)
        crc = data + len;
    if (p->delay.frames) {
        intel_wire_depart(p, data, wlen, crc, now);
        return;
    }
    if (!*locked) {
        rx_lock(peer);
        *locked = 1;
    }
    intel_rx_frame(peer, m, hint, data, wlen, crc, now);
}

/* Write back DD on the descriptors head..last with RS (7.2.3.2.4 /
 * 7.2.3.5). Returns how many descriptors the packet used. */
static unsigned tx_writeback(struct ring *q, uint32_t head, uint32_t last)
{
    unsigned n = 0;
    for (uint32_t j = head;; j = j + 1 == q->size ? 0 : j + 1) {
        uint8_t *d = q->ring + (size_t)j * 16;
        if (rd32(d + 8) & TXD_CMD_RS) {
            uint32_t sta = rd32(d + 12);
            __atomic_store_n((uint32_t *)(d + 12), sta | TXD_STAT_DD, __ATOMIC_RELEASE);
        }
        n++;
        if (j == last)
            return n;
    }
}

static void tx_account(struct intel_function *p, struct ring *q, const struct tx_sent *s)
{
    if (!s->packets)
        return;
    ADD(&p->st.gptc, s->packets);
    ADD(&p->st.tpt, s->packets);
    ADD(&p->st.gotc, s->wire_bytes);
    ADD(&p->st.tot, s->wire_bytes);
    ADD(&p->st.qptc[q->stat], s->packets);
    ADD(&p->st.qbtc[q->stat], s->wire_bytes - 4 * s->packets);
    ADD(&p->wst.tx_packets, s->packets);
    ADD(&p->wst.tx_bytes, s->bytes);
}

/* Process one tx queue. Returns descriptors consumed. */
static unsigned tx_queue(struct intel_function *p, unsigned qi, const struct sim_dma_map *m,
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
    struct intel_function *peer = LDA(&p->wire) == WIRE_PAIR ? LDA(&p->peer) : NULL;
    /* onto a delay line, frames leave now, after the tail was read: not at
     * the pass's start, which may be before the driver wrote them (so too
     * for the departure log and a transmit time stamp) */
    uint32_t log_cap = LDA(&p->departures_cap);     /* the departure log: frames logged up to this */
    int stamping = intel_tsync_tx_enabled(p);        /* a packet with the 1588 bit has its time latched */
    int64_t sent_at = (peer && p->delay.frames) || log_cap || stamping ? now_ns() : now;
    int peer_locked = 0;
    uint32_t hl = LD(&p->hlreg0);
    struct tx_sent sent = {0, 0, 0};
    unsigned consumed = 0;
    struct tx_packet pk;

    while (head != tail && consumed < TX_BUDGET) {
        int fetched = tx_fetch(p, q, qi, m, hint, head, tail, &pk);
        if (fetched < 0) {
            ST(&q->faulted, 1);
            break;
        }
        if (!fetched)
            break;
        uint32_t len;
        int crc_in_data;
        if (pk.n && tx_frame_ok(p, q, qi, head, hl, &pk, &len, &crc_in_data)) {
            uint32_t wlen = (hl & HLREG0_TXPADEN) && len < 60 ? 60 : len;
            sent.packets++;
            sent.wire_bytes += wlen + 4;
            sent.bytes += wlen;
            if (p->departures_n < log_cap) {
                p->departures[p->departures_n] = sent_at;
                STR(&p->departures_n, p->departures_n + 1);    /* read by intel_model_departures */
            }
            if (stamping && (rd32(q->ring + (size_t)head * 16 + 8) & TXD_MAC_1588))   /* the first descriptor's */
                intel_tsync_tx(p, sent_at);
            if (peer)
                tx_to_peer(p, peer, &peer_locked, m, hint, &pk, len, wlen, crc_in_data, sent_at);
        }
        consumed += tx_writeback(q, head, pk.last);
        head = pk.last + 1 == q->size ? 0 : pk.last + 1;
    }
    if (peer_locked)
        intel_rx_unlock(peer);
    /* counted before the head moves: a driver that sees the head at the
     * tail (flush_tx) then reads counters that include every frame */
    tx_account(p, q, &sent);
    STR(&q->head, head);
    if (consumed) {
        uint32_t iv = LD(&p->tx_ivar[qi]);     /* 7.3.4: tx cause of queue qi */
        if (iv & IVAR_VALID)
            intel_irq_raise(p, 1ull << (iv & 63), now);
    }
    return consumed;
}

#define SOURCE_SCAN (2 * RX_BUDGET)  /* flows a pass looks at, at most */

/* Where the source's next n frames go: all to queue qi (RSS off, or one
 * flow: lo1 their write-back dwords 0-1), their flows in turn; or (multi)
 * frame i of flow flow[i] to queue q[i] with lo[i], its flow's; ndesc: the descriptors a frame takes
 * in a queue. */
struct source_pass {
    uint32_t n;
    int multi;
    unsigned qi;
    uint64_t lo1;
    uint8_t q[RX_BUDGET];
    uint64_t lo[RX_BUDGET];
    uint32_t flow[RX_BUDGET];
    uint32_t ndesc[SOURCE_QUEUES];   /* 0: no frame for that queue yet */
};

/* Frame i of pass s: its flow and sequence number written in. */
static inline __attribute__((always_inline)) void
source_next(struct intel_function *p, const struct source_pass *s, uint32_t i)
{
    if (s->multi) {
        sim_flows_put(&p->src_flows, p->src_frame, &p->src_rss[s->flow[i]].bytes);
    } else if (p->src_flows.n > 1) {
        sim_flows_put(&p->src_flows, p->src_frame, &p->src_rss[p->src_flows.next].bytes);
        sim_flows_advance(&p->src_flows);
    }
    if (p->src_seq_off >= 0)
        wr64(p->src_frame + p->src_seq_off, p->src_seq);
    p->src_seq++;
    p->src_sent++;
}

/* The rx queue of flow f with RSS on (hash types rss) and its write-back
 * dwords 0-1 (*lo): hashed once a flow and RSS setting (rss_gen). */
static unsigned source_flow_queue(struct intel_function *p, uint32_t rss, uint32_t gen, uint32_t f, uint64_t *lo)
{
    struct src_flow_rss *e = &p->src_rss[f];
    if (e->gen != gen) {
        if (p->src_flows.n > 1)
            sim_flows_put(&p->src_flows, p->src_frame, &e->bytes);
        e->queue = (uint8_t)intel_rss_queue(p, rss, p->src_frame, p->src_len, &e->lo);
        e->gen = gen;
    }
    *lo = e->lo;
    return e->queue;
}

/* Whether rx queue qi takes source frames (of dlen bytes) now; sets its
 * ndesc in s. */
static int source_queue_on(struct intel_function *p, struct source_pass *s, unsigned qi, uint32_t dlen)
{
    struct ring *q = &p->rx[qi];
    if (!LDA(&q->enabled) || LD(&q->faulted))
        return 0;
    s->ndesc[qi] = (dlen + q->bsize - 1) / q->bsize;
    return 1;
}

/* Queue qi's share of a pass: its flows in turn from its own position
 * (src_qpos: flow pos % n; the flows of other queues passed over), as many
 * as its ring has room for, at most n, SOURCE_SCAN flows looked at. A
 * queue that is off or full holds back only its own flows
 * (per-queue backpressure). Appends to s; returns the frames planned. */
static uint32_t source_plan_queue(struct intel_function *p, uint32_t rss, uint32_t gen, uint32_t dlen, unsigned qi,
                                  uint32_t n, struct source_pass *s)
{
    if (!source_queue_on(p, s, qi, dlen))
        return 0;
    uint32_t ndesc = s->ndesc[qi], i = 0;
    uint64_t pos = p->src_qpos[qi];
    uint32_t f = (uint32_t)(pos % p->src_flows.n);
    for (uint32_t k = 0; k < SOURCE_SCAN && i < n; k++, pos++, f = sim_flows_after(&p->src_flows, f)) {
        uint64_t lo;
        if (source_flow_queue(p, rss, gen, f, &lo) != qi)
            continue;
        if (rx_ring_room(&p->rx[qi], (i + 1) * ndesc) < (i + 1) * ndesc)
            break;
        s->q[s->n + i] = (uint8_t)qi;
        s->lo[s->n + i] = lo;
        s->flow[s->n + i++] = f;
    }
    p->src_qpos[qi] = pos;
    s->n += i;
    return i;
}

/* The flows over the queues they hash to, each queue in turn first. */
static uint32_t source_plan_flows(struct intel_function *p, uint32_t rss, uint32_t dlen, uint32_t n,
                                  struct source_pass *s)
{
    uint32_t gen = LDA(&p->rss_gen);
    if (p->src_qgen != gen) {           /* the flows' queues changed */
        for (unsigned q = 0; q < SOURCE_QUEUES; q++)
            p->src_qpos[q] = p->src_flows.next;
        p->src_qgen = gen;
    }
    s->n = 0;
    p->src_qfirst = (p->src_qfirst + 1) % SOURCE_QUEUES;
    for (unsigned j = 0; j < SOURCE_QUEUES && s->n < n; j++) {
        unsigned qi = (p->src_qfirst + j) % SOURCE_QUEUES;
        if (LD(&p->rxmask) >> qi & 1)
            source_plan_queue(p, rss, gen, dlen, qi, n - s->n, s);
    }
    return s->n;
}

/* Plans the source's next frames, at most n: where each goes (RSS off:
 * queue 0), as many as their queues have room for. Returns how many go.
 * Caller holds the rx lock. */
static uint32_t source_plan(struct intel_function *p, uint32_t rss, uint32_t dlen, uint32_t n, struct source_pass *s)
{
    memset(s->ndesc, 0, sizeof(s->ndesc));
    s->multi = rss && p->src_flows.n > 1;
    if (s->multi)
        return s->n = source_plan_flows(p, rss, dlen, n, s);
    s->lo1 = 0;
    s->qi = rss ? source_flow_queue(p, rss, LDA(&p->rss_gen), 0, &s->lo1) : 0;
    if (!source_queue_on(p, s, s->qi, dlen))
        return s->n = 0;
    uint32_t need = s->ndesc[s->qi], fit = rx_ring_room(&p->rx[s->qi], need * n) / need;
    return s->n = fit < n ? fit : n;
}

/* Frame i of pass s into rx queue qi (ndesc descriptors, write-back
 * dwords 0-1 lo). Returns 0 if the queue stopped (rx_write). */
static inline __attribute__((always_inline)) int
source_write(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
             const struct source_pass *s, uint32_t i, unsigned qi, uint32_t dlen, uint32_t ndesc, uint64_t lo)
{
    uint8_t fcs[4];
    source_next(p, s, i);
    if (dlen > p->src_len) {
        uint32_t c = eth_fcs(p->src_frame, p->src_len);
        memcpy(fcs, &c, 4);
    }
    return rx_write(p, &p->rx[qi], qi, m, hint, p->src_frame, p->src_len, fcs, dlen, ndesc, lo);
}

/* The planned frames into their queues: the work of intel_rx_frame's per
 * frame, but what is the same for every frame (the checks, the filter's
 * verdict: flows and sequence numbers lie beyond the destination address)
 * done once. Caller holds the rx lock. */
static void source_burst(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                         const struct source_pass *s, uint32_t dlen)
{
    uint32_t len = p->src_len, got[SOURCE_QUEUES] = {0};
    p->rx_dirty = 1;
    if (!rx_accept(p, p->src_frame, len, LD(&p->hlreg0), s->n)) {
        for (uint32_t i = 0; i < s->n; i++)
            source_next(p, s, i);
        return;
    }
    if (!s->multi) {
        unsigned qi = s->qi;
        uint32_t ndesc = s->ndesc[qi], n = s->n, k = 0;
        uint64_t lo = s->lo1;
        p->rx_touched |= 1ull << qi;
        while (k < n && source_write(p, m, hint, s, k, qi, dlen, ndesc, lo))
            k++;
        got[qi] = k;
    } else {
        for (uint32_t i = 0; i < s->n; i++) {
            unsigned qi = s->q[i];
            p->rx_touched |= 1ull << qi;
            if (!source_write(p, m, hint, s, i, qi, dlen, s->ndesc[qi], s->lo[i]))
                break;
            got[qi]++;
        }
    }
    for (unsigned qi = 0; qi < SOURCE_QUEUES; qi++)
        if (got[qi])
            rx_received(p, &p->rx[qi], qi, len, dlen, got[qi]);
}

/* The traffic generator at the far end of a source wire: as many frames as
 * their queues have room for, up to RX_BUDGET a pass; none is dropped for
 * want of room (the source waits). */
static unsigned source_fill(struct intel_function *p, const struct sim_dma_map *m,
                            const struct sim_dma_ent **hint, int64_t now)
{
    if (!LD(&p->rxen) || !link_is_up(p, now) || !(LD(&p->pci_command) & 4))
        return 0;
    uint32_t rss = LD(&p->rss_fields);
    uint32_t dlen = p->src_len + ((LD(&p->hlreg0) & HLREG0_RXCRCSTRP) ? 0 : 4);
    uint32_t n = RX_BUDGET;
    if (p->src_count && p->src_count - p->src_sent < n)
        n = (uint32_t)(p->src_count - p->src_sent);
    struct source_pass s;
    rx_lock(p);
    n = source_plan(p, rss, dlen, n, &s);
    int seq_in_headers = p->src_seq_off >= 0 && p->src_seq_off < (rss ? (int)p->src_rss_extent : 6);
    if (LD(&p->drop_rx) || seq_in_headers) {
        /* each frame has its own fate (a fault drops some; the sequence
         * number changes the address, or the hash) */
        for (uint32_t i = 0; i < n; i++) {
            source_next(p, &s, i);
            intel_rx_frame(p, m, hint, p->src_frame, p->src_len, NULL, now);
        }
    } else if (n) {
        source_burst(p, m, hint, &s, dlen);
    }

    intel_rx_unlock(p);
    return n;
}

static unsigned function_pass(struct intel_function *p, const struct sim_dma_map *m, int64_t now)
{
    const struct sim_dma_ent *hint = NULL;
    unsigned work = intel_wire_arrive(p, m, &hint, now);   /* on the cable whatever the sender does now */
    if (now < LD(&p->rst_until) || !dma_runs(p))
        return work;
    if (LD(&p->irq_wait)) {        /* an EITR interval may have ended */
        pthread_mutex_lock(&p->irq_lock);
        intel_irq_eval(p, now);
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

/* One pass of every function's DMA engines. The round counter is odd while the
 * pass runs, so quiesce() can wait for it to end. */
unsigned intel_one_pass(struct intel_model *sim, int64_t now)
{
    __atomic_fetch_add(&sim->round, 1, __ATOMIC_SEQ_CST);   /* odd: inside */
    const struct sim_dma_map *m = __atomic_load_n(&sim->map, __ATOMIC_SEQ_CST);
    unsigned work = 0;
    for (unsigned i = 0; i < sim->nfunctions; i++)
        work += function_pass(sim->functions[i], m, now);
    __atomic_fetch_add(&sim->round, 1, __ATOMIC_SEQ_CST);   /* even: outside */
    return work;
}
