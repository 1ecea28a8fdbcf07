/* The exports read from the report model: Chrome trace, folded stacks, Prometheus text, the
 * diff with its gates, and the merge of ranks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "report/report_build.h"
#include "support/report_fixture.h"
#include "support/support.h"

#define MIB 1048576.0

static po_report *wrap(cJSON *root) {
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  po_report *rep;
  char err[128];
  assert_int_equal(po__report_parse(text, strlen(text), "t", &rep, err, sizeof err), 0);
  free(text);
  return rep;
}

/* What a writer produced, as a string (freed by the caller). */
typedef int (*writer)(const po_report *, FILE *);
static char *written(const po_report *rep, writer w) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(w(rep, f), 0);
  fclose(f);
  return buf;
}

static int write_folded_time(const po_report *r, FILE *f) {
  return po_report_write_folded(r, f, PO_FOLDED_TIME);
}
static int write_folded_heap(const po_report *r, FILE *f) {
  return po_report_write_folded(r, f, PO_FOLDED_HEAP_BYTES);
}

static void add_zone(cJSON *events, double tid, const char *name, double start, double dur) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddNumberToObject(e, "tid", tid);
  cJSON_AddStringToObject(e, "name", name);
  cJSON_AddNumberToObject(e, "start_seconds", start);
  cJSON_AddNumberToObject(e, "dur_seconds", dur);
  cJSON_AddNumberToObject(e, "depth", 0);
  cJSON_AddItemToArray(events, e);
}

/* The fixture (10 min at 1 Hz, 1 GPU) with a few zones on two threads. */
static cJSON *fixture_with_zones(void) {
  cJSON *r = fixture_report(600, 1, 1, 200);
  cJSON *tl = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "profile"), "timeline");
  cJSON *ev = cJSON_GetObjectItem(tl, "events");
  add_zone(ev, 11, "train \"step\"", 1.0, 0.5);
  add_zone(ev, 12, "load", 1.25, 0.000123456);
  add_zone(ev, 11, "eval", 2.0, 0.25);
  return r;
}

/* ---- Chrome trace -------------------------------------------------------------------------- */

static void test_trace_parses_with_zones_counters_phases_and_instants(void **state) {
  (void)state;
  cJSON *src = fixture_with_zones();
  int nphases =
      cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(src, "resources"), "phases"));
  po_report *rep = wrap(src);
  char *text = written(rep, po_report_write_trace);
  cJSON *t = cJSON_Parse(text);
  assert_non_null(t); /* valid JSON */
  const cJSON *events = cJSON_GetObjectItem(t, "traceEvents"), *e;
  assert_true(cJSON_IsArray(events));
  int zones = 0, counters = 0, begins = 0, ends = 0, instants = 0, rss = 0;
  cJSON_ArrayForEach(e, events) {
    const char *ph = cJSON_GetStringValue(cJSON_GetObjectItem(e, "ph"));
    assert_non_null(ph);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(e, "pid")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(e, "tid")));
    if (strcmp(ph, "M") != 0) assert_true(cJSON_IsNumber(cJSON_GetObjectItem(e, "ts")));
    if (!strcmp(ph, "X")) {
      zones++;
      assert_true(cJSON_IsNumber(cJSON_GetObjectItem(e, "dur")));
    }
    if (!strcmp(ph, "C")) {
      counters++;
      const cJSON *args = cJSON_GetObjectItem(e, "args");
      assert_true(cJSON_IsNumber(args->child)); /* one numeric argument */
      rss += !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), "process_rss_bytes");
    }
    begins += !strcmp(ph, "b");
    ends += !strcmp(ph, "e");
    instants += !strcmp(ph, "i");
  }
  assert_int_equal(zones, 3);
  assert_int_equal(rss, 600); /* one counter per sample of the series */
  assert_true(counters >= 600 * 8);
  assert_int_equal(begins, nphases);
  assert_int_equal(ends, nphases);
  assert_true(instants > 0); /* threshold firings, cleanups */
  /* a zone: microseconds with the name escaped */
  assert_non_null(strstr(text, "\"name\":\"train \\\"step\\\"\""));
  assert_non_null(strstr(text, "\"dur\":123.456,"));
  cJSON_Delete(t);
  free(text);
  po_report_destroy(rep);
}

