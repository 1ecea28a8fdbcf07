/* The channels for what the library cannot return: the log callback (po_set_log_callback) and
 * the calling thread's last error message (po_last_error).
 *
 * The PERFOPT_OUT cases run this binary again as a child (`--child-out`): the report is written
 * by an exit handler that the library registers at load time when PERFOPT_OUT is set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "perfopt.h"
#include "support/support.h"

#define MAX_MSGS 32

typedef struct logged {
  pthread_mutex_t mu;
  int n;
  int level[MAX_MSGS];
  char msg[MAX_MSGS][1024];
} logged;

static logged got = {PTHREAD_MUTEX_INITIALIZER, 0, {0}, {{0}}};

static void on_log(int level, const char *message, void *user) {
  logged *l = user;
  pthread_mutex_lock(&l->mu);
  if (l->n < MAX_MSGS) {
    l->level[l->n] = level;
    snprintf(l->msg[l->n], sizeof l->msg[0], "%s", message);
    l->n++;
  }
  pthread_mutex_unlock(&l->mu);
}

/* The index of the first message containing `part`, or -1. */
static int find_msg(const char *part) {
  pthread_mutex_lock(&got.mu);
  int at = -1;
  for (int i = 0; i < got.n && at < 0; i++)
    if (strstr(got.msg[i], part)) at = i;
  pthread_mutex_unlock(&got.mu);
  return at;
}

static int listen(void **state) {
  (void)state;
  got.n = 0;
  po_set_log_callback(on_log, &got);
  return 0;
}

static int stop_listening(void **state) {
  (void)state;
  po_set_log_callback(NULL, NULL);
  return 0;
}

/* ---- in this process --------------------------------------------------------------------------
 */

/* A monitor that cannot start does not fail the optimizer: it says so in the log. */
static void test_a_monitor_that_cannot_start_is_logged(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 1;
  snprintf(c.proc_root, sizeof c.proc_root, "%s/no-such-root", support_tmpdir());
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  assert_false(po_monitor_running(opt));
  int at = find_msg("background monitoring not started");
  assert_true(at >= 0);
  assert_int_equal(got.level[at], 1);
  po_optimizer_destroy(opt);
}

/* Positive control for the test above: a monitor that starts logs nothing. */
static void test_a_monitor_that_starts_logs_nothing(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 1;
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  assert_true(po_monitor_running(opt));
  po_optimizer_destroy(opt);
  assert_int_equal(got.n, 0);
}

static void test_a_failed_save_is_logged_and_is_the_last_error(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  char path[300];
  snprintf(path, sizeof path, "%s/no-such-dir/report.json", support_tmpdir());
  assert_int_equal(po_optimizer_save_json(opt, path), PO_EIO);
  assert_non_null(strstr(po_last_error(), path));
  int at = find_msg(path);
  assert_true(at >= 0);
  assert_int_equal(got.level[at], 0);
  /* The same call to a writable path succeeds and logs nothing more. */
  int before = got.n;
  snprintf(path, sizeof path, "%s/report.json", support_tmpdir());
  assert_int_equal(po_optimizer_save_json(opt, path), 0);
  assert_int_equal(got.n, before);
  po_optimizer_destroy(opt);
}

/* A configuration error names the variable, its value and what is allowed. */
static void test_a_bad_variable_is_the_last_error(void **state) {
  (void)state;
  setenv("PERFOPT_MONITOR_INTERVAL_MS", "fast", 1);
  po_optimizer *opt = NULL;
  int rc = po_optimizer_create(NULL, &opt);
  unsetenv("PERFOPT_MONITOR_INTERVAL_MS");
  assert_true(rc < 0);
  assert_null(opt);
  assert_non_null(strstr(po_last_error(), "MONITOR_INTERVAL_MS"));
  assert_non_null(strstr(po_last_error(), "fast"));
  assert_true(find_msg("MONITOR_INTERVAL_MS") >= 0);
}

static void *read_last_error(void *arg) {
  snprintf(arg, 512, "%s", po_last_error());
  return NULL;
}

/* po_last_error is the calling thread's: another thread does not see it. */
static void test_the_last_error_is_per_thread(void **state) {
  (void)state;
  setenv("PERFOPT_CPU_THRESHOLD", "2.5", 1);
  po_optimizer *opt = NULL;
  assert_true(po_optimizer_create(NULL, &opt) < 0);
  unsetenv("PERFOPT_CPU_THRESHOLD");
  assert_non_null(strstr(po_last_error(), "CPU_THRESHOLD"));
  char other[512] = "unchanged";
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, read_last_error, other), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_string_equal(other, "");
}

