/* The function-level profiler: counts, self vs inclusive time, recursion, threads, percentiles,
 * timeline drops, the JSON report, atomic saves, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/histogram.h"
#include "base/base.h"
#include "support/support.h"

static volatile uint64_t sink;

static void spin(int n) {
  for (int i = 0; i < n; i++) sink += (uint64_t)i * 7u;
}

static int reset(void **state) {
  (void)state;
  po_profile_set_enabled(1);
  po_profile_reset();
  return 0;
}

/* ---- counts and times ---------------------------------------------------------------------- */

static void counted_leaf(void) {
  PO_PROFILE_FUNCTION();
  spin(10);
}

static void test_exact_call_counts(void **state) {
  (void)state;
  for (int i = 0; i < 12345; i++) counted_leaf();
  po_report *rep = support_profile_report();
  const cJSON *f = support_find_function(po_report_json(rep), "counted_leaf");
  assert_non_null(f);
  assert_int_equal((long)support_num(f, "calls"), 12345);
  assert_true(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(f, "file")), "test_profile.c"));
  assert_true(support_num(f, "line") > 0);
  po_report_destroy(rep);
}

static void nested_child_a(void) {
  PO_SCOPE("nested_child_a");
  spin(200);
}
static void nested_child_b(void) {
  PO_SCOPE("nested_child_b");
  spin(400);
}

static void test_self_time_excludes_children(void **state) {
  (void)state;
  for (int i = 0; i < 1000; i++) {
    PO_SCOPE("nested_parent");
    spin(100);
    nested_child_a();
    nested_child_b();
  }
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  const cJSON *p = support_find_function(root, "nested_parent");
  const cJSON *a = support_find_function(root, "nested_child_a");
  const cJSON *b = support_find_function(root, "nested_child_b");
  assert_non_null(p);
  assert_non_null(a);
  assert_non_null(b);
  double inclusive = support_num(p, "total_seconds");
  double self = support_num(p, "self_seconds");
  double children = support_num(a, "total_seconds") + support_num(b, "total_seconds");
  assert_true(self > 0);
  assert_true(self < inclusive);
  /* self + children = inclusive, exactly up to floating-point rounding of the tick sums */
  assert_true(fabs(self + children - inclusive) <= 1e-9 * inclusive + 1e-12);
  /* a leaf's self time is its total */
  assert_true(fabs(support_num(a, "self_seconds") - support_num(a, "total_seconds")) < 1e-12);
  po_report_destroy(rep);
}

static void test_zone_block_and_begin_end(void **state) {
  (void)state;
  static po_site site = PO_SITE_INIT("manual_site", __FILE__, __LINE__);
  for (int i = 0; i < 10; i++) {
    po_zone_begin(&site);
    po_zone_end();
  }
  for (int i = 0; i < 7; i++) {
    PO_ZONE("zone_block") {
      if (i == 3) break; /* leaving the block by break still ends the zone */
      spin(5);
    }
  }
  po_report *rep = support_profile_report();
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "manual_site"), "calls"), 10);
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "zone_block"), "calls"), 7);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.unmatched_ends, 0);
  po_report_destroy(rep);
}

static void *double_it(void *arg) {
  spin(10);
  return (void *)((uintptr_t)arg * 2);
}

static void test_profile_call_times_callback(void **state) {
  (void)state;
  for (uintptr_t i = 0; i < 5; i++)
    assert_int_equal((uintptr_t)po_profile_call("callback_zone", double_it, (void *)i), i * 2);
  po_report *rep = support_profile_report();
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "callback_zone"), "calls"), 5);
  po_report_destroy(rep);
}

/* ---- recursion and the call tree ---------------------------------------------------------- */

static int fib(int n) {
  PO_PROFILE_FUNCTION();
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void test_recursion_does_not_double_count(void **state) {
  (void)state;
  {
    PO_SCOPE("fib_driver");
    assert_int_equal(fib(15), 610);
  }
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  const cJSON *f = support_find_function(root, "fib");
  const cJSON *d = support_find_function(root, "fib_driver");
  assert_int_equal((long)support_num(f, "calls"), 1973);
  /* fib's inclusive time is counted once, so it cannot exceed its caller's */
  assert_true(support_num(f, "total_seconds") <= support_num(d, "total_seconds"));
  assert_true(support_num(f, "self_seconds") <= support_num(f, "total_seconds") * (1 + 1e-9));
  po_report_destroy(rep);
}

static void shared_callee(void) {
  PO_PROFILE_FUNCTION();
  spin(10);
}
static void caller_one(void) {
  PO_PROFILE_FUNCTION();
  shared_callee();
}
static void caller_two(void) {
  PO_PROFILE_FUNCTION();
  shared_callee();
  shared_callee();
}

static void test_call_tree_tells_callers_apart(void **state) {
  (void)state;
  caller_one();
  caller_two();
  po_report *rep = support_profile_report();
  const cJSON *tree =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "profile"), "call_tree");
  long from_one = -1, from_two = -1;
  const cJSON *n, *m;
  cJSON_ArrayForEach(n, tree) {
    if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(n, "name")), "shared_callee")) continue;
    int parent = (int)support_num(n, "parent");
    cJSON_ArrayForEach(m, tree) {
      if ((int)support_num(m, "id") != parent) continue;
      const char *pn = cJSON_GetStringValue(cJSON_GetObjectItem(m, "name"));
      if (!strcmp(pn, "caller_one")) from_one = (long)support_num(n, "calls");
      if (!strcmp(pn, "caller_two")) from_two = (long)support_num(n, "calls");
    }
  }
  assert_int_equal(from_one, 1);
  assert_int_equal(from_two, 2);
  po_report_destroy(rep);
}

