/* Memory management: the cleanup registry, pressure listeners, the guard, batch advice, phases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/memory.h"
#include "monitor/sampler.h"
#include "optimizer.h"
#include "perfopt.h"

#define MIB (1024ll * 1024)
#define GIB (1024ll * MIB)

static po_optimizer *make_opt(void) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  return opt;
}

/* Each handler appends its tag to a shared log. */
static char order_log[64];
static void log_tag(po_cleanup_level level, void *user) {
  (void)level;
  strncat(order_log, (const char *)user, sizeof order_log - strlen(order_log) - 1);
}

static void test_handlers_run_by_priority_then_registration(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  order_log[0] = '\0';
  assert_int_equal(
      po_cleanup_register(opt, "c", PO_RESOURCE_DATA, 5, PO_CLEANUP_NORMAL, log_tag, "c", NULL), 0);
  assert_int_equal(
      po_cleanup_register(opt, "a", PO_RESOURCE_MODEL, 1, PO_CLEANUP_NORMAL, log_tag, "a", NULL),
      0);
  assert_int_equal(
      po_cleanup_register(opt, "d", PO_RESOURCE_OTHER, 5, PO_CLEANUP_NORMAL, log_tag, "d", NULL),
      0);
  assert_int_equal(
      po_cleanup_register(opt, "b", PO_RESOURCE_GPU, 2, PO_CLEANUP_NORMAL, log_tag, "b", NULL), 0);
  po_cleanup_result r;
  assert_int_equal(po_optimize_memory(opt, PO_CLEANUP_NORMAL, &r), 0);
  assert_string_equal(order_log, "abcd");
  assert_int_equal(r.handlers_run, 4);
  assert_true(r.rss_before_bytes > 0 && r.rss_after_bytes > 0);
  assert_true(r.freed_bytes >= 0);
  po_optimizer_destroy(opt);
}

static void test_aggressive_handlers_run_only_in_aggressive_cleanups(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  order_log[0] = '\0';
  po_cleanup_register(opt, "n", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "n", NULL);
  po_cleanup_register(opt, "A", PO_RESOURCE_DATA, 0, PO_CLEANUP_AGGRESSIVE, log_tag, "A", NULL);
  po_optimize_memory(opt, PO_CLEANUP_NORMAL, NULL);
  assert_string_equal(order_log, "n");
  order_log[0] = '\0';
  po_optimize_memory(opt, PO_CLEANUP_AGGRESSIVE, NULL);
  assert_string_equal(order_log, "nA");
  po_optimizer_destroy(opt);
}

static void test_targeted_clearing_runs_one_type(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  order_log[0] = '\0';
  po_cleanup_register(opt, "model", PO_RESOURCE_MODEL, 0, PO_CLEANUP_NORMAL, log_tag, "m", NULL);
  po_cleanup_register(opt, "cuda cache", PO_RESOURCE_GPU, 0, PO_CLEANUP_NORMAL, log_tag, "g", NULL);
  po_cleanup_register(opt, "viz", PO_RESOURCE_VISUALIZATION, 0, PO_CLEANUP_NORMAL, log_tag, "v",
                      NULL);
  po_cleanup_register(opt, "gpu pool", PO_RESOURCE_GPU, 1, PO_CLEANUP_AGGRESSIVE, log_tag, "G",
                      NULL);
  po_cleanup_result r;
  /* An explicit request for one type runs all its handlers, aggressive-only ones included. */
  assert_int_equal(po_clear_resource(opt, PO_RESOURCE_GPU, PO_CLEANUP_NORMAL, &r), 0);
  assert_string_equal(order_log, "gG");
  assert_int_equal(r.handlers_run, 2);
  assert_int_equal(po_clear_resource(opt, (po_resource_type)9, PO_CLEANUP_NORMAL, &r), PO_EINVAL);
  po_optimizer_destroy(opt);
}

static void test_unregistered_handler_does_not_run(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  order_log[0] = '\0';
  int id = 0;
  po_cleanup_register(opt, "x", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "x", &id);
  po_cleanup_register(opt, "y", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "y", NULL);
  assert_int_equal(po_cleanup_unregister(opt, id), 0);
  assert_int_equal(po_cleanup_unregister(opt, id), PO_ENOENT);
  po_optimize_memory(opt, PO_CLEANUP_NORMAL, NULL);
  assert_string_equal(order_log, "y");
  po_optimizer_destroy(opt);
}

