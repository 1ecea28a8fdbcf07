/* The advisor: every rule fires on a crafted report and stays silent on one just short of it; a
 * healthy run gets no suggestion; the text table's marks come from the findings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "report/advisor.h"
#include "report/report_build.h"
#include "support/support.h"

#define MIB 1048576.0
#define GIB 1073741824.0

/* ---- crafting reports ---------------------------------------------------------------------- */

/* A report of a healthy 10-minute run: a balanced profile, memory at 40% of 16 GiB, no GPU,
 * no cache, no firings, monitoring within budget. */
static cJSON *healthy(void) {
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "perfopt_version", "0.1.0");
  cJSON *run = cJSON_AddObjectToObject(r, "run");
  cJSON_AddNumberToObject(run, "pid", 4242);
  cJSON_AddNumberToObject(run, "wall_seconds", 600);
  cJSON *cfg = cJSON_AddObjectToObject(run, "config");
  cJSON_AddNumberToObject(cfg, "MONITOR_INTERVAL_MS", 1000);
  cJSON_AddNumberToObject(cfg, "MONITOR_CPU_BUDGET", 0.005);
  cJSON_AddNumberToObject(cfg, "THRESHOLD_COOLDOWN_MS", 5000);
  cJSON_AddNumberToObject(cfg, "THRESHOLD_HYSTERESIS", 0.05);
  cJSON_AddFalseToObject(cfg, "LIMIT_MONITOR_OVERHEAD");
  cJSON *host = cJSON_AddObjectToObject(r, "host");
  cJSON_AddNumberToObject(host, "cores_allowed", 8);
  cJSON *prof = cJSON_AddObjectToObject(r, "profile");
  cJSON_AddNumberToObject(prof, "wall_seconds", 600);
  cJSON_AddNumberToObject(prof, "profiled_seconds", 600);
  cJSON_AddArrayToObject(prof, "functions");
  cJSON *mem = cJSON_AddObjectToObject(r, "memory");
  cJSON_AddNumberToObject(mem, "rss_bytes", 6 * GIB);
  cJSON_AddNumberToObject(mem, "peak_rss_bytes", 6.4 * GIB);
  cJSON_AddNumberToObject(mem, "limit_bytes", 16 * GIB);
  cJSON_AddStringToObject(mem, "limit_source", "cgroup");
  cJSON_AddArrayToObject(mem, "cleanups");
  cJSON *res = cJSON_AddObjectToObject(r, "resources");
  cJSON_AddNumberToObject(res, "interval_seconds", 1);
  cJSON_AddNumberToObject(res, "effective_interval_seconds", 1);
  cJSON_AddNumberToObject(res, "sample_count", 600);
  cJSON_AddNumberToObject(res, "overhead_core_ratio", 0.0003);
  cJSON_AddArrayToObject(res, "series");
  cJSON_AddArrayToObject(res, "events");
  cJSON_AddArrayToObject(res, "phases");
  cJSON *gpu = cJSON_AddObjectToObject(r, "gpu");
  cJSON_AddArrayToObject(gpu, "devices");
  cJSON_AddArrayToObject(cJSON_AddObjectToObject(r, "cache"), "caches");
  cJSON_AddArrayToObject(r, "suggestions");
  return r;
}

static cJSON *get(cJSON *o, const char *k) {
  return cJSON_GetObjectItemCaseSensitive(o, k);
}

static void add_fn(cJSON *r, const char *name, double calls, double total, double self, double p50,
                   double p99) {
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, "name", name);
  cJSON_AddNumberToObject(f, "calls", calls);
  cJSON_AddNumberToObject(f, "total_seconds", total);
  cJSON_AddNumberToObject(f, "self_seconds", self);
  cJSON_AddNumberToObject(f, "avg_seconds", total / calls);
  cJSON_AddNumberToObject(f, "p50_seconds", p50);
  cJSON_AddNumberToObject(f, "p95_seconds", p50 * 1.5);
  cJSON_AddNumberToObject(f, "p99_seconds", p99);
  cJSON_AddNumberToObject(f, "max_seconds", p99 * 2);
  cJSON_AddItemToArray(get(get(r, "profile"), "functions"), f);
}

/* A balanced profile: five functions, none above 20% of the time in its own code. */
static void balanced_profile(cJSON *r) {
  static const char *const names[] = {"load", "decode", "augment", "forward", "backward"};
  for (int i = 0; i < 5; i++) add_fn(r, names[i], 6000, 120, 118, 0.019, 0.03);
}

typedef double (*shape)(size_t i, size_t n);

