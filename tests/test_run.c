/* Runs: the tree monitor fed known samples (peaks of the tree, ends, reused pids, the record
 * limit, GPU memory per process), the run report (how a run ended, OOM kills, the processes
 * section), merging in-process reports, PERFOPT_OUT per process, and po_run_* on a real child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "monitor/treemon.h"
#include "optimizer.h"
#include "platform.h"
#include "report/report_build.h"
#include "support/support.h"

#define MIB (1024ull * 1024)
#define CONTAINER "tests/fakes/proc/container"

static po_config fake_root(void) {
  po_config c;
  po_config_defaults(&c);
  snprintf(c.proc_root, sizeof c.proc_root, "%s", CONTAINER);
  return c;
}

/* A monitor on the fake root whose readings the test provides (po__treemon_push). */
static po__treemon *fed_monitor(void) {
  po_config c = fake_root();
  po__treemon *m = NULL;
  assert_int_equal(po__treemon_create(&c, 100, 0, NULL, &m), 0);
  return m;
}

static po_proc_info row(int pid, int ppid, double start, uint64_t rss, double cpu) {
  po_proc_info r;
  memset(&r, 0, sizeof r);
  r.pid = pid;
  r.ppid = ppid;
  snprintf(r.comm, sizeof r.comm, "p%d", pid);
  r.state = 'R';
  r.start_seconds = start;
  r.rss_bytes = rss;
  r.peak_rss_bytes = rss;
  r.user_seconds = cpu;
  r.threads = 1;
  r.open_fds = 3;
  return r;
}

static po_proc_tree_totals sum(const po_proc_info *rows, size_t n) {
  po_proc_tree_totals t;
  memset(&t, 0, sizeof t);
  for (size_t i = 0; i < n; i++) {
    t.processes++;
    t.rss_bytes += rows[i].rss_bytes;
    t.threads += rows[i].threads;
    t.open_fds += rows[i].open_fds;
    t.cpu_ratio += rows[i].cpu_ratio;
  }
  return t;
}

static void push(po__treemon *m, double t, const po_proc_info *rows, size_t n) {
  po_proc_tree_totals tot = sum(rows, n);
  po__treemon_push(m, t, rows, n, &tot, NULL, 0, NULL, NULL);
}

static po__treemon_snapshot *snap_of(po__treemon *m) {
  po__treemon_snapshot *s = NULL;
  assert_int_equal(po__treemon_snapshot_create(m, &s), 0);
  return s;
}

/* ---- the tree monitor ------------------------------------------------------------------------ */

static void test_tree_peak_is_the_peak_of_the_sum(void **state) {
  (void)state;
  po__treemon *m = fed_monitor();
  /* Two processes whose own peaks (60 and 50 MiB) come at different times: the tree's peak is
   * the largest sum at one sample (70 MiB at t=2), not the sum of the peaks (110 MiB). */
  po_proc_info a[2] = {row(10, 1, 1, 60 * MIB, 0), row(11, 10, 1, 10 * MIB, 0)};
  push(m, 1, a, 2);
  po_proc_info b[2] = {row(10, 1, 1, 20 * MIB, 0), row(11, 10, 1, 50 * MIB, 0)};
  push(m, 2, b, 2);
  po_proc_info c[1] = {row(10, 1, 1, 5 * MIB, 0)};
  push(m, 3, c, 1);
  po__treemon_snapshot *s = snap_of(m);
  assert_int_equal(s->peak_rss_bytes, 70 * MIB);
  assert_true(fabs(s->peak_rss_seconds - 1) < 1e-9); /* 70 at t=1 first: the first wins ties */
  assert_int_equal(s->nprocs, 2);
  assert_int_equal(s->procs[0].peak_rss_bytes, 60 * MIB);
  assert_int_equal(s->procs[1].peak_rss_bytes, 50 * MIB);
  assert_int_equal(s->procs[1].state, PO__PROC_ENDED); /* gone at t=3 */
  assert_true(fabs(s->procs[1].end_seconds - 3) < 1e-9);
  assert_int_equal(s->procs[0].state, PO__PROC_RUNNING);
  assert_int_equal(s->samples, 3);
  assert_int_equal(s->nlast, 3);
  assert_int_equal(s->last_samples[2].rss_bytes, 5 * MIB);
  assert_non_null(s->series);
  assert_int_equal(po__series_len(s->series), 3);
  po__treemon_snapshot_destroy(s);
  po__treemon_destroy(m);
}

