/* The background sampler: a thread that reads the system, this process and the GPUs at an
 * interval into bounded series, accounts for its own CPU cost, and fires thresholds with
 * hysteresis and cool-down. It knows nothing of the optimizer or of cleanup: a firing is handed to
 * the callback the owner registered, and what the callback did is recorded with the event.
 * Not installed. */
#ifndef PO__SAMPLER_H
#define PO__SAMPLER_H

#include "base/base.h"
#include "monitor/autopilot.h"
#include "monitor/forecast.h"
#include "monitor/recent.h"
#include "monitor/series.h"
#include "monitor/threshold.h"

typedef struct po__sampler po__sampler;

/* Acts on one firing (runs on the sampler thread with no sampler lock held, or on the thread of
 * po__sampler_sample_now). Memory firings carry the autopilot's grade (ev->grade); flags has
 * PO__FIRING_FIRST_EMERGENCY the first time an episode reaches the emergency grade. Appends what
 * it did to acts and returns the bytes it freed. */
#define PO__FIRING_FIRST_EMERGENCY 1u
typedef int64_t (*po__firing_fn)(const po_pressure_event *ev, unsigned flags, po__actions *acts,
                                 void *user);

/* Creates a stopped sampler with a copy of cfg (interval, series capacity, hysteresis, cool-down,
 * overhead budget, GPU threshold, proc root, memory budget, autopilot, horizon, forecast window)
 * and the thresholds in force. gpu may be NULL (no
 * GPUs); it is borrowed and must outlive the sampler. */
int po__sampler_create(const po_config *cfg, const po_thresholds *th, po_gpu_session *gpu,
                       po__firing_fn on_firing, void *user, po__sampler **out);
/* Stops the thread and frees everything. NULL is a no-op. */
void po__sampler_destroy(po__sampler *s);

/* The public po_monitor_* functions, on a sampler (see perfopt.h for their contracts). */
int po__sampler_start(po__sampler *s);
int po__sampler_stop(po__sampler *s);
int po__sampler_running(po__sampler *s);
int po__sampler_sample_now(po__sampler *s, po_sample *out);
int po__sampler_latest(po__sampler *s, po_sample *out);
int po__sampler_get_stats(po__sampler *s, po_monitor_stats *out);
/* Takes *smp as if sampled: series, latest sample, thresholds and their actions (on the calling
 * thread). For tests and benches that feed known values. */
int po__sampler_push(po__sampler *s, const po_sample *smp);

/* ---- the autopilot's records ------------------------------------------------------------------- */

#define PO__SAMPLER_ACTIONS 256
#define PO__SAMPLER_RESOURCES (1 + PO_SAMPLE_MAX_GPUS) /* 0: host memory, 1 + g: GPU g */

/* One graded action and, once checked, whether it helped. */
typedef struct po__ap_record {
  uint64_t id; /* 1, 2, ... */
  double t_seconds;
  po_metric metric;
  int device;
  po_grade grade;
  unsigned trigger; /* PO__TRIGGER_* */
  int repeat;
  double ratio;                /* used / limit when it acted */
  double time_to_limit_before; /* -1 none */
  int64_t freed_bytes;
  int checked, helped, moved_out;
  double check_t_seconds;
  double time_to_limit_after; /* at the check; -1 none */
} po__ap_record;

/* ---- snapshot for the report ------------------------------------------------------------------ */

#define PO__SAMPLER_EVENTS 256

typedef struct po__sampler_event {
  double t_seconds;
  po_metric metric;
  int device;
  double value, threshold;
  po_cleanup_level level;
  po__actions actions;
  int64_t freed_bytes;
  po_grade grade;               /* memory firings with the autopilot on; else NONE */
  double time_to_limit_seconds; /* the forecast when it fired; -1 none */
} po__sampler_event;

typedef struct po__sampler_snapshot {
  double interval_seconds, effective_interval_seconds;
  int running;
  uint64_t samples;
  double overhead_core_ratio;
  po__series_set *series; /* a copy owned by the snapshot (NULL before the first sample) */
  size_t series_bytes;     /* what the live series holds (constant for the run) */
  po_thresholds thresholds;
  int gpu_thresholds_resolved;
  double gpu_threshold[PO_SAMPLE_MAX_GPUS];
  int gpu_threshold_from_config;
  int has_latest;
  po_sample latest;
  size_t gpu_count, gpus_dropped;
  po_gpu_info gpus[PO_SAMPLE_MAX_GPUS]; /* the last GPU reading */
  char gpu_reason[160];
  size_t nevents;
  uint64_t events_total, events_dropped;
  po__sampler_event events[PO__SAMPLER_EVENTS]; /* oldest first */
  /* forecast and autopilot */
  int autopilot;
  po__autopilot_params autopilot_params;
  double window_seconds;
  size_t resources; /* 1 + GPUs forecast */
  po__forecast forecast[PO__SAMPLER_RESOURCES];
  po_grade grade[PO__SAMPLER_RESOURCES];
  uint64_t episodes[PO__SAMPLER_RESOURCES];
  size_t nactions;
  uint64_t actions_total, actions_dropped;
  po__ap_record actions[PO__SAMPLER_ACTIONS]; /* oldest first */
  po__recent *recent; /* the recent samples at full resolution (a copy; with_recent only) */
} po__sampler_snapshot;

/* Allocates and fills a snapshot; with_recent adds a copy of the recent samples (the flight
 * record). Returns 0 or PO_ENOMEM. */
int po__sampler_snapshot_create(po__sampler *s, int with_recent, po__sampler_snapshot **out);
void po__sampler_snapshot_destroy(po__sampler_snapshot *snap);

#endif
