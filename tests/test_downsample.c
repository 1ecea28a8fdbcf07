/* Downsampling: LTTB against the published reference, M4/MinMax column extremes, NaN gaps, tiny
 * inputs, argument errors, MinMaxLTTB and the fixed-memory stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perfopt.h"

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t rng_state;
static double rnd(void) { /* xorshift64*, seeded per test: fixed inputs */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

static double *random_walk(size_t n, uint64_t seed) {
  rng_state = seed;
  double *y = malloc(n * sizeof *y);
  double v = 0;
  for (size_t i = 0; i < n; i++) {
    v += rnd() - 0.5;
    y[i] = v;
  }
  return y;
}

static double *sorted_x(size_t n, uint64_t seed) {
  rng_state = seed;
  double *x = malloc(n * sizeof *x);
  double v = 100;
  for (size_t i = 0; i < n; i++) {
    v += rnd() < 0.1 ? 0.0 : rnd() * 3; /* irregular spacing with repeats */
    x[i] = v;
  }
  return x;
}

static int contains(const size_t *idx, int64_t n, size_t v) {
  for (int64_t i = 0; i < n; i++)
    if (idx[i] == v) return 1;
  return 0;
}

static void assert_ascending(const size_t *idx, int64_t n) {
  for (int64_t i = 1; i < n; i++) assert_true(idx[i - 1] < idx[i]);
}

/* The reference LTTB, written from the pseudo-code of Steinarsson's thesis ("Downsampling Time
 * Series for Visual Representation", 2013, and its JavaScript reference implementation): keep the
 * first and last point; split the rest into n_out-2 buckets of equal count; in each bucket keep
 * the point forming the largest triangle with the previously kept point and the average of the
 * next bucket. */
static size_t ref_lttb(const double *x, const double *y, size_t n, size_t threshold, size_t *out) {
  if (threshold >= n || threshold == 0) {
    for (size_t i = 0; i < n; i++) out[i] = i;
    return n;
  }
  size_t k = 0;
  double every = (double)(n - 2) / (double)(threshold - 2);
  size_t a = 0, next_a = 0;
  out[k++] = a;
  for (size_t i = 0; i < threshold - 2; i++) {
    double avg_x = 0, avg_y = 0;
    size_t avg_start = (size_t)floor((double)(i + 1) * every) + 1;
    size_t avg_end = (size_t)floor((double)(i + 2) * every) + 1;
    avg_end = avg_end < n ? avg_end : n;
    size_t avg_len = avg_end - avg_start;
    for (; avg_start < avg_end; avg_start++) {
      avg_x += x ? x[avg_start] : (double)avg_start;
      avg_y += y[avg_start];
    }
    avg_x /= (double)avg_len;
    avg_y /= (double)avg_len;
    size_t range_offs = (size_t)floor((double)i * every) + 1;
    size_t range_to = (size_t)floor((double)(i + 1) * every) + 1;
    double point_a_x = x ? x[a] : (double)a, point_a_y = y[a];
    double max_area = -1;
    for (; range_offs < range_to; range_offs++) {
      double px = x ? x[range_offs] : (double)range_offs;
      double area = fabs((point_a_x - avg_x) * (y[range_offs] - point_a_y) -
                         (point_a_x - px) * (avg_y - point_a_y)) *
                    0.5;
      if (area > max_area) {
        max_area = area;
        next_a = range_offs;
      }
    }
    out[k++] = next_a;
    a = next_a;
  }
  out[k++] = n - 1;
  return k;
}

/* ---- LTTB ------------------------------------------------------------------------------ */

static void test_lttb_matches_reference_on_seeded_inputs(void **state) {
  (void)state;
  const size_t sizes[] = {10, 101, 1000, 4099, 20000};
  const size_t outs[] = {3, 4, 10, 77, 500, 999};
  for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
    size_t n = sizes[si];
    double *y = random_walk(n, 42 + si);
    double *x = sorted_x(n, 7 + si);
    size_t *got = malloc(2 * n * sizeof *got), *want = malloc(n * sizeof *want);
    for (size_t oi = 0; oi < sizeof outs / sizeof outs[0]; oi++) {
      size_t n_out = outs[oi];
      for (int explicit_x = 0; explicit_x < 2; explicit_x++) {
        po_ds_input in = {0};
        in.y = y;
        in.n = n;
        in.x = explicit_x ? x : NULL;
        size_t nw = ref_lttb(explicit_x ? x : NULL, y, n, n_out, want);
        int64_t ng = po_ds_lttb(&in, n_out, got, 2 * n, NULL, 0);
        assert_int_equal(ng, (int64_t)nw);
        for (size_t i = 0; i < nw; i++) assert_int_equal(got[i], want[i]);
      }
    }
    free(y);
    free(x);
    free(got);
    free(want);
  }
}

