/* clock: the profiler's time source. The TSC on x86-64 (invariant on every CPU perfopt targets:
 * constant_tsc and nonstop_tsc), the virtual counter on aarch64, CLOCK_MONOTONIC elsewhere.
 * Ticks become nanoseconds with a ratio calibrated against CLOCK_MONOTONIC. */
#ifndef PO__CLOCK_H
#define PO__CLOCK_H

#include <stdint.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t po__ticks(void) {
  return __rdtsc();
}
#define PO__TICKS_ARE_NS 0
#elif defined(__aarch64__)
static inline uint64_t po__ticks(void) {
  uint64_t v;
  __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
  return v;
}
#define PO__TICKS_ARE_NS 0
#else
static inline uint64_t po__ticks(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define PO__TICKS_ARE_NS 1
#endif

/* Nanoseconds per tick. Calibrated on first use (a few milliseconds), refined from the whole run's
 * length whenever it is called after a longer interval. Thread-safe. */
double po__ns_per_tick(void);

#endif
