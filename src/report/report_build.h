/* Building a report from typed snapshots: the interface between the layer that owns the live
 * objects (the optimizer, `perfopt sysinfo`) and the report module, which owns every JSON key
 * (docs/formats.md documents each one; tests/test_report_keys.c checks that the two agree) and
 * never reads live state itself. Not installed. */
#ifndef PO__REPORT_BUILD_H
#define PO__REPORT_BUILD_H

#include "base/base.h"
#include "cache/cache.h"
#include "monitor/memory.h"
#include "monitor/sampler.h"
#include "monitor/treemon.h"
#include "profile/profile.h"
#include "report/json.h"

/* The flight record: where it goes and what became of it (every report of an optimizer), and,
 * in the flight record itself, why it was written. */
typedef struct po__flight {
  char path[512];
  uint64_t writes;
  double last_t_seconds; /* -1: never written */
  char error[256];       /* the last failure ("" none) */
  int is_record;         /* this report is the flight record: the fields below, and the recent
                          * samples from the sampler snapshot */
  double t_seconds;
  po_metric metric;
  int device;
  po_grade grade;
  double value;
  double time_to_limit_seconds;
  char reason[160];
} po__flight;

/* What a report is made of. Every pointer may be NULL: that section is then written in its
 * empty state (the profile, memory, resources, gpu and cache sections are always present). */
typedef struct po__report_sources {
  const po_hardware *hw;   /* host facts, read once */
  const po_config *cfg;    /* run.config */
  double start_unix_seconds;
  double wall_seconds;
  int pid;
  const char *const *argv; /* the command line (argc entries) */
  size_t argc;
  const po__profile_snapshot *profile;
  const po__sampler_snapshot *sampler;
  const po__memory_snapshot *memory;
  const po__cache_snapshot *caches;
  size_t ncaches;
  const po__flight *flight; /* NULL: no flight record configured (no optimizer) */
} po__report_sources;

/* Builds a report. Returns 0, or PO_ENOMEM when any allocation failed (nothing is returned). */
int po__report_create_from(const po__report_sources *src, po_report **out);

/* The sections, each writing its object into root (report_host.c, report_profile.c,
 * report_monitor.c, report_cache.c). */
void po__report_host(po__jw *w, cJSON *root, const po_hardware *hw);
void po__report_run(po__jw *w, cJSON *root, const po__report_sources *src);
void po__report_profile(po__jw *w, cJSON *root, const po__profile_snapshot *p);
void po__report_memory(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                       const po__memory_snapshot *m);
void po__report_resources(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                          const po__memory_snapshot *m);
/* thresholds[]: one entry per metric; with gpu_threshold (per device, from the sampler or the
 * GPU targets) gpu_memory has one entry per device instead. */
void po__report_thresholds(po__jw *w, cJSON *parent, const po_thresholds *th,
                           const po_gpu_info *gpus, size_t ngpus, const double *gpu_threshold,
                           int gpu_from_config);
/* The `system` section of `perfopt sysinfo`: one system sample (CPU by mode and core, memory,
 * swap, the effective limit, load, pressure, disks). */
void po__report_system(po__jw *w, cJSON *root, const po_system_sample *s);
void po__report_gpu(po__jw *w, cJSON *root, const po_gpu_info *devs, size_t count,
                    size_t dropped, const char *reason);
void po__report_cache(po__jw *w, cJSON *root, const po__cache_snapshot *caches, size_t n);
/* memory.forecast and memory.autopilot (report_autopilot.c). */
void po__report_autopilot(po__jw *w, cJSON *mem, const po__sampler_snapshot *s,
                          const po__flight *flight);
/* Adds a flight record's `flight` section to rep (a run report of a job that was killed), with
 * the forecast, autopilot and limit it had (from its `memory`) and the file it came from.
 * PO_EINVAL when `flight` is not a flight record; PO_ENOMEM. */
