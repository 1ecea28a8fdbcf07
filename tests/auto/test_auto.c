/* Automatic instrumentation: this file is compiled with -finstrument-functions and linked with
 * libperfopt-auto; every function is profiled and named from the symbol table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "perfopt.h"
#include "profile/profile.h"
#include "support/support.h"

static volatile int sink;

__attribute__((noinline)) static void auto_static_helper(void) {
  sink++;
}

__attribute__((noinline)) void auto_exported_worker(void);
__attribute__((noinline)) void auto_exported_worker(void) {
  for (int i = 0; i < 3; i++) auto_static_helper();
}

__attribute__((noinline)) static void auto_tiny(void) {
  sink++;
}

static void test_functions_are_named_and_counted(void **state) {
  (void)state;
  for (int i = 0; i < 10; i++) auto_exported_worker();
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  const cJSON *w = support_find_function(root, "auto_exported_worker");
  const cJSON *h = support_find_function(root, "auto_static_helper");
  assert_non_null(w);
  assert_non_null(h); /* a static function, named through libdw */
  assert_int_equal((long)support_num(w, "calls"), 10);
  assert_int_equal((long)support_num(h, "calls"), 30);
  const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(h, "file"));
  assert_non_null(file);
  assert_non_null(strstr(file, "test_auto.c"));
  po_report_destroy(rep);
}

static void test_probe_cost_is_subtracted(void **state) {
  (void)state;
  for (int i = 0; i < 100000; i++) auto_tiny();
  po__profile_snapshot *s;
  assert_int_equal(po__profile_snapshot_create(&s), 0);
  /* both kinds of zone were measured, lazily (nothing measures at start-up) */
  assert_true(s->auto_probe_cost_ns > 0);
  assert_true(s->auto_probe_bias_ns > 0);
  assert_true(s->probe_cost_ns > 0);
  const po__prof_function *t = NULL;
  for (size_t i = 0; i < s->nfunctions; i++)
    if (!strcmp(s->functions[i].name, "auto_tiny")) t = &s->functions[i];
  assert_non_null(t);
  /* the raw probe costs about as much as its bias; a one-instruction function must be reported
     well below it once the calibrated cost is removed */
  assert_true(t->p50_seconds * 1e9 < s->auto_probe_bias_ns);
  po__profile_snapshot_destroy(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_functions_are_named_and_counted),
      cmocka_unit_test(test_probe_cost_is_subtracted),
  };
  return cmocka_run_group_tests_name("auto", tests, NULL, NULL);
}
