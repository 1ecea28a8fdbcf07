/* The sampler: the threshold state machine (pure), the thread's life cycle, fork, fake /proc and
 * fake NVML sources, firings and the report's resources and gpu sections. No timing assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor/memory.h"
#include "monitor/sampler.h"
#include "optimizer.h"
#include "perfopt.h"
#include "support/support.h"

#define MS 1000000ull

/* ---- the state machine ---------------------------------------------------------------------- */

static void test_hovering_at_the_threshold_fires_once(void **state) {
  (void)state;
  po__threshold_state st;
  memset(&st, 0, sizeof st);
  const double v[] = {0.5, 0.8, 0.79, 0.81, 0.78, 0.80, 0.76, 0.82, 0.9};
  int fires = 0;
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    fires += po__threshold_step(&st, v[i], 0.8, 0.05, i * 1000 * MS, 0);
  assert_int_equal(fires, 1);
  assert_int_equal(st.crossings, 1);
}

static void test_falling_below_the_hysteresis_band_rearms(void **state) {
  (void)state;
  po__threshold_state st;
  memset(&st, 0, sizeof st);
  assert_int_equal(po__threshold_step(&st, 0.85, 0.8, 0.05, 0, 0), 1);
  assert_int_equal(po__threshold_step(&st, 0.76, 0.8, 0.05, 1, 0), 0); /* inside the band */
  assert_int_equal(po__threshold_step(&st, 0.85, 0.8, 0.05, 2, 0), 0);
  assert_int_equal(po__threshold_step(&st, 0.74, 0.8, 0.05, 3, 0), 0); /* re-armed */
  assert_int_equal(po__threshold_step(&st, 0.80, 0.8, 0.05, 4, 0), 1); /* second crossing */
  assert_int_equal(st.crossings, 2);
}

static void test_cooldown_holds_a_crossing_until_it_ends(void **state) {
  (void)state;
  po__threshold_state st;
  memset(&st, 0, sizeof st);
  uint64_t cool = 5000 * MS;
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 0, cool), 1);
  assert_int_equal(po__threshold_step(&st, 0.1, 0.8, 0.05, 1000 * MS, cool), 0);
  /* A new crossing 2 s after the firing: held. */
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 2000 * MS, cool), 0);
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 4999 * MS, cool), 0);
  /* Still above when the cool-down ends: it fires then, once. */
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 5000 * MS, cool), 1);
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 9000 * MS, cool), 0);
}

static void test_crossing_that_ends_inside_the_cooldown_is_counted(void **state) {
  (void)state;
  po__threshold_state st;
  memset(&st, 0, sizeof st);
  uint64_t cool = 5000 * MS;
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 0, cool), 1);
  assert_int_equal(po__threshold_step(&st, 0.1, 0.8, 0.05, 1000 * MS, cool), 0);
  assert_int_equal(po__threshold_step(&st, 0.9, 0.8, 0.05, 2000 * MS, cool), 0);
  assert_int_equal(po__threshold_step(&st, 0.1, 0.8, 0.05, 3000 * MS, cool), 0);
  assert_int_equal(po__threshold_step(&st, 0.1, 0.8, 0.05, 9000 * MS, cool), 0);
  assert_int_equal(st.suppressed, 1);
  assert_int_equal(st.crossings, 2);
}

static void test_disabled_threshold_and_unknown_values_never_fire(void **state) {
  (void)state;
  po__threshold_state st;
  memset(&st, 0, sizeof st);
  assert_int_equal(po__threshold_step(&st, 1.0, 0, 0.05, 0, 0), 0);
  assert_int_equal(po__threshold_step(&st, NAN, 0.5, 0.05, 0, 0), 0);
  assert_int_equal(st.crossings, 0);
  assert_int_equal(po__threshold_level(0.85, 0.8), PO_CLEANUP_NORMAL);
  assert_int_equal(po__threshold_level(0.95, 0.8), PO_CLEANUP_AGGRESSIVE);
}

/* ---- the thread ----------------------------------------------------------------------------- */

static po_optimizer *make_opt(int64_t interval_ms, const char *proc_root) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.monitor_interval_ms = interval_ms;
  if (proc_root) snprintf(c.proc_root, sizeof c.proc_root, "%s", proc_root);
  snprintf(c.nvml_library, sizeof c.nvml_library, "/nonexistent/libnvidia-ml.so.1");
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  return opt;
}