/* A handler that unregisters itself (one-shot) and tries a reentrant cleanup. */
static po_optimizer *self_opt;
static int self_id, self_runs, reentrant_rc;
static void one_shot(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
  self_runs++;
  reentrant_rc = po_optimize_memory(self_opt, PO_CLEANUP_NORMAL, NULL);
  assert_int_equal(po_cleanup_unregister(self_opt, self_id), 0);
}

static void test_handler_may_unregister_itself_and_cannot_reenter(void **state) {
  (void)state;
  self_opt = make_opt();
  self_runs = 0;
  order_log[0] = '\0';
  po_cleanup_register(self_opt, "once", PO_RESOURCE_OTHER, 0, PO_CLEANUP_NORMAL, one_shot, NULL,
                      &self_id);
  po_cleanup_register(self_opt, "after", PO_RESOURCE_OTHER, 1, PO_CLEANUP_NORMAL, log_tag, "z",
                      NULL);
  po_optimize_memory(self_opt, PO_CLEANUP_NORMAL, NULL);
  po_optimize_memory(self_opt, PO_CLEANUP_NORMAL, NULL);
  assert_int_equal(self_runs, 1);
  assert_int_equal(reentrant_rc, PO_EBUSY);
  assert_string_equal(order_log, "zz"); /* the handler after it still ran both times */
  po_optimizer_destroy(self_opt);
}

static int listener_calls;
static po_metric listener_metric;
static int64_t shrink_listener(const po_pressure_event *ev, void *user) {
  (void)user;
  listener_calls++;
  listener_metric = ev->metric;
  return 12345;
}

static void test_listeners_hear_optimize_memory_and_report_freed_bytes(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  listener_calls = 0;
  int id;
  assert_int_equal(po_monitor_add_pressure_listener(opt, "cache", shrink_listener, NULL, &id), 0);
  po_cleanup_result r;
  po_optimize_memory(opt, PO_CLEANUP_NORMAL, &r);
  assert_int_equal(listener_calls, 1);
  assert_int_equal(listener_metric, PO_METRIC_MANUAL);
  assert_true(r.freed_bytes >= 12345);
  /* Targeted clearing is for one resource type: listeners are not called. */
  po_clear_resource(opt, PO_RESOURCE_DATA, PO_CLEANUP_NORMAL, NULL);
  assert_int_equal(listener_calls, 1);
  assert_int_equal(po_monitor_remove_pressure_listener(opt, id), 0);
  po_optimize_memory(opt, PO_CLEANUP_NORMAL, NULL);
  assert_int_equal(listener_calls, 1);
  assert_int_equal(po_monitor_remove_pressure_listener(opt, id), PO_ENOENT);
  po_optimizer_destroy(opt);
}

/* ---- the guard ------------------------------------------------------------------------------ */

/* The caller's data: the guarded operations must leave it intact on failure. */
typedef struct job {
  int data[64];
  int primary_calls, fallback_calls;
  int primary_result;
  long sum;
} job;

static long checksum(const job *j) {
  long s = 0;
  for (int i = 0; i < 64; i++) s += (long)j->data[i] * (i + 1);
  return s;
}

static int primary_op(void *ctx) {
  job *j = ctx;
  j->primary_calls++;
  if (j->primary_result != 0) {
    /* Runs out of memory half-way: what it allocated is released, ctx untouched. */
    void *scratch = malloc(1 << 20);
    free(scratch);
    return j->primary_result;
  }
  j->sum = checksum(j) * 2;
  return 0;
}

static int fallback_op(void *ctx) {
  job *j = ctx;
  j->fallback_calls++;
  j->sum = checksum(j);
  return 0;
}

static void init_job(job *j) {
  memset(j, 0, sizeof *j);
  for (int i = 0; i < 64; i++) j->data[i] = i * 3 + 1;
}