static void test_a_reused_pid_is_a_new_process(void **state) {
  (void)state;
  po__treemon *m = fed_monitor();
  po_proc_info a = row(10, 1, 100.0, MIB, 1.0);
  push(m, 1, &a, 1);
  po_proc_info b = row(10, 1, 250.0, 2 * MIB, 0.5); /* same pid, another start time */
  push(m, 2, &b, 1);
  po__treemon_snapshot *s = snap_of(m);
  assert_int_equal(s->nprocs, 2);
  assert_int_equal(s->procs[0].state, PO__PROC_ENDED);
  assert_true(fabs(s->procs[0].user_seconds - 1.0) < 1e-9);
  assert_int_equal(s->procs[1].state, PO__PROC_RUNNING);
  po__treemon_snapshot_destroy(s);
  po__treemon_destroy(m);
}

static void test_processes_beyond_the_records_are_summed(void **state) {
  (void)state;
  po__treemon *m = fed_monitor();
  size_t n = PO__TREEMON_PROCS + 10;
  po_proc_info *rows = calloc(n, sizeof *rows);
  assert_non_null(rows);
  for (size_t i = 0; i < n; i++) {
    rows[i] = row((int)(1000 + i), 1, 0, MIB, 0);
    rows[i].first_read = 1;
    rows[i].cpu_ratio = 0.5;
  }
  push(m, 1, rows, n);
  for (size_t i = 0; i < n; i++) rows[i].first_read = 0;
  push(m, 3, rows, n); /* 2 s more at half a core each for the 10 others */
  po__treemon_snapshot *s = snap_of(m);
  assert_int_equal(s->nprocs, PO__TREEMON_PROCS);
  assert_int_equal(s->others_count, 10);
  assert_true(fabs(s->others_cpu_seconds - 10 * 0.5 * 2) < 1e-6);
  assert_int_equal(s->last.processes, n);
  po__treemon_snapshot_destroy(s);
  po__treemon_destroy(m);
  free(rows);
}

static void test_gpu_memory_is_attributed_per_process(void **state) {
  (void)state;
  po__treemon *m = fed_monitor();
  po_gpu_info g[2];
  memset(g, 0, sizeof g);
  g[0].processes_known = g[1].processes_known = 1;
  g[0].process_count = 2;
  g[0].processes[0] = (po_gpu_process){10, 512 * MIB};
  g[0].processes[1] = (po_gpu_process){999, 4096 * MIB}; /* not in the tree */
  g[1].process_count = 1;
  g[1].processes[0] = (po_gpu_process){10, 256 * MIB};
  po_proc_info rows[2] = {row(10, 1, 0, MIB, 0), row(11, 10, 0, MIB, 0)};
  po_proc_tree_totals tot = sum(rows, 2);
  po_run_progress p;
  po__treemon_push(m, 1, rows, 2, &tot, g, 2, "", &p);
  assert_int_equal(p.gpu_memory_bytes, 768 * MIB);
  g[0].processes[0].used_memory_bytes = 1024 * MIB;
  po__treemon_push(m, 2, rows, 2, &tot, g, 2, "", &p);
  g[0].process_count = g[1].process_count = 0;
  po__treemon_push(m, 3, rows, 2, &tot, g, 2, "", &p);
  assert_int_equal(p.gpu_memory_bytes, 0);
  po__treemon_snapshot *s = snap_of(m);
  assert_int_equal(s->gpu_peak_bytes, 1280 * MIB);
  assert_true(fabs(s->gpu_peak_seconds - 2) < 1e-9);
  assert_int_equal(s->procs[0].gpu_peak_memory_bytes, 1280 * MIB);
  assert_int_equal(s->procs[1].gpu_peak_memory_bytes, -1); /* never on a GPU */
  assert_int_equal(po__series_columns(s->series), 6);         /* with the GPU column */
  po__treemon_snapshot_destroy(s);
  po__treemon_destroy(m);
}

