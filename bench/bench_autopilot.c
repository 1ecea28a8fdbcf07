/* The memory autopilot: how well the forecast predicts the wall, what it adds to a sampler tick,
 * and the batch probe against halving on failure.
 *
 *   BENCH autopilot_forecast_error_ratio <r> ratio
 *       a process growing at a steady rate with a training loop's saw-tooth and noise on top,
 *       sampled at 1 Hz: |predicted - actual| / actual time to limit, predicted 10 s before usage
 *       first reaches the limit; median over 64 runs (rates, amplitudes, periods and phases
 *       varied). Target <= 0.2.
 *   BENCH autopilot_forecast_error_p90_ratio <r> ratio      (the 90th percentile of the same)
 *   BENCH autopilot_forecast_baseline_two_point_error_ratio <r> ratio
 *       in-run baseline: the slope between the window's first and last samples, from the last
 *       sample (what a "rate of change" alert does), on the same runs.
 *   BENCH autopilot_step_false_alarm_ratio <r> ratio
 *       a job that is flat except for one step up (a dataset loaded: 20 to 60 % of the limit, to
 *       within 5 to 35 % of it), sampled at 1 Hz with 1 % noise: the share of the 60 samples after
 *       the step at which the forecast puts the limit within the 60 s horizon (it never comes).
 *   BENCH autopilot_step_baseline_two_point_false_alarm_ratio <r> ratio   (the same, baseline)
 *   BENCH autopilot_tick_overhead_us <us> us
 *       what the forecast and the autopilot add to one sampler tick: the median time of
 *       po__sampler_push with AUTOPILOT on minus the same with the forecast skipped (a sampler
 *       whose first sample failed to allocate nothing else differs), 1 Hz ring of 64 rows.
 *       Target <= 5.
 *   BENCH autopilot_forecast_us <us> us   (po__forecast_compute alone on a full 64-row ring)
 *   BENCH autopilot_forecast_600_us <us> us   (the same on a 10 Hz, 601-row ring)
 *   BENCH batch_probe_steps <n> steps
 *   BENCH batch_probe_result_ratio <r> ratio
 *       po_batch_probe on a synthetic job (fixed + per_sample * batch bytes, measurements with 1 %
 *       + 1 MiB noise, a 16 GiB limit): step calls, and the validated batch over the largest
 *       batch that fits; medians over 200 jobs. Targets <= 4 and >= 0.9.
 *   BENCH batch_halving_steps <n> steps
 *   BENCH batch_halving_result_ratio <r> ratio
 *       baseline: start at 4096 and halve after each out-of-memory (Accelerate's
 *       find_executable_batch_size), on the same jobs.
 */