static void test_lttb_matches_reference_on_integer_data(void **state) {
  (void)state; /* many exact ties: the first point of a tie wins, as in the reference */
  size_t n = 5000;
  double *y = malloc(n * sizeof *y);
  rng_state = 99;
  for (size_t i = 0; i < n; i++) y[i] = floor(rnd() * 5);
  size_t got[400], want[400];
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  size_t nw = ref_lttb(NULL, y, n, 200, want);
  int64_t ng = po_ds_lttb(&in, 200, got, 400, NULL, 0);
  assert_int_equal(ng, (int64_t)nw);
  for (size_t i = 0; i < nw; i++) assert_int_equal(got[i], want[i]);
  free(y);
}

static void test_lttb_float32_matches_float64(void **state) {
  (void)state;
  size_t n = 3000;
  double *y = random_walk(n, 5);
  float *yf = malloc(n * sizeof *yf);
  for (size_t i = 0; i < n; i++) {
    yf[i] = (float)y[i];
    y[i] = (double)yf[i];
  }
  size_t a[200], b[200];
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  int64_t na = po_ds_lttb(&in, 100, a, 200, NULL, 0);
  in.y = yf;
  in.y_type = PO_DS_F32;
  int64_t nb = po_ds_lttb(&in, 100, b, 200, NULL, 0);
  assert_int_equal(na, 100);
  assert_int_equal(na, nb);
  assert_memory_equal(a, b, (size_t)na * sizeof a[0]);
  free(y);
  free(yf);
}

/* ---- M4 and MinMax --------------------------------------------------------------------- */

/* For every column: the first, last, first minimum and first maximum are kept, and nothing else. */
static void check_m4(const double *x, const double *y, size_t n, size_t width, int m4) {
  size_t cap = po_ds_capacity(m4 ? PO_DS_M4 : PO_DS_MINMAX, width);
  size_t *idx = malloc(cap * sizeof *idx);
  po_ds_input in = {0};
  in.x = x;
  in.y = y;
  in.n = n;
  char err[128] = "";
  int64_t k = m4 ? po_ds_m4(&in, width, idx, cap, err, sizeof err)
                 : po_ds_minmax(&in, width, idx, cap, err, sizeof err);
  assert_true(k > 0);
  assert_ascending(idx, k);
  double lo = x ? x[0] : 0, hi = x ? x[n - 1] : (double)(n - 1);
  size_t expected = 0;
  size_t i = 0;
  while (i < n) {
    size_t c = po_ds_column(x ? x[i] : (double)i, lo, hi, width);
    size_t s = i, imin = i, imax = i;
    while (i < n && po_ds_column(x ? x[i] : (double)i, lo, hi, width) == c) {
      if (y[i] < y[imin]) imin = i;
      if (y[i] > y[imax]) imax = i;
      i++;
    }
    size_t e = i - 1;
    assert_true(contains(idx, k, imin));
    assert_true(contains(idx, k, imax));
    if (m4) {
      assert_true(contains(idx, k, s));
      assert_true(contains(idx, k, e));
    }
    size_t set[4] = {imin, imax, m4 ? s : imin, m4 ? e : imin};
    for (int a = 0; a < 4; a++) {
      int dup = 0;
      for (int b = 0; b < a; b++) dup |= set[a] == set[b];
      expected += !dup;
    }
  }
  assert_int_equal(k, (int64_t)expected);
  free(idx);
}

static void test_m4_keeps_first_last_min_max_of_every_column(void **state) {
  (void)state;
  size_t n = 100000;
  double *y = random_walk(n, 11);
  double *x = sorted_x(n, 12);
  check_m4(NULL, y, n, 1000, 1);
  check_m4(x, y, n, 777, 1);
  check_m4(NULL, y, 5000, 1999, 1); /* fewer points than 4 per column */
  check_m4(NULL, y, n, 3, 1);
  free(y);
  free(x);
}