static void test_guard_runs_primary_when_it_fits(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, -1, 8 * GIB);
  order_log[0] = '\0';
  po_cleanup_register(opt, "after", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "c", NULL);
  job j;
  init_job(&j);
  po_guard_result r;
  assert_int_equal(po_guard_run(opt, 1 * GIB, primary_op, fallback_op, &j, NULL, &r), 0);
  assert_int_equal(r.ran, 1);
  assert_int_equal(j.primary_calls, 1);
  assert_int_equal(j.fallback_calls, 0);
  assert_string_equal(order_log, "c"); /* cleaned up after */
  po_optimizer_destroy(opt);
}

static void test_guard_runs_fallback_when_memory_is_short(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, -1, 100 * MIB);
  order_log[0] = '\0';
  po_cleanup_register(opt, "free", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "c", NULL);
  job j;
  init_job(&j);
  long before = checksum(&j);
  po_guard_options o;
  po_guard_options_init(&o);
  o.name = "knowledge transfer";
  po_guard_result r;
  assert_int_equal(po_guard_run(opt, 1 * GIB, primary_op, fallback_op, &j, &o, &r), 0);
  assert_int_equal(r.ran, 2);
  assert_int_equal(r.available_bytes, 100 * MIB);
  assert_int_equal(j.primary_calls, 0);
  assert_int_equal(j.fallback_calls, 1);
  assert_int_equal(j.sum, before);
  assert_string_equal(order_log, "cc"); /* a cleanup before deciding, and one after */
  po_optimizer_destroy(opt);
}

static void test_guard_falls_back_after_out_of_memory_and_keeps_the_data(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, -1, 8 * GIB);
  job j;
  init_job(&j);
  j.primary_result = PO_EOOM;
  long before = checksum(&j);
  po_guard_result r;
  assert_int_equal(po_guard_run(opt, 1 * GIB, primary_op, fallback_op, &j, NULL, &r), 0);
  assert_int_equal(r.ran, 2);
  assert_int_equal(r.primary_rc, PO_EOOM);
  assert_int_equal(j.primary_calls, 1);
  assert_int_equal(j.fallback_calls, 1);
  assert_int_equal(checksum(&j), before); /* the caller's data survived */
  assert_int_equal(j.sum, before);        /* and the fallback worked on it */
  po_optimizer_destroy(opt);
}

static void test_guard_without_fallback_reports_out_of_memory(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, -1, MIB);
  job j;
  init_job(&j);
  po_guard_result r;
  assert_int_equal(po_guard_run(opt, GIB, primary_op, NULL, &j, NULL, &r), PO_EOOM);
  assert_int_equal(r.ran, 0);
  assert_int_equal(j.primary_calls, 0);
  /* A primary's own error other than out-of-memory is returned as is, without a fallback. */
  po__memory_test_set_available(opt->memory, -1, 8 * GIB);
  j.primary_result = PO_EIO;
  assert_int_equal(po_guard_run(opt, GIB, primary_op, fallback_op, &j, NULL, &r), PO_EIO);
  assert_int_equal(j.fallback_calls, 0);
  assert_int_equal(po_guard_run(opt, -1, primary_op, NULL, &j, NULL, &r), PO_EINVAL);
  po_optimizer_destroy(opt);
}

static void test_guard_checks_the_gpu_it_is_given(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, -1, 64 * GIB);
  po__memory_test_set_available(opt->memory, 1, 512 * MIB);
  order_log[0] = '\0';
  po_cleanup_register(opt, "host", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "h", NULL);
  po_cleanup_register(opt, "cuda", PO_RESOURCE_GPU, 0, PO_CLEANUP_NORMAL, log_tag, "g", NULL);
  job j;
  init_job(&j);
  po_guard_options o;
  po_guard_options_init(&o);
  o.device = 1;
  o.cleanup_after = -1;
  po_guard_result r;
  assert_int_equal(po_guard_run(opt, GIB, primary_op, fallback_op, &j, &o, &r), 0);
  assert_int_equal(r.ran, 2);
  assert_string_equal(order_log, "g"); /* only GPU handlers for a GPU guard */
  po_optimizer_destroy(opt);
}

