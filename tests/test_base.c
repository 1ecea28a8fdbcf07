/* The base layer: atomic file writes (mode kept, links never followed, nothing left behind),
 * bounded reads with clear errors, the ring, the ordered fork handlers, the last error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/atfork.h"
#include "base/base.h"
#include "base/ring.h"
#include "support/support.h"

static void path_in_tmp(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", support_tmpdir(), name);
}

static char *read_all(const char *path) {
  char *text = NULL;
  assert_int_equal(po__read_file(path, 1 << 20, &text, NULL, NULL, 0), 0);
  return text;
}

static void test_atomic_write_keeps_the_previous_files_mode(void **state) {
  (void)state;
  char path[512];
  path_in_tmp(path, sizeof path, "private.json");
  assert_int_equal(po__write_file_atomic(path, "one", 3, NULL, 0), 0);
  assert_int_equal(chmod(path, 0600), 0);
  assert_int_equal(po__write_file_atomic(path, "two", 3, NULL, 0), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  char *text = read_all(path);
  assert_string_equal(text, "two");
  free(text);
  /* positive control: a new file gets the default mode (0666 less the umask), not 0600 */
  mode_t mask = umask(022);
  char fresh[512];
  path_in_tmp(fresh, sizeof fresh, "fresh.json");
  assert_int_equal(po__write_file_atomic(fresh, "x", 1, NULL, 0), 0);
  assert_int_equal(stat(fresh, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0644);
  umask(mask);
}

/* A link planted at the report's path is replaced, never written through: the file it points to
 * keeps its content. */
static void test_atomic_write_does_not_follow_a_planted_link(void **state) {
  (void)state;
  char victim[512], path[512];
  path_in_tmp(victim, sizeof victim, "victim.txt");
  path_in_tmp(path, sizeof path, "report-link.json");
  assert_int_equal(po__write_file_atomic(victim, "precious", 8, NULL, 0), 0);
  unlink(path);
  assert_int_equal(symlink(victim, path), 0);
  assert_int_equal(po__write_file_atomic(path, "report", 6, NULL, 0), 0);
  char *v = read_all(victim), *r = read_all(path);
  assert_string_equal(v, "precious");
  assert_string_equal(r, "report");
  struct stat st;
  assert_int_equal(lstat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode)); /* the link itself was replaced by the new file */
  free(v);
  free(r);
}

static void test_atomic_write_leaves_no_temporary_file(void **state) {
  (void)state;
  char path[512], err[512] = "";
  path_in_tmp(path, sizeof path, "tmpcheck.json");
  assert_int_equal(po__write_file_atomic(path, "ok", 2, NULL, 0), 0);
  assert_int_equal(support_count_files_with_prefix(support_tmpdir(), "tmpcheck.json.tmp."), 0);
  for (int step = 1; step <= 4; step++) {
    po__test_fail_write_at(step);
    assert_int_equal(po__write_file_atomic(path, "no", 2, err, sizeof err), PO_EIO);
    po__test_fail_write_at(0);
    assert_non_null(strstr(err, path));
    assert_int_equal(support_count_files_with_prefix(support_tmpdir(), "tmpcheck.json.tmp."), 0);
  }
  char *text = read_all(path);
  assert_string_equal(text, "ok");
  free(text);
}

static void test_read_file_names_a_directory(void **state) {
  (void)state;
  char *text = NULL, err[512] = "";
  assert_int_equal(po__read_file(support_tmpdir(), 1 << 20, &text, NULL, err, sizeof err),
                   PO_EINVAL);
  assert_null(text);
  assert_non_null(strstr(err, "is a directory"));
  assert_int_equal(po__read_file("/nonexistent/x", 10, &text, NULL, err, sizeof err), PO_ENOENT);
  assert_non_null(strstr(err, "/nonexistent/x"));
}

static void test_read_file_is_bounded(void **state) {
  (void)state;
  char path[512], err[512] = "";
  path_in_tmp(path, sizeof path, "big.txt");
  char big[10000];
  memset(big, 'a', sizeof big);
  assert_int_equal(po__write_file_atomic(path, big, sizeof big, NULL, 0), 0);
  char *text = NULL;
  assert_int_equal(po__read_file(path, 5000, &text, NULL, err, sizeof err), PO_ETOOBIG);
  assert_null(text);
  size_t len = 0;
  assert_int_equal(po__read_file(path, 20000, &text, &len, NULL, 0), 0);
  assert_int_equal(len, sizeof big);
  free(text);
}

static void test_ring_keeps_the_newest_and_counts_the_rest(void **state) {
  (void)state;
  int slots[4];
  po__ring r = {0};
  for (int i = 0; i < 10; i++) slots[po__ring_push(&r, 4)] = i;
  assert_int_equal(r.len, 4);
  assert_int_equal(r.total, 10);
  assert_int_equal(r.dropped, 6);
  for (size_t i = 0; i < r.len; i++) assert_int_equal(slots[po__ring_at(&r, i, 4)], 6 + (int)i);
}

/* Prepare handlers run by ascending rank, parent and child handlers by descending rank. */
static char order[64];
static size_t norder;
static void mark(char c) {
  if (norder < sizeof order - 1) order[norder++] = c;
}
static void prep_hi(void) { mark('P'); }
static void prep_lo(void) { mark('p'); }
static void parent_hi(void) { mark('A'); }
static void parent_lo(void) { mark('a'); }

static void test_fork_handlers_run_in_rank_order(void **state) {
  (void)state;
  /* registered in the "wrong" order on purpose */
  assert_int_equal(po__atfork_add(900, prep_hi, parent_hi, NULL), 0);
  assert_int_equal(po__atfork_add(800, prep_lo, parent_lo, NULL), 0);
  norder = 0;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(0);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  order[norder] = '\0';
  /* rank 800 prepares before rank 900; the parent side unwinds in reverse */
  assert_string_equal(order, "pPAa");
}

static void test_last_error_is_per_thread(void **state) {
  (void)state;
  assert_int_equal(po__set_last_error(PO_ECONFIG, "PERFOPT_X: bad"), PO_ECONFIG);
  assert_string_equal(po_last_error(), "PERFOPT_X: bad");
  po__set_last_error(0, "");
  assert_string_equal(po_last_error(), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_atomic_write_keeps_the_previous_files_mode),
      cmocka_unit_test(test_atomic_write_does_not_follow_a_planted_link),
      cmocka_unit_test(test_atomic_write_leaves_no_temporary_file),
      cmocka_unit_test(test_read_file_names_a_directory),
      cmocka_unit_test(test_read_file_is_bounded),
      cmocka_unit_test(test_ring_keeps_the_newest_and_counts_the_rest),
      cmocka_unit_test(test_fork_handlers_run_in_rank_order),
      cmocka_unit_test(test_last_error_is_per_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
