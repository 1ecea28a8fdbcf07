/* Memory management: the cleanup registry (the seed's optimize_memory and clear_cache(type)),
 * pressure listeners, the memory guard, batch-size advice and phases. One po__memory per
 * optimizer; it knows nothing of the optimizer or the sampler (the optimizer wires threshold
 * firings to po__memory_cleanup). Files: cleanup.c (registry, listeners, passes, records),
 * guard.c (available memory, the guard), batch.c (batch advice), phases.c. Not installed.
 *
 * Locks: `action_mu` serializes everything that calls user code (cleanup handlers, listeners),
 * so that unregistering waits for a running handler; `mu` protects the registry and the records
 * and is never held while user code runs. Order: action_mu before mu (base/atfork.h ranks).
 */
#ifndef PO__MEMORY_H
#define PO__MEMORY_H

#include "base/base.h"
#include "base/ring.h"
#include "monitor/threshold.h"
#include "platform.h"

#include <pthread.h>

#define PO__MAX_HANDLERS 256
#define PO__MAX_LISTENERS 64
#define PO__MAX_CLEANUP_RECORDS 512
#define PO__MAX_GUARD_RECORDS 256
#define PO__MAX_PHASES 1024
#define PO__MAX_PROBE_RECORDS 64
#define PO__RESOURCE_LISTENER (-1) /* a cleanup record written by a listener */
#define PO__RESOURCE_ALLOCATOR (-3) /* a cleanup record of the pass's malloc_trim */
#define PO__RESOURCE_CHECKPOINT (-4) /* a cleanup record of a checkpoint handler */
#define PO__MAX_CHECKPOINTS 16

typedef struct po__handler {
  int id;
  char name[64];
  po_resource_type type;
  int priority;
  po_cleanup_level min_level;
  po_cleanup_fn fn;
  void *user;
} po__handler;

typedef struct po__listener {
  int id;
  char name[32];
  po_pressure_fn fn;
  void *user;
} po__listener;

typedef struct po__checkpoint {
  int id;
  char name[64];
  po_checkpoint_fn fn;
  void *user;
} po__checkpoint;

typedef struct po__cleanup_record {
  double t_seconds;
  po_cleanup_level level;
  int type; /* po_resource_type, PO__RESOURCE_LISTENER or PO__RESOURCE_ALLOCATOR */
  char handler[64];
  int64_t freed_bytes;
} po__cleanup_record;

typedef struct po__guard_record {
  double t_seconds;
  char name[64];
  int64_t required_bytes, available_bytes;
  int ran; /* 0 none, 1 primary, 2 fallback */
  int result;
  int64_t retried_batch; /* primary run again at this batch after an out-of-memory (0: none) */
} po__guard_record;

typedef struct po__probe_record {
  double t_seconds;
  int device;
  int result;
  po_batch_probe_result r;
} po__probe_record;

typedef struct po__phase {
  char name[64];
  double start_seconds, end_seconds; /* end < 0 while open */
} po__phase;

#define PO__TEST_DEVICES (PO_SAMPLE_MAX_GPUS + 1)

typedef struct po__memory {
  pthread_mutex_t action_mu;
  pthread_mutex_t mu;
  char proc_root[256];
  int64_t budget_bytes; /* MEMORY_LIMIT_BYTES, for the available-memory probe */
  po_gpu_session *gpu; /* borrowed; NULL: no GPUs */
  po__statm statm;     /* under action_mu */
  struct po__memory *next; /* live instances, for the fork handlers */
  int next_id;
  size_t nhandlers;
  po__handler handlers[PO__MAX_HANDLERS];
  size_t nlisteners;
  po__listener listeners[PO__MAX_LISTENERS];
  size_t ncheckpoints;
  po__checkpoint checkpoints[PO__MAX_CHECKPOINTS];
  po__ring cleanups_ring;
  po__cleanup_record cleanups[PO__MAX_CLEANUP_RECORDS];
  po__ring guards_ring;
  po__guard_record guards[PO__MAX_GUARD_RECORDS];
  po__ring probes_ring;
  po__probe_record probes[PO__MAX_PROBE_RECORDS];
  size_t nphases;
  uint64_t phases_dropped;
  int phase_open; /* index of the open phase + 1, or 0 */
  int phase_cleanup_level;
  int has_test_available[PO__TEST_DEVICES];
  int64_t test_available[PO__TEST_DEVICES];
  po__phase phases[PO__MAX_PHASES];
} po__memory;

/* gpu may be NULL; it is borrowed and must outlive the memory state. */
int po__memory_create(const po_config *cfg, po_gpu_session *gpu, po__memory **out);
void po__memory_destroy(po__memory *m);

