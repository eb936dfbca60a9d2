/* A compiled first-match classifier over the 5-tuple (ixypy.fastpath.classify):
 * the rules of a table of struct ixy_rule (ixy_pkt.h, the semantics of
 * ixy_rule_matches) turned into lookup tables, so that a packet costs a few
 * loads instead of a scan of every rule.
 *
 * An IPv4 packet: the rules are taken 64 at a time (a word: bit b of word w
 * is rule 64 w + b). The rules of a word whose protocol, port ranges and
 * address prefixes' first octets admit it are the AND of five table entries
 * (protocol: 256 entries; each port: a two-level table, high byte then low
 * byte; each address: by its first octet; a rule for IPv6 packets only has
 * no octet); of those, the lowest-numbered whose whole prefixes hold the
 * packet's addresses is the first match.
 * An IPv6 packet (the general parse: ixy_classify_general) is matched by a
 * scan of only the rules an IPv6 packet can match (IPv6 prefixes, or none),
 * in order, with ixy_rule_admits, reading its addresses from the frame.
 * A packet without a UDP/TCP header matches only a rule with both port
 * ranges 0-65535, and a packet that is not well-formed IP none.
 */
#ifndef IXY_CLASSIFY_H
#define IXY_CLASSIFY_H

#include <stdint.h>

#include "ixy_mempool.h"
#include "ixy_pkt.h"

/* a rule's address prefixes, IPv4, in network order (as ixy_net32 makes
 * them: a packet's address is compared as loaded from the frame); net is 0
 * where mask is 0 (any address), so (addr & mask) == net is the whole test */
struct ixy_rule_addr {
    uint32_t src_net, src_mask, dst_net, dst_mask;
};

/* What the classifier needs of an IPv4 packet (struct ixy_key): its
 * protocol, addresses (network order: as loaded from the frame) and their
 * first octets, and its ports as high and low bytes, with a key past the
 * end of the port tables' ordinary entries, so that a packet costs the same
 * five loads whatever its kind, without a branch on it: a packet without a
 * UDP/TCP header has the ports' high byte IXY_NO_PORT (256, low byte 0,
 * whose leaf entry admits the rules whose range is 0-65535). */
#define IXY_NO_PORT 256u

struct ixy_key {
    uint32_t proto, src, dst, soct, doct, shi, slo, dhi, dlo;
};

/* The uint32_t whose bytes in memory are v's in network order (what
 * memcpy from a frame loads). */
static inline uint32_t ixy_net32(uint32_t v)
{
    uint8_t b[4];
    uint32_t r;
    ixy_put32(b, v);
    memcpy(&r, b, 4);
    return r;
}

static inline uint32_t ixy_load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* the tables of one word: 64 rules */
struct ixy_rule_word {
    uint64_t proto[256];            /* the rules admitting protocol p */
    uint64_t src_octet[256], dst_octet[256]; /* the rules for IPv4 packets whose prefix admits an address's first octet */
    uint32_t sport_hi[257], dport_hi[257];   /* by the port's high byte (256: no port), its leaf (the offset of its first entry in leaves) */
    uint64_t exact;                 /* the rules whose prefixes the octet tables decide (none longer than /8) */
};

struct ixy_classifier {
    uint32_t nrules, nwords;
    struct ixy_rule_word *words;  /* [nwords] */
    uint64_t *leaves;             /* [][256]: by the port's low byte, the rules whose range holds the port */
    struct ixy_rule_addr *addr;   /* [nrules] */
    uint32_t n6;                  /* the rules an IPv6 packet can match: */
    struct ixy_rule *rules6;      /* [n6] those rules, in order */
    uint32_t *index6;             /* [n6] and their indices */
};

/* The IPv4 key of a packet parsed into t (flags IPV4, not BAD). */
static inline void ixy_key_of_tuple(const struct ixy_tuple *t, struct ixy_key *k)
{
    k->proto = t->proto;
    k->src = ixy_net32(t->src);
    k->dst = ixy_net32(t->dst);
    k->soct = t->src >> 24;
    k->doct = t->dst >> 24;
    if (t->flags & IXY_PKT_L4) {
        k->shi = t->sport >> 8;
        k->slo = t->sport & 0xFF;
        k->dhi = t->dport >> 8;
        k->dlo = t->dport & 0xFF;
    } else {
        k->shi = k->dhi = IXY_NO_PORT;
        k->slo = k->dlo = 0;
    }
}