int po__report_add_flight(po_report *rep, const po_report *flight, const char *path);
/* Text lines for the memory forecast, the autopilot's actions and the flight record (a report's
 * memory.forecast, or a run report's `flight`), each line starting with `indent`. */
void po__report_text_forecast(const cJSON *root, FILE *out, const char *indent);
/* The flight record's `flight` section: why, and the recent samples at full resolution. */
void po__report_flight(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                       const po__flight *flight);

/* A series set as the report's `series[]` entries (name, unit, t_seconds, min, max, last). */
void po__report_series(po__jw *w, cJSON *arr, const po__series_set *set);

/* ---- the run report (perfopt run / attach: report_run.c, report_merge_tree.c) -------------------- */

/* One process's failure to write its in-process report (from its PERFOPT_OUT marker file). */
typedef struct po__inproc_error {
  int pid;
  char message[256];
} po__inproc_error;

typedef struct po__run_sources {
  const po_hardware *hw;
  int attach; /* 0 run, 1 attach */
  int pid;    /* the child (run) or the process attached to */
  double start_unix_seconds;
  double wall_seconds;
  double interval_seconds;
  const char *const *argv;
  size_t argc;
  const po_run_end *end; /* NULL: the run has not ended */
  /* OOM-kill counters before and after (-1 unknown) and the cgroup version they come from */
  int64_t oom_cgroup_before, oom_cgroup_after, oom_system_before, oom_system_after;
  int oom_cgroup_version;
  const po__treemon_snapshot *tree;
  /* the in-process reports the tree's processes wrote (their roots), and the failures */
  const cJSON *const *reports;
  size_t nreports;
  uint64_t reports_not_merged; /* beyond the limit, or unreadable (each with an error below) */
  const po__inproc_error *errors;
  size_t nerrors;
  const po_heap_snapshot *heap; /* --heap: memory.heap; NULL without */
} po__run_sources;

/* Builds the run report: perfopt_version, host, run (with exit), processes, profile (the
 * in-process reports merged), memory, resources and cache (the first in-process report's, else
 * empty), gpu (the tree monitor's reading), suggestions. Returns 0 or PO_ENOMEM. */
int po__report_create_run(const po__run_sources *src, po_report **out);

/* Writes into root the tree's `profile`: the n in-process reports' profiles merged. Reports are
 * read defensively: a missing or mistyped field counts as absent. */
void po__report_merge_profiles(po__jw *w, cJSON *root, const cJSON *const *reports, size_t n);
/* Writes into prof `call_tree` (the n profiles' call trees merged by path: (parent, name); nodes
 * whose parent is missing or listed later are left out; at most 20000 nodes) and
 * `call_tree_truncated` (the inputs' counts plus the nodes left out here). Also used by
 * po_report_merge (report_merge_ranks.c). */
void po__report_merge_call_trees(po__jw *w, cJSON *prof, const cJSON *const *profs, size_t n);
/* The run.pid of a report root (0 when absent or not a valid pid). */
int po__report_pid(const cJSON *report);
/* The processes.reports[] entries: per report its pid, argv, times and its own profile (without
 * call tree and timeline), memory and cache sections; at most `max` entries. */
void po__report_inproc_entries(po__jw *w, cJSON *arr, const cJSON *const *reports, size_t n,
                               size_t max);

/* Replaces rep's profile section with p, and the run's wall and report times with src's. */
int po__report_set_profile(po_report *rep, const po__profile_snapshot *p,
                           const po__report_sources *src);

/* Parses a report from memory (`what` names it in errors). The fuzz target's entry point. */
int po__report_parse(const char *text, size_t len, const char *what, po_report **out, char *errbuf,
                     size_t errlen);

/* Prints s in exactly `cols` columns of a text table (UTF-8 aware): padded with spaces, or cut
 * with a trailing "…" when longer (report_text.c). */
void po__text_cell(FILE *out, const char *s, size_t cols);

/* A report wrapping a tree built elsewhere in this module (takes ownership). NULL on ENOMEM. */
po_report *po__report_wrap(cJSON *root);

#endif
