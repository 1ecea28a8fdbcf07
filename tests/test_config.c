/* Configuration: defaults, text/JSON/environment sources, and errors that name the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perfopt.h"
#include "support/support.h"

static void test_defaults_hold_the_seed_keys(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  assert_int_equal(c.enable_profiling, 1);
  assert_int_equal(c.background_monitoring, 1);
  assert_true(c.cpu_threshold > 0.79 && c.cpu_threshold < 0.81);
  assert_int_equal(c.enable_caching, 1);
  assert_int_equal(c.monitor_interval_ms, 1000);
  assert_int_equal(c.cache_policy, PO_CACHE_SIEVE);
}

static void test_set_parses_each_type(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  char err[256];
  assert_int_equal(po_config_set(&c, "enable_profiling", "off", err, sizeof err), 0);
  assert_int_equal(c.enable_profiling, 0);
  assert_int_equal(po_config_set(&c, "CPU_THRESHOLD", "0.65", err, sizeof err), 0);
  assert_true(c.cpu_threshold == 0.65);
  assert_int_equal(po_config_set(&c, "MONITOR_INTERVAL_MS", "250", err, sizeof err), 0);
  assert_int_equal(c.monitor_interval_ms, 250);
  assert_int_equal(po_config_set(&c, "CACHE_POLICY", "s3fifo", err, sizeof err), 0);
  assert_int_equal(c.cache_policy, PO_CACHE_S3FIFO);
  assert_int_equal(po_config_set(&c, "PROC_ROOT", "/tmp/fake", err, sizeof err), 0);
  assert_string_equal(c.proc_root, "/tmp/fake");
}

static void test_errors_name_the_key_and_what_is_allowed(void **state) {
  (void)state;
  po_config c, before;
  po_config_defaults(&c);
  before = c;
  char err[256];
  assert_int_equal(po_config_set(&c, "CPU_THRESHOL", "0.5", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "'CPU_THRESHOL'"));
  assert_non_null(strstr(err, "closest: CPU_THRESHOLD")); /* an explicit set stays an error */
  assert_int_equal(po_config_set(&c, "CPU_THRESHOLD", "1.5", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "CPU_THRESHOLD"));
  assert_non_null(strstr(err, "0 to 1"));
  assert_int_equal(po_config_set(&c, "MONITOR_INTERVAL_MS", "5", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "10 to 3600000"));
  assert_int_equal(po_config_set(&c, "MONITOR_INTERVAL_MS", "12.5", err, sizeof err), PO_ECONFIG);
  assert_int_equal(po_config_set(&c, "ENABLE_CACHING", "maybe", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "true or false"));
  assert_int_equal(po_config_set(&c, "CACHE_POLICY", "fifo", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "sieve"));
  assert_memory_equal(&c, &before, sizeof c); /* nothing changed */
}

static void test_json_is_all_or_nothing(void **state) {
  (void)state;
  po_config c, before;
  po_config_defaults(&c);
  before = c;
  char err[256];
  assert_int_equal(
      po_config_load_json(&c, "{\"ENABLE_CACHING\": false, \"CPU_THRESHOLD\": \"high\"}", err,
                          sizeof err),
      PO_ECONFIG);
  assert_non_null(strstr(err, "CPU_THRESHOLD"));
  assert_memory_equal(&c, &before, sizeof c);
  assert_int_equal(po_config_load_json(&c, "{\n\"A\": }", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "line 2"));
  assert_int_equal(po_config_load_json(&c, "[1]", err, sizeof err), PO_ECONFIG);
  assert_int_equal(po_config_load_json(&c, "{\"ENABLE_CACHING\": false, \"CACHE_POLICY\": \"lru\"}",
                                       err, sizeof err),
                   0);
  assert_int_equal(c.enable_caching, 0);
  assert_int_equal(c.cache_policy, PO_CACHE_LRU);
}