/* A series of n one-second samples (min = max = last). */
static void add_series(cJSON *r, const char *name, const char *unit, size_t n, shape f) {
  cJSON *s = cJSON_CreateObject();
  cJSON_AddStringToObject(s, "name", name);
  cJSON_AddStringToObject(s, "unit", unit);
  cJSON *t = cJSON_AddArrayToObject(s, "t_seconds"), *mn = cJSON_AddArrayToObject(s, "min");
  cJSON *mx = cJSON_AddArrayToObject(s, "max"), *la = cJSON_AddArrayToObject(s, "last");
  for (size_t i = 0; i < n; i++) {
    double v = f(i, n);
    cJSON_AddItemToArray(t, cJSON_CreateNumber((double)i));
    cJSON_AddItemToArray(mn, cJSON_CreateNumber(v));
    cJSON_AddItemToArray(mx, cJSON_CreateNumber(v));
    cJSON_AddItemToArray(la, cJSON_CreateNumber(v));
  }
  cJSON_AddItemToArray(get(get(r, "resources"), "series"), s);
}

static void add_gpu(cJSON *r, double total, int with_pid) {
  cJSON *d = cJSON_CreateObject();
  cJSON_AddNumberToObject(d, "index", 0);
  cJSON_AddStringToObject(d, "name", "NVIDIA H100");
  cJSON_AddNumberToObject(d, "memory_total_bytes", total);
  if (with_pid) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "pid", 4242);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "processes"), p);
  }
  cJSON_AddItemToArray(get(get(r, "gpu"), "devices"), d);
}

static cJSON *add_cache(cJSON *r, const char *name, double budget, double bytes, double hits,
                        double misses) {
  cJSON *c = cJSON_CreateObject();
  cJSON_AddStringToObject(c, "name", name);
  cJSON_AddTrueToObject(c, "enabled");
  cJSON_AddNumberToObject(c, "budget_bytes", budget);
  cJSON_AddNumberToObject(c, "bytes", bytes);
  cJSON_AddNumberToObject(c, "entries", bytes / MIB);
  cJSON_AddNumberToObject(c, "hits", hits);
  cJSON_AddNumberToObject(c, "misses", misses);
  cJSON_AddNumberToObject(c, "evictions", misses > 100 ? misses - 100 : 0);
  cJSON_AddItemToArray(get(get(r, "cache"), "caches"), c);
  return c;
}

static void add_trace(cJSON *c, double insertions, double distinct, double mean_bytes) {
  cJSON_AddNumberToObject(c, "insertions", insertions);
  cJSON_AddNumberToObject(c, "inserted_bytes", insertions * mean_bytes);
  cJSON_AddNumberToObject(c, "distinct_keys_inserted", distinct);
}

static void add_phase(cJSON *r, const char *name, double start, double end) {
  cJSON *p = cJSON_CreateObject();
  cJSON_AddStringToObject(p, "name", name);
  cJSON_AddNumberToObject(p, "start_seconds", start);
  cJSON_AddNumberToObject(p, "end_seconds", end);
  cJSON_AddItemToArray(get(get(r, "resources"), "phases"), p);
}

static void add_event(cJSON *r, const char *metric, double t, double value, double threshold) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddNumberToObject(e, "t_seconds", t);
  cJSON_AddStringToObject(e, "metric", metric);
  cJSON_AddNumberToObject(e, "value", value);
  cJSON_AddNumberToObject(e, "threshold", threshold);
  cJSON_AddNumberToObject(e, "freed_bytes", 1024);
  cJSON_AddItemToArray(get(get(r, "resources"), "events"), e);
}

static void set_num(cJSON *o, const char *k, double v) {
  cJSON_DeleteItemFromObjectCaseSensitive(o, k);
  cJSON_AddNumberToObject(o, k, v);
}

/* Runs the advisor; returns the suggestion with that id (and target, when given), or NULL. */
static const cJSON *advise_find(cJSON *r, const char *id, const char *target) {
  assert_int_equal(po__advise(r), 0);
  const cJSON *s;
  cJSON_ArrayForEach(s, get(r, "suggestions")) {
    const char *sid = cJSON_GetStringValue(cJSON_GetObjectItem(s, "id"));
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(s, "target"));
    if (sid && !strcmp(sid, id) && (!target || (st && !strcmp(st, target)))) return s;
  }
  return NULL;
}

static int count(cJSON *r) {
  return cJSON_GetArraySize(get(r, "suggestions"));
}

static const char *sev(const cJSON *s) {
  return cJSON_GetStringValue(cJSON_GetObjectItem(s, "severity"));
}

/* The evidence entry named `name` (fails the test when absent). */
static double evidence(const cJSON *s, const char *name, const char *unit) {
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(s, "evidence")) {
    if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), name) == 0) {
      assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "unit")), unit);
      return cJSON_GetNumberValue(cJSON_GetObjectItem(e, "value"));
    }
  }
  fail_msg("no evidence '%s'", name);
  return 0;
}

static const char *action(const cJSON *s) {
  return cJSON_GetStringValue(cJSON_GetObjectItem(s, "action"));
}

/* ---- a healthy run ------------------------------------------------------------------------- */

static double flat_cpu(size_t i, size_t n) {
  (void)n;
  return 0.55 + 0.01 * (double)(i % 3);
}
static double flat_rss(size_t i, size_t n) {
  (void)n;
  return 6 * GIB + (double)(i % 7) * MIB;
}
static double light_reads(size_t i, size_t n) {
  (void)n, (void)i;
  return 2 * MIB;
}