static void test_minmax_keeps_min_and_max_of_every_column(void **state) {
  (void)state;
  size_t n = 50000;
  double *y = random_walk(n, 13);
  double *x = sorted_x(n, 14);
  check_m4(NULL, y, n, 640, 0);
  check_m4(x, y, n, 333, 0);
  free(y);
  free(x);
}

static void test_m4_float32_input(void **state) {
  (void)state;
  size_t n = 10000;
  float *y = malloc(n * sizeof *y);
  float *x = malloc(n * sizeof *x);
  double *yd = random_walk(n, 3), *xd = sorted_x(n, 4);
  for (size_t i = 0; i < n; i++) {
    y[i] = (float)yd[i];
    x[i] = (float)xd[i];
    xd[i] = (double)x[i];
    yd[i] = (double)y[i];
  }
  size_t a[2000], b[2000];
  po_ds_input in = {0};
  in.y = yd;
  in.x = xd;
  in.n = n;
  int64_t na = po_ds_m4(&in, 300, a, 2000, NULL, 0);
  in.y = y;
  in.y_type = PO_DS_F32;
  in.x = x;
  in.x_type = PO_DS_F32;
  int64_t nb = po_ds_m4(&in, 300, b, 2000, NULL, 0);
  assert_true(na > 300);
  assert_int_equal(na, nb); /* the same values as float32 give the same indices */
  assert_memory_equal(a, b, (size_t)na * sizeof a[0]);
  free(y);
  free(x);
  free(yd);
  free(xd);
}

static void test_m4_with_explicit_domain_clamps_outside_points(void **state) {
  (void)state;
  double x[] = {-5, 0, 1, 2, 3, 4, 20};
  double y[] = {1, 2, 3, 4, 5, 6, 7};
  po_ds_input in = {0};
  in.x = x;
  in.y = y;
  in.n = 7;
  in.x_lo = 0;
  in.x_hi = 4;
  size_t idx[20];
  int64_t k = po_ds_m4(&in, 2, idx, 20, NULL, 0);
  /* column 0: x < 2 (indices 0..2, first=min 0, last=max 2); column 1: x >= 2 (3..6) */
  assert_int_equal(k, 4);
  size_t want[] = {0, 2, 3, 6};
  for (int i = 0; i < 4; i++) assert_int_equal(idx[i], want[i]);
}

/* ---- NaN gaps ---------------------------------------------------------------------------- */

static void test_nan_gap_is_kept_by_every_method(void **state) {
  (void)state;
  size_t n = 20000;
  double *y = random_walk(n, 21);
  for (size_t i = 9000; i < 9500; i++) y[i] = NAN; /* a gap of 500 points */
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  size_t idx[10000];
  const po_ds_method methods[] = {PO_DS_M4, PO_DS_MINMAX, PO_DS_LTTB, PO_DS_MINMAXLTTB};
  for (size_t m = 0; m < 4; m++) {
    int64_t k = po_downsample(methods[m], &in, 200, idx, 10000, NULL, 0);
    assert_true(k > 0);
    assert_ascending(idx, k);
    assert_true(contains(idx, k, 9000)); /* the first NaN of the gap */
    size_t nans = 0;
    for (int64_t i = 0; i < k; i++) {
      if (isnan(y[idx[i]])) {
        nans++;
        assert_true(idx[i] >= 9000 && idx[i] < 9500);
      }
    }
    assert_true(nans >= 1 && nans <= 6); /* one per column the gap covers, not the whole run */
    /* points on both sides of the gap survive */
    int before = 0, after = 0;
    for (int64_t i = 0; i < k; i++) {
      before |= idx[i] < 9000;
      after |= idx[i] >= 9500;
    }
    assert_true(before && after);
  }
  free(y);
}

static void test_all_nan_column_keeps_a_gap_marker_only(void **state) {
  (void)state;
  double y[] = {1, 2, NAN, NAN, 5, 6};
  po_ds_input in = {0};
  in.y = y;
  in.n = 6;
  size_t idx[32];
  int64_t k = po_ds_minmax(&in, 3, idx, 32, NULL, 0);
  /* columns by x = i: [0,1], [2,3], [4,5] */
  assert_int_equal(k, 5);
  size_t want[] = {0, 1, 2, 4, 5};
  for (int i = 0; i < 5; i++) assert_int_equal(idx[i], want[i]);
}

