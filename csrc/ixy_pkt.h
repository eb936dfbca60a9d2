/* Per-packet header work for the vectorised batch layer (ixypy.fastpath.ops):
 * parsing a frame into the 5-tuple columns, the 5-tuple flow hash, IPv4 and
 * UDP/TCP checksums (full and RFC 1624 incremental), a first-match rule scan.
 *
 * Everything here reads one frame (data, len) and never reads past len: a
 * short or malformed frame is flagged IXY_PKT_BAD, never trusted.
 */
#ifndef IXY_PKT_H
#define IXY_PKT_H

#include <stdint.h>
#include <string.h>

/* flags column */
#define IXY_PKT_IPV4 0x01   /* a well-formed IPv4 header (version, IHL, total length within the frame) */
#define IXY_PKT_IPV6 0x02   /* a well-formed IPv6 fixed header (payload length within the frame) */
#define IXY_PKT_L4   0x04   /* UDP or TCP header present: sport, dport and the checksum are valid */
#define IXY_PKT_FRAG 0x08   /* an IP fragment (IPv4 MF or offset; an IPv6 fragment header) */
#define IXY_PKT_VLAN 0x10   /* one or two 802.1Q / 802.1ad tags (vlan: the outer tag's VID) */
#define IXY_PKT_BAD  0x20   /* shorter than its headers say, or a header field out of range */

#define IXY_ETH_IPV4 0x0800
#define IXY_ETH_IPV6 0x86DD
#define IXY_ETH_VLAN 0x8100
#define IXY_ETH_QINQ 0x88A8
#define IXY_PROTO_TCP 6
#define IXY_PROTO_UDP 17
#define IXY_PROTO_IPV6_FRAG 44

/* what parse fills, one entry per packet (the columns of ixypy.fastpath.ops.Fields) */
struct ixy_cols {
    uint32_t *index, *length, *src, *dst, *hash;
    int32_t *label;
    uint16_t *l3, *l4, *ethertype, *vlan, *sport, *dport;
    uint8_t *proto, *flags, *src6, *dst6;
};

static inline uint16_t ixy_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t ixy_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
/* big-endian stores: one byte-swapped store (GCC does not merge the byte stores) */
static inline void ixy_put16(uint8_t *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    memcpy(p, &v, 2);
}
static inline void ixy_put32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}

/* What a parse finds in one frame: the header offsets and the 5-tuple. The
 * IPv6 addresses are not copied: with IXY_PKT_IPV6 set they are at d + l3 + 8
 * (source) and d + l3 + 24 (destination). */
struct ixy_tuple {
    uint32_t l3, l4, src, dst;
    uint16_t et, vlan, sport, dport;
    uint8_t proto, flags;
};

/* Parse one frame (the rules of docs/vector.md): the one parser of the
 * columns (ixy_parse) and of the rule classifier (ixy_classify.h). */