static void test_healthy_run_gets_no_suggestion(void **state) {
  (void)state;
  cJSON *r = healthy();
  balanced_profile(r);
  add_series(r, "cpu_utilization_ratio", "ratio", 600, flat_cpu);
  add_series(r, "process_rss_bytes", "bytes", 600, flat_rss);
  add_series(r, "disk_read_bytes_per_second", "bytes_per_second", 600, light_reads);
  for (int p = 0; p < 4; p++) add_phase(r, "bucket", p * 150.0, p * 150.0 + 149);
  add_cache(r, "samples", 512 * MIB, 300 * MIB, 8000, 2000);
  assert_int_equal(po__advise(r), 0);
  assert_int_equal(count(r), 0);
  /* positive control: the same run with one function at 40% gets exactly that suggestion */
  add_fn(r, "attention", 100, 400, 400, 4, 5);
  set_num(get(r, "profile"), "profiled_seconds", 1000);
  assert_non_null(advise_find(r, "hot-function", "attention"));
  assert_int_equal(count(r), 1);
  cJSON_Delete(r);
}

/* ---- profile ------------------------------------------------------------------------------- */

static void test_hot_function_names_calls_and_average(void **state) {
  (void)state;
  cJSON *r = healthy();
  balanced_profile(r); /* 590 s of self time */
  add_fn(r, "simulate", 1200, 300, 290, 0.2, 0.4);
  set_num(get(r, "profile"), "profiled_seconds", 900);
  const cJSON *s = advise_find(r, "hot-function", "simulate");
  assert_non_null(s);
  assert_string_equal(sev(s), "info");
  assert_float_equal(evidence(s, "self time share", "ratio"), 290.0 / 900, 1e-9);
  assert_float_equal(evidence(s, "calls", "count"), 1200, 0);
  assert_float_equal(evidence(s, "average call", "seconds"), 0.25, 1e-9);
  assert_non_null(strstr(action(s), "simulate"));
  cJSON_Delete(r);
}

static void test_hot_function_not_under_twenty_percent(void **state) {
  (void)state;
  cJSON *r = healthy();
  balanced_profile(r);
  add_fn(r, "simulate", 1200, 120, 110, 0.2, 0.4); /* 110 / 700 = 15.7% */
  set_num(get(r, "profile"), "profiled_seconds", 700);
  assert_null(advise_find(r, "hot-function", NULL));
  cJSON_Delete(r);
}

static void test_many_tiny_calls_suggest_batching(void **state) {
  (void)state;
  cJSON *r = healthy();
  balanced_profile(r);
  add_fn(r, "pixel", 20e6, 10, 10, 4e-7, 6e-7); /* 0.5 us each, 10 s */
  const cJSON *s = advise_find(r, "tiny-calls", "pixel");
  assert_non_null(s);
  assert_float_equal(evidence(s, "calls", "count"), 20e6, 0);
  assert_non_null(strstr(action(s), "Batch or inline"));
  cJSON_Delete(r);
  r = healthy();
  balanced_profile(r);
  add_fn(r, "pixel", 500000, 0.25, 0.25, 4e-7, 6e-7); /* fewer than 1M calls */
  assert_null(advise_find(r, "tiny-calls", NULL));
  cJSON_Delete(r);
}

static void test_slow_tail_is_reported_for_own_time_only(void **state) {
  (void)state;
  cJSON *r = healthy();
  balanced_profile(r);
  add_fn(r, "fetch", 5000, 60, 55, 0.002, 0.05); /* p99 = 25x median */
  add_fn(r, "caller", 5000, 80, 1, 0.002, 0.05); /* the same tail, inherited */
  set_num(get(r, "profile"), "profiled_seconds", 700);
  const cJSON *s = advise_find(r, "latency-tail", "fetch");
  assert_non_null(s);
  assert_float_equal(evidence(s, "p99 call", "seconds"), 0.05, 0);
  assert_null(advise_find(r, "latency-tail", "caller"));
  cJSON_Delete(r);
  r = healthy();
  balanced_profile(r);
  add_fn(r, "fetch", 5000, 60, 55, 0.002, 0.01); /* 5x */
  assert_null(advise_find(r, "latency-tail", NULL));
  cJSON_Delete(r);
}

static double busy_cpu(size_t i, size_t n) {
  (void)i, (void)n;
  return 0.97;
}

static void test_slow_tails_on_a_busy_machine_fold_into_one(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_fn(r, "a", 5000, 300, 300, 0.002, 0.05);
  add_fn(r, "b", 5000, 200, 200, 0.002, 0.05);
  add_fn(r, "c", 5000, 100, 100, 0.002, 0.05);
  add_series(r, "cpu_utilization_ratio", "ratio", 600, busy_cpu);
  const cJSON *s = advise_find(r, "latency-tail", "a");
  assert_non_null(s);
  assert_float_equal(evidence(s, "other functions with such a tail", "count"), 2, 0);
  assert_non_null(strstr(action(s), "preemption"));
  assert_null(advise_find(r, "latency-tail", "b"));
  cJSON_Delete(r);
}

