/* The cable of each function of the Intel model: a sink, a pair (or loopback),
 * a traffic source, a frame injected now; the link delay, the propagation
 * delay of a pair or loop (its delay line) and what crossed the cable (wire
 * statistics).
 */
#define _GNU_SOURCE
#include "intel_core.h"
#include "sim_shared.h"

#include <errno.h>

/* ---- the wire ------------------------------------------------------------------------ */
/* The function off the engine's wire (a sink) once any pass using it has
 * ended; the frames in flight on its delay line are lost with the cable. */
static void wire_detach(struct intel_function *p)
{
    __atomic_store_n(&p->wire, WIRE_SINK, __ATOMIC_SEQ_CST);
    quiesce(p->sim);
    rx_lock(p);
    intel_rx_unlock(p);
    p->delay.count = 0;
}

void intel_model_wire_sink(struct intel_function *p)
{
    struct intel_function *peer = LD(&p->peer);
    wire_detach(p);
    ST(&p->peer, NULL);
    if (peer && peer != p && LD(&peer->peer) == p) {
        wire_detach(peer);
        ST(&peer->peer, NULL);
    }
}

void intel_model_wire_pair(struct intel_function *a, struct intel_function *b)
{
    intel_model_wire_sink(a);
    intel_model_wire_sink(b);
    ST(&a->peer, b);
    ST(&b->peer, a);
    __atomic_store_n(&a->wire, WIRE_PAIR, __ATOMIC_RELEASE);
    __atomic_store_n(&b->wire, WIRE_PAIR, __ATOMIC_RELEASE);
}

/* The source's flows of its frame (len bytes), each with its bytes and
 * room to cache its queue, none yet valid. */
static void source_flows(struct intel_function *p, uint32_t len, uint32_t flows)
{
    uint32_t n = sim_flows_init(&p->src_flows, p->src_frame, len, flows);
    if (n < flows)
        ERR(p, "wire_source: %u flows asked for, the frame is no IPv4 frame whose source address can vary "
            "(or more than %u): one flow", flows, SIM_FLOWS_MAX);
    struct src_flow_rss *rss = sim_shared_realloc(p->src_rss, n * sizeof(*rss));
    if (!rss) {
        ERR(p, "wire_source: no memory for %u flows: one flow", n);
        n = sim_flows_init(&p->src_flows, p->src_frame, len, 1);
        rss = p->src_rss;           /* has room for one */
    }
    p->src_rss = rss;
    uint32_t stale = LDA(&p->rss_gen) - 1;
    for (uint32_t f = 0; f < n; f++) {
        rss[f].gen = stale;
        rss[f].bytes = sim_flows_bytes(&p->src_flows, f);
    }
    p->src_qgen = stale;
}

void intel_model_wire_source(struct intel_function *p, const uint8_t *frame, uint32_t len,
                       uint64_t count, int seq_offset, uint32_t flows)
{
    intel_model_wire_sink(p);
    if (len > INTEL_MODEL_MAX_FRAME)
        len = INTEL_MODEL_MAX_FRAME;
    memcpy(p->src_frame, frame, len);
    p->src_len = len;
    p->src_rss_extent = intel_rss_extent(frame, len);
    source_flows(p, len, flows);
    p->src_count = count;
    p->src_sent = 0;
    p->src_seq = 0;
    p->src_seq_off = (seq_offset >= 0 && (uint32_t)seq_offset + 8 <= len) ? seq_offset : -1;
    if (seq_offset >= 0 && p->src_seq_off < 0)
        ERR(p, "wire_source: sequence offset %d does not fit a %u-byte frame (no sequence numbers)",
            seq_offset, len);
    __atomic_store_n(&p->wire, WIRE_SOURCE, __ATOMIC_RELEASE);
}

int intel_model_inject(struct intel_function *p, const uint8_t *frame, uint32_t len)
{
    if (len > INTEL_MODEL_MAX_FRAME)
        return 0;
    struct intel_model *sim = p->sim;
    pthread_mutex_lock(&sim->map_lock);
    const struct sim_dma_ent *hint = NULL;
    rx_lock(p);
    int r = intel_rx_frame(p, sim->map, &hint, frame, len, NULL, now_ns());
    intel_rx_unlock(p);
    pthread_mutex_unlock(&sim->map_lock);
    return r;
}

void intel_model_set_link_delay(struct intel_function *p, int64_t usec)
{
    ST(&p->link_delay_us, usec);
}

