/* The process-tree reader (po_proc_tree_*) against a fake /proc root with known values and
 * against real process trees this test forks, the /proc parsers' new fields, and the OOM-kill
 * counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "platform.h"

extern char **environ;

#define MIB (1024ull * 1024)
#define CONTAINER "tests/fakes/proc/container"

static po_config fake_root(void) {
  po_config c;
  po_config_defaults(&c);
  snprintf(c.proc_root, sizeof c.proc_root, "%s", CONTAINER);
  return c;
}

/* ---- the fake root: 100 -> 101 -> 102, and 103 under pid 1 ------------------------------------- */

static void test_tree_lists_the_root_first_then_its_descendants(void **state) {
  (void)state;
  po_config c = fake_root();
  po_proc_tree *t = NULL;
  po_proc_info rows[8];
  size_t n = 0;
  po_proc_tree_totals tot;
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  assert_int_equal(po_proc_tree_create(&c, 100, 0, &t), 0);
  assert_int_equal(po_proc_tree_read(t, rows, 8, &n, &tot), 0);
  assert_int_equal(n, 3);
  assert_int_equal(rows[0].pid, 100);
  assert_int_equal(rows[1].pid, 101);
  assert_int_equal(rows[2].pid, 102);
  assert_string_equal(rows[0].comm, "my (weird) proc");
  assert_int_equal(rows[0].ppid, 1);
  assert_int_equal(rows[0].state, 'S');
  assert_int_equal(rows[0].rss_bytes, 10 * MIB); /* status VmRSS */
  assert_int_equal(rows[0].peak_rss_bytes, 20 * MIB);
  assert_int_equal(rows[0].minor_faults, 100);
  assert_int_equal(rows[0].threads, 7);
  assert_int_equal(rows[0].open_fds, 3);
  assert_int_equal(rows[0].has_io, 1);
  assert_int_equal(rows[0].read_bytes, 4096);
  assert_int_equal(rows[0].write_bytes, 8192);
  assert_int_equal(rows[0].first_read, 1);
  assert_int_equal(rows[1].rss_bytes, 256 * page); /* no status file: stat's page count */
  assert_int_equal(tot.processes, 3);
  assert_int_equal(tot.not_listed, 0);
  assert_int_equal(tot.threads, 7 + 1 + 2);
  assert_int_equal(tot.rss_bytes, 10 * MIB + (256 + 512) * page);
  /* A second read: the same processes, no longer first reads. */
  assert_int_equal(po_proc_tree_read(t, rows, 8, &n, &tot), 0);
  assert_int_equal(n, 3);
  assert_int_equal(rows[0].first_read, 0);
  po_proc_tree_destroy(t);
}

static void test_tree_without_its_root(void **state) {
  (void)state;
  po_config c = fake_root();
  po_proc_tree *t = NULL;
  po_proc_info rows[8];
  size_t n = 0;
  assert_int_equal(po_proc_tree_create(&c, 100, PO_PROC_TREE_EXCLUDE_ROOT, &t), 0);
  assert_int_equal(po_proc_tree_read(t, rows, 8, &n, NULL), 0);
  assert_int_equal(n, 2);
  assert_int_equal(rows[0].pid, 101);
  assert_int_equal(rows[1].pid, 102);
  po_proc_tree_destroy(t);
}

static void test_rows_beyond_the_capacity_are_counted(void **state) {
  (void)state;
  po_config c = fake_root();
  po_proc_tree *t = NULL;
  po_proc_info rows[1];
  size_t n = 0;
  po_proc_tree_totals tot;
  assert_int_equal(po_proc_tree_create(&c, 100, 0, &t), 0);
  assert_int_equal(po_proc_tree_read(t, rows, 1, &n, &tot), 0);
  assert_int_equal(n, 1);
  assert_int_equal(tot.processes, 3);
  assert_int_equal(tot.not_listed, 2);
  assert_int_equal(po_proc_tree_read(t, NULL, 0, &n, &tot), 0); /* totals only */
  assert_int_equal(n, 0);
  assert_int_equal(tot.processes, 3);
  po_proc_tree_destroy(t);
}

