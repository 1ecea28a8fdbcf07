/* This process's memory, read cheaply for the sampler's ticks and the cleanup passes. */
#include "base/base.h"
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int64_t parse_resident(const char *buf) {
  char *p = (char *)buf, *end;
  strtoull(p, &p, 10); /* size */
  unsigned long long resident = strtoull(p, &end, 10);
  if (end == p) return -1;
  return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
}

static int64_t read_statm(int fd) {
  char buf[128];
  ssize_t n;
  do {
    n = pread(fd, buf, sizeof buf - 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return parse_resident(buf);
}

int64_t po__statm_rss_bytes(po__statm *s) {
  if (!s) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int64_t v = read_statm(fd);
    close(fd);
    return v;
  }
  int pid = po__pid();
  if (s->fd >= 0 && s->pid != pid) { /* forked: the descriptor names the parent */
    close(s->fd);
    s->fd = -1;
  }
  if (s->fd < 0) {
    s->fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    s->pid = pid;
    if (s->fd < 0) return -1;
  }
  return read_statm(s->fd);
}

void po__statm_close(po__statm *s) {
  if (s && s->fd >= 0) close(s->fd);
  if (s) s->fd = -1;
}

int64_t po__self_peak_rss_bytes(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return (int64_t)ru.ru_maxrss * 1024;
}

int po__self_argv(char **buf, const char **argv, size_t max, size_t *argc) {
  size_t len = 0, n = 0;
  *buf = NULL;
  *argc = 0;
  int rc = po__read_file("/proc/self/cmdline", 1 << 16, buf, &len, NULL, 0);
  if (rc) return rc == PO_ENOMEM ? rc : 0;
  for (size_t i = 0; i < len && n < max; i += strlen(*buf + i) + 1) argv[n++] = *buf + i;
  *argc = n;
  return 0;
}

int po__self_reset_peak_rss(void) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return PO_ENOTSUP;
  ssize_t n;
  do n = write(fd, "5", 1); /* 5: reset the peak RSS (Linux 4.0) */
  while (n < 0 && errno == EINTR);
  close(fd);
  return n == 1 ? 0 : PO_ENOTSUP;
}

int64_t po__self_hwm_bytes(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = po__read_fd_text(fd, buf, sizeof buf);
  close(fd);
  const char *p = n > 0 ? strstr(buf, "\nVmHWM:") : NULL;
  if (!p) return -1;
  char *end;
  unsigned long long kb = strtoull(p + 7, &end, 10);
  return end == p + 7 ? -1 : (int64_t)kb * 1024;
}
