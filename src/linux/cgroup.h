/* The cgroup limits that apply to this process, and where each one was read. Read once when a
 * probe is opened (limits change rarely; the probe re-reads the values of the directory chosen
 * here on every sample). Private to src/linux/. */
#ifndef PO__LINUX_CGROUP_H
#define PO__LINUX_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#define PO__CG_DIR 1024  /* a cgroup path as /proc/self/cgroup gives it */
#define PO__CG_PATH 1100 /* the same under its mount point */
#define PO__CG_FROM 192

typedef struct po__cgroup {
  int version; /* 2, 1, or 0 when no memory controller was found */
  /* The directory (relative to the root, e.g. "/sys/fs/cgroup/a") whose files a sample reads:
   * the one with the tightest memory limit, else the process's own. */
  char mem_dir[PO__CG_PATH];
  /* v1: hierarchical_memory_limit in the own memory.stat is tighter than any limit_in_bytes in
   * view (the limiting parent lies outside this cgroup namespace): the sample reads the limit
   * from memory.stat. */
  int v1_limit_in_stat;
  int mem_dir_has_high; /* v2: mem_dir's memory.high is set (the sample reads it) */
  /* The tightest value found walking up from the process's cgroup (0 = none), and its file. */
  uint64_t memory_max;
  char memory_max_from[PO__CG_FROM];
  uint64_t memory_high; /* v2 only: a soft limit (the kernel throttles and reclaims above it) */
  char memory_high_from[PO__CG_FROM];
  uint64_t swap_max; /* v2 memory.swap.max (swap alone); v1 memsw (memory + swap) */
  int swap_includes_memory;
  char swap_max_from[PO__CG_FROM];
} po__cgroup;

/* Finds the memory cgroup of this process under root ("" = real) from /proc/self/cgroup: v2 walks
 * from the process's cgroup to the root keeping the tightest memory.max, memory.high and
 * memory.swap.max; v1 walks the memory hierarchy keeping the tightest limit_in_bytes and
 * memsw.limit_in_bytes, and also reads hierarchical_memory_limit from the own memory.stat (a
 * parent's limit, visible even when the parent is not). Never fails: out->version 0 when none. */
void po__cgroup_discover(const char *root, po__cgroup *out);

/* The CPU quota in cores (0 = none): v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, the
 * tightest walking up from the process's cgroup in either hierarchy. `from` (may be NULL) gets the
 * file it came from. */
double po__cgroup_cpu_limit(const char *root, char *from, size_t from_len);

/* A cgroup memory value: "max" and v1's "no limit" (>= 2^60) are 0. Returns 1 when s holds a
 * number or "max", else 0. */
int po__cgroup_parse_limit(const char *s, uint64_t *out);

/* The value of `key` ("hierarchical_memory_limit") in memory.stat text, or 0. */
uint64_t po__cgroup_stat_value(const char *text, size_t len, const char *key);

#endif