static void test_short_profile_gets_no_profile_advice(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_fn(r, "only", 10, 0.01, 0.01, 0.001, 0.05);
  set_num(get(r, "profile"), "profiled_seconds", 0.01);
  assert_int_equal(po__advise(r), 0);
  assert_int_equal(count(r), 0);
  cJSON_Delete(r);
}

/* ---- memory -------------------------------------------------------------------------------- */

static void test_peak_near_the_limit_lowers_the_batch(void **state) {
  (void)state;
  cJSON *r = healthy();
  set_num(get(r, "memory"), "peak_rss_bytes", 14.4 * GIB); /* 90% */
  const cJSON *s = advise_find(r, "memory-near-limit", NULL);
  assert_non_null(s);
  assert_string_equal(sev(s), "warning");
  assert_float_equal(evidence(s, "peak over limit", "ratio"), 0.9, 1e-9);
  /* 0.75 / 0.9: the batch that brings the peak to 75% */
  assert_non_null(strstr(action(s), "about 83%"));
  assert_non_null(strstr(action(s), "po_register_cleanup")); /* none registered */
  set_num(get(r, "memory"), "peak_rss_bytes", 15.7 * GIB);   /* 98% */
  assert_string_equal(sev(advise_find(r, "memory-near-limit", NULL)), "critical");
  set_num(get(r, "memory"), "peak_rss_bytes", 12 * GIB); /* 75% */
  assert_null(advise_find(r, "memory-near-limit", NULL));
  cJSON_Delete(r);
}

static void test_far_from_the_limit_says_how_much_room(void **state) {
  (void)state;
  cJSON *r = healthy();
  set_num(get(r, "memory"), "limit_bytes", 64 * GIB);
  set_num(get(r, "memory"), "peak_rss_bytes", 4 * GIB); /* 6.25% */
  const cJSON *s = advise_find(r, "memory-headroom", NULL);
  assert_non_null(s);
  assert_non_null(strstr(action(s), "12.0x")); /* 0.75 / 0.0625 */
  set_num(get(r, "memory"), "peak_rss_bytes", 200 * MIB); /* a small process: not a batch job */
  assert_null(advise_find(r, "memory-headroom", NULL));
  set_num(get(r, "memory"), "peak_rss_bytes", 4 * GIB);
  add_gpu(r, 80 * GIB, 1); /* device memory bounds the batch instead */
  assert_null(advise_find(r, "memory-headroom", NULL));
  cJSON_Delete(r);
}

static double rss_growing(size_t i, size_t n) {
  (void)n;
  return 2 * GIB + (double)(i / 100) * 200 * MIB + (double)(i % 5) * MIB;
}
static double rss_sawtooth(size_t i, size_t n) {
  (void)n;
  return 2 * GIB + (double)(i % 100) * 4 * MIB;
}

static void test_memory_growing_phase_over_phase_is_a_leak_suspect(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_series(r, "process_rss_bytes", "bytes", 400, rss_growing);
  for (int p = 0; p < 4; p++) add_phase(r, "bucket", p * 100.0, p * 100.0 + 99);
  const cJSON *s = advise_find(r, "leak-suspect", NULL);
  assert_non_null(s);
  assert_float_equal(evidence(s, "phases", "count"), 4, 0);
  assert_float_equal(evidence(s, "growth per phase", "bytes"), 200 * MIB, 1);
  cJSON_Delete(r);
  r = healthy();
  add_series(r, "process_rss_bytes", "bytes", 400, rss_sawtooth); /* back to the start each phase */
  for (int p = 0; p < 4; p++) add_phase(r, "bucket", p * 100.0, p * 100.0 + 99);
  assert_null(advise_find(r, "leak-suspect", NULL));
  cJSON_Delete(r);
}

/* memory.heap as the heap tracker writes it: leaked bytes and the leak sites of ended processes */
static void add_heap(cJSON *r, double leaked, const char *site, double site_bytes) {
  cJSON *heap = cJSON_AddObjectToObject(get(r, "memory"), "heap");
  cJSON_AddNumberToObject(heap, "leaked_bytes", leaked);
  cJSON_AddNumberToObject(heap, "leaked_allocations", 12);
  cJSON *s = cJSON_CreateObject();
  cJSON_AddStringToObject(s, "name", site);
  cJSON_AddNumberToObject(s, "live_bytes", site_bytes);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(heap, "leaks"), s);
}

static void test_leak_suspect_names_the_heap_top_site(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_series(r, "process_rss_bytes", "bytes", 400, rss_growing);
  for (int p = 0; p < 4; p++) add_phase(r, "bucket", p * 100.0, p * 100.0 + 99);
  add_heap(r, 0, "load_batch (data.c:88)", 600 * MIB);
  const cJSON *s = advise_find(r, "leak-suspect", "load_batch (data.c:88)");
  assert_non_null(s);
  assert_float_equal(evidence(s, "bytes held by the top heap site", "bytes"), 600 * MIB, 0);
  assert_non_null(strstr(action(s), "start at load_batch"));
  cJSON_Delete(r);
}