/* ---- tiny inputs and errors --------------------------------------------------------------- */

static void test_zero_to_three_points_all_methods(void **state) {
  (void)state;
  double y[] = {1, 3, 2};
  const po_ds_method methods[] = {PO_DS_M4, PO_DS_MINMAX, PO_DS_LTTB, PO_DS_MINMAXLTTB};
  for (size_t m = 0; m < 4; m++) {
    for (size_t n = 0; n <= 3; n++) {
      po_ds_input in = {0};
      in.y = n ? y : NULL;
      in.n = n;
      size_t idx[16];
      int64_t k = po_downsample(methods[m], &in, 3, idx, 16, NULL, 0);
      assert_int_equal(k, (int64_t)n);
      for (size_t i = 0; i < n; i++) assert_int_equal(idx[i], i);
    }
  }
  /* one column, three points: M4 keeps them all (first=min, max, last) */
  po_ds_input in = {0};
  in.y = y;
  in.n = 3;
  size_t idx[8];
  assert_int_equal(po_ds_m4(&in, 1, idx, 8, NULL, 0), 3);
  /* LTTB of 3 points to 3 keeps all; of 3 to 2 is an error (needs at least 3) */
  assert_int_equal(po_ds_lttb(&in, 2, idx, 8, NULL, 0), PO_EINVAL);
}

static void test_unsorted_x_is_an_error_naming_the_index(void **state) {
  (void)state;
  double x[] = {0, 1, 2, 5, 4, 6};
  double y[] = {1, 2, 3, 4, 5, 6};
  po_ds_input in = {0};
  in.x = x;
  in.y = y;
  in.n = 6;
  size_t idx[32];
  char err[160] = "";
  const po_ds_method methods[] = {PO_DS_M4, PO_DS_MINMAX, PO_DS_LTTB, PO_DS_MINMAXLTTB};
  for (size_t m = 0; m < 4; m++) {
    err[0] = '\0';
    assert_int_equal(po_downsample(methods[m], &in, 3, idx, 32, err, sizeof err), PO_EINVAL);
    assert_non_null(strstr(err, "x[4]"));
    assert_non_null(strstr(err, "not sorted"));
  }
  x[2] = NAN;
  assert_int_equal(po_ds_m4(&in, 3, idx, 32, err, sizeof err), PO_EINVAL);
  assert_non_null(strstr(err, "x[2] is NaN"));
}

static void test_width_zero_is_an_error(void **state) {
  (void)state;
  double y[] = {1, 2, 3, 4};
  po_ds_input in = {0};
  in.y = y;
  in.n = 4;
  size_t idx[8];
  char err[128] = "";
  assert_int_equal(po_ds_m4(&in, 0, idx, 8, err, sizeof err), PO_EINVAL);
  assert_non_null(strstr(err, "0"));
  assert_int_equal(po_ds_minmax(&in, 0, idx, 8, NULL, 0), PO_EINVAL);
  assert_int_equal(po_ds_lttb(&in, 0, idx, 8, NULL, 0), PO_EINVAL);
  assert_int_equal(po_ds_minmaxlttb(&in, 0, 4, idx, 8, NULL, 0), PO_EINVAL);
  assert_int_equal(po_ds_m4(NULL, 10, idx, 8, NULL, 0), PO_EINVAL);
}

static void test_small_capacity_is_erange(void **state) {
  (void)state;
  size_t n = 1000;
  double *y = random_walk(n, 1);
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  size_t idx[10];
  char err[128] = "";
  assert_int_equal(po_ds_m4(&in, 100, idx, 10, err, sizeof err), PO_ERANGE);
  assert_non_null(strstr(err, "capacity"));
  assert_int_equal(po_ds_lttb(&in, 100, idx, 10, NULL, 0), PO_ERANGE);
  free(y);
}

/* ---- MinMaxLTTB ------------------------------------------------------------------------ */