/* ---- threads ------------------------------------------------------------------------------- */

static void *thread_zones(void *arg) {
  int n = (int)(intptr_t)arg;
  for (int i = 0; i < n; i++) {
    PO_SCOPE("thread_outer");
    PO_SCOPE("thread_inner");
  }
  return NULL;
}

static void test_eight_threads_exact_counts(void **state) {
  (void)state;
  pthread_t t[8];
  for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, thread_zones, (void *)(intptr_t)100000);
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  assert_int_equal((long)support_num(support_find_function(root, "thread_outer"), "calls"), 800000);
  assert_int_equal((long)support_num(support_find_function(root, "thread_inner"), "calls"), 800000);
  /* every exited thread is still listed */
  const cJSON *threads = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "threads");
  int exited = 0;
  const cJSON *th;
  cJSON_ArrayForEach(th, threads) exited += cJSON_IsTrue(cJSON_GetObjectItem(th, "exited"));
  assert_true(exited >= 8);
  po_report_destroy(rep);
}

static void *open_zone_and_exit(void *arg) {
  (void)arg;
  static po_site s = PO_SITE_INIT("left_open", __FILE__, __LINE__);
  po_zone_begin(&s);
  spin(100);
  return NULL; /* exits with the zone open */
}

static void test_thread_exit_closes_open_zone(void **state) {
  (void)state;
  pthread_t t;
  pthread_create(&t, NULL, open_zone_and_exit, NULL);
  pthread_join(t, NULL);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.open_at_exit, 1);
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  assert_int_equal((long)support_num(support_find_function(root, "left_open"), "calls"), 1);
  const cJSON *tree = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "call_tree");
  const cJSON *n;
  int flagged = 0;
  cJSON_ArrayForEach(n, tree) flagged += cJSON_IsTrue(cJSON_GetObjectItem(n, "open_at_exit"));
  assert_int_equal(flagged, 1);
  po_report_destroy(rep);
}

/* ---- percentiles ------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_percentiles_match_sorted_reference(void **state) {
  (void)state;
  enum { N = 100000 };
  uint64_t *v = malloc(N * sizeof *v);
  uint64_t *h = calloc(PO__HIST_BUCKETS, sizeof *h);
  srand(42);
  for (int i = 0; i < N; i++) {
    /* log-uniform from 1 to ~10^9: every octave of the histogram is exercised */
    double e = (double)rand() / RAND_MAX * 9.0 * log(10.0);
    v[i] = (uint64_t)exp(e);
    h[po__hist_bucket(v[i])]++;
  }
  qsort(v, N, sizeof *v, cmp_u64);
  const double qs[] = {0.5, 0.9, 0.95, 0.99, 0.999};
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    double ref = (double)v[(size_t)ceil(qs[i] * N) - 1];
    double got = po__hist_quantile(h, N, qs[i]);
    assert_true(fabs(got - ref) <= 0.01 * ref + 0.5);
  }
  free(v);
  free(h);
}

static void test_histogram_buckets_within_one_percent(void **state) {
  (void)state;
  for (uint64_t x = 1; x < (1ull << 47); x = x * 3 / 2 + 1) {
    double mid = po__hist_bucket_value(po__hist_bucket(x));
    assert_true(fabs(mid - (double)x) <= 0.0079 * (double)x + 0.5);
  }
}

/* ---- timeline ------------------------------------------------------------------------------ */

static void *timeline_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 100; i++) {
    PO_SCOPE("timeline_zone");
  }
  return NULL;
}

