/* Out-of-memory kill counters: the memory cgroup's oom_kill (cgroup v2 memory.events, v1
 * memory.oom_control; both count the cgroup's descendants too) and the system's (/proc/vmstat).
 * A run reads them before and after: a child killed by SIGKILL while a counter rose was most
 * likely killed by the OOM killer. */
#include "base/base.h"
#include "platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value after "oom_kill " at the start of a line of text, or -1. */
static int64_t find_oom_kill(const char *text) {
  for (const char *line = text; line && *line;) {
    if (!strncmp(line, "oom_kill ", 9)) {
      const char *q = line + 9;
      int64_t v = 0;
      if (*q < '0' || *q > '9') return -1;
      while (*q >= '0' && *q <= '9' && v < INT64_MAX / 10) v = v * 10 + (*q++ - '0');
      return v;
    }
    line = strchr(line, '\n');
    if (line) line++;
  }
  return -1;
}

static int64_t read_counter(const char *path) {
  char text[4096];
  if (!path[0]) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = po__read_fd_text(fd, text, sizeof text);
  close(fd);
  return n > 0 ? find_oom_kill(text) : -1;
}

/* Sets out to DIR/FILE when that file is readable, else to BASE/FILE when that one is (a cgroup
 * namespace or a container's own mount shows its cgroup at the root), else "". */
static void pick(char *out, size_t len, const char *base, const char *rel, const char *file) {
  int n = snprintf(out, len, "%s%s/%s", base, strcmp(rel, "/") ? rel : "", file);
  if (n > 0 && (size_t)n < len && access(out, R_OK) == 0) return;
  n = snprintf(out, len, "%s/%s", base, file);
  if (n > 0 && (size_t)n < len && access(out, R_OK) == 0) return;
  out[0] = '\0';
}

int po__oom_counts_open(const char *root, int pid, po__oom_counts *out) {
  char path[512], text[4096];
  memset(out, 0, sizeof *out);
  out->cgroup = out->system = -1;
  if (!root) root = "";
  snprintf(out->system_file, sizeof out->system_file, "%s/proc/vmstat", root);
  if (pid > 0)
    snprintf(path, sizeof path, "%s/proc/%d/cgroup", root, pid);
  else
    snprintf(path, sizeof path, "%s/proc/self/cgroup", root);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? po__read_fd_text(fd, text, sizeof text) : -1;
  if (fd >= 0) close(fd);
  char v2[1024] = "", v1[1024] = "";
  for (char *line = n > 0 ? text : NULL, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = '\0';
    if (!strcmp(line, "0:")) { /* "0::/path": the unified hierarchy */
      po__strlcpy(v2, c2 + 1, sizeof v2);
      continue;
    }
    for (char *tok = c1 + 1, *sv; (tok = strtok_r(tok, ",", &sv)); tok = NULL)
      if (!strcmp(tok, "memory")) po__strlcpy(v1, c2 + 1, sizeof v1);
  }
  char base[300];
  if (v1[0]) { /* a v1 memory controller: the unified hierarchy then has no memory files */
    snprintf(base, sizeof base, "%s/sys/fs/cgroup/memory", root);
    pick(out->cgroup_file, sizeof out->cgroup_file, base, v1, "memory.oom_control");
    if (out->cgroup_file[0]) out->cgroup_version = 1;
  }
  if (!out->cgroup_file[0] && v2[0]) {
    snprintf(base, sizeof base, "%s/sys/fs/cgroup", root);
    pick(out->cgroup_file, sizeof out->cgroup_file, base, v2, "memory.events");
    if (out->cgroup_file[0]) out->cgroup_version = 2;
  }
  po__oom_counts_read(out);
  return 0;
}

void po__oom_counts_read(po__oom_counts *c) {
  c->cgroup = read_counter(c->cgroup_file);
  c->system = read_counter(c->system_file);
}