static inline void ixy_parse_tuple(const uint8_t *d, uint32_t len, struct ixy_tuple *t)
{
    uint32_t l3 = 14, l4 = 0, end = 0, src = 0, dst = 0;   /* end: where the IP payload ends */
    uint16_t et = 0, vlan = 0, sport = 0, dport = 0;
    uint8_t proto = 0, flags = 0;
    if (len < 14) {
        flags = IXY_PKT_BAD;
        l3 = 0;
        goto out;
    }
    et = ixy_be16(d + 12);
    for (int tags = 0; tags < 2 && (et == IXY_ETH_VLAN || et == IXY_ETH_QINQ); tags++) {
        if (len < l3 + 4) {
            flags |= IXY_PKT_BAD;
            goto out;
        }
        if (!tags)
            vlan = ixy_be16(d + l3) & 0x0FFF;
        flags |= IXY_PKT_VLAN;
        et = ixy_be16(d + l3 + 2);
        l3 += 4;
    }
    if (et == IXY_ETH_IPV4) {
        const uint8_t *ip = d + l3;
        uint32_t ihl, tot;
        if (len < l3 + 20 || (ip[0] >> 4) != 4 || (ihl = (ip[0] & 15) * 4u) < 20 ||
            (tot = ixy_be16(ip + 2)) < ihl || len < l3 + tot) {
            flags |= IXY_PKT_BAD;
            goto out;
        }
        flags |= IXY_PKT_IPV4;
        proto = ip[9];
        src = ixy_be32(ip + 12);
        dst = ixy_be32(ip + 16);
        uint16_t frag = ixy_be16(ip + 6);
        if (frag & 0x3FFF)
            flags |= IXY_PKT_FRAG;
        if (frag & 0x1FFF)            /* not the first fragment: no L4 header */
            goto out;
        l4 = l3 + ihl;
        end = l3 + tot;
    } else if (et == IXY_ETH_IPV6) {
        const uint8_t *ip = d + l3;
        if (len < l3 + 40 || (ip[0] >> 4) != 6 || len < (end = l3 + 40 + ixy_be16(ip + 4))) {
            flags |= IXY_PKT_BAD;
            goto out;
        }
        flags |= IXY_PKT_IPV6;
        proto = ip[6];
        l4 = l3 + 40;
        if (proto == IXY_PROTO_IPV6_FRAG) {
            if (end < l4 + 8) {
                flags |= IXY_PKT_BAD;
                goto out;
            }
            flags |= IXY_PKT_FRAG;
            proto = d[l4];
            uint16_t off = ixy_be16(d + l4 + 2) & 0xFFF8;
            l4 += 8;
            if (off) {
                l4 = 0;
                goto out;
            }
        }
    }
    /* the UDP/TCP ports, for IPv4 and IPv6 alike (proto is 0 for anything else) */
    if (proto == IXY_PROTO_UDP || proto == IXY_PROTO_TCP) {
        if (end < l4 + (proto == IXY_PROTO_UDP ? 8u : 20u)) {
            flags |= IXY_PKT_BAD;
            goto out;
        }
        flags |= IXY_PKT_L4;
        sport = ixy_be16(d + l4);
        dport = ixy_be16(d + l4 + 2);
    }
out:
    if (flags & IXY_PKT_BAD)
        l4 = 0;
    t->l3 = l3;
    t->l4 = l4;
    t->src = src;
    t->dst = dst;
    t->et = et;
    t->vlan = vlan;
    t->sport = sport;
    t->dport = dport;
    t->proto = (flags & (IXY_PKT_IPV4 | IXY_PKT_IPV6)) ? proto : 0;
    t->flags = flags;
}

/* Parse one frame into entry i of the columns. */
static inline void ixy_parse(const uint8_t *d, uint32_t len, struct ixy_cols *c, uint32_t i)
{
    struct ixy_tuple t;
    ixy_parse_tuple(d, len, &t);
    if (t.flags & IXY_PKT_IPV6) {
        memcpy(c->src6 + 16 * i, d + t.l3 + 8, 16);
        memcpy(c->dst6 + 16 * i, d + t.l3 + 24, 16);
    } else {
        memset(c->src6 + 16 * i, 0, 16);
        memset(c->dst6 + 16 * i, 0, 16);
    }
    c->length[i] = len;
    c->l3[i] = (uint16_t)t.l3;
    c->l4[i] = (uint16_t)t.l4;
    c->ethertype[i] = t.et;
    c->vlan[i] = t.vlan;
    c->proto[i] = t.proto;
    c->flags[i] = t.flags;
    c->src[i] = t.src;
    c->dst[i] = t.dst;
    c->sport[i] = t.sport;
    c->dport[i] = t.dport;
}

/* --- the 5-tuple flow hash: MurmurHash3's 32-bit block and finaliser over
 * (src, dst, sport << 16 | dport, proto); an IPv6 address enters as the XOR
 * of its four big-endian 32-bit words. */
