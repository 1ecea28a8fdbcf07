#include "base/histogram.h"

#include <math.h>
#include <stdatomic.h>

double po__hist_bucket_value(uint32_t b) {
  if (b < PO__HIST_LINEAR) return (double)b;
  uint32_t k = b - PO__HIST_LINEAR;
  uint32_t e = 7u + k / (1u << PO__HIST_SUB_BITS);
  uint32_t sub = k % (1u << PO__HIST_SUB_BITS);
  double width = ldexp(1.0, (int)(e - PO__HIST_SUB_BITS));
  double lower = ldexp(1.0, (int)e) + (double)sub * width;
  return lower + width / 2.0;
}

double po__hist_quantile(const uint64_t *counts, uint64_t total, double q) {
  if (total == 0) return 0;
  uint64_t rank = (uint64_t)ceil(q * (double)total);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (uint32_t b = 0; b < PO__HIST_BUCKETS; b++) {
    seen += counts[b];
    if (seen >= rank) return po__hist_bucket_value(b);
  }
  return po__hist_bucket_value(PO__HIST_BUCKETS - 1u);
}

double po__hist_quantile_atomic(const _Atomic uint32_t *counts, uint64_t total, double q) {
  if (total == 0) return 0;
  uint64_t rank = (uint64_t)ceil(q * (double)total);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (uint32_t b = 0; b < PO__HIST_BUCKETS; b++) {
    seen += atomic_load_explicit(&counts[b], memory_order_relaxed);
    if (seen >= rank) return po__hist_bucket_value(b);
  }
  return po__hist_bucket_value(PO__HIST_BUCKETS - 1u);
}
