/* Heap tracking: programs from tests/heap/ run under libperfopt-heap.so with a session, then the
 * session's snapshot is checked against what each program is known to do.
 *
 * The children are plain programs (never sanitized: ASan and TSan bring their own malloc), so
 * under `make asan` / `make tsan` the reader, the symbolizer and the report code are the
 * instrumented part. Every wait has a timeout; no assertion depends on timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "monitor/heap_session.h"
#include "perfopt.h"
#include "report/report_build.h"
#include "report/report_heap.h"

#define MIB (1024 * 1024)
#define WAIT_SECONDS 60
/* What the child_pattern program leaks: early_ctor_alloc + 3 x leak_a + leak_b + leak_aligned. */
#define PATTERN_LEAK (777 + 3000 + 500 + 700)

static char shim[512];

static const char *build_dir(void) {
  const char *b = getenv("BUILD");
  return b && b[0] ? b : "build";
}

static void child_path(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/tests/heap/%s", build_dir(), name);
}

/* Waits for pid up to WAIT_SECONDS; kills it and fails the test on timeout. */
static int wait_child(pid_t pid) {
  for (int i = 0; i < WAIT_SECONDS * 100; i++) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  fail_msg("child %d did not finish in %d s", (int)pid, WAIT_SECONDS);
  return -1;
}

/* Starts `prog arg` under the session (s NULL: with the shim but no session). *out_fd, when
 * given, reads the child's stdout. */
static pid_t start_child(po_heap_session *s, const char *prog, const char *arg, int *out_fd) {
  char path[512];
  child_path(path, sizeof path, prog);
  int fds[2] = {-1, -1};
  if (out_fd) assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave it running */
    if (out_fd) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
    }
    if (s && po_heap_session_apply_env(s, shim) != 0) _exit(99);
    if (!s) setenv("LD_PRELOAD", shim, 1);
    execl(path, path, arg, (char *)NULL);
    _exit(98);
  }
  if (out_fd) {
    close(fds[1]);
    *out_fd = fds[0];
  }
  return pid;
}

/* Runs a child to its end; returns its wait status. */
static int run_child(po_heap_session *s, const char *prog, const char *arg) {
  return wait_child(start_child(s, prog, arg, NULL));
}

/* Reads the child's readiness byte, with a timeout. */
static void wait_ready(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  assert_int_equal(poll(&p, 1, WAIT_SECONDS * 1000), 1);
  char c = 0;
  assert_int_equal(read(fd, &c, 1), 1);
  assert_int_equal(c, 'R');
}

static po_heap_session *session(po_heap_mode mode) {
  po_heap_session *s = NULL;
  assert_int_equal(po_heap_session_create(mode, &s), 0);
  return s;
}

static po_heap_snapshot *snapshot(po_heap_session *s) {
  po_heap_snapshot *snap = NULL;
  assert_int_equal(po_heap_session_snapshot(s, 50, &snap), 0);
  assert_non_null(snap);
  return snap;
}

/* The first site whose innermost frame is the function `name`, or NULL. */
static const po_heap_site_info *site_named(const po_heap_process *p, const char *name) {
  for (size_t i = 0; i < p->site_count; i++) {
    const po_heap_site_info *s = &p->sites[i];
    if (s->frame_count && s->frames[0].function && !strcmp(s->frames[0].function, name)) return s;
  }
  return NULL;
}

/* The sum over every site whose innermost frame is `name` (a loop the compiler unrolled calls
 * from several return addresses: one site each). */
static po_heap_site_info sum_named(const po_heap_process *p, const char *name) {
  po_heap_site_info sum = {0};
  for (size_t i = 0; i < p->site_count; i++) {
    const po_heap_site_info *s = &p->sites[i];
    if (!s->frame_count || !s->frames[0].function || strcmp(s->frames[0].function, name)) continue;
    sum.allocations += s->allocations;
    sum.allocated_bytes += s->allocated_bytes;
    sum.live_allocations += s->live_allocations;
    sum.live_bytes += s->live_bytes;
    sum.bytes_at_peak += s->bytes_at_peak;
    sum.frame_count++; /* here: the number of sites */
  }
  return sum;
}

/* 1-based rank in a top list of the first site named `name`, 0 when absent. */
static int in_list(const po_heap_process *p, const size_t *list, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    const po_heap_site_info *s = &p->sites[list[i]];
    if (s->frame_count && s->frames[0].function && !strcmp(s->frames[0].function, name))
      return (int)i + 1;
  }
  return 0;
}

