/* A build with -DPERFOPT_DISABLE compiles the profiling macros away entirely. */
#define PERFOPT_DISABLE 1

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "perfopt.h"
#include "support/support.h"

static int work(int x) {
  PO_PROFILE_FUNCTION();
  PO_SCOPE("disabled_scope");
  int y = 0;
  PO_ZONE("disabled_zone") {
    y = x * 2;
  }
  return y;
}

static void test_macros_compile_to_nothing(void **state) {
  (void)state;
  assert_int_equal(work(21), 42);
  po_report *rep = support_profile_report();
  assert_null(support_find_function(po_report_json(rep), "work"));
  assert_null(support_find_function(po_report_json(rep), "disabled_scope"));
  assert_null(support_find_function(po_report_json(rep), "disabled_zone"));
  po_report_destroy(rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_macros_compile_to_nothing)};
  return cmocka_run_group_tests_name("disabled", tests, NULL, NULL);
}
