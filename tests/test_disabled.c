/* A build with -DPERFOPT_DISABLE compiles the profiling macros away entirely, while the library
 * still records what the function API asks for (the positive control: the same report lookup
 * finds a zone that was recorded). */
#define PERFOPT_DISABLE 1

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "perfopt.h"
#include "support/support.h"

#define STR(...) #__VA_ARGS__
#define EXPANSION(...) STR(__VA_ARGS__)

static int work(int x) {
  PO_PROFILE_FUNCTION();
  PO_SCOPE("disabled_scope");
  int y = 0;
  PO_ZONE("disabled_zone") {
    y = x * 2;
  }
  return y;
}

static void control(void) {
  static po_site site = PO_SITE_INIT("control_zone", __FILE__, __LINE__);
  po_zone_begin(&site);
  po_zone_end();
}

static void test_macros_expand_to_nothing(void **state) {
  (void)state;
  /* nothing is left of them: no site, no call, no cleanup variable */
  assert_string_equal(EXPANSION(PO_SCOPE("x")), "((void)0)");
  assert_string_equal(EXPANSION(PO_PROFILE_FUNCTION()), "((void)0)");
  assert_string_equal(EXPANSION(PO_ZONE("x")), "if (1)");
}

static void test_macros_record_nothing(void **state) {
  (void)state;
  po_profile_set_enabled(1);
  po_profile_reset();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(work(21), 42);
    control();
  }
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  /* positive control: the library is on and the lookup finds a zone recorded through the API */
  const cJSON *c = support_find_function(root, "control_zone");
  assert_non_null(c);
  assert_int_equal((long)support_num(c, "calls"), 3);
  assert_null(support_find_function(root, "work"));
  assert_null(support_find_function(root, "disabled_scope"));
  assert_null(support_find_function(root, "disabled_zone"));
  po_report_destroy(rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_macros_expand_to_nothing),
      cmocka_unit_test(test_macros_record_nothing),
  };
  return cmocka_run_group_tests_name("disabled", tests, NULL, NULL);
}
