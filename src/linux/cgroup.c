/* Which cgroup limits apply to this process, found by walking up from its cgroup: a limit set on
 * any ancestor applies to it (v2 and v1 alike), and v1 also reports the ancestors' limit in the
 * own memory.stat as hierarchical_memory_limit, which is how a limit on a parent that a cgroup
 * namespace hides is still seen. See cgroup.h. */
#include "linux/cgroup.h"

#include "base/base.h"
#include "platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NO_LIMIT (1ull << 60) /* v1 spells "none" as PAGE_COUNTER_MAX pages */

int po__cgroup_parse_limit(const char *s, uint64_t *out) {
  *out = 0;
  while (*s == ' ' || *s == '\t') s++;
  if (!strncmp(s, "max", 3)) return 1;
  if (*s < '0' || *s > '9') return 0;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    uint64_t d = (uint64_t)(*s - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  *out = v >= NO_LIMIT ? 0 : v;
  return 1;
}

uint64_t po__cgroup_stat_value(const char *text, size_t len, const char *key) {
  size_t klen = strlen(key);
  const char *end = text + len;
  for (const char *line = text; line < end;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    const char *stop = nl ? nl : end;
    if ((size_t)(stop - line) > klen && !memcmp(line, key, klen) && line[klen] == ' ') {
      char num[32];
      size_t n = (size_t)(stop - line) - klen - 1;
      if (n >= sizeof num) n = sizeof num - 1;
      memcpy(num, line + klen + 1, n);
      num[n] = '\0';
      uint64_t v;
      return po__cgroup_parse_limit(num, &v) ? v : 0;
    }
    line = nl ? nl + 1 : end;
  }
  return 0;
}

/* The path of this process's cgroup in the v2 hierarchy ("0::<path>") or in the v1 hierarchy
 * holding `controller`. Returns 1 when found; "/" becomes "". */
static int own_path(const char *root, const char *controller, char *out, size_t len) {
  char text[4096];
  if (po__read_rel_text(root, "/proc/self/cgroup", text, sizeof text) <= 0) return 0;
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    int match = 0;
    if (!controller) {
      match = c1 == line + 1 && line[0] == '0' && c2 == c1 + 1;
    } else {
      *c2 = '\0';
      for (char *tok = c1 + 1, *sv; !match && (tok = strtok_r(tok, ",", &sv)); tok = NULL)
        match = !strcmp(tok, controller);
    }
    if (!match) continue;
    const char *p = c2 + 1;
    return !po__strlcpy(out, strcmp(p, "/") ? p : "", len);
  }
  return 0;
}

/* Removes the last component of dir ("/a/b" -> "/a" -> ""). Returns 0 once dir was already "". */
static int parent_dir(char *dir) {
  if (!dir[0]) return 0;
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    dir[0] = '\0';
  return 1;
}

/* Reads base+dir+"/"+file as a limit. Returns 1 when the file exists and parses. */
static int read_limit(const char *root, const char *base, const char *dir, const char *file,
                      uint64_t *out, char *rel, size_t rel_len) {
  char val[64];
  snprintf(rel, rel_len, "%s%s/%s", base, dir, file);
  if (po__read_rel_text(root, rel, val, sizeof val) <= 0) return 0;
  return po__cgroup_parse_limit(val, out);
}

/* "what rel" into from (len bytes), cut at the end when long. */
static void say_from(char *from, size_t len, const char *what, const char *rel) {
  po__strlcpy(from, what, len);
  size_t l = strlen(from);
  if (l + 2 >= len) return;
  from[l] = ' ';
  po__strlcpy(from + l + 1, rel, len - l - 1);
}

/* Keeps v when it is a limit (non-zero) tighter than *best, with its file. */
static int keep_tighter(uint64_t v, uint64_t *best, char *from, const char *what, const char *rel) {
  if (!v || (*best && v >= *best)) return 0;
  *best = v;
  say_from(from, PO__CG_FROM, what, rel);
  return 1;
}

static int discover_v2(const char *root, po__cgroup *out) {
  char dir[PO__CG_DIR], rel[PO__CG_PATH + 64], own[PO__CG_PATH] = "", best_dir[PO__CG_PATH] = "";
  if (!own_path(root, NULL, dir, sizeof dir)) return 0;
  int found = 0;
  uint64_t best = 0;
  do {
    uint64_t v;
    if (!read_limit(root, "/sys/fs/cgroup", dir, "memory.max", &v, rel, sizeof rel)) continue;
    if (!found) snprintf(own, sizeof own, "/sys/fs/cgroup%s", dir);
    found = 1;
    keep_tighter(v, &out->memory_max, out->memory_max_from, "cgroup v2", rel);
    if (v && (!best || v < best)) {
      best = v;
      snprintf(best_dir, sizeof best_dir, "/sys/fs/cgroup%s", dir);
    }
    if (read_limit(root, "/sys/fs/cgroup", dir, "memory.high", &v, rel, sizeof rel)) {
      keep_tighter(v, &out->memory_high, out->memory_high_from, "cgroup v2 (soft)", rel);
      if (v && (!best || v < best)) {
        best = v;
        snprintf(best_dir, sizeof best_dir, "/sys/fs/cgroup%s", dir);
      }
    }
    if (read_limit(root, "/sys/fs/cgroup", dir, "memory.swap.max", &v, rel, sizeof rel))
      keep_tighter(v, &out->swap_max, out->swap_max_from, "cgroup v2", rel);
  } while (parent_dir(dir));
  if (!found) return 0;
  out->version = 2;
  po__strlcpy(out->mem_dir, best_dir[0] ? best_dir : own, sizeof out->mem_dir);
  uint64_t high;
  snprintf(rel, sizeof rel, "%s/memory.high", out->mem_dir);
  char val[64];
  out->mem_dir_has_high = po__read_rel_text(root, rel, val, sizeof val) > 0 &&
                          po__cgroup_parse_limit(val, &high) && high != 0;
  return 1;
}

