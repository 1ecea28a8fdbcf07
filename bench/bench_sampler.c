/* The background sampler's cost and the series' memory.
 *
 *   BENCH sampler_tick_us <us> us
 *       thread CPU time (the sampler thread's own CPU clock) per tick of the real sampler at
 *       10 Hz, wake-up included, over BENCH_SAMPLER_SECONDS (default 10) s after a 0.5 s warm-up
 *       (the first tick opens NVML and creates the series).
 *   BENCH sampler_wake_only_us <us> us
 *       floor: thread CPU per wake-up of a thread that only wakes at 10 Hz (sem_clockwait on
 *       CLOCK_MONOTONIC, as the sampler sleeps) and does nothing.
 *   BENCH sample_cold_us <us> us
 *       floor: thread CPU of reading the tick's sources once, directly (po_probe_system on a
 *       probe with kept-open files, this process's statm and getrusage, the GPU session's
 *       query), on a thread
 *       that last read them 100 ms earlier (caches as cold as the sampler's).
 *   The three run at once (a third of an interval apart, so they see the same machine) for 5
 *   rounds; each figure is the median over the rounds of its per-round mean.
 *   BENCH sampler_tick_over_floor_ratio <r> ratio
 *       sampler_tick_us / (sampler_wake_only_us + sample_cold_us); target <= 1.2: a tick costs
 *       nothing beyond waking up and reading its files once.
 *   BENCH sampler_tick_allocations <n> count
 *       allocations (malloc, calloc, realloc, aligned) made by the sampler thread during the
 *       measured ticks (counted by malloc interposed in this program); target 0.
 *   BENCH sampler_10hz_core_ratio <r> ratio
 *       the sampler thread's CPU time over the wall time it ran (the monitor's own accounting,
 *       first tick included). Target <= 0.0005.
 *   BENCH sampler_10hz_baseline_naive_core_ratio <r> ratio
 *       in-run baseline: a thread that samples the same sources the naive way (fopen + fscanf of
 *       /proc/stat, /proc/meminfo, /proc/diskstats, /proc/self/status each tick, nanosleep
 *       between ticks), measured the same way.
 *   BENCH sampler_10hz_wake_only_core_ratio <r> ratio
 *       floor: the wake-only thread above, as a ratio of one core.
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
#include "platform.h"
#include "support/count_allocs.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_env(void) {
  const char *s = getenv("BENCH_SAMPLER_SECONDS");
  double v = s ? atof(s) : 10.0;
  return v > 0 ? v : 10.0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts a copy). */
