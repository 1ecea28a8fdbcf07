/* Platform probes: the internal interface between the portable core (sampler, memory, CLI) and
 * the Linux probes in src/linux/ (/proc, /sys, cgroups, NVML). Not installed.
 *
 * In the spirit of htop's Platform.h: the core never opens /proc itself. Every probe can be pointed
 * at a fake root (tests/fakes/proc/<case>/, which holds proc/... and sys/...), and NVML at a fake
 * library.
 *
 * Samples are fixed-size structs: bounded arrays with counters for what did not fit, so a sampler
 * can keep two of them on its stack or in its state without allocating.
 *
 * Thread safety: a po_probe is used by one thread at a time (the sampler's, or the caller's); two
 * threads each open their own. po__hw_facts and the NVML functions are thread-safe.
 */
#ifndef PO_PLATFORM_H
#define PO_PLATFORM_H

#include "perfopt.h"

#include <stdint.h>

#define PO_MAX_CPUS 256
#define PO_MAX_DISKS 64
#define PO_DISK_NAME_LEN 32

/* ---- system sample ---------------------------------------------------------------------- */

/* Share of elapsed CPU time spent in each mode since the previous sample, each 0..1. busy is
 * 1 - idle - iowait (what "CPU utilization" means in reports). All 0 on the first sample. */
typedef struct po_cpu_util {
  double user;   /* user + nice */
  double system; /* system + irq + softirq */
  double iowait;
  double steal;
  double idle;
  double busy;
} po_cpu_util;

/* One whole disk (partitions are not counted: their I/O is already in their disk's line).
 * Counters are cumulative since boot; the rates are since the previous sample and are 0 on the
 * first sample and for a disk that appeared since the previous one (new = 1). */
typedef struct po_disk_sample {
  char name[PO_DISK_NAME_LEN];
  int new_disk;
  uint64_t read_bytes;
  uint64_t write_bytes;
  uint64_t read_ops;
  uint64_t write_ops;
  uint64_t busy_ms; /* time the disk had I/O in flight */
  double read_bytes_per_second;
  double write_bytes_per_second;
  double busy_ratio; /* 0..1 */
} po_disk_sample;

typedef enum { PO_LIMIT_SYSTEM = 0, PO_LIMIT_CGROUP = 1 } po_limit_source;

/* Sources a sample could not read (bit set = missing this time). */
enum {
  PO_MISSING_STAT = 1u << 0,
  PO_MISSING_MEMINFO = 1u << 1,
  PO_MISSING_DISKSTATS = 1u << 2,
  PO_MISSING_PRESSURE = 1u << 3, /* normal on kernels without PSI */
  PO_MISSING_LOADAVG = 1u << 4,
  PO_MISSING_CGROUP = 1u << 5 /* normal outside a container */
};

typedef struct po_sys_sample {
  uint64_t t_ns;           /* CLOCK_MONOTONIC when taken */
  double interval_seconds; /* since the previous sample of this probe; 0 on the first */
  int has_rates;           /* 1 when the ratios and rates are relative to a previous sample */
  unsigned missing;        /* PO_MISSING_* bits */

  /* CPU (/proc/stat) */
  po_cpu_util cpu;       /* all cores together */
  uint32_t cpu_count;    /* cores listed in /proc/stat (entries in cpus[] that are valid) */
  uint32_t cpus_dropped; /* cores beyond PO_MAX_CPUS, not in cpus[] (still in cpu) */
  po_cpu_util cpus[PO_MAX_CPUS];
  int cpu_ids[PO_MAX_CPUS]; /* N of the cpuN line behind cpus[i] (gaps when cores are offline) */
  uint64_t ctxt;            /* context switches since boot */
  uint32_t procs_running;
  uint32_t procs_blocked;

  /* memory (/proc/meminfo), bytes */
  uint64_t mem_total_bytes;
  uint64_t mem_available_bytes; /* MemAvailable (estimate from MemFree+cache on old kernels) */
  uint64_t mem_used_bytes;      /* total - available, what `free` calls used on current procps */
  uint64_t mem_free_bytes;
  uint64_t mem_buffers_bytes;
  uint64_t mem_cached_bytes; /* Cached + SReclaimable (the page cache part that can be freed) */
  uint64_t mem_shared_bytes; /* Shmem */
  uint64_t swap_total_bytes;
  uint64_t swap_free_bytes;
  uint64_t swap_used_bytes;

  /* cgroup (v2 memory.max / memory.current; v1 memory.limit_in_bytes / usage_in_bytes) */
  int in_cgroup_limit;              /* 1 when a memory limit below "max" is set */
  uint64_t cgroup_memory_max_bytes; /* 0 = no limit */
  uint64_t cgroup_memory_current_bytes;
  /* The limit a job judges its memory against: the cgroup limit when set (and below system
   * total), else the system total. effective_available is limit - current in a cgroup, capped by
   * the system's MemAvailable; else MemAvailable. */
  po_limit_source limit_source;
  uint64_t memory_limit_bytes;
  uint64_t effective_available_bytes;

  /* memory pressure (/proc/pressure/memory), percent of time stalled 0..100 */
  int has_pressure;
  double pressure_some_avg10;
  double pressure_full_avg10;
  uint64_t pressure_some_total_us;

  /* load average (/proc/loadavg) */
  double loadavg[3];

  /* disks (/proc/diskstats) */
  uint32_t disk_count;
  uint32_t disks_dropped; /* whole disks beyond PO_MAX_DISKS */
  po_disk_sample disks[PO_MAX_DISKS];
  /* sums over disks[] */
  double disk_read_bytes_per_second;
  double disk_write_bytes_per_second;
  double disk_busy_ratio; /* the busiest disk's ratio */

  uint32_t parse_errors; /* malformed or truncated lines skipped (cumulative for this probe) */
} po_sys_sample;

