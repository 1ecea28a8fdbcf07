#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "base/alloc.h"

/* cJSON allocates through the library's door too, so po__fault_fail_at covers the report
 * builder, config parsing and every JSON output (the shipped library leaves cJSON's hooks alone).
 */
static void *hook_malloc(size_t n) {
  return po__test_malloc(n);
}

static void hook_free(void *p) {
  free(p);
}

__attribute__((constructor)) static void install_cjson_hooks(void) {
  cJSON_Hooks h = {hook_malloc, hook_free};
  cJSON_InitHooks(&h);
}

po_report *support_profile_report(void) {
  po_report *rep = NULL;
  assert_int_equal(po_report_create(NULL, &rep), 0);
  assert_non_null(rep);
  return rep;
}

const cJSON *support_find_function(const cJSON *root, const char *name) {
  const cJSON *funcs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "functions");
  const cJSON *f;
  cJSON_ArrayForEach(f, funcs) {
    const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"));
    if (n && !strcmp(n, name)) return f;
  }
  return NULL;
}

double support_num(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItem(obj, key);
  if (!cJSON_IsNumber(v)) fail_msg("missing number '%s'", key);
  return v->valuedouble;
}

const char *support_tmpdir(void) {
  static char dir[64];
  if (!dir[0]) {
    strcpy(dir, "/tmp/perfopt-test-XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  }
  return dir;
}

size_t support_count_files_with_prefix(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) fail_msg("opendir %s failed", dir);
  size_t n = 0, plen = strlen(prefix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, prefix, plen) == 0;
  closedir(d);
  return n;
}

double support_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void support_poll_pause(void) {
  struct timespec ts = {0, 2 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

void *support_join(pthread_t t, double seconds) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += (time_t)seconds;
  void *ret = NULL;
  int rc = pthread_timedjoin_np(t, &ret, &dl);
  if (rc == ETIMEDOUT) fail_msg("a thread did not end within %.0f s", seconds);
  if (rc != 0) fail_msg("pthread_timedjoin_np: %s", strerror(rc));
  return ret;
}

int support_wait_child(pid_t pid, double seconds) {
  double deadline = support_now() + seconds;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    if (support_now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fail_msg("child %d did not exit within %.0f s", (int)pid, seconds);
    }
    support_poll_pause();
  }
}
