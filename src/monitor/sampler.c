/* The background resource monitor: a sampler thread that reads the system, this process and the
 * GPUs at an interval into bounded series, accounts for its own CPU cost, and fires thresholds
 * (with hysteresis and cool-down) into the owner's firing callback. See monitor/sampler.h.
 *
 * Locks, in the order they may be taken: probe_mu (probe, GPU reading, process baseline), then mu
 * (everything else: thread control, series, latest sample, events, stats). Neither is held while
 * the firing callback (user code) runs. The fork handlers take them in that order, after the
 * memory module's action lock (base/atfork.h ranks).
 */
#include "monitor/sampler.h"

#include "base/atfork.h"
#include "base/ring.h"
#include "platform.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SERIES_MAX_BYTES (1024 * 1024)
#define MIN_INTERVAL_MS 10

enum {
  COL_CPU,
  COL_PROC_CPU,
  COL_MEM_USED,
  COL_MEM_AVAIL,
  COL_RSS,
  COL_DISK_READ,
  COL_DISK_WRITE,
  COL_DISK_BUSY,
  COL_FIXED /* then two columns per GPU */
};

static const struct {
  const char *name, *unit;
} fixed_cols[COL_FIXED] = {
    {"cpu_utilization_ratio", "ratio"},
    {"process_cpu_ratio", "ratio"},
    {"memory_used_bytes", "bytes"},
    {"memory_available_bytes", "bytes"},
    {"process_rss_bytes", "bytes"},
    {"disk_read_bytes_per_second", "bytes_per_second"},
    {"disk_write_bytes_per_second", "bytes_per_second"},
    {"disk_busy_ratio", "ratio"},
};

struct po__sampler {
  po_config cfg;
  po_gpu_session *gpu;
  po__firing_fn on_firing;
  void *firing_user;
  struct po__sampler *next; /* live samplers, for the fork handlers */

  pthread_mutex_t probe_mu;
  po_probe *probe;
  int probe_stale; /* set in a forked child: the kept-open files describe the parent */
  po_system_sample sys;
  po_process_sample proc;
  po__statm statm; /* the cheap path for this process on the real /proc (see sample_self) */
  uint64_t prev_proc_cpu_ns, prev_proc_wall_ns;
  int64_t peak_rss;
  char gpu_reason[160];
  size_t gpu_count, gpus_dropped;
  po_gpu_info gpus[PO_SAMPLE_MAX_GPUS];

  pthread_mutex_t mu;
  pthread_cond_t cv; /* start and stop wait here for each other */
  sem_t wake;        /* posted by a stop: the thread sleeps on it between ticks */
  pthread_t thread;
  int has_thread;
  int stop_requested;
  po__series_set *series;
  size_t series_gpus; /* GPUs with columns in the series */
  po_sample latest;
  int has_latest;
  uint64_t samples;
  /* cost accounting (nanoseconds) */
  uint64_t cpu_ns_done, wall_ns_done;     /* finished runs */
  uint64_t run_cpu_ns, run_wall_start_ns; /* the current run */
  uint64_t sample_cpu_ns, samples_timed;
  double iter_cpu_ns_avg; /* smoothed thread CPU per loop iteration */
  double effective_interval_s;
  /* thresholds */
  po_thresholds th;
  double gpu_threshold[PO_SAMPLE_MAX_GPUS];
  int gpu_thresholds_resolved;
  po__threshold_state st[PO_THRESHOLD_COUNT];
  po__threshold_state gpu_st[PO_SAMPLE_MAX_GPUS];
  /* firings, newest PO__SAMPLER_EVENTS kept */
  po__ring ev_ring;
  po__sampler_event events[PO__SAMPLER_EVENTS];
  /* forecast and autopilot (mu): resource 0 is host memory, 1 + g GPU g */
  po__recent *recent; /* allocated with the series, at the first sample */
  int autopilot;
  po__autopilot_params ap_params;
  double window_s;
  size_t resources;
  po__forecast fc[PO__SAMPLER_RESOURCES];
  po__autopilot_state ap[PO__SAMPLER_RESOURCES];
  double level_since[PO__SAMPLER_RESOURCES]; /* the forecast's level ignores older samples */
  uint64_t ap_pending[PO__SAMPLER_RESOURCES]; /* record awaiting its check (0: none) */
  po__ring ap_ring;
  po__ap_record ap_records[PO__SAMPLER_ACTIONS];
};

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double interval_s(const po__sampler *s) {
  int64_t ms = s->cfg.monitor_interval_ms;
  if (ms < MIN_INTERVAL_MS) ms = MIN_INTERVAL_MS;
  return (double)ms / 1000.0;
}

static void cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* ---- fork safety -------------------------------------------------------------------------- */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static po__sampler *registry;

