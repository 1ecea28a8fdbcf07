/* Hot paths keep their promises: a sampler tick allocates nothing (counted by malloc interposed in
 * this binary, for the calling thread or the sampler's thread), and a cleanup pass trims the
 * allocator once however many handlers and listeners it runs.
 *
 * The allocation count replaces malloc and friends in this executable (forwarding to glibc's
 * __libc_* entry points), which every library in the process then calls, libc's own internals
 * (opendir, fopen) included. Under AddressSanitizer, ThreadSanitizer or valgrind, which own
 * malloc, those tests are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/memory.h"
#include "optimizer.h"
#include "perfopt.h"
#include "support/count_allocs.h"
#include "support/support.h"

/* Valgrind replaces malloc in the executable too (its preload comes first): nothing to count. */
static int counting(void) {
  const char *pre = getenv("LD_PRELOAD");
  return COUNT_ALLOCS && !(pre && strstr(pre, "vgpreload"));
}

static void watch(pid_t tid) {
  count_allocs_watch(tid);
}

static uint64_t unwatch(void) {
  return count_allocs_unwatch();
}

/* The sampler thread's id, by the name it gives itself; 0 when there is none. */
static pid_t sampler_tid(void) {
  DIR *d = opendir("/proc/self/task");
  assert_non_null(d);
  pid_t tid = 0;
  struct dirent *e;
  while (!tid && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[64] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(comm, sizeof comm, f) && !strcmp(comm, "perfopt-sampler\n")) tid = atoi(e->d_name);
    fclose(f);
  }
  closedir(d);
  return tid;
}

static uint64_t samples(po_optimizer *opt) {
  po_monitor_stats st;
  assert_int_equal(po_monitor_get_stats(opt, &st), 0);
  return st.samples;
}

static void wait_for_samples(po_optimizer *opt, uint64_t n) {
  double deadline = support_now() + SUPPORT_WAIT_SECONDS;
  while (samples(opt) < n) {
    if (support_now() > deadline) fail_msg("no %llu samples in time", (unsigned long long)n);
    support_poll_pause();
  }
}

/* Two fake GPUs, one running more processes than a query's stack buffer holds. */
static po_optimizer *monitored(void) {
  const char *build = getenv("BUILD");
  setenv("PERFOPT_FAKE_NVML", "2,many-procs", 1);
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.monitor_interval_ms = 10;
  snprintf(c.nvml_library, sizeof c.nvml_library, "%s/tests/fakes/libfake_nvml.so",
           build && build[0] ? build : "build");
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  return opt;
}

static void test_counting_sees_allocations(void **state) {
  (void)state;
  if (!counting()) skip();
  watch(gettid());
  void *volatile p = malloc(16);
  free(p);
  char *volatile s = strdup("x"); /* libc's own call to malloc is counted too */
  free(s);
  assert_int_equal(unwatch(), 2);
}

static void test_sample_now_allocates_nothing_after_the_first(void **state) {
  (void)state;
  if (!counting()) skip();
  po_optimizer *opt = monitored();
  po_sample s;
  watch(gettid());
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  uint64_t first = unwatch();
  assert_int_equal(s.gpu_count, 2);
  assert_true(first > 0); /* positive control: the first one creates the series, opens NVML */
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  watch(gettid());
  for (int i = 0; i < 50; i++) assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  assert_int_equal(unwatch(), 0);
  assert_int_equal(s.gpu_count, 2);
  po_optimizer_destroy(opt);
}

static void test_sampler_thread_ticks_allocate_nothing(void **state) {
  (void)state;
  if (!counting()) skip();
  po_optimizer *opt = monitored();
  assert_int_equal(po_monitor_start(opt), 0);
  wait_for_samples(opt, 3);
  pid_t tid = sampler_tid();
  assert_true(tid > 0);
  watch(tid);
  uint64_t from = samples(opt);
  wait_for_samples(opt, from + 20);
  uint64_t n = unwatch();
  assert_int_equal(n, 0);
  assert_int_equal(po_monitor_stop(opt), 0);
  po_optimizer_destroy(opt);
}

/* ---- one malloc_trim per cleanup pass -------------------------------------------------------- */

static int ran;
static void handler(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
  ran++;
}

static int64_t listener(const po_pressure_event *ev, void *user) {
  (void)ev;
  (void)user;
  ran++;
  return 0;
}

static void test_a_cleanup_pass_trims_once(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  enum { HANDLERS = 7, LISTENERS = 3 };
  for (int i = 0; i < HANDLERS; i++)
    assert_int_equal(
        po_cleanup_register(opt, "h", PO_RESOURCE_DATA, i, PO_CLEANUP_NORMAL, handler, NULL, NULL),
        0);
  for (int i = 0; i < LISTENERS; i++)
    assert_int_equal(po_monitor_add_pressure_listener(opt, "l", listener, NULL, NULL), 0);

  /* po_optimize_memory: every handler and listener, one trim. */
  uint64_t t0 = po__memory_test_trims();
  ran = 0;
  po_cleanup_result r;
  assert_int_equal(po_optimize_memory(opt, PO_CLEANUP_NORMAL, &r), 0);
  assert_int_equal(ran, HANDLERS + LISTENERS);
  assert_int_equal(r.handlers_run, HANDLERS);
  assert_int_equal(po__memory_test_trims() - t0, 1);

  /* A memory threshold firing: the same pass, one trim. */
  po_sample s;
  memset(&s, 0, sizeof s);
  s.t_seconds = 1;
  s.cpu_utilization_ratio = s.process_cpu_ratio = s.disk_busy_ratio = -1;
  s.memory_limit_bytes = 1 << 30;
  s.memory_used_bytes = (1 << 30) - (1 << 20);
  t0 = po__memory_test_trims();
  ran = 0;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  assert_int_equal(ran, HANDLERS + LISTENERS);
  assert_int_equal(po__memory_test_trims() - t0, 1);

  /* A CPU firing only notifies the listeners: no trim. */
  s.t_seconds = 2;
  s.memory_used_bytes = 0;
  s.cpu_utilization_ratio = 1.0;
  t0 = po__memory_test_trims();
  ran = 0;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  assert_int_equal(ran, LISTENERS);
  assert_int_equal(po__memory_test_trims() - t0, 0);
  po_optimizer_destroy(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_counting_sees_allocations),
      cmocka_unit_test(test_sample_now_allocates_nothing_after_the_first),
      cmocka_unit_test(test_sampler_thread_ticks_allocate_nothing),
      cmocka_unit_test(test_a_cleanup_pass_trims_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