static double median(const double *v, size_t n) {
  double c[16];
  if (n == 0 || n > 16) return 0;
  memcpy(c, v, n * sizeof *c);
  qsort(c, n, sizeof *c, cmp_double);
  return n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
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

static double run_thread(void *(*fn)(void *), double secs) {
  pthread_t t;
  naive_stop = 0;
  pthread_create(&t, NULL, fn, NULL);
  sleep_s(secs);
  naive_stop = 1;
  pthread_join(t, NULL);
  return naive_ratio;
}

/* ---- the floors: threads that wake at 10 Hz like the sampler ------------------------------- */

/* A thread waking every 100 ms at `phase_ns` past the start (sem_clockwait on CLOCK_MONOTONIC,
 * as the sampler sleeps) that runs `work` (may be NULL) on each wake, timing only the work with
 * its thread CPU clock. The floors run while the sampler runs, a third of an interval apart, so
 * that all three see the same machine. */
typedef struct ticker {
  uint64_t phase_ns;
  void (*work)(void *);
  void *arg;
  _Atomic pid_t tid;
  _Atomic uint64_t wakes, work_ns;
  _Atomic int stop;
  sem_t wake;
} ticker;

static void *ticker_main(void *arg) {
  ticker *t = arg;
  t->tid = gettid();
  uint64_t next = ns(CLOCK_MONOTONIC) + t->phase_ns;
  while (!t->stop) {
    struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
    while (sem_clockwait(&t->wake, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR) {
    }
    if (t->stop) break;
    if (t->work) {
      uint64_t c0 = ns(CLOCK_THREAD_CPUTIME_ID);
      t->work(t->arg);
      t->work_ns += ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    t->wakes++;
    next += 100000000u;
  }
  return NULL;
}

static void ticker_start(ticker *t, pthread_t *th, uint64_t phase_ns, void (*work)(void *),
                         void *arg) {
  memset(t, 0, sizeof *t);
  t->phase_ns = phase_ns;
  t->work = work;
  t->arg = arg;
  sem_init(&t->wake, 0, 0);
  if (pthread_create(th, NULL, ticker_main, t) != 0) exit(1);
}

static void ticker_stop(ticker *t, pthread_t th) {
  t->stop = 1;
  sem_post(&t->wake);
  pthread_join(th, NULL);
  sem_destroy(&t->wake);
}

/* What a tick reads, directly: the system (po_probe_system on a probe with kept-open files), this
 * process's statm and getrusage (peak RSS, CPU time), the GPUs (a session on the default NVML, as
 * the optimizer has). */
typedef struct reading {
  po_probe *probe;
  po_gpu_session *gpu;
  po_system_sample sys;
  po__statm statm;
  po_gpu_info gpus[PO_SAMPLE_MAX_GPUS];
  char reason[160];
} reading;

static void read_once(void *arg) {
  reading *r = arg;
  size_t n = 0;
  po_probe_system(r->probe, &r->sys);
  volatile int64_t rss = po__statm_rss_bytes(&r->statm);
  (void)rss;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  po_gpu_session_query(r->gpu, r->gpus, PO_SAMPLE_MAX_GPUS, &n, NULL, r->reason, sizeof r->reason);
}

/* ---- the real sampler ------------------------------------------------------------------------ */

/* The sampler thread's id, by the name it gives itself. */
static pid_t sampler_tid(void) {
  DIR *d = opendir("/proc/self/task");
  pid_t tid = 0;
  struct dirent *e;
  while (d && !tid && (e = readdir(d)) != NULL) {
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
    if (!f) continue;
    if (fgets(comm, sizeof comm, f) && !strcmp(comm, "perfopt-sampler\n")) tid = atoi(e->d_name);
    fclose(f);
  }
  if (d) closedir(d);
  return tid;
}

/* Another thread's CPU clock, as pthread_getcpuclockid builds it (Linux: per-thread, scheduler
 * time, from the thread id). */
static clockid_t thread_clock(pid_t tid) {
  return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

static void die(const char *what) {
  fprintf(stderr, "bench_sampler: %s\n", what);
  exit(1);
}

static void bench_sampler(double secs) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.monitor_interval_ms = 100;
  po_optimizer *opt;
  if (po_optimizer_create(&c, &opt) != 0) die("cannot create an optimizer");
  static reading r;
  r.statm = (po__statm)PO__STATM_INIT;
  if (po__probe_create_at("", &r.probe) != 0 || po_gpu_session_create(&c, &r.gpu) != 0)
    die("cannot open a probe");
  read_once(&r); /* opens NVML, takes the first rates */
  if (po_monitor_start(opt) != 0) die("cannot start the sampler");
  ticker wake, cold;
  pthread_t wake_th, cold_th;
  ticker_start(&wake, &wake_th, 33000000u, NULL, NULL);
  ticker_start(&cold, &cold_th, 66000000u, read_once, &r);
  sleep_s(0.5); /* the sampler's first tick opens NVML and creates the series */
  pid_t tid = sampler_tid();
  if (!tid || !wake.tid || !cold.tid) die("a thread is missing");

  /* Rounds, each with all three measured over the same seconds; medians over the rounds. */
  enum { ROUNDS = 5 };
  double tick_r[ROUNDS], wake_r[ROUNDS], cold_r[ROUNDS], ratio_r[ROUNDS];
  uint64_t ticks = 0, allocs = 0, w_total = 0;
  po_monitor_stats st0, st;
  for (int k = 0; k < ROUNDS; k++) {
    po_monitor_get_stats(opt, &st0);
    uint64_t s_cpu0 = ns(thread_clock(tid)), w_cpu0 = ns(thread_clock(wake.tid));
    uint64_t w_n0 = wake.wakes, c_ns0 = cold.work_ns, c_n0 = cold.wakes;
    count_allocs_watch(tid);
    sleep_s(secs / ROUNDS);
    allocs += count_allocs_unwatch();
    uint64_t s_cpu1 = ns(thread_clock(tid)), w_cpu1 = ns(thread_clock(wake.tid));
    uint64_t w_n1 = wake.wakes, c_ns1 = cold.work_ns, c_n1 = cold.wakes;
    po_monitor_get_stats(opt, &st);
    uint64_t n = st.samples - st0.samples;
    ticks += n;
    w_total += w_cpu1 - w_cpu0;
    tick_r[k] = n ? (double)(s_cpu1 - s_cpu0) / 1e3 / (double)n : 0;
    wake_r[k] = w_n1 > w_n0 ? (double)(w_cpu1 - w_cpu0) / 1e3 / (double)(w_n1 - w_n0) : 0;
    cold_r[k] = c_n1 > c_n0 ? (double)(c_ns1 - c_ns0) / 1e3 / (double)(c_n1 - c_n0) : 0;
    ratio_r[k] = wake_r[k] + cold_r[k] > 0 ? tick_r[k] / (wake_r[k] + cold_r[k]) : 0;
  }
  ticker_stop(&wake, wake_th);
  ticker_stop(&cold, cold_th);
  po_monitor_stop(opt);
  po_monitor_get_stats(opt, &st);
  po_optimizer_destroy(opt);
  po_gpu_session_destroy(r.gpu);
  po_probe_destroy(r.probe);
  po__statm_close(&r.statm);

  printf(
      "# %.1f s at 10 Hz after a 0.5 s warm-up, %d rounds (%llu ticks); per round, the mean"
      " of each and the ratio:\n",
      secs, ROUNDS, (unsigned long long)ticks);
  for (int k = 0; k < ROUNDS; k++)
    printf("#   tick %.1f us, wake-up %.1f us, reading %.1f us: %.2f\n", tick_r[k], wake_r[k],
           cold_r[k], ratio_r[k]);
  printf("BENCH sampler_tick_us %.1f us\n", median(tick_r, ROUNDS));
  printf("BENCH sampler_wake_only_us %.1f us\n", median(wake_r, ROUNDS));
  printf("BENCH sample_cold_us %.1f us\n", median(cold_r, ROUNDS));
  printf("BENCH sampler_tick_over_floor_ratio %.2f ratio\n", median(ratio_r, ROUNDS));
  if (COUNT_ALLOCS)
    printf("BENCH sampler_tick_allocations %llu count\n", (unsigned long long)allocs);
  printf("BENCH sampler_10hz_core_ratio %.6f ratio\n", st.overhead_core_ratio);
  printf("BENCH sampler_10hz_baseline_naive_core_ratio %.6f ratio\n", run_thread(naive_main, secs));
  printf("BENCH sampler_10hz_wake_only_core_ratio %.6f ratio\n", (double)w_total / (secs * 1e9));
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
