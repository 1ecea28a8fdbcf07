/* The memory forecast as a pure function of synthetic series: steady growth, a saw-tooth on top
 * of growth, a step, flat, falling, noise, a cleanup that just freed memory, and a ring that
 * wraps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/forecast.h"

#define MB 1e6
#define N_MAX 2048

typedef struct series {
  double t[N_MAX], y[N_MAX];
  size_t n;
} series;

static uint64_t rng_state;
static double uniform(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double gauss(void) {
  double u = uniform() + 1e-12, v = uniform();
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void add(series *s, double t, double y) {
  assert_true(s->n < N_MAX);
  s->t[s->n] = t;
  s->y[s->n] = y;
  s->n++;
}

static po__forecast run(const series *s, double window, double limit, double since) {
  po__ring_view v = {s->t, s->y, s->n, 0, s->n};
  po__forecast f;
  po__forecast_compute(&v, window, limit, since, &f);
  return f;
}

static void test_steady_growth_reaches_the_limit_when_the_line_does(void **state) {
  (void)state;
  static series s;
  s.n = 0;
  for (int i = 0; i < 60; i++) add(&s, i, 1000 * MB + 10 * MB * i);
  po__forecast f = run(&s, 60, 2000 * MB, -INFINITY);
  assert_int_equal(f.trend, PO__TREND_RISING);
  assert_true(fabs(f.slope_per_second - 10 * MB) < 1e-3);
  assert_true(fabs(f.level - 1590 * MB) < 1);
  assert_true(fabs(f.time_to_limit_seconds - 41) < 1e-6);
  assert_true(f.agreement > 0.99);
  assert_int_equal(f.points, 60);
}

/* A training loop: memory climbs during each step and drops at its end, on top of a leak. The
 * peaks decide when the job dies, so the forecast aims at the peaks' line. */
static void test_saw_tooth_on_growth_aims_at_the_peaks(void **state) {
  (void)state;
  static series s;
  const double r = 10 * MB, A = 50 * MB, P = 5, limit = 2000 * MB;
  for (int phase = 0; phase < 5; phase++) {
    s.n = 0;
    rng_state = 7 + (uint64_t)phase;
    for (int i = 0; i <= 80; i++) {
      double t = i + 0.2 * phase;
      add(&s, t, 1000 * MB + r * t + A * fmod(t / P, 1.0) + 2 * MB * gauss());
    }
    po__forecast f = run(&s, 60, limit, -INFINITY);
    assert_int_equal(f.trend, PO__TREND_RISING);
    assert_true(fabs(f.slope_per_second - r) < 0.1 * r);
    /* the peaks' line r t + A + 1000 MB reaches the limit at (limit - 1000 MB - A) / r */
    double t_now = s.t[s.n - 1];
    double envelope = (limit - 1000 * MB - A) / r - t_now;
    assert_true(fabs(f.time_to_limit_seconds - envelope) < 0.15 * envelope);
    /* the mean line would be A/2/r = 2.5 s later: the forecast is nearer the peaks */
    double mean_line = envelope + A / 2 / r;
    assert_true(fabs(f.time_to_limit_seconds - envelope) <
                fabs(f.time_to_limit_seconds - mean_line));
  }
}

/* A step (a dataset loaded) looks like growth to every pair of samples that spans it. The forecast
 * may call it rising only while the step lies in the recent half of the window, with a slope of
 * the order of step / window, and never once the step is older than that. */
static void test_step_then_flat_stops_forecasting_growth(void **state) {
  (void)state;
  static series s;
  const double W = 60, step = 500 * MB;
  s.n = 0;
  rng_state = 3;
  for (int i = 0; i < 200; i++) add(&s, i, (i < 100 ? 1000 * MB : 1000 * MB + step) + MB * gauss());
  int rising_seen = 0;
  for (size_t end = 90; end < 200; end++) {
    po__ring_view v = {s.t, s.y, s.n, 0, end + 1};
    po__forecast f;
    po__forecast_compute(&v, W, 3000 * MB, -INFINITY, &f);
    if (f.trend != PO__TREND_RISING) continue;
    rising_seen++;
    assert_true(s.t[end] < 100 + W / 2 + 2);
    assert_true(f.slope_per_second < 1.5 * step / W);
  }
  /* the transient exists (this is what the bound above is about) */
  assert_true(rising_seen > 0);
  po__forecast f = run(&s, W, 3000 * MB, -INFINITY);
  assert_true(f.time_to_limit_seconds < 0);
  assert_true(fabs(f.level - 1000 * MB - step) < 5 * MB);
}