/* ---- cleanup.c ---------------------------------------------------------------------------- */

int po__memory_register(po__memory *m, const char *name, po_resource_type type, int priority,
                        po_cleanup_level min_level, po_cleanup_fn fn, void *user, int *id_out);
int po__memory_unregister(po__memory *m, int id);
int po__memory_add_listener(po__memory *m, const char *name, po_pressure_fn fn, void *user,
                            int *id_out);
int po__memory_remove_listener(po__memory *m, int id);

/* The emergency ("checkpoint now") handlers: at most PO__MAX_CHECKPOINTS (PO_EFULL beyond). */
int po__memory_add_checkpoint(po__memory *m, const char *name, po_checkpoint_fn fn, void *user,
                              int *id_out);
int po__memory_remove_checkpoint(po__memory *m, int id);
/* Runs every checkpoint handler with ev, in registration order, under action_mu, and records
 * each as a cleanup record of type "checkpoint" and an action "checkpoint:<name>". Returns the
 * number run, or PO_EBUSY from inside a handler. */
int po__memory_checkpoint(po__memory *m, const po_pressure_event *ev, po__actions *acts);

/* Runs the cleanup handlers of `type` (PO_RESOURCE_ALL for all) whose min_level is at most
 * `level` (every one of the type when all_levels), then, when ev is not NULL, the pressure
 * listeners with ev; then one malloc_trim(0). Fills *out (may be NULL) and appends what ran to
 * acts (may be NULL). PO_EBUSY when called from inside a handler or listener. */
#define PO__RESOURCE_NONE (-2) /* listeners only, no handlers, no trim */
int po__memory_cleanup(po__memory *m, po_cleanup_level level, int type, int all_levels,
                       const po_pressure_event *ev, po_cleanup_result *out, po__actions *acts);

/* ---- guard.c ------------------------------------------------------------------------------ */

/* Available bytes: device -1 = the effective host memory (cgroup or system), >= 0 = that GPU's
 * free memory. -1 when unknown. */
int64_t po__memory_available(po__memory *m, int device);
int po__memory_guard(po__memory *m, int64_t required_bytes, po_guard_fn primary,
                     po_guard_fn fallback, void *ctx, const po_guard_options *o,
                     po_guard_result *out);

/* ---- batch.c ------------------------------------------------------------------------------ */

/* m may be NULL (probe the real machine). */
int po__memory_batch_advise(po__memory *m, const po_batch_request *req, int64_t *batch_out);
/* The largest batch whose model memory fits available * (1 - headroom): capped at max_batch
 * (0: none), rounded down to a multiple of `multiple` (<= 1: any). 0 when none fits; -1 when the
 * model does not grow with the batch. */
int64_t po__batch_model_fit(const po_batch_model *model, double available, double headroom,
                            int64_t max_batch, int64_t multiple);
/* Least-squares line through (batch[i], bytes[i]), n >= 2 distinct batches. PO_EINVAL else. */
int po__batch_model_from(const int64_t *batch, const int64_t *bytes, int n, po_batch_model *out);
int po__memory_batch_probe(po__memory *m, po_batch_step_fn step, void *user,
                           const po_batch_probe_options *o, po_batch_probe_result *out);

/* ---- phases.c ----------------------------------------------------------------------------- */

int po__memory_phase_begin(po__memory *m, const char *name);
int po__memory_phase_end(po__memory *m);
int po__memory_phase_set_cleanup(po__memory *m, int level);

/* ---- snapshot for the report -------------------------------------------------------------- */

typedef struct po__memory_snapshot {
  size_t ncleanups;
  uint64_t cleanups_dropped;
  po__cleanup_record cleanups[PO__MAX_CLEANUP_RECORDS]; /* oldest first */
  size_t nguards;
  uint64_t guards_dropped;
  po__guard_record guards[PO__MAX_GUARD_RECORDS];
  size_t nprobes;
  uint64_t probes_dropped;
  po__probe_record probes[PO__MAX_PROBE_RECORDS];
  size_t nphases;
  uint64_t phases_dropped;
  double now_seconds; /* an open phase ends "now" in the snapshot */
  po__phase phases[PO__MAX_PHASES];
} po__memory_snapshot;

int po__memory_snapshot_create(po__memory *m, po__memory_snapshot **out);
void po__memory_snapshot_destroy(po__memory_snapshot *snap);

#ifdef PERFOPT_TESTING
/* Test build only: pretend `device` (-1 host, 0.. GPU) has `bytes` available; bytes < 0 clears. */
void po__memory_test_set_available(po__memory *m, int device, int64_t bytes);
/* Test build only: malloc_trim calls made by cleanup passes since the process started. */
uint64_t po__memory_test_trims(void);
#endif

#endif