static void test_missing_root_and_bad_arguments(void **state) {
  (void)state;
  po_config c = fake_root();
  po_proc_tree *t = (po_proc_tree *)1;
  assert_int_equal(po_proc_tree_create(&c, 999999, 0, &t), PO_ENOENT);
  assert_null(t);
  assert_int_equal(po_proc_tree_create(&c, -1, 0, &t), PO_EINVAL);
  assert_int_equal(po_proc_tree_create(&c, 100, 0x80, &t), PO_EINVAL);
  assert_int_equal(po_proc_tree_read(NULL, NULL, 0, NULL, NULL), PO_EINVAL);
  po_proc_tree_destroy(NULL);
}

static void test_tree_create_survives_every_allocation_failure(void **state) {
  (void)state;
  po_config c = fake_root();
  for (uint64_t k = 1;; k++) {
    po_proc_tree *t = NULL;
    po__fault_fail_at(k, 0);
    int rc = po_proc_tree_create(&c, 100, 0, &t);
    size_t n = 0;
    po_proc_info rows[4];
    if (rc == 0) rc = po_proc_tree_read(t, rows, 4, &n, NULL);
    uint64_t injected = po__fault_injected();
    po__fault_fail_at(0, 0);
    if (rc == 0) assert_non_null(t);
    if (rc != 0) assert_int_equal(rc, PO_ENOMEM);
    po_proc_tree_destroy(t);
    if (!injected) break;
  }
}

/* ---- parsers: the fields the tree reads -------------------------------------------------------- */

static void test_pidstat_new_fields(void **state) {
  (void)state;
  const char *line = "4242 (a) b) c) R 1 4242 4242 0 -1 4194560 1234 7 56 8 250 50 30 20 20 0 7 0 "
                     "987654 104857600 2560 18446744073709551615 1 1";
  po__pidstat_parsed ps;
  assert_int_equal(po__parse_pidstat(line, strlen(line), &ps), 0);
  assert_string_equal(ps.comm, "a) b) c");
  assert_int_equal(ps.state, 'R');
  assert_int_equal(ps.minflt, 1234);
  assert_int_equal(ps.majflt, 56);
  assert_int_equal(ps.utime, 250);
  assert_int_equal(ps.stime, 50);
  assert_int_equal(ps.cutime, 30);
  assert_int_equal(ps.cstime, 20);
  assert_int_equal(ps.threads, 7);
  assert_int_equal(ps.starttime, 987654);
  assert_int_equal(ps.rss_pages, 2560);
}

static void test_status_context_switches(void **state) {
  (void)state;
  const char *text = "Name:\tx\nVmRSS:\t  100 kB\nThreads:\t3\nvoluntary_ctxt_switches:\t42\n"
                     "nonvoluntary_ctxt_switches:\t7\n";
  po__status_parsed st;
  assert_int_equal(po__parse_status(text, strlen(text), &st), 0);
  assert_int_equal(st.voluntary_ctxt, 42);
  assert_int_equal(st.nonvoluntary_ctxt, 7);
  assert_int_equal(st.rss, 100 * 1024);
}

/* ---- OOM-kill counters ------------------------------------------------------------------------- */

static void test_oom_counters_of_a_v2_cgroup_and_the_system(void **state) {
  (void)state;
  po__oom_counts c;
  assert_int_equal(po__oom_counts_open(CONTAINER, 0, &c), 0);
  assert_int_equal(c.cgroup_version, 2);
  assert_int_equal(c.cgroup, 2);
  assert_int_equal(c.system, 7);
  /* a process whose cgroup file is missing: unknown, not an error */
  assert_int_equal(po__oom_counts_open(CONTAINER, 101, &c), 0);
  assert_int_equal(c.cgroup, -1);
  assert_int_equal(c.system, 7);
}

static void test_oom_counters_on_this_machine_are_read(void **state) {
  (void)state;
  po__oom_counts c;
  assert_int_equal(po__oom_counts_open("", 0, &c), 0);
  /* /proc/vmstat has oom_kill on every kernel since 4.13 */
  assert_true(c.system >= 0);
}

/* ---- real trees ------------------------------------------------------------------------------- */