static void atfork_prepare(void) {
  pthread_mutex_lock(&registry_mu);
  for (po__sampler *s = registry; s; s = s->next) {
    pthread_mutex_lock(&s->probe_mu);
    pthread_mutex_lock(&s->mu);
  }
}

static void atfork_parent(void) {
  for (po__sampler *s = registry; s; s = s->next) {
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->probe_mu);
  }
  pthread_mutex_unlock(&registry_mu);
}

/* The child has only the forking thread: no sampler runs there. Its state is consistent (every
 * lock was taken by the forking thread in atfork_prepare), so that thread releases them; the
 * condition variable and the semaphore, which nobody waits on here, are made fresh. */
static void atfork_child(void) {
  for (po__sampler *s = registry; s; s = s->next) {
    cond_init_monotonic(&s->cv);
    sem_init(&s->wake, 0, 0);
    if (s->has_thread) {
      s->cpu_ns_done += s->run_cpu_ns;
      s->wall_ns_done += po__now_ns() - s->run_wall_start_ns;
    }
    s->has_thread = 0;
    s->stop_requested = 0;
    s->probe_stale = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->probe_mu);
  }
  pthread_mutex_unlock(&registry_mu);
}

__attribute__((constructor)) static void register_fork_hooks(void) {
  po__atfork_add(PO__FORK_RANK_SAMPLER, atfork_prepare, atfork_parent, atfork_child);
}

/* ---- probing (probe_mu held) -------------------------------------------------------------- */

static void query_gpus(po__sampler *s) {
  s->gpu_count = 0;
  s->gpus_dropped = 0;
  if (!s->gpu) {
    po__strlcpy(s->gpu_reason, "GPUs not monitored", sizeof s->gpu_reason);
    return;
  }
  po_gpu_session_query(s->gpu, s->gpus, PO_SAMPLE_MAX_GPUS, &s->gpu_count, &s->gpus_dropped,
                       s->gpu_reason, sizeof s->gpu_reason);
}

static int ensure_probe(po__sampler *s) {
  if (s->probe && s->probe_stale) {
    po_probe_destroy(s->probe);
    s->probe = NULL;
  }
  s->probe_stale = 0;
  if (s->probe) return 0;
  int rc = po__probe_create_at(s->cfg.proc_root, &s->probe);
  if (!rc) po__probe_set_memory_budget(s->probe, s->cfg.memory_limit_bytes);
  return rc;
}

static double ratio_or_unknown(int known, double v) {
  return known ? v : -1;
}

static uint64_t timeval_ns(struct timeval tv) {
  return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

/* This process on the real /proc, every tick: RSS from /proc/statm (one small kept-open file),
 * and one getrusage for both the peak RSS and the CPU time (user + system, which the kernel
 * scales to the scheduler's exact runtime: microsecond resolution, monotonic), instead of a
 * second system call for CLOCK_PROCESS_CPUTIME_ID. The full process probe reads stat, status,
 * io and the fd directory, several times the cost. */
static void sample_self(po__sampler *s, po_sample *out) {
  out->process_rss_bytes = po__statm_rss_bytes(&s->statm);
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    out->process_peak_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
    uint64_t cpu = timeval_ns(ru.ru_utime) + timeval_ns(ru.ru_stime);
    uint64_t wall = po__now_ns();
    if (s->prev_proc_wall_ns && wall > s->prev_proc_wall_ns && s->statm.pid == po__pid())
      out->process_cpu_ratio =
          (double)(cpu - s->prev_proc_cpu_ns) / (double)(wall - s->prev_proc_wall_ns);
    s->prev_proc_cpu_ns = cpu;
    s->prev_proc_wall_ns = wall;
  }
}

static void fill_system(const po_system_sample *y, po_sample *out) {
  /* Ratios are only meaningful relative to a previous sample. */
  out->cpu_utilization_ratio =
      ratio_or_unknown(y->has_rates && !(y->missing & PO_PROBE_MISSING_STAT), y->cpu.busy);
  if (!(y->missing & PO_PROBE_MISSING_MEMINFO)) {
    out->memory_limit_bytes = (int64_t)y->memory_limit_bytes;
    out->memory_limit_source = y->limit_source;
    out->memory_available_bytes = (int64_t)y->effective_available_bytes;
    out->memory_used_bytes = y->memory_limit_bytes > y->effective_available_bytes
                                 ? (int64_t)(y->memory_limit_bytes - y->effective_available_bytes)
                                 : 0;
  }
  if (y->has_pressure) {
    out->memory_pressure_some_ratio = y->pressure_some_avg10 / 100.0;
    out->memory_pressure_full_ratio = y->pressure_full_avg10 / 100.0;
  }
  if (y->has_rates && !(y->missing & PO_PROBE_MISSING_DISKSTATS)) {
    out->disk_read_bytes_per_second = y->disk_read_bytes_per_second;
    out->disk_write_bytes_per_second = y->disk_write_bytes_per_second;
    out->disk_busy_ratio = y->disk_busy_ratio;
  }
}

