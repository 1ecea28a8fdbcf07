/* Profiler overhead, each figure next to its in-run baseline (a loop of two bare rdtsc reads).
 * Prints BENCH lines; every figure is the median of several rounds. */
#include "base/clock.h"
#include "perfopt.h"
#include "profile/profile.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 15
#define ITERS 2000000

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
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

static double per_iter_ns(void (*fn)(int), int n) {
  double v[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_ns();
    fn(n);
    v[r] = (now_ns() - t0) / n;
  }
  return median(v, ROUNDS);
}

/* ---- two threads ---------------------------------------------------------------------- */

static pthread_barrier_t barrier;
static double thread_result[2];

static void *thread_bench(void *arg) {
  int idx = (int)(intptr_t)arg;
  double v[ROUNDS];
  for (int r = 0; r < ROUNDS; r++) {
    pthread_barrier_wait(&barrier);
    double t0 = now_ns();
    zone_loop(ITERS / 2);
    v[r] = (now_ns() - t0) / (ITERS / 2);
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

  double rd = per_iter_ns(rdtsc_pair_loop, ITERS);
  double zone = per_iter_ns(zone_loop, ITERS);
  printf("BENCH rdtsc_pair_ns %.2f ns\n", rd);
  printf("BENCH zone_pair_ns %.2f ns\n", zone);
  printf("BENCH zone_pair_ratio %.3f x_rdtsc_pair\n", zone / rd);

  po_profile_set_timeline(1, 65536); /* the default: 1.5 MiB, overwritten in place */
  zone_loop(10);
  double tl = per_iter_ns(zone_loop, ITERS);
  po_profile_counters pc;
  po_profile_get_counters(&pc);
  po_profile_set_timeline(0, 65536);
  printf("BENCH zone_timeline_pair_ns %.2f ns\n", tl);
  printf("BENCH zone_timeline_ratio %.3f x_rdtsc_pair\n", tl / rd);
  printf("BENCH zone_timeline_overwritten_events %llu events\n",
         (unsigned long long)pc.dropped_events);

  double empty = per_iter_ns(empty_loop, ITERS);
  po_profile_set_enabled(0);
  double off = per_iter_ns(zone_loop, ITERS);
  po_profile_set_enabled(1);
  printf("BENCH empty_loop_ns %.2f ns\n", empty);
  printf("BENCH zone_disabled_ns %.2f ns\n", off);

  double plain = per_iter_ns(plain_calls, ITERS);
  instrumented_calls(1000);
  double inst = per_iter_ns(instrumented_calls, ITERS);
  printf("BENCH auto_plain_call_ns %.2f ns\n", plain);
  printf("BENCH auto_call_overhead_ns %.2f ns\n", inst - plain);

  pthread_barrier_init(&barrier, NULL, 2);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, thread_bench, (void *)(intptr_t)i);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  double two = (thread_result[0] + thread_result[1]) / 2;
  printf("BENCH zone_pair_2threads_ns %.2f ns\n", two);
  printf("BENCH zone_pair_2threads_ratio %.3f x_one_thread\n", two / zone);

  /* memory: a loop over the same zones never grows memory */
  struct mallinfo2 m0 = mallinfo2();
  zone_loop(ITERS);
  struct mallinfo2 m1 = mallinfo2();
  printf("BENCH zone_loop_heap_growth_bytes %zu bytes\n", m1.uordblks - m0.uordblks);
  return 0;
}
