/* The function-level profiler: counts, self vs inclusive time, recursion, threads, percentiles,
 * probe-cost compensation, fork, timeline drops, the JSON report, atomic saves, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "base/clock.h"
#include "base/histogram.h"
#include "profile/profile.h"
#include "support/support.h"

static volatile uint64_t sink;

static void spin(int n) {
  for (int i = 0; i < n; i++) sink += (uint64_t)i * 7u;
}

static int reset(void **state) {
  (void)state;
  po_profile_set_enabled(1);
  po_profile_reset();
  return 0;
}

/* ---- counts and times ---------------------------------------------------------------------- */

static void counted_leaf(void) {
  PO_PROFILE_FUNCTION();
  spin(10);
}

static void test_exact_call_counts(void **state) {
  (void)state;
  for (int i = 0; i < 12345; i++) counted_leaf();
  po_report *rep = support_profile_report();
  const cJSON *f = support_find_function(po_report_json(rep), "counted_leaf");
  assert_non_null(f);
  assert_int_equal((long)support_num(f, "calls"), 12345);
  assert_true(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(f, "file")), "test_profile.c"));
  assert_true(support_num(f, "line") > 0);
  po_report_destroy(rep);
}

static void nested_child_a(void) {
  PO_SCOPE("nested_child_a");
  spin(200);
}
static void nested_child_b(void) {
  PO_SCOPE("nested_child_b");
  spin(400);
}

static void test_self_time_excludes_children(void **state) {
  (void)state;
  for (int i = 0; i < 1000; i++) {
    PO_SCOPE("nested_parent");
    spin(100);
    nested_child_a();
    nested_child_b();
  }
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  const cJSON *p = support_find_function(root, "nested_parent");
  const cJSON *a = support_find_function(root, "nested_child_a");
  const cJSON *b = support_find_function(root, "nested_child_b");
  assert_non_null(p);
  assert_non_null(a);
  assert_non_null(b);
  double inclusive = support_num(p, "total_seconds");
  double self = support_num(p, "self_seconds");
  double children = support_num(a, "total_seconds") + support_num(b, "total_seconds");
  assert_true(self > 0);
  assert_true(self < inclusive);
  /* self + children = inclusive, exactly up to floating-point rounding of the tick sums */
  assert_true(fabs(self + children - inclusive) <= 1e-9 * inclusive + 1e-12);
  /* a leaf's self time is its total */
  assert_true(fabs(support_num(a, "self_seconds") - support_num(a, "total_seconds")) < 1e-12);
  po_report_destroy(rep);
}

static void test_zone_block_and_begin_end(void **state) {
  (void)state;
  static po_site site = PO_SITE_INIT("manual_site", __FILE__, __LINE__);
  for (int i = 0; i < 10; i++) {
    po_zone_begin(&site);
    po_zone_end();
  }
  for (int i = 0; i < 7; i++) {
    PO_ZONE("zone_block") {
      if (i == 3) break; /* leaving the block by break still ends the zone */
      spin(5);
    }
  }
  po_report *rep = support_profile_report();
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "manual_site"), "calls"), 10);
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "zone_block"), "calls"), 7);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.unmatched_ends, 0);
  po_report_destroy(rep);
}

static void *double_it(void *arg) {
  spin(10);
  return (void *)((uintptr_t)arg * 2);
}

static void test_profile_call_times_callback(void **state) {
  (void)state;
  for (uintptr_t i = 0; i < 5; i++)
    assert_int_equal((uintptr_t)po_profile_call("callback_zone", double_it, (void *)i), i * 2);
  po_report *rep = support_profile_report();
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "callback_zone"), "calls"), 5);
  po_report_destroy(rep);
}

static void *nothing(void *arg) {
  return arg;
}

static void test_profile_call_reused_buffer_names_each_call(void **state) {
  (void)state;
  /* One buffer, several names: the per-thread site cache must check the name, not its address. */
  char name[32];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 4; i++) {
      snprintf(name, sizeof name, "reused_buffer_%d", i);
      for (int k = 0; k <= i; k++) po_profile_call(name, nothing, NULL);
    }
  }
  po_report *rep = support_profile_report();
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "reused_buffer_%d", i);
    const cJSON *f = support_find_function(po_report_json(rep), name);
    assert_non_null(f);
    assert_int_equal((long)support_num(f, "calls"), 3 * (i + 1));
  }
  po_report_destroy(rep);
}