static void test_heap_left_unfreed_at_exit_is_a_leak(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_heap(r, 300 * MIB, "cache_put (cache.c:12)", 250 * MIB);
  const cJSON *s = advise_find(r, "heap-leak", "cache_put (cache.c:12)");
  assert_non_null(s);
  assert_float_equal(evidence(s, "leaked bytes", "bytes"), 300 * MIB, 0);
  cJSON_Delete(r);
  r = healthy();
  add_heap(r, 4 * MIB, "cache_put (cache.c:12)", 4 * MIB); /* a few blocks at exit: normal */
  assert_null(advise_find(r, "heap-leak", NULL));
  cJSON_Delete(r);
}

static void test_swap_in_use_is_reported(void **state) {
  (void)state;
  cJSON *r = healthy();
  cJSON *sys = cJSON_AddObjectToObject(r, "system");
  cJSON_AddNumberToObject(sys, "swap_total_bytes", 4 * GIB);
  cJSON_AddNumberToObject(sys, "swap_used_bytes", 1 * GIB);
  const cJSON *s = advise_find(r, "swap-activity", NULL);
  assert_non_null(s);
  assert_float_equal(evidence(s, "swap used", "bytes"), GIB, 0);
  set_num(sys, "swap_used_bytes", 10 * MIB);
  assert_null(advise_find(r, "swap-activity", NULL));
  cJSON_Delete(r);
}

static void test_memory_pressure_stalls(void **state) {
  (void)state;
  cJSON *r = healthy();
  cJSON *sys = cJSON_AddObjectToObject(r, "system");
  cJSON_AddNumberToObject(sys, "memory_pressure_some_avg10_ratio", 0.2);
  cJSON_AddNumberToObject(sys, "memory_pressure_full_avg10_ratio", 0.01);
  const cJSON *s = advise_find(r, "memory-pressure", NULL);
  assert_non_null(s);
  assert_string_equal(sev(s), "warning");
  set_num(sys, "memory_pressure_full_avg10_ratio", 0.1);
  assert_string_equal(sev(advise_find(r, "memory-pressure", NULL)), "critical");
  set_num(sys, "memory_pressure_some_avg10_ratio", 0.01);
  assert_null(advise_find(r, "memory-pressure", NULL));
  cJSON_Delete(r);
}

/* ---- GPU ----------------------------------------------------------------------------------- */

static double util_low(size_t i, size_t n) {
  (void)n;
  return 0.08 + 0.01 * (double)(i % 3);
}
static double util_high(size_t i, size_t n) {
  (void)n, (void)i;
  return 0.93;
}
static double util_mid(size_t i, size_t n) {
  (void)n, (void)i;
  return 0.35;
}
static double gmem_low(size_t i, size_t n) {
  (void)n, (void)i;
  return 12 * GIB;
}
static double gmem_full(size_t i, size_t n) {
  (void)n;
  return i == 50 ? 78.5 * GIB : 60 * GIB;
}

static void test_gpu_idle_with_memory_to_spare_raises_the_batch(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_gpu(r, 80 * GIB, 1);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_low);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_low);
  const cJSON *s = advise_find(r, "gpu-underused", "gpu0");
  assert_non_null(s);
  assert_float_equal(evidence(s, "peak memory over capacity", "ratio"), 0.15, 1e-9);
  assert_non_null(strstr(action(s), "Raise the batch size"));
  cJSON_Delete(r);
  r = healthy();
  add_gpu(r, 80 * GIB, 1);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_high);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_low);
  assert_int_equal(po__advise(r), 0);
  assert_int_equal(count(r), 0);
  cJSON_Delete(r);
}

static void test_gpu_of_another_process_is_not_advised(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_gpu(r, 80 * GIB, 0);
  cJSON *p = cJSON_CreateObject();
  cJSON_AddNumberToObject(p, "pid", 999); /* someone else's job */
  cJSON_AddItemToArray(cJSON_AddArrayToObject(
                           cJSON_GetArrayItem(get(get(r, "gpu"), "devices"), 0), "processes"),
                       p);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_low);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_low);
  assert_null(advise_find(r, "gpu-underused", NULL));
  cJSON_Delete(r);
}

static void test_gpu_waiting_on_a_busy_cpu_is_input_bound(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_gpu(r, 80 * GIB, 1);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_mid);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_low);
  add_series(r, "cpu_utilization_ratio", "ratio", 100, busy_cpu);
  const cJSON *s = advise_find(r, "gpu-input-bound", "gpu0");
  assert_non_null(s);
  assert_string_equal(sev(s), "warning");
  assert_non_null(strstr(action(s), "data-loader workers"));
  cJSON_Delete(r);
  r = healthy();
  add_gpu(r, 80 * GIB, 1);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_mid);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_low);
  add_series(r, "cpu_utilization_ratio", "ratio", 100, flat_cpu);
  assert_null(advise_find(r, "gpu-input-bound", NULL));
  cJSON_Delete(r);
}