static void test_minmaxlttb_keeps_ends_and_count(void **state) {
  (void)state;
  size_t n = 200000;
  double *y = random_walk(n, 31);
  double *x = sorted_x(n, 32);
  size_t idx[1000];
  for (int ex = 0; ex < 2; ex++) {
    po_ds_input in = {0};
    in.y = y;
    in.x = ex ? x : NULL;
    in.n = n;
    int64_t k = po_ds_minmaxlttb(&in, 500, 0, idx, 1000, NULL, 0);
    assert_int_equal(k, 500);
    assert_ascending(idx, k);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[k - 1], n - 1);
  }
  /* the global extremes of a spiky series survive the preselection */
  y[123457] = 1e6;
  y[77777] = -1e6;
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  int64_t k = po_ds_minmaxlttb(&in, 300, 4, idx, 1000, NULL, 0);
  assert_true(contains(idx, k, 123457));
  assert_true(contains(idx, k, 77777));
  free(y);
  free(x);
}

/* ---- streaming ------------------------------------------------------------------------- */

static void test_stream_small_series_is_kept_whole(void **state) {
  (void)state;
  po_ds_stream *s;
  assert_int_equal(po_ds_stream_create(64, &s), 0);
  for (int i = 0; i < 50; i++) po_ds_stream_push(s, 50 - i, i); /* descending x */
  double x[400], y[400];
  uint64_t seq[400];
  int64_t k = po_ds_stream_read(s, x, y, seq, 400);
  assert_int_equal(k, 50);
  for (int i = 0; i < 50; i++) {
    assert_true(x[i] == (double)(i + 1)); /* sorted by x */
    assert_int_equal(seq[i], 49 - i);
  }
  po_ds_stream_destroy(s);
}

static void test_stream_is_exact_m4_of_its_buckets(void **state) {
  (void)state;
  size_t n = 1000000, nb = 100;
  double *y = random_walk(n, 41);
  po_ds_stream *s;
  assert_int_equal(po_ds_stream_create(nb, &s), 0);
  /* in uneven batches */
  for (size_t i = 0; i < n;) {
    size_t len = 1 + (i * 7919) % 50000;
    if (len > n - i) len = n - i;
    assert_int_equal(po_ds_stream_push_y(s, y + i, len), 0);
    i += len;
  }
  po_ds_stream_stats st;
  po_ds_stream_get_stats(s, &st);
  assert_int_equal(st.pushed, n);
  assert_true(st.halvings > 0);
  assert_true(st.buckets_used <= nb);
  size_t cap = po_ds_stream_max_points(s);
  double *x = malloc(cap * sizeof *x), *yy = malloc(cap * sizeof *yy);
  uint64_t *seq = malloc(cap * sizeof *seq);
  int64_t k = po_ds_stream_read(s, x, yy, seq, cap);
  assert_true(k > 0 && (size_t)k <= cap);
  for (int64_t i = 1; i < k; i++) assert_true(x[i - 1] < x[i]);
  /* recompute M4 over the stream's buckets (origin 0, width st.bucket_width) */
  double dx = st.bucket_width;
  size_t i = 0, expected = 0;
  while (i < n) {
    int64_t b = (int64_t)floor((double)i / dx);
    size_t s0 = i, imin = i, imax = i;
    while (i < n && (int64_t)floor((double)i / dx) == b) {
      if (y[i] < y[imin]) imin = i;
      if (y[i] > y[imax]) imax = i;
      i++;
    }
    size_t want[4] = {s0, imin, imax, i - 1};
    for (int a = 0; a < 4; a++) {
      int found = 0, dup = 0;
      for (int64_t j = 0; j < k; j++) found |= seq[j] == want[a];
      assert_true(found);
      for (int c = 0; c < a; c++) dup |= want[c] == want[a];
      expected += !dup;
    }
  }
  assert_int_equal(k, (int64_t)expected);
  free(x);
  free(yy);
  free(seq);
  free(y);
  po_ds_stream_destroy(s);
}