static void test_profile_call_long_name_is_one_site(void **state) {
  (void)state;
  char long_name[400];
  memset(long_name, 'y', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  for (int i = 0; i < 50; i++) po_profile_call(long_name, nothing, NULL);
  po_profile_counters c;
  po_profile_get_counters(&c);
  po__profile_snapshot *s;
  assert_int_equal(po__profile_snapshot_create(&s), 0);
  int sites = 0;
  for (size_t i = 0; i < s->nfunctions; i++) {
    if (s->functions[i].name[0] != 'y') continue;
    sites++;
    assert_int_equal(strlen(s->functions[i].name), 255);
    assert_int_equal(s->functions[i].calls, 50);
  }
  assert_int_equal(sites, 1); /* not one new site per call */
  po__profile_snapshot_destroy(s);
}

/* ---- probe-cost compensation ---------------------------------------------------------------- */

static volatile uint64_t body_seed = 7, body_sink;

/* A body of a few nanoseconds: a short dependent multiply chain. */
#define KNOWN_BODY()                      \
  do {                                    \
    uint64_t x_ = body_seed;              \
    for (int k_ = 0; k_ < 4; k_++) {      \
      x_ = x_ * 6364136223846793005u + 1; \
      __asm__("" : "+r"(x_));             \
    }                                     \
    body_sink = x_;                       \
  } while (0)

__attribute__((noinline)) static void known_body_bare(void) {
  KNOWN_BODY();
}

__attribute__((noinline)) static void known_body_profiled(void) {
  PO_PROFILE_FUNCTION();
  KNOWN_BODY();
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Under ThreadSanitizer every atomic on the probe's path is a call into its runtime, whose cost
 * depends on the runtime's state (shadow memory, vector clocks): the calibrated cost of an empty
 * zone then says little about a zone around a body. The plain and ASan builds check it. */
#if defined(__SANITIZE_THREAD__)
#define PROBE_COST_IS_STABLE 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PROBE_COST_IS_STABLE 0
#endif
#endif
#ifndef PROBE_COST_IS_STABLE
#define PROBE_COST_IS_STABLE 1
#endif

static void test_manual_zone_probe_cost_is_subtracted(void **state) {
  (void)state;
  if (!PROBE_COST_IS_STABLE) skip();
  /* Medians over short attempts, so a preemption spoils one attempt, not the answer. */
  enum { ATTEMPTS = 21, CALLS = 2000 };
  double known[ATTEMPTS], reported[ATTEMPTS], bias_ns = 0;
  double ns = po__ns_per_tick();
  for (int a = 0; a < ATTEMPTS; a++) {
    uint64_t t0 = po__ticks();
    for (int i = 0; i < CALLS; i++) known_body_bare();
    known[a] = (double)(po__ticks() - t0) * ns / CALLS;
    po_profile_reset();
    for (int i = 0; i < CALLS; i++) known_body_profiled();
    po__profile_snapshot *s;
    assert_int_equal(po__profile_snapshot_create(&s), 0);
    reported[a] = -1;
    for (size_t i = 0; i < s->nfunctions; i++)
      if (!strcmp(s->functions[i].name, "known_body_profiled"))
        reported[a] = s->functions[i].avg_seconds * 1e9;
    bias_ns = s->probe_bias_ns;
    po__profile_snapshot_destroy(s);
    assert_true(reported[a] >= 0);
  }
  qsort(known, ATTEMPTS, sizeof known[0], cmp_double);
  qsort(reported, ATTEMPTS, sizeof reported[0], cmp_double);
  double k = known[ATTEMPTS / 2], r = reported[ATTEMPTS / 2], tol = bias_ns / 2;
  print_message("known body %.2f ns, reported %.2f ns, probe bias %.2f ns\n", k, r, bias_ns);
  assert_true(bias_ns > 0); /* calibrated */
  /* Compensated: within half the probe's bias of the body's own cost; uncompensated (the probe's
   * bias added back) falls outside that band. */
  assert_true(fabs(r - k) <= tol);
  assert_true(fabs(r + bias_ns - k) > tol);
}

/* ---- recursion and the call tree ---------------------------------------------------------- */

/* Each call does some work of its own (a few hundred ns), so that the compensated times stay well
 * above the probe-cost estimate's error on a busy machine. */
static int fib(int n) {
  PO_PROFILE_FUNCTION();
  spin(300);
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void test_recursion_does_not_double_count(void **state) {
  (void)state;
  {
    PO_SCOPE("fib_driver");
    assert_int_equal(fib(15), 610);
  }
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  const cJSON *f = support_find_function(root, "fib");
  const cJSON *d = support_find_function(root, "fib_driver");
  assert_int_equal((long)support_num(f, "calls"), 1973);
  /* fib's inclusive time is counted once (its outermost calls), so it is about its caller's;
   * counting every level again would make it several times as large. "About": both are
   * compensated for the probe cost of fib's 1973 zones, which is an estimate, and the caller's own
   * work (the difference) is a few nanoseconds. */
  double ft = support_num(f, "total_seconds"), fs = support_num(f, "self_seconds");
  double dt = support_num(d, "total_seconds");
  assert_true(ft > 0);
  assert_true(ft <= dt * 1.2);
  assert_true(fs <= ft * 1.2); /* self: each call's own time, summed over every level */
  po_report_destroy(rep);
}

static void shared_callee(void) {
  PO_PROFILE_FUNCTION();
  spin(10);
}
static void caller_one(void) {
  PO_PROFILE_FUNCTION();
  shared_callee();
}
static void caller_two(void) {
  PO_PROFILE_FUNCTION();
  shared_callee();
  shared_callee();
}

static void test_call_tree_tells_callers_apart(void **state) {
  (void)state;
  caller_one();
  caller_two();
  po_report *rep = support_profile_report();
  const cJSON *tree =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "profile"), "call_tree");
  long from_one = -1, from_two = -1;
  const cJSON *n, *m;
  cJSON_ArrayForEach(n, tree) {
    if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(n, "name")), "shared_callee")) continue;
    int parent = (int)support_num(n, "parent");
    cJSON_ArrayForEach(m, tree) {
      if ((int)support_num(m, "id") != parent) continue;
      const char *pn = cJSON_GetStringValue(cJSON_GetObjectItem(m, "name"));
      if (!strcmp(pn, "caller_one")) from_one = (long)support_num(n, "calls");
      if (!strcmp(pn, "caller_two")) from_two = (long)support_num(n, "calls");
    }
  }
  assert_int_equal(from_one, 1);
  assert_int_equal(from_two, 2);
  po_report_destroy(rep);
}

