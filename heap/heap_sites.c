/* libperfopt-heap: the call-site table and Poisson sampling.
 *
 * Sites live in the process's slot of the segment: an open-addressing table keyed by a 64-bit
 * hash of the stack, filled lock-free (the first thread to CAS the key writes the frames and then
 * sets ready). The table refuses new sites past 7/8 full and when a probe sequence is longer
 * than 64 slots; each refused recording is counted in sites_dropped.
 *
 * Sampling as in tcmalloc and jemalloc: each thread draws the bytes until its next sample from an
 * exponential distribution with mean T, so the sampled bytes are a Poisson process over the
 * allocated bytes; an allocation of n bytes is then sampled with probability p = 1 - exp(-n/T)
 * and counts n/p bytes, which makes every per-site sum an unbiased estimate.
 */
#include <string.h>

#include "shim.h"

#define MAX_PROBES 64u

static uint64_t hash_frames(const uint64_t *f, uint32_t d) {
  uint64_t h = 0x84222325cbf29ce4ull ^ d;
  for (uint32_t i = 0; i < d; i++) {
    h ^= f[i];
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  return h ? h : 1;
}

uint32_t shim_site_for_stack(void) {
  po_heap_proc *p = shim_g.proc;
  uint64_t frames[PO_HEAP_MAX_FRAMES];
  int truncated;
  uint32_t depth = shim_stack(frames, PO_HEAP_MAX_FRAMES, &truncated);
  if (truncated) SHARED_ADD(&p->stacks_truncated, 1);
  uint64_t key = hash_frames(frames, depth);
  uint32_t mask = PO_HEAP_MAX_SITES - 1, i = (uint32_t)key & mask;
  for (uint32_t probe = 0; probe < MAX_PROBES; probe++, i = (i + 1) & mask) {
    po_heap_site *s = &p->sites[i];
    uint64_t k = LOAD(&s->key);
    if (k == key) return i + 1;
    if (k != 0) continue;
    if (LOAD(&p->sites_used) >= PO_HEAP_MAX_SITES / 8 * 7) break;
    if (!__atomic_compare_exchange_n(&s->key, &k, key, 0, __ATOMIC_ACQ_REL, RELAXED)) {
      if (k == key) return i + 1;
      continue;
    }
    memcpy(s->frames, frames, depth * sizeof frames[0]);
    s->depth = depth;
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    SHARED_ADD(&p->sites_used, 1);
    return i + 1;
  }
  SHARED_ADD(&p->sites_dropped, 1);
  return 0;
}

/* Saves the site's value at the last peak before it changes (see po_heap_site.epoch). */
static inline void sync_epoch(po_heap_proc *p, po_heap_site *s) {
  uint64_t e = __atomic_load_n(&p->peak_epoch, __ATOMIC_ACQUIRE);
  if (LOAD(&s->epoch) != e) {
    STORE(&s->bytes_at_peak, LOAD(&s->live_bytes));
    STORE(&s->epoch, e);
  }
}

void shim_site_alloc(uint32_t site, int64_t bytes, int64_t count) {
  po_heap_proc *p = shim_g.proc;
  if (!site || site > PO_HEAP_MAX_SITES) return;
  po_heap_site *s = &p->sites[site - 1];
  sync_epoch(p, s);
  SHARED_ADD(&s->alloc_count, (uint64_t)count);
  SHARED_ADD(&s->alloc_bytes, (uint64_t)bytes);
  SHARED_ADD(&s->live_count, count);
  SHARED_ADD(&s->live_bytes, bytes);
}

void shim_site_free(uint32_t site, int64_t bytes, int64_t count) {
  po_heap_proc *p = shim_g.proc;
  if (!site || site > PO_HEAP_MAX_SITES || !p) return;
  po_heap_site *s = &p->sites[site - 1];
  sync_epoch(p, s);
  SHARED_ADD(&s->live_count, -count);
  SHARED_ADD(&s->live_bytes, -bytes);
}

/* ---- sampling --------------------------------------------------------------------------- */
/* Why hand-written: the shim may not depend on libm; these need ~1e-7 relative accuracy. */

/* ln(u) for u > 0: u = m * 2^e with m in [1, 2), ln m = 2 atanh((m - 1) / (m + 1)). */
static double fast_ln(double u) {
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
  double m;
  memcpy(&m, &bits, sizeof m);
  double s = (m - 1) / (m + 1), s2 = s * s;
  double series =
      s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 / 11)))));
  return e * 0.6931471805599453 + 2 * series;
}

/* 1 - exp(-x) for x >= 0 without cancellation for small x. */
static double one_minus_exp_neg(double x) {
  if (x > 40) return 1;
  if (x < 0.5) {
    double term = x, sum = 0;
    for (int k = 1; k <= 14; k++) {
      sum += term;
      term *= -x / (k + 1);
    }
    return sum;
  }
  int k = (int)(x / 0.6931471805599453 + 0.5);
  double r = x - k * 0.6931471805599453, term = 1, e = 1;
  for (int i = 1; i <= 14; i++) {
    term *= -r / i;
    e += term;
  }
  /* exp(-x) = exp(-r) * 2^-k */
  uint64_t bits;
  memcpy(&bits, &e, sizeof bits);
  bits -= (uint64_t)k << 52;
  memcpy(&e, &bits, sizeof e);
  return 1 - e;
}

int64_t shim_sample_draw(void) {
  shim_thread *t = &shim_ts;
  uint64_t x = t->rng ? t->rng : 0x9E3779B97F4A7C15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t->rng = x;
  double u = (double)(((x * 0x2545F4914F6CDD1Dull) >> 11) + 1) * (1.0 / 9007199254740992.0);
  double v = -fast_ln(u) * (double)shim_g.interval;
  return v < 1 ? 1 : v > 9.0e18 ? INT64_MAX : (int64_t)v;
}

uint64_t shim_sample_weight(uint64_t n) {
  if (!n) return 0;
  double p = one_minus_exp_neg((double)n / (double)shim_g.interval);
  double w = (double)n / p;
  return w > 1.8e19 ? UINT64_MAX : (uint64_t)(w + 0.5);
}
