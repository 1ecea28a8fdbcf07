/* Profiler overhead, each figure next to its in-run floor or baseline.
 *
 * The machine is shared, so a figure and its floor are measured in interleaved rounds (floor,
 * figure, floor, figure, ...; the order alternates) on the thread's CPU clock, and a ratio is the
 * median of the per-round ratios: load that comes and goes hits both sides of a round alike.
 * Prints BENCH lines; every figure is a median over ROUNDS rounds. */
#include "base/clock.h"
#include "perfopt.h"
#include "profile/profile.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every measured loop starts on a 64-byte boundary: a loop of a few instructions that straddles
 * one costs an extra fetch per iteration on AMD cores, which would make a figure depend on where
 * the linker happened to put it. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("align-loops=64")
#endif

#define ROUNDS 31
#define ITERS 250000

static double cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return v[n / 2];
}

static volatile uint64_t sink;

__attribute__((noinline)) static void rdtsc_pair_loop(int n) {
  uint64_t acc = 0;
  for (int i = 0; i < n; i++) {
    uint64_t a = po__ticks();
    uint64_t b = po__ticks();
    acc += b - a;
  }
  sink = acc;
}

__attribute__((noinline)) static void zone_loop(int n) {
  for (int i = 0; i < n; i++) {
    PO_SCOPE("bench_zone");
  }
}

__attribute__((noinline)) static void empty_loop(int n) {
  for (int i = 0; i < n; i++) __asm__ __volatile__("" ::: "memory");
}

static void *nothing(void *arg) {
  __asm__ __volatile__("" ::: "memory");
  return arg;
}

__attribute__((noinline)) static void profile_call_loop(int n) {
  for (int i = 0; i < n; i++) po_profile_call("bench_call", nothing, NULL);
}

static double time_once(void (*fn)(int), int n) {
  double t0 = cpu_ns();
  fn(n);
  return (cpu_ns() - t0) / n;
}

typedef struct {
  double base_ns, ns, ratio; /* medians: floor, figure, per-round figure / floor */
} paired;

/* Interleaved rounds of `base` (the floor) and `fn`. */
static paired measure(void (*base)(int), void (*fn)(int), int n) {
  double b[ROUNDS], f[ROUNDS], r[ROUNDS];
  base(n / 10);
  fn(n / 10);
  for (int i = 0; i < ROUNDS; i++) {
    if (i & 1) {
      f[i] = time_once(fn, n);
      b[i] = time_once(base, n);
    } else {
      b[i] = time_once(base, n);
      f[i] = time_once(fn, n);
    }
    r[i] = f[i] / b[i];
  }
  return (paired){median(b, ROUNDS), median(f, ROUNDS), median(r, ROUNDS)};
}

/* ---- two threads ---------------------------------------------------------------------- */

static pthread_barrier_t barrier;
static double thread_result[2];

static void *thread_bench(void *arg) {
  int idx = (int)(intptr_t)arg;
  double v[ROUNDS];
  zone_loop(1000);
  for (int r = 0; r < ROUNDS; r++) {
    pthread_barrier_wait(&barrier);
    v[r] = time_once(zone_loop, ITERS);
  }
  thread_result[idx] = median(v, ROUNDS);
  return NULL;
}

/* ---- automatic instrumentation ----------------------------------------------------------- */

void __cyg_profile_func_enter(void *fn, void *site);
void __cyg_profile_func_exit(void *fn, void *site);

__attribute__((noinline)) static void auto_target(void) {
  __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline)) static void plain_calls(int n) {
  for (int i = 0; i < n; i++) auto_target();
}

/* What -finstrument-functions emits around each call of auto_target. */
__attribute__((noinline)) static void instrumented_calls(int n) {
  for (int i = 0; i < n; i++) {
    __cyg_profile_func_enter((void *)(uintptr_t)auto_target, NULL);
    auto_target();
    __cyg_profile_func_exit((void *)(uintptr_t)auto_target, NULL);
  }
}

int main(void) {
  po_profile_set_enabled(1);
  zone_loop(1000); /* first use: registers the site and builds this thread's table */

  paired zone = measure(rdtsc_pair_loop, zone_loop, ITERS);
  printf("BENCH rdtsc_pair_ns %.2f ns\n", zone.base_ns);
  printf("BENCH zone_pair_ns %.2f ns\n", zone.ns);
  printf("BENCH zone_pair_ratio %.3f x_rdtsc_pair\n", zone.ratio);

  paired call = measure(zone_loop, profile_call_loop, ITERS);
  printf("BENCH profile_call_ns %.2f ns\n", call.ns);
  printf("BENCH profile_call_ratio %.3f x_zone_pair\n", call.ratio);

  po_profile_set_timeline(1, 65536); /* the default: 1.5 MiB, overwritten in place */
  paired tl = measure(rdtsc_pair_loop, zone_loop, ITERS);
  po_profile_counters pc;
  po_profile_get_counters(&pc);
  po_profile_set_timeline(0, 65536);
  printf("BENCH zone_timeline_pair_ns %.2f ns\n", tl.ns);
  printf("BENCH zone_timeline_ratio %.3f x_rdtsc_pair\n", tl.ratio);
  printf("BENCH zone_timeline_overwritten_events %llu events\n",
         (unsigned long long)pc.dropped_events);

  po_profile_set_enabled(0);
  paired off = measure(empty_loop, zone_loop, ITERS);
  po_profile_set_enabled(1);
  printf("BENCH empty_loop_ns %.2f ns\n", off.base_ns);
  printf("BENCH zone_disabled_ns %.2f ns\n", off.ns);

  paired inst = measure(plain_calls, instrumented_calls, ITERS);
  printf("BENCH auto_plain_call_ns %.2f ns\n", inst.base_ns);
  printf("BENCH auto_call_overhead_ns %.2f ns\n", inst.ns - inst.base_ns);

  pthread_barrier_init(&barrier, NULL, 2);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, thread_bench, (void *)(intptr_t)i);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  double two = (thread_result[0] + thread_result[1]) / 2;
  printf("BENCH zone_pair_2threads_ns %.2f ns\n", two);
  printf("BENCH zone_pair_2threads_ratio %.3f x_one_thread\n", two / zone.ns);

  /* memory: a loop over the same zones never grows memory */
  struct mallinfo2 m0 = mallinfo2();
  zone_loop(ITERS);
  struct mallinfo2 m1 = mallinfo2();
  printf("BENCH zone_loop_heap_growth_bytes %zu bytes\n", m1.uordblks - m0.uordblks);
  return 0;
}