/* ---- threads ------------------------------------------------------------------------------- */

static void *thread_zones(void *arg) {
  int n = (int)(intptr_t)arg;
  for (int i = 0; i < n; i++) {
    PO_SCOPE("thread_outer");
    PO_SCOPE("thread_inner");
  }
  return NULL;
}

static void test_eight_threads_exact_counts(void **state) {
  (void)state;
  pthread_t t[8];
  for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, thread_zones, (void *)(intptr_t)100000);
  for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  assert_int_equal((long)support_num(support_find_function(root, "thread_outer"), "calls"), 800000);
  assert_int_equal((long)support_num(support_find_function(root, "thread_inner"), "calls"), 800000);
  /* every exited thread is still listed */
  const cJSON *threads = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "threads");
  int exited = 0;
  const cJSON *th;
  cJSON_ArrayForEach(th, threads) exited += cJSON_IsTrue(cJSON_GetObjectItem(th, "exited"));
  assert_true(exited >= 8);
  po_report_destroy(rep);
}

static void *open_zone_and_exit(void *arg) {
  (void)arg;
  static po_site s = PO_SITE_INIT("left_open", __FILE__, __LINE__);
  po_zone_begin(&s);
  spin(100);
  return NULL; /* exits with the zone open */
}

static void test_thread_exit_closes_open_zone(void **state) {
  (void)state;
  pthread_t t;
  pthread_create(&t, NULL, open_zone_and_exit, NULL);
  pthread_join(t, NULL);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.open_at_exit, 1);
  po_report *rep = support_profile_report();
  const cJSON *root = po_report_json(rep);
  assert_int_equal((long)support_num(support_find_function(root, "left_open"), "calls"), 1);
  const cJSON *tree = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "call_tree");
  const cJSON *n;
  int flagged = 0;
  cJSON_ArrayForEach(n, tree) flagged += cJSON_IsTrue(cJSON_GetObjectItem(n, "open_at_exit"));
  assert_int_equal(flagged, 1);
  po_report_destroy(rep);
}

static void *open_long_zone_and_exit(void *arg) {
  (void)arg;
  static po_site s = PO_SITE_INIT("left_open_long", __FILE__, __LINE__);
  po_zone_begin(&s);
  spin(200000);
  return NULL;
}