static void test_gpu_memory_near_full(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_gpu(r, 80 * GIB, 1);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_high);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_full);
  const cJSON *s = advise_find(r, "gpu-memory-full", "gpu0");
  assert_non_null(s);
  assert_float_equal(evidence(s, "peak device memory used", "bytes"), 78.5 * GIB, 0);
  cJSON_Delete(r);
  r = healthy();
  add_gpu(r, 80 * GIB, 1);
  add_series(r, "gpu0_utilization_ratio", "ratio", 100, util_high);
  add_series(r, "gpu0_memory_used_bytes", "bytes", 100, gmem_low);
  assert_null(advise_find(r, "gpu-memory-full", NULL));
  cJSON_Delete(r);
}

/* ---- I/O and caches ------------------------------------------------------------------------ */

static double reads_half(size_t i, size_t n) {
  (void)n;
  return i % 2 ? 150 * MIB : 1 * MIB;
}
static double cpu_idle_on_reads(size_t i, size_t n) {
  (void)n;
  return i % 2 ? 0.08 : 0.6;
}

static void test_heavy_reads_while_the_cpu_idles_is_io_bound(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_series(r, "disk_read_bytes_per_second", "bytes_per_second", 200, reads_half);
  add_series(r, "cpu_utilization_ratio", "ratio", 200, cpu_idle_on_reads);
  add_cache(r, "samples", 512 * MIB, 300 * MIB, 300, 700);
  const cJSON *s = advise_find(r, "io-bound", NULL);
  assert_non_null(s);
  assert_float_equal(evidence(s, "share of samples I/O-bound", "ratio"), 0.5, 1e-9);
  assert_float_equal(evidence(s, "cache hit ratio", "ratio"), 0.3, 1e-9);
  cJSON_Delete(r);
  r = healthy();
  add_series(r, "disk_read_bytes_per_second", "bytes_per_second", 200, reads_half);
  add_series(r, "cpu_utilization_ratio", "ratio", 200, busy_cpu); /* reading while computing */
  assert_null(advise_find(r, "io-bound", NULL));
  cJSON_Delete(r);
}

static void test_cache_too_small_estimates_the_working_set(void **state) {
  (void)state;
  cJSON *r = healthy();
  cJSON *c = add_cache(r, "models", 256 * MIB, 250 * MIB, 3000, 7000);
  add_trace(c, 7000, 600, 1 * MIB); /* 600 distinct keys of 1 MiB cycled through 256 MiB */
  const cJSON *s = advise_find(r, "cache-too-small", "models");
  assert_non_null(s);
  assert_float_equal(evidence(s, "estimated working set", "bytes"), 600 * MIB, 1);
  assert_non_null(strstr(action(s), "660 MiB")); /* 600 MiB plus a tenth */
  cJSON_Delete(r);
  /* the same misses from a scan (every key inserted once): no budget helps */
  r = healthy();
  c = add_cache(r, "models", 256 * MIB, 250 * MIB, 3000, 7000);
  add_trace(c, 7000, 6900, 1 * MIB);
  assert_null(advise_find(r, "cache-too-small", NULL));
  cJSON_Delete(r);
  /* a good hit ratio is no problem */
  r = healthy();
  add_cache(r, "models", 256 * MIB, 250 * MIB, 9000, 1000);
  assert_null(advise_find(r, "cache-too-small", NULL));
  cJSON_Delete(r);
}

static void test_cache_far_from_full_can_shrink(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_cache(r, "tiles", 1024 * MIB, 100 * MIB, 99000, 500);
  const cJSON *s = advise_find(r, "cache-oversized", "tiles");
  assert_non_null(s);
  assert_non_null(strstr(action(s), "125 MiB"));
  cJSON_Delete(r);
  r = healthy();
  add_cache(r, "tiles", 1024 * MIB, 900 * MIB, 99000, 500);
  assert_null(advise_find(r, "cache-oversized", NULL));
  cJSON_Delete(r);
}

/* ---- the monitor --------------------------------------------------------------------------- */

static void test_threshold_firing_over_and_over_is_too_tight(void **state) {
  (void)state;
  cJSON *r = healthy();
  for (int i = 0; i < 12; i++) add_event(r, "memory", 100 + 6.0 * i, 0.86, 0.85);
  const cJSON *s = advise_find(r, "threshold-flapping", "memory");
  assert_non_null(s);
  assert_float_equal(evidence(s, "firings", "count"), 12, 0);
  assert_non_null(strstr(action(s), "MEMORY_THRESHOLD"));
  cJSON_Delete(r);
  r = healthy();
  for (int i = 0; i < 12; i++) add_event(r, "memory", 100 + 600.0 * i, 0.86, 0.85);
  assert_null(advise_find(r, "threshold-flapping", NULL));
  cJSON_Delete(r);
}

