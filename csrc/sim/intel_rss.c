/* Receive-side scaling in the Intel model (82599 7.1.2.8, 82576 7.1.1.x):
 * MRQC, the 40-byte key RSSRK and the 128-entry redirection table RETA,
 * the Toeplitz hash of a frame's IP addresses (and TCP/UDP ports when the
 * enabled hash type asks for them), and the queue the hash picks.
 *
 * Both datasheets put the registers at the same offsets and MRQC's
 * hash-field bits in the same places; they differ in MRQC's queue-mode
 * field (82599 MRQE bits 3:0, RSS only = 0001b; 82576 bits 2:0, RSS only =
 * 010b) and in how many bits of a RETA entry name the queue (82599 bits
 * 3:0, 16 queues; 82576 bits 2:0, 8 queues): the variant table says which.
 *
 * Modelling choices: IPv6 extension headers are not parsed (a frame whose
 * next header is not TCP or UDP gets the address-only hash; the IPv6Ex
 * types hash as the plain IPv6 ones, which is what they compute for a frame
 * without the home-address or routing header); one 802.1Q tag is skipped;
 * the packet-type field of the write-back stays 0. A frame without an
 * enabled hash type goes to queue 0 with hash and RSS type 0.
 */
#define _GNU_SOURCE
#include "intel_core.h"

#define R_MRQC        0x05818
#define R_RETA(n)     (0x05C00 + 4 * (n))      /* 32: four 8-bit entries each, entry 4n in bits 7:0 */
#define R_RSSRK(n)    (0x05C80 + 4 * (n))      /* 10: key byte 4n in bits 7:0 */

/* MRQC bits 31:16, the hash types (same bits on both) */
#define F_TCP_IPV4     (1u << 16)
#define F_IPV4         (1u << 17)
#define F_TCP_IPV6_EX  (1u << 18)
#define F_IPV6_EX      (1u << 19)
#define F_IPV6         (1u << 20)
#define F_TCP_IPV6     (1u << 21)
#define F_UDP_IPV4     (1u << 22)
#define F_UDP_IPV6     (1u << 23)
#define F_UDP_IPV6_EX  (1u << 24)
#define F_ALL          0x01FF0000u

/* the RSS type in bits 3:0 of write-back dword 0 */
enum { T_NONE = 0, T_TCP_IPV4 = 1, T_IPV4 = 2, T_TCP_IPV6 = 3, T_IPV6_EX = 4, T_IPV6 = 5,
       T_TCP_IPV6_EX = 6, T_UDP_IPV4 = 7, T_UDP_IPV6 = 8, T_UDP_IPV6_EX = 9 };

/* The RSS registers changed: the source's flows hash anew. */
static int rss_changed(struct intel_function *p)
{
    __atomic_fetch_add(&p->rss_gen, 1, __ATOMIC_RELEASE);
    return 1;
}

int intel_rss_write(struct intel_function *p, uint32_t off, uint32_t v)
{
    if (off == R_MRQC) {
        reg_set(p, off, v);
        uint32_t on = (v & p->v->mrqc_mrqe) == p->v->mrqc_rss_only;
        ST(&p->rss_fields, on ? (v & F_ALL) : 0);
        return rss_changed(p);
    }
    if (off >= R_RSSRK(0) && off < R_RSSRK(10)) {
        unsigned n = (off - R_RSSRK(0)) / 4;
        reg_set(p, off, v);
        for (unsigned j = 0; j < 4; j++)
            ST(&p->rss_key[4 * n + j], (uint8_t)(v >> (8 * j)));
        return rss_changed(p);
    }
    if (off >= R_RETA(0) && off < R_RETA(32)) {
        unsigned n = (off - R_RETA(0)) / 4;
        reg_set(p, off, v);
        for (unsigned j = 0; j < 4; j++)
            ST(&p->rss_reta[4 * n + j], (uint8_t)((v >> (8 * j)) & p->v->reta_qindex));
        return rss_changed(p);
    }
    return 0;
}

void intel_rss_reset(struct intel_function *p)
{
    ST(&p->rss_fields, 0);
    memset(p->rss_key, 0, sizeof(p->rss_key));
    memset(p->rss_reta, 0, sizeof(p->rss_reta));
    rss_changed(p);
}

/* The Toeplitz hash of n bytes (at most 36) under the 40-byte key: for each
 * input bit from the first byte's most significant on, set bits XOR in the
 * 32 key bits starting at that bit's position. */
static uint32_t toeplitz(const uint8_t *key, const uint8_t *in, unsigned n)
{
    uint64_t win = 0;
    for (unsigned i = 0; i < 8; i++)
        win = win << 8 | LD(&key[i]);
    uint32_t h = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t b = in[i];
        for (int bit = 7; bit >= 0; bit--) {
            if (b >> bit & 1)
                h ^= (uint32_t)(win >> 32);
            win <<= 1;
        }
        if (i + 8 < 40)
            win |= LD(&key[i + 8]);
    }
    return h;
}

