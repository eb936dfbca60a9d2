/* The cable of each function of the Intel model: a sink, a pair (or loopback),
 * a traffic source, a frame injected now; the link delay and what crossed
 * the cable (wire statistics).
 */
#define _GNU_SOURCE
#include "intel_core.h"
#include "sim_shared.h"

/* ---- the wire ------------------------------------------------------------------------ */
static void wire_detach(struct intel_function *p)
{
    __atomic_store_n(&p->wire, WIRE_SINK, __ATOMIC_SEQ_CST);
    quiesce(p->sim);
    rx_lock(p);
    intel_rx_unlock(p);
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

void intel_model_get_wire_stats(struct intel_function *p, struct intel_wire_stats *out)
{
    out->tx_packets = LD(&p->wst.tx_packets);
    out->tx_bytes = LD(&p->wst.tx_bytes);
    out->rx_packets = LD(&p->wst.rx_packets);
    out->rx_bytes = LD(&p->wst.rx_bytes);
    out->rx_no_desc_drops = LD(&p->wst.rx_no_desc_drops);
    out->rx_filtered = LD(&p->wst.rx_filtered);
}