static void test_monitoring_over_budget_raises_the_interval(void **state) {
  (void)state;
  cJSON *r = healthy();
  set_num(get(r, "resources"), "overhead_core_ratio", 0.02); /* 4x the 0.5% budget */
  const cJSON *s = advise_find(r, "monitor-overhead", NULL);
  assert_non_null(s);
  assert_non_null(strstr(action(s), "from 1000 to about 4000"));
  set_num(get(r, "resources"), "overhead_core_ratio", 0.006); /* within 1.5x */
  assert_null(advise_find(r, "monitor-overhead", NULL));
  cJSON_Delete(r);
}

/* ---- the model and the engine -------------------------------------------------------------- */

static void test_suggestions_are_ordered_by_severity(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_fn(r, "hot", 100, 500, 500, 4, 5);                   /* info */
  set_num(get(r, "resources"), "overhead_core_ratio", 0.02); /* warning */
  set_num(get(r, "memory"), "peak_rss_bytes", 15.9 * GIB);   /* critical */
  assert_int_equal(po__advise(r), 0);
  assert_int_equal(count(r), 3);
  assert_string_equal(sev(cJSON_GetArrayItem(get(r, "suggestions"), 0)), "critical");
  assert_string_equal(sev(cJSON_GetArrayItem(get(r, "suggestions"), 1)), "warning");
  assert_string_equal(sev(cJSON_GetArrayItem(get(r, "suggestions"), 2)), "info");
  cJSON_Delete(r);
}

static void test_missing_or_mistyped_sections_give_nothing(void **state) {
  (void)state;
  cJSON *r = cJSON_Parse("{\"perfopt_version\":\"0\"}");
  assert_int_equal(po__advise(r), 0);
  assert_int_equal(count(r), 0); /* the array is added */
  cJSON_Delete(r);
  r = cJSON_Parse("{\"profile\":[1],\"memory\":{\"peak_rss_bytes\":\"x\",\"limit_bytes\":null},"
                  "\"resources\":{\"series\":{},\"events\":[1,{\"metric\":7}],\"phases\":[{},{},{}]},"
                  "\"gpu\":{\"devices\":[{\"index\":1e300}]},\"cache\":{\"caches\":[{}]}}");
  assert_int_equal(po__advise(r), 0);
  assert_int_equal(count(r), 0);
  cJSON_Delete(r);
}

static void *hook_malloc(size_t n) {
  return po__test_malloc(n);
}

static void test_allocation_failures_leave_the_report_unchanged(void **state) {
  (void)state;
  cJSON_Hooks hooks = {hook_malloc, free};
  cJSON_InitHooks(&hooks);
  int failures = 0;
  for (uint64_t n = 1; n < 5000; n++) {
    cJSON *r = healthy();
    add_fn(r, "hot", 100, 500, 500, 4, 5);
    set_num(get(r, "resources"), "overhead_core_ratio", 0.02);
    set_num(get(r, "memory"), "peak_rss_bytes", 15.9 * GIB);
    po__fault_fail_at(n, 0);
    int rc = po__advise(r);
    int injected = (int)po__fault_injected();
    po__fault_fail_at(0, 0);
    if (!injected) {
      assert_int_equal(rc, 0);
      assert_int_equal(count(r), 3);
      cJSON_Delete(r);
      break;
    }
    assert_int_equal(rc, PO_ENOMEM);
    assert_int_equal(count(r), 0); /* the old (empty) array is still there */
    failures++;
    cJSON_Delete(r);
  }
  cJSON_InitHooks(NULL);
  assert_true(failures > 20);
}

static void test_report_advise_replaces_old_suggestions(void **state) {
  (void)state;
  cJSON *r = healthy();
  set_num(get(r, "memory"), "peak_rss_bytes", 15.9 * GIB);
  cJSON *old = cJSON_CreateObject();
  cJSON_AddStringToObject(old, "id", "stale");
  cJSON_AddItemToArray(get(r, "suggestions"), old);
  char *text = cJSON_PrintUnformatted(r);
  po_report *rep;
  char err[128];
  assert_int_equal(po__report_parse(text, strlen(text), "t", &rep, err, sizeof err), 0);
  free(text);
  assert_int_equal(po_report_advise(rep), 0);
  const cJSON *s = cJSON_GetObjectItem(po_report_json(rep), "suggestions");
  assert_int_equal(cJSON_GetArraySize(s), 1);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(s, 0), "id")),
                      "memory-near-limit");
  assert_int_equal(po_report_advise(NULL), PO_EINVAL);
  po_report_destroy(rep);
  cJSON_Delete(r);
}

/* ---- the text table ------------------------------------------------------------------------ */

static char *text_of(cJSON *r) {
  char *json = cJSON_PrintUnformatted(r);
  po_report *rep;
  char err[128];
  assert_int_equal(po__report_parse(json, strlen(json), "t", &rep, err, sizeof err), 0);
  free(json);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(po_report_write_text(rep, f, PO_SORT_TOTAL, 25), 0);
  fclose(f);
  po_report_destroy(rep);
  return buf;
}

/* The line of the table that shows function `name`. */
static const char *row_of(const char *text, const char *name) {
  const char *p = text;
  while ((p = strstr(p, name)) != NULL) {
    const char *bol = p;
    while (bol > text && bol[-1] != '\n') bol--;
    if (p - bol == 4) return bol; /* marks, a space, then the name */
    p++;
  }
  return NULL;
}

