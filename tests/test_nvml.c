/* The GPU path against the fake NVML (tests/fakes/fake_nvml.c, configured by PERFOPT_FAKE_NVML):
 * 0, 1 and 4 devices, init and call failures, the v1 fallback, long process lists, and no
 * library at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "platform.h"

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

static po_config cfg;
static po_gpu_info devs[8];
static char reason[256];

static int setup(void **state) {
  (void)state;
  const char *build = getenv("BUILD");
  po_config_defaults(&cfg);
  snprintf(cfg.nvml_library, sizeof cfg.nvml_library, "%s/tests/fakes/libfake_nvml.so",
           build && build[0] ? build : "build");
  return 0;
}

static size_t query(const char *fake) {
  size_t count = 99;
  setenv("PERFOPT_FAKE_NVML", fake, 1);
  memset(devs, 0xAB, sizeof devs);
  assert_int_equal(po_gpu_usage(&cfg, devs, 8, &count, reason, sizeof reason), 0);
  return count;
}

static void test_no_devices_is_no_gpu_with_reason(void **state) {
  (void)state;
  assert_int_equal(query("0"), 0);
  assert_string_equal(reason, "NVML reports no GPU devices");
}

static void test_one_device_values(void **state) {
  (void)state;
  assert_int_equal(query("1"), 1);
  assert_string_equal(reason, "");
  const po_gpu_info *d = &devs[0];
  assert_int_equal(d->index, 0);
  assert_string_equal(d->name, "Fake GPU 0");
  assert_string_equal(d->uuid, "GPU-fake-0000");
  /* the v2 call succeeded, so its version word was encoded as NVML defines it */
  assert_int_equal(d->memory_v2, 1);
  assert_int_equal(d->memory_total_bytes, 8 * GIB);
  assert_int_equal(d->memory_used_bytes, 1 * GIB);
  assert_int_equal(d->memory_reserved_bytes, 256 * MIB);
  assert_int_equal(d->memory_free_bytes, 8 * GIB - 1 * GIB - 256 * MIB);
  assert_true(fabs(d->utilization_gpu_ratio - 0.10) < 1e-9);
  assert_true(fabs(d->utilization_memory_ratio - 0.05) < 1e-9);
  assert_true(fabs(d->temperature_celsius - 40.0) < 1e-9);
  assert_true(fabs(d->power_watts - 100.0) < 1e-9);
  assert_int_equal(d->processes_known, 1);
  assert_int_equal(d->process_count, 2);
  assert_int_equal(d->processes[0].pid, 1000);
  assert_int_equal(d->processes[0].used_memory_bytes, 512 * MIB);
  assert_int_equal(d->processes[1].used_memory_bytes, 256 * MIB);
  assert_string_equal(d->error, "");
}

static void test_every_device_of_four(void **state) {
  (void)state;
  assert_int_equal(query("4"), 4);
  for (unsigned i = 0; i < 4; i++) {
    char name[32];
    snprintf(name, sizeof name, "Fake GPU %u", i);
    assert_int_equal(devs[i].index, i);
    assert_string_equal(devs[i].name, name);
    assert_int_equal(devs[i].memory_total_bytes, (i + 1) * 8 * GIB);
    assert_int_equal(devs[i].memory_used_bytes, (i + 1) * GIB);
    assert_true(fabs(devs[i].temperature_celsius - (40.0 + i)) < 1e-9);
    assert_int_equal(devs[i].process_count, i == 0 ? 2 : 0);
  }
}

static void test_fewer_slots_than_devices_says_so(void **state) {
  (void)state;
  size_t count = 0;
  setenv("PERFOPT_FAKE_NVML", "4", 1);
  assert_int_equal(po_gpu_usage(&cfg, devs, 2, &count, reason, sizeof reason), 0);
  assert_int_equal(count, 2);
  assert_non_null(strstr(reason, "2 more devices"));
}

static void test_init_failure_is_no_gpu_not_an_error(void **state) {
  (void)state;
  assert_int_equal(query("fail-init"), 0);
  assert_non_null(strstr(reason, "nvmlInit"));
  assert_non_null(strstr(reason, "Driver Not Loaded"));
}

static void test_count_failure_is_no_gpu(void **state) {
  (void)state;
  assert_int_equal(query("fail-count"), 0);
  assert_non_null(strstr(reason, "nvmlDeviceGetCount"));
}

static void test_failing_calls_keep_the_device_with_its_error(void **state) {
  (void)state;
  assert_int_equal(query("2,fail-calls"), 2);
  assert_non_null(strstr(devs[1].error, "GPU is lost"));
  assert_true(devs[1].utilization_gpu_ratio == -1.0);
  assert_true(devs[1].temperature_celsius == -1.0);
  assert_int_equal(devs[1].memory_total_bytes, 0);
  assert_int_equal(devs[1].processes_known, 0);
}

static void test_v1_memory_fallback_counts_reserved_as_used(void **state) {
  (void)state;
  assert_int_equal(query("1,v1-only"), 1);
  assert_int_equal(devs[0].memory_v2, 0);
  assert_int_equal(devs[0].memory_used_bytes, 1 * GIB + 256 * MIB);
  assert_int_equal(devs[0].memory_reserved_bytes, 0);
  assert_int_equal(devs[0].memory_total_bytes, 8 * GIB);
}

