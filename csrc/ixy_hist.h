/* A histogram of nanosecond values (how late a departure was, a latency),
 * log-linear as HdrHistogram's: values below 64 ns exactly, above them 32
 * buckets per power of two, so a quantile is within 1/32 (3.2 %) of the
 * value recorded. Fixed size: recording allocates nothing and takes no lock
 * (a histogram belongs to one thread).
 */
#ifndef IXY_HIST_H
#define IXY_HIST_H

#include <stdint.h>

#define IXY_HIST_SUB_BITS 5
#define IXY_HIST_SUB (1u << IXY_HIST_SUB_BITS)        /* buckets per power of two */
#define IXY_HIST_EXACT (2 * IXY_HIST_SUB)              /* values below this have a bucket each */
#define IXY_HIST_BUCKETS (IXY_HIST_EXACT + (63 - IXY_HIST_SUB_BITS) * IXY_HIST_SUB)

struct ixy_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t buckets[IXY_HIST_BUCKETS];
};

static inline uint32_t ixy_hist_index(uint64_t v)
{
    if (v < IXY_HIST_EXACT)
        return (uint32_t)v;
    uint32_t shift = 63 - __builtin_clzll(v) - IXY_HIST_SUB_BITS;      /* 1 and up: v >> shift is 32..63 */
    return IXY_HIST_EXACT + (shift - 1) * IXY_HIST_SUB + (uint32_t)(v >> shift) - IXY_HIST_SUB;
}

/* The largest value bucket i holds. */
static inline uint64_t ixy_hist_high(uint32_t i)
{
    if (i < IXY_HIST_EXACT)
        return i;
    uint32_t shift = (i - IXY_HIST_EXACT) / IXY_HIST_SUB + 1;
    uint64_t top = (i - IXY_HIST_EXACT) % IXY_HIST_SUB + IXY_HIST_SUB;
    return ((top + 1) << shift) - 1;
}

static inline void ixy_hist_record(struct ixy_hist *h, uint64_t v)
{
    h->buckets[ixy_hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

/* The value at or below which a fraction q (0..1) of the values lie: the
 * largest value of its bucket, or the largest recorded if that is less.
 * 0 for an empty histogram. */
static inline uint64_t ixy_hist_quantile(const struct ixy_hist *h, double q)
{
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want, seen = 0;
    if ((double)rank < want || rank == 0)
        rank++;
    for (uint32_t i = 0; i < IXY_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t high = ixy_hist_high(i);
            return high < h->max ? high : h->max;
        }
    }
    return h->max;
}

#endif