static void test_reaped_usage_counts_only_without_descendants(void **state) {
  (void)state;
  po__treemon *m = fed_monitor();
  po_proc_info rows[3] = {row(10, 1, 0, MIB, 0.1), row(11, 10, 0, MIB, 0.1), row(12, 1, 0, MIB, 0.1)};
  push(m, 1, rows, 3);
  po_child_usage u = {.user_seconds = 5, .max_rss_bytes = 300 * MIB};
  po__treemon_reaped(m, 2, 10, 0x0900 /* exited with 9 */, &u); /* 10 has a child: its own? no */
  po__treemon_reaped(m, 2, 12, SIGKILL, &u);
  po__treemon_snapshot *s = snap_of(m);
  assert_int_equal(s->procs[0].state, PO__PROC_REAPED);
  assert_int_equal(s->procs[0].exit_code, 9);
  assert_true(fabs(s->procs[0].user_seconds - 0.1) < 1e-9);
  assert_int_equal(s->procs[0].peak_rss_bytes, MIB);
  assert_int_equal(s->procs[2].signal, SIGKILL);
  assert_true(fabs(s->procs[2].user_seconds - 5) < 1e-9);
  assert_int_equal(s->procs[2].peak_rss_bytes, 300 * MIB);
  po__treemon_snapshot_destroy(s);
  po__treemon_destroy(m);
}

/* ---- the run report ---------------------------------------------------------------------------- */

typedef struct built {
  po__treemon *m;
  po__treemon_snapshot *s;
  po_report *rep;
} built;

static const cJSON *build(built *b, const po_run_end *end, int64_t oom_before, int64_t oom_after,
                          const cJSON *const *reports, size_t n) {
  b->m = fed_monitor();
  po_proc_info rows[2] = {row(10, 1, 0, 40 * MIB, 0.5), row(11, 10, 0, 30 * MIB, 0.5)};
  push(b->m, 0.5, rows, 2);
  push(b->m, 1.0, rows, 1);
  b->s = snap_of(b->m);
  static const char *const argv[] = {"train", "--epochs", "3"};
  po__run_sources src = {0};
  src.pid = 10;
  src.start_unix_seconds = 1000;
  src.wall_seconds = 2;
  src.interval_seconds = 0.25;
  src.argv = argv;
  src.argc = 3;
  src.end = end;
  src.oom_cgroup_before = oom_before;
  src.oom_cgroup_after = oom_after;
  src.oom_system_before = src.oom_system_after = -1;
  src.tree = b->s;
  src.reports = reports;
  src.nreports = n;
  assert_int_equal(po__report_create_run(&src, &b->rep), 0);
  return po_report_json(b->rep);
}

static void unbuild(built *b) {
  po_report_destroy(b->rep);
  po__treemon_snapshot_destroy(b->s);
  po__treemon_destroy(b->m);
}

static const cJSON *exit_of(const cJSON *root) {
  return cJSON_GetObjectItem(cJSON_GetObjectItem(root, "run"), "exit");
}

static void test_sigkill_with_an_oom_kill_is_out_of_memory(void **state) {
  (void)state;
  built b;
  po_run_end e = {.how = PO_RUN_KILLED, .signal = SIGKILL};
  const cJSON *x = exit_of(build(&b, &e, 3, 4, NULL, 0));
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(x, "oom_killed")));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "signal_name")), "SIGKILL");
  assert_int_equal((int)support_num(x, "shell_status"), 137);
  assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(x, "description")), "out of memory"));
  unbuild(&b);
  /* the same kill without the counter rising: another SIGKILL */
  x = exit_of(build(&b, &e, 4, 4, NULL, 0));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(x, "oom_killed")));
  unbuild(&b);
  /* and with no counter to read: not known */
  x = exit_of(build(&b, &e, -1, -1, NULL, 0));
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(x, "oom_killed")));
  unbuild(&b);
}