static void test_zone_closed_at_exit_has_per_call_stats(void **state) {
  (void)state;
  pthread_t t;
  pthread_create(&t, NULL, open_long_zone_and_exit, NULL);
  pthread_join(t, NULL);
  po_report *rep = support_profile_report();
  const cJSON *f = support_find_function(po_report_json(rep), "left_open_long");
  assert_non_null(f);
  assert_int_equal((long)support_num(f, "calls"), 1);
  /* One call: min, max and every percentile are that call, as is the average. */
  double avg = support_num(f, "avg_seconds");
  assert_true(avg > 0);
  static const char *const keys[] = {"min_seconds", "max_seconds", "p50_seconds",
                                     "p90_seconds", "p95_seconds", "p99_seconds"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    assert_true(fabs(support_num(f, keys[i]) - avg) <= 1e-9 * avg);
  po_report_destroy(rep);
}

/* ---- many exited threads -------------------------------------------------------------------- */

static atomic_int exits_done;

static void *zone_and_exit(void *arg) {
  (void)arg;
  PO_SCOPE("short_lived");
  return NULL;
}

static void *report_while_threads_exit(void *arg) {
  (void)arg;
  while (atomic_load(&exits_done) == 0) {
    po__profile_snapshot *s;
    if (po__profile_snapshot_create(&s) == 0) po__profile_snapshot_destroy(s);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return NULL;
}

static void test_more_exited_threads_than_listed(void **state) {
  (void)state;
  enum { THREADS = 1104, BATCH = 16, LISTED = 1024 }; /* THREADS: a multiple of BATCH */
  atomic_store(&exits_done, 0);
  pthread_t reporter;
  assert_int_equal(pthread_create(&reporter, NULL, report_while_threads_exit, NULL), 0);
  for (int i = 0; i < THREADS; i += BATCH) {
    pthread_t t[BATCH];
    for (int j = 0; j < BATCH; j++)
      assert_int_equal(pthread_create(&t[j], NULL, zone_and_exit, NULL), 0);
    for (int j = 0; j < BATCH; j++) pthread_join(t[j], NULL);
  }
  atomic_store(&exits_done, 1);
  pthread_join(reporter, NULL);
  po__profile_snapshot *s;
  assert_int_equal(po__profile_snapshot_create(&s), 0);
  size_t exited = 0;
  for (size_t i = 0; i < s->nthreads; i++) exited += s->threads[i].exited != 0;
  assert_int_equal(exited, LISTED);
  assert_int_equal(s->threads_not_listed, THREADS - LISTED);
  uint64_t calls = 0;
  for (size_t i = 0; i < s->nfunctions; i++)
    if (!strcmp(s->functions[i].name, "short_lived")) calls = s->functions[i].calls;
  assert_int_equal(calls, THREADS);
  po__profile_snapshot_destroy(s);
}

/* ---- percentiles ------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_percentiles_match_sorted_reference(void **state) {
  (void)state;
  enum { N = 100000 };
  uint64_t *v = malloc(N * sizeof *v);
  uint64_t *h = calloc(PO__HIST_BUCKETS, sizeof *h);
  srand(42);
  for (int i = 0; i < N; i++) {
    /* log-uniform from 1 to ~10^9: every octave of the histogram is exercised */
    double e = (double)rand() / RAND_MAX * 9.0 * log(10.0);
    v[i] = (uint64_t)exp(e);
    h[po__hist_bucket(v[i])]++;
  }
  qsort(v, N, sizeof *v, cmp_u64);
  const double qs[] = {0.5, 0.9, 0.95, 0.99, 0.999};
  for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
    double ref = (double)v[(size_t)ceil(qs[i] * N) - 1];
    double got = po__hist_quantile(h, N, qs[i]);
    assert_true(fabs(got - ref) <= 0.01 * ref + 0.5);
  }
  free(v);
  free(h);
}

static void test_histogram_buckets_within_one_percent(void **state) {
  (void)state;
  for (uint64_t x = 1; x < (1ull << 47); x = x * 3 / 2 + 1) {
    double mid = po__hist_bucket_value(po__hist_bucket(x));
    assert_true(fabs(mid - (double)x) <= 0.0079 * (double)x + 0.5);
  }
}

/* ---- fork ---------------------------------------------------------------------------------- */

