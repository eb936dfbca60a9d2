/* The flows of a source wire (both models): copy f of the frame carries the
 * IPv4 source address of the template plus f, for f = 0 .. n-1 in turn, as
 * `ixypy pktgen --flows` numbers its flows. A flow's frame is the template
 * with four address bytes and the checksums that cover them patched: the
 * IPv4 header checksum, and the TCP or UDP checksum unless a UDP checksum is
 * 0 (none), each updated incrementally (RFC 1624, eqn. 3) from the template's.
 */
#ifndef IXYPY_SIM_FLOWS_H
#define IXYPY_SIM_FLOWS_H

#include <stdint.h>
#include <string.h>

#define SIM_FLOWS_MAX 65536u

/* a 16-bit one's-complement checksum field that covers the source address */
struct sim_csum_field {
    uint32_t at;              /* its offset in the frame; 0: none */
    uint32_t base;            /* ~checksum + ~address words of the template, unfolded */
    uint16_t zero_is_none;    /* UDP: a computed 0 is sent as 0xFFFF (RFC 768) */
};

struct sim_flows {
    uint32_t n;               /* flows; 1: every copy is the template */
    uint32_t next;            /* the flow of the next copy */
    uint32_t saddr_at;        /* offset of the IPv4 source address */
    uint32_t saddr;           /* the template's, host order */
    struct sim_csum_field ip, l4;
};

static inline uint16_t sim_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline void sim_csum_init(struct sim_csum_field *c, const uint8_t *frame, uint32_t at, uint32_t saddr)
{
    c->at = at;
    c->base = (uint16_t)~sim_be16(frame + at) + (uint16_t)~(saddr >> 16) + (uint16_t)~saddr;
}

/* Flows of frame (len bytes): n, or 1 (returned) if the frame is no
 * unfragmented IPv4 frame (after at most one 802.1Q tag). */
static inline uint32_t sim_flows_init(struct sim_flows *f, const uint8_t *frame, uint32_t len, uint32_t n)
{
    uint32_t l3 = len >= 18 && sim_be16(frame + 12) == 0x8100 ? 18 : 14;
    uint32_t ihl = len > l3 ? (frame[l3] & 0xF) * 4u : 0;
    *f = (struct sim_flows){.n = 1};
    if (n <= 1 || n > SIM_FLOWS_MAX || len < l3 + 20 || sim_be16(frame + l3 - 2) != 0x0800 ||
        (frame[l3] >> 4) != 4 || ihl < 20 || len < l3 + ihl || (sim_be16(frame + l3 + 6) & 0x3FFF))
        return 1;
    f->n = n;
    f->saddr_at = l3 + 12;
    f->saddr = (uint32_t)sim_be16(frame + l3 + 12) << 16 | sim_be16(frame + l3 + 14);
    sim_csum_init(&f->ip, frame, l3 + 10, f->saddr);
    uint8_t proto = frame[l3 + 9];
    uint32_t l4 = l3 + ihl + (proto == 6 ? 16 : 6);   /* TCP, UDP checksum */
    if ((proto == 6 || proto == 17) && len >= l4 + 2 && (proto == 6 || sim_be16(frame + l4)))
        sim_csum_init(&f->l4, frame, l4, f->saddr);
    f->l4.zero_is_none = proto == 17;
    return n;
}

/* The field's checksum for source address saddr. */
static inline uint16_t sim_csum_value(const struct sim_csum_field *c, uint32_t saddr)
{
    uint32_t s = c->base + (saddr >> 16) + (saddr & 0xFFFF);
    s = (s & 0xFFFF) + (s >> 16);
    s = (s & 0xFFFF) + (s >> 16);
    uint16_t v = (uint16_t)~s;
    return !v && c->zero_is_none ? 0xFFFF : v;
}

static inline void sim_put_be16(uint8_t *at, uint16_t v)
{
    at[0] = (uint8_t)(v >> 8);
    at[1] = (uint8_t)v;
}

/* What a flow's frame has of its own, in wire order: the source address
 * and the checksums that cover it (l4 unused without an L4 checksum). */
struct sim_flow_bytes {
    uint8_t saddr[4], ip[2], l4[2];
};

/* Flow number flow's bytes. */
static inline struct sim_flow_bytes sim_flows_bytes(const struct sim_flows *f, uint32_t flow)
{
    struct sim_flow_bytes b;
    uint32_t a = f->saddr + flow;
    sim_put_be16(b.saddr, (uint16_t)(a >> 16));
    sim_put_be16(b.saddr + 2, (uint16_t)a);
    sim_put_be16(b.ip, sim_csum_value(&f->ip, a));
    sim_put_be16(b.l4, f->l4.at ? sim_csum_value(&f->l4, a) : 0);
    return b;
}

/* A flow's bytes into frame. */
static inline void sim_flows_put(const struct sim_flows *f, uint8_t *frame, const struct sim_flow_bytes *b)
{
    memcpy(frame + f->saddr_at, b->saddr, 4);
    memcpy(frame + f->ip.at, b->ip, 2);
    if (f->l4.at)
        memcpy(frame + f->l4.at, b->l4, 2);
}

/* Write flow number flow's source address and checksums into frame. */
static inline void sim_flows_write(const struct sim_flows *f, uint8_t *frame, uint32_t flow)
{
    struct sim_flow_bytes b = sim_flows_bytes(f, flow);
    sim_flows_put(f, frame, &b);
}

/* The flow after flow. */
static inline uint32_t sim_flows_after(const struct sim_flows *f, uint32_t flow)
{
    return flow + 1 == f->n ? 0 : flow + 1;
}

/* The next copy's flow into frame (nothing with one flow). */
static inline void sim_flows_stamp(const struct sim_flows *f, uint8_t *frame)
{
    if (f->n > 1)
        sim_flows_write(f, frame, f->next);
}

/* That copy is sent: the next is of the next flow. */
static inline void sim_flows_advance(struct sim_flows *f)
{
    f->next = sim_flows_after(f, f->next);
}

#endif