static void test_exit_fields_of_a_normal_exit_and_a_timeout(void **state) {
  (void)state;
  built b;
  po_run_end e = {.how = PO_RUN_EXITED, .exit_code = 3};
  const cJSON *root = build(&b, &e, 0, 0, NULL, 0), *x = exit_of(root);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "status")), "exited");
  assert_int_equal((int)support_num(x, "exit_code"), 3);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(x, "signal")));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(x, "oom_killed")));
  const cJSON *run = cJSON_GetObjectItem(root, "run");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(run, "mode")), "run");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(run, "argv")), 3);
  unbuild(&b);
  po_run_end t = {.how = PO_RUN_KILLED, .signal = SIGTERM, .timed_out = 1};
  x = exit_of(build(&b, &t, 0, 0, NULL, 0));
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(x, "status")), "timeout");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(x, "timed_out")));
  unbuild(&b);
}

static void test_processes_section(void **state) {
  (void)state;
  built b;
  po_run_end e = {.how = PO_RUN_EXITED, .has_usage = 1};
  e.children.user_seconds = 7;
  e.children.max_rss_bytes = 90 * MIB;
  const cJSON *root = build(&b, &e, 0, 0, NULL, 0);
  const cJSON *pr = cJSON_GetObjectItem(root, "processes");
  assert_non_null(pr);
  const cJSON *t = cJSON_GetObjectItem(pr, "totals");
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(t, "source")), "rusage");
  assert_int_equal((uint64_t)support_num(t, "peak_rss_bytes"), 70 * MIB);
  assert_int_equal((uint64_t)support_num(t, "max_process_peak_rss_bytes"), 90 * MIB);
  /* 7 s of reaped children plus the still running process's 0.5 s (the ended one's 0.5 s is in
   * the children's: it was reaped) */
  assert_true(fabs(support_num(t, "user_seconds") - 7.5) < 1e-9);
  const cJSON *list = cJSON_GetObjectItem(pr, "list");
  assert_int_equal(cJSON_GetArraySize(list), 2);
  const cJSON *p1 = cJSON_GetArrayItem(list, 1);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(p1, "state")), "ended");
  const cJSON *series = cJSON_GetObjectItem(pr, "series");
  assert_int_equal(cJSON_GetArraySize(series), 5); /* no GPU column without GPUs */
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 0), "name")),
                      "tree_cpu_ratio");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(pr, "last_samples")), 2);
  /* every section a report has, so that every output works on it */
  static const char *const keys[] = {"perfopt_version", "host", "run", "profile", "memory",
                                     "resources", "gpu", "cache", "suggestions"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    assert_non_null(cJSON_GetObjectItem(root, keys[i]));
  unbuild(&b);
}

static void test_summary_says_how_it_ended(void **state) {
  (void)state;
  built b;
  po_run_end e = {.how = PO_RUN_KILLED, .signal = SIGKILL};
  build(&b, &e, 0, 1, NULL, 0);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_int_equal(po_report_write_summary(b.rep, f, 5), 0);
  fclose(f);
  assert_non_null(strstr(text, "train --epochs 3 killed by SIGKILL"));
  assert_non_null(strstr(text, "out of memory"));
  assert_non_null(strstr(text, "last samples"));
  assert_non_null(strstr(text, "peak RSS of the tree 70 MiB"));
  free(text);
  FILE *full = fopen("/dev/full", "w");
  if (full) {
    setvbuf(full, NULL, _IONBF, 0);
    assert_int_equal(po_report_write_summary(b.rep, full, 5), PO_EIO);
    fclose(full);
  }
  assert_int_equal(po_report_write_summary(NULL, stderr, 5), PO_EINVAL);
  unbuild(&b);
}

/* ---- merging in-process reports ---------------------------------------------------------------- */

static cJSON *parse(const char *text) {
  cJSON *j = cJSON_Parse(text);
  assert_non_null(j);
  return j;
}

