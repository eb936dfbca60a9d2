/* A flow table (ixypy.fastpath.flowtable, for ixypy.vapps.flowmon): packet
 * and byte counters per flow in an open-addressing hash table, updated a
 * batch at a time from the parsed columns of ixy_pkt.h.
 *
 * A flow is the exact directional 5-tuple of a well-formed IPv4 or IPv6
 * packet, its key the IXY_FLOW_KEY_SIZE (40) bytes of ixy_flow_key read as
 * 5 words; the other packets (not IP, or IXY_PKT_BAD) are counted together
 * as "other". The table is mask + 1 slots (a power of two, more than
 * max_flows), one 64-byte slot each: the key, the two counters and the
 * flow's home (its first slot). A key whose word 4 (ports, protocol,
 * family) is 0 is an empty slot: a flow's family byte is 4 or 6, never 0.
 *
 * Lookup: a packet's flow hash (ixy_flow_hash) & mask is its home; linear
 * probing walks on from there, one slot at a time (wrapping at the end),
 * while the slot holds another key. The first slot holding the key is the
 * flow's; an empty slot first means the key is in no slot (keys are never
 * removed, so a probe never passes the place a key was inserted): a new
 * flow, inserted there while the table holds fewer than max_flows flows;
 * once it holds max_flows, the packets of new flows are counted as
 * "untracked". As slots > max_flows, an empty slot always ends a probe;
 * a table whose slots were all filled from outside (the keys are writable
 * NumPy views) is caught by a probe going round the whole table: the call
 * stops and returns -1.
 *
 * Merging another table of as many slots (another worker's) looks each of
 * its flows up from the flow's home, inserting it as a packet would be
 * (same probe, same max_flows), and adds its counters.
 */
#ifndef IXY_FLOWTABLE_H
#define IXY_FLOWTABLE_H

#include <stdint.h>
#include <string.h>

#include "ixy_pkt.h"

#define IXY_FLOW_KEY_WORDS (IXY_FLOW_KEY_SIZE / 8)
#define IXY_FLOW_EMPTY_WORD 4          /* the key word holding the family byte (byte 37): 0 in an empty slot */

struct ixy_flow_slot {
    uint64_t key[IXY_FLOW_KEY_WORDS];  /* ixy_flow_key's bytes; all zero: empty */
    int64_t packets, bytes;            /* bytes: frame bytes as received (Ethernet header, no CRC) */
    int64_t home;                      /* the flow's first slot: its hash & mask */
};
_Static_assert(sizeof(struct ixy_flow_slot) == 64, "a slot is one cache line");

struct ixy_flowtable {
    struct ixy_flow_slot *slot;        /* [mask + 1] */
    uint32_t mask, max_flows, flows;   /* flows: the slots in use (never more than max_flows) */
    int64_t other_packets, other_bytes;          /* not a flow: not IP, or malformed */
    int64_t untracked_packets, untracked_bytes;  /* new flows while the table held max_flows */
};

#define IXY_FLOW_FULL (-1)             /* ixy_flowtable_slot: a new flow, and no room for it */
#define IXY_FLOW_LAP  (-2)             /* ixy_flowtable_slot: a probe went round the table (no empty slot) */

static inline int ixy_flow_key_equal(const uint64_t *a, const uint64_t *b)
{
    /* word 4 first: it tells most flows apart, and an empty slot from every key */
    return a[4] == b[4] && a[0] == b[0] && a[2] == b[2] && a[1] == b[1] && a[3] == b[3];
}

/* The slot of key (a flow: word 4 not 0), probing from home, inserted
 * there if new and the table has room; IXY_FLOW_FULL if new and the table
 * holds max_flows; IXY_FLOW_LAP if no slot holds it and none is empty. */
static inline int64_t ixy_flowtable_slot(struct ixy_flowtable *t, const uint64_t *key, uint32_t home)
{
    const uint32_t mask = t->mask;
    uint32_t i = home;
    for (uint32_t probes = 0; probes <= mask; probes++) {
        struct ixy_flow_slot *s = &t->slot[i];
        if (ixy_flow_key_equal(s->key, key))
            return i;
        if (s->key[IXY_FLOW_EMPTY_WORD] == 0) {
            if (t->flows >= t->max_flows)
                return IXY_FLOW_FULL;
            memcpy(s->key, key, sizeof s->key);
            s->home = home;
            t->flows++;
            return i;
        }
        i = (i + 1) & mask;
    }
    return IXY_FLOW_LAP;
}

/* Count packets 0..n of the parsed columns c (ops.Fields after load):
 * each packet's key and flow hash from its columns, its flow's counters,
 * or other / untracked. Returns 0, or -1 if a probe went round the table
 * (the packets before it are counted). */
static int ixy_flowtable_add(struct ixy_flowtable *t, const struct ixy_cols *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t key[IXY_FLOW_KEY_WORDS];
        int64_t len = c->length[i];
        if (!ixy_flow_key(c, i, (uint8_t *)key)) {
            t->other_packets++;
            t->other_bytes += len;
            continue;
        }
        int64_t s = ixy_flowtable_slot(t, key, ixy_flow_hash(c, i) & t->mask);
        if (s < 0) {
            if (s == IXY_FLOW_LAP)
                return -1;
            t->untracked_packets++;
            t->untracked_bytes += len;
            continue;
        }
        t->slot[s].packets++;
        t->slot[s].bytes += len;
    }
    return 0;
}

/* Add the flows and counters of o (as many slots as t) to t. Returns 0, or
 * -1 if a probe went round the table (o's flows before it are added, its
 * other and untracked counters not). */
static int ixy_flowtable_merge(struct ixy_flowtable *t, const struct ixy_flowtable *o)
{
    for (uint32_t i = 0; i <= o->mask; i++) {
        const struct ixy_flow_slot *f = &o->slot[i];
        if (f->key[IXY_FLOW_EMPTY_WORD] == 0)
            continue;
        int64_t s = ixy_flowtable_slot(t, f->key, (uint32_t)f->home & t->mask);
        if (s == IXY_FLOW_LAP)
            return -1;
        if (s == IXY_FLOW_FULL) {
            t->untracked_packets += f->packets;
            t->untracked_bytes += f->bytes;
            continue;
        }
        t->slot[s].packets += f->packets;
        t->slot[s].bytes += f->bytes;
    }
    t->other_packets += o->other_packets;
    t->other_bytes += o->other_bytes;
    t->untracked_packets += o->untracked_packets;
    t->untracked_bytes += o->untracked_bytes;
    return 0;
}

#endif