static void test_guards_and_cleanups_are_in_the_report(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, -1, MIB);
  po_cleanup_register(opt, "free data", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, log_tag, "x", NULL);
  job j;
  init_job(&j);
  po_guard_options o;
  po_guard_options_init(&o);
  o.name = "transfer";
  po_guard_run(opt, GIB, primary_op, fallback_op, &j, &o, NULL);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *mem = cJSON_GetObjectItem(po_report_json(rep), "memory");
  assert_non_null(mem);
  assert_true(cJSON_GetObjectItem(mem, "rss_bytes")->valuedouble > 0);
  assert_true(cJSON_GetObjectItem(mem, "limit_bytes")->valuedouble > 0);
  const char *src = cJSON_GetObjectItem(mem, "limit_source")->valuestring;
  assert_true(!strcmp(src, "system") || !strcmp(src, "cgroup"));
  const cJSON *g = cJSON_GetArrayItem(cJSON_GetObjectItem(mem, "guards"), 0);
  assert_non_null(g);
  assert_string_equal(cJSON_GetObjectItem(g, "name")->valuestring, "transfer");
  assert_string_equal(cJSON_GetObjectItem(g, "ran")->valuestring, "fallback");
  assert_string_equal(cJSON_GetObjectItem(g, "result")->valuestring, "ok");
  const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(mem, "cleanups"), 0);
  assert_non_null(c);
  assert_string_equal(cJSON_GetObjectItem(c, "handler")->valuestring, "free data");
  assert_string_equal(cJSON_GetObjectItem(c, "type")->valuestring, "data");
  assert_string_equal(cJSON_GetObjectItem(c, "level")->valuestring, "normal");
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

/* ---- batch-size advice ---------------------------------------------------------------------- */

static void test_batch_advice_from_given_memory_per_sample(void **state) {
  (void)state;
  po_batch_request q;
  memset(&q, 0, sizeof q);
  q.bytes_per_sample = MIB;
  q.fixed_bytes = 100 * MIB;
  q.available_bytes = GIB;
  q.headroom_ratio = 0.1;
  int64_t b;
  /* usable = 1024 MiB * 0.9 - 100 MiB = 821.6 MiB -> 821 samples */
  q.rounding = PO_BATCH_MULTIPLE_OF_8;
  assert_int_equal(po_batch_advise(NULL, &q, &b), 0);
  assert_int_equal(b, 816);
  q.rounding = PO_BATCH_POWER_OF_TWO;
  assert_int_equal(po_batch_advise(NULL, &q, &b), 0);
  assert_int_equal(b, 512);
  q.max_batch = 300;
  assert_int_equal(po_batch_advise(NULL, &q, &b), 0);
  assert_int_equal(b, 256);
}

static void test_batch_advice_from_two_measurements(void **state) {
  (void)state;
  po_batch_request q;
  memset(&q, 0, sizeof q);
  q.batch_a = 8;
  q.bytes_a = 108 * MIB;
  q.batch_b = 16;
  q.bytes_b = 116 * MIB; /* 1 MiB per sample, 100 MiB fixed */
  q.available_bytes = GIB;
  q.rounding = PO_BATCH_MULTIPLE_OF_8;
  int64_t b;
  assert_int_equal(po_batch_advise(NULL, &q, &b), 0); /* default headroom 0.1 */
  assert_int_equal(b, 816);
}

static void test_batch_advice_errors(void **state) {
  (void)state;
  po_batch_request q;
  memset(&q, 0, sizeof q);
  q.bytes_per_sample = GIB;
  q.available_bytes = GIB;
  int64_t b = 7;
  assert_int_equal(po_batch_advise(NULL, &q, &b), PO_ETOOBIG);
  assert_int_equal(b, 0);
  q.bytes_per_sample = 100 * MIB; /* 9 fit, a multiple of 8 -> 8 */
  assert_int_equal(po_batch_advise(NULL, &q, &b), 0);
  assert_int_equal(b, 8);
  q.bytes_per_sample = 200 * MIB; /* 4 fit: not even 8 */
  assert_int_equal(po_batch_advise(NULL, &q, &b), PO_ETOOBIG);
  q.rounding = PO_BATCH_POWER_OF_TWO;
  assert_int_equal(po_batch_advise(NULL, &q, &b), 0);
  assert_int_equal(b, 4);
  q.bytes_per_sample = 0; /* and no measurements */
  assert_int_equal(po_batch_advise(NULL, &q, &b), PO_EINVAL);
  q.batch_a = q.batch_b = 8;
  assert_int_equal(po_batch_advise(NULL, &q, &b), PO_EINVAL);
  q.batch_b = 16;
  q.bytes_a = 200;
  q.bytes_b = 100; /* shrinking memory: not a per-sample cost */
  assert_int_equal(po_batch_advise(NULL, &q, &b), PO_EINVAL);
  assert_int_equal(po_batch_advise(NULL, NULL, &b), PO_EINVAL);
}