/* The index of the first rule an IPv6 packet (parsed into t from frame d)
 * matches, c->nrules for none: a scan of the rules an IPv6 packet can match,
 * its addresses read from the fixed header (RFC 8200: source at 8, destination at 24). */
static inline uint32_t ixy_classify6(const struct ixy_classifier *c, const struct ixy_tuple *t, const uint8_t *d)
{
    const uint8_t *ip = d + t->l3;
    for (uint32_t j = 0; j < c->n6; j++)
        if (ixy_rule_admits(&c->rules6[j], t, ip + 8, ip + 24))
            return c->index6[j];
    return c->nrules;
}

/* The key of the usual frame: untagged IPv4 (any IHL, fragments too),
 * which needs none of the general parse's VLAN loop, IPv6 branches or
 * header offsets; the caller has checked it is one (EtherType IPv4, 34
 * bytes or more: ixy_fast_frame). 0: not well-formed IPv4 (no rule). */
static inline __attribute__((always_inline)) int ixy_key_ipv4(const uint8_t *d, uint32_t len, struct ixy_key *k)
{
    const uint8_t *ip = d + 14;
    uint32_t vi = ip[0], ihl = (vi & 15) * 4u, tot = ixy_be16(ip + 2);
    if (vi - 0x45u > 0x0Au || tot < ihl || len < 14 + tot)    /* version 4, IHL 5-15; the datagram within the frame */
        return 0;
    uint32_t proto = ip[9];
    k->proto = proto;
    k->src = ixy_load32(ip + 12);
    k->dst = ixy_load32(ip + 16);
    k->soct = ip[12];
    k->doct = ip[16];
    k->shi = k->dhi = IXY_NO_PORT;
    k->slo = k->dlo = 0;
    if ((proto == IXY_PROTO_UDP || proto == IXY_PROTO_TCP) && !(ixy_be16(ip + 6) & 0x1FFF)) {
        if (tot < ihl + 20 && (proto == IXY_PROTO_TCP || tot < ihl + 8))  /* the UDP (8) or TCP (20) header past the datagram: BAD */
            return 0;
        const uint8_t *l4 = ip + ihl;
        k->shi = l4[0];
        k->slo = l4[1];
        k->dhi = l4[2];
        k->dlo = l4[3];
    }
    return 1;
}

/* Whether the frame is the usual one, for ixy_key_ipv4: 34 bytes or more
 * (Ethernet and an option-less IPv4 header), EtherType IPv4 (untagged). */
static inline int ixy_fast_frame(const uint8_t *d, uint32_t len)
{
    return len >= 34 && ixy_be16(d + 12) == IXY_ETH_IPV4;
}

/* The index of the first rule a packet of key k matches, c->nrules for
 * none: the rules of a word that admit its protocol, ports and address
 * octets are the AND of five entries; the lowest of them whose whole
 * prefixes hold its addresses is the first match (a rule of `exact` needs no
 * test beyond its octets). nwords is c->nwords, a constant where inlined
 * for one word. */
static inline __attribute__((always_inline)) uint32_t
ixy_classify_words(const struct ixy_classifier *c, const struct ixy_key *k, uint32_t nwords)
{
    for (uint32_t w = 0; w < nwords; w++) {
        const struct ixy_rule_word *wd = &c->words[w];
        uint64_t m = wd->proto[k->proto] & wd->src_octet[k->soct] & wd->dst_octet[k->doct] &
                     c->leaves[wd->sport_hi[k->shi] + k->slo] & c->leaves[wd->dport_hi[k->dhi] + k->dlo];
        if (!m)
            continue;
        if (m & -m & wd->exact)         /* the first candidate needs no prefix test */
            return w * 64 + (uint32_t)__builtin_ctzll(m);
        for (; m; m &= m - 1) {
            uint32_t b = (uint32_t)__builtin_ctzll(m), r = w * 64 + b;
            const struct ixy_rule_addr *a = &c->addr[r];
            if (((wd->exact >> b) & 1) ||
                ((k->src & a->src_mask) == a->src_net && (k->dst & a->dst_mask) == a->dst_net))
                return r;
        }
    }
    return c->nrules;
}

