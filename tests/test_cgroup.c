/* Limits that apply to the process, against fake roots for each cgroup layout found wrong on
 * real machines (tests/fakes/proc/<case>/): a v1 limit on a parent, a v1 parent hidden by the
 * cgroup namespace, a v1 CPU quota on the process's own cgroup, a v2 cpu.max on a parent, v2
 * memory.high as a soft limit with swap.max, and the configured budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "linux/cgroup.h"
#include "platform.h"
#include "support/support.h"

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)
#define FAKES "tests/fakes/proc/"

static po_system_sample *sample_with_budget(const char *root, int64_t budget) {
  po_probe *p = NULL;
  po_system_sample *s = malloc(sizeof *s);
  assert_non_null(s);
  assert_int_equal(po__probe_create_at(root, &p), 0);
  po__probe_set_memory_budget(p, budget);
  assert_int_equal(po_probe_system(p, s), 0);
  po_probe_destroy(p);
  return s;
}

static po_system_sample *sample_of(const char *root) {
  return sample_with_budget(root, 0);
}

static void test_v1_limit_on_a_parent_applies(void **state) {
  (void)state;
  po_system_sample *s = sample_of(FAKES "v1_parent_limit");
  assert_int_equal(s->limit_source, PO_LIMIT_CGROUP);
  assert_int_equal(s->memory_limit_bytes, 2 * GIB);
  assert_int_equal(s->cgroup_memory_max_bytes, 2 * GIB);
  /* usage is the limiting parent's (it counts the siblings too): 1.5 GiB - 512 MiB inactive */
  assert_int_equal(s->cgroup_memory_current_bytes, 1536 * MIB);
  assert_int_equal(s->effective_available_bytes, 1 * GIB);
  assert_int_equal(s->cgroup_swap_max_bytes, 3 * GIB);
  free(s);

  po__cgroup cg;
  po__cgroup_discover(FAKES "v1_parent_limit", &cg);
  assert_int_equal(cg.version, 1);
  assert_string_equal(cg.memory_max_from,
                      "cgroup v1 /sys/fs/cgroup/memory/job/memory.limit_in_bytes");
  assert_int_equal(cg.swap_includes_memory, 1);
  assert_int_equal(cg.v1_limit_in_stat, 0);
}

static void test_v1_parent_hidden_by_the_namespace_is_read_from_memory_stat(void **state) {
  (void)state;
  po_system_sample *s = sample_of(FAKES "v1_hidden_parent");
  assert_int_equal(s->limit_source, PO_LIMIT_CGROUP);
  assert_int_equal(s->memory_limit_bytes, 3 * GIB);
  /* 1 GiB used - 256 MiB inactive file */
  assert_int_equal(s->effective_available_bytes, 3 * GIB - 768 * MIB);
  free(s);
  po__cgroup cg;
  po__cgroup_discover(FAKES "v1_hidden_parent", &cg);
  assert_int_equal(cg.v1_limit_in_stat, 1);
  assert_string_equal(cg.memory_max_from, "cgroup v1 hierarchical_memory_limit in "
                                          "/sys/fs/cgroup/memory/memory.stat");
}

static void test_v1_cpu_quota_on_the_own_cgroup(void **state) {
  (void)state;
  char from[192];
  double cores = po__cgroup_cpu_limit(FAKES "v1_cpu_quota", from, sizeof from);
  assert_true(fabs(cores - 1.5) < 1e-9);
  assert_string_equal(from, "cgroup v1 /sys/fs/cgroup/cpu/batch/job7/cpu.cfs_quota_us");
  po_hardware hw;
  assert_int_equal(po__hw_facts(FAKES "v1_cpu_quota", NULL, &hw), 0);
  assert_true(fabs(hw.cgroup_cpu_limit - 1.5) < 1e-9);
  assert_string_equal(hw.cpu_limit_from, from);
  /* Positive control: no memory limit in this layout, so memory is judged against the machine. */
  assert_int_equal(hw.memory_limit_source, PO_LIMIT_SYSTEM);
  assert_string_equal(hw.memory_max_from, "");
}

static void test_v2_cpu_max_on_a_parent(void **state) {
  (void)state;
  char from[192];
  double cores = po__cgroup_cpu_limit(FAKES "v2_parent_cpu", from, sizeof from);
  assert_true(fabs(cores - 0.5) < 1e-9);
  assert_string_equal(from, "cgroup v2 /sys/fs/cgroup/user.slice/cpu.max");
  /* The container case (cpu.max on the own cgroup) still reads 2 cores. */
  cores = po__cgroup_cpu_limit(FAKES "container", from, sizeof from);
  assert_true(fabs(cores - 2.0) < 1e-9);
  assert_string_equal(from, "cgroup v2 /sys/fs/cgroup/cpu.max");
}