static void wait_for_samples(po_optimizer *opt, uint64_t n) {
  po_monitor_stats s;
  double deadline = support_now() + SUPPORT_WAIT_SECONDS;
  for (;;) {
    assert_int_equal(po_monitor_get_stats(opt, &s), 0);
    if (s.samples >= n) return;
    if (support_now() > deadline)
      fail_msg("%llu samples after %.0f s, waiting for %llu", (unsigned long long)s.samples,
               SUPPORT_WAIT_SECONDS, (unsigned long long)n);
    support_poll_pause();
  }
}

static void test_start_and_stop_repeatedly(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(10, NULL);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(po_monitor_start(opt), 0);
    assert_int_equal(po_monitor_start(opt), 0); /* idempotent */
    assert_int_equal(po_monitor_running(opt), 1);
    wait_for_samples(opt, (uint64_t)i + 1);
    assert_int_equal(po_monitor_stop(opt), 0);
    assert_int_equal(po_monitor_running(opt), 0);
    assert_int_equal(po_monitor_stop(opt), 0);
  }
  po_sample s;
  assert_int_equal(po_monitor_latest(opt, &s), 0);
  assert_true(s.process_rss_bytes > 0);
  assert_true(s.memory_limit_bytes > 0);
  po_monitor_stats st;
  po_monitor_get_stats(opt, &st);
  assert_true(st.overhead_core_ratio >= 0 && st.overhead_core_ratio < 1);
  assert_true(st.series_bytes > 0 && st.series_bytes <= 1024 * 1024);
  po_optimizer_destroy(opt);
}

static void *stop_thread(void *opt) {
  return (void *)(intptr_t)po_monitor_stop(opt);
}

static void test_concurrent_stops_and_starts_are_safe(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(10, NULL);
  for (int round = 0; round < 20; round++) {
    assert_int_equal(po_monitor_start(opt), 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&t[i], NULL, stop_thread, opt), 0);
    for (int i = 0; i < 3; i++)
      assert_int_equal((intptr_t)support_join(t[i], SUPPORT_WAIT_SECONDS), 0);
    assert_int_equal(po_monitor_running(opt), 0);
  }
  po_optimizer_destroy(opt);
}

static void test_stop_does_not_wait_for_a_long_interval(void **state) {
  (void)state;
  /* One hour between samples: stop must wake the thread, not sleep the interval out (a
   * sleeping sampler would hang this test). */
  po_optimizer *opt = make_opt(3600 * 1000, NULL);
  assert_int_equal(po_monitor_start(opt), 0);
  wait_for_samples(opt, 1);
  assert_int_equal(po_monitor_stop(opt), 0);
  assert_int_equal(po_monitor_running(opt), 0);
  po_optimizer_destroy(opt);
}

/* Threads of this process named "perfopt-sampler" (the name the sampler gives itself). */
static int sampler_threads(void) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue; /* the thread has just exited */
    if (fgets(comm, sizeof comm, f) && !strcmp(comm, "perfopt-sampler\n")) n++;
    fclose(f);
  }
  closedir(d);
  return n;
}

static void test_destroy_stops_a_running_sampler(void **state) {
  (void)state;
  int before = sampler_threads();
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 1; /* started by po_optimizer_create */
  c.monitor_interval_ms = 10;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  assert_int_equal(po_monitor_running(opt), 1);
  wait_for_samples(opt, 2);
  assert_int_equal(sampler_threads(), before + 1); /* positive control: it is there, by name */
  po_optimizer_destroy(opt);
  /* The thread is joined; the kernel may list it for a moment after the join. */
  double deadline = support_now() + SUPPORT_WAIT_SECONDS;
  while (sampler_threads() != before && support_now() < deadline) support_poll_pause();
  assert_int_equal(sampler_threads(), before);
}

