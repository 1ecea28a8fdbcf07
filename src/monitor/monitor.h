/* Internal interface between the monitor's parts: the threshold state machine, the sampler
 * (src/sampler.c), and memory management (src/memory.c). Not installed. */
#ifndef PO_MONITOR_H
#define PO_MONITOR_H

#include "optimizer.h"

#include <stdint.h>

struct cJSON;

/* The public monitor and memory functions accept NULL for the default optimizer. */
static inline po_optimizer *po__opt_or_default(po_optimizer *opt) {
  return opt ? opt : po_get_optimizer();
}

/* ---- thresholds (src/threshold.c): a pure state machine, no clock, no threads ------------- */

/* One metric's state. Zero-initialized = armed (below the threshold, never fired). */
typedef struct po_threshold_state {
  int above;   /* a crossing was seen and the value has not yet fallen below
                * threshold - hysteresis (re-arming) */
  int pending; /* that crossing has not fired yet: held back by the cool-down */
  int fired_once;
  uint64_t last_fire_ns;
  uint64_t crossings;  /* crossings seen */
  uint64_t suppressed; /* crossings that ended inside the cool-down without firing */
} po_threshold_state;

/* Feeds one value; returns 1 when this value fires the threshold, else 0.
 * Fires once per crossing: the value must reach `threshold`, and the threshold re-arms only when
 * the value falls below threshold - hysteresis. A crossing within cooldown_ns of the previous
 * firing is held: it fires when the cool-down ends if the value is still above the re-arm level,
 * and is counted as suppressed if it falls back first. NaN values and threshold <= 0 (disabled)
 * never fire and leave the state unchanged. */
int po__threshold_step(po_threshold_state *st, double value, double threshold, double hysteresis,
                       uint64_t now_ns, uint64_t cooldown_ns);

/* The cleanup level a firing asks for: aggressive when the value is at least halfway between the
 * threshold and 1 (e.g. 0.9 for a 0.8 threshold). */
po_cleanup_level po__threshold_level(double value, double threshold);

/* ---- actions taken for one firing (recorded in the report) -------------------------------- */

#define PO_ACTIONS_MAX 8
#define PO_ACTION_LEN 48
typedef struct po_actions {
  int n;
  int dropped; /* actions beyond PO_ACTIONS_MAX, counted */
  char item[PO_ACTIONS_MAX][PO_ACTION_LEN];
} po_actions;
void po__actions_add(po_actions *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- memory management (src/memory.c) ----------------------------------------------------- */

int po__memory_init(po_optimizer *opt);
void po__memory_fini(po_optimizer *opt);

/* Runs the cleanup handlers of `type` (PO_RESOURCE_ALL for all) whose min_level is at most
 * `level` (every one of the type when all_levels), then, when ev is not NULL, the pressure
 * listeners with ev; malloc_trim(0) after each. Fills *out (may be NULL) and appends what ran to
 * acts (may be NULL). PO_EBUSY when called from inside a handler or listener. */
#define PO__RESOURCE_NONE (-2) /* po__memory_cleanup: listeners only, no handlers, no trim */
int po__memory_cleanup(po_optimizer *opt, po_cleanup_level level, int type, int all_levels,
                       const po_pressure_event *ev, po_cleanup_result *out, po_actions *acts);

/* Available bytes: device -1 = the effective host memory (cgroup or system), >= 0 = that GPU's
 * free memory. -1 when unknown. */
int64_t po__memory_available(po_optimizer *opt, int device);

/* This process's resident set size from /proc/self/statm, or -1. */
int64_t po__self_rss_bytes(void);

/* Test hook: pretend `device` (-1 host, 0.. GPU) has `bytes` available; bytes < 0 clears. */
PO_API void po__memory_test_set_available(po_optimizer *opt, int device, int64_t bytes);

/* Report pieces the memory module owns. */
int po__memory_report_records(po_optimizer *opt, struct cJSON *memory);
int po__memory_report_phases(po_optimizer *opt, struct cJSON *resources);

/* fork safety: the sampler's pthread_atfork handlers call these for each live optimizer. */
void po__memory_atfork_prepare(po_optimizer *opt);
void po__memory_atfork_parent(po_optimizer *opt);
void po__memory_atfork_child(po_optimizer *opt);

/* ---- sampler (src/sampler.c) -------------------------------------------------------------- */

/* A GPU's free memory through the monitor's NVML session. PO_ENODEV when there is no such GPU. */
int po__monitor_gpu_free(po_optimizer *opt, int device, int64_t *free_bytes);

/* Test and bench hook: takes *s as if sampled: series, latest sample, thresholds and their
 * actions (on the calling thread). */
PO_API int po__monitor_test_push(po_optimizer *opt, const po_sample *s);

#endif