static void test_stream_any_order_keeps_global_extremes_and_gaps(void **state) {
  (void)state;
  size_t n = 100000;
  double *y = random_walk(n, 51);
  y[60000] = 1e9;
  y[1234] = -1e9;
  for (size_t i = 30000; i < 30010; i++) y[i] = NAN;
  po_ds_stream *s;
  assert_int_equal(po_ds_stream_create(256, &s), 0);
  for (size_t i = n; i-- > 0;) po_ds_stream_push(s, (double)i * 0.25 - 7, y[i]); /* descending */
  po_ds_stream_push(s, NAN, 1.0);                                                /* dropped */
  size_t cap = po_ds_stream_max_points(s);
  double *x = malloc(cap * sizeof *x), *yy = malloc(cap * sizeof *yy);
  int64_t k = po_ds_stream_read(s, x, yy, NULL, cap);
  assert_true(k > 0);
  int hi = 0, lo = 0, gap = 0;
  for (int64_t i = 0; i < k; i++) {
    hi |= yy[i] == 1e9;
    lo |= yy[i] == -1e9;
    if (isnan(yy[i])) {
      gap += x[i] == 30000 * 0.25 - 7; /* the first NaN of the gap, by x */
      assert_true(x[i] >= 30000 * 0.25 - 7 && x[i] <= 30009 * 0.25 - 7);
    }
    if (i) assert_true(x[i - 1] <= x[i]);
  }
  assert_true(hi && lo && gap);
  assert_true(x[0] == -7);
  assert_true(x[k - 1] == (double)(n - 1) * 0.25 - 7);
  po_ds_stream_stats st;
  po_ds_stream_get_stats(s, &st);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(po_ds_stream_read(s, x, yy, NULL, 3), PO_ERANGE);
  po_ds_stream_reset(s);
  assert_int_equal(po_ds_stream_read(s, x, yy, NULL, cap), 0);
  free(x);
  free(yy);
  free(y);
  po_ds_stream_destroy(s);
  assert_int_equal(po_ds_stream_create(1, &s), PO_EINVAL);
}

/* ---- streaming: inputs that used to loop forever ------------------------------------------- */

/* Each of these hung at 100% CPU before the bucket width was kept finite: SIGALRM (default
 * action: terminate) turns a hang into a failed test binary. */
#define HANG_GUARD_SECONDS 20

/* Reads the stream back and checks what must hold whatever the input: a finite, positive width
 * with a finite inverse, x sorted, and the points with the smallest and largest x and y kept. */
static void check_stream(po_ds_stream *s, double xmin, double xmax, double ymin, double ymax) {
  po_ds_stream_stats st;
  po_ds_stream_get_stats(s, &st);
  assert_true(isfinite(st.bucket_width) && st.bucket_width > 0);
  assert_true(isfinite(1.0 / st.bucket_width));
  size_t cap = po_ds_stream_max_points(s);
  double *x = malloc(cap * sizeof *x), *y = malloc(cap * sizeof *y);
  assert_non_null(x);
  assert_non_null(y);
  int64_t k = po_ds_stream_read(s, x, y, NULL, cap);
  assert_true(k > 0);
  int has_xmin = 0, has_xmax = 0, has_ymin = 0, has_ymax = 0;
  for (int64_t i = 0; i < k; i++) {
    if (i) assert_true(x[i - 1] <= x[i]);
    has_xmin |= x[i] == xmin;
    has_xmax |= x[i] == xmax;
    has_ymin |= y[i] == ymin;
    has_ymax |= y[i] == ymax;
  }
  assert_true(has_xmin && has_xmax && has_ymin && has_ymax);
  free(x);
  free(y);
}

static void test_stream_x_spanning_all_doubles_ends(void **state) {
  (void)state;
  static const size_t buckets[] = {2, 3, 8, 240, 2000};
  alarm(HANG_GUARD_SECONDS);
  for (size_t b = 0; b < sizeof buckets / sizeof buckets[0]; b++) {
    po_ds_stream *s;
    assert_int_equal(po_ds_stream_create(buckets[b], &s), 0);
    size_t n = 3 * buckets[b] + 10; /* more rows than buckets: the grid is built */
    for (size_t i = 0; i < n; i++) {
      double sign = i % 2 ? -1 : 1;
      double x = sign * DBL_MAX * (0.5 + 0.5 * (double)i / (double)n);
      po_ds_stream_push(s, i == n - 1 ? -DBL_MAX : x, (double)i);
    }
    po_ds_stream_push(s, DBL_MAX, -1);
    check_stream(s, -DBL_MAX, DBL_MAX, -1, (double)(n - 1));
    po_ds_stream_destroy(s);
  }
  alarm(0);
}