static const po_heap_process *only_process(const po_heap_snapshot *snap) {
  assert_int_equal(snap->process_count, 1);
  return &snap->processes[0];
}

static void assert_exited_ok(int status) {
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- the known pattern ------------------------------------------------------------------ */

static void assert_pattern_leaks(const po_heap_process *p) {
  po_heap_site_info a = sum_named(p, "leak_a"), b = sum_named(p, "leak_b"),
                    al = sum_named(p, "leak_aligned"), e = sum_named(p, "early_ctor_alloc");
  assert_int_equal(a.live_bytes, 3000);
  assert_int_equal(a.live_allocations, 3);
  assert_int_equal(a.allocations, 3);
  assert_int_equal(b.live_bytes, 500);
  assert_int_equal(al.live_bytes, 700);
  assert_int_equal(e.live_bytes, 777);
  assert_true(in_list(p, p->leak_sites, p->leak_site_count, "leak_a"));
  assert_true(p->leaked_bytes >= PATTERN_LEAK && p->leaked_bytes < PATTERN_LEAK + 4096);
}

static void test_known_peak_and_leaks_at_named_sites(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_string_equal(p->state, "exited");
  assert_string_equal(p->origin, "start");
  assert_pattern_leaks(p);
  /* peak: 8 MiB of big_alloc on top of the leaks made before it (all but nothing else) */
  int64_t floor = 8 * MIB + 777 + 3000 + 500 + 700;
  assert_true(p->peak_bytes >= floor && p->peak_bytes < floor + 4096);
  const po_heap_site_info *big = site_named(p, "big_alloc");
  assert_non_null(big);
  assert_int_equal(big->bytes_at_peak, 8 * MIB);
  assert_int_equal(big->live_bytes, 0);
  assert_int_equal(in_list(p, p->top_at_peak, p->top_at_peak_count, "big_alloc"), 1);
  assert_int_equal(in_list(p, p->top_by_total, p->top_by_total_count, "big_alloc"), 1);
  /* file:line from DWARF, the caller frame named too */
  assert_non_null(big->frames[0].file);
  assert_non_null(strstr(big->frames[0].file, "child_pattern.c"));
  assert_true(big->frames[0].line > 0);
  assert_true(big->frame_count >= 2);
  assert_string_equal(big->frames[1].function, "peak_phase");
  assert_int_equal(p->foreign_frees, 0);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_allocation_in_constructor_before_main_is_tracked(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  const po_heap_site_info *e = site_named(p, "early_ctor_alloc");
  assert_non_null(e);
  assert_int_equal(e->live_bytes, 777);
  assert_true(e->frame_count >= 2);
  assert_string_equal(e->frames[1].function, "before_main");
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_exact_mode_counts_peak_and_leaks_without_sites(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_EXACT);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  int64_t floor = 8 * MIB + PATTERN_LEAK;
  assert_true(p->peak_bytes >= floor && p->peak_bytes < floor + 4096);
  assert_true(p->leaked_bytes >= PATTERN_LEAK && p->leaked_bytes < PATTERN_LEAK + 4096);
  assert_int_equal(p->site_count, 0);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
  /* positive control: the same program in full mode has sites */
  s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  snap = snapshot(s);
  assert_true(only_process(snap)->site_count > 0);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
  s = session(PO_HEAP_EXACT);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  snap = snapshot(s);
  p = only_process(snap);
  /* the histogram: 8 allocations of exactly 1 MiB land in bucket [1 MiB, 2 MiB) */
  assert_true(p->size_histogram[21] >= 8);
  assert_true(p->allocations >= 3 + 1 + 1 + 8 + 1);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_sampled_mode_estimates_a_site_it_samples(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_SAMPLED);
  /* 4 KiB mean interval: a 1 MiB block is sampled with p = 1 - e^-256, i.e. always. */
  assert_int_equal(po_heap_session_set_sample_interval(s, 4096), 0);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  const po_heap_site_info *big = site_named(p, "big_alloc");
  assert_non_null(big);
  assert_int_equal(big->allocated_bytes, 8 * MIB);
  assert_int_equal(big->allocations, 8);
  assert_true(p->sampled_allocations >= 8);
  assert_true(p->sampled_allocations < p->allocations); /* small blocks were not all sampled */
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_realloc_and_aligned_variants_keep_their_contracts(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  /* The child checks alignment, contents across realloc and usable sizes (exit code 10+). */
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  const po_heap_site_info *v = site_named(p, "variants");
  assert_non_null(v); /* the variants' blocks were recorded at their call site... */
  int64_t variants_live = 0;
  for (size_t i = 0; i < p->site_count; i++) {
    const po_heap_site_info *x = &p->sites[i];
    for (size_t f = 0; f < x->frame_count; f++) {
      if (x->frames[f].function && !strcmp(x->frames[f].function, "variants")) {
        variants_live += x->live_bytes;
        break;
      }
    }
  }
  assert_int_equal(variants_live, 0); /* ...and every one of them was released */
  assert_int_equal(p->foreign_frees, 0);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

/* ---- threads, fork, exec, dlopen -------------------------------------------------------- */

static void test_threads_are_counted_and_exited_threads_slots_reused(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_threads", "pool"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_true(p->allocations >= 4 * 10001 + 300);
  po_heap_site_info t = sum_named(p, "thread_leak");
  assert_int_equal(t.live_bytes, 400);
  assert_int_equal(t.live_allocations, 4);
  assert_int_equal(p->threads_shared, 0); /* 304 threads, never more than 5 at once */
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_threads_beyond_the_slots_share_counters_and_stay_exact(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_threads", "concurrent"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_true(p->threads_shared > 0); /* 140 at once, 128 slots */
  assert_int_equal(sum_named(p, "thread_leak").live_bytes, 1400);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static const po_heap_process *process_with(const po_heap_snapshot *snap, const char *origin) {
  for (size_t i = 0; i < snap->process_count; i++) {
    if (!strcmp(snap->processes[i].origin, origin)) return &snap->processes[i];
  }
  return NULL;
}

static void test_fork_child_gets_its_own_slot(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_fork", NULL));
  po_heap_snapshot *snap = snapshot(s);
  assert_int_equal(snap->process_count, 2);
  const po_heap_process *parent = process_with(snap, "start"), *child = process_with(snap, "fork");
  assert_non_null(parent);
  assert_non_null(child);
  assert_int_equal(child->ppid, parent->pid);
  assert_int_equal(snap->processes[child->parent_index].pid, parent->pid);
  assert_string_equal(child->state, "exited");
  const po_heap_site_info *cl = site_named(child, "child_leak");
  assert_non_null(cl);
  assert_int_equal(cl->live_bytes, 2000);
  assert_null(site_named(parent, "child_leak")); /* the child's data is its own */
  assert_int_equal(site_named(parent, "parent_leak")->live_bytes, 1000);
  assert_true(child->inherited_bytes >= 1000);
  /* the child inherited the parent's block: still live there, with its site */
  assert_int_equal(site_named(child, "parent_leak")->live_bytes, 1000);
  assert_int_equal(site_named(child, "parent_leak")->allocations, 0);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_processes_beyond_the_slots_are_counted_and_run_untracked(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  /* 71 processes: the first 64 get a slot, the rest pass through (and must still run right) */
  assert_exited_ok(run_child(s, "child_fork", "many"));
  po_heap_snapshot *snap = snapshot(s);
  assert_int_equal(snap->process_count, 64);
  assert_int_equal(snap->processes_dropped, 7);
  assert_int_equal(snap->slots_invalid, 0);
  /* the parent's block, freed in every child, is still live in the parent */
  assert_int_equal(site_named(process_with(snap, "start"), "parent_leak")->live_bytes, 1000);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_exec_starts_a_new_slot_and_marks_the_old_one(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_exec", NULL));
  po_heap_snapshot *snap = snapshot(s);
  assert_int_equal(snap->process_count, 2);
  const po_heap_process *before = process_with(snap, "start"), *after = process_with(snap, "exec");
  assert_non_null(before);
  assert_non_null(after);
  assert_int_equal(before->pid, after->pid);
  assert_string_equal(before->state, "exec");
  assert_string_equal(after->state, "exited");
  assert_int_equal(snap->processes[after->parent_index].pid, before->pid);
  assert_int_equal(site_named(before, "pre_exec_leak")->live_bytes, 1234);
  assert_int_equal(before->leak_site_count, 0); /* exec is not a leak... */
  assert_true(after->leak_site_count > 0);      /* ...an exit is */
  assert_int_equal(site_named(after, "post_exec_leak")->live_bytes, 4321);
  assert_null(site_named(after, "pre_exec_leak"));
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_dlopen_adds_the_library_to_the_module_map(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_dlopen", NULL));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  int found = 0;
  for (size_t i = 0; i < p->site_count && !found; i++) {
    const po_heap_site_info *x = &p->sites[i];
    for (size_t f = 0; f < x->frame_count; f++) {
      const po_heap_frame *fr = &x->frames[f];
      if (fr->function && !strcmp(fr->function, "cJSON_CreateObject") && fr->module &&
          strstr(fr->module, "libcjson"))
        found = x->live_bytes > 0;
    }
  }
  assert_true(found);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

/* ---- dying children --------------------------------------------------------------------- */

static void test_sigkilled_child_data_is_still_readable(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  int fd;
  pid_t pid = start_child(s, "child_pattern", "kill", &fd);
  wait_ready(fd);
  po_heap_totals t;
  assert_int_equal(po_heap_session_totals(s, &t), 0);
  assert_int_equal(t.processes_running, 1); /* positive control: running before the kill */
  assert_true(t.live_bytes >= PATTERN_LEAK);
  kill(pid, SIGKILL);
  int status = wait_child(pid);
  close(fd);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_string_equal(p->state, "died");
  assert_pattern_leaks(p);
  assert_int_equal(site_named(p, "big_alloc")->bytes_at_peak, 8 * MIB);
  assert_int_equal(po_heap_session_totals(s, &t), 0);
  assert_int_equal(t.processes_running, 0);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_segfaulting_child_data_is_still_readable(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  int status = run_child(s, "child_pattern", "segv");
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_string_equal(p->state, "died");
  assert_pattern_leaks(p);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void check_handler_exit(const char *how) {
  po_heap_session *s = session(PO_HEAP_FULL);
  int status = run_child(s, "child_pattern", how);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 7);
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_string_equal(p->state, "exited");
  assert_pattern_leaks(p);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_exit_from_a_signal_handler_is_an_exit(void **state) {
  (void)state;
  check_handler_exit("handler_exit");
  check_handler_exit("handler__exit");
}

/* ---- unwinding and reentrancy ----------------------------------------------------------- */

static void test_libunwind_names_frames_without_frame_pointers_and_never_recurses(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern_nofp", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  assert_true(p->unwind_fallbacks > 0); /* this build has no frame pointers: libunwind ran */
  /* Exact counts: whatever libunwind allocated while recording was not counted at any site. */
  assert_pattern_leaks(p);
  const po_heap_site_info *big = site_named(p, "big_alloc");
  assert_non_null(big);
  assert_int_equal(sum_named(p, "big_alloc").allocations, 8);
  assert_true(big->frame_count >= 2);
  assert_string_equal(big->frames[1].function, "peak_phase");
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_stacks_continue_through_libc_code_without_frame_pointers(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_snapshot *snap = snapshot(s);
  const po_heap_process *p = only_process(snap);
  const po_heap_site_info *c = site_named(p, "compare_and_allocate");
  assert_non_null(c);
  /* innermost the callback, then qsort's frames (libc, no frame pointers), then its caller */
  int caller = 0, libc = 0;
  for (size_t f = 1; f < c->frame_count; f++) {
    const char *fn = c->frames[f].function;
    if (fn && !strcmp(fn, "sort_with_callback")) caller = (int)f;
    if (!caller && c->frames[f].module && strstr(c->frames[f].module, "libc.so")) libc++;
  }
  assert_true(libc > 0);
  assert_true(caller > 0);
  assert_true(p->unwind_fallbacks > 0);
  /* the frame-pointer walk stops at main's caller in libc: main is the last but one frame */
  const po_heap_site_info *big = site_named(p, "big_alloc");
  assert_string_equal(big->frames[big->frame_count - 2].function, "main");
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

/* ---- no segment, wrong segment ---------------------------------------------------------- */

static void test_shim_without_a_session_passes_through(void **state) {
  (void)state;
  /* The child's own checks (alignment, contents) pass with the shim loaded and nothing to
   * report to. */
  assert_exited_ok(run_child(NULL, "child_pattern", "exit"));
  assert_exited_ok(run_child(NULL, "child_threads", "pool"));
}

static void test_an_fd_with_the_wrong_nonce_is_never_attached(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_EXACT);
  char path[512];
  child_path(path, sizeof path, "child_pattern");
  for (int wrong = 0; wrong < 2; wrong++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      if (po_heap_session_apply_env(s, shim) != 0) _exit(99);
      char env[128];
      snprintf(env, sizeof env, "%s", getenv("PERFOPT_HEAP_FD"));
      if (wrong) env[strlen(env) - 1] = env[strlen(env) - 1] == '0' ? '1' : '0';
      setenv("PERFOPT_HEAP_FD", env, 1);
      execl(path, path, "exit", (char *)NULL);
      _exit(98);
    }
    assert_exited_ok(wait_child(pid));
    po_heap_snapshot *snap = snapshot(s);
    /* first run (right nonce) attaches: the positive control; the second does not */
    assert_int_equal(snap->process_count, 1);
    po_heap_snapshot_destroy(snap);
  }
  po_heap_session_destroy(s);
}

/* ---- the segment parser and the report -------------------------------------------------- */

static void test_corrupt_segment_is_rejected_or_skipped(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  size_t len = PO_HEAP_HEADER_BYTES + 2 * sizeof(po_heap_proc);
  unsigned char *seg = calloc(1, len);
  assert_non_null(seg);
  /* A copy of the real segment with a second, corrupt slot. */
  po_heap_snapshot *snap = NULL;
  int fd = -1;
  {
    po_heap_env env;
    assert_int_equal(po_heap_session_env(s, shim, &env), 0);
    assert_int_equal(sscanf(env.fd, "PERFOPT_HEAP_FD=%d:", &fd), 1);
  }
  assert_int_equal(pread(fd, seg, PO_HEAP_HEADER_BYTES + sizeof(po_heap_proc), 0),
                   (ssize_t)(PO_HEAP_HEADER_BYTES + sizeof(po_heap_proc)));
  po_heap_header *h = (po_heap_header *)seg;
  h->procs_claimed = 2;
  po_heap_proc *bad = (po_heap_proc *)(seg + PO_HEAP_HEADER_BYTES + sizeof(po_heap_proc));
  memset(bad, 0xff, sizeof *bad);
  po__heap_parse_opts opts = {.top_sites = 10};
  assert_int_equal(po__heap_parse(seg, len, &opts, &snap), 0);
  assert_int_equal(snap->process_count, 1); /* the real one, read */
  assert_int_equal(snap->slots_invalid, 1); /* the corrupt one, counted */
  po_heap_snapshot_destroy(snap);
  h->magic ^= 1;
  assert_int_equal(po__heap_parse(seg, len, &opts, &snap), PO_EPARSE);
  assert_null(snap);
  free(seg);
  po_heap_session_destroy(s);
}

static void test_report_heap_section_has_the_documented_keys(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_totals t;
  assert_int_equal(po_heap_session_totals(s, &t), 0);
  po_heap_snapshot *snap = snapshot(s);
  cJSON *memory = cJSON_CreateObject();
  assert_int_equal(po__report_add_heap(memory, snap), 0);
  const cJSON *heap = cJSON_GetObjectItemCaseSensitive(memory, "heap");
  assert_non_null(heap);
  const char *keys[] = {
      "mode",        "estimated",      "peak_bytes",      "peak_seconds",      "peak_pid",
      "allocations", "frees",          "allocated_bytes", "live_bytes",        "leaked_bytes",
      "mmap_bytes",  "size_histogram", "processes",       "top_sites_at_peak", "top_sites_by_total",
      "leaks",       "timeline",       "call_tree"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (!cJSON_GetObjectItemCaseSensitive(heap, keys[i]))
      fail_msg("missing memory.heap.%s", keys[i]);
  }
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(heap, "mode")->valuestring, "full");
  const cJSON *top =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(heap, "top_sites_at_peak"), 0);
  assert_non_null(top);
  assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(top, "name")->valuestring, "big_alloc"));
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(top, "bytes_at_peak")->valuedouble, 8 * MIB);
  const cJSON *leak = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(heap, "leaks"), 0);
  assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(leak, "name")->valuestring, "leak_a"));
  const cJSON *tree = cJSON_GetObjectItemCaseSensitive(heap, "call_tree");
  assert_true(cJSON_GetArraySize(tree) > 3);
  const cJSON *tl = cJSON_GetObjectItemCaseSensitive(heap, "timeline");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tl, "t_seconds")), 1);
  cJSON_Delete(memory);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_html_report_shows_heap_timeline_peak_and_flame_graph(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_FULL);
  assert_exited_ok(run_child(s, "child_pattern", "exit"));
  po_heap_totals t;
  assert_int_equal(po_heap_session_totals(s, &t), 0);
  po_heap_snapshot *snap = snapshot(s);
  cJSON *root = cJSON_CreateObject();
  assert_non_null(cJSON_AddStringToObject(root, "perfopt_version", PO_VERSION_STRING));
  cJSON *memory = cJSON_AddObjectToObject(root, "memory");
  assert_int_equal(po__report_add_heap(memory, snap), 0);
  char *json = cJSON_PrintUnformatted(root);
  assert_non_null(json);
  po_report *rep = NULL;
  char err[256];
  assert_int_equal(po__report_parse(json, strlen(json), "test", &rep, err, sizeof err), 0);
  char *html = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&html, &len);
  assert_non_null(f);
  assert_int_equal(po_report_write_html(rep, f), 0);
  fclose(f);
  assert_non_null(strstr(html, "<section id=\"heap\">"));
  assert_non_null(strstr(html, "heap peak: 8")); /* the marker: 8 MiB and change */
  assert_non_null(strstr(html, "Allocations by call stack"));
  assert_non_null(strstr(html, "allocations, total")); /* a flame frame's tooltip, in bytes */
  assert_non_null(strstr(html, "big_alloc"));
  assert_non_null(strstr(html, "Leaks at exit by site"));
  free(html);
  po_report_destroy(rep);
  cJSON_free(json);
  cJSON_Delete(root);
  po_heap_snapshot_destroy(snap);
  po_heap_session_destroy(s);
}