static void test_trace_write_errors_are_reported(void **state) {
  (void)state;
  po_report *rep = wrap(fixture_with_zones());
  FILE *full = fopen("/dev/full", "w");
  assert_non_null(full);
  assert_int_equal(po_report_write_trace(rep, full), PO_EIO);
  fclose(full);
  char err[256];
  assert_int_equal(po_report_save_trace(rep, "/nonexistent-dir/t.json", err, sizeof err) < 0, 1);
  assert_non_null(strstr(err, "/nonexistent-dir/t.json"));
  po_report_destroy(rep);
}

/* ---- folded stacks ------------------------------------------------------------------------- */

static cJSON *node(cJSON *tree, int id, int parent, const char *name, double self) {
  cJSON *n = cJSON_CreateObject();
  cJSON_AddNumberToObject(n, "id", id);
  cJSON_AddNumberToObject(n, "parent", parent);
  cJSON_AddStringToObject(n, "name", name);
  cJSON_AddNumberToObject(n, "calls", 1);
  cJSON_AddNumberToObject(n, "total_seconds", self);
  cJSON_AddNumberToObject(n, "self_seconds", self);
  cJSON_AddItemToArray(tree, n);
  return n;
}

static cJSON *tree_report(void) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "perfopt_version", "0.1.0");
  cJSON *tree = cJSON_AddArrayToObject(cJSON_AddObjectToObject(r, "profile"), "call_tree");
  node(tree, 0, -1, "main", 0.001);
  node(tree, 1, 0, "train", 0.5);
  node(tree, 2, 1, "forward;pass", 1.25); /* the separator inside a name */
  node(tree, 3, 1, "backward", 0);        /* no self time: no line */
  node(tree, 4, 0, "eval", 0.000002);
  node(tree, 5, -1, "loader thread", 0.75);
  return r;
}

static void test_folded_time_has_one_line_per_context_with_self_time(void **state) {
  (void)state;
  po_report *rep = wrap(tree_report());
  char *text = written(rep, write_folded_time);
  assert_string_equal(text,
                      "main 1000\n"
                      "main;train 500000\n"
                      "main;train;forward:pass 1250000\n"
                      "main;eval 2\n"
                      "loader thread 750000\n");
  free(text);
  /* no heap section: nothing to fold */
  FILE *f = fopen("/dev/null", "w");
  assert_int_equal(po_report_write_folded(rep, f, PO_FOLDED_HEAP_BYTES), PO_ENOENT);
  assert_int_equal(po_report_write_folded(rep, f, (po_folded_value)7), PO_EINVAL);
  fclose(f);
  po_report_destroy(rep);
}

static void test_folded_heap_reads_the_allocation_tree(void **state) {
  (void)state;
  cJSON *r = tree_report();
  cJSON *heap = cJSON_AddObjectToObject(cJSON_AddObjectToObject(r, "memory"), "heap");
  cJSON *tree = cJSON_AddArrayToObject(heap, "call_tree"); /* creation order, not depth-first */
  node(tree, 0, -1, "main", 0);
  node(tree, 1, 0, "load", 0);
  node(tree, 2, 0, "forward", 0);
  node(tree, 3, 1, "read;file", 0);
  node(tree, 4, 2, "alloc_tensor", 0);
  cJSON_AddNumberToObject(cJSON_GetArrayItem(tree, 3), "self_bytes", 4096);
  cJSON_AddNumberToObject(cJSON_GetArrayItem(tree, 4), "self_bytes", 1 << 20);
  po_report *rep = wrap(r);
  char *text = written(rep, write_folded_heap);
  assert_string_equal(text, "main;load;read:file 4096\nmain;forward;alloc_tensor 1048576\n");
  free(text);
  po_report_destroy(rep);
  /* a cycle in a hostile file is skipped, not followed forever */
  r = tree_report();
  tree = cJSON_AddArrayToObject(
      cJSON_AddObjectToObject(cJSON_AddObjectToObject(r, "memory"), "heap"), "call_tree");
  node(tree, 0, 1, "a", 0);
  node(tree, 1, 0, "b", 0);
  cJSON_AddNumberToObject(cJSON_GetArrayItem(tree, 1), "self_bytes", 8);
  rep = wrap(r);
  FILE *f = fopen("/dev/null", "w");
  assert_int_equal(po_report_write_folded(rep, f, PO_FOLDED_HEAP_BYTES), PO_ENOENT);
  fclose(f);
  po_report_destroy(rep);
}