static void test_timeline_ring_counts_drops(void **state) {
  (void)state;
  assert_int_equal(po_profile_set_timeline(1, 16), 0);
  po_report *rep;
  pthread_t t;
  pthread_create(&t, NULL, timeline_worker, NULL);
  pthread_join(t, NULL);
  /* the worker's ring held 16 events; 84 were dropped and counted */
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.dropped_events, 84);
  rep = support_profile_report();
  assert_int_equal(
      (long)support_num(cJSON_GetObjectItem(po_report_json(rep), "profile"), "dropped_events"), 84);
  po_report_destroy(rep);
  assert_int_equal(po_profile_set_timeline(0, 16), 0);
  assert_int_equal(po_profile_set_timeline(1, 3), PO_ERANGE);
}

static void test_timeline_events_in_trace(void **state) {
  (void)state;
  assert_int_equal(po_profile_set_timeline(1, 1024), 0);
  for (int i = 0; i < 5; i++) {
    PO_SCOPE("traced_zone");
  }
  po_report *rep = support_profile_report();
  const cJSON *ev = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "profile"), "timeline"),
      "events");
  int n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, ev) n +=
      !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), "traced_zone");
  assert_int_equal(n, 5);
  char path[256];
  snprintf(path, sizeof path, "%s/trace.json", support_tmpdir());
  assert_int_equal(po_report_save_trace(rep, path, NULL, 0), 0);
  char *text;
  assert_int_equal(po__read_file(path, 1 << 24, &text, NULL, NULL, 0), 0);
  cJSON *trace = cJSON_Parse(text);
  assert_non_null(trace);
  assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(trace, "traceEvents")) >= 5);
  cJSON_Delete(trace);
  free(text);
  po_report_destroy(rep);
  po_profile_set_timeline(0, 1024);
}

/* ---- the JSON report ----------------------------------------------------------------------- */

static void test_json_report_has_every_documented_field(void **state) {
  (void)state;
  counted_leaf();
  char path[256];
  snprintf(path, sizeof path, "%s/report.json", support_tmpdir());
  po_report *rep = support_profile_report();
  assert_int_equal(po_report_save_json(rep, path, NULL, 0), 0);
  po_report_destroy(rep);
  char err[256];
  assert_int_equal(po_report_load(path, &rep, err, sizeof err), 0);
  const cJSON *root = po_report_json(rep);
  static const char *const top[] = {"perfopt_version", "host", "run", "profile"};
  for (size_t i = 0; i < 4; i++) assert_non_null(cJSON_GetObjectItem(root, top[i]));
  const cJSON *prof = cJSON_GetObjectItem(root, "profile");
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(prof, "functions")));
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(prof, "call_tree")));
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(prof, "threads")));
  assert_true(cJSON_IsNumber(cJSON_GetObjectItem(prof, "dropped_events")));
  const cJSON *f = support_find_function(root, "counted_leaf");
  assert_non_null(f);
  static const char *const fields[] = {
      "calls",       "total_seconds",  "self_seconds", "avg_seconds", "min_seconds",
      "max_seconds", "stddev_seconds", "p50_seconds",  "p90_seconds", "p95_seconds",
      "p99_seconds", "percent_total",  "line"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) support_num(f, fields[i]);
  assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "name")));
  assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "file")));
  assert_true(support_num(f, "min_seconds") <= support_num(f, "p50_seconds"));
  assert_true(support_num(f, "p50_seconds") <= support_num(f, "p99_seconds"));
  assert_true(support_num(f, "p99_seconds") <= support_num(f, "max_seconds"));
  po_report_destroy(rep);
}

static void test_failed_save_keeps_previous_file(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/keep.json", support_tmpdir());
  counted_leaf();
  po_report *first = support_profile_report();
  assert_int_equal(po_report_save_json(first, path, NULL, 0), 0);
  po_report_destroy(first);
  char *before;
  assert_int_equal(po__read_file(path, 1 << 24, &before, NULL, NULL, 0), 0);
  po_report *rep = support_profile_report();
  for (int step = 1; step <= 4; step++) {
    char err[512] = "";
    po__test_fail_write_at(step);
    assert_int_equal(po_report_save_json(rep, path, err, sizeof err), PO_EIO);
    po__test_fail_write_at(0);
    assert_non_null(strstr(err, path)); /* the error names the path */
    char *after;
    assert_int_equal(po__read_file(path, 1 << 24, &after, NULL, NULL, 0), 0);
    assert_string_equal(before, after);
    free(after);
  }
  /* no temporary file is left behind */
  assert_int_equal(support_count_files_with_prefix(support_tmpdir(), "keep.json.tmp."), 0);
  po_report_destroy(rep);
  free(before);
}

