/* A stateless 1:1 prefix NAT with a port map, per batch (ixypy.fastpath.nat):
 * for every packet, the parse of ixy_pkt.h (ixy_parse_tuple), the address
 * rewrite of a well-formed IPv4 packet whose address is in the prefix, the
 * port map on any packet with a UDP/TCP header, the IPv4 header and UDP/TCP
 * checksums updated incrementally (RFC 1624, ixy_pkt.h's helpers): what ops'
 * set_ipv4 (masked by the prefix) then set_port do, in one loop. The UDP/TCP
 * checksum is adjusted once, by the sum of both changes' deltas: the result
 * of the two adjustments one after the other (ixy_l4_csum_adjust).
 *
 * Outbound: the source address and the destination port; inbound
 * (dst set): the destination address and the source port.
 */
#ifndef IXY_NAT_H
#define IXY_NAT_H

#include <stdint.h>

#include "ixy_mempool.h"
#include "ixy_pkt.h"

struct ixy_nat {
    uint32_t from_net, mask, to_net;  /* host order: an address with (a & mask) == from_net becomes (a & ~mask) | to_net */
    uint32_t dst;                     /* 0: source address, destination port; 1: destination address, source port */
    const uint16_t *port_map;         /* [65536]: the new port by the old (the identity where not mapped) */
};

/* One direction's loop (dst a constant: each direction compiles to its own
 * loop); returns the count whose address is in the prefix (rewritten, or
 * already equal to its rewrite). */
static inline __attribute__((always_inline)) uint32_t
ixy_nat_loop(const struct ixy_nat *cfg, struct ixy_buf **bufs, uint32_t n, const int dst)
{
    const uint32_t from_net = cfg->from_net, mask = cfg->mask, to_net = cfg->to_net;
    const uint16_t *port_map = cfg->port_map;
    uint32_t hits = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *d = bufs[i]->data;
        struct ixy_tuple t;
        uint32_t delta = 0;           /* the UDP/TCP checksum's: ~m + m' of every changed word */
        ixy_parse_tuple(d, bufs[i]->len, &t);
        if ((t.flags & (IXY_PKT_IPV4 | IXY_PKT_BAD)) == IXY_PKT_IPV4) {
            uint32_t old = dst ? t.dst : t.src;
            if ((old & mask) == from_net) {
                uint32_t new = (old & ~mask) | to_net;
                hits++;
                if (new != old) {
                    uint8_t *ip = d + t.l3;
                    delta = ixy_csum_delta32(old, new);     /* the IPv4 header's too */
                    ixy_put32(ip + (dst ? 16 : 12), new);
                    ixy_put16(ip + 10, ixy_csum_adjust(ixy_be16(ip + 10), delta));
                }
            }
        }
        if ((t.flags & (IXY_PKT_L4 | IXY_PKT_BAD)) == IXY_PKT_L4) {   /* IPv4 or IPv6, in the prefix or not */
            uint16_t old = dst ? t.sport : t.dport, new = port_map[old];
            if (new != old) {
                ixy_put16(d + t.l4 + (dst ? 0 : 2), new);
                delta += ixy_csum_delta16(old, new);
            }
            if (delta)
                ixy_l4_csum_adjust(d + t.l4, t.proto, delta);
        }
    }
    return hits;
}

/* Rewrite bufs[0..n) in place; returns the count whose address is in the
 * prefix. */
static uint32_t ixy_nat_batch(const struct ixy_nat *cfg, struct ixy_buf **bufs, uint32_t n)
{
    return cfg->dst ? ixy_nat_loop(cfg, bufs, n, 1) : ixy_nat_loop(cfg, bufs, n, 0);
}

#endif