static inline uint32_t ixy_rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static inline uint32_t ixy_mix32(uint32_t h, uint32_t k)
{
    k *= 0xCC9E2D51u;
    k = ixy_rotl32(k, 15);
    k *= 0x1B873593u;
    h ^= k;
    h = ixy_rotl32(h, 13);
    return h * 5 + 0xE6546B64u;
}

static inline uint32_t ixy_fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t ixy_fold6(const uint8_t *a)
{
    return ixy_be32(a) ^ ixy_be32(a + 4) ^ ixy_be32(a + 8) ^ ixy_be32(a + 12);
}

static inline uint32_t ixy_flow_hash(const struct ixy_cols *c, uint32_t i)
{
    uint32_t s = c->src[i], d = c->dst[i];
    if (c->flags[i] & IXY_PKT_IPV6) {
        s = ixy_fold6(c->src6 + 16 * i);
        d = ixy_fold6(c->dst6 + 16 * i);
    }
    uint32_t h = 0x811C9DC5u;
    h = ixy_mix32(h, s);
    h = ixy_mix32(h, d);
    h = ixy_mix32(h, ((uint32_t)c->sport[i] << 16) | c->dport[i]);
    h = ixy_mix32(h, c->proto[i]);
    return ixy_fmix32(h);
}

/* The exact directional 5-tuple of packet i as IXY_FLOW_KEY_SIZE bytes at k
 * (ops.Fields.flow_keys documents the layout): source and destination
 * address (16 bytes each: the IPv6 address, or the IPv4 address big-endian
 * in the first 4 bytes and 12 zero bytes), source and destination port
 * (big-endian; 0 without a UDP/TCP header), protocol, family (4 or 6), 2 zero
 * bytes. A packet that is not well-formed IPv4 or IPv6 gets 40 zero bytes
 * (family 0). Returns 1 for a flow, 0 for the others. */
#define IXY_FLOW_KEY_SIZE 40
static inline int ixy_flow_key(const struct ixy_cols *c, uint32_t i, uint8_t *k)
{
    uint8_t f = c->flags[i];
    memset(k, 0, IXY_FLOW_KEY_SIZE);
    if ((f & IXY_PKT_BAD) || !(f & (IXY_PKT_IPV4 | IXY_PKT_IPV6)))
        return 0;
    if (f & IXY_PKT_IPV6) {
        memcpy(k, c->src6 + 16 * i, 16);
        memcpy(k + 16, c->dst6 + 16 * i, 16);
        k[37] = 6;
    } else {
        ixy_put32(k, c->src[i]);
        ixy_put32(k + 16, c->dst[i]);
        k[37] = 4;
    }
    ixy_put16(k + 32, c->sport[i]);
    ixy_put16(k + 34, c->dport[i]);
    k[36] = c->proto[i];
    return 1;
}