static void sample_unknown(po_sample *out) {
  memset(out, 0, sizeof *out);
  out->t_seconds = po__run_seconds();
  out->cpu_utilization_ratio = out->process_cpu_ratio = -1;
  out->memory_used_bytes = out->memory_available_bytes = out->memory_limit_bytes = -1;
  out->process_rss_bytes = out->process_peak_rss_bytes = -1;
  out->disk_read_bytes_per_second = out->disk_write_bytes_per_second = -1;
  out->disk_busy_ratio = -1;
  out->memory_pressure_some_ratio = out->memory_pressure_full_ratio = -1;
  out->memory_time_to_limit_seconds = -1;
}

/* Reads everything into *out. Missing sources leave their fields at -1. */
static void take_sample(po__sampler *s, po_sample *out) {
  sample_unknown(out);
  if (ensure_probe(s) == 0) {
    int rates = 0;
    if (po_probe_system(s->probe, &s->sys) == 0) {
      rates = s->sys.has_rates;
      fill_system(&s->sys, out);
    }
    if (!s->cfg.proc_root[0]) {
      sample_self(s, out);
    } else if (po_probe_process(s->probe, 0, 0, &s->proc) == 0) { /* a fake root: read it */
      out->process_rss_bytes = (int64_t)s->proc.rss_bytes;
      out->process_peak_rss_bytes = (int64_t)s->proc.peak_rss_bytes;
      out->process_cpu_ratio = ratio_or_unknown(rates, s->proc.cpu_ratio);
    }
  }
  if (out->process_rss_bytes > s->peak_rss) s->peak_rss = out->process_rss_bytes;
  if (s->peak_rss > out->process_peak_rss_bytes) out->process_peak_rss_bytes = s->peak_rss;
  query_gpus(s);
  out->gpu_count = (int)s->gpu_count;
  for (size_t i = 0; i < s->gpu_count; i++) {
    out->gpus[i].memory_used_bytes = (int64_t)s->gpus[i].memory_used_bytes;
    out->gpus[i].memory_total_bytes = (int64_t)s->gpus[i].memory_total_bytes;
    out->gpus[i].utilization_ratio = s->gpus[i].utilization_gpu_ratio;
    out->gpus[i].time_to_limit_seconds = -1;
  }
}

/* ---- series and thresholds (mu held) ------------------------------------------------------ */

/* The series and the recent ring, both sized at the first sample (when the GPU count is known):
 * every later tick allocates nothing. */
static int ensure_series(po__sampler *s, size_t gpus) {
  if (s->series) return 0;
  size_t rows = po__recent_rows_for(s->window_s > 60 ? s->window_s : 60, interval_s(s));
  s->recent = po__recent_create(rows, gpus);
  if (!s->recent) return PO_ENOMEM;
  s->resources = 1 + gpus;
  size_t cap = s->cfg.series_capacity > 4 ? (size_t)s->cfg.series_capacity : 4;
  s->series = po__series_create(cap, COL_FIXED + 1 + 2 * gpus, SERIES_MAX_BYTES);
  if (!s->series) {
    po__recent_destroy(s->recent);
    s->recent = NULL;
    return PO_ENOMEM;
  }
  for (size_t c = 0; c < COL_FIXED; c++)
    po__series_add_column(s->series, fixed_cols[c].name, fixed_cols[c].unit);
  po__series_add_column(s->series, "memory_time_to_limit_seconds", "seconds");
  for (size_t g = 0; g < gpus; g++) {
    char name[PO__SERIES_NAME_LEN];
    snprintf(name, sizeof name, "gpu%zu_memory_used_bytes", g);
    po__series_add_column(s->series, name, "bytes");
    snprintf(name, sizeof name, "gpu%zu_utilization_ratio", g);
    po__series_add_column(s->series, name, "ratio");
  }
  s->series_gpus = gpus;
  return 0;
}

static double known(double v) {
  return v >= 0 ? v : NAN;
}

static void push_series(po__sampler *s, const po_sample *smp) {
  if (!s->series) return;
  double v[COL_FIXED + 1 + 2 * PO_SAMPLE_MAX_GPUS];
  v[COL_CPU] = known(smp->cpu_utilization_ratio);
  v[COL_PROC_CPU] = known(smp->process_cpu_ratio);
  v[COL_MEM_USED] = known((double)smp->memory_used_bytes);
  v[COL_MEM_AVAIL] = known((double)smp->memory_available_bytes);
  v[COL_RSS] = known((double)smp->process_rss_bytes);
  v[COL_DISK_READ] = known(smp->disk_read_bytes_per_second);
  v[COL_DISK_WRITE] = known(smp->disk_write_bytes_per_second);
  v[COL_DISK_BUSY] = known(smp->disk_busy_ratio);
  v[COL_FIXED] = known(smp->memory_time_to_limit_seconds);
  for (size_t g = 0; g < s->series_gpus; g++) {
    int have = (int)g < smp->gpu_count;
    v[COL_FIXED + 1 + 2 * g] = have ? known((double)smp->gpus[g].memory_used_bytes) : NAN;
    v[COL_FIXED + 1 + 2 * g + 1] = have ? known(smp->gpus[g].utilization_ratio) : NAN;
  }
  po__series_push(s->series, smp->t_seconds, v);
}