/* The sanitizers' allocators (GCC 12's) are not fork-safe: a child forked while another thread is
 * inside malloc waits forever on the allocator's lock, before the profiler is involved. ASan:
 * google/sanitizers#1814. TSan: seen here about once in ten runs, the child stuck in
 * SizeClassAllocator64::GetFromAllocator under calloc (gdb on the hung child). glibc's malloc is
 * fork-safe; these tests run in the plain build. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FORK_WITH_MALLOCING_THREADS_WORKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FORK_WITH_MALLOCING_THREADS_WORKS 0
#endif
#endif
#ifndef FORK_WITH_MALLOCING_THREADS_WORKS
#define FORK_WITH_MALLOCING_THREADS_WORKS 1
#endif

/* Waits for a child at most timeout_ms; a child still running then is killed. Returns its exit
 * status, or -1 when it had to be killed (hung) or did not exit normally. */
static int wait_child(pid_t pid, int timeout_ms) {
  for (int waited = 0;; waited++) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0 || waited >= timeout_ms) break;
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

/* In a forked child: its own zones are recorded and reported. Exit status 0 when they are. */
static int child_profile_works(void) {
  for (int i = 0; i < 3; i++) {
    PO_SCOPE("forked_child_zone");
  }
  po__profile_snapshot *s;
  if (po__profile_snapshot_create(&s) != 0) return 2;
  uint64_t calls = 0;
  for (size_t i = 0; i < s->nfunctions; i++)
    if (!strcmp(s->functions[i].name, "forked_child_zone")) calls = s->functions[i].calls;
  po__profile_snapshot_destroy(s);
  return calls >= 3 ? 0 : 3;
}

/* Forks `n` children while other threads run; each child must finish within the timeout. */
static void fork_repeatedly(int n) {
  for (int i = 0; i < n; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_profile_works());
    assert_int_equal(wait_child(pid, 20000), 0);
  }
}

static atomic_int fork_test_stop;

static void *build_reports(void *arg) {
  (void)arg;
  while (!atomic_load(&fork_test_stop)) {
    po__profile_snapshot *s;
    if (po__profile_snapshot_create(&s) == 0) po__profile_snapshot_destroy(s);
    po_profile_reset();
    po_profile_counters c;
    po_profile_get_counters(&c);
  }
  return NULL;
}

static void test_fork_during_report_building(void **state) {
  (void)state;
  if (!FORK_WITH_MALLOCING_THREADS_WORKS) skip();
  atomic_store(&fork_test_stop, 0);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, build_reports, NULL), 0);
  fork_repeatedly(20);
  atomic_store(&fork_test_stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

/* A new thread's first zones: it attaches, grows its site table and tree, then exits (merging). */
static void *first_zones_of_a_thread(void *arg) {
  unsigned base = (unsigned)(uintptr_t)arg;
  char name[48];
  for (unsigned i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "thread_site_%u", (base + i) % 32);
    po_profile_call(name, nothing, NULL);
  }
  return NULL;
}

/* New sites (the registry grows) and new threads (first zones, exits), without pause. The sets
 * of names are bounded: a (thread, site) record holds a 11 KiB histogram, and each child merges
 * them all. */
static void *hammer_new_sites(void *arg) {
  int id = (int)(intptr_t)arg;
  char name[48];
  for (unsigned i = 0; !atomic_load(&fork_test_stop); i++) {
    snprintf(name, sizeof name, "hammer_%d_%u", id, i % 64);
    po_profile_call(name, nothing, NULL);
    if (i % 16 == 0) {
      pthread_t t;
      if (pthread_create(&t, NULL, first_zones_of_a_thread, (void *)(uintptr_t)i) == 0)
        pthread_join(t, NULL);
    }
  }
  return NULL;
}

static void test_fork_during_first_zones_under_load(void **state) {
  (void)state;
  if (!FORK_WITH_MALLOCING_THREADS_WORKS) skip();
  atomic_store(&fork_test_stop, 0);
  pthread_t t[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&t[i], NULL, hammer_new_sites, (void *)(intptr_t)i), 0);
  fork_repeatedly(12);
  atomic_store(&fork_test_stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
}

/* The fork handlers must exist before any profiler lock can be held, not only once some thread
 * has opened a zone: in a fresh process that has never opened one, threads that reset and read
 * the profile (taking its locks) race fork. Runs in a re-executed copy of this binary. */
static char *self_exe;