/* Hold mode of this binary (`test_proctree --hold MB READY_FD GO_FD`): the grandchild of the real
 * tree tests. It is started with posix_spawn, which runs no fork handlers: a fork inside a forked
 * child would run the library's handlers twice in a row, which ThreadSanitizer cannot follow. */
static int hold(char **argv) {
  size_t mb = (size_t)atol(argv[2]);
  int ready = atoi(argv[3]), go = atoi(argv[4]);
  char *p = malloc(mb * MIB), c = 0;
  if (!p) return 1;
  memset(p, 1, mb * MIB);
  int rc = write(ready, &c, 1) != 1 || read(go, &c, 1) < 0 || p[0] != 1;
  free(p); /* held until now on purpose; freed so that LeakSanitizer has nothing to say */
  return rc;
}

/* Forks a child that spawns a grandchild holding `mb` MiB (touched); both wait for the pipe to
 * close, then exit. Returns the child's pid; *grandchild gets the grandchild's. */
static pid_t fork_tree(int *release_fd, size_t mb, pid_t *grandchild) {
  int go[2], ready[2];
  assert_int_equal(pipe(go), 0);
  assert_int_equal(pipe(ready), 0);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(go[1]);
    char smb[32], sready[16], sgo[16];
    snprintf(smb, sizeof smb, "%zu", mb);
    snprintf(sready, sizeof sready, "%d", ready[1]);
    snprintf(sgo, sizeof sgo, "%d", go[0]);
    char *args[] = {"test_proctree", "--hold", smb, sready, sgo, NULL};
    pid_t g;
    if (posix_spawn(&g, "/proc/self/exe", NULL, NULL, args, environ) != 0) _exit(1);
    if (write(ready[1], &g, sizeof g) != (ssize_t)sizeof g) _exit(1);
    char c;
    if (read(go[0], &c, 1) < 0) _exit(1);
    int st;
    waitpid(g, &st, 0);
    _exit(0);
  }
  close(go[0]);
  close(ready[1]);
  char c;
  assert_int_equal(read(ready[0], grandchild, sizeof *grandchild), (ssize_t)sizeof *grandchild);
  assert_int_equal(read(ready[0], &c, 1), 1);
  close(ready[0]);
  *release_fd = go[1];
  return child;
}

static const po_proc_info *find_row(const po_proc_info *rows, size_t n, int pid) {
  for (size_t i = 0; i < n; i++)
    if (rows[i].pid == pid) return &rows[i];
  return NULL;
}

static void test_real_tree_sees_grandchildren_and_their_memory(void **state) {
  (void)state;
  int release;
  pid_t g;
  pid_t child = fork_tree(&release, 32, &g);
  po_proc_tree *t = NULL;
  po_proc_info rows[64];
  size_t n = 0;
  po_proc_tree_totals tot;
  assert_int_equal(po_proc_tree_create(NULL, 0, PO_PROC_TREE_EXCLUDE_ROOT, &t), 0);
  assert_int_equal(po_proc_tree_read(t, rows, 64, &n, &tot), 0);
  const po_proc_info *rc = find_row(rows, n, child), *rg = find_row(rows, n, g);
  assert_non_null(rc);
  assert_non_null(rg);
  assert_null(find_row(rows, n, (int)getpid())); /* the root is excluded */
  assert_int_equal(rg->ppid, child);
  assert_true(rg->rss_bytes >= 32 * MIB);
  assert_true(rg->peak_rss_bytes >= 32 * MIB);
  assert_true(tot.rss_bytes >= 32 * MIB);
  assert_true(rg->open_fds >= 3);
  char line[256];
  assert_true(po_proc_tree_cmdline(t, g, line, sizeof line) > 0);
  /* They exit: the next read no longer lists them and counts them as exited. */
  close(release);
  int st;
  assert_int_equal(waitpid(child, &st, 0), child);
  assert_int_equal(po_proc_tree_read(t, rows, 64, &n, &tot), 0);
  assert_null(find_row(rows, n, child));
  assert_null(find_row(rows, n, g));
  assert_true(tot.exited >= 2);
  assert_int_equal(po_proc_tree_cmdline(t, g, line, sizeof line), 0);
  assert_string_equal(line, "");
  po_proc_tree_destroy(t);
}