static void test_file_then_environment_override_defaults(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/cfg.json", support_tmpdir());
  FILE *f = fopen(path, "w");
  fputs("{\"CPU_THRESHOLD\": 0.7, \"MONITOR_INTERVAL_MS\": 500}", f);
  fclose(f);
  setenv("PERFOPT_CONFIG", path, 1);
  setenv("PERFOPT_MONITOR_INTERVAL_MS", "200", 1);
  setenv("PERFOPT_PROFILING", "0", 1);
  po_config c;
  char err[256];
  assert_int_equal(po_config_load(&c, err, sizeof err), 0);
  assert_true(c.cpu_threshold == 0.7);
  assert_int_equal(c.monitor_interval_ms, 200);
  assert_int_equal(c.enable_profiling, 0);
  setenv("PERFOPT_CPU_THRESHOLD", "2", 1);
  assert_int_equal(po_config_load(&c, err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "CPU_THRESHOLD"));
  unsetenv("PERFOPT_CPU_THRESHOLD");
  setenv("PERFOPT_CONFIG", "/nonexistent/perfopt.json", 1);
  assert_int_equal(po_config_load(&c, err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "/nonexistent/perfopt.json"));
  unsetenv("PERFOPT_CONFIG");
  unsetenv("PERFOPT_MONITOR_INTERVAL_MS");
  unsetenv("PERFOPT_PROFILING");
}

static void test_each_key_says_where_its_value_came_from(void **state) {
  (void)state;
  char path[256], err[256];
  snprintf(path, sizeof path, "%s/origin.json", support_tmpdir());
  FILE *f = fopen(path, "w");
  fputs("{\"CPU_THRESHOLD\": 0.7, \"DISK_BUSY_THRESHOLD\": 0.6}", f);
  fclose(f);
  setenv("PERFOPT_CONFIG", path, 1);
  setenv("PERFOPT_DISK_BUSY_THRESHOLD", "0.5", 1);
  po_config c;
  assert_int_equal(po_config_load(&c, err, sizeof err), 0);
  unsetenv("PERFOPT_CONFIG");
  unsetenv("PERFOPT_DISK_BUSY_THRESHOLD");
  assert_string_equal(po_config_key_source(&c, "CPU_THRESHOLD"), "config file");
  assert_string_equal(po_config_key_source(&c, "DISK_BUSY_THRESHOLD"), "environment");
  assert_string_equal(po_config_key_source(&c, "MEMORY_THRESHOLD"), "default");
  assert_string_equal(po_config_key_source(&c, "memory_threshold"), "default"); /* any case */
  assert_int_equal(po_config_set(&c, "MEMORY_THRESHOLD", "0.8", err, sizeof err), 0);
  assert_string_equal(po_config_key_source(&c, "MEMORY_THRESHOLD"), "program");
  c.series_capacity = 128; /* assigned directly: differs from the default */
  assert_string_equal(po_config_key_source(&c, "SERIES_CAPACITY"), "program");
  c.monitor_interval_ms = 1000; /* assigned the default value: indistinguishable */
  assert_string_equal(po_config_key_source(&c, "MONITOR_INTERVAL_MS"), "default");
  assert_null(po_config_key_source(&c, "NO_SUCH_KEY"));
  assert_null(po_config_key_source(NULL, "CPU_THRESHOLD"));
  po_config d;
  po_config_defaults(&d);
  assert_int_equal(po_config_load_json(&d, "{\"CPU_THRESHOLD\": 0.5}", err, sizeof err), 0);
  assert_string_equal(po_config_key_source(&d, "CPU_THRESHOLD"), "program");
}

static void test_to_json_round_trips(void **state) {
  (void)state;
  po_config c, d;
  po_config_defaults(&c);
  c.cache_policy = PO_CACHE_LRU;
  c.cpu_threshold = 0.55;
  char *s = po_config_to_json(&c);
  assert_non_null(s);
  po_config_defaults(&d);
  char err[256];
  assert_int_equal(po_config_load_json(&d, s, err, sizeof err), 0);
  assert_memory_equal(&c, &d, offsetof(po_config, key_origin)); /* the values; origins differ */
  po_free(s);
  assert_true(po_config_key_count() >= 4);
  assert_string_equal(po_config_key_name(0), "ENABLE_PROFILING");
  assert_null(po_config_key_name(po_config_key_count()));
}

static void test_errors_have_names(void **state) {
  (void)state;
  assert_string_equal(po_err_name(PO_ECONFIG), "ECONFIG");
  assert_string_equal(po_strerror(0), "success");
  assert_string_equal(po_strerror(-999), "unknown error");
}

/* ---- warnings, strict numbers, messages that name the variable ------------------------------ */

typedef struct {
  int count;
  int level[16];
  char msg[16][512];
} captured_log;

static void capture(int level, const char *message, void *user) {
  captured_log *c = user;
  if (c->count >= 16) return;
  c->level[c->count] = level;
  snprintf(c->msg[c->count], sizeof c->msg[0], "%s", message);
  c->count++;
}

/* The captured message that contains `needle`, or NULL. */
static const char *logged(const captured_log *c, const char *needle) {
  for (int i = 0; i < c->count; i++)
    if (strstr(c->msg[i], needle)) return c->msg[i];
  return NULL;
}