static void test_overhead_limit_stretches_the_interval(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.monitor_interval_ms = 10;
  c.limit_monitor_overhead = 1;
  c.monitor_cpu_budget = 1e-6; /* any tick (>= 1 us of CPU) needs more than 1 s between ticks */
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  assert_int_equal(po_monitor_start(opt), 0);
  po_monitor_stats st;
  double deadline = support_now() + SUPPORT_WAIT_SECONDS;
  for (;;) { /* the first tick sets it */
    po_monitor_get_stats(opt, &st);
    if (st.effective_interval_seconds > st.interval_seconds || support_now() > deadline) break;
    support_poll_pause();
  }
  assert_true(st.effective_interval_seconds > 0.5);
  assert_true(st.interval_seconds < 0.011);
  assert_int_equal(po_monitor_stop(opt), 0); /* and stop still wakes it at once */
  po_optimizer_destroy(opt);
}

static void test_forked_child_has_no_sampler(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(10, NULL);
  assert_int_equal(po_monitor_start(opt), 0);
  wait_for_samples(opt, 1);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* The child can still use the library: a sample on its own thread, a cleanup. */
    if (po_monitor_running(opt) != 0) _exit(1);
    if (po_monitor_stop(opt) != 0) _exit(2);
    if (po_optimize_memory(opt, PO_CLEANUP_NORMAL, NULL) != 0) _exit(3);
    _exit(0);
  }
  int status = support_wait_child(pid, SUPPORT_WAIT_SECONDS);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(po_monitor_running(opt), 1); /* the parent's sampler is untouched */
  po_optimizer_destroy(opt);
}

/* ---- fake sources --------------------------------------------------------------------------- */

static int64_t seen_freed_by_listener;
static int listener_calls, gpu_handler_calls, data_handler_calls;
static po_pressure_event last_event;
static po_sample last_sample;
static int64_t on_pressure(const po_pressure_event *ev, void *user) {
  (void)user;
  listener_calls++;
  last_event = *ev;
  if (ev->sample) last_sample = *ev->sample;
  return seen_freed_by_listener;
}
static void gpu_handler(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
  gpu_handler_calls++;
}
static void data_handler(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
  data_handler_calls++;
}

static void reset_counters(void) {
  listener_calls = gpu_handler_calls = data_handler_calls = 0;
  seen_freed_by_listener = 0;
}

static void test_fake_container_memory_is_judged_against_the_cgroup(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(1000, "tests/fakes/proc/container");
  po_sample s;
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  /* memory.max 4 GiB, memory.current 2 GiB of which 512 MiB inactive (reclaimable) file pages:
   * used 1.5 GiB, as the kubelet counts it. */
  assert_int_equal(s.memory_limit_bytes, 4ll << 30);
  assert_int_equal(s.memory_available_bytes, (5ll << 30) / 2);
  assert_int_equal(s.memory_used_bytes, (3ll << 30) / 2);
  assert_int_equal(s.gpu_count, 0);
  po_optimizer_destroy(opt);
}

static void test_memory_threshold_fires_cleanup_and_listeners_once(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.memory_threshold = 0.3; /* the fake container is at 0.375 */
  snprintf(c.proc_root, sizeof c.proc_root, "tests/fakes/proc/container");
  snprintf(c.nvml_library, sizeof c.nvml_library, "/nonexistent/libnvidia-ml.so.1");
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  reset_counters();
  seen_freed_by_listener = 4096;
  po_monitor_add_pressure_listener(opt, "cache", on_pressure, NULL, NULL);
  po_cleanup_register(opt, "drop data", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, data_handler, NULL,
                      NULL);
  po_cleanup_register(opt, "cuda", PO_RESOURCE_GPU, 0, PO_CLEANUP_NORMAL, gpu_handler, NULL, NULL);
  for (int i = 0; i < 5; i++) po_monitor_sample_now(opt, NULL); /* stays above: one crossing */
  assert_int_equal(listener_calls, 1);
  assert_int_equal(last_event.metric, PO_METRIC_MEMORY);
  assert_true(fabs(last_event.value - 0.375) < 1e-9);
  assert_true(fabs(last_event.threshold - 0.3) < 1e-9);
  assert_int_equal(last_sample.memory_limit_bytes, 4ll << 30);
  assert_int_equal(data_handler_calls, 1);
  assert_int_equal(gpu_handler_calls, 1); /* memory pressure runs the whole registry */

  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *res = cJSON_GetObjectItem(po_report_json(rep), "resources");
  const cJSON *events = cJSON_GetObjectItem(res, "events");
  assert_int_equal(cJSON_GetArraySize(events), 1);
  const cJSON *e = cJSON_GetArrayItem(events, 0);
  assert_string_equal(cJSON_GetObjectItem(e, "metric")->valuestring, "memory");
  assert_true(cJSON_GetObjectItem(e, "freed_bytes")->valuedouble >= 4096);
  const cJSON *acts = cJSON_GetObjectItem(e, "actions");
  assert_int_equal(cJSON_GetArraySize(acts), 3);
  assert_string_equal(cJSON_GetArrayItem(acts, 2)->valuestring, "listener:cache");
  /* Thresholds say where they come from. */
  const cJSON *th = cJSON_GetObjectItem(res, "thresholds");
  int found_memory = 0;
  for (int i = 0; i < cJSON_GetArraySize(th); i++) {
    const cJSON *t = cJSON_GetArrayItem(th, i);
    if (!strcmp(cJSON_GetObjectItem(t, "metric")->valuestring, "memory")) {
      found_memory = 1;
      assert_string_equal(cJSON_GetObjectItem(t, "source")->valuestring, "program");
      assert_true(fabs(cJSON_GetObjectItem(t, "value")->valuedouble - 0.3) < 1e-9);
    }
  }
  assert_true(found_memory);
  assert_int_equal(cJSON_GetObjectItem(res, "sample_count")->valuedouble, 5);
  /* Series: every named column, with equal-length arrays. */
  const cJSON *series = cJSON_GetObjectItem(res, "series");
  assert_true(cJSON_GetArraySize(series) >= 8);
  const cJSON *s0 = cJSON_GetArrayItem(series, 0);
  assert_string_equal(cJSON_GetObjectItem(s0, "name")->valuestring, "cpu_utilization_ratio");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s0, "t_seconds")), 5);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s0, "max")), 5);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