static void test_an_orphan_stays_in_the_tree(void **state) {
  (void)state;
  int release_g[2], release_c[2], ready[2];
  assert_int_equal(pipe(release_g), 0);
  assert_int_equal(pipe(release_c), 0);
  assert_int_equal(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) { /* spawns a grandchild, then exits when told: the grandchild is orphaned */
    char c, sready[16], sgo[16];
    close(release_g[1]);
    close(release_c[1]);
    int gready[2];
    if (pipe(gready) != 0) _exit(1);
    snprintf(sready, sizeof sready, "%d", gready[1]);
    snprintf(sgo, sizeof sgo, "%d", release_g[0]);
    char *args[] = {"test_proctree", "--hold", "1", sready, sgo, NULL};
    pid_t g;
    if (posix_spawn(&g, "/proc/self/exe", NULL, NULL, args, environ) != 0) _exit(1);
    if (read(gready[0], &c, 1) != 1) _exit(1);
    if (write(ready[1], &g, sizeof g) != (ssize_t)sizeof g) _exit(1);
    if (read(release_c[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  close(ready[1]);
  close(release_g[0]);
  close(release_c[0]);
  pid_t g;
  assert_int_equal(read(ready[0], &g, sizeof g), (ssize_t)sizeof g);
  close(ready[0]);
  po_proc_tree *t = NULL;
  po_proc_info rows[64];
  size_t n = 0;
  assert_int_equal(po_proc_tree_create(NULL, 0, PO_PROC_TREE_EXCLUDE_ROOT, &t), 0);
  assert_int_equal(po_proc_tree_read(t, rows, 64, &n, NULL), 0);
  assert_non_null(find_row(rows, n, g));
  close(release_c[1]); /* the child exits: its child is re-parented */
  int st;
  assert_int_equal(waitpid(child, &st, 0), child);
  assert_int_equal(po_proc_tree_read(t, rows, 64, &n, NULL), 0);
  const po_proc_info *r = find_row(rows, n, g);
  assert_non_null(r); /* still ours */
  assert_int_not_equal(r->ppid, child);
  close(release_g[1]); /* the orphan exits; init (or a subreaper) reaps it */
  po_proc_tree_destroy(t);
}

static void test_new_processes_join_at_the_next_read(void **state) {
  (void)state;
  po_proc_tree *t = NULL;
  po_proc_info rows[64];
  size_t n = 0;
  assert_int_equal(po_proc_tree_create(NULL, 0, PO_PROC_TREE_EXCLUDE_ROOT, &t), 0);
  assert_int_equal(po_proc_tree_read(t, rows, 64, &n, NULL), 0);
  assert_int_equal(n, 0); /* positive control below: the same read sees a child once it exists */
  int release;
  pid_t g;
  pid_t child = fork_tree(&release, 1, &g);
  assert_int_equal(po_proc_tree_read(t, rows, 64, &n, NULL), 0);
  assert_non_null(find_row(rows, n, child));
  assert_non_null(find_row(rows, n, g));
  assert_int_equal(find_row(rows, n, g)->first_read, 1);
  close(release);
  int st;
  waitpid(child, &st, 0);
  po_proc_tree_destroy(t);
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "--hold")) return hold(argv);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tree_lists_the_root_first_then_its_descendants),
      cmocka_unit_test(test_tree_without_its_root),
      cmocka_unit_test(test_rows_beyond_the_capacity_are_counted),
      cmocka_unit_test(test_missing_root_and_bad_arguments),
      cmocka_unit_test(test_tree_create_survives_every_allocation_failure),
      cmocka_unit_test(test_pidstat_new_fields),
      cmocka_unit_test(test_status_context_switches),
      cmocka_unit_test(test_oom_counters_of_a_v2_cgroup_and_the_system),
      cmocka_unit_test(test_oom_counters_on_this_machine_are_read),
      cmocka_unit_test(test_real_tree_sees_grandchildren_and_their_memory),
      cmocka_unit_test(test_an_orphan_stays_in_the_tree),
      cmocka_unit_test(test_new_processes_join_at_the_next_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