static int fresh_process_fork_scenario(void) {
  atomic_store(&fork_test_stop, 0);
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, build_reports, NULL) != 0) return 4;
  int rc = 0;
  for (int i = 0; i < 30 && rc == 0; i++) {
    pid_t pid = fork();
    if (pid < 0) return 5;
    if (pid == 0) _exit(child_profile_works());
    rc = wait_child(pid, 20000) == 0 ? 0 : 6;
  }
  atomic_store(&fork_test_stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  return rc;
}

static void test_fork_before_any_zone(void **state) {
  (void)state;
  if (!FORK_WITH_MALLOCING_THREADS_WORKS) skip();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl(self_exe, self_exe, "--fresh-process-fork", (char *)NULL);
    _exit(7);
  }
  assert_int_equal(wait_child(pid, 60000), 0);
}

/* ---- timeline ------------------------------------------------------------------------------ */

/* The worker records 100 zones named tl_00..tl_99 into a 16-event ring, then stays alive (its
 * ring is exported only while it runs) until the test has looked. */
static sem_t timeline_recorded, timeline_may_exit;

static void *timeline_worker(void *arg) {
  (void)arg;
  char name[16];
  for (int i = 0; i < 100; i++) {
    snprintf(name, sizeof name, "tl_%02d", i);
    po_profile_call(name, nothing, NULL);
  }
  sem_post(&timeline_recorded);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 60;
  sem_timedwait(&timeline_may_exit, &deadline);
  return NULL;
}

static void test_timeline_ring_keeps_newest_and_counts_overwritten(void **state) {
  (void)state;
  assert_int_equal(po_profile_set_timeline(1, 16), 0);
  sem_init(&timeline_recorded, 0, 0);
  sem_init(&timeline_may_exit, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, timeline_worker, NULL);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 60;
  assert_int_equal(sem_timedwait(&timeline_recorded, &deadline), 0);
  /* the ring holds 16 events: the newest 16 survive, the 84 oldest were overwritten (counted) */
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.dropped_events, 84);
  po__profile_snapshot *s;
  assert_int_equal(po__profile_snapshot_create(&s), 0);
  int next = 84;
  for (size_t i = 0; i < s->nevents; i++) {
    const char *n = s->events[i].name;
    if (strncmp(n, "tl_", 3) != 0) continue;
    char want[16];
    snprintf(want, sizeof want, "tl_%02d", next++);
    assert_string_equal(n, want); /* in order, oldest surviving first */
  }
  assert_int_equal(next, 100);
  assert_int_equal(s->dropped_events, 84);
  po__profile_snapshot_destroy(s);
  sem_post(&timeline_may_exit);
  pthread_join(t, NULL);
  /* the exited thread's count survives it */
  po_report *rep = support_profile_report();
  assert_int_equal(
      (long)support_num(cJSON_GetObjectItem(po_report_json(rep), "profile"), "dropped_events"), 84);
  po_report_destroy(rep);
  assert_int_equal(po_profile_set_timeline(0, 16), 0);
  assert_int_equal(po_profile_set_timeline(1, 3), PO_ERANGE);
  sem_destroy(&timeline_recorded);
  sem_destroy(&timeline_may_exit);
}

static void test_timeline_events_in_trace(void **state) {
  (void)state;
  assert_int_equal(po_profile_set_timeline(1, 1024), 0);
  for (int i = 0; i < 5; i++) {
    PO_SCOPE("traced_zone");
  }
  po_report *rep = support_profile_report();
  const cJSON *ev = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "profile"), "timeline"),
      "events");
  int n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, ev) n +=
      !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), "traced_zone");
  assert_int_equal(n, 5);
  char path[256];
  snprintf(path, sizeof path, "%s/trace.json", support_tmpdir());
  assert_int_equal(po_report_save_trace(rep, path, NULL, 0), 0);
  char *text;
  assert_int_equal(po__read_file(path, 1 << 24, &text, NULL, NULL, 0), 0);
  cJSON *trace = cJSON_Parse(text);
  assert_non_null(trace);
  assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(trace, "traceEvents")) >= 5);
  cJSON_Delete(trace);
  free(text);
  po_report_destroy(rep);
  po_profile_set_timeline(0, 1024);
}

/* ---- the JSON report ----------------------------------------------------------------------- */