static void test_json_unknown_key_warns_with_the_closest_and_is_skipped(void **state) {
  (void)state;
  captured_log log = {0};
  po_set_log_callback(capture, &log);
  po_config c;
  po_config_defaults(&c);
  char err[256];
  assert_int_equal(po_config_load_json(&c, "{\"ENABLE_CACHING\": false}", err, sizeof err), 0);
  assert_int_equal(log.count, 0); /* a known key: no warning */
  assert_int_equal(po_config_load_json(&c, "{\"CPU_TRESHOLD\": 0.3, \"CACHE_POLICY\": \"lru\"}",
                                       err, sizeof err),
                   0);
  po_set_log_callback(NULL, NULL);
  assert_int_equal(c.enable_caching, 0);
  assert_int_equal(c.cache_policy, PO_CACHE_LRU); /* the rest applied */
  assert_true(c.cpu_threshold > 0.79);            /* the unknown key changed nothing */
  const char *w = logged(&log, "'CPU_TRESHOLD'");
  assert_non_null(w);
  assert_non_null(strstr(w, "closest: CPU_THRESHOLD"));
  assert_int_equal(log.level[0], 1);
}

static void test_file_warning_names_the_file(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/typo.json", support_tmpdir());
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"MONITOR_INTERVAL\": 500}", f);
  fclose(f);
  captured_log log = {0};
  po_set_log_callback(capture, &log);
  po_config c;
  po_config_defaults(&c);
  char err[256];
  assert_int_equal(po_config_load_file(&c, path, err, sizeof err), 0);
  po_set_log_callback(NULL, NULL);
  const char *w = logged(&log, "'MONITOR_INTERVAL'");
  assert_non_null(w);
  assert_non_null(strstr(w, path));
  assert_non_null(strstr(w, "MONITOR_INTERVAL_MS"));
}

static void test_env_unknown_variable_warns_like_json(void **state) {
  (void)state;
  setenv("PERFOPT_CPU_TRESHOLD", "0.5", 1);
  setenv("PERFOPT_HEAP_MODE", "exact", 1); /* read by the heap shim: never warned about */
  setenv("PERFOPT_OUT", "/tmp/x.json", 1);
  captured_log log = {0};
  po_set_log_callback(capture, &log);
  po_config c;
  po_config_defaults(&c);
  char err[256];
  int rc = po_config_from_env(&c, err, sizeof err);
  po_set_log_callback(NULL, NULL);
  unsetenv("PERFOPT_CPU_TRESHOLD");
  unsetenv("PERFOPT_HEAP_MODE");
  unsetenv("PERFOPT_OUT");
  assert_int_equal(rc, 0);
  const char *w = logged(&log, "PERFOPT_CPU_TRESHOLD");
  assert_non_null(w);
  assert_non_null(strstr(w, "closest: PERFOPT_CPU_THRESHOLD"));
  for (int i = 0; i < log.count; i++) assert_int_equal(log.level[i], 1);
  assert_null(logged(&log, "PERFOPT_HEAP_MODE"));
  assert_null(logged(&log, "PERFOPT_OUT"));
  /* a misspelled documented variable is matched against those too */
  setenv("PERFOPT_PROFILNG", "0", 1);
  memset(&log, 0, sizeof log);
  po_set_log_callback(capture, &log);
  assert_int_equal(po_config_from_env(&c, err, sizeof err), 0);
  po_set_log_callback(NULL, NULL);
  unsetenv("PERFOPT_PROFILNG");
  assert_non_null(logged(&log, "closest: PERFOPT_PROFILING"));
}