static void test_no_callback_is_a_no_op(void **state) {
  (void)state;
  po_set_log_callback(NULL, NULL);
  po_optimizer *opt = NULL;
  char path[300];
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  snprintf(path, sizeof path, "%s/no-such-dir/r.json", support_tmpdir());
  assert_int_equal(po_optimizer_save_json(opt, path), PO_EIO);
  po_optimizer_destroy(opt);
  assert_int_equal(got.n, 0);
}

/* ---- PERFOPT_OUT, in a child -------------------------------------------------------------------
 */

static void child_log(int level, const char *message, void *user) {
  (void)user;
  printf("LOG %d %s\n", level, message);
  fflush(stdout);
}

/* The child: with or without a callback, it only exits; the exit handler writes PERFOPT_OUT. */
static int child_out(const char *mode) {
  if (!strcmp(mode, "callback")) po_set_log_callback(child_log, NULL);
  return 0;
}

/* Reads a whole small file into buf. */
static void slurp(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

/* Runs `self --child-out mode` with PERFOPT_OUT=out; its stdout and stderr are read back.
 * Fails after 60 s rather than waiting for a hung child. */
static void run_child(const char *mode, const char *out, char *so, char *se, size_t len) {
  char so_path[300], se_path[300];
  snprintf(so_path, sizeof so_path, "%s/child.out", support_tmpdir());
  snprintf(se_path, sizeof se_path, "%s/child.err", support_tmpdir());
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fo = open(so_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(se_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    setenv("PERFOPT_OUT", out, 1);
    execl("/proc/self/exe", "test_log", "--child-out", mode, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (int waited = 0;; waited++) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    assert_true(r == 0 || errno == EINTR);
    if (waited >= 6000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("the child did not exit within 60 s");
    }
    nanosleep(&tick, NULL);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  slurp(so_path, so, len);
  slurp(se_path, se, len);
}

static void test_a_failed_perfopt_out_write_reaches_the_callback(void **state) {
  (void)state;
  char out[300], so[4096], se[4096];
  snprintf(out, sizeof out, "%s/no-such-dir/out.json", support_tmpdir());
  run_child("callback", out, so, se, sizeof so);
  assert_non_null(strstr(so, "LOG 0 perfopt: "));
  assert_non_null(strstr(so, out));
  assert_string_equal(se, ""); /* the callback took it: nothing on stderr */
}

static void test_without_a_callback_a_failed_perfopt_out_write_goes_to_stderr(void **state) {
  (void)state;
  char out[300], so[4096], se[4096];
  snprintf(out, sizeof out, "%s/no-such-dir/out.json", support_tmpdir());
  run_child("stderr", out, so, se, sizeof so);
  assert_non_null(strstr(se, "perfopt: PERFOPT_OUT: "));
  assert_non_null(strstr(se, out));
}

/* Positive control: a writable PERFOPT_OUT is written, and nothing is logged. */
static void test_a_written_perfopt_out_logs_nothing(void **state) {
  (void)state;
  char out[300], so[4096], se[4096];
  snprintf(out, sizeof out, "%s/out.json", support_tmpdir());
  unlink(out);
  run_child("callback", out, so, se, sizeof so);
  assert_string_equal(so, "");
  assert_string_equal(se, "");
  po_report *rep = NULL;
  char err[256];
  assert_int_equal(po_report_load(out, &rep, err, sizeof err), 0);
  po_report_destroy(rep);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--child-out")) return child_out(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_a_monitor_that_cannot_start_is_logged, listen,
                                      stop_listening),
      cmocka_unit_test_setup_teardown(test_a_monitor_that_starts_logs_nothing, listen,
                                      stop_listening),
      cmocka_unit_test_setup_teardown(test_a_failed_save_is_logged_and_is_the_last_error, listen,
                                      stop_listening),
      cmocka_unit_test_setup_teardown(test_a_bad_variable_is_the_last_error, listen,
                                      stop_listening),
      cmocka_unit_test(test_the_last_error_is_per_thread),
      cmocka_unit_test_setup_teardown(test_no_callback_is_a_no_op, listen, stop_listening),
      cmocka_unit_test(test_a_failed_perfopt_out_write_reaches_the_callback),
      cmocka_unit_test(test_without_a_callback_a_failed_perfopt_out_write_goes_to_stderr),
      cmocka_unit_test(test_a_written_perfopt_out_logs_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