static const char *fake_nvml_path(char *buf, size_t len) {
  const char *build = getenv("BUILD");
  snprintf(buf, len, "%s/tests/fakes/libfake_nvml.so", build && *build ? build : "build");
  return buf;
}

static void test_gpu_threshold_fires_per_device_with_gpu_cleanup(void **state) {
  (void)state;
  setenv("PERFOPT_FAKE_NVML", "4", 1);
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.memory_threshold = 0.99;
  c.gpu_memory_threshold = 0.1; /* fake device i uses (i+1) GiB of (i+1)*8 GiB = 0.125 */
  snprintf(c.proc_root, sizeof c.proc_root, "tests/fakes/proc/container");
  fake_nvml_path(c.nvml_library, sizeof c.nvml_library);
  if (access(c.nvml_library, R_OK) != 0)
    fail_msg("%s missing: run through make unit-tests", c.nvml_library);
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  reset_counters();
  po_monitor_add_pressure_listener(opt, "cache", on_pressure, NULL, NULL);
  po_cleanup_register(opt, "cuda", PO_RESOURCE_GPU, 0, PO_CLEANUP_NORMAL, gpu_handler, NULL, NULL);
  po_cleanup_register(opt, "drop data", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, data_handler, NULL,
                      NULL);
  po_sample s;
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  assert_int_equal(s.gpu_count, 4);
  assert_int_equal(s.gpus[3].memory_total_bytes, 32ll << 30);
  po_monitor_sample_now(opt, NULL);
  assert_int_equal(listener_calls, 4); /* once per device */
  assert_int_equal(gpu_handler_calls, 4);
  assert_int_equal(data_handler_calls, 0); /* GPU pressure clears GPU resources only */
  assert_int_equal(last_event.metric, PO_METRIC_GPU_MEMORY);
  assert_int_equal(last_event.device, 3);

  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *gpu = cJSON_GetObjectItem(po_report_json(rep), "gpu");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(gpu, "available")));
  const cJSON *devs = cJSON_GetObjectItem(gpu, "devices");
  assert_int_equal(cJSON_GetArraySize(devs), 4);
  const cJSON *d1 = cJSON_GetArrayItem(devs, 1);
  assert_string_equal(cJSON_GetObjectItem(d1, "name")->valuestring, "Fake GPU 1");
  assert_true(cJSON_GetObjectItem(d1, "memory_total_bytes")->valuedouble == (double)(16ll << 30));
  const cJSON *series =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "resources"), "series");
  assert_int_equal(cJSON_GetArraySize(series), 9 + 2 * 4);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 8), "name")->valuestring,
                      "memory_time_to_limit_seconds");
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 9), "name")->valuestring,
                      "gpu0_memory_used_bytes");
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
  unsetenv("PERFOPT_FAKE_NVML");
}