static const char *const REPORT_A =
    "{\"perfopt_version\":\"0.1.0\",\"run\":{\"pid\":10,\"start_unix_seconds\":1,\"wall_seconds\":2},"
    "\"memory\":{\"rss_bytes\":111},"
    "\"profile\":{\"wall_seconds\":2,\"functions\":["
    "{\"name\":\"step\",\"file\":\"t.c\",\"line\":5,\"calls\":10,\"total_seconds\":1,\"self_seconds\":0.5,"
    "\"avg_seconds\":0.1,\"min_seconds\":0.05,\"max_seconds\":0.2,\"stddev_seconds\":0,\"p50_seconds\":0.1},"
    "{\"name\":\"load\",\"file\":\"t.c\",\"line\":9,\"calls\":1,\"total_seconds\":0.5,\"self_seconds\":0.5,"
    "\"avg_seconds\":0.5,\"min_seconds\":0.5,\"max_seconds\":0.5,\"p50_seconds\":0.5}],"
    "\"call_tree\":[{\"id\":0,\"parent\":-1,\"name\":\"main\",\"calls\":1,\"total_seconds\":1.5},"
    "{\"id\":1,\"parent\":0,\"name\":\"step\",\"calls\":10,\"total_seconds\":1}],"
    "\"threads\":[{\"tid\":10,\"calls\":11}],\"counters\":{\"unmatched_ends\":1},"
    "\"timeline\":{\"enabled\":true,\"events\":[{\"tid\":10,\"name\":\"step\"}]}}}";

static const char *const REPORT_B =
    "{\"perfopt_version\":\"0.1.0\",\"run\":{\"pid\":11,\"start_unix_seconds\":1.5,\"wall_seconds\":1},"
    "\"memory\":{\"rss_bytes\":222},"
    "\"profile\":{\"wall_seconds\":1,\"functions\":["
    "{\"name\":\"step\",\"file\":\"t.c\",\"line\":5,\"calls\":30,\"total_seconds\":3,\"self_seconds\":2,"
    "\"avg_seconds\":0.1,\"min_seconds\":0.01,\"max_seconds\":0.3,\"stddev_seconds\":0,\"p50_seconds\":0.1}],"
    "\"call_tree\":[{\"id\":7,\"parent\":-1,\"name\":\"main\",\"calls\":1,\"total_seconds\":3},"
    "{\"id\":8,\"parent\":7,\"name\":\"step\",\"calls\":30,\"total_seconds\":3},"
    "{\"id\":9,\"parent\":8,\"name\":\"io\",\"calls\":2,\"total_seconds\":1}],"
    "\"threads\":[{\"tid\":11,\"calls\":30}],\"counters\":{\"unmatched_ends\":2}}}";

static const cJSON *find_fn(const cJSON *root, const char *name) {
  return support_find_function(root, name);
}

static void test_merge_sums_functions_and_merges_call_trees_by_path(void **state) {
  (void)state;
  cJSON *a = parse(REPORT_A), *b2 = parse(REPORT_B);
  const cJSON *reps[2] = {a, b2};
  built b;
  po_run_end e = {.how = PO_RUN_EXITED};
  const cJSON *root = build(&b, &e, 0, 0, reps, 2);
  const cJSON *step = find_fn(root, "step");
  assert_non_null(step);
  assert_int_equal((int)support_num(step, "calls"), 40);
  assert_true(fabs(support_num(step, "total_seconds") - 4) < 1e-9);
  assert_true(fabs(support_num(step, "self_seconds") - 2.5) < 1e-9);
  assert_true(fabs(support_num(step, "min_seconds") - 0.01) < 1e-9);
  assert_true(fabs(support_num(step, "max_seconds") - 0.3) < 1e-9);
  assert_true(cJSON_IsNull(cJSON_GetObjectItem(step, "p50_seconds"))); /* not mergeable */
  assert_int_equal((int)support_num(step, "processes"), 2);
  const cJSON *load = find_fn(root, "load");
  assert_true(fabs(support_num(load, "p50_seconds") - 0.5) < 1e-9); /* one process: kept */
  const cJSON *prof = cJSON_GetObjectItem(root, "profile");
  assert_int_equal((int)support_num(prof, "processes"), 2);
  const cJSON *tree = cJSON_GetObjectItem(prof, "call_tree");
  assert_int_equal(cJSON_GetArraySize(tree), 3); /* main, main/step, main/step/io */
  const cJSON *n0 = cJSON_GetArrayItem(tree, 0), *n1 = cJSON_GetArrayItem(tree, 1),
              *n2 = cJSON_GetArrayItem(tree, 2);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(n1, "name")), "step");
  assert_int_equal((int)support_num(n1, "calls"), 40);
  assert_int_equal((int)support_num(n1, "parent"), (int)support_num(n0, "id"));
  assert_int_equal((int)support_num(n2, "parent"), (int)support_num(n1, "id"));
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(prof, "threads")), 2);
  const cJSON *t1 = cJSON_GetArrayItem(cJSON_GetObjectItem(prof, "threads"), 1);
  assert_int_equal((int)support_num(t1, "pid"), 11);
  assert_int_equal((int)support_num(cJSON_GetObjectItem(prof, "counters"), "unmatched_ends"), 3);
  /* the first process's memory section; every process's in processes.reports */
  assert_int_equal((int)support_num(cJSON_GetObjectItem(root, "memory"), "rss_bytes"), 111);
  const cJSON *pr = cJSON_GetObjectItem(root, "processes");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(pr, "reports")), 2);
  const cJSON *l0 = cJSON_GetArrayItem(cJSON_GetObjectItem(pr, "list"), 0);
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(l0, "in_process_report")));
  unbuild(&b);
  cJSON_Delete(a);
  cJSON_Delete(b2);
}