/* ---- Prometheus ---------------------------------------------------------------------------- */

/* Every sample's family has HELP and TYPE before it, and a family's samples are together. */
static void check_exposition(const char *text) {
  char seen[256][96];
  size_t nseen = 0;
  char current[96] = "";
  const char *line = text;
  while (*line) {
    const char *eol = strchr(line, '\n');
    assert_non_null(eol); /* every line ends */
    if (!strncmp(line, "# TYPE ", 7)) {
      char name[96];
      assert_int_equal(sscanf(line + 7, "%95s", name), 1);
      for (size_t i = 0; i < nseen; i++) assert_string_not_equal(seen[i], name); /* once */
      assert_true(nseen < 256);
      strcpy(seen[nseen++], name);
      strcpy(current, name);
    } else if (line[0] != '#') {
      size_t n = strcspn(line, "{ ");
      char name[96];
      assert_true(n < sizeof name);
      memcpy(name, line, n);
      name[n] = '\0';
      size_t cl = strlen(current);
      /* a sample of the current family (summaries add _sum and _count) */
      assert_true(!strcmp(name, current) ||
                  (!strncmp(name, current, cl) &&
                   (!strcmp(name + cl, "_sum") || !strcmp(name + cl, "_count"))));
      assert_null(strstr(line, " -1\n")); /* "not measured" is left out, not written */
    }
    line = eol + 1;
  }
}

static void test_prom_exposition_is_well_formed_with_node_names(void **state) {
  (void)state;
  cJSON *r = fixture_report(600, 1, 2, 200);
  cJSON *f =
      cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "profile"), "functions"), 0);
  cJSON_ReplaceItemInObject(f, "name", cJSON_CreateString("odd \"name\"\\with\nnewline"));
  po_report *rep = wrap(r);
  char *text = written(rep, po_report_write_prom);
  check_exposition(text);
  assert_non_null(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
  assert_non_null(strstr(text, "# TYPE node_memory_MemTotal_bytes gauge\n"));
  assert_non_null(strstr(text, "# TYPE perfopt_function_calls_total counter\n"));
  assert_non_null(strstr(text, "perfopt_gpu_memory_used_bytes{gpu=\"1\"} "));
  assert_non_null(strstr(text, "{function=\"odd \\\"name\\\"\\\\with\\nnewline\"}"));
  assert_non_null(strstr(text, "perfopt_suggestions{severity=\"warning\"} 1\n"));
  size_t len = 0;
  char *s = po_report_to_prom(rep, &len);
  assert_non_null(s);
  assert_int_equal(len, strlen(text));
  assert_string_equal(s, text);
  po_free(s);
  free(text);
  po_report_destroy(rep);
}

static void test_prom_of_a_sysinfo_report_uses_node_exporter_names(void **state) {
  (void)state;
  cJSON *r = cJSON_Parse(
      "{\"perfopt_version\":\"0.1.0\",\"host\":{\"memory_total_bytes\":1000},"
      "\"system\":{\"memory_available_bytes\":600,\"swap_total_bytes\":100,"
      "\"swap_used_bytes\":40,\"load_average\":[0.5,0.25,0.125],\"memory_limit_bytes\":1000,"
      "\"memory_limit_source\":\"system\",\"effective_available_bytes\":600,"
      "\"disks\":[{\"name\":\"vda\",\"read_bytes\":4096,\"write_bytes\":8192}]},"
      "\"thresholds\":[{\"metric\":\"cpu\",\"value\":0.8}]}");
  po_report *rep = wrap(r);
  char *text = written(rep, po_report_write_prom);
  check_exposition(text);
  assert_non_null(strstr(text, "\nnode_memory_MemAvailable_bytes 600\n"));
  assert_non_null(strstr(text, "\nnode_memory_SwapFree_bytes 60\n"));
  assert_non_null(strstr(text, "\nnode_load5 0.25\n"));
  assert_non_null(strstr(text, "\nnode_disk_read_bytes_total{device=\"vda\"} 4096\n"));
  assert_non_null(strstr(text, "\nperfopt_threshold_ratio{metric=\"cpu\"} 0.8\n"));
  assert_null(strstr(text, "process_resident_memory_bytes")); /* not in the report: absent */
  free(text);
  po_report_destroy(rep);
}