static int discover_v1(const char *root, po__cgroup *out) {
  static const char base[] = "/sys/fs/cgroup/memory";
  char dir[PO__CG_DIR], rel[PO__CG_PATH + 64], own[PO__CG_PATH] = "", best_dir[PO__CG_PATH] = "";
  if (!own_path(root, "memory", dir, sizeof dir)) return 0;
  int found = 0;
  do {
    uint64_t v;
    if (!read_limit(root, base, dir, "memory.limit_in_bytes", &v, rel, sizeof rel)) continue;
    if (!found) snprintf(own, sizeof own, "%s%s", base, dir);
    found = 1;
    if (keep_tighter(v, &out->memory_max, out->memory_max_from, "cgroup v1", rel))
      snprintf(best_dir, sizeof best_dir, "%s%s", base, dir);
    if (read_limit(root, base, dir, "memory.memsw.limit_in_bytes", &v, rel, sizeof rel))
      keep_tighter(v, &out->swap_max, out->swap_max_from, "cgroup v1 (memory + swap)", rel);
  } while (parent_dir(dir));
  if (!found) return 0;
  out->version = 1;
  out->swap_includes_memory = 1;
  po__strlcpy(out->mem_dir, best_dir[0] ? best_dir : own, sizeof out->mem_dir);
  /* The ancestors' limits as the kernel applies them, including those outside this view. */
  char *text = malloc(16384);
  if (!text) return 1;
  snprintf(rel, sizeof rel, "%s/memory.stat", own);
  ssize_t n = po__read_rel_text(root, rel, text, 16384);
  if (n > 0) {
    char what[64] = "cgroup v1 hierarchical_memory_limit in";
    uint64_t h = po__cgroup_stat_value(text, (size_t)n, "hierarchical_memory_limit");
    if (keep_tighter(h, &out->memory_max, out->memory_max_from, what, rel)) {
      out->v1_limit_in_stat = 1;
      po__strlcpy(out->mem_dir, own, sizeof out->mem_dir);
    }
    h = po__cgroup_stat_value(text, (size_t)n, "hierarchical_memsw_limit");
    keep_tighter(h, &out->swap_max, out->swap_max_from,
                 "cgroup v1 hierarchical_memsw_limit (memory + swap) in", rel);
  }
  free(text);
  return 1;
}

void po__cgroup_discover(const char *root, po__cgroup *out) {
  memset(out, 0, sizeof *out);
  if (!root) root = "";
  if (discover_v2(root, out)) return;
  memset(out, 0, sizeof *out);
  if (!discover_v1(root, out)) memset(out, 0, sizeof *out);
}

/* ---- CPU ---------------------------------------------------------------------------------- */

static void keep_cores(double cores, double *best, char *from, size_t from_len, const char *what,
                       const char *rel) {
  if (!(cores > 0) || (*best > 0 && cores >= *best)) return;
  *best = cores;
  if (from) say_from(from, from_len, what, rel);
}

static void cpu_v2(const char *root, double *best, char *from, size_t from_len) {
  char dir[PO__CG_DIR], rel[PO__CG_PATH + 64], val[128];
  if (!own_path(root, NULL, dir, sizeof dir)) return;
  do {
    snprintf(rel, sizeof rel, "/sys/fs/cgroup%s/cpu.max", dir);
    if (po__read_rel_text(root, rel, val, sizeof val) <= 0 || !strncmp(val, "max", 3)) continue;
    double quota = strtod(val, NULL);
    char *sp = strchr(val, ' ');
    double period = sp ? strtod(sp + 1, NULL) : 100000.0;
    if (quota > 0 && period > 0) keep_cores(quota / period, best, from, from_len, "cgroup v2", rel);
  } while (parent_dir(dir));
}

static void cpu_v1(const char *root, double *best, char *from, size_t from_len) {
  /* The cpu controller is mounted alone or together with cpuacct, under either name. */
  static const char *const bases[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct",
                                      "/sys/fs/cgroup/cpuacct,cpu"};
  char own[PO__CG_DIR], dir[PO__CG_DIR], rel[PO__CG_PATH + 64], q[64], per[64];
  if (!own_path(root, "cpu", own, sizeof own)) return;
  for (size_t b = 0; b < PO__ARRAY_LEN(bases); b++) {
    snprintf(rel, sizeof rel, "%s/cpu.cfs_quota_us", bases[b]);
    if (po__read_rel_text(root, rel, q, sizeof q) <= 0) continue;
    po__strlcpy(dir, own, sizeof dir);
    do {
      snprintf(rel, sizeof rel, "%s%s/cpu.cfs_period_us", bases[b], dir);
      if (po__read_rel_text(root, rel, per, sizeof per) <= 0) continue;
      snprintf(rel, sizeof rel, "%s%s/cpu.cfs_quota_us", bases[b], dir);
      if (po__read_rel_text(root, rel, q, sizeof q) <= 0) continue;
      double quota = strtod(q, NULL), period = strtod(per, NULL);
      if (quota > 0 && period > 0) keep_cores(quota / period, best, from, from_len, "cgroup v1", rel);
    } while (parent_dir(dir));
    return;
  }
}

double po__cgroup_cpu_limit(const char *root, char *from, size_t from_len) {
  double best = 0;
  if (!root) root = "";
  if (from && from_len) from[0] = '\0';
  cpu_v2(root, &best, from, from_len);
  cpu_v1(root, &best, from, from_len); /* hybrid hosts: both hierarchies may limit */
  return best;
}