/* ---- the delay line ------------------------------------------------------------------ */
/* A jitter drawn uniformly from [-jitter, +jitter] ns (xorshift64*). */
static int64_t delay_jitter(struct wire_delay *d)
{
    if (!d->jitter_ns)
        return 0;
    uint64_t x = d->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    d->rng = x;
    uint64_t r = x * 0x2545F4914F6CDD1DULL;
    return (int64_t)(r % (uint64_t)(2 * d->jitter_ns + 1)) - d->jitter_ns;
}

void intel_wire_depart(struct intel_function *p, const uint8_t *data, uint32_t len, const uint8_t *crc,
                       int64_t now)
{
    struct wire_delay *d = &p->delay;
    if (d->count == d->frames) {
        ADD(&p->wst.delay_drops, 1);
        return;
    }
    uint32_t i = d->head + d->count;
    struct wire_slot *s = &d->slot[i >= d->frames ? i - d->frames : i];
    s->due = now + d->delay_ns + delay_jitter(d);
    s->len = len;
    s->has_crc = crc != NULL;
    memcpy(s->data, data, len);
    if (crc)
        memcpy(s->data + len, crc, 4);
    d->count++;
}

/* Frames leave the delay line in the order they entered it: one due
 * before the frame ahead of it waits for that one (in order, its arrival
 * max(its due time, the previous frame's arrival)). */
unsigned intel_wire_arrive(struct intel_function *p, const struct sim_dma_map *m, const struct sim_dma_ent **hint,
                           int64_t now)
{
    struct wire_delay *d = &p->delay;
    struct intel_function *peer = LDA(&p->peer);
    if (!d->count || LDA(&p->wire) != WIRE_PAIR || !peer || d->slot[d->head].due > now)
        return d->count;
    rx_lock(peer);
    while (d->count && d->slot[d->head].due <= now) {
        struct wire_slot *s = &d->slot[d->head];
        intel_rx_frame(peer, m, hint, s->data, s->len, s->has_crc ? s->data + s->len : NULL, now);
        d->head = d->head + 1 == d->frames ? 0 : d->head + 1;
        d->count--;
    }
    intel_rx_unlock(peer);
    return d->count;
}

int intel_model_set_wire_delay(struct intel_function *p, int64_t delay_ns, int64_t jitter_ns, uint32_t frames)
{
    if (delay_ns < 0 || jitter_ns < 0 || ((delay_ns || jitter_ns) && !frames))
        return EINVAL;
    if (!delay_ns && !jitter_ns)
        frames = 0;
    struct wire_delay *d = &p->delay;
    int wire = __atomic_exchange_n(&p->wire, WIRE_SINK, __ATOMIC_SEQ_CST);
    quiesce(p->sim);
    int rc = 0;
    if (frames != d->frames) {    /* new slots (what frames held is dropped anyway) */
        struct wire_slot *slot = frames ? sim_shared_calloc((size_t)frames * sizeof(*slot)) : NULL;
        if (frames && !slot) {
            rc = ENOMEM;
        } else {
            sim_shared_free(d->slot);
            d->slot = slot;
            d->frames = frames;
        }
    }
    if (!rc) {
        d->delay_ns = delay_ns;
        d->jitter_ns = jitter_ns;
        d->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)now_ns() << 8) ^ p->index;
    }
    d->head = d->count = 0;
    __atomic_store_n(&p->wire, wire, __ATOMIC_SEQ_CST);
    return rc;
}

int intel_model_log_departures(struct intel_function *p, uint32_t frames)
{
    int64_t *log = frames ? sim_shared_calloc((size_t)frames * sizeof(*log)) : NULL;
    if (frames && !log)
        return ENOMEM;
    /* passes log only while the cap is set: clear it, let a pass that read
     * it end, then swap the log and set the cap again */
    __atomic_store_n(&p->departures_cap, 0, __ATOMIC_SEQ_CST);
    quiesce(p->sim);
    sim_shared_free(p->departures);
    p->departures = log;
    p->departures_n = 0;
    __atomic_store_n(&p->departures_cap, frames, __ATOMIC_RELEASE);
    return 0;
}

const int64_t *intel_model_departures(struct intel_function *p, uint32_t *n)
{
    *n = LDA(&p->departures_n);
    return p->departures;
}

void intel_model_get_wire_stats(struct intel_function *p, struct intel_wire_stats *out)
{
    out->tx_packets = LD(&p->wst.tx_packets);
    out->tx_bytes = LD(&p->wst.tx_bytes);
    out->rx_packets = LD(&p->wst.rx_packets);
    out->rx_bytes = LD(&p->wst.rx_bytes);
    out->rx_no_desc_drops = LD(&p->wst.rx_no_desc_drops);
    out->rx_filtered = LD(&p->wst.rx_filtered);
    out->delay_drops = LD(&p->wst.delay_drops);
}