static void test_text_report_marks_only_findings(void **state) {
  (void)state;
  for (int i = 0; i < 100; i++) nested_child_b();
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(po_optimizer_write_text(NULL, f, PO_SORT_SELF), 0);
  fclose(f);
  assert_non_null(strstr(buf, "nested_child_b"));
  assert_non_null(strstr(buf, "p95"));
  /* marks come from the advisor's findings (tests/test_advisor.c), never from a row's rank */
  assert_null(strstr(buf, "!!"));
  assert_true(strstr(buf, "\n! ") == NULL || strstr(buf, "marks: ! hot") != NULL);
  free(buf);
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void test_bad_names_are_counted(void **state) {
  (void)state;
  static po_site null_site = PO_SITE_INIT(NULL, __FILE__, __LINE__);
  static po_site empty_site = PO_SITE_INIT("", __FILE__, __LINE__);
  char long_name[400];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  static po_site long_site = PO_SITE_INIT(NULL, __FILE__, __LINE__);
  long_site.name = long_name;
  po_zone_begin(&null_site);
  po_zone_end();
  po_zone_begin(&empty_site);
  po_zone_end();
  po_zone_begin(&long_site);
  po_zone_end();
  po_profile_call(NULL, double_it, NULL);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_true(c.null_names >= 2);
  assert_int_equal(c.truncated_names, 1);
  po_report *rep = support_profile_report();
  char truncated[256];
  memset(truncated, 'x', 255);
  truncated[255] = '\0';
  assert_non_null(support_find_function(po_report_json(rep), truncated));
  assert_non_null(support_find_function(po_report_json(rep), "(null)"));
  po_report_destroy(rep);
}

static void test_end_without_begin_is_ignored_and_counted(void **state) {
  (void)state;
  po_zone_end();
  po_zone_end();
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.unmatched_ends, 2);
  counted_leaf(); /* still works afterwards */
}

static void test_runtime_disable_records_nothing(void **state) {
  (void)state;
  po_profile_set_enabled(0);
  for (int i = 0; i < 50; i++) {
    PO_SCOPE("while_disabled");
  }
  po_profile_set_enabled(1);
  /* a zone begun while enabled and ended while disabled still closes cleanly */
  {
    PO_SCOPE("toggled_inside");
    po_profile_set_enabled(0);
  }
  po_profile_set_enabled(1);
  po_report *rep = support_profile_report();
  assert_null(support_find_function(po_report_json(rep), "while_disabled"));
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "toggled_inside"), "calls"), 1);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.unmatched_ends, 0);
  po_report_destroy(rep);
}

static void deep(int n) {
  PO_PROFILE_FUNCTION();
  if (n > 0) deep(n - 1);
}

static void test_depth_overflow_is_counted(void **state) {
  (void)state;
  deep(300);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_true(c.depth_overflows > 0);
  assert_int_equal(c.unmatched_ends, 0);
  po_report *rep = support_profile_report();
  assert_int_equal((long)support_num(support_find_function(po_report_json(rep), "deep"), "calls") +
                       (long)c.depth_overflows,
                   301);
  po_report_destroy(rep);
}

static void test_loop_over_same_zones_does_not_grow_memory(void **state) {
  (void)state;
  for (int i = 0; i < 1000; i++) caller_two();
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < 100000; i++) caller_two();
  struct mallinfo2 after = mallinfo2();
  assert_int_equal(before.uordblks, after.uordblks);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_exact_call_counts, reset),
      cmocka_unit_test_setup(test_self_time_excludes_children, reset),
      cmocka_unit_test_setup(test_zone_block_and_begin_end, reset),
      cmocka_unit_test_setup(test_profile_call_times_callback, reset),
      cmocka_unit_test_setup(test_recursion_does_not_double_count, reset),
      cmocka_unit_test_setup(test_call_tree_tells_callers_apart, reset),
      cmocka_unit_test_setup(test_eight_threads_exact_counts, reset),
      cmocka_unit_test_setup(test_thread_exit_closes_open_zone, reset),
      cmocka_unit_test(test_percentiles_match_sorted_reference),
      cmocka_unit_test(test_histogram_buckets_within_one_percent),
      cmocka_unit_test_setup(test_timeline_ring_counts_drops, reset),
      cmocka_unit_test_setup(test_timeline_events_in_trace, reset),
      cmocka_unit_test_setup(test_json_report_has_every_documented_field, reset),
      cmocka_unit_test_setup(test_failed_save_keeps_previous_file, reset),
      cmocka_unit_test_setup(test_text_report_marks_only_findings, reset),
      cmocka_unit_test_setup(test_bad_names_are_counted, reset),
      cmocka_unit_test_setup(test_end_without_begin_is_ignored_and_counted, reset),
      cmocka_unit_test_setup(test_runtime_disable_records_nothing, reset),
      cmocka_unit_test_setup(test_depth_overflow_is_counted, reset),
      cmocka_unit_test_setup(test_loop_over_same_zones_does_not_grow_memory, reset),
  };
  return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
