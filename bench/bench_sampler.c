/* The background sampler's cost and the series' memory.
 *
 *   BENCH sampler_10hz_core_ratio <r> ratio
 *       the sampler thread at 10 Hz for BENCH_SAMPLER_SECONDS (default 5) s: its thread CPU time
 *       (CLOCK_THREAD_CPUTIME_ID, wake-ups included) / wall time. Target <= 0.0005.
 *   BENCH sampler_10hz_baseline_naive_core_ratio <r> ratio
 *       in-run baseline: a thread that samples the same sources the naive way (fopen + fscanf of
 *       /proc/stat, /proc/meminfo, /proc/diskstats, /proc/self/status each tick, nanosleep
 *       between ticks), measured the same way.
 *   BENCH sampler_10hz_wake_only_core_ratio <r> ratio
 *       floor: a thread that only wakes at 10 Hz (pthread_cond_timedwait, like the sampler) and
 *       does nothing, measured the same way: what the scheduler alone costs on this machine.
 *   BENCH series_bytes_after_86400 <bytes> bytes
 *       all the monitor's series together after one day at 1 Hz (86,400 samples pushed through
 *       the monitor); target <= 1 MiB and equal to the bytes after the first sample.
 *   BENCH series_bytes_after_1 <bytes> bytes          (the same set after one sample)
 *   BENCH series_baseline_unbounded_bytes_after_86400 <bytes> bytes
 *       baseline: the same columns kept as plain (time, value) double arrays, unbounded.
 */
#include "monitor/sampler.h"
#include "optimizer.h"
#include "perfopt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_env(void) {
  const char *s = getenv("BENCH_SAMPLER_SECONDS");
  double v = s ? atof(s) : 5.0;
  return v > 0 ? v : 5.0;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static uint64_t ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- naive baseline sampler ------------------------------------------------------------- */

static volatile int naive_stop;
static volatile double naive_ratio;
static volatile unsigned long long naive_sink;

static void naive_read(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[512];
  unsigned long long a, b, c, d;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "%*s %llu %llu %llu %llu", &a, &b, &c, &d) == 4) naive_sink += a + d;
  fclose(f);
}

static void *naive_main(void *arg) {
  (void)arg;
  uint64_t c0 = ns(CLOCK_THREAD_CPUTIME_ID), w0 = ns(CLOCK_MONOTONIC);
  while (!naive_stop) {
    naive_read("/proc/stat");
    naive_read("/proc/meminfo");
    naive_read("/proc/diskstats");
    naive_read("/proc/self/status");
    sleep_s(0.1);
  }
  naive_ratio = (double)(ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)(ns(CLOCK_MONOTONIC) - w0);
  return NULL;
}

static void *wake_only_main(void *arg) {
  (void)arg;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&cv, &ca);
  uint64_t c0 = ns(CLOCK_THREAD_CPUTIME_ID), w0 = ns(CLOCK_MONOTONIC), next = w0;
  pthread_mutex_lock(&mu);
  while (!naive_stop) {
    next += 100000000u;
    struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
    while (pthread_cond_timedwait(&cv, &mu, &ts) == 0) {
    }
  }
  pthread_mutex_unlock(&mu);
  naive_ratio = (double)(ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)(ns(CLOCK_MONOTONIC) - w0);
  return NULL;
}

static double run_thread(void *(*fn)(void *), double secs) {
  pthread_t t;
  naive_stop = 0;
  pthread_create(&t, NULL, fn, NULL);
  sleep_s(secs);
  naive_stop = 1;
  pthread_join(t, NULL);
  return naive_ratio;
}

static void bench_sampler(double secs) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.monitor_interval_ms = 100;
  po_optimizer *opt;
  if (po_optimizer_create(&c, &opt) != 0) {
    fprintf(stderr, "bench_sampler: cannot create an optimizer\n");
    exit(1);
  }
  if (po_monitor_start(opt) != 0) {
    fprintf(stderr, "bench_sampler: cannot start the sampler\n");
    exit(1);
  }
  sleep_s(secs);
  po_monitor_stop(opt);
  po_monitor_stats st;
  po_monitor_get_stats(opt, &st);
  printf("BENCH sampler_10hz_core_ratio %.6f ratio\n", st.overhead_core_ratio);
  printf("# %llu samples in %.1f s, %.1f us thread CPU per sample\n",
         (unsigned long long)st.samples, secs, st.sample_cpu_seconds_avg * 1e6);
  po_optimizer_destroy(opt);

  printf("BENCH sampler_10hz_baseline_naive_core_ratio %.6f ratio\n", run_thread(naive_main, secs));
  printf("BENCH sampler_10hz_wake_only_core_ratio %.6f ratio\n", run_thread(wake_only_main, secs));
}

/* ---- series memory ------------------------------------------------------------------------ */

static size_t series_bytes_after(int gpus, int pushes) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt;
  if (po_optimizer_create(&c, &opt) != 0) exit(1);
  po_sample s;
  memset(&s, 0, sizeof s);
  s.gpu_count = gpus;
  for (int i = 0; i < pushes; i++) {
    s.t_seconds = i;
    s.cpu_utilization_ratio = (double)(i % 97) / 97.0;
    s.process_cpu_ratio = 0.5;
    s.memory_used_bytes = (int64_t)i * 4096;
    s.memory_available_bytes = 1ll << 33;
    s.memory_limit_bytes = 1ll << 34;
    s.process_rss_bytes = 1 << 28;
    s.disk_read_bytes_per_second = s.disk_write_bytes_per_second = 1e6;
    s.disk_busy_ratio = 0.1;
    for (int g = 0; g < gpus; g++) {
      s.gpus[g].memory_used_bytes = 1ll << 30;
      s.gpus[g].memory_total_bytes = 1ll << 34;
      s.gpus[g].utilization_ratio = 0.5;
    }
    po__sampler_push(opt->sampler, &s);
  }
  po_monitor_stats st;
  po_monitor_get_stats(opt, &st);
  po_optimizer_destroy(opt);
  return st.series_bytes;
}

static void bench_series(void) {
  size_t one = series_bytes_after(0, 1), day = series_bytes_after(0, 86400);
  printf("BENCH series_bytes_after_86400 %zu bytes\n", day);
  printf("BENCH series_bytes_after_1 %zu bytes\n", one);
  printf("# with 4 GPUs (16 series): %zu bytes after 86400, %zu after 1\n",
         series_bytes_after(4, 86400), series_bytes_after(4, 1));
  /* 8 columns of (double time, double value) per sample, kept unbounded. */
  printf("BENCH series_baseline_unbounded_bytes_after_86400 %zu bytes\n",
         (size_t)86400 * 8 * 2 * sizeof(double));
}

int main(void) {
  bench_series();
  bench_sampler(seconds_env());
  return 0;
}