static void test_json_report_has_every_documented_field(void **state) {
  (void)state;
  counted_leaf();
  char path[256];
  snprintf(path, sizeof path, "%s/report.json", support_tmpdir());
  po_report *rep = support_profile_report();
  assert_int_equal(po_report_save_json(rep, path, NULL, 0), 0);
  po_report_destroy(rep);
  char err[256];
  assert_int_equal(po_report_load(path, &rep, err, sizeof err), 0);
  const cJSON *root = po_report_json(rep);
  static const char *const top[] = {"perfopt_version", "host", "run", "profile"};
  for (size_t i = 0; i < 4; i++) assert_non_null(cJSON_GetObjectItem(root, top[i]));
  const cJSON *prof = cJSON_GetObjectItem(root, "profile");
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(prof, "functions")));
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(prof, "call_tree")));
  assert_true(cJSON_IsArray(cJSON_GetObjectItem(prof, "threads")));
  assert_true(cJSON_IsNumber(cJSON_GetObjectItem(prof, "dropped_events")));
  const cJSON *f = support_find_function(root, "counted_leaf");
  assert_non_null(f);
  static const char *const fields[] = {
      "calls",       "total_seconds",  "self_seconds", "avg_seconds", "min_seconds",
      "max_seconds", "stddev_seconds", "p50_seconds",  "p90_seconds", "p95_seconds",
      "p99_seconds", "percent_total",  "line"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) support_num(f, fields[i]);
  assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "name")));
  assert_true(cJSON_IsString(cJSON_GetObjectItem(f, "file")));
  assert_true(support_num(f, "min_seconds") <= support_num(f, "p50_seconds"));
  assert_true(support_num(f, "p50_seconds") <= support_num(f, "p99_seconds"));
  assert_true(support_num(f, "p99_seconds") <= support_num(f, "max_seconds"));
  po_report_destroy(rep);
}

static void test_failed_save_keeps_previous_file(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/keep.json", support_tmpdir());
  counted_leaf();
  po_report *first = support_profile_report();
  assert_int_equal(po_report_save_json(first, path, NULL, 0), 0);
  po_report_destroy(first);
  char *before;
  assert_int_equal(po__read_file(path, 1 << 24, &before, NULL, NULL, 0), 0);
  po_report *rep = support_profile_report();
  for (int step = 1; step <= 4; step++) {
    char err[512] = "";
    po__test_fail_write_at(step);
    assert_int_equal(po_report_save_json(rep, path, err, sizeof err), PO_EIO);
    po__test_fail_write_at(0);
    assert_non_null(strstr(err, path)); /* the error names the path */
    char *after;
    assert_int_equal(po__read_file(path, 1 << 24, &after, NULL, NULL, 0), 0);
    assert_string_equal(before, after);
    free(after);
  }
  /* no temporary file is left behind */
  assert_int_equal(support_count_files_with_prefix(support_tmpdir(), "keep.json.tmp."), 0);
  po_report_destroy(rep);
  free(before);
}

static void test_text_report_marks_only_findings(void **state) {
  (void)state;
  for (int i = 0; i < 100; i++) nested_child_b();
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_int_equal(po_optimizer_write_text(NULL, f, PO_SORT_SELF), 0);
  fclose(f);
  assert_non_null(strstr(buf, "nested_child_b"));
  assert_non_null(strstr(buf, "p95"));
  /* marks come from the advisor's findings (tests/test_advisor.c), never from a row's rank */
  assert_null(strstr(buf, "!!"));
  assert_true(strstr(buf, "\n! ") == NULL || strstr(buf, "marks: ! hot") != NULL);
  free(buf);
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void test_bad_names_are_counted(void **state) {
  (void)state;
  static po_site null_site = PO_SITE_INIT(NULL, __FILE__, __LINE__);
  static po_site empty_site = PO_SITE_INIT("", __FILE__, __LINE__);
  char long_name[400];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  static po_site long_site = PO_SITE_INIT(NULL, __FILE__, __LINE__);
  long_site.name = long_name;
  po_zone_begin(&null_site);
  po_zone_end();
  po_zone_begin(&empty_site);
  po_zone_end();
  po_zone_begin(&long_site);
  po_zone_end();
  po_profile_call(NULL, double_it, NULL);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_true(c.null_names >= 2);
  assert_int_equal(c.truncated_names, 1);
  po_report *rep = support_profile_report();
  char truncated[256];
  memset(truncated, 'x', 255);
  truncated[255] = '\0';
  assert_non_null(support_find_function(po_report_json(rep), truncated));
  assert_non_null(support_find_function(po_report_json(rep), "(null)"));
  po_report_destroy(rep);
}

static void test_end_without_begin_is_ignored_and_counted(void **state) {
  (void)state;
  po_zone_end();
  po_zone_end();
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.unmatched_ends, 2);
  counted_leaf(); /* still works afterwards */
}