static void test_flat_has_no_time_to_limit(void **state) {
  (void)state;
  static series s;
  s.n = 0;
  for (int i = 0; i < 60; i++) add(&s, i, 1200 * MB);
  po__forecast f = run(&s, 60, 2000 * MB, -INFINITY);
  assert_int_equal(f.trend, PO__TREND_FLAT);
  assert_true(f.time_to_limit_seconds < 0);
  assert_true(fabs(f.level - 1200 * MB) < 1);
}

static void test_falling_has_no_time_to_limit(void **state) {
  (void)state;
  static series s;
  s.n = 0;
  for (int i = 0; i < 60; i++) add(&s, i, 1800 * MB - 5 * MB * i);
  po__forecast f = run(&s, 60, 2000 * MB, -INFINITY);
  assert_int_equal(f.trend, PO__TREND_FALLING);
  assert_true(f.slope_per_second < 0);
  assert_true(f.time_to_limit_seconds < 0);
}

/* Noise alone never predicts a near death: over many seeds, no forecast of reaching a limit 20 %
 * above the level within ten minutes. Positive control: the same noise on a slow leak does. */
static void test_noise_is_not_growth(void **state) {
  (void)state;
  static series s;
  int rising_leaks = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    rng_state = seed;
    s.n = 0;
    for (int i = 0; i < 60; i++) add(&s, i, 1000 * MB + 20 * MB * gauss());
    po__forecast f = run(&s, 60, 1200 * MB, -INFINITY);
    assert_true(f.time_to_limit_seconds < 0 || f.time_to_limit_seconds > 600);
    rng_state = seed;
    s.n = 0;
    for (int i = 0; i < 60; i++) add(&s, i, 1000 * MB + 2 * MB * i + 20 * MB * gauss());
    f = run(&s, 60, 1400 * MB, -INFINITY);
    rising_leaks += f.trend == PO__TREND_RISING && f.time_to_limit_seconds < 600;
  }
  assert_true(rising_leaks >= 38);
}

/* After a cleanup freed 300 MB, the level counts only what came after it. */
static void test_level_since_discards_what_a_cleanup_freed(void **state) {
  (void)state;
  static series s;
  s.n = 0;
  for (int i = 0; i < 60; i++) add(&s, i, 1000 * MB + 10 * MB * i - (i >= 55 ? 300 * MB : 0));
  po__forecast before = run(&s, 60, 2000 * MB, -INFINITY);
  po__forecast after = run(&s, 60, 2000 * MB, 54.5);
  assert_true(after.level < before.level - 250 * MB);
  assert_true(after.time_to_limit_seconds > before.time_to_limit_seconds + 20);
}

static void test_over_the_limit_is_zero_and_few_points_are_unknown(void **state) {
  (void)state;
  static series s;
  s.n = 0;
  for (int i = 0; i < 20; i++) add(&s, i, 2100 * MB);
  po__forecast f = run(&s, 60, 2000 * MB, -INFINITY);
  assert_true(f.time_to_limit_seconds == 0);
  s.n = 0;
  for (int i = 0; i < PO__FORECAST_MIN_POINTS - 1; i++) add(&s, i, 1000 * MB + 10 * MB * i);
  f = run(&s, 60, 2000 * MB, -INFINITY);
  assert_int_equal(f.trend, PO__TREND_UNKNOWN);
  assert_true(f.time_to_limit_seconds < 0);
  /* NaN samples are skipped: they do not count as points */
  s.n = 0;
  for (int i = 0; i < 20; i++) add(&s, i, i % 2 ? NAN : 1000 * MB + 10 * MB * i);
  f = run(&s, 60, 2000 * MB, -INFINITY);
  assert_int_equal(f.points, 10);
  assert_int_equal(f.trend, PO__TREND_RISING);
}