static void test_v2_memory_high_is_a_soft_limit(void **state) {
  (void)state;
  po_system_sample *s = sample_of(FAKES "v2_memory_high");
  assert_int_equal(s->limit_source, PO_LIMIT_CGROUP_HIGH);
  assert_int_equal(s->memory_limit_bytes, 6 * GIB);
  assert_int_equal(s->cgroup_memory_high_bytes, 6 * GIB);
  assert_int_equal(s->cgroup_memory_max_bytes, 0); /* the own memory.max is "max" */
  assert_int_equal(s->cgroup_swap_max_bytes, 1 * GIB);
  /* 2.5 GiB current - 512 MiB inactive file = 2 GiB used of 6 */
  assert_int_equal(s->effective_available_bytes, 4 * GIB);
  free(s);
  po_hardware hw;
  assert_int_equal(po__hw_facts(FAKES "v2_memory_high", NULL, &hw), 0);
  assert_int_equal(hw.memory_limit_source, PO_LIMIT_CGROUP_HIGH);
  assert_int_equal(hw.limit_from_cgroup, 1);
  assert_string_equal(hw.memory_high_from, "cgroup v2 (soft) /sys/fs/cgroup/app/worker/memory.high");
  assert_string_equal(hw.memory_max_from, "cgroup v2 /sys/fs/cgroup/app/memory.max");
  assert_string_equal(hw.swap_max_from, "cgroup v2 /sys/fs/cgroup/app/worker/memory.swap.max");
  assert_string_equal(po_limit_source_name(hw.memory_limit_source), "cgroup_high");
}

static void test_budget_below_the_cgroup_limit_becomes_the_limit(void **state) {
  (void)state;
  /* container: 4 GiB cgroup limit, 1.5 GiB working set */
  po_system_sample *s = sample_with_budget(FAKES "container", (int64_t)(3 * GIB));
  assert_int_equal(s->limit_source, PO_LIMIT_CONFIG);
  assert_int_equal(s->memory_limit_bytes, 3 * GIB);
  assert_int_equal(s->effective_available_bytes, 1536 * MIB);
  assert_int_equal(s->cgroup_memory_max_bytes, 4 * GIB); /* still reported */
  free(s);
  /* A budget above the cgroup limit changes nothing. */
  s = sample_with_budget(FAKES "container", (int64_t)(8 * GIB));
  assert_int_equal(s->limit_source, PO_LIMIT_CGROUP);
  assert_int_equal(s->memory_limit_bytes, 4 * GIB);
  free(s);
}

static void test_budget_without_a_cgroup_limit_counts_this_process(void **state) {
  (void)state;
  /* v1_cpu_quota has no memory limit; its statm says 2560 resident pages */
  po_system_sample *s = sample_with_budget(FAKES "v1_cpu_quota", (int64_t)GIB);
  assert_int_equal(s->limit_source, PO_LIMIT_CONFIG);
  assert_int_equal(s->memory_limit_bytes, GIB);
  assert_int_equal(s->effective_available_bytes, GIB - 2560ull * (uint64_t)sysconf(_SC_PAGESIZE));
  free(s);
  po_config cfg;
  po_config_defaults(&cfg);
  po__strlcpy(cfg.proc_root, FAKES "v1_cpu_quota", sizeof cfg.proc_root);
  cfg.memory_limit_bytes = (int64_t)GIB;
  po_hardware hw;
  assert_int_equal(po_hardware_probe(&cfg, 0, &hw), 0);
  assert_int_equal(hw.memory_limit_source, PO_LIMIT_CONFIG);
  assert_int_equal(hw.memory_budget_bytes, GIB);
  assert_int_equal(hw.memory_limit_bytes, GIB);
}

static void test_limit_values(void **state) {
  (void)state;
  uint64_t v;
  assert_true(po__cgroup_parse_limit("max\n", &v) && v == 0);
  assert_true(po__cgroup_parse_limit("9223372036854771712\n", &v) && v == 0);
  assert_true(po__cgroup_parse_limit(" 4096\n", &v) && v == 4096);
  assert_false(po__cgroup_parse_limit("-1\n", &v));
  const char st[] = "cache 5\nhierarchical_memory_limit 2048\nhierarchical_memsw_limit 4096";
  assert_int_equal(po__cgroup_stat_value(st, sizeof st - 1, "hierarchical_memory_limit"), 2048);
  assert_int_equal(po__cgroup_stat_value(st, sizeof st - 1, "hierarchical_memsw_limit"), 4096);
  assert_int_equal(po__cgroup_stat_value(st, sizeof st - 1, "hierarchical"), 0);
  assert_int_equal(po__cgroup_stat_value(st, 12, "hierarchical_memory_limit"), 0); /* cut */
}

/* On the real machine: every limit found comes with the file it was read from. */
static void test_real_limits_say_where_they_come_from(void **state) {
  (void)state;
  po_hardware hw;
  assert_int_equal(po__hw_facts("", NULL, &hw), 0);
  assert_true(hw.memory_limit_bytes > 0);
  if (hw.cgroup_memory_max_bytes) assert_true(strlen(hw.memory_max_from) > 0);
  if (hw.cgroup_cpu_limit > 0) assert_true(strlen(hw.cpu_limit_from) > 0);
  if (hw.memory_limit_source == PO_LIMIT_SYSTEM) assert_int_equal(hw.memory_limit_bytes, hw.memory_total_bytes);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v1_limit_on_a_parent_applies),
      cmocka_unit_test(test_v1_parent_hidden_by_the_namespace_is_read_from_memory_stat),
      cmocka_unit_test(test_v1_cpu_quota_on_the_own_cgroup),
      cmocka_unit_test(test_v2_cpu_max_on_a_parent),
      cmocka_unit_test(test_v2_memory_high_is_a_soft_limit),
      cmocka_unit_test(test_budget_below_the_cgroup_limit_becomes_the_limit),
      cmocka_unit_test(test_budget_without_a_cgroup_limit_counts_this_process),
      cmocka_unit_test(test_limit_values),
      cmocka_unit_test(test_real_limits_say_where_they_come_from),
  };
  return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
