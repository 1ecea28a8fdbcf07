/* Platform probes: the private interface between the portable core and the Linux probes in
 * src/linux/ (/proc, /sys, cgroups, NVML); the public part (po_probe_*, po_gpu_session_*,
 * po_hardware_probe) is in perfopt.h. Not installed.
 *
 * In the spirit of htop's Platform.h: only src/linux/ opens /proc, /sys and NVML. Every probe can
 * be pointed at a fake root (tests/fakes/proc/<case>/, which holds proc/... and sys/...), and
 * NVML at a fake library.
 *
 * Thread safety: a po_probe is used by one thread at a time (the sampler's, or the caller's); two
 * threads each open their own. po__hw_facts, po_gpu_session and the NVML functions are
 * thread-safe.
 */
#ifndef PO__PLATFORM_H
#define PO__PLATFORM_H

#include "perfopt.h"

#include <stdint.h>
#include <sys/types.h>

/* ---- the probe (public API in perfopt.h: po_probe_*) ------------------------------------------ */

/* Opens a probe on `root` ("" or NULL = the real /proc and /sys; else a directory holding proc/
 * and sys/ laid out like the real ones). po_probe_create resolves the root from the config. */
int po__probe_create_at(const char *root, po_probe **out);

/* A configured budget (MEMORY_LIMIT_BYTES; <= 0: none) that becomes the effective limit when it
 * is below the machine's and the cgroup's (po_limit_source PO_LIMIT_CONFIG). po_probe_create sets
 * it from the config. */
void po__probe_set_memory_budget(po_probe *p, int64_t bytes);

/* Reads fd to its end (retrying on EINTR) into dst, at most len - 1 bytes, NUL-terminated.
 * Returns the length read (the file may be longer). Does not close fd. */
ssize_t po__read_fd_text(int fd, char *dst, size_t len);
/* Reads the file root + rel (root "" for the real one) like po__read_fd_text. Returns the length,
 * or -1 when the path is too long or the file cannot be opened. */
ssize_t po__read_rel_text(const char *root, const char *rel, char *dst, size_t len);

/* Counts the entries of an open /proc/PID/fd directory (from its start, with getdents64). With
 * exclude_self_dir, the directory's own descriptor is not counted (a process reading itself).
 * Returns -1 when it cannot be read. */
int po__count_fds(int dirfd, int exclude_self_dir);

/* The probe configuration: cfg, or (cfg NULL) the defaults with PERFOPT_PROC_ROOT and
 * PERFOPT_NVML_LIBRARY from the environment, without failing on an unrelated bad variable. */
void po__probe_config(const po_config *cfg, po_config *out);

/* ---- this process, cheaply (linux/self.c) -------------------------------------------------- */

/* RSS from /proc/self/statm through a kept-open descriptor (one small pread; reopened after fork,
 * when the descriptor would still name the parent). Initialize with PO__STATM_INIT. */
typedef struct po__statm {
  int fd;
  int pid;
} po__statm;
#define PO__STATM_INIT {-1, 0}
/* Bytes, or -1. s NULL: the file is opened and closed for this call. */
int64_t po__statm_rss_bytes(po__statm *s);
void po__statm_close(po__statm *s);

/* This process's command line: up to max arguments (pointers into *buf, which the caller frees),
 * *argc of them (0 when unreadable). Returns 0, or PO_ENOMEM. */
int po__self_argv(char **buf, const char **argv, size_t max, size_t *argc);

/* The process's peak RSS (getrusage ru_maxrss), or -1. */
int64_t po__self_peak_rss_bytes(void);

/* Resets the kernel's peak RSS of this process to its current RSS (writes 5 to
 * /proc/self/clear_refs, Linux 4.0). 0, or PO_ENOTSUP. */
int po__self_reset_peak_rss(void);
/* VmHWM of /proc/self/status (the peak RSS since the last reset), or -1. */
int64_t po__self_hwm_bytes(void);

/* ---- parsers (exposed for tests and fuzzing) --------------------------------------------- */
/* Why hand parsers: no library parses /proc, sscanf is slow and locale-dependent, and a sample
 * must cost a few microseconds. Each parser reads a NUL-terminated-or-not buffer of len bytes,
 * never reads past len, and tolerates truncated or malformed lines (skipped, counted). */

typedef struct po__cpu_times {
  uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
} po__cpu_times;

typedef struct po__stat_parsed {
  po__cpu_times total;
  uint32_t cpu_count; /* cpuN lines seen */
  uint32_t cpus_dropped;
  /* Valid up to cpu_count (the parser leaves the rest as it was); ctxt must follow cpu_ids. */
  po__cpu_times cpus[PO_PROBE_MAX_CPUS]; /* indexed by position, cpus[i] = i-th cpuN line */
  int cpu_ids[PO_PROBE_MAX_CPUS];       /* N of that line */
  uint64_t ctxt;
  uint32_t procs_running, procs_blocked;
  uint32_t bad_lines;
} po__stat_parsed;
int po__parse_stat(const char *buf, size_t len, po__stat_parsed *out);