/* Only the last window_s seconds count: an old plateau does not flatten today's growth. */
static void test_window_keeps_only_recent_samples(void **state) {
  (void)state;
  static series s;
  s.n = 0;
  for (int i = 0; i < 300; i++) add(&s, i, i < 240 ? 500 * MB : 500 * MB + 10 * MB * (i - 240));
  po__forecast f = run(&s, 50, 2000 * MB, -INFINITY);
  assert_int_equal(f.trend, PO__TREND_RISING);
  assert_true(fabs(f.slope_per_second - 10 * MB) < 0.01 * MB);
  assert_true(f.points <= 51);
}

static void test_a_wrapped_ring_reads_like_a_line(void **state) {
  (void)state;
  enum { CAP = 64 };
  double rt[CAP], ry[CAP];
  static series s;
  s.n = 0;
  rng_state = 11;
  for (int i = 0; i < 100; i++) add(&s, 0.5 * i, 1000 * MB + 3 * MB * i + MB * gauss());
  /* the last CAP samples, stored so that the oldest sits at index 37 */
  size_t first = 37;
  for (size_t i = 0; i < CAP; i++) {
    rt[(first + i) % CAP] = s.t[s.n - CAP + i];
    ry[(first + i) % CAP] = s.y[s.n - CAP + i];
  }
  po__ring_view ring = {rt, ry, CAP, first, CAP};
  po__ring_view line = {s.t + s.n - CAP, s.y + s.n - CAP, CAP, 0, CAP};
  po__forecast a, b;
  po__forecast_compute(&ring, 20, 2000 * MB, -INFINITY, &a);
  po__forecast_compute(&line, 20, 2000 * MB, -INFINITY, &b);
  assert_true(a.slope_per_second == b.slope_per_second);
  assert_true(a.time_to_limit_seconds == b.time_to_limit_seconds);
  assert_int_equal(a.points, b.points);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void test_select_kth_matches_sorting(void **state) {
  (void)state;
  double a[97], b[97];
  rng_state = 5;
  for (size_t n = 1; n <= 97; n += 4)
    for (int dup = 0; dup < 2; dup++) {
      for (size_t i = 0; i < n; i++) a[i] = dup ? floor(uniform() * 4) : uniform();
      memcpy(b, a, n * sizeof *a);
      qsort(b, n, sizeof *b, cmp_double);
      for (size_t k = 0; k < n; k += 3) {
        double c[97];
        memcpy(c, a, n * sizeof *a);
        assert_true(po__select_kth(c, n, k) == b[k]);
        for (size_t i = 0; i < k; i++) assert_true(c[i] <= c[k]);
        for (size_t i = k + 1; i < n; i++) assert_true(c[i] >= c[k]);
      }
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_steady_growth_reaches_the_limit_when_the_line_does),
      cmocka_unit_test(test_saw_tooth_on_growth_aims_at_the_peaks),
      cmocka_unit_test(test_step_then_flat_stops_forecasting_growth),
      cmocka_unit_test(test_flat_has_no_time_to_limit),
      cmocka_unit_test(test_falling_has_no_time_to_limit),
      cmocka_unit_test(test_noise_is_not_growth),
      cmocka_unit_test(test_level_since_discards_what_a_cleanup_freed),
      cmocka_unit_test(test_over_the_limit_is_zero_and_few_points_are_unknown),
      cmocka_unit_test(test_window_keeps_only_recent_samples),
      cmocka_unit_test(test_a_wrapped_ring_reads_like_a_line),
      cmocka_unit_test(test_select_kth_matches_sorting),
  };
  return cmocka_run_group_tests_name("forecast", tests, NULL, NULL);
}
