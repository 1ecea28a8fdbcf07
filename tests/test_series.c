/* Bounded time-series columns: fixed memory, coarsening that keeps min/max/first/last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "perfopt.h"
#include "monitor/series.h"

static po__series_set *two_columns(size_t cap) {
  po__series_set *s = po__series_create(cap, 2, 0);
  assert_non_null(s);
  assert_int_equal(po__series_add_column(s, "a", "ratio"), 0);
  assert_int_equal(po__series_add_column(s, "b", "bytes"), 1);
  return s;
}

static void push2(po__series_set *s, double t, double a, double b) {
  double v[2] = {a, b};
  po__series_push(s, t, v);
}

static void test_within_capacity_every_sample_is_a_bucket(void **state) {
  (void)state;
  po__series_set *s = two_columns(8);
  for (int i = 0; i < 8; i++) push2(s, i, i * 10.0, -i);
  assert_int_equal(po__series_len(s), 8);
  assert_int_equal(po__series_samples_per_bucket(s), 1);
  po__series_point p;
  assert_int_equal(po__series_get(s, 0, 5, &p), 0);
  assert_true(p.t == 5 && p.min == 50 && p.max == 50 && p.first == 50 && p.last == 50);
  assert_int_equal(po__series_get(s, 1, 7, &p), 0);
  assert_true(p.last == -7);
  assert_int_equal(po__series_get(s, 0, 8, &p), PO_ERANGE);
  po__series_destroy(s);
}

static void test_full_set_merges_adjacent_pairs(void **state) {
  (void)state;
  po__series_set *s = two_columns(4);
  double vals[] = {3, 1, 4, 1, 5};
  for (int i = 0; i < 5; i++) push2(s, 100 + i, vals[i], 0);
  /* 4 buckets were full: pairs merged into 2 (per bucket 2), then the 5th opened a third. */
  assert_int_equal(po__series_len(s), 3);
  assert_int_equal(po__series_samples_per_bucket(s), 2);
  po__series_point p;
  po__series_get(s, 0, 0, &p);
  assert_true(p.t == 100 && p.first == 3 && p.last == 1 && p.min == 1 && p.max == 3);
  po__series_get(s, 0, 1, &p);
  assert_true(p.t == 102 && p.first == 4 && p.last == 1 && p.min == 1 && p.max == 4);
  po__series_get(s, 0, 2, &p);
  assert_true(p.t == 104 && p.first == 5 && p.last == 5);
  /* The 6th sample joins the third bucket (2 per bucket now). */
  push2(s, 105, 9, 0);
  assert_int_equal(po__series_len(s), 3);
  po__series_get(s, 0, 2, &p);
  assert_true(p.min == 5 && p.max == 9 && p.first == 5 && p.last == 9);
  po__series_destroy(s);
}

static void test_extremes_survive_many_coarsenings(void **state) {
  (void)state;
  po__series_set *s = two_columns(16);
  for (int i = 0; i < 10000; i++) push2(s, i, i == 4321 ? 1e6 : (i == 777 ? -5 : 1), 0);
  double mx = -INFINITY, mn = INFINITY;
  for (size_t i = 0; i < po__series_len(s); i++) {
    po__series_point p;
    po__series_get(s, 0, i, &p);
    if (p.max > mx) mx = p.max;
    if (p.min < mn) mn = p.min;
  }
  assert_true(mx == 1e6);
  assert_true(mn == -5);
  assert_true(po__series_len(s) <= 16);
  assert_int_equal(po__series_pushed(s), 10000);
  po__series_destroy(s);
}

static void test_memory_is_constant_for_a_day_at_1hz(void **state) {
  (void)state;
  po__series_set *s = po__series_create(4096, 12, 1024 * 1024);
  assert_non_null(s);
  for (int c = 0; c < 12; c++) assert_true(po__series_add_column(s, "x", "ratio") >= 0);
  size_t before = po__series_bytes(s);
  double v[12];
  for (int i = 0; i < 86400; i++) {
    for (int c = 0; c < 12; c++) v[c] = (double)(i % 100) / 100.0;
    po__series_push(s, i, v);
  }
  assert_int_equal(po__series_bytes(s), before);
  assert_true(before <= 1024 * 1024);
  assert_true(po__series_len(s) <= po__series_capacity(s));
  assert_int_equal(po__series_pushed(s), 86400);
  po__series_point p;
  po__series_get(s, 0, 0, &p);
  assert_true(p.t == 0); /* the oldest data is still there, coarsened */
  po__series_destroy(s);
}

static void test_byte_bound_lowers_capacity(void **state) {
  (void)state;
  po__series_set *s = po__series_create(1000000, 8, 64 * 1024);
  assert_non_null(s);
  assert_true(po__series_capacity(s) < 1000000);
  assert_true(po__series_capacity(s) % 2 == 0);
  assert_true(po__series_bytes(s) <= 64 * 1024);
  po__series_destroy(s);
  assert_null(po__series_create(4096, 8, 100)); /* not even the header fits */
  assert_null(po__series_create(2, 1, 0));
}

static void test_nan_means_not_measured(void **state) {
  (void)state;
  po__series_set *s = two_columns(4);
  push2(s, 0, NAN, 1);
  push2(s, 1, 7, 2);
  push2(s, 2, 8, 3);
  push2(s, 3, NAN, 4);
  push2(s, 4, 2, 5); /* coarsens: [NAN,7] and [8,NAN] */
  po__series_point p;
  po__series_get(s, 0, 0, &p);
  assert_true(p.first == 7 && p.last == 7 && p.min == 7);
  po__series_get(s, 0, 1, &p);
  assert_true(p.first == 8 && p.last == 8);
  po__series_destroy(s);
  s = two_columns(4);
  push2(s, 0, NAN, 1);
  po__series_get(s, 0, 0, &p);
  assert_true(isnan(p.min) && isnan(p.last));
  po__series_destroy(s);
}

static void test_columns_are_fixed_after_the_first_push(void **state) {
  (void)state;
  po__series_set *s = po__series_create(8, 3, 0);
  assert_int_equal(po__series_add_column(s, "a", "ratio"), 0);
  double v[1] = {1};
  po__series_push(s, 0, v);
  assert_int_equal(po__series_add_column(s, "b", "ratio"), PO_ESTATE);
  assert_string_equal(po__series_name(s, 0), "a");
  assert_string_equal(po__series_unit(s, 0), "ratio");
  assert_null(po__series_name(s, 1));
  po__series_destroy(s);
  s = po__series_create(8, 1, 0);
  assert_int_equal(po__series_add_column(s, "a", "ratio"), 0);
  assert_int_equal(po__series_add_column(s, "b", "ratio"), PO_ENOMEM);
  po__series_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_within_capacity_every_sample_is_a_bucket),
      cmocka_unit_test(test_full_set_merges_adjacent_pairs),
      cmocka_unit_test(test_extremes_survive_many_coarsenings),
      cmocka_unit_test(test_memory_is_constant_for_a_day_at_1hz),
      cmocka_unit_test(test_byte_bound_lowers_capacity),
      cmocka_unit_test(test_nan_means_not_measured),
      cmocka_unit_test(test_columns_are_fixed_after_the_first_push),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