static void test_no_nvml_is_a_normal_state_in_the_report(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(1000, NULL);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *gpu = cJSON_GetObjectItem(po_report_json(rep), "gpu");
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(gpu, "available")));
  assert_true(strlen(cJSON_GetObjectItem(gpu, "reason")->valuestring) > 0);
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(gpu, "devices")), 0);
  const cJSON *host = cJSON_GetObjectItem(po_report_json(rep), "host");
  assert_non_null(cJSON_GetObjectItem(host, "memory_total_bytes"));
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

static void test_bad_proc_root_is_reported_by_start(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(1000, "/nonexistent/root");
  assert_true(po_monitor_start(opt) < 0);
  assert_int_equal(po_monitor_running(opt), 0);
  po_sample s;
  assert_int_equal(po_monitor_sample_now(opt, &s), 0); /* a sample of unknowns, not a crash */
  assert_true(s.memory_limit_bytes == -1);
  po_optimizer_destroy(opt);
}

/* ---- firings driven by synthetic samples ---------------------------------------------------- */

static po_sample quiet_sample(double t) {
  po_sample s;
  memset(&s, 0, sizeof s);
  s.t_seconds = t;
  s.cpu_utilization_ratio = 0.1;
  s.process_cpu_ratio = 0.1;
  s.memory_limit_bytes = 16ll << 30;
  s.memory_used_bytes = 1ll << 30;
  s.memory_available_bytes = 15ll << 30;
  s.process_rss_bytes = 1 << 20;
  s.disk_busy_ratio = 0.1;
  return s;
}

static po_optimizer *make_synthetic_opt(double cpu, double mem, double gpu, double disk) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.cpu_threshold = cpu;
  c.memory_threshold = mem;
  c.gpu_memory_threshold = gpu;
  c.disk_busy_threshold = disk;
  c.threshold_cooldown_ms = 0;
  snprintf(c.nvml_library, sizeof c.nvml_library, "/nonexistent/libnvidia-ml.so.1");
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  return opt;
}

static void test_cpu_and_disk_pressure_reach_listeners_only(void **state) {
  (void)state;
  po_optimizer *opt = make_synthetic_opt(0.8, 0.9, 0.9, 0.8);
  reset_counters();
  po_monitor_add_pressure_listener(opt, "watch", on_pressure, NULL, NULL);
  po_cleanup_register(opt, "drop data", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL, data_handler, NULL,
                      NULL);
  po_sample s = quiet_sample(1);
  s.cpu_utilization_ratio = 0.85;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  assert_int_equal(listener_calls, 1);
  assert_int_equal(last_event.metric, PO_METRIC_CPU);
  assert_int_equal(last_event.level, PO_CLEANUP_NORMAL);
  assert_true(last_sample.cpu_utilization_ratio == 0.85); /* the sample that fired */
  s = quiet_sample(2);
  s.disk_busy_ratio = 0.99;
  po__sampler_push(opt->sampler, &s);
  assert_int_equal(listener_calls, 2);
  assert_int_equal(last_event.metric, PO_METRIC_DISK_BUSY);
  assert_int_equal(last_event.level, PO_CLEANUP_AGGRESSIVE); /* 0.99 >= (0.8 + 1) / 2 */
  assert_int_equal(data_handler_calls, 0); /* freeing memory does not relieve CPU or disk */
  po_optimizer_destroy(opt);
}

static void test_event_ring_keeps_the_newest_and_counts_the_rest(void **state) {
  (void)state;
  po_optimizer *opt = make_synthetic_opt(0.8, 0.9, 0.9, 0.9);
  for (int i = 0; i < 600; i++) { /* 300 crossings: high, low, high, ... */
    po_sample s = quiet_sample(i);
    s.cpu_utilization_ratio = i % 2 == 0 ? 0.9 : 0.1;
    po__sampler_push(opt->sampler, &s);
  }
  po_monitor_stats st;
  po_monitor_get_stats(opt, &st);
  assert_int_equal(st.events, 300);
  assert_int_equal(st.dropped_events, 300 - 256);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *res = cJSON_GetObjectItem(po_report_json(rep), "resources");
  const cJSON *events = cJSON_GetObjectItem(res, "events");
  assert_int_equal(cJSON_GetArraySize(events), 256);
  assert_int_equal(cJSON_GetObjectItem(res, "dropped_events")->valuedouble, 44);
  /* Oldest kept first: firing 45 (of 300) happened at t = 88. */
  assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(events, 0), "t_seconds")->valuedouble == 88);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

