/* The optimizer as the composition root: its own cache from CACHE_BUDGET_BYTES / CACHE_POLICY,
 * threshold firings routed to cleanup, a bad configuration explained by po_last_error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"
#include "support/support.h"

static po_config quiet_config(void) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  return c;
}

static void test_own_cache_follows_the_cache_keys(void **state) {
  (void)state;
  po_config c = quiet_config();
  char err[256];
  assert_int_equal(po_config_set(&c, "CACHE_BUDGET_BYTES", "1048576", err, sizeof err), 0);
  assert_int_equal(po_config_set(&c, "CACHE_POLICY", "s3fifo", err, sizeof err), 0);
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  po_cache *cache = po_optimizer_cache(opt);
  assert_non_null(cache);
  assert_ptr_equal(po_optimizer_cache(opt), cache); /* created once */
  po_cache_stats st;
  po_cache_get_stats(cache, &st);
  assert_int_equal(st.budget_bytes, 1048576);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *caches =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "cache"), "caches");
  assert_int_equal(cJSON_GetArraySize(caches), 1);
  const cJSON *first = cJSON_GetArrayItem(caches, 0);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "name")), "default");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "policy")), "s3fifo");
  po_report_destroy(rep);
  po_optimizer_destroy(opt); /* destroys the cache too (ASan would report a leak otherwise) */
}

static void test_caching_off_reaches_the_own_cache(void **state) {
  (void)state;
  po_config c = quiet_config();
  c.enable_caching = 0;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  po_cache *cache = po_optimizer_cache(opt);
  assert_non_null(cache);
  assert_int_equal(po_cache_enabled(cache), 0);
  po_optimizer_destroy(opt);
}

static int64_t freed_by_handler;
static void release_handler(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
  freed_by_handler++;
}

/* A memory firing pushed into the sampler reaches the cleanup registry through the optimizer. */
static void test_memory_firing_runs_cleanup(void **state) {
  (void)state;
  po_config c = quiet_config();
  c.memory_threshold = 0.5;
  c.threshold_cooldown_ms = 0;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  assert_int_equal(po_cleanup_register(opt, "h", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL,
                                       release_handler, NULL, NULL),
                   0);
  po_sample s;
  memset(&s, 0, sizeof s);
  s.cpu_utilization_ratio = 0.1;
  s.memory_limit_bytes = 100;
  s.memory_used_bytes = 40; /* below: positive control, nothing runs */
  s.disk_busy_ratio = -1;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  assert_int_equal(freed_by_handler, 0);
  s.memory_used_bytes = 70;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  assert_int_equal(freed_by_handler, 1);
  po_monitor_stats st;
  assert_int_equal(po_monitor_get_stats(opt, &st), 0);
  assert_int_equal(st.events, 1);
  po_optimizer_destroy(opt);
}

static void test_bad_environment_is_explained(void **state) {
  (void)state;
  setenv("PERFOPT_CPU_THRESHOLD", "1.7", 1);
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(NULL, &opt), PO_ECONFIG);
  assert_null(opt);
  const char *msg = po_last_error();
  assert_non_null(strstr(msg, "CPU_THRESHOLD"));
  assert_non_null(strstr(msg, "1.7"));
  unsetenv("PERFOPT_CPU_THRESHOLD");
  setenv("PERFOPT_BACKGROUND_MONITORING", "false", 1);
  assert_int_equal(po_optimizer_create(NULL, &opt), 0); /* positive control */
  po_optimizer_destroy(opt);
  unsetenv("PERFOPT_BACKGROUND_MONITORING");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_own_cache_follows_the_cache_keys),
      cmocka_unit_test(test_caching_off_reaches_the_own_cache),
      cmocka_unit_test(test_memory_firing_runs_cleanup),
      cmocka_unit_test(test_bad_environment_is_explained),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