static void test_numbers_are_strictly_decimal(void **state) {
  (void)state;
  static const char *const bad_int[] = {"0x10",
                                        " 50",
                                        "50 ",
                                        "",
                                        "+",
                                        "-",
                                        "5O",
                                        "1e",
                                        "inf",
                                        "nan",
                                        "1,5",
                                        "12.5",
                                        "99999999999999999999"};
  static const char *const bad_double[] = {"0x1p-2", " 0.5",  "0.5 ", "",   ".",  "inf",
                                           "nan",    "1e400", "0,5",  "e5", "1e+"};
  po_config c, before;
  po_config_defaults(&c);
  before = c;
  char err[256];
  for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++) {
    assert_int_equal(po_config_set(&c, "MONITOR_INTERVAL_MS", bad_int[i], err, sizeof err),
                     PO_ECONFIG);
    assert_non_null(strstr(err, "MONITOR_INTERVAL_MS"));
  }
  for (size_t i = 0; i < sizeof bad_double / sizeof bad_double[0]; i++)
    assert_int_equal(po_config_set(&c, "CPU_THRESHOLD", bad_double[i], err, sizeof err),
                     PO_ECONFIG);
  assert_memory_equal(&c, &before, sizeof c);
  /* positive controls */
  assert_int_equal(po_config_set(&c, "MONITOR_INTERVAL_MS", "1e3", err, sizeof err), 0);
  assert_int_equal(c.monitor_interval_ms, 1000);
  assert_int_equal(po_config_set(&c, "MONITOR_INTERVAL_MS", "+50", err, sizeof err), 0);
  assert_int_equal(c.monitor_interval_ms, 50);
  assert_int_equal(po_config_set(&c, "CPU_THRESHOLD", ".25", err, sizeof err), 0);
  assert_true(c.cpu_threshold == 0.25);
  assert_int_equal(po_config_set(&c, "CPU_THRESHOLD", "5e-1", err, sizeof err), 0);
  assert_true(c.cpu_threshold == 0.5);
  /* integers are exact past 2^53 */
  assert_int_equal(po_config_set(&c, "CACHE_BUDGET_BYTES", "9007199254740993", err, sizeof err), 0);
  assert_true(c.cache_budget_bytes == INT64_C(9007199254740993));
}

static void test_env_errors_name_the_variable(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  char err[256];
  setenv("PERFOPT_CPU_THRESHOLD", "7", 1);
  assert_int_equal(po_config_from_env(&c, err, sizeof err), PO_ECONFIG);
  unsetenv("PERFOPT_CPU_THRESHOLD");
  assert_non_null(strstr(err, "PERFOPT_CPU_THRESHOLD: invalid value '7'"));
  assert_non_null(strstr(err, "0 to 1"));
  setenv("PERFOPT_PROFILING", "maybe", 1);
  assert_int_equal(po_config_from_env(&c, err, sizeof err), PO_ECONFIG);
  unsetenv("PERFOPT_PROFILING");
  assert_non_null(strstr(err, "PERFOPT_PROFILING: invalid value 'maybe'"));
}

static void test_optimizer_create_names_the_bad_variable_in_last_error(void **state) {
  (void)state;
  captured_log log = {0};
  po_set_log_callback(capture, &log);
  setenv("PERFOPT_MONITOR_INTERVAL_MS", "0x10", 1);
  po_optimizer *opt = NULL;
  int rc = po_optimizer_create(NULL, &opt);
  unsetenv("PERFOPT_MONITOR_INTERVAL_MS");
  po_set_log_callback(NULL, NULL);
  assert_int_equal(rc, PO_ECONFIG);
  assert_null(opt);
  const char *e = po_last_error();
  assert_non_null(strstr(e, "PERFOPT_MONITOR_INTERVAL_MS"));
  assert_non_null(strstr(e, "'0x10'"));
  assert_non_null(strstr(e, "an integer from 10 to 3600000"));
  const char *m = logged(&log, "PERFOPT_MONITOR_INTERVAL_MS");
  assert_non_null(m);
  assert_int_equal(log.level[0], 0);
  /* positive control: a valid value creates the optimizer */
  setenv("PERFOPT_BACKGROUND_MONITORING", "0", 1);
  rc = po_optimizer_create(NULL, &opt);
  unsetenv("PERFOPT_BACKGROUND_MONITORING");
  assert_int_equal(rc, 0);
  po_optimizer_destroy(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_hold_the_seed_keys),
      cmocka_unit_test(test_set_parses_each_type),
      cmocka_unit_test(test_errors_name_the_key_and_what_is_allowed),
      cmocka_unit_test(test_json_is_all_or_nothing),
      cmocka_unit_test(test_file_then_environment_override_defaults),
      cmocka_unit_test(test_each_key_says_where_its_value_came_from),
      cmocka_unit_test(test_to_json_round_trips),
      cmocka_unit_test(test_errors_have_names),
      cmocka_unit_test(test_json_unknown_key_warns_with_the_closest_and_is_skipped),
      cmocka_unit_test(test_file_warning_names_the_file),
      cmocka_unit_test(test_env_unknown_variable_warns_like_json),
      cmocka_unit_test(test_numbers_are_strictly_decimal),
      cmocka_unit_test(test_env_errors_name_the_variable),
      cmocka_unit_test(test_optimizer_create_names_the_bad_variable_in_last_error),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