static void test_long_process_list_is_truncated_and_counted(void **state) {
  (void)state;
  assert_int_equal(query("1,many-procs"), 1);
  assert_int_equal(devs[0].processes_known, 1);
  assert_int_equal(devs[0].process_count, PO_GPU_MAX_PROCESSES);
  assert_int_equal(devs[0].processes_dropped, 40 - PO_GPU_MAX_PROCESSES);
}

static void test_missing_library_is_no_gpu_with_reason(void **state) {
  (void)state;
  po_config c;
  size_t count = 5;
  po_config_defaults(&c);
  po__strlcpy(c.nvml_library, "/nonexistent/libnvidia-ml.so.1", sizeof c.nvml_library);
  assert_int_equal(po_gpu_usage(&c, devs, 8, &count, reason, sizeof reason), 0);
  assert_int_equal(count, 0);
  assert_non_null(strstr(reason, "/nonexistent/libnvidia-ml.so.1"));
  assert_int_equal(po_gpu_usage(&c, NULL, 0, &count, NULL, 0), 0);
  assert_int_equal(po_gpu_usage(&c, NULL, 3, &count, NULL, 0), PO_EINVAL);
}

static void test_session_stays_open_between_queries(void **state) {
  (void)state;
  po__nvml *n = NULL;
  size_t count = 0, dropped = 0;
  setenv("PERFOPT_FAKE_NVML", "4", 1);
  assert_int_equal(po__nvml_create(cfg.nvml_library, &n, reason, sizeof reason), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(po__nvml_query(n, devs, 3, &count, &dropped, reason, sizeof reason), 0);
    assert_int_equal(count, 3);
    assert_int_equal(dropped, 1);
  }
  po__nvml_destroy(n);
  po__nvml_destroy(NULL);
}

static void test_optimal_targets_leave_more_headroom_on_small_devices(void **state) {
  (void)state;
  po_gpu_target t[4];
  assert_int_equal(query("4"), 4);
  assert_int_equal(po_gpu_optimal_targets(devs, 4, t), 0);
  /* 8 GiB -> 0.80; 16, 24, 32 GiB -> 0.85 */
  assert_true(fabs(t[0].memory_threshold_ratio - 0.80) < 1e-9);
  assert_true(fabs(t[3].memory_threshold_ratio - 0.85) < 1e-9);
  assert_int_equal(t[0].target_bytes + t[0].headroom_bytes, 8 * GIB);
  assert_int_equal(t[3].index, 3);
  assert_non_null(strstr(t[0].why, "hardware default"));
  assert_int_equal(po_gpu_optimal_targets(NULL, 1, t), PO_EINVAL);
}

static void test_hardware_probe_lists_gpus_and_gpu_threshold_follows_smallest(void **state) {
  (void)state;
  po_hardware *hw = malloc(sizeof *hw);
  po_thresholds th;
  po_config c = cfg;
  po__strlcpy(c.proc_root, "tests/fakes/proc/container", sizeof c.proc_root);
  c.gpu_memory_threshold = 0;
  setenv("PERFOPT_FAKE_NVML", "4", 1);
  assert_int_equal(po_hardware_probe(&c, 1, hw), 0);
  assert_int_equal(hw->gpu_count, 4);
  assert_string_equal(hw->gpus[2].name, "Fake GPU 2");
  assert_int_equal(po_thresholds_resolve(&c, hw, &th), 0);
  assert_true(fabs(th.t[PO_METRIC_GPU_MEMORY].value - 0.80) < 1e-9);
  assert_non_null(strstr(th.t[PO_METRIC_GPU_MEMORY].why, "smallest GPU 8.0 GiB"));
  setenv("PERFOPT_FAKE_NVML", "fail-init", 1);
  assert_int_equal(po_hardware_probe(&c, 1, hw), 0);
  assert_int_equal(hw->gpu_count, 0);
  assert_non_null(strstr(hw->gpu_reason, "Driver Not Loaded"));
  free(hw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_devices_is_no_gpu_with_reason),
      cmocka_unit_test(test_one_device_values),
      cmocka_unit_test(test_every_device_of_four),
      cmocka_unit_test(test_fewer_slots_than_devices_says_so),
      cmocka_unit_test(test_init_failure_is_no_gpu_not_an_error),
      cmocka_unit_test(test_count_failure_is_no_gpu),
      cmocka_unit_test(test_failing_calls_keep_the_device_with_its_error),
      cmocka_unit_test(test_v1_memory_fallback_counts_reserved_as_used),
      cmocka_unit_test(test_long_process_list_is_truncated_and_counted),
      cmocka_unit_test(test_missing_library_is_no_gpu_with_reason),
      cmocka_unit_test(test_session_stays_open_between_queries),
      cmocka_unit_test(test_optimal_targets_leave_more_headroom_on_small_devices),
      cmocka_unit_test(test_hardware_probe_lists_gpus_and_gpu_threshold_follows_smallest),
  };
  return cmocka_run_group_tests_name("nvml", tests, setup, NULL);
}
