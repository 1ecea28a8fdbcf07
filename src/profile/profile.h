/* profile: the private interface between the zone recorder, the auto-instrumentation runtime and
 * the report layer (which reads typed snapshots; the profiler knows nothing of JSON). */
#ifndef PO__PROFILE_H
#define PO__PROFILE_H

#include "base/base.h"

#include <stdint.h>

/* Site registry. Ids start at 1. po__site_id() registers a static site on first use. */
PO_API uint32_t po__site_register(po_site *site);
/* A site identified by a code address (auto-instrumentation); its name is resolved at report
 * time through the symbolizer. Returns 0 when the registry is full (counted). */
PO_API uint32_t po__site_for_addr(void *addr);
/* A site for a dynamic name (copied). Returns 0 when the registry is full. */
PO_API uint32_t po__site_for_name(const char *name);

/* Begin a zone by site id (the id must come from one of the functions above). */
PO_API void po__zone_begin_id(uint32_t id);

/* Resolves a code address to a function name, file and line. Returns 0 when it found a name;
 * *name and *file point to storage the symbolizer owns (valid for the process lifetime). */
typedef int (*po__symbolizer_fn)(void *addr, const char **name, const char **file, int *line);
PO_API void po__set_symbolizer(po__symbolizer_fn fn);

/* Probe-cost compensation. Every zone's measured time holds some of its own probe's cost (bias:
 * what a zone around nothing measures) and all of each nested zone's (full: what one begin/end
 * pair adds to the zone around it). Both are measured once per kind of zone, lazily (the first
 * zone of the process, or the first report) and subtracted when a report is built. Manual zones
 * are always measured; auto-instrumentation registers its entry points here (`begin(arg)` and
 * `end(arg)` open and close one zone), and address sites (po__site_for_addr) are charged its
 * cost. */
PO_API void po__set_auto_probe(void (*begin)(void *), void (*end)(void *), void *arg);

/* ---- snapshots ------------------------------------------------------------------------------ */

/* Name strings point into the site registry, which lives as long as the process. */
typedef struct po__prof_function {
  const char *name, *file;
  int line;
  uint64_t calls;
  double total_seconds, self_seconds, avg_seconds, min_seconds, max_seconds, stddev_seconds;
  double p50_seconds, p90_seconds, p95_seconds, p99_seconds;
  double percent_total; /* total over the profile's wall time (may exceed 100 with threads) */
} po__prof_function;

typedef struct po__prof_node { /* one call path: parent -1 for a root */
  int id, parent;
  const char *name;
  uint64_t calls;
  double total_seconds, self_seconds;
  int open_at_exit;
} po__prof_node;

typedef struct po__prof_thread {
  uint64_t tid;
  char name[32];
  int exited;
  uint64_t calls;
  double total_seconds;
  uint64_t dropped_events;
} po__prof_thread;

typedef struct po__prof_event { /* one zone of the timeline */
  uint64_t tid;
  const char *name;
  double start_seconds, dur_seconds;
  uint32_t depth;
} po__prof_event;

typedef struct po__profile_snapshot {
  double wall_seconds, profiled_seconds, ns_per_tick;
  /* Subtracted probe costs (full, bias; 0 until calibrated): manual zones, auto-instrumentation. */
  double probe_cost_ns, probe_bias_ns, auto_probe_cost_ns, auto_probe_bias_ns;
  uint64_t dropped_events;
  po__prof_function *functions;
  size_t nfunctions;
  po__prof_node *nodes; /* depth-first; at most 20000 (the rest counted in call_tree_truncated) */
  size_t nnodes;
  uint64_t call_tree_truncated;
  po__prof_thread *threads; /* live threads, then exited ones */
  size_t nthreads;
  uint64_t threads_not_listed;
  po_profile_counters counters;
  int timeline_enabled;
  po__prof_event *events; /* at most 200000 (the rest counted in not_exported_events) */
  size_t nevents;
  uint64_t not_exported_events;
} po__profile_snapshot;

/* Merges every thread's data (live and exited) into a snapshot. Returns 0 or PO_ENOMEM. */
int po__profile_snapshot_create(po__profile_snapshot **out);
void po__profile_snapshot_destroy(po__profile_snapshot *s);

/* A forked child starts with an empty profile (on: each process writes its own report, see
 * PERFOPT_OUT), instead of keeping what its parent recorded before the fork (the default). */
void po__profile_forget_on_fork(int on);

#endif