typedef struct po__meminfo_parsed {
  uint64_t total, free, available, buffers, cached, sreclaimable, shmem, swap_total, swap_free;
  int has_available;
  uint32_t bad_lines;
} po__meminfo_parsed; /* bytes */
int po__parse_meminfo(const char *buf, size_t len, po__meminfo_parsed *out);

typedef struct po__diskstat_line {
  uint32_t major, minor;
  char name[PO_PROBE_DISK_NAME_LEN];
  uint64_t reads, sectors_read, writes, sectors_written, busy_ms;
} po__diskstat_line;
/* Calls fn for each well-formed line; returns the number of malformed lines skipped. */
uint32_t po__parse_diskstats(const char *buf, size_t len,
                             void (*fn)(const po__diskstat_line *line, void *ctx), void *ctx);

typedef struct po__status_parsed {
  uint64_t rss, hwm, vsz, swap; /* bytes */
  uint32_t threads;
  int ppid;
  uint64_t voluntary_ctxt, nonvoluntary_ctxt; /* context switches */
  char cpus_allowed_list[256];
  uint32_t bad_lines;
} po__status_parsed;
int po__parse_status(const char *buf, size_t len, po__status_parsed *out);

/* /proc/PID/stat: the comm between the first '(' and the last ')' (it may hold spaces and
 * parentheses; truncated to 31 bytes), then the fields after it. */
typedef struct po__pidstat_parsed {
  char comm[32];
  char state; /* R, S, D, Z, T, ... ('?' when absent) */
  int ppid;
  uint64_t minflt, majflt;          /* page faults of this process */
  uint64_t utime, stime;            /* ticks */
  uint64_t cutime, cstime;          /* ticks of the children it waited for */
  uint32_t threads;
  uint64_t starttime;               /* ticks after boot */
  uint64_t vsize, rss_pages;
} po__pidstat_parsed;
int po__parse_pidstat(const char *buf, size_t len, po__pidstat_parsed *out);

/* Counts the CPUs in a list such as "0-3,8,10-11". Returns -1 when malformed. */
int po__parse_cpu_list(const char *s);

/* ---- out-of-memory kills (linux/oom.c) ------------------------------------------------------ */

/* The OOM-kill counters of a process's memory cgroup and of the system. -1: unknown. */
typedef struct po__oom_counts {
  int64_t cgroup;     /* oom_kill in memory.events (v2) or memory.oom_control (v1) */
  int64_t system;     /* oom_kill in /proc/vmstat (kernels since 4.13) */
  int cgroup_version; /* 2, 1, or 0 when no memory cgroup file was found */
  char cgroup_file[1600];
  char system_file[300];
} po__oom_counts;
/* Finds the files for pid's cgroup (pid 0: this process) under root ("" = real) and reads them. */
int po__oom_counts_open(const char *root, int pid, po__oom_counts *out);
/* Reads the same files again (a later reading to compare with). */
void po__oom_counts_read(po__oom_counts *c);

/* ---- hardware facts ------------------------------------------------------------------------ */

/* Fills *out (the public po_hardware) from root ("" = real). nvml_library: NULL = do not look for
 * GPUs (gpu_count 0, gpu_reason "not queried"); "" = the default NVML names; else that path.
 * Never fails on a missing source: fields stay 0 / empty. Returns 0, PO_EINVAL, or PO_ENOMEM when
 * an allocation failed (the facts would be incomplete). */
int po__hw_facts(const char *root, const char *nvml_library, po_hardware *out);
/* The same with a configured memory budget (MEMORY_LIMIT_BYTES, 0: none). */
int po__hw_facts_budget(const char *root, const char *nvml_library, int64_t budget_bytes,
                        po_hardware *out);

/* ---- NVML ------------------------------------------------------------------------------- */

/* An open NVML session (library loaded, nvmlInit done). Keep one open in the sampler: nvmlInit
 * costs milliseconds to seconds on a real driver. Thread-safe (NVML is). */
typedef struct po__nvml po__nvml;

/* Loads NVML (library "" or NULL: libnvidia-ml.so.1, then libnvidia-ml.so) and initializes it.
 * On failure returns PO_ENODEV with the reason ("libnvidia-ml.so.1: cannot open shared object
 * file", "nvmlInit_v2: Driver Not Loaded (9)") in reason: the normal "no GPU" state. */
int po__nvml_create(const char *library, po__nvml **out, char *reason, size_t reason_len);
/* nvmlShutdown and dlclose. NULL is a no-op. */
void po__nvml_destroy(po__nvml *n);
/* Reads every device (up to max; *count = devices written; the rest are counted in *dropped when
 * dropped is non-NULL). A device whose calls fail is still listed with what could be read and
 * the failure in its error field. Returns 0, or PO_ENODEV with reason when the count fails. */
int po__nvml_query(po__nvml *n, po_gpu_info *devs, size_t max, size_t *count, size_t *dropped,
                   char *reason, size_t reason_len);

#endif