/* ---- process sample --------------------------------------------------------------------- */

typedef struct po_proc_sample {
  int pid; /* the pid asked for (resolved: 0 becomes getpid()) */
  int with_children;
  uint32_t process_count; /* 1, or 1 + live descendants when with_children */
  double user_seconds;    /* CPU time, cumulative (children: live descendants' times added) */
  double system_seconds;
  double cpu_ratio; /* (user+system) delta / wall delta since this probe's previous sample of
                     * the same pid; in cores (2.0 = two cores busy); 0 on the first */
  uint64_t rss_bytes;
  uint64_t peak_rss_bytes; /* VmHWM (the main process only) */
  uint64_t vsz_bytes;
  uint64_t swap_bytes;
  uint32_t threads;
  int has_io;          /* /proc/PID/io readable (not for other users' processes) */
  uint64_t read_bytes; /* storage bytes (read_bytes/write_bytes lines) */
  uint64_t write_bytes;
  uint64_t rchar; /* bytes through read()/write(), cache hits included */
  uint64_t wchar;
  int open_fds; /* -1 when /proc/PID/fd is not readable */
} po_proc_sample;

/* ---- the probe -------------------------------------------------------------------------- */

typedef struct po_probe po_probe;

/* Opens the probe: root "" or NULL = the real /proc and /sys; else a directory holding proc/ and
 * sys/ laid out like the real ones. Files are opened once here and re-read with pread.
 * Returns 0, PO_EINVAL (root too long), PO_ENOMEM, or PO_ENOENT when root/proc/stat cannot be
 * opened (nothing useful could be sampled). */
int po__probe_open(const char *root, po_probe **out);

/* Reads fd to its end (retrying on EINTR) into dst, at most len - 1 bytes, NUL-terminated.
 * Returns the length read (the file may be longer). Does not close fd. */
ssize_t po__read_fd_text(int fd, char *dst, size_t len);
/* Closes the files and frees the probe. NULL is a no-op. */
void po__probe_close(po_probe *p);

/* One system sample. Rates are relative to this probe's previous po__probe_system call.
 * A source that cannot be read sets its PO_MISSING_* bit and leaves its fields 0; this is not an
 * error. Returns 0, or PO_EIO when /proc/stat could not be read. */
int po__probe_system(po_probe *p, po_sys_sample *out);

/* One process sample: pid 0 = this process (through files kept open). with_children adds the
 * live descendants (a /proc scan: slower). Returns 0, PO_ENOENT when the process does not exist,
 * PO_EINVAL on a negative pid. */
int po__probe_process(po_probe *p, int pid, int with_children, po_proc_sample *out);

/* Resets the rate baselines, so the next sample is a "first" sample. */
void po__probe_reset(po_probe *p);