static void test_merge_takes_malformed_reports_without_trusting_them(void **state) {
  (void)state;
  static const char *const bad[] = {
      "{\"profile\":{\"functions\":{\"a\":1},\"call_tree\":7,\"threads\":\"x\"}}",
      "{\"run\":{\"pid\":1e300},\"profile\":{\"functions\":[1,\"x\",{\"name\":5,\"calls\":\"z\"}],"
      "\"call_tree\":[{\"id\":1e300,\"parent\":1e300,\"name\":\"x\"},{\"id\":2,\"parent\":99},"
      "{\"id\":3,\"parent\":3},{\"id\":-4,\"parent\":-1}]}}",
      "{\"profile\":null,\"memory\":[],\"run\":[]}",
      "[]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cJSON *j = parse(bad[i]);
    const cJSON *reps[2] = {j, j};
    built b;
    po_run_end e = {.how = PO_RUN_EXITED};
    const cJSON *root = build(&b, &e, 0, 0, reps, 2);
    assert_non_null(cJSON_GetObjectItem(root, "profile"));
    unbuild(&b);
    cJSON_Delete(j);
  }
}

/* The report build under allocation failure: every failure is the whole build's error. */
static void *fail_malloc(size_t n) {
  return po__test_malloc(n);
}

static void test_run_report_survives_every_allocation_failure(void **state) {
  (void)state;
  cJSON *a = parse(REPORT_A), *b2 = parse(REPORT_B);
  const cJSON *reps[2] = {a, b2};
  po__treemon *m = fed_monitor();
  po_proc_info rows[2] = {row(10, 1, 0, 40 * MIB, 0.5), row(11, 10, 0, 30 * MIB, 0.5)};
  push(m, 0.5, rows, 2);
  po_run_end e = {.how = PO_RUN_EXITED};
  cJSON_Hooks hooks = {fail_malloc, free};
  cJSON_InitHooks(&hooks);
  for (uint64_t k = 1;; k++) {
    po__treemon_snapshot *s = NULL;
    po_report *rep = NULL;
    po__fault_fail_at(k, 0);
    int rc = po__treemon_snapshot_create(m, &s);
    if (!rc) {
      po__run_sources src = {0};
      src.end = &e;
      src.tree = s;
      src.reports = reps;
      src.nreports = 2;
      rc = po__report_create_run(&src, &rep);
    }
    uint64_t injected = po__fault_injected();
    po__fault_fail_at(0, 0);
    assert_true(rc == 0 || rc == PO_ENOMEM);
    assert_true((rc == 0) == (rep != NULL));
    po_report_destroy(rep);
    po__treemon_snapshot_destroy(s);
    if (!injected) {
      assert_true(k > 200); /* the build went through the door (cJSON's allocations too) */
      break;
    }
  }
  cJSON_InitHooks(NULL);
  po__treemon_destroy(m);
  cJSON_Delete(a);
  cJSON_Delete(b2);
}

/* ---- PERFOPT_OUT: one report per process ------------------------------------------------------- */