/* The hash type of an IPv4 (v6 = 0) or IPv6 frame whose L4 protocol is
 * proto (-1: none hashable, a fragment), among the enabled ones. */
static unsigned hash_type(uint32_t f, int v6, int proto)
{
    if (!v6) {
        if (proto == 6 && (f & F_TCP_IPV4))
            return T_TCP_IPV4;
        if (proto == 17 && (f & F_UDP_IPV4))
            return T_UDP_IPV4;
        return (f & F_IPV4) ? T_IPV4 : T_NONE;
    }
    if (proto == 6 && (f & (F_TCP_IPV6_EX | F_TCP_IPV6)))
        return (f & F_TCP_IPV6_EX) ? T_TCP_IPV6_EX : T_TCP_IPV6;
    if (proto == 17 && (f & (F_UDP_IPV6_EX | F_UDP_IPV6)))
        return (f & F_UDP_IPV6_EX) ? T_UDP_IPV6_EX : T_UDP_IPV6;
    if (f & F_IPV6_EX)
        return T_IPV6_EX;
    return (f & F_IPV6) ? T_IPV6 : T_NONE;
}

/* Where a frame's L3 header starts (after one 802.1Q tag), with its
 * ethertype in *etype; 0 for a frame too short to have one. */
static uint32_t l3_start(const uint8_t *data, uint32_t len, uint16_t *etype)
{
    if (len < 14)
        return 0;
    *etype = (uint16_t)(data[12] << 8 | data[13]);
    if (*etype == 0x8100 && len >= 18) {
        *etype = (uint16_t)(data[16] << 8 | data[17]);
        return 18;
    }
    return 14;
}

uint32_t intel_rss_extent(const uint8_t *data, uint32_t len)
{
    uint16_t etype;
    uint32_t l3 = l3_start(data, len, &etype);
    if (!l3)
        return len;
    if (etype == 0x0800 && len > l3) {
        uint32_t ihl = (data[l3] & 0xF) * 4u;
        return l3 + (ihl + 4 > 20 ? ihl + 4 : 20);   /* the header, then the ports */
    }
    if (etype == 0x86DD)
        return l3 + 44;                               /* the header, then the ports */
    return l3;
}

/* The rx queue of a frame (len bytes from the destination address) while
 * RSS is on with hash types fields; *lo gets write-back dwords 0 and 1. */
unsigned intel_rss_queue(struct intel_function *p, uint32_t fields, const uint8_t *data, uint32_t len, uint64_t *lo)
{
    *lo = 0;
    uint16_t etype;
    uint32_t l3 = l3_start(data, len, &etype);
    if (!l3)
        return 0;
    uint8_t in[36];
    unsigned n, type;
    if (etype == 0x0800) {
        if (len < l3 + 20 || (data[l3] >> 4) != 4)
            return 0;
        uint32_t ihl = (data[l3] & 0xF) * 4u;
        int frag = ((data[l3 + 6] & 0x3F) << 8 | data[l3 + 7]) != 0;   /* MF or an offset */
        int proto = frag || ihl < 20 ? -1 : data[l3 + 9];
        type = hash_type(fields, 0, proto);
        if (type == T_NONE)
            return 0;
        memcpy(in, data + l3 + 12, 8);          /* source, destination address */
        n = 8;
        if (type != T_IPV4) {
            if (len < l3 + ihl + 4)
                type = (fields & F_IPV4) ? T_IPV4 : T_NONE;
            else {
                memcpy(in + 8, data + l3 + ihl, 4);   /* source, destination port */
                n = 12;
            }
        }
    } else if (etype == 0x86DD) {
        if (len < l3 + 40 || (data[l3] >> 4) != 6)
            return 0;
        type = hash_type(fields, 1, data[l3 + 6]);
        if (type == T_NONE)
            return 0;
        memcpy(in, data + l3 + 8, 32);
        n = 32;
        if (type == T_TCP_IPV6 || type == T_TCP_IPV6_EX || type == T_UDP_IPV6 || type == T_UDP_IPV6_EX) {
            if (len < l3 + 44)
                type = hash_type(fields, 1, -1);
            else {
                memcpy(in + 32, data + l3 + 40, 4);
                n = 36;
            }
        }
    } else {
        return 0;
    }
    if (type == T_NONE)
        return 0;
    uint32_t h = toeplitz(p->rss_key, in, n);
    *lo = (uint64_t)h << 32 | type;
    return LD(&p->rss_reta[h & 127]);
}
