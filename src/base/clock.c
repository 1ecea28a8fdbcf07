#include "base/clock.h"

#include "base/base.h"

#include <pthread.h>

static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t base_ticks, base_ns;
static double ratio; /* ns per tick; 0 = not calibrated */

/* One (ticks, ns) pair read as close together as possible: the read with the shortest tick window
 * out of a few tries, so a preemption between the two reads does not skew the ratio. */
static void paired_read(uint64_t *ticks, uint64_t *ns) {
  *ticks = 0;
  *ns = 0;
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 5; i++) {
    uint64_t t0 = po__ticks();
    uint64_t n = po__now_ns();
    uint64_t t1 = po__ticks();
    if (t1 - t0 < best) {
      best = t1 - t0;
      *ticks = t0 + (t1 - t0) / 2;
      *ns = n;
    }
  }
}

double po__ns_per_tick(void) {
  if (PO__TICKS_ARE_NS) return 1.0;
  pthread_mutex_lock(&clock_lock);
  if (ratio == 0) {
    paired_read(&base_ticks, &base_ns);
    uint64_t t = 0, n = 0;
    do {
      paired_read(&t, &n);
    } while (n - base_ns < 2000000); /* 2 ms: good to ~0.01% on an invariant TSC */
    ratio = (double)(n - base_ns) / (double)(t - base_ticks);
  } else {
    uint64_t t = 0, n = 0;
    paired_read(&t, &n);
    /* Refine from the whole interval once it is long enough to beat the first estimate. */
    if (n - base_ns > 200000000 && t > base_ticks)
      ratio = (double)(n - base_ns) / (double)(t - base_ticks);
  }
  double r = ratio;
  pthread_mutex_unlock(&clock_lock);
  return r;
}