static void test_perfopt_out_directory_gets_one_report_per_process(void **state) {
  (void)state;
  char dir[300], path[400];
  snprintf(dir, sizeof dir, "%s/outdir", support_tmpdir());
  mkdir(dir, 0700);
  char value[320];
  snprintf(value, sizeof value, "%s/", dir);
  setenv("PERFOPT_OUT", value, 1);
  po__test_write_out_report();
  snprintf(path, sizeof path, "%s/perfopt-%d.json", dir, (int)getpid());
  assert_int_equal(access(path, F_OK), 0);
  po__test_write_out_report(); /* a second process with this pid: another name */
  snprintf(path, sizeof path, "%s/perfopt-%d-2.json", dir, (int)getpid());
  assert_int_equal(access(path, F_OK), 0);
  /* a forked child writes its own */
  pid_t c = fork();
  if (c == 0) {
    po__test_write_out_report();
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  snprintf(path, sizeof path, "%s/perfopt-%d.json", dir, (int)c);
  assert_int_equal(access(path, F_OK), 0);
  unsetenv("PERFOPT_OUT");
}

static void test_perfopt_out_with_pid_pattern_and_plain_path(void **state) {
  (void)state;
  char value[400], path[400];
  snprintf(value, sizeof value, "%s/r-%%p.json", support_tmpdir());
  setenv("PERFOPT_OUT", value, 1);
  po__test_write_out_report();
  snprintf(path, sizeof path, "%s/r-%d.json", support_tmpdir(), (int)getpid());
  assert_int_equal(access(path, F_OK), 0);
  /* a plain path: this process writes it, a forked child does not overwrite it */
  snprintf(value, sizeof value, "%s/plain.json", support_tmpdir());
  setenv("PERFOPT_OUT", value, 1);
  pid_t c = fork();
  if (c == 0) {
    po__test_write_out_report();
    _exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  assert_int_equal(access(value, F_OK), -1); /* positive control next */
  po__test_write_out_report();
  assert_int_equal(access(value, F_OK), 0);
  unsetenv("PERFOPT_OUT");
}

static void test_a_failed_write_leaves_a_marker_the_run_reports(void **state) {
  (void)state;
  char dir[300], value[320], path[400];
  snprintf(dir, sizeof dir, "%s/faildir", support_tmpdir());
  mkdir(dir, 0700);
  snprintf(value, sizeof value, "%s/", dir);
  setenv("PERFOPT_OUT", value, 1);
  po__test_fail_write_at(2); /* the write fails, as on a full disk */
  po__test_write_out_report();
  po__test_fail_write_at(0);
  unsetenv("PERFOPT_OUT");
  snprintf(path, sizeof path, "%s/perfopt-%d.err", dir, (int)getpid());
  assert_int_equal(access(path, F_OK), 0);
  /* A run reading this directory lists the failure. */
  po_run *r = NULL;
  po_run_options o = {0, NULL, dir, 0.25};
  assert_int_equal(po_run_create(NULL, &o, &r), 0);
  po_report *rep = NULL;
  assert_int_equal(po_run_report_create(r, &rep), 0);
  const cJSON *in = cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "processes"),
                                        "in_process_reports");
  const cJSON *err = cJSON_GetArrayItem(cJSON_GetObjectItem(in, "errors"), 0);
  assert_non_null(err);
  assert_int_equal((int)support_num(err, "pid"), (int)getpid());
  assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(err, "message")), "write failed"));
  po_report_destroy(rep);
  po_run_destroy(r);
}

/* ---- po_run on a real child ---------------------------------------------------------------------- */

