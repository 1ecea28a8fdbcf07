#include "base/clock.h"

#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>

static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t base_ticks, base_ns; /* clock_lock */
/* ns per tick; 0 = not calibrated. Read without the lock: a forked child may inherit clock_lock
 * held by a thread that no longer exists, so readers never wait for it once calibrated. */
static _Atomic double ratio;

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
  double r = atomic_load_explicit(&ratio, memory_order_acquire);
  /* Calibrated: refine when the lock is free, never wait for it. */
  if (r != 0 && pthread_mutex_trylock(&clock_lock) != 0) return r;
  if (r == 0) pthread_mutex_lock(&clock_lock);
  r = atomic_load_explicit(&ratio, memory_order_relaxed);
  uint64_t t = 0, n = 0;
  if (r == 0) {
    paired_read(&base_ticks, &base_ns);
    do {
      paired_read(&t, &n);
    } while (n - base_ns < 2000000); /* 2 ms: good to ~0.01% on an invariant TSC */
    r = (double)(n - base_ns) / (double)(t - base_ticks);
  } else {
    paired_read(&t, &n);
    /* Refine from the whole interval once it is long enough to beat the first estimate. */
    if (n - base_ns > 200000000 && t > base_ticks)
      r = (double)(n - base_ns) / (double)(t - base_ticks);
  }
  atomic_store_explicit(&ratio, r, memory_order_release);
  pthread_mutex_unlock(&clock_lock);
  return r;
}