/* Per-device GPU thresholds: the config's value for all, or each device's hardware target.
 * probe_mu held. */
static void resolve_gpu_thresholds(po__sampler *s) {
  if (s->gpu_thresholds_resolved || s->gpu_count == 0) return;
  po_gpu_target t[PO_SAMPLE_MAX_GPUS];
  int have_targets = po_gpu_optimal_targets(s->gpus, s->gpu_count, t) == 0;
  pthread_mutex_lock(&s->mu);
  s->gpu_thresholds_resolved = 1;
  for (size_t g = 0; g < s->gpu_count; g++) {
    double cfgv = s->cfg.gpu_memory_threshold;
    s->gpu_threshold[g] = cfgv > 0       ? cfgv
                          : have_targets ? t[g].memory_threshold_ratio
                                         : s->th.t[PO_METRIC_GPU_MEMORY].value;
  }
  pthread_mutex_unlock(&s->mu);
}

typedef struct firing {
  double value, threshold;
  double time_to_limit;
  uint64_t record_id; /* the autopilot's record of this action (0: none) */
  po_metric metric;
  int device;
  po_grade grade; /* the autopilot's (memory metrics with AUTOPILOT on); else NONE */
  unsigned flags; /* PO__FIRING_* */
} firing;

/* ---- forecast and autopilot (mu held) ------------------------------------------------------ */

static int resource_of(po_metric metric, int device) {
  return metric == PO_METRIC_GPU_MEMORY ? 1 + device : 0;
}

static po__ap_record *record_by_id(po__sampler *s, uint64_t id) {
  const po__ring *r = &s->ap_ring;
  if (id == 0 || id > r->total || r->total - id >= r->len) return NULL;
  return &s->ap_records[po__ring_at(r, r->len - 1 - (size_t)(r->total - id), PO__SAMPLER_ACTIONS)];
}

/* Appends the sample to the recent ring and writes the forecast of host memory and of each GPU
 * into it (the forecast is part of every sample). */
static void forecast(po__sampler *s, po_sample *smp) {
  if (ensure_series(s, (size_t)smp->gpu_count) != 0) return;
  po__recent *r = s->recent;
  po__recent_push(r, smp);
  for (size_t k = 0; k < s->resources; k++) {
    size_t col = k == 0 ? PO__RECENT_MEMORY_USED : PO__RECENT_FIXED + PO__RECENT_PER_GPU * (k - 1);
    int have = k == 0 || (int)(k - 1) < smp->gpu_count;
    double limit = k == 0 ? (double)smp->memory_limit_bytes
                  : have  ? (double)smp->gpus[k - 1].memory_total_bytes
                          : -1;
    po__ring_view v = po__recent_view(r, col);
    po__forecast_compute(&v, s->window_s, limit, s->level_since[k], &s->fc[k]);
    const po__forecast *f = &s->fc[k];
    double ttl = have ? f->time_to_limit_seconds : -1;
    double growth = f->trend == PO__TREND_UNKNOWN ? 0 : f->slope_per_second;
    po__recent_set_last(r, k == 0 ? PO__RECENT_TIME_TO_LIMIT : col + 2, ttl >= 0 ? ttl : NAN);
    if (k == 0) {
      smp->memory_time_to_limit_seconds = ttl;
      smp->memory_growth_bytes_per_second = growth;
    } else if (have) {
      smp->gpus[k - 1].time_to_limit_seconds = ttl;
      smp->gpus[k - 1].growth_bytes_per_second = growth;
    }
  }
}

/* One memory resource through the autopilot: records its checks and actions, and adds the
 * firing it decides. */