/* ---- parsers (exposed for tests and fuzzing) --------------------------------------------- */
/* Why hand parsers: no library parses /proc, sscanf is slow and locale-dependent, and a sample
 * must cost a few microseconds. Each parser reads a NUL-terminated-or-not buffer of len bytes,
 * never reads past len, and tolerates truncated or malformed lines (skipped, counted). */

typedef struct po_cpu_times {
  uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
} po_cpu_times;

typedef struct po_stat_parsed {
  po_cpu_times total;
  uint32_t cpu_count; /* cpuN lines seen */
  uint32_t cpus_dropped;
  po_cpu_times cpus[PO_MAX_CPUS]; /* indexed by position, cpus[i] = i-th cpuN line */
  int cpu_ids[PO_MAX_CPUS];       /* N of that line */
  uint64_t ctxt;
  uint32_t procs_running, procs_blocked;
  uint32_t bad_lines;
} po_stat_parsed;
int po__parse_stat(const char *buf, size_t len, po_stat_parsed *out);

typedef struct po_meminfo_parsed {
  uint64_t total, free, available, buffers, cached, sreclaimable, shmem, swap_total, swap_free;
  int has_available;
  uint32_t bad_lines;
} po_meminfo_parsed; /* bytes */
int po__parse_meminfo(const char *buf, size_t len, po_meminfo_parsed *out);

typedef struct po_diskstat_line {
  uint32_t major, minor;
  char name[PO_DISK_NAME_LEN];
  uint64_t reads, sectors_read, writes, sectors_written, busy_ms;
} po_diskstat_line;
/* Calls fn for each well-formed line; returns the number of malformed lines skipped. */
uint32_t po__parse_diskstats(const char *buf, size_t len,
                             void (*fn)(const po_diskstat_line *line, void *ctx), void *ctx);

typedef struct po_status_parsed {
  uint64_t rss, hwm, vsz, swap; /* bytes */
  uint32_t threads;
  int ppid;
  char cpus_allowed_list[256];
  uint32_t bad_lines;
} po_status_parsed;
int po__parse_status(const char *buf, size_t len, po_status_parsed *out);

/* /proc/PID/stat: fields after the "(comm)" (which may hold spaces and parentheses). */
typedef struct po_pidstat_parsed {
  int ppid;
  uint64_t utime, stime; /* ticks */
  uint32_t threads;
  uint64_t vsize, rss_pages;
} po_pidstat_parsed;
int po__parse_pidstat(const char *buf, size_t len, po_pidstat_parsed *out);

/* Counts the CPUs in a list such as "0-3,8,10-11". Returns -1 when malformed. */
int po__parse_cpu_list(const char *s);

/* ---- hardware facts ------------------------------------------------------------------------ */

/* Fills *out (the public po_hardware) from root ("" = real). nvml_library: NULL = do not look for
 * GPUs (gpu_count 0, gpu_reason "not queried"); "" = the default NVML names; else that path.
 * Never fails on a missing source: fields stay 0 / empty. Returns 0 or PO_EINVAL. */
int po__hw_facts(const char *root, const char *nvml_library, po_hardware *out);

/* ---- NVML ------------------------------------------------------------------------------- */

/* An open NVML session (library loaded, nvmlInit done). Keep one open in the sampler: nvmlInit
 * costs milliseconds to seconds on a real driver. Thread-safe (NVML is). */
typedef struct po_nvml po_nvml;

/* Loads NVML (library "" or NULL: libnvidia-ml.so.1, then libnvidia-ml.so) and initializes it.
 * On failure returns PO_ENODEV with the reason ("libnvidia-ml.so.1: cannot open shared object
 * file", "nvmlInit_v2: Driver Not Loaded (9)") in reason: the normal "no GPU" state. */
int po__nvml_open(const char *library, po_nvml **out, char *reason, size_t reason_len);
/* nvmlShutdown and dlclose. NULL is a no-op. */
void po__nvml_close(po_nvml *n);
/* Reads every device (up to max; *count = devices written; the rest are counted in *dropped when
 * dropped is non-NULL). A device whose calls fail is still listed with what could be read and
 * the failure in its error field. Returns 0, or PO_ENODEV with reason when the count fails. */
int po__nvml_query(po_nvml *n, po_gpu_info *devs, size_t max, size_t *count, size_t *dropped,
                   char *reason, size_t reason_len);

#endif