/* The autopilot's forecast and grade: time to the limit when rising (+Inf when flat), the grade
 * in force as a state set, per GPU with a label; nothing for an unknown trend or grade. */
static void test_prom_exports_the_memory_forecast_and_grade(void **state) {
  (void)state;
  cJSON *r = cJSON_Parse(
      "{\"perfopt_version\":\"0.1.0\",\"memory\":{\"rss_bytes\":100,\"forecast\":{"
      "\"trend\":\"rising\",\"time_to_limit_seconds\":42.5,\"slope_bytes_per_second\":-3,"
      "\"grade\":\"aggressive\",\"pressure_some_ratio\":0.25,\"pressure_full_ratio\":-1,"
      "\"gpus\":[{\"device\":1,\"trend\":\"flat\",\"time_to_limit_seconds\":-1,\"grade\":\"warn\"},"
      "{\"device\":1,\"trend\":\"rising\",\"time_to_limit_seconds\":5,\"grade\":\"none\"},"
      "{\"device\":2,\"trend\":\"unknown\",\"grade\":\"bogus\"}]},"
      "\"autopilot\":{\"episodes\":2,\"actions\":[{},{},{}],\"dropped_actions\":4}}}");
  po_report *rep = wrap(r);
  char *text = written(rep, po_report_write_prom);
  check_exposition(text);
  assert_non_null(strstr(text, "\nperfopt_memory_forecast_time_to_limit_seconds 42.5\n"));
  assert_non_null(strstr(text, "\nperfopt_memory_forecast_slope_bytes_per_second -3\n"));
  assert_non_null(strstr(text, "\nperfopt_memory_autopilot_grade{grade=\"aggressive\"} 1\n"));
  assert_non_null(strstr(text, "\nperfopt_memory_autopilot_grade{grade=\"none\"} 0\n"));
  assert_non_null(strstr(text, "\nperfopt_memory_pressure_some_ratio 0.25\n"));
  assert_null(strstr(text, "perfopt_memory_pressure_full_ratio")); /* -1: no PSI */
  assert_non_null(
      strstr(text, "\nperfopt_gpu_memory_forecast_time_to_limit_seconds{gpu=\"1\"} +Inf\n"));
  assert_non_null(
      strstr(text, "\nperfopt_gpu_memory_autopilot_grade{gpu=\"1\",grade=\"warn\"} 1\n"));
  assert_null(strstr(text, "{gpu=\"1\"} 5\n")); /* the repeated device is skipped */
  assert_null(strstr(text, "{gpu=\"2\""));      /* unknown trend and grade: nothing */
  assert_non_null(strstr(text, "\nperfopt_memory_autopilot_episodes_total 2\n"));
  assert_non_null(strstr(text, "\nperfopt_memory_autopilot_actions_total 7\n"));
  free(text);
  po_report_destroy(rep);
  /* flat: +Inf; a grade outside the five: no grade family */
  rep =
      wrap(cJSON_Parse("{\"perfopt_version\":\"0.1.0\",\"memory\":{\"forecast\":{"
                       "\"trend\":\"flat\",\"time_to_limit_seconds\":-1,\"grade\":7}}}"));
  text = written(rep, po_report_write_prom);
  check_exposition(text);
  assert_non_null(strstr(text, "\nperfopt_memory_forecast_time_to_limit_seconds +Inf\n"));
  assert_null(strstr(text, "perfopt_memory_autopilot_grade"));
  free(text);
  po_report_destroy(rep);
}

/* ---- diff ---------------------------------------------------------------------------------- */

static cJSON *run_report(double wall, double peak) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "perfopt_version", "0.1.0");
  cJSON_AddNumberToObject(cJSON_AddObjectToObject(r, "run"), "wall_seconds", wall);
  cJSON *p = cJSON_AddObjectToObject(r, "profile");
  cJSON_AddNumberToObject(p, "profiled_seconds", wall);
  cJSON_AddArrayToObject(p, "functions");
  cJSON *m = cJSON_AddObjectToObject(r, "memory");
  cJSON_AddNumberToObject(m, "peak_rss_bytes", peak);
  cJSON_AddNumberToObject(m, "rss_bytes", peak / 2);
  cJSON_AddArrayToObject(r, "suggestions");
  return r;
}