#include "monitor/forecast.h"
#include "monitor/sampler.h"
#include "optimizer.h"
#include "perfopt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t rng = 12345;
static double uniform(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / 9007199254740992.0;
}
static double gauss(void) {
  double u = uniform() + 1e-12, v = uniform();
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(double *v, size_t n, double q) {
  qsort(v, n, sizeof *v, cmp_double);
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- forecast accuracy ---------------------------------------------------------------------- */

#define RUN_MAX 4000

typedef struct run {
  double r, A, P, phase, noise, base, limit;
} run;

static double usage(const run *g, double t) {
  return g->base + g->r * t + g->A * fmod(t / g->P + g->phase, 1.0);
}

static void forecast_accuracy(void) {
  enum { RUNS = 64 };
  static double t[RUN_MAX], y[RUN_MAX];
  double err[RUNS], base_err[RUNS];
  for (int k = 0; k < RUNS; k++) {
    run g = {5e6 + 20e6 * uniform(), 0, 2 + 8 * uniform(), uniform(), 0, 1e9, 4e9};
    g.A = g.r * (1 + 3 * uniform()); /* one to four seconds of growth */
    g.noise = 0.01 * g.A;
    /* the actual time the limit is first reached (noise-free), at 10 ms resolution */
    double actual = 0;
    for (double x = 0; x < RUN_MAX; x += 0.01)
      if (usage(&g, x) >= g.limit) {
        actual = x;
        break;
      }
    /* samples at 1 Hz up to 10 s before it */
    size_t n = 0;
    for (double x = fmod(actual, 1.0); x <= actual - 10 + 1e-9 && n < RUN_MAX; x += 1.0) {
      t[n] = x;
      y[n] = usage(&g, x) + g.noise * gauss();
      n++;
    }
    po__ring_view v = {t, y, n, 0, n};
    po__forecast f;
    po__forecast_compute(&v, 60, g.limit, -INFINITY, &f);
    double remaining = actual - t[n - 1];
    double pred = f.time_to_limit_seconds >= 0 ? f.time_to_limit_seconds : 1e9;
    err[k] = fabs(pred - remaining) / remaining;
    /* baseline: two points 60 s apart, from the last sample */
    size_t first = n > 61 ? n - 61 : 0;
    double slope = (y[n - 1] - y[first]) / (t[n - 1] - t[first]);
    double bpred = slope > 0 ? (g.limit - y[n - 1]) / slope : 1e9;
    base_err[k] = fabs(bpred - remaining) / remaining;
  }
  printf("BENCH autopilot_forecast_error_ratio %.4f ratio\n", quantile(err, RUNS, 0.5));
  printf("BENCH autopilot_forecast_error_p90_ratio %.4f ratio\n", quantile(err, RUNS, 0.9));
  printf("BENCH autopilot_forecast_baseline_two_point_error_ratio %.4f ratio\n",
         quantile(base_err, RUNS, 0.5));
}

static void step_false_alarms(void) {
  enum { RUNS = 64, N = 180 };
  static double t[N], y[N];
  int alarms = 0, base_alarms = 0, total = 0;
  for (int k = 0; k < RUNS; k++) {
    double limit = 4e9, stepv = limit * (0.2 + 0.4 * uniform());
    double before = limit - stepv - limit * (0.05 + 0.3 * uniform());
    for (int i = 0; i < N; i++) {
      t[i] = i;
      y[i] = before + (i >= 100 ? stepv : 0) + 0.01 * stepv * gauss();
    }
    for (int end = 100; end < 160; end++) {
      po__ring_view v = {t, y, N, 0, (size_t)end + 1};
      po__forecast f;
      po__forecast_compute(&v, 60, limit, -INFINITY, &f);
      alarms += f.time_to_limit_seconds >= 0 && f.time_to_limit_seconds < 60;
      double slope = (y[end] - y[end - 60]) / 60.0;
      base_alarms += slope > 0 && (limit - y[end]) / slope < 60;
      total++;
    }
  }
  printf("BENCH autopilot_step_false_alarm_ratio %.4f ratio\n", (double)alarms / total);
  printf("BENCH autopilot_step_baseline_two_point_false_alarm_ratio %.4f ratio\n",
         (double)base_alarms / total);
}

/* ---- tick overhead ---------------------------------------------------------------------------- */

static po_sample sample_at(double t) {
  po_sample s;
  memset(&s, 0, sizeof s);
  s.t_seconds = t;
  s.cpu_utilization_ratio = 0.5;
  s.process_cpu_ratio = 0.2;
  s.memory_limit_bytes = 8000000000ll;
  s.memory_used_bytes = 1000000000ll + (int64_t)(1e6 * t) + (int64_t)(5e6 * uniform());
  s.memory_available_bytes = s.memory_limit_bytes - s.memory_used_bytes;
  s.process_rss_bytes = s.memory_used_bytes / 2;
  s.process_peak_rss_bytes = s.process_rss_bytes;
  s.memory_pressure_some_ratio = s.memory_pressure_full_ratio = 0;
  return s;
}

/* Median ns of one po__sampler_push over `n` pushes after a warm-up that fills the ring. */
static double push_ns(po_optimizer *opt, int n) {
  double *d = malloc((size_t)n * sizeof *d);
  for (int i = 0; i < 200; i++) {
    po_sample s = sample_at(i);
    po__sampler_push(opt->sampler, &s);
  }
  for (int i = 0; i < n; i++) {
    po_sample s = sample_at(200 + i);
    double a = now_s();
    po__sampler_push(opt->sampler, &s);
    d[i] = (now_s() - a) * 1e9;
  }
  double m = quantile(d, (size_t)n, 0.5);
  free(d);
  return m;
}

static po_optimizer *bench_opt(int autopilot, double window) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.autopilot = autopilot;
  c.forecast_window_seconds = window;
  c.memory_threshold = 0.99;
  snprintf(c.nvml_library, sizeof c.nvml_library, "/nonexistent/libnvidia-ml.so.1");
  po_optimizer *opt = NULL;
  if (po_optimizer_create(&c, &opt) != 0) exit(1);
  return opt;
}

static double forecast_ns(size_t rows) {
  double *t = malloc(rows * sizeof *t), *y = malloc(rows * sizeof *y);
  double step = 60.0 / (double)(rows - 1);
  for (size_t i = 0; i < rows; i++) {
    t[i] = (double)i * step;
    y[i] = 1e9 + 1e7 * t[i] + 5e6 * uniform();
  }
  po__ring_view v = {t, y, rows, 0, rows};
  enum { N = 20000 };
  static double d[N];
  volatile double sink = 0;
  for (int i = 0; i < N; i++) {
    po__forecast f;
    double a = now_s();
    po__forecast_compute(&v, 60, 2e9, -INFINITY, &f);
    d[i] = (now_s() - a) * 1e9;
    sink += f.time_to_limit_seconds;
  }
  (void)sink;
  free(t);
  free(y);
  return quantile(d, N, 0.5);
}

static void tick_overhead(void) {
  enum { N = 20000 };
  /* the forecast needs at least 8 points in the window: a 1 s window never has them, so the
   * forecast returns at once and the autopilot sees no forecast (the in-run baseline) */
  po_optimizer *on = bench_opt(1, 60), *off = bench_opt(0, 1);
  double with = push_ns(on, N), without = push_ns(off, N);
  po_optimizer_destroy(on);
  po_optimizer_destroy(off);
  printf("BENCH autopilot_tick_overhead_us %.3f us\n", (with - without) / 1000.0);
  printf("BENCH autopilot_tick_push_with_us %.3f us\n", with / 1000.0);
  printf("BENCH autopilot_tick_push_without_us %.3f us\n", without / 1000.0);
  printf("BENCH autopilot_forecast_us %.3f us\n", forecast_ns(64) / 1000.0);
  printf("BENCH autopilot_forecast_600_us %.3f us\n", forecast_ns(601) / 1000.0);
}

/* ---- batch size --------------------------------------------------------------------------- */

typedef struct job {
  double fixed, per, limit;
  int64_t in_use;
  int steps;
} job;

static int job_step(int64_t batch, void *user) {
  job *j = user;
  j->steps++;
  double need = j->fixed + j->per * (double)batch;
  if (need > j->limit) return PO_EOOM;
  j->in_use = (int64_t)(need + (0.01 * need + 1048576.0) * gauss());
  return 0;
}

static int64_t job_measure(void *user) {
  job *j = user;
  int64_t v = j->in_use;
  j->in_use = 0;
  return v;
}

static void batch_sizes(void) {
  enum { JOBS = 200 };
  double ps[JOBS], pr[JOBS], hs[JOBS], hr[JOBS];
  const double limit = 16.0 * 1073741824.0;
  for (int k = 0; k < JOBS; k++) {
    job j = {2e9 * uniform(), 1e6 + 60e6 * uniform(), limit, 0, 0};
    double best = floor((limit - j.fixed) / j.per);
    po_batch_probe_options o;
    po_batch_probe_options_init(&o);
    o.measure = job_measure;
    o.measure_user = &j;
    o.available_bytes = (int64_t)limit;
    po_batch_probe_result r;
    int rc = po_batch_probe(NULL, job_step, &j, &o, &r);
    ps[k] = j.steps;
    pr[k] = rc == 0 ? (double)r.batch / best : 0;
    /* halving from 4096 */
    j.steps = 0;
    int64_t b = 4096;
    while (b >= 1 && job_step(b, &j) == PO_EOOM) b /= 2;
    hs[k] = j.steps;
    hr[k] = b >= 1 ? (double)b / best : 0;
  }
  printf("BENCH batch_probe_steps %.1f steps\n", quantile(ps, JOBS, 0.5));
  printf("BENCH batch_probe_result_ratio %.4f ratio\n", quantile(pr, JOBS, 0.5));
  printf("BENCH batch_probe_result_p10_ratio %.4f ratio\n", quantile(pr, JOBS, 0.1));
  printf("BENCH batch_halving_steps %.1f steps\n", quantile(hs, JOBS, 0.5));
  printf("BENCH batch_halving_result_ratio %.4f ratio\n", quantile(hr, JOBS, 0.5));
}

int main(void) {
  forecast_accuracy();
  step_false_alarms();
  tick_overhead();
  batch_sizes();
  return 0;
}