static void test_stream_x_differing_by_denormals_ends(void **state) {
  (void)state;
  alarm(HANG_GUARD_SECONDS);
  po_ds_stream *s;
  /* x in {0, 1, 2} times the smallest denormal */
  assert_int_equal(po_ds_stream_create(240, &s), 0);
  for (int i = 0; i < 1000; i++) po_ds_stream_push(s, 4.9406564584124654e-324 * (i % 3), i);
  check_stream(s, 0, 2 * 4.9406564584124654e-324, 0, 999);
  po_ds_stream_destroy(s);
  /* denormals near 1e-310, then a jump to 1: the width grows from the smallest one */
  assert_int_equal(po_ds_stream_create(16, &s), 0);
  for (int i = 0; i < 100; i++) po_ds_stream_push(s, 1e-310 + 4.9406564584124654e-324 * i, -i);
  po_ds_stream_push(s, 1.0, 5);
  check_stream(s, 1e-310, 1.0, -99, 5);
  po_ds_stream_destroy(s);
  alarm(0);
}

static void test_stream_implicit_x_after_extreme_x_ends(void **state) {
  (void)state;
  alarm(HANG_GUARD_SECONDS);
  po_ds_stream *s;
  assert_int_equal(po_ds_stream_create(8, &s), 0);
  for (int i = 0; i < 20; i++) po_ds_stream_push(s, i % 2 ? 1e308 : -1e308, i);
  double y[5000];
  for (int i = 0; i < 5000; i++) y[i] = (double)(i % 97);
  assert_int_equal(po_ds_stream_push_y(s, y, 5000), 0); /* x = 20, 21, ... */
  po_ds_stream_stats st;
  po_ds_stream_get_stats(s, &st);
  assert_int_equal(st.pushed, 5020);
  check_stream(s, -1e308, 1e308, 0, 96);
  po_ds_stream_destroy(s);
  alarm(0);
}

/* A point a hair below the origin is in bucket -1 at every resolution: once the width is near
 * 2^1022 its offset underflows to -0, which must not put it in bucket 0 after a larger x that was
 * placed in bucket -1 earlier (the read-back would then be out of order). */
static void test_stream_points_just_below_the_origin_stay_sorted(void **state) {
  (void)state;
  po_ds_stream *s;
  assert_int_equal(po_ds_stream_create(4, &s), 0);
  for (int i = 0; i < 5; i++) po_ds_stream_push(s, i ? i : 0.5, i); /* grid: origin 0.5 */
  double above = 0.5 - 0x1p-54, below = 0.5 - 0x1p-53;
  po_ds_stream_push(s, above, 10); /* bucket -1 at the fine width */
  po_ds_stream_push(s, 1e308, 11); /* the width grows to the largest powers of two */
  po_ds_stream_push(s, below, 12); /* (below - 0.5) / width underflows to -0 */
  check_stream(s, below, 1e308, 0, 12);
  po_ds_stream_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lttb_matches_reference_on_seeded_inputs),
      cmocka_unit_test(test_lttb_matches_reference_on_integer_data),
      cmocka_unit_test(test_lttb_float32_matches_float64),
      cmocka_unit_test(test_m4_keeps_first_last_min_max_of_every_column),
      cmocka_unit_test(test_minmax_keeps_min_and_max_of_every_column),
      cmocka_unit_test(test_m4_float32_input),
      cmocka_unit_test(test_m4_with_explicit_domain_clamps_outside_points),
      cmocka_unit_test(test_nan_gap_is_kept_by_every_method),
      cmocka_unit_test(test_all_nan_column_keeps_a_gap_marker_only),
      cmocka_unit_test(test_zero_to_three_points_all_methods),
      cmocka_unit_test(test_unsorted_x_is_an_error_naming_the_index),
      cmocka_unit_test(test_width_zero_is_an_error),
      cmocka_unit_test(test_small_capacity_is_erange),
      cmocka_unit_test(test_minmaxlttb_keeps_ends_and_count),
      cmocka_unit_test(test_stream_small_series_is_kept_whole),
      cmocka_unit_test(test_stream_is_exact_m4_of_its_buckets),
      cmocka_unit_test(test_stream_any_order_keeps_global_extremes_and_gaps),
      cmocka_unit_test(test_stream_x_spanning_all_doubles_ends),
      cmocka_unit_test(test_stream_x_differing_by_denormals_ends),
      cmocka_unit_test(test_stream_implicit_x_after_extreme_x_ends),
      cmocka_unit_test(test_stream_points_just_below_the_origin_stay_sorted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