static inline uint32_t ixy_classify_key(const struct ixy_classifier *c, const struct ixy_key *k)
{
    return ixy_classify_words(c, k, c->nwords);
}

/* The general case: the first rule the frame (d, len) matches, c->nrules
 * for none, after ixy_parse_tuple's parse: IPv4 by the tables, IPv6 by the
 * scan (ixy_classify6), anything else no rule. */
static __attribute__((noinline)) uint32_t ixy_classify_general(const struct ixy_classifier *c, const uint8_t *d,
                                                               uint32_t len)
{
    struct ixy_tuple t;
    ixy_parse_tuple(d, len, &t);
    if (!(t.flags & (IXY_PKT_IPV4 | IXY_PKT_IPV6)) || (t.flags & IXY_PKT_BAD))
        return c->nrules;
    if (t.flags & IXY_PKT_IPV6)
        return ixy_classify6(c, &t, d);
    struct ixy_key k;
    ixy_key_of_tuple(&t, &k);
    return ixy_classify_key(c, &k);
}

/* The index of the first rule the frame (d, len) matches, cl->nrules for
 * none: the usual frame (ixy_fast_frame) by its key, inline; the others by
 * ixy_classify_general. cl and c are the same classifier: cl may be a
 * local copy whose address must not escape (the loops keep it in
 * registers), c is given to the general case. */
static inline __attribute__((always_inline)) uint32_t
ixy_classify_frame(const struct ixy_classifier *cl, const struct ixy_classifier *c, const uint8_t *d, uint32_t len,
                   uint32_t nwords)
{
    if (__builtin_expect(!ixy_fast_frame(d, len), 0))
        return ixy_classify_general(c, d, len);
    struct ixy_key k;
    return ixy_key_ipv4(d, len, &k) ? ixy_classify_words(cl, &k, nwords) : cl->nrules;
}

/* The index of the first rule the frame (d, len) matches, -1 for none. */
static inline int32_t ixy_classify(const struct ixy_classifier *c, const uint8_t *d, uint32_t len)
{
    uint32_t r = ixy_classify_frame(c, c, d, len, c->nwords);
    return r < c->nrules ? (int32_t)r : -1;
}

/* Parse, classify and count every packet of bufs[0..n); the packets whose
 * rule's action (action[nrules]: no rule) is not 0 go to the front, in
 * order, the others behind them (in any order): returns the count kept.
 * Frees nothing, so that it can run without the GIL while other threads
 * allocate from the same pools: the caller frees bufs[kept..n) after.
 * The classifier is copied to a local, so that no store of the loop (a
 * count) can change it and the compiler keeps its pointers in registers. */
static inline __attribute__((always_inline)) uint32_t
ixy_filter_words(const struct ixy_classifier *c, const uint8_t *action, int64_t *count,
                 struct ixy_buf **bufs, uint32_t n, uint32_t nwords)
{
    const struct ixy_classifier cl = *c;
    uint32_t i = 0, j;
    for (; i < n; i++) {            /* until the first drop, every packet stays where it is */
        struct ixy_buf *b = bufs[i];
        uint32_t r = ixy_classify_frame(&cl, c, b->data, b->len, nwords);
        count[r]++;
        if (!action[r])
            break;
    }
    if (i == n)
        return n;
    for (j = i++; i < n; i++) {     /* bufs[j..i): dropped */
        struct ixy_buf *b = bufs[i];
        uint32_t r = ixy_classify_frame(&cl, c, b->data, b->len, nwords);
        count[r]++;
        if (action[r]) {            /* swap: the dropped packet at j moves to i */
            bufs[i] = bufs[j];
            bufs[j++] = b;
        }
    }
    return j;
}

static uint32_t ixy_filter(const struct ixy_classifier *c, const uint8_t *action, int64_t *count,
                           struct ixy_buf **bufs, uint32_t n)
{
    if (c->nwords == 1)             /* up to 64 rules: the word loop unrolled, its tables' addresses in registers */
        return ixy_filter_words(c, action, count, bufs, n, 1);
    return ixy_filter_words(c, action, count, bufs, n, c->nwords);
}

#endif