static void test_text_marks_come_from_findings_with_a_legend(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_fn(r, "hot", 100, 500, 500, 4, 5);
  add_fn(r, "second", 100, 300, 10, 4, 5); /* more total time than most, no finding */
  add_fn(r, "third", 100, 200, 90, 1, 2);
  add_fn(r, "fourth", 100, 1, 1, 1, 2);
  assert_int_equal(po__advise(r), 0);
  char *t = text_of(r);
  const char *hot = row_of(t, "hot"), *second = row_of(t, "second");
  assert_non_null(hot);
  assert_non_null(second);
  assert_int_equal(hot[0], '!');
  assert_memory_equal(second, "    ", 4); /* no "!!" for merely being in the top three */
  assert_non_null(strstr(t, "marks: ! hot"));
  assert_non_null(strstr(t, "suggestions (1):"));
  assert_non_null(strstr(t, "[info] hot-function"));
  free(t);
  /* no finding: no marks, no legend, and the suggestions say none */
  cJSON *h = healthy();
  add_fn(h, "a", 100, 1, 1, 0.01, 0.011);
  add_fn(h, "b", 100, 1, 1, 0.01, 0.011);
  assert_int_equal(po__advise(h), 0);
  t = text_of(h);
  assert_null(strstr(t, "marks:"));
  assert_null(strstr(t, "!"));
  assert_non_null(strstr(t, "suggestions: none"));
  free(t);
  cJSON_Delete(h);
  cJSON_Delete(r);
}

static void test_text_cuts_long_names_with_an_ellipsis(void **state) {
  (void)state;
  cJSON *r = healthy();
  add_fn(r, "a_function_name_that_is_much_longer_than_forty_characters_x", 10, 1, 1, 0.1, 0.1);
  add_fn(r, "short", 10, 0.5, 0.5, 0.05, 0.05);
  char *t = text_of(r);
  assert_non_null(strstr(t, "a_function_name_that_is_much_longer_tha\xE2\x80\xA6 "));
  assert_null(strstr(t, "forty_characters_x"));
  /* columns still line up: both names take exactly 40 columns, then the total's column */
  const char *a = strstr(t, "a_function"), *s = strstr(t, "short");
  const char *after_a = strstr(a, "\xE2\x80\xA6") + 3;
  assert_int_equal(after_a - a, 39 + 3);
  for (int i = 5; i < 40; i++) assert_int_equal(s[i], ' '); /* "short" padded to 40 */
  assert_int_equal(*after_a, ' ');
  free(t);
  cJSON_Delete(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_healthy_run_gets_no_suggestion),
      cmocka_unit_test(test_hot_function_names_calls_and_average),
      cmocka_unit_test(test_hot_function_not_under_twenty_percent),
      cmocka_unit_test(test_many_tiny_calls_suggest_batching),
      cmocka_unit_test(test_slow_tail_is_reported_for_own_time_only),
      cmocka_unit_test(test_slow_tails_on_a_busy_machine_fold_into_one),
      cmocka_unit_test(test_short_profile_gets_no_profile_advice),
      cmocka_unit_test(test_peak_near_the_limit_lowers_the_batch),
      cmocka_unit_test(test_far_from_the_limit_says_how_much_room),
      cmocka_unit_test(test_memory_growing_phase_over_phase_is_a_leak_suspect),
      cmocka_unit_test(test_leak_suspect_names_the_heap_top_site),
      cmocka_unit_test(test_heap_left_unfreed_at_exit_is_a_leak),
      cmocka_unit_test(test_swap_in_use_is_reported),
      cmocka_unit_test(test_memory_pressure_stalls),
      cmocka_unit_test(test_gpu_idle_with_memory_to_spare_raises_the_batch),
      cmocka_unit_test(test_gpu_of_another_process_is_not_advised),
      cmocka_unit_test(test_gpu_waiting_on_a_busy_cpu_is_input_bound),
      cmocka_unit_test(test_gpu_memory_near_full),
      cmocka_unit_test(test_heavy_reads_while_the_cpu_idles_is_io_bound),
      cmocka_unit_test(test_cache_too_small_estimates_the_working_set),
      cmocka_unit_test(test_cache_far_from_full_can_shrink),
      cmocka_unit_test(test_threshold_firing_over_and_over_is_too_tight),
      cmocka_unit_test(test_monitoring_over_budget_raises_the_interval),
      cmocka_unit_test(test_suggestions_are_ordered_by_severity),
      cmocka_unit_test(test_missing_or_mistyped_sections_give_nothing),
      cmocka_unit_test(test_allocation_failures_leave_the_report_unchanged),
      cmocka_unit_test(test_report_advise_replaces_old_suggestions),
      cmocka_unit_test(test_text_marks_come_from_findings_with_a_legend),
      cmocka_unit_test(test_text_cuts_long_names_with_an_ellipsis),
  };
  return cmocka_run_group_tests_name("advisor", tests, NULL, NULL);
}