static void test_runtime_disable_records_nothing(void **state) {
  (void)state;
  po_profile_set_enabled(0);
  for (int i = 0; i < 50; i++) {
    PO_SCOPE("while_disabled");
  }
  po_profile_set_enabled(1);
  /* a zone begun while enabled and ended while disabled still closes cleanly */
  {
    PO_SCOPE("toggled_inside");
    po_profile_set_enabled(0);
  }
  po_profile_set_enabled(1);
  po_report *rep = support_profile_report();
  assert_null(support_find_function(po_report_json(rep), "while_disabled"));
  assert_int_equal(
      (long)support_num(support_find_function(po_report_json(rep), "toggled_inside"), "calls"), 1);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_int_equal(c.unmatched_ends, 0);
  po_report_destroy(rep);
}

static void deep(int n) {
  PO_PROFILE_FUNCTION();
  if (n > 0) deep(n - 1);
}

static void test_depth_overflow_is_counted(void **state) {
  (void)state;
  deep(300);
  po_profile_counters c;
  po_profile_get_counters(&c);
  assert_true(c.depth_overflows > 0);
  assert_int_equal(c.unmatched_ends, 0);
  po_report *rep = support_profile_report();
  assert_int_equal((long)support_num(support_find_function(po_report_json(rep), "deep"), "calls") +
                       (long)c.depth_overflows,
                   301);
  po_report_destroy(rep);
}

static void test_loop_over_same_zones_does_not_grow_memory(void **state) {
  (void)state;
  for (int i = 0; i < 1000; i++) caller_two();
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < 100000; i++) caller_two();
  struct mallinfo2 after = mallinfo2();
  assert_int_equal(before.uordblks, after.uordblks);
}

int main(int argc, char **argv) {
  self_exe = argv[0];
  if (argc > 1 && !strcmp(argv[1], "--fresh-process-fork")) return fresh_process_fork_scenario();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_exact_call_counts, reset),
      cmocka_unit_test_setup(test_self_time_excludes_children, reset),
      cmocka_unit_test_setup(test_zone_block_and_begin_end, reset),
      cmocka_unit_test_setup(test_profile_call_times_callback, reset),
      cmocka_unit_test_setup(test_profile_call_reused_buffer_names_each_call, reset),
      cmocka_unit_test_setup(test_profile_call_long_name_is_one_site, reset),
      cmocka_unit_test_setup(test_manual_zone_probe_cost_is_subtracted, reset),
      cmocka_unit_test_setup(test_recursion_does_not_double_count, reset),
      cmocka_unit_test_setup(test_call_tree_tells_callers_apart, reset),
      cmocka_unit_test_setup(test_eight_threads_exact_counts, reset),
      cmocka_unit_test_setup(test_thread_exit_closes_open_zone, reset),
      cmocka_unit_test_setup(test_zone_closed_at_exit_has_per_call_stats, reset),
      cmocka_unit_test_setup(test_more_exited_threads_than_listed, reset),
      cmocka_unit_test_setup(test_fork_during_report_building, reset),
      cmocka_unit_test_setup(test_fork_during_first_zones_under_load, reset),
      cmocka_unit_test(test_fork_before_any_zone),
      cmocka_unit_test(test_percentiles_match_sorted_reference),
      cmocka_unit_test(test_histogram_buckets_within_one_percent),
      cmocka_unit_test_setup(test_timeline_ring_keeps_newest_and_counts_overwritten, reset),
      cmocka_unit_test_setup(test_timeline_events_in_trace, reset),
      cmocka_unit_test_setup(test_json_report_has_every_documented_field, reset),
      cmocka_unit_test_setup(test_failed_save_keeps_previous_file, reset),
      cmocka_unit_test_setup(test_text_report_marks_only_findings, reset),
      cmocka_unit_test_setup(test_bad_names_are_counted, reset),
      cmocka_unit_test_setup(test_end_without_begin_is_ignored_and_counted, reset),
      cmocka_unit_test_setup(test_runtime_disable_records_nothing, reset),
      cmocka_unit_test_setup(test_depth_overflow_is_counted, reset),
      cmocka_unit_test_setup(test_loop_over_same_zones_does_not_grow_memory, reset),
  };
  return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
