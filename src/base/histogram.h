/* histogram: a log-linear latency histogram (HDR-style). Values below 128 have exact buckets;
 * every power of two above is split into 64 linear sub-buckets, so a bucket's midpoint is within
 * 1/128 (0.78%) of any value in it. 2752 buckets of 32 bits cover values up to 2^48 (about a day
 * in TSC ticks); larger values land in the last bucket. */
#ifndef PO__HISTOGRAM_H
#define PO__HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define PO__HIST_SUB_BITS 6
#define PO__HIST_LINEAR 128u
#define PO__HIST_MAX_EXP 47u
#define PO__HIST_BUCKETS (PO__HIST_LINEAR + (PO__HIST_MAX_EXP - 6u) * (1u << PO__HIST_SUB_BITS))

/* Hot path: the bucket of a value. Branch-light; no table. */
static inline uint32_t po__hist_bucket(uint64_t v) {
  if (v < PO__HIST_LINEAR) return (uint32_t)v;
  uint32_t e = 63u - (uint32_t)__builtin_clzll(v); /* e >= 7 */
  uint32_t sub = (uint32_t)(v >> (e - PO__HIST_SUB_BITS)) & ((1u << PO__HIST_SUB_BITS) - 1u);
  uint32_t b = PO__HIST_LINEAR + (e - 7u) * (1u << PO__HIST_SUB_BITS) + sub;
  return b < PO__HIST_BUCKETS ? b : PO__HIST_BUCKETS - 1u;
}

/* The value a bucket stands for (its midpoint). */
double po__hist_bucket_value(uint32_t b);

/* The q-quantile (0 < q <= 1) of a histogram with `total` values, by the nearest-rank rule on
 * bucket midpoints. Returns 0 for an empty histogram. */
double po__hist_quantile(const uint64_t *counts, uint64_t total, double q);
/* The same over live counters that their owner may still be bumping (read with relaxed loads). */
double po__hist_quantile_atomic(const _Atomic uint32_t *counts, uint64_t total, double q);

#endif