static void fn(cJSON *r, const char *name, double self, double p95, double calls) {
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, "name", name);
  cJSON_AddNumberToObject(f, "calls", calls);
  cJSON_AddNumberToObject(f, "total_seconds", self);
  cJSON_AddNumberToObject(f, "self_seconds", self);
  cJSON_AddNumberToObject(f, "avg_seconds", self / calls);
  cJSON_AddNumberToObject(f, "p95_seconds", p95);
  cJSON_AddItemToArray(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "profile"), "functions"), f);
}

static void suggestion(cJSON *r, const char *id, const char *severity) {
  cJSON *s = cJSON_CreateObject();
  cJSON_AddStringToObject(s, "id", id);
  cJSON_AddStringToObject(s, "severity", severity);
  cJSON_AddStringToObject(s, "title", id);
  cJSON_AddItemToArray(cJSON_GetObjectItem(r, "suggestions"), s);
}

static const cJSON *diff_fn(const po_report *d, const char *name) {
  const cJSON *f;
  cJSON_ArrayForEach(
      f, cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(d), "diff"), "functions")) {
    if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f, "name")), name)) return f;
  }
  return NULL;
}

static const char *status(const po_report *d, const char *name) {
  return cJSON_GetStringValue(cJSON_GetObjectItem(diff_fn(d, name), "status"));
}

static void make_pair(po_report **a, po_report **b) {
  cJSON *ra = run_report(100, 1000 * MIB), *rb = run_report(104, 1200 * MIB);
  fn(ra, "simulate", 50, 0.010, 5000);
  fn(rb, "simulate", 60, 0.010, 5000); /* +20% self */
  fn(ra, "load", 20, 0.100, 100);
  fn(rb, "load", 20, 0.080, 100); /* p95 -20% */
  fn(ra, "steady", 10, 0.002, 5000);
  fn(rb, "steady", 10.2, 0.002, 5000); /* +2%: noise */
  fn(ra, "tiny", 0.0001, 0.000001, 100);
  fn(rb, "tiny", 0.0005, 0.000005, 100); /* 5x but insignificant */
  fn(ra, "gone", 5, 0.01, 500);
  fn(rb, "fresh", 5, 0.01, 500);
  suggestion(ra, "cache-oversized", "info");
  suggestion(rb, "memory-near-limit", "warning");
  *a = wrap(ra);
  *b = wrap(rb);
}

static void test_diff_classifies_functions_and_suggestions(void **state) {
  (void)state;
  po_report *a, *b, *d;
  make_pair(&a, &b);
  assert_int_equal(po_report_diff(a, b, &d), 0);
  assert_string_equal(status(d, "simulate"), "slower");
  assert_string_equal(status(d, "load"), "faster");
  assert_string_equal(status(d, "steady"), "same");
  assert_string_equal(status(d, "tiny"), "same");
  assert_false(cJSON_IsTrue(cJSON_GetObjectItem(diff_fn(d, "tiny"), "significant")));
  assert_string_equal(status(d, "gone"), "vanished");
  assert_string_equal(status(d, "fresh"), "new");
  assert_float_equal(
      cJSON_GetNumberValue(cJSON_GetObjectItem(diff_fn(d, "simulate"), "self_change_ratio")), 0.2,
      1e-9);
  const cJSON *sg =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(d), "diff"), "suggestions");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sg, "new")), 1);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(sg, "vanished")), 1);
  char *buf = NULL;
  size_t len;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(po_report_write_diff_text(d, f), 0);
  fclose(f);
  assert_non_null(strstr(buf, "slower"));
  assert_non_null(strstr(buf, "simulate"));
  assert_non_null(strstr(buf, "+20.0%"));
  assert_non_null(strstr(buf, "+ [warning] memory-near-limit"));
  assert_null(strstr(buf, "steady"));
  free(buf);
  po_report_destroy(d);
  po_report_destroy(a);
  po_report_destroy(b);
}

