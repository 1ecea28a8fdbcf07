/* The process-tree monitor: samples a process tree (the reader in linux/proctree.c) and the GPUs
 * into per-process records, the tree's totals and peaks, a bounded timeline and the last raw
 * samples, and hands them out as a typed snapshot (the report module writes the `processes`
 * section from it). It knows nothing of how the processes were started or how they end: its
 * owner tells it what it reaped. Single-threaded: one owner drives it. Not installed. */
#ifndef PO__TREEMON_H
#define PO__TREEMON_H

#include "base/base.h"
#include "monitor/series.h"

#define PO__TREEMON_PROCS 512 /* per-process records; later processes are summed in `others` */
#define PO__TREEMON_LAST 8    /* raw samples kept for the end of the run */
#define PO__TREEMON_CMDLINE 256
#define PO__TREEMON_GPU_PERIOD 1.0 /* seconds between GPU readings (NVML calls are slow) */

typedef enum {
  PO__PROC_RUNNING = 0, /* seen at the last sample */
  PO__PROC_ENDED = 1,   /* gone (or a zombie) at a later sample; how it ended is not known */
  PO__PROC_REAPED = 2   /* its parent (our owner) reaped it: exit code or signal known */
} po__proc_state;

typedef struct po__proc_record {
  int pid, ppid;
  char comm[PO_PROC_COMM_LEN];
  char cmdline[PO__TREEMON_CMDLINE];
  int need_cmdline;     /* first seen or renamed since the command line was read */
  double boot_start;    /* start, seconds since boot (with pid: the identity) */
  double start_seconds; /* start, seconds since the monitor began (negative: before) */
  double last_seen_seconds;
  double end_seconds; /* -1 while running */
  po__proc_state state;
  int exit_code, signal, core_dumped; /* when reaped */
  int has_descendants;                /* another record names it as parent */
  double user_seconds, system_seconds;
  double cpu_ratio_peak;
  uint64_t rss_bytes, peak_rss_bytes, swap_bytes;
  uint64_t minor_faults, major_faults;
  int has_io;
  uint64_t read_bytes, write_bytes;
  uint32_t threads, threads_peak;
  int open_fds, open_fds_peak;
  uint64_t voluntary_ctxt_switches, involuntary_ctxt_switches;
  int64_t gpu_memory_bytes, gpu_peak_memory_bytes; /* -1: not known */
  uint64_t samples;
} po__proc_record;

/* One sample of the whole tree, kept raw for the end of a run ("the last samples"). */
typedef struct po__tree_sample {
  double t_seconds;
  double cpu_ratio;
  uint64_t rss_bytes;
  uint32_t processes;
  int64_t gpu_memory_bytes; /* -1: not known */
} po__tree_sample;

typedef struct po__treemon po__treemon;

typedef struct po__treemon_snapshot {
  int root_pid;
  int exclude_root;
  uint64_t samples;
  double elapsed_seconds;       /* at the last sample */
  double sampler_cpu_seconds;   /* CPU time the samples cost their thread */
  size_t nprocs;
  po__proc_record *procs; /* in the order first seen */
  /* processes beyond the records: counted, and their CPU integrated from their samples */
  uint64_t others_count;
  double others_cpu_seconds;
  uint32_t untracked; /* beyond the reader's limit: not read at all */
  /* peaks of the tree (sums over its processes at one sample) */
  uint64_t peak_rss_bytes;
  double peak_rss_seconds;
  double peak_cpu_ratio, peak_cpu_seconds;
  uint32_t peak_processes, peak_threads;
  int64_t peak_open_fds;
  int64_t gpu_peak_bytes; /* -1: no GPU monitored */
  double gpu_peak_seconds;
  po_proc_tree_totals last; /* the last sample's totals */
  po__series_set *series;   /* a copy (NULL before the first sample) */
  size_t nlast;
  po__tree_sample last_samples[PO__TREEMON_LAST]; /* oldest first */
  /* the GPUs at their last reading */
  int gpu_monitored;
  size_t gpu_count, gpus_dropped;
  po_gpu_info *gpus; /* gpu_count entries */
  char gpu_reason[160];
} po__treemon_snapshot;

/* A monitor of root_pid's tree (flags: PO_PROC_TREE_EXCLUDE_ROOT) on cfg's proc root. gpu may be
 * NULL (no GPU readings); it is borrowed. Returns 0, PO_ENOENT (no such root), PO_ENOMEM. */
int po__treemon_create(const po_config *cfg, int root_pid, unsigned flags, po_gpu_session *gpu,
                       po__treemon **out);
void po__treemon_destroy(po__treemon *m);

/* Reads the tree (and the GPUs when a reading is due, or force_gpu) at t_seconds since the
 * monitor's start and takes it in with po__treemon_push. *out may be NULL. */
int po__treemon_sample(po__treemon *m, double t_seconds, int force_gpu, po_run_progress *out);

/* Takes one reading in: rows of the tree (n of them) and its totals, and, when gpus is non-NULL,
 * a GPU reading of ngpus devices (reason: why there are none). The pure step behind
 * po__treemon_sample, for tests that feed known values. */
void po__treemon_push(po__treemon *m, double t_seconds, const po_proc_info *rows, size_t n,
                      const po_proc_tree_totals *tot, const po_gpu_info *gpus, size_t ngpus,
                      const char *reason, po_run_progress *out);

/* The owner reaped pid at t_seconds: its wait status and, when non-NULL, its usage from wait4
 * (used for a process with no descendants seen, where it is the process's own). */
void po__treemon_reaped(po__treemon *m, double t_seconds, int pid, int wait_status,
                        const po_child_usage *usage);

/* A copy of everything for the report. Returns 0 or PO_ENOMEM. */
int po__treemon_snapshot_create(po__treemon *m, po__treemon_snapshot **out);
void po__treemon_snapshot_destroy(po__treemon_snapshot *s);

#endif