static void autopilot_step(po__sampler *s, po_metric metric, int device, double ratio, double th,
                           const po_sample *smp, firing *out, size_t *n) {
  int k = resource_of(metric, device);
  double ttl = device < 0 ? smp->memory_time_to_limit_seconds
                           : smp->gpus[device].time_to_limit_seconds;
  double psi = device < 0 && smp->memory_pressure_full_ratio >= 0 ? smp->memory_pressure_full_ratio
                                                                   : NAN;
  po__autopilot_input in = {smp->t_seconds, ratio, th, ttl, psi};
  po__autopilot_decision d;
  po__autopilot_step(&s->ap[k], &s->ap_params, &in, &d);
  po__ap_record *checked = d.checked ? record_by_id(s, s->ap_pending[k]) : NULL;
  if (checked) {
    checked->checked = 1;
    checked->helped = d.helped;
    checked->moved_out = d.moved_out;
    checked->check_t_seconds = smp->t_seconds;
    checked->time_to_limit_after = ttl;
  }
  if (d.rearmed) s->level_since[k] = -INFINITY;
  if (d.act == PO_GRADE_NONE) return;
  po__ap_record *rec = &s->ap_records[po__ring_push(&s->ap_ring, PO__SAMPLER_ACTIONS)];
  *rec = (po__ap_record){s->ap_ring.total, smp->t_seconds, metric, device, d.act, d.trigger,
                         d.repeat, ratio, ttl, 0, 0, 0, 0, 0, -1};
  s->ap_pending[k] = rec->id;
  out[(*n)++] = (firing){ratio, th, ttl, rec->id, metric, device, d.act,
                         d.first_emergency ? PO__FIRING_FIRST_EMERGENCY : 0u};
}

static size_t check_thresholds(po__sampler *s, po_sample *smp, firing *out) {
  const po_config *c = &s->cfg;
  uint64_t now = po__now_ns();
  uint64_t cool = c->threshold_cooldown_ms > 0 ? (uint64_t)c->threshold_cooldown_ms * 1000000u : 0;
  double hyst = c->threshold_hysteresis;
  double val[PO_THRESHOLD_COUNT] = {
      smp->cpu_utilization_ratio >= 0 ? smp->cpu_utilization_ratio : NAN,
      smp->memory_limit_bytes > 0 && smp->memory_used_bytes >= 0
          ? (double)smp->memory_used_bytes / (double)smp->memory_limit_bytes
          : NAN,
      NAN, /* per device below */
      smp->disk_busy_ratio >= 0 ? smp->disk_busy_ratio : NAN,
  };
  size_t n = 0;
  for (int k = 0; k < PO_THRESHOLD_COUNT; k++) {
    if (k == PO_METRIC_GPU_MEMORY) continue;
    double th = s->th.t[k].value;
    if (k == PO_METRIC_MEMORY && s->autopilot) {
      autopilot_step(s, PO_METRIC_MEMORY, -1, val[k], th, smp, out, &n);
      continue;
    }
    if (po__threshold_step(&s->st[k], val[k], th, hyst, now, cool))
      out[n++] = (firing){val[k], th, -1, 0, (po_metric)k, -1, PO_GRADE_NONE, 0};
  }
  for (int g = 0; g < smp->gpu_count && g < PO_SAMPLE_MAX_GPUS; g++) {
    double total = (double)smp->gpus[g].memory_total_bytes;
    double v = total > 0 ? (double)smp->gpus[g].memory_used_bytes / total : NAN;
    /* Per device once resolved; until then (or for a device NVML did not list) the common one. */
    double th = s->gpu_threshold[g] > 0 ? s->gpu_threshold[g] : s->th.t[PO_METRIC_GPU_MEMORY].value;
    if (s->autopilot && (size_t)g + 1 < s->resources)
      autopilot_step(s, PO_METRIC_GPU_MEMORY, g, v, th, smp, out, &n);
    else if (po__threshold_step(&s->gpu_st[g], v, th, hyst, now, cool))
      out[n++] = (firing){v, th, -1, 0, PO_METRIC_GPU_MEMORY, g, PO_GRADE_NONE, 0};
    smp->gpus[g].grade = (size_t)g + 1 < s->resources ? (int)s->ap[g + 1].grade : 0;
  }
  smp->memory_grade = (int)s->ap[0].grade;
  return n;
}

/* Runs a firing's actions through the owner's callback (no lock held: user code runs) and
 * records it, with what it freed in the autopilot's record. A cleanup that freed memory moves
 * the forecast's level past this sample. */
static void dispatch(po__sampler *s, const firing *f, const po_sample *smp) {
  po_cleanup_level level = f->grade != PO_GRADE_NONE ? po__grade_level(f->grade)
                                                     : po__threshold_level(f->value, f->threshold);
  po_pressure_event ev = {smp->t_seconds, f->metric, f->device, f->value,       f->threshold,
                          level,          smp,       f->grade,  f->time_to_limit};
  po__actions acts;
  memset(&acts, 0, sizeof acts);
  int64_t freed = s->on_firing ? s->on_firing(&ev, f->flags, &acts, s->firing_user) : 0;
  pthread_mutex_lock(&s->mu);
  s->events[po__ring_push(&s->ev_ring, PO__SAMPLER_EVENTS)] =
      (po__sampler_event){smp->t_seconds, f->metric, f->device, f->value, f->threshold,
                          ev.level,       acts,      freed,     f->grade, f->time_to_limit};
  po__ap_record *rec = record_by_id(s, f->record_id);
  if (rec) rec->freed_bytes = freed;
  if (rec && freed > 0) s->level_since[resource_of(f->metric, f->device)] =
      nextafter(smp->t_seconds, INFINITY);
  pthread_mutex_unlock(&s->mu);
}