static void test_run_of_a_real_child_knows_its_peak(void **state) {
  (void)state;
  int go[2], ready[2];
  assert_int_equal(pipe(go), 0);
  assert_int_equal(pipe(ready), 0);
  po_run *r = NULL;
  static const char *const argv[] = {"child", NULL};
  po_run_options o = {0, argv, NULL, 0.1};
  assert_int_equal(po_run_create(NULL, &o, &r), 0);
  pid_t c = fork();
  if (c == 0) {
    close(go[1]);
    char *p = malloc(48 * MIB), ch = 0;
    if (!p) _exit(1);
    memset(p, 1, 48 * MIB);
    if (write(ready[1], &ch, 1) != 1 || read(go[0], &ch, 1) < 0) _exit(1);
    _exit(7);
  }
  char ch;
  close(go[0]);
  close(ready[1]);
  assert_int_equal(read(ready[0], &ch, 1), 1);
  close(ready[0]);
  assert_int_equal(po_run_set_child(r, (int)c), 0);
  po_run_progress p;
  assert_int_equal(po_run_sample(r, &p), 0);
  assert_true(p.rss_bytes >= 48 * MIB);
  assert_true(p.processes >= 1);
  close(go[1]);
  int st;
  struct rusage ru;
  assert_int_equal(wait4(c, &st, 0, &ru), c);
  po_child_usage u = {.max_rss_bytes = (uint64_t)ru.ru_maxrss * 1024};
  assert_int_equal(po_run_reaped(r, (int)c, st, &u), 0);
  po_run_end e = {.how = PO_RUN_EXITED, .exit_code = WEXITSTATUS(st)};
  assert_int_equal(po_run_finish(r, &e), 0);
  po_report *rep = NULL;
  assert_int_equal(po_run_report_create(r, &rep), 0);
  const cJSON *root = po_report_json(rep);
  assert_int_equal((int)support_num(exit_of(root), "exit_code"), 7);
  const cJSON *l0 = cJSON_GetArrayItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(root, "processes"), "list"), 0);
  assert_int_equal((int)support_num(l0, "pid"), (int)c);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(l0, "state")), "exited");
  assert_true(support_num(l0, "peak_rss_bytes") >= (double)(48 * MIB));
  po_report_destroy(rep);
  po_run_destroy(r);
}

static void test_run_create_survives_every_allocation_failure(void **state) {
  (void)state;
  static const char *const argv[] = {"a", "b", NULL};
  for (uint64_t k = 1;; k++) {
    po_run *r = NULL;
    po_run_options o = {0, argv, "/nonexistent", 0.25};
    po__fault_fail_at(k, 0);
    int rc = po_run_create(NULL, &o, &r);
    uint64_t injected = po__fault_injected();
    po__fault_fail_at(0, 0);
    assert_true(rc == 0 || rc == PO_ENOMEM);
    assert_true((rc == 0) == (r != NULL));
    po_run_destroy(r);
    if (!injected) break;
  }
}

static void test_attach_to_a_missing_process_is_enoent(void **state) {
  (void)state;
  po_run *r = (po_run *)1;
  po_run_options o = {999999999, NULL, NULL, 0.25};
  assert_int_equal(po_run_create(NULL, &o, &r), PO_ENOENT);
  assert_null(r);
  assert_int_equal(po_run_create(NULL, NULL, &r), PO_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tree_peak_is_the_peak_of_the_sum),
      cmocka_unit_test(test_a_reused_pid_is_a_new_process),
      cmocka_unit_test(test_processes_beyond_the_records_are_summed),
      cmocka_unit_test(test_gpu_memory_is_attributed_per_process),
      cmocka_unit_test(test_reaped_usage_counts_only_without_descendants),
      cmocka_unit_test(test_sigkill_with_an_oom_kill_is_out_of_memory),
      cmocka_unit_test(test_exit_fields_of_a_normal_exit_and_a_timeout),
      cmocka_unit_test(test_processes_section),
      cmocka_unit_test(test_summary_says_how_it_ended),
      cmocka_unit_test(test_merge_sums_functions_and_merges_call_trees_by_path),
      cmocka_unit_test(test_merge_takes_malformed_reports_without_trusting_them),
      cmocka_unit_test(test_run_report_survives_every_allocation_failure),
      cmocka_unit_test(test_perfopt_out_directory_gets_one_report_per_process),
      cmocka_unit_test(test_perfopt_out_with_pid_pattern_and_plain_path),
      cmocka_unit_test(test_a_failed_write_leaves_a_marker_the_run_reports),
      cmocka_unit_test(test_run_of_a_real_child_knows_its_peak),
      cmocka_unit_test(test_run_create_survives_every_allocation_failure),
      cmocka_unit_test(test_attach_to_a_missing_process_is_enoent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