static void test_normal_gpu_firing_skips_aggressive_only_gpu_handlers(void **state) {
  (void)state;
  po_optimizer *opt = make_synthetic_opt(0.9, 0.9, 0.5, 0.9);
  reset_counters();
  po_cleanup_register(opt, "cuda cache", PO_RESOURCE_GPU, 0, PO_CLEANUP_NORMAL, gpu_handler, NULL,
                      NULL);
  po_cleanup_register(opt, "drop model", PO_RESOURCE_GPU, 1, PO_CLEANUP_AGGRESSIVE, data_handler,
                      NULL, NULL);
  po_sample s = quiet_sample(1);
  s.gpu_count = 2;
  for (int g = 0; g < 2; g++) {
    s.gpus[g].memory_total_bytes = 10ll << 30;
    s.gpus[g].memory_used_bytes = 1ll << 30;
  }
  s.gpus[1].memory_used_bytes = 6ll << 30; /* 0.6: over 0.5, under 0.75 */
  po__sampler_push(opt->sampler, &s);
  assert_int_equal(gpu_handler_calls, 1);
  assert_int_equal(data_handler_calls, 0);
  s.gpus[0].memory_used_bytes = 9ll << 30; /* 0.9: aggressive */
  po__sampler_push(opt->sampler, &s);
  assert_int_equal(gpu_handler_calls, 2);
  assert_int_equal(data_handler_calls, 1);
  po_optimizer_destroy(opt);
}

static void test_fake_64_core_host_is_judged_against_system_memory(void **state) {
  (void)state;
  po_optimizer *opt = make_opt(1000, "tests/fakes/proc/cores64");
  po_sample s;
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  assert_true(s.memory_limit_bytes > 0);
  assert_true(s.memory_used_bytes >= 0 && s.memory_used_bytes <= s.memory_limit_bytes);
  assert_true(s.cpu_utilization_ratio >= 0 && s.cpu_utilization_ratio <= 1);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *mem = cJSON_GetObjectItem(po_report_json(rep), "memory");
  assert_string_equal(cJSON_GetObjectItem(mem, "limit_source")->valuestring, "system");
  const cJSON *host = cJSON_GetObjectItem(po_report_json(rep), "host");
  assert_int_equal(cJSON_GetObjectItem(host, "cores_online")->valuedouble, 64);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hovering_at_the_threshold_fires_once),
      cmocka_unit_test(test_falling_below_the_hysteresis_band_rearms),
      cmocka_unit_test(test_cooldown_holds_a_crossing_until_it_ends),
      cmocka_unit_test(test_crossing_that_ends_inside_the_cooldown_is_counted),
      cmocka_unit_test(test_disabled_threshold_and_unknown_values_never_fire),
      cmocka_unit_test(test_start_and_stop_repeatedly),
      cmocka_unit_test(test_concurrent_stops_and_starts_are_safe),
      cmocka_unit_test(test_stop_does_not_wait_for_a_long_interval),
      cmocka_unit_test(test_destroy_stops_a_running_sampler),
      cmocka_unit_test(test_overhead_limit_stretches_the_interval),
      cmocka_unit_test(test_forked_child_has_no_sampler),
      cmocka_unit_test(test_fake_container_memory_is_judged_against_the_cgroup),
      cmocka_unit_test(test_memory_threshold_fires_cleanup_and_listeners_once),
      cmocka_unit_test(test_gpu_threshold_fires_per_device_with_gpu_cleanup),
      cmocka_unit_test(test_no_nvml_is_a_normal_state_in_the_report),
      cmocka_unit_test(test_bad_proc_root_is_reported_by_start),
      cmocka_unit_test(test_cpu_and_disk_pressure_reach_listeners_only),
      cmocka_unit_test(test_event_ring_keeps_the_newest_and_counts_the_rest),
      cmocka_unit_test(test_normal_gpu_firing_skips_aggressive_only_gpu_handlers),
      cmocka_unit_test(test_fake_64_core_host_is_judged_against_system_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