static void test_diff_gates_hold_only_past_their_limit(void **state) {
  (void)state;
  po_report *a, *b, *d;
  make_pair(&a, &b);
  assert_int_equal(po_report_diff(a, b, &d), 0);
  char why[256];
  assert_int_equal(po_diff_check(d, "slower:10%", why, sizeof why), 1);
  assert_non_null(strstr(why, "simulate"));
  assert_int_equal(po_diff_check(d, "slower:25%", why, sizeof why), 0);
  assert_int_equal(po_diff_check(d, "slower:25", why, sizeof why), 0);
  assert_int_equal(po_diff_check(d, "peak:10%", why, sizeof why), 1); /* +20% */
  assert_int_equal(po_diff_check(d, "peak:30%", why, sizeof why), 0);
  assert_int_equal(po_diff_check(d, "wall:5%", why, sizeof why), 0); /* +4% */
  assert_int_equal(po_diff_check(d, "wall:3%", why, sizeof why), 1);
  assert_int_equal(po_diff_check(d, "rss:10%", why, sizeof why), 1);
  assert_int_equal(po_diff_check(d, "suggestions:warning", why, sizeof why), 1);
  assert_int_equal(po_diff_check(d, "suggestions:critical", why, sizeof why), 0);
  static const char *const bad[] = {"slower",   "slower:",          "slower:x%", "slower:-5%",
                                    "fast:10%", "suggestions:loud", "",          "slower:10%%"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(po_diff_check(d, bad[i], why, sizeof why), PO_EINVAL);
    assert_non_null(strstr(why, "slower:PCT"));
  }
  assert_int_equal(po_diff_check(d, NULL, NULL, 0), PO_EINVAL);
  po_report_destroy(d);
  po_report_destroy(a);
  po_report_destroy(b);
}

/* ---- merge --------------------------------------------------------------------------------- */

static cJSON *rank_report(int rank, double sim_self, double peak) {
  cJSON *r = run_report(100 + rank, peak);
  cJSON *host = cJSON_AddObjectToObject(r, "host");
  cJSON_AddStringToObject(host, "hostname", rank ? "node1" : "node0");
  cJSON_AddNumberToObject(cJSON_GetObjectItem(r, "run"), "start_unix_seconds", 1000 + rank);
  cJSON_AddNumberToObject(cJSON_GetObjectItem(r, "memory"), "limit_bytes", 64 * 1024 * MIB);
  fn(r, "simulate", sim_self, 0.01, 1000);
  fn(r, rank ? "only_rank1" : "only_rank0", 1, 0.01, 10);
  cJSON *tree = cJSON_AddArrayToObject(cJSON_GetObjectItem(r, "profile"), "call_tree");
  node(tree, 0, -1, "main", 1);
  node(tree, 1, 0, "simulate", sim_self);
  node(tree, 2, 0, rank ? "only_rank1" : "only_rank0", 1);
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "name", "samples");
  cJSON_AddNumberToObject(c, "hits", 10);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(cJSON_AddObjectToObject(r, "cache"), "caches"), c);
  suggestion(r, rank == 1 ? "io-bound" : "hot-function", "warning");
  return r;
}

static const cJSON *merged_fn(const cJSON *root, const char *name) {
  const cJSON *f;
  cJSON_ArrayForEach(f, cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "functions")) {
    if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(f, "name")), name)) return f;
  }
  return NULL;
}