/* --- checksums (RFC 1071 sums, RFC 1624 incremental updates) */
static inline uint32_t ixy_sum16(const uint8_t *p, uint32_t n, uint32_t sum)
{
    while (n > 1) {
        sum += ixy_be16(p);
        p += 2;
        n -= 2;
    }
    if (n)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static inline uint16_t ixy_fold(uint32_t sum)
{
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)sum;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a field changed from m to m':
 * delta is the sum of ~m + m' over the changed 16-bit words, so the deltas
 * of several changes add up (two folds take any 32-bit sum to 16 bits). */
static inline uint32_t ixy_csum_delta16(uint16_t m, uint16_t m2) { return (uint32_t)(uint16_t)~m + m2; }
static inline uint32_t ixy_csum_delta32(uint32_t m, uint32_t m2)
{
    return (uint32_t)(uint16_t)~(m >> 16) + (uint16_t)~(m & 0xFFFF) + (m2 >> 16) + (m2 & 0xFFFF);
}
static inline uint16_t ixy_csum_adjust(uint16_t hc, uint32_t delta)
{
    return (uint16_t)~ixy_fold((uint32_t)(uint16_t)~hc + delta);
}

static inline uint16_t ixy_csum_update16(uint16_t hc, uint16_t m, uint16_t m2)
{
    return ixy_csum_adjust(hc, ixy_csum_delta16(m, m2));
}

static inline uint16_t ixy_csum_update32(uint16_t hc, uint32_t m, uint32_t m2)
{
    return ixy_csum_adjust(hc, ixy_csum_delta32(m, m2));
}

/* Offset of the UDP/TCP checksum from the L4 header. */
static inline uint32_t ixy_l4_csum_at(uint8_t proto) { return proto == IXY_PROTO_UDP ? 6 : 16; }

/* Adjust the UDP/TCP checksum of the L4 header at l4 (protocol proto) by
 * delta (ixy_csum_delta16/32 of the words it covers that changed: ports, or
 * addresses in the pseudo header). A UDP checksum of 0 (none, IPv4) stays
 * 0; a result of 0 is sent as 0xFFFF. One adjustment by the sum of several
 * deltas gives the checksum the adjustments one by one would. */
static inline void ixy_l4_csum_adjust(uint8_t *l4, uint8_t proto, uint32_t delta)
{
    uint8_t *p = l4 + ixy_l4_csum_at(proto);
    uint16_t hc = ixy_be16(p);
    if (proto == IXY_PROTO_UDP && hc == 0)
        return;
    hc = ixy_csum_adjust(hc, delta);
    if (proto == IXY_PROTO_UDP && hc == 0)
        hc = 0xFFFF;
    ixy_put16(p, hc);
}

/* The same after one change of a 16-bit or (wide) 32-bit word from m to m2. */
static inline void ixy_l4_csum_update(uint8_t *l4, uint8_t proto, uint32_t m, uint32_t m2, int wide)
{
    ixy_l4_csum_adjust(l4, proto, wide ? ixy_csum_delta32(m, m2) : ixy_csum_delta16((uint16_t)m, (uint16_t)m2));
}

/* The same for packet i of the columns. */
static inline void ixy_l4_update(uint8_t *d, const struct ixy_cols *c, uint32_t i, uint32_t m, uint32_t m2, int wide)
{
    ixy_l4_csum_update(d + c->l4[i], c->proto[i], m, m2, wide);
}

/* Recompute the IPv4 header checksum of packet i (flags IPV4). */
static inline void ixy_ipv4_csum(uint8_t *d, const struct ixy_cols *c, uint32_t i)
{
    uint8_t *ip = d + c->l3[i];
    uint32_t ihl = (ip[0] & 15) * 4u;
    ip[10] = ip[11] = 0;
    ixy_put16(ip + 10, (uint16_t)~ixy_fold(ixy_sum16(ip, ihl, 0)));
}

/* Recompute the UDP/TCP checksum of an unfragmented packet i (flags L4, not FRAG). */
static inline void ixy_l4_csum(uint8_t *d, const struct ixy_cols *c, uint32_t i)
{
    const uint8_t *ip = d + c->l3[i];
    uint8_t *l4 = d + c->l4[i];
    uint32_t n, sum = c->proto[i];
    if (c->flags[i] & IXY_PKT_IPV4) {
        n = c->l3[i] + ixy_be16(ip + 2) - c->l4[i];
        sum = ixy_sum16(ip + 12, 8, sum);
    } else {
        n = c->l3[i] + 40 + ixy_be16(ip + 4) - c->l4[i];
        sum = ixy_sum16(ip + 8, 32, sum);
    }
    sum += n;
    uint8_t *p = l4 + ixy_l4_csum_at(c->proto[i]);
    p[0] = p[1] = 0;
    uint16_t cs = (uint16_t)~ixy_fold(ixy_sum16(l4, n, sum));
    if (c->proto[i] == IXY_PROTO_UDP && cs == 0)
        cs = 0xFFFF;
    ixy_put16(p, cs);
}

/* --- a first-match rule table over the 5-tuple. */
#define IXY_RULE_EITHER 0   /* ixy_rule.family: no address prefix: either family */
#define IXY_RULE_IPV4   4   /* IPv4 prefixes: IPv4 packets only */
#define IXY_RULE_IPV6   6   /* IPv6 prefixes: IPv6 packets only (any other value: no packet) */

struct ixy_rule {
    uint32_t src_net, src_mask, dst_net, dst_mask;   /* IPv4, host order; mask 0: any address (any family) */
    uint16_t sport_lo, sport_hi, dport_lo, dport_hi; /* inclusive; 0..65535: any, also without ports */
    uint16_t proto;                                  /* IP protocol, or 256: any */
    uint8_t family;                                  /* IXY_RULE_EITHER, _IPV4 or _IPV6 */
    uint8_t pad;
    uint8_t src6_net[16], src6_mask[16];             /* IPv6 (RFC 4291 prefixes), network order: an IPv6 */
    uint8_t dst6_net[16], dst6_mask[16];             /* packet's address & mask == net (all 0: any) */
};

/* Whether the 128-bit address addr (network order) & mask is net. */
static inline int ixy_prefix6_holds(const uint8_t *addr, const uint8_t *net, const uint8_t *mask)
{
    uint8_t diff = 0;
    for (int b = 0; b < 16; b++)
        diff |= (uint8_t)((addr[b] & mask[b]) ^ net[b]);
    return diff == 0;
}

/* Whether a port range admits a packet: 0..65535 admits every packet,
 * another range only one with a UDP/TCP header (flags L4) and its port in it. */
static inline int ixy_port_admits(uint16_t lo, uint16_t hi, uint8_t flags, uint16_t port)
{
    return (lo == 0 && hi == 0xFFFF) || ((flags & IXY_PKT_L4) && lo <= port && port <= hi);
}

/* Whether rule r matches the packet parsed into t, whose IPv6 source and
 * destination addresses (flags IPV6) are at src6 and dst6: the one
 * definition of a match, for the columns (ixy_rule_matches) and the
 * classifier's IPv6 scan (ixy_classify.h). */
static inline int ixy_rule_admits(const struct ixy_rule *r, const struct ixy_tuple *t, const uint8_t *src6,
                                  const uint8_t *dst6)
{
    uint8_t f = t->flags;
    if (!(f & (IXY_PKT_IPV4 | IXY_PKT_IPV6)) || (f & IXY_PKT_BAD))
        return 0;
    if (r->family != IXY_RULE_EITHER && r->family != ((f & IXY_PKT_IPV4) ? IXY_RULE_IPV4 : IXY_RULE_IPV6))
        return 0;
    if (r->proto != 256 && r->proto != t->proto)
        return 0;
    if (r->src_mask && (!(f & IXY_PKT_IPV4) || (t->src & r->src_mask) != r->src_net))
        return 0;
    if (r->dst_mask && (!(f & IXY_PKT_IPV4) || (t->dst & r->dst_mask) != r->dst_net))
        return 0;
    if ((f & IXY_PKT_IPV6) && !(ixy_prefix6_holds(src6, r->src6_net, r->src6_mask) &&
                                ixy_prefix6_holds(dst6, r->dst6_net, r->dst6_mask)))
        return 0;
    return ixy_port_admits(r->sport_lo, r->sport_hi, f, t->sport) &&
           ixy_port_admits(r->dport_lo, r->dport_hi, f, t->dport);
}

/* The same for packet i of the columns. */
static inline int ixy_rule_matches(const struct ixy_rule *r, const struct ixy_cols *c, uint32_t i)
{
    struct ixy_tuple t = {.src = c->src[i], .dst = c->dst[i], .sport = c->sport[i], .dport = c->dport[i],
                          .proto = c->proto[i], .flags = c->flags[i]};
    return ixy_rule_admits(r, &t, c->src6 + 16 * i, c->dst6 + 16 * i);
}

#endif