/* Stores a sample with its forecast and acts on the thresholds it crosses. Called with mu held;
 * releases it before running the actions. *out (may be NULL) gets the stored sample. */
static void ingest_and_unlock(po__sampler *s, const po_sample *in, po_sample *out) {
  firing fired[PO_THRESHOLD_COUNT + PO_SAMPLE_MAX_GPUS];
  po_sample smp = *in;
  forecast(s, &smp);
  size_t n = check_thresholds(s, &smp, fired);
  push_series(s, &smp);
  s->latest = smp;
  s->has_latest = 1;
  s->samples++;
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < n; i++) dispatch(s, &fired[i], &smp);
  if (out) *out = smp;
}

/* One full tick: probe, store, evaluate thresholds, act. Allocates nothing (the sample lives on
 * this stack; the series was allocated by the first tick). */
static void sample_once(po__sampler *s, po_sample *out) {
  po_sample smp;
  pthread_mutex_lock(&s->probe_mu);
  take_sample(s, &smp);
  resolve_gpu_thresholds(s);
  /* mu before probe_mu is released: samples reach the series in the order they were taken. */
  pthread_mutex_lock(&s->mu);
  pthread_mutex_unlock(&s->probe_mu);
  ingest_and_unlock(s, &smp, out);
}

/* ---- the thread --------------------------------------------------------------------------- */

static struct timespec to_timespec(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  return ts;
}

/* mu held. Accounts one loop iteration's thread CPU (c1: the thread's CPU clock after the
 * sample; one clock read per tick, each costs a system call) and returns the interval to wait:
 * the configured one, or longer when LIMIT_MONITOR_OVERHEAD keeps the sampler within its
 * budget. */
static double account_tick(po__sampler *s, uint64_t cpu0, uint64_t c1) {
  /* Everything this thread spent since the end of the previous tick, waking up included,
   * against the budget: that is what a tick costs the process. */
  uint64_t iter = c1 - cpu0 - s->run_cpu_ns;
  s->run_cpu_ns = c1 - cpu0;
  s->sample_cpu_ns += iter;
  s->samples_timed++;
  s->iter_cpu_ns_avg =
      s->samples_timed == 1 ? (double)iter : 0.8 * s->iter_cpu_ns_avg + 0.2 * (double)iter;
  double want = interval_s(s);
  double budget = s->cfg.monitor_cpu_budget;
  if (s->cfg.limit_monitor_overhead && budget > 0) {
    double needed = s->iter_cpu_ns_avg / 1e9 / budget;
    if (needed > want) want = needed > 3600 ? 3600 : needed;
  }
  s->effective_interval_s = want;
  return want;
}

/* Sleeps until `next` (CLOCK_MONOTONIC) unless a stop posts `wake` first. A semaphore, not a
 * condition variable: glibc re-takes a condition variable's mutex marked as contended, which
 * costs one more system call (the unlock's futex wake) every tick. */
static void sleep_until(po__sampler *s, uint64_t next) {
  struct timespec ts = to_timespec(next);
  while (sem_clockwait(&s->wake, CLOCK_MONOTONIC, &ts) != 0 && errno == EINTR) {
  }
}

