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
  assert_non_null(strstr(err, "CPU_THRESHOL"));
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
  assert_int_equal(po_config_load_json(&c, "{\"BOGUS\": 1}", err, sizeof err), PO_ECONFIG);
  assert_non_null(strstr(err, "BOGUS"));
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
  assert_memory_equal(&c, &d, sizeof c);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_hold_the_seed_keys),
      cmocka_unit_test(test_set_parses_each_type),
      cmocka_unit_test(test_errors_name_the_key_and_what_is_allowed),
      cmocka_unit_test(test_json_is_all_or_nothing),
      cmocka_unit_test(test_file_then_environment_override_defaults),
      cmocka_unit_test(test_to_json_round_trips),
      cmocka_unit_test(test_errors_have_names),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