static void test_merge_sums_functions_and_names_the_slowest_rank(void **state) {
  (void)state;
  po_report *reps[3] = {wrap(rank_report(0, 20, 3000 * MIB)), wrap(rank_report(1, 50, 2000 * MIB)),
                        wrap(rank_report(2, 30, 9000 * MIB))};
  po_report *m;
  assert_int_equal(po_report_merge((const po_report *const *)reps, 3, &m), 0);
  const cJSON *root = po_report_json(m);
  const cJSON *sim = merged_fn(root, "simulate");
  assert_non_null(sim);
  assert_float_equal(support_num(sim, "calls"), 3000, 0);
  assert_float_equal(support_num(sim, "self_seconds"), 100, 1e-9);
  assert_float_equal(support_num(sim, "slowest_rank"), 1, 0);
  assert_float_equal(support_num(sim, "slowest_rank_self_seconds"), 50, 0);
  const cJSON *per = cJSON_GetObjectItem(sim, "rank_self_seconds");
  assert_int_equal(cJSON_GetArraySize(per), 3);
  /* a function only one rank ran: null elsewhere */
  const cJSON *only = cJSON_GetObjectItem(merged_fn(root, "only_rank0"), "rank_self_seconds");
  assert_true(cJSON_IsNull(cJSON_GetArrayItem(only, 1)));
  /* the call tree merged by calling context: main, simulate, only_rank0, only_rank1 */
  const cJSON *tree = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "call_tree");
  assert_int_equal(cJSON_GetArraySize(tree), 4);
  assert_float_equal(support_num(cJSON_GetArrayItem(tree, 1), "self_seconds"), 100, 1e-9);
  assert_float_equal(support_num(cJSON_GetArrayItem(tree, 1), "parent"), 0, 0);
  /* the memory-heaviest rank's memory, the ranks side by side */
  assert_float_equal(support_num(cJSON_GetObjectItem(root, "memory"), "rank"), 2, 0);
  assert_float_equal(support_num(cJSON_GetObjectItem(root, "merge"), "memory_heaviest_rank"), 2, 0);
  assert_float_equal(support_num(cJSON_GetObjectItem(root, "merge"), "slowest_rank"), 2, 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "ranks")), 3);
  const cJSON *caches = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "cache"), "caches");
  assert_int_equal(cJSON_GetArraySize(caches), 3);
  assert_string_equal(
      cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(caches, 1), "name")),
      "rank 1: samples");
  /* rank 1's own io-bound finding is kept with its rank; its profile findings are recomputed */
  int io = 0;
  const cJSON *s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItem(root, "suggestions")) {
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(s, "id"));
    if (!strcmp(id, "io-bound")) {
      io++;
      assert_float_equal(support_num(s, "rank"), 1, 0);
      assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(s, "title")), "rank 1: "));
    }
  }
  assert_int_equal(io, 1);
  /* the ranks' own findings are ordered with the rest: critical, warning, info */
  int last = 0;
  cJSON_ArrayForEach(s, cJSON_GetObjectItem(root, "suggestions")) {
    const char *sv = cJSON_GetStringValue(cJSON_GetObjectItem(s, "severity"));
    int rank = !strcmp(sv, "critical") ? 0 : !strcmp(sv, "warning") ? 1 : 2;
    assert_true(rank >= last);
    last = rank;
  }
  assert_int_equal(last, 2); /* positive control: an info one after the warning */
  /* every output still renders the merged report */
  char *html = NULL;
  size_t len;
  FILE *f = open_memstream(&html, &len);
  assert_int_equal(po_report_write_html(m, f), 0);
  fclose(f);
  assert_non_null(strstr(html, "id=\"ranks\""));
  free(html);
  po_report_destroy(m);
  for (int i = 0; i < 3; i++) po_report_destroy(reps[i]);
  assert_int_equal(po_report_merge(NULL, 0, &m), PO_EINVAL);
}

/* The ranks' call trees merge with the run's tree merger (report_merge_tree.c): by path, a node
 * whose parent is missing is left out (not made a root), a node still open at exit stays marked,
 * and the ranks' own truncation counts add up. */
static void test_merge_of_ranks_merges_call_trees_by_path(void **state) {
  (void)state;
  cJSON *a = rank_report(0, 20, MIB), *b = rank_report(1, 30, MIB);
  cJSON *tree = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "profile"), "call_tree");
  node(tree, 7, 99, "orphan", 5); /* parent 99 is nowhere */
  cJSON_AddTrueToObject(cJSON_GetArrayItem(tree, 1), "open_at_exit");
  cJSON_AddNumberToObject(cJSON_GetObjectItem(b, "profile"), "call_tree_truncated", 3);
  po_report *reps[2] = {wrap(a), wrap(b)};
  po_report *m;
  assert_int_equal(po_report_merge((const po_report *const *)reps, 2, &m), 0);
  const cJSON *prof = cJSON_GetObjectItem(po_report_json(m), "profile");
  const cJSON *t = cJSON_GetObjectItem(prof, "call_tree"), *n;
  /* positive control: main, simulate, only_rank0, only_rank1 are there */
  assert_int_equal(cJSON_GetArraySize(t), 4);
  int roots = 0;
  cJSON_ArrayForEach(n, t) {
    assert_string_not_equal(cJSON_GetStringValue(cJSON_GetObjectItem(n, "name")), "orphan");
    roots += support_num(n, "parent") < 0;
  }
  assert_int_equal(roots, 1);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(t, 1), "open_at_exit")));
  assert_float_equal(support_num(prof, "call_tree_truncated"), 3, 0);
  po_report_destroy(m);
  for (int i = 0; i < 2; i++) po_report_destroy(reps[i]);
}

