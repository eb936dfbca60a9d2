/* A compiled first-match classifier over the 5-tuple (ixypy.fastpath.classify):
 * the rules of a table of struct ixy_rule (ixy_pkt.h, the semantics of
 * ixy_rule_matches) turned into lookup tables, so that a packet costs a few
 * loads instead of a scan of every rule.
 *
 * The rules are taken 64 at a time (a word: bit b of word w is rule 64 w + b).
 * For a packet, the rules of a word whose protocol, port ranges and, for
 * IPv4, address prefixes' first octets admit it are the AND of five table
 * entries (protocol: 256 entries; each port: a two-level table, high byte
 * then low byte; each address: by its first octet); of those, the
 * lowest-numbered whose whole prefixes hold the packet's addresses is the
 * first match.
 * An IPv6 packet can match only a rule without an address prefix (the
 * prefixes are IPv4), a packet without a UDP/TCP header only a rule with
 * both port ranges 0-65535, and a packet that is not well-formed IP none.
 */
#ifndef IXY_CLASSIFY_H
#define IXY_CLASSIFY_H

#include <stdint.h>

#include "ixy_mempool.h"
#include "ixy_pkt.h"

/* a rule's address prefixes, IPv4, host order; net is 0 where mask is 0
 * (any address), so (addr & mask) == net is the whole test */
struct ixy_rule_addr {
    uint32_t src_net, src_mask, dst_net, dst_mask;
};

/* the tables of one word: 64 rules */
struct ixy_rule_word {
    uint64_t proto[256];            /* the rules admitting protocol p */
    uint64_t src_octet[256], dst_octet[256]; /* the rules whose prefix admits an IPv4 address's first octet */
    uint32_t sport_hi[256], dport_hi[256];   /* by the port's high byte, its leaf (a row of leaves) */
    uint64_t no_ports;              /* the rules with both port ranges 0-65535 */
    uint64_t no_prefix;             /* the rules without an address prefix */
};

struct ixy_classifier {
    uint32_t nrules, nwords;
    struct ixy_rule_word *words;  /* [nwords] */
    uint64_t *leaves;             /* [][256]: by the port's low byte, the rules whose range holds the port */
    struct ixy_rule_addr *addr;   /* [nrules] */
};

/* The index of the first rule packet t matches, -1 for none. */
static inline int32_t ixy_classify(const struct ixy_classifier *c, const struct ixy_tuple *t)
{
    uint8_t f = t->flags;
    if (!(f & (IXY_PKT_IPV4 | IXY_PKT_IPV6)) || (f & IXY_PKT_BAD))
        return -1;
    uint32_t sp = t->sport, dp = t->dport;
    for (uint32_t w = 0; w < c->nwords; w++) {
        const struct ixy_rule_word *wd = &c->words[w];
        uint64_t m = wd->proto[t->proto];
        if (f & IXY_PKT_L4)
            m &= c->leaves[(wd->sport_hi[sp >> 8] << 8) | (sp & 0xFF)] &
                 c->leaves[(wd->dport_hi[dp >> 8] << 8) | (dp & 0xFF)];
        else
            m &= wd->no_ports;
        if (f & IXY_PKT_IPV6)
            m &= wd->no_prefix;
        else
            m &= wd->src_octet[t->src >> 24] & wd->dst_octet[t->dst >> 24];
        for (; m; m &= m - 1) {
            uint32_t r = w * 64 + (uint32_t)__builtin_ctzll(m);
            const struct ixy_rule_addr *a = &c->addr[r];
            if ((t->src & a->src_mask) == a->src_net && (t->dst & a->dst_mask) == a->dst_net)
                return (int32_t)r;
        }
    }
    return -1;
}

/* Parse, classify and count every packet of bufs[0..n); the packets whose
 * rule's action (action[nrules]: no rule) is not 0 go to the front, in
 * order, the others behind them (in any order): returns the count kept.
 * Frees nothing, so that it can run without the GIL while other threads
 * allocate from the same pools: the caller frees bufs[kept..n) after.
 * The classifier is copied to a local, so that no store of the loop (a
 * count) can change it and the compiler keeps its pointers in registers. */
static uint32_t ixy_filter(const struct ixy_classifier *c, const uint8_t *action, int64_t *count,
                           struct ixy_buf **bufs, uint32_t n)
{
    const struct ixy_classifier cl = *c;
    uint32_t j = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct ixy_buf *b = bufs[i];
        struct ixy_tuple t;
        ixy_parse_tuple(b->data, b->len, &t);
        int32_t label = ixy_classify(&cl, &t);
        uint32_t r = label >= 0 ? (uint32_t)label : cl.nrules;
        count[r]++;
        if (action[r]) {            /* swap: the dropped packet at j (if any) moves to i */
            bufs[i] = bufs[j];
            bufs[j++] = b;
        }
    }
    return j;
}

#endif