static void test_batch_advice_probes_available_memory(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  po__memory_test_set_available(opt->memory, 0, 10 * GIB);
  po_batch_request q;
  memset(&q, 0, sizeof q);
  q.bytes_per_sample = 10 * MIB;
  q.device = 0;
  q.rounding = PO_BATCH_POWER_OF_TWO;
  int64_t b;
  assert_int_equal(po_batch_advise(opt, &q, &b), 0);
  assert_int_equal(b, 512); /* 921 fit */
  q.device = -1;            /* the real machine: some batch of 10 MiB samples fits */
  assert_int_equal(po_batch_advise(opt, &q, &b), 0);
  assert_true(b >= 1);
  po_optimizer_destroy(opt);
}

/* ---- phases --------------------------------------------------------------------------------- */

static void test_phases_are_marked_and_cleaned_between(void **state) {
  (void)state;
  po_optimizer *opt = make_opt();
  order_log[0] = '\0';
  po_cleanup_register(opt, "between", PO_RESOURCE_MODEL, 0, PO_CLEANUP_NORMAL, log_tag, "p", NULL);
  assert_int_equal(po_phase_begin(opt, "bucket 1"), 0);
  assert_int_equal(po_phase_begin(opt, "bucket 2"), 0); /* ends bucket 1 */
  assert_string_equal(order_log, ""); /* cleanup between phases is off by default */
  assert_int_equal(po_phase_set_cleanup(opt, PO_CLEANUP_NORMAL), 0);
  assert_int_equal(po_phase_begin(opt, "bucket 3"), 0);
  assert_string_equal(order_log, "p");
  assert_int_equal(po_phase_end(opt), 0);
  assert_string_equal(order_log, "pp");
  assert_int_equal(po_phase_set_cleanup(opt, 7), PO_EINVAL);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *phases =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "resources"), "phases");
  assert_int_equal(cJSON_GetArraySize(phases), 3);
  const cJSON *p0 = cJSON_GetArrayItem(phases, 0);
  assert_string_equal(cJSON_GetObjectItem(p0, "name")->valuestring, "bucket 1");
  assert_true(cJSON_GetObjectItem(p0, "end_seconds")->valuedouble >=
              cJSON_GetObjectItem(p0, "start_seconds")->valuedouble);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handlers_run_by_priority_then_registration),
      cmocka_unit_test(test_aggressive_handlers_run_only_in_aggressive_cleanups),
      cmocka_unit_test(test_targeted_clearing_runs_one_type),
      cmocka_unit_test(test_unregistered_handler_does_not_run),
      cmocka_unit_test(test_handler_may_unregister_itself_and_cannot_reenter),
      cmocka_unit_test(test_listeners_hear_optimize_memory_and_report_freed_bytes),
      cmocka_unit_test(test_guard_runs_primary_when_it_fits),
      cmocka_unit_test(test_guard_runs_fallback_when_memory_is_short),
      cmocka_unit_test(test_guard_falls_back_after_out_of_memory_and_keeps_the_data),
      cmocka_unit_test(test_guard_without_fallback_reports_out_of_memory),
      cmocka_unit_test(test_guard_checks_the_gpu_it_is_given),
      cmocka_unit_test(test_guards_and_cleanups_are_in_the_report),
      cmocka_unit_test(test_batch_advice_from_given_memory_per_sample),
      cmocka_unit_test(test_batch_advice_from_two_measurements),
      cmocka_unit_test(test_batch_advice_errors),
      cmocka_unit_test(test_batch_advice_probes_available_memory),
      cmocka_unit_test(test_phases_are_marked_and_cleaned_between),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