static void *hook_malloc(size_t n) {
  return po__test_malloc(n);
}

/* Each constructor, failing at every allocation in turn: an error, never a crash or a leak. */
static void test_diff_and_merge_survive_allocation_failures(void **state) {
  (void)state;
  po_report *reps[2] = {wrap(rank_report(0, 20, 3000 * MIB)), wrap(rank_report(1, 50, 2000 * MIB))};
  cJSON_Hooks hooks = {hook_malloc, free};
  cJSON_InitHooks(&hooks);
  for (int which = 0; which < 2; which++) {
    int failures = 0;
    for (uint64_t n = 1; n < 20000; n++) {
      po_report *out = NULL;
      po__fault_fail_at(n, 0);
      int rc = which ? po_report_merge((const po_report *const *)reps, 2, &out)
                     : po_report_diff(reps[0], reps[1], &out);
      int injected = (int)po__fault_injected();
      po__fault_fail_at(0, 0);
      if (!injected) {
        assert_int_equal(rc, 0);
        po_report_destroy(out);
        break;
      }
      if (rc != PO_ENOMEM)
        fail_msg("%s: allocation %llu failed, rc %d", which ? "merge" : "diff",
                 (unsigned long long)n, rc);
      assert_null(out);
      failures++;
    }
    assert_true(failures > 10);
  }
  cJSON_InitHooks(NULL);
  for (int i = 0; i < 2; i++) po_report_destroy(reps[i]);
}

/* The exports' buffer under allocation failures: NULL or an error, never a crash or a leak. */
static void test_exports_survive_allocation_failures(void **state) {
  (void)state;
  po_report *rep = wrap(fixture_with_zones());
  char path[300];
  snprintf(path, sizeof path, "%s/fault.trace.json", support_tmpdir());
  int failures = 0;
  for (uint64_t n = 1; n < 1000; n++) {
    po__fault_fail_at(n, 0);
    size_t len = 0;
    char *s = po_report_to_prom(rep, &len);
    char err[256];
    int rc = po_report_save_trace(rep, path, err, sizeof err);
    int injected = (int)po__fault_injected();
    po__fault_fail_at(0, 0);
    if (!injected) {
      assert_non_null(s);
      assert_int_equal(rc, 0);
      po_free(s);
      break;
    }
    assert_true(s == NULL || rc == PO_ENOMEM);
    if (rc) assert_non_null(strstr(err, "out of memory"));
    po_free(s);
    failures++;
  }
  assert_true(failures > 0);
  po_report_destroy(rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trace_parses_with_zones_counters_phases_and_instants),
      cmocka_unit_test(test_trace_write_errors_are_reported),
      cmocka_unit_test(test_folded_time_has_one_line_per_context_with_self_time),
      cmocka_unit_test(test_folded_heap_reads_the_allocation_tree),
      cmocka_unit_test(test_prom_exposition_is_well_formed_with_node_names),
      cmocka_unit_test(test_prom_of_a_sysinfo_report_uses_node_exporter_names),
      cmocka_unit_test(test_prom_exports_the_memory_forecast_and_grade),
      cmocka_unit_test(test_diff_classifies_functions_and_suggestions),
      cmocka_unit_test(test_diff_gates_hold_only_past_their_limit),
      cmocka_unit_test(test_merge_sums_functions_and_names_the_slowest_rank),
      cmocka_unit_test(test_merge_of_ranks_merges_call_trees_by_path),
      cmocka_unit_test(test_diff_and_merge_survive_allocation_failures),
      cmocka_unit_test(test_exports_survive_allocation_failures),
  };
  return cmocka_run_group_tests_name("report_export", tests, NULL, NULL);
}