static void *sampler_main(void *arg) {
  po__sampler *s = arg;
  /* Named for top -H and gdb. Not registered with the profiler: it runs no zones. */
  pthread_setname_np(pthread_self(), "perfopt-sampler");
  uint64_t cpu0 = thread_cpu_ns();
  uint64_t next = po__now_ns();
  pthread_mutex_lock(&s->mu);
  while (!s->stop_requested) {
    pthread_mutex_unlock(&s->mu);
    sample_once(s, NULL);
    uint64_t c1 = thread_cpu_ns();
    pthread_mutex_lock(&s->mu);
    double want = account_tick(s, cpu0, c1);
    uint64_t now = po__now_ns();
    next += (uint64_t)(want * 1e9);
    if (next < now) next = now + (uint64_t)(want * 1e9); /* fell behind: do not burst */
    if (s->stop_requested) break;
    pthread_mutex_unlock(&s->mu);
    sleep_until(s, next);
    pthread_mutex_lock(&s->mu);
  }
  s->run_cpu_ns = thread_cpu_ns() - cpu0;
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int po__sampler_start(po__sampler *s) {
  if (!s) return PO_EINVAL;
  /* Open the probe here, so that a bad PROC_ROOT is reported to the caller. */
  pthread_mutex_lock(&s->probe_mu);
  int rc = ensure_probe(s);
  pthread_mutex_unlock(&s->probe_mu);
  if (rc) return rc;
  pthread_mutex_lock(&s->mu);
  while (s->has_thread && s->stop_requested) /* a stop in progress: let it finish first */
    pthread_cond_wait(&s->cv, &s->mu);
  if (s->has_thread) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  s->stop_requested = 0;
  while (sem_trywait(&s->wake) == 0) { /* a post left by a stop that found the thread leaving */
  }
  s->run_cpu_ns = 0;
  s->run_wall_start_ns = po__now_ns();
  s->effective_interval_s = interval_s(s);
  /* The thread starts with every signal blocked: the program's signals go to its own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&s->thread, NULL, sampler_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) s->has_thread = 1;
  pthread_mutex_unlock(&s->mu);
  return rc == 0 ? 0 : PO_ENOMEM;
}

int po__sampler_stop(po__sampler *s) {
  if (!s) return PO_EINVAL;
  pthread_mutex_lock(&s->mu);
  if (!s->has_thread) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  if (pthread_equal(s->thread, pthread_self())) { /* from a listener on the sampler thread */
    pthread_mutex_unlock(&s->mu);
    return PO_EBUSY;
  }
  if (s->stop_requested) { /* another thread is stopping it: wait for that, join only once */
    while (s->has_thread) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  s->stop_requested = 1;
  sem_post(&s->wake);
  pthread_t t = s->thread;
  pthread_mutex_unlock(&s->mu);
  pthread_join(t, NULL);
  pthread_mutex_lock(&s->mu);
  s->has_thread = 0;
  s->stop_requested = 0;
  s->cpu_ns_done += s->run_cpu_ns;
  s->wall_ns_done += po__now_ns() - s->run_wall_start_ns;
  s->run_cpu_ns = 0;
  pthread_cond_broadcast(&s->cv); /* other stoppers and starters waiting for this stop */
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int po__sampler_running(po__sampler *s) {
  if (!s) return 0;
  pthread_mutex_lock(&s->mu);
  int r = s->has_thread && !s->stop_requested;
  pthread_mutex_unlock(&s->mu);
  return r;
}

int po__sampler_sample_now(po__sampler *s, po_sample *out) {
  if (!s) return PO_EINVAL;
  sample_once(s, out);
  return 0;
}

int po__sampler_latest(po__sampler *s, po_sample *out) {
  if (!s || !out) return PO_EINVAL;
  pthread_mutex_lock(&s->mu);
  int have = s->has_latest;
  if (have) *out = s->latest;
  pthread_mutex_unlock(&s->mu);
  return have ? 0 : PO_ENOENT;
}

/* mu held. */
static double overhead_ratio(const po__sampler *s) {
  uint64_t cpu = s->cpu_ns_done, wall = s->wall_ns_done;
  if (s->has_thread) {
    cpu += s->run_cpu_ns;
    wall += po__now_ns() - s->run_wall_start_ns;
  }
  return wall > 0 ? (double)cpu / (double)wall : 0;
}

int po__sampler_get_stats(po__sampler *s, po_monitor_stats *out) {
  if (!s || !out) return PO_EINVAL;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&s->mu);
  out->samples = s->samples;
  out->interval_seconds = interval_s(s);
  out->effective_interval_seconds = s->has_thread ? s->effective_interval_s : interval_s(s);
  out->overhead_core_ratio = overhead_ratio(s);
  out->sample_cpu_seconds_avg =
      s->samples_timed ? (double)s->sample_cpu_ns / (double)s->samples_timed / 1e9 : 0;
  out->events = s->ev_ring.total;
  out->dropped_events = s->ev_ring.dropped;
  out->series_bytes = po__series_bytes(s->series);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

int po__sampler_push(po__sampler *s, const po_sample *smp) {
  if (!s || !smp || smp->gpu_count < 0 || smp->gpu_count > PO_SAMPLE_MAX_GPUS) return PO_EINVAL;
  pthread_mutex_lock(&s->mu);
  ingest_and_unlock(s, smp, NULL);
  return 0;
}

/* ---- snapshot ------------------------------------------------------------------------------ */

int po__sampler_snapshot_create(po__sampler *s, int with_recent, po__sampler_snapshot **out) {
  *out = NULL;
  po__sampler_snapshot *snap = po__calloc(1, sizeof *snap);
  if (!snap) return PO_ENOMEM;
  /* probe_mu for the GPU reading, then mu. */
  pthread_mutex_lock(&s->probe_mu);
  snap->gpu_count = s->gpu_count;
  snap->gpus_dropped = s->gpus_dropped;
  memcpy(snap->gpus, s->gpus, s->gpu_count * sizeof *snap->gpus);
  po__strlcpy(snap->gpu_reason, s->gpu_reason, sizeof snap->gpu_reason);
  pthread_mutex_lock(&s->mu);
  pthread_mutex_unlock(&s->probe_mu);
  int rc = 0;
  if (s->series && !(snap->series = po__series_clone(s->series))) rc = PO_ENOMEM;
  snap->series_bytes = po__series_bytes(s->series);
  snap->interval_seconds = interval_s(s);
  snap->effective_interval_seconds = s->has_thread ? s->effective_interval_s : interval_s(s);
  snap->running = s->has_thread;
  snap->samples = s->samples;
  snap->overhead_core_ratio = overhead_ratio(s);
  snap->thresholds = s->th;
  snap->gpu_thresholds_resolved = s->gpu_thresholds_resolved;
  memcpy(snap->gpu_threshold, s->gpu_threshold, sizeof snap->gpu_threshold);
  snap->gpu_threshold_from_config = s->cfg.gpu_memory_threshold > 0;
  snap->has_latest = s->has_latest;
  snap->latest = s->latest;
  snap->nevents = s->ev_ring.len;
  snap->events_total = s->ev_ring.total;
  snap->events_dropped = s->ev_ring.dropped;
  for (size_t i = 0; i < s->ev_ring.len; i++)
    snap->events[i] = s->events[po__ring_at(&s->ev_ring, i, PO__SAMPLER_EVENTS)];
  snap->autopilot = s->autopilot;
  snap->autopilot_params = s->ap_params;
  snap->window_seconds = s->window_s;
  snap->resources = s->resources;
  memcpy(snap->forecast, s->fc, sizeof snap->forecast);
  for (size_t k = 0; k < PO__SAMPLER_RESOURCES; k++) {
    snap->grade[k] = s->ap[k].grade;
    snap->episodes[k] = s->ap[k].episodes;
  }
  snap->nactions = s->ap_ring.len;
  snap->actions_total = s->ap_ring.total;
  snap->actions_dropped = s->ap_ring.dropped;
  for (size_t i = 0; i < s->ap_ring.len; i++)
    snap->actions[i] = s->ap_records[po__ring_at(&s->ap_ring, i, PO__SAMPLER_ACTIONS)];
  if (!rc && with_recent && s->recent && !(snap->recent = po__recent_clone(s->recent)))
    rc = PO_ENOMEM;
  pthread_mutex_unlock(&s->mu);
  if (rc) {
    po__sampler_snapshot_destroy(snap);
    return rc;
  }
  *out = snap;
  return 0;
}

void po__sampler_snapshot_destroy(po__sampler_snapshot *snap) {
  if (!snap) return;
  po__series_destroy(snap->series);
  po__recent_destroy(snap->recent);
  free(snap);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

int po__sampler_create(const po_config *cfg, const po_thresholds *th, po_gpu_session *gpu,
                       po__firing_fn on_firing, void *user, po__sampler **out) {
  if (!cfg || !th || !out) return PO_EINVAL;
  *out = NULL;
  po__sampler *s = po__calloc(1, sizeof *s);
  if (!s) return PO_ENOMEM;
  s->cfg = *cfg;
  s->th = *th;
  s->gpu = gpu;
  s->on_firing = on_firing;
  s->firing_user = user;
  s->statm = (po__statm)PO__STATM_INIT;
  pthread_mutex_init(&s->probe_mu, NULL);
  pthread_mutex_init(&s->mu, NULL);
  cond_init_monotonic(&s->cv);
  sem_init(&s->wake, 0, 0);
  s->effective_interval_s = interval_s(s);
  s->autopilot = cfg->autopilot;
  s->window_s = cfg->forecast_window_seconds > 0 ? cfg->forecast_window_seconds : 60;
  s->ap_params = (po__autopilot_params){
      cfg->autopilot_horizon_seconds > 0 ? cfg->autopilot_horizon_seconds : 60,
      cfg->threshold_hysteresis, cfg->threshold_cooldown_ms > 0 ? (double)cfg->threshold_cooldown_ms / 1000.0 : 0};
  for (size_t k = 0; k < PO__SAMPLER_RESOURCES; k++) {
    po__autopilot_init(&s->ap[k]);
    s->level_since[k] = -INFINITY;
  }
  pthread_mutex_lock(&registry_mu);
  s->next = registry;
  registry = s;
  pthread_mutex_unlock(&registry_mu);
  *out = s;
  return 0;
}

void po__sampler_destroy(po__sampler *s) {
  if (!s) return;
  po__sampler_stop(s);
  pthread_mutex_lock(&registry_mu);
  for (po__sampler **pp = &registry; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  pthread_mutex_unlock(&registry_mu);
  po_probe_destroy(s->probe);
  po__statm_close(&s->statm);
  po__series_destroy(s->series);
  po__recent_destroy(s->recent);
  pthread_cond_destroy(&s->cv);
  sem_destroy(&s->wake);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->probe_mu);
  free(s);
}