static void test_env_names_the_shim_and_rejects_a_missing_one(void **state) {
  (void)state;
  po_heap_session *s = session(PO_HEAP_SAMPLED);
  po_heap_env env;
  assert_int_equal(po_heap_session_env(s, shim, &env), 0);
  assert_non_null(strstr(env.ld_preload, "libperfopt-heap.so"));
  assert_string_equal(env.mode, "PERFOPT_HEAP_MODE=sampled");
  assert_int_equal(strncmp(env.fd, "PERFOPT_HEAP_FD=", 16), 0);
  assert_int_equal(po_heap_session_env(s, "/nonexistent/libperfopt-heap.so", &env), PO_ENOENT);
  assert_int_equal(po_heap_session_create((po_heap_mode)7, &(po_heap_session *){NULL}), PO_EINVAL);
  po_heap_session_destroy(s);
}

static int setup(void **state) {
  (void)state;
  snprintf(shim, sizeof shim, "%s/libperfopt-heap.so", build_dir());
  /* the tracked programs must not inherit a sanitizer's or a previous shim's preload */
  unsetenv("LD_PRELOAD");
  return access(shim, R_OK) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_peak_and_leaks_at_named_sites),
      cmocka_unit_test(test_allocation_in_constructor_before_main_is_tracked),
      cmocka_unit_test(test_exact_mode_counts_peak_and_leaks_without_sites),
      cmocka_unit_test(test_sampled_mode_estimates_a_site_it_samples),
      cmocka_unit_test(test_realloc_and_aligned_variants_keep_their_contracts),
      cmocka_unit_test(test_threads_are_counted_and_exited_threads_slots_reused),
      cmocka_unit_test(test_threads_beyond_the_slots_share_counters_and_stay_exact),
      cmocka_unit_test(test_fork_child_gets_its_own_slot),
      cmocka_unit_test(test_processes_beyond_the_slots_are_counted_and_run_untracked),
      cmocka_unit_test(test_exec_starts_a_new_slot_and_marks_the_old_one),
      cmocka_unit_test(test_dlopen_adds_the_library_to_the_module_map),
      cmocka_unit_test(test_sigkilled_child_data_is_still_readable),
      cmocka_unit_test(test_segfaulting_child_data_is_still_readable),
      cmocka_unit_test(test_exit_from_a_signal_handler_is_an_exit),
      cmocka_unit_test(test_libunwind_names_frames_without_frame_pointers_and_never_recurses),
      cmocka_unit_test(test_stacks_continue_through_libc_code_without_frame_pointers),
      cmocka_unit_test(test_shim_without_a_session_passes_through),
      cmocka_unit_test(test_an_fd_with_the_wrong_nonce_is_never_attached),
      cmocka_unit_test(test_corrupt_segment_is_rejected_or_skipped),
      cmocka_unit_test(test_report_heap_section_has_the_documented_keys),
      cmocka_unit_test(test_html_report_shows_heap_timeline_peak_and_flame_graph),
      cmocka_unit_test(test_env_names_the_shim_and_rejects_a_missing_one),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
