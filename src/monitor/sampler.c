/* The background resource monitor: a sampler thread that reads the system, this process and the
 * GPUs at an interval into bounded series, accounts for its own CPU cost, and fires thresholds
 * (with hysteresis and cool-down) into cleanup, pressure listeners and the report.
 *
 * Locks, in the order they may be taken: the memory module's action_mu (user code runs under it),
 * then probe_mu (probe, NVML session, GPU buffers), then mu (everything else: thread control,
 * series, latest sample, events, stats). The pthread_atfork handlers take them in that order.
 */
#include "base/base.h"
#include "monitor/monitor.h"
#include "optimizer.h"
#include "platform.h"
#include "monitor/series.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
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

typedef struct event {
  double t;
  po_metric metric;
  int device;
  double value, threshold;
  po_cleanup_level level;
  po_actions actions;
  int64_t freed;
} event;

struct po_monitor {
  po_optimizer *opt;
  struct po_monitor *next; /* live monitors, for the fork handlers */

  pthread_mutex_t probe_mu;
  po_probe *probe;
  int probe_stale; /* set in a forked child: the kept-open files describe the parent */
  po_sys_sample *sys;
  po_proc_sample proc;
  /* The cheap path for this process on the real /proc (see sample_self). */
  int statm_fd, statm_pid;
  uint64_t prev_proc_cpu_ns, prev_proc_wall_ns;
  po_nvml *nvml;
  int nvml_tried;
  char gpu_reason[160];
  size_t gpu_count, gpus_dropped;
  po_gpu_info gpus[PO_SAMPLE_MAX_GPUS];

  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int has_thread;
  int stop_requested;
  po_series_set *series;
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
  po_threshold_state st[PO_THRESHOLD_COUNT];
  po_threshold_state gpu_st[PO_SAMPLE_MAX_GPUS];
  /* firings, newest MAX_EVENTS kept */
  size_t ev_head, ev_len;
  uint64_t ev_total, ev_dropped;
  event events[MAX_EVENTS];
};

static const char *const metric_names[] = {"cpu", "memory", "gpu_memory", "disk_busy", "manual"};

const char *po_metric_name(po_metric m) {
  return (int)m >= 0 && (int)m < (int)PO__ARRAY_LEN(metric_names) ? metric_names[m] : "unknown";
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double interval_s(const po_optimizer *opt) {
  int64_t ms = opt->cfg.monitor_interval_ms;
  if (ms < MIN_INTERVAL_MS) ms = MIN_INTERVAL_MS;
  return (double)ms / 1000.0;
}

/* ---- fork safety -------------------------------------------------------------------------- */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct po_monitor *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void) {
  pthread_mutex_lock(&registry_mu);
  for (struct po_monitor *m = registry; m; m = m->next) {
    po__memory_atfork_prepare(m->opt);
    pthread_mutex_lock(&m->probe_mu);
    pthread_mutex_lock(&m->mu);
  }
}

static void atfork_parent(void) {
  for (struct po_monitor *m = registry; m; m = m->next) {
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&m->probe_mu);
    po__memory_atfork_parent(m->opt);
  }
  pthread_mutex_unlock(&registry_mu);
}

/* The child has only the forking thread: no sampler runs there. Its state is consistent (every
 * lock was held by the forking thread), so the locks are simply made fresh. */
static void atfork_child(void) {
  for (struct po_monitor *m = registry; m; m = m->next) {
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->probe_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (m->has_thread) {
      m->cpu_ns_done += m->run_cpu_ns;
      m->wall_ns_done += po__now_ns() - m->run_wall_start_ns;
    }
    m->has_thread = 0;
    m->stop_requested = 0;
    m->probe_stale = 1;
    /* The parent's NVML session is not ours: forget it (not closed: that would shut the
     * parent's driver state down too) and open a new one if asked. */
    m->nvml = NULL;
    m->nvml_tried = 0;
    po__memory_atfork_child(m->opt);
  }
  pthread_mutex_init(&registry_mu, NULL);
}

static void install_atfork(void) {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---- probing (probe_mu held) -------------------------------------------------------------- */

static void ensure_nvml(struct po_monitor *m) {
  if (m->nvml || m->nvml_tried) return;
  m->nvml_tried = 1;
  if (po__nvml_open(m->opt->cfg.nvml_library, &m->nvml, m->gpu_reason, sizeof m->gpu_reason) != 0) {
    m->nvml = NULL;
    /* glibc keeps the failed dlopen's message in a per-thread buffer that a thread exit does not
     * free; reading the (now empty) error state releases it. */
    (void)dlerror();
  }
}

static void query_gpus(struct po_monitor *m) {
  ensure_nvml(m);
  m->gpu_count = 0;
  if (!m->nvml) return;
  size_t dropped = 0;
  if (po__nvml_query(m->nvml, m->gpus, PO_SAMPLE_MAX_GPUS, &m->gpu_count, &dropped, m->gpu_reason,
                     sizeof m->gpu_reason) != 0)
    m->gpu_count = 0;
  else
    m->gpu_reason[0] = '\0';
  m->gpus_dropped = dropped;
}

static int ensure_probe(struct po_monitor *m) {
  if (m->probe && m->probe_stale) {
    po__probe_close(m->probe);
    m->probe = NULL;
  }
  m->probe_stale = 0;
  if (m->probe) return 0;
  if (!m->sys && !(m->sys = malloc(sizeof *m->sys))) return PO_ENOMEM;
  return po__probe_open(m->opt->cfg.proc_root, &m->probe);
}

static double ratio_or_unknown(int known, double v) {
  return known ? v : -1;
}

/* This process on the real /proc, every tick: CPU time from CLOCK_PROCESS_CPUTIME_ID and RSS
 * from /proc/self/statm (one small kept-open file). The full process probe reads stat, status,
 * io and the fd directory, several times the cost; the memory report uses it instead. */
static void sample_self(struct po_monitor *m, po_sample *s) {
  int pid = (int)getpid();
  if (m->statm_fd >= 0 && m->statm_pid != pid) { /* forked: the file names the parent */
    close(m->statm_fd);
    m->statm_fd = -1;
  }
  if (m->statm_fd < 0) {
    m->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    m->statm_pid = pid;
    m->prev_proc_wall_ns = 0;
  }
  char buf[128];
  ssize_t n = m->statm_fd >= 0 ? pread(m->statm_fd, buf, sizeof buf - 1, 0) : -1;
  if (n > 0) {
    buf[n] = '\0';
    char *p = buf, *end;
    strtoull(p, &p, 10);
    unsigned long long resident = strtoull(p, &end, 10);
    if (end != p) s->process_rss_bytes = (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
  }
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
    uint64_t cpu = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t wall = po__now_ns();
    if (m->prev_proc_wall_ns && wall > m->prev_proc_wall_ns)
      s->process_cpu_ratio =
          (double)(cpu - m->prev_proc_cpu_ns) / (double)(wall - m->prev_proc_wall_ns);
    m->prev_proc_cpu_ns = cpu;
    m->prev_proc_wall_ns = wall;
  }
}

/* Reads everything into *s. Missing sources leave their fields at -1. */
static void take_sample(struct po_monitor *m, po_sample *s) {
  memset(s, 0, sizeof *s);
  s->t_seconds = po__run_seconds();
  s->cpu_utilization_ratio = s->process_cpu_ratio = -1;
  s->memory_used_bytes = s->memory_available_bytes = s->memory_limit_bytes = -1;
  s->process_rss_bytes = -1;
  s->disk_read_bytes_per_second = s->disk_write_bytes_per_second = s->disk_busy_ratio = -1;
  if (ensure_probe(m) == 0) {
    po_sys_sample *y = m->sys;
    int rates = 0;
    if (po__probe_system(m->probe, y) == 0) {
      rates = y->has_rates;
      /* Ratios are only meaningful relative to a previous sample. */
      s->cpu_utilization_ratio =
          ratio_or_unknown(y->has_rates && !(y->missing & PO_MISSING_STAT), y->cpu.busy);
      if (!(y->missing & PO_MISSING_MEMINFO)) {
        s->memory_limit_bytes = (int64_t)y->memory_limit_bytes;
        s->memory_available_bytes = (int64_t)y->effective_available_bytes;
        s->memory_used_bytes = y->memory_limit_bytes > y->effective_available_bytes
                                   ? (int64_t)(y->memory_limit_bytes - y->effective_available_bytes)
                                   : 0;
      }
      if (y->has_rates && !(y->missing & PO_MISSING_DISKSTATS)) {
        s->disk_read_bytes_per_second = y->disk_read_bytes_per_second;
        s->disk_write_bytes_per_second = y->disk_write_bytes_per_second;
        s->disk_busy_ratio = y->disk_busy_ratio;
      }
    }
    if (!m->opt->cfg.proc_root[0]) {
      sample_self(m, s);
    } else if (po__probe_process(m->probe, 0, 0, &m->proc) == 0) { /* a fake root: read it */
      s->process_rss_bytes = (int64_t)m->proc.rss_bytes;
      s->process_cpu_ratio = ratio_or_unknown(rates, m->proc.cpu_ratio);
    }
  }
  query_gpus(m);
  s->gpu_count = (int)m->gpu_count;
  for (size_t i = 0; i < m->gpu_count; i++) {
    s->gpus[i].memory_used_bytes = (int64_t)m->gpus[i].memory_used_bytes;
    s->gpus[i].memory_total_bytes = (int64_t)m->gpus[i].memory_total_bytes;
    s->gpus[i].utilization_ratio = m->gpus[i].utilization_gpu_ratio;
  }
}

/* ---- series and thresholds (mu held) ------------------------------------------------------ */

static int ensure_series(struct po_monitor *m, size_t gpus) {
  if (m->series) return 0;
  size_t cap = m->opt->cfg.series_capacity > 4 ? (size_t)m->opt->cfg.series_capacity : 4;
  m->series = po__series_create(cap, COL_FIXED + 2 * gpus, SERIES_MAX_BYTES);
  if (!m->series) return PO_ENOMEM;
  for (size_t c = 0; c < COL_FIXED; c++)
    po__series_add_column(m->series, fixed_cols[c].name, fixed_cols[c].unit);
  for (size_t g = 0; g < gpus; g++) {
    char name[PO_SERIES_NAME_LEN];
    snprintf(name, sizeof name, "gpu%zu_memory_used_bytes", g);
    po__series_add_column(m->series, name, "bytes");
    snprintf(name, sizeof name, "gpu%zu_utilization_ratio", g);
    po__series_add_column(m->series, name, "ratio");
  }
  m->series_gpus = gpus;
  return 0;
}

static double known(double v) {
  return v >= 0 ? v : NAN;
}

static void push_series(struct po_monitor *m, const po_sample *s) {
  if (ensure_series(m, (size_t)s->gpu_count) != 0) return;
  double v[COL_FIXED + 2 * PO_SAMPLE_MAX_GPUS];
  v[COL_CPU] = known(s->cpu_utilization_ratio);
  v[COL_PROC_CPU] = known(s->process_cpu_ratio);
  v[COL_MEM_USED] = known((double)s->memory_used_bytes);
  v[COL_MEM_AVAIL] = known((double)s->memory_available_bytes);
  v[COL_RSS] = known((double)s->process_rss_bytes);
  v[COL_DISK_READ] = known(s->disk_read_bytes_per_second);
  v[COL_DISK_WRITE] = known(s->disk_write_bytes_per_second);
  v[COL_DISK_BUSY] = known(s->disk_busy_ratio);
  for (size_t g = 0; g < m->series_gpus; g++) {
    int have = (int)g < s->gpu_count;
    v[COL_FIXED + 2 * g] = have ? known((double)s->gpus[g].memory_used_bytes) : NAN;
    v[COL_FIXED + 2 * g + 1] = have ? known(s->gpus[g].utilization_ratio) : NAN;
  }
  po__series_push(m->series, s->t_seconds, v);
}

/* Per-device GPU thresholds: the config's value for all, or each device's hardware target. */
static void resolve_gpu_thresholds(struct po_monitor *m) {
  if (m->gpu_thresholds_resolved || m->gpu_count == 0) return;
  m->gpu_thresholds_resolved = 1;
  po_gpu_target t[PO_SAMPLE_MAX_GPUS];
  int have_targets = po_gpu_optimal_targets(m->gpus, m->gpu_count, t) == 0;
  for (size_t g = 0; g < m->gpu_count; g++) {
    double cfgv = m->opt->cfg.gpu_memory_threshold;
    m->gpu_threshold[g] = cfgv > 0       ? cfgv
                          : have_targets ? t[g].memory_threshold_ratio
                                         : m->th.t[PO_METRIC_GPU_MEMORY].value;
  }
}

typedef struct firing {
  po_metric metric;
  int device;
  double value, threshold;
} firing;

static size_t check_thresholds(struct po_monitor *m, const po_sample *s, firing *out) {
  const po_config *c = &m->opt->cfg;
  uint64_t now = po__now_ns();
  uint64_t cool = c->threshold_cooldown_ms > 0 ? (uint64_t)c->threshold_cooldown_ms * 1000000u : 0;
  double hyst = c->threshold_hysteresis;
  double val[PO_THRESHOLD_COUNT] = {
      s->cpu_utilization_ratio >= 0 ? s->cpu_utilization_ratio : NAN,
      s->memory_limit_bytes > 0 && s->memory_used_bytes >= 0
          ? (double)s->memory_used_bytes / (double)s->memory_limit_bytes
          : NAN,
      NAN, /* per device below */
      s->disk_busy_ratio >= 0 ? s->disk_busy_ratio : NAN,
  };
  size_t n = 0;
  for (int k = 0; k < PO_THRESHOLD_COUNT; k++) {
    if (k == PO_METRIC_GPU_MEMORY) continue;
    double th = m->th.t[k].value;
    if (po__threshold_step(&m->st[k], val[k], th, hyst, now, cool))
      out[n++] = (firing){(po_metric)k, -1, val[k], th};
  }
  for (int g = 0; g < s->gpu_count && g < PO_SAMPLE_MAX_GPUS; g++) {
    double total = (double)s->gpus[g].memory_total_bytes;
    double v = total > 0 ? (double)s->gpus[g].memory_used_bytes / total : NAN;
    /* Per device once resolved; until then (or for a device NVML did not list) the common one. */
    double th = m->gpu_threshold[g] > 0 ? m->gpu_threshold[g] : m->th.t[PO_METRIC_GPU_MEMORY].value;
    if (po__threshold_step(&m->gpu_st[g], v, th, hyst, now, cool))
      out[n++] = (firing){PO_METRIC_GPU_MEMORY, g, v, th};
  }
  return n;
}

/* Runs a firing's actions (no lock held: user code runs) and records it. */
static void dispatch(struct po_monitor *m, const firing *f, const po_sample *s) {
  po_pressure_event ev = {s->t_seconds,
                          f->metric,
                          f->device,
                          f->value,
                          f->threshold,
                          po__threshold_level(f->value, f->threshold),
                          s};
  po_actions acts;
  memset(&acts, 0, sizeof acts);
  po_cleanup_result res = {0, 0, 0, 0};
  /* Memory pressure runs the whole registry; GPU memory pressure the GPU handlers; CPU and disk
   * pressure cannot be relieved by freeing memory, so only the listeners hear about them. */
  int type = f->metric == PO_METRIC_MEMORY       ? PO_RESOURCE_ALL
             : f->metric == PO_METRIC_GPU_MEMORY ? PO_RESOURCE_GPU
                                                 : PO__RESOURCE_NONE;
  po__memory_cleanup(m->opt, ev.level, type, 0, &ev, &res, &acts);
  pthread_mutex_lock(&m->mu);
  size_t slot = (m->ev_head + m->ev_len) % MAX_EVENTS;
  if (m->ev_len == MAX_EVENTS) {
    m->ev_head = (m->ev_head + 1) % MAX_EVENTS;
    m->ev_dropped++;
  } else {
    m->ev_len++;
  }
  m->ev_total++;
  m->events[slot] = (event){s->t_seconds, f->metric, f->device, f->value,
                            f->threshold, ev.level,  acts,      res.freed_bytes};
  pthread_mutex_unlock(&m->mu);
}

/* One full tick: probe, store, evaluate thresholds, act. */
/* Stores a sample and acts on the thresholds it crosses. Called with mu held; releases it
 * before running the actions. */
static void ingest_and_unlock(struct po_monitor *m, const po_sample *s) {
  firing fired[PO_THRESHOLD_COUNT + PO_SAMPLE_MAX_GPUS];
  push_series(m, s);
  m->latest = *s;
  m->has_latest = 1;
  m->samples++;
  size_t n = check_thresholds(m, s, fired);
  pthread_mutex_unlock(&m->mu);
  for (size_t i = 0; i < n; i++) dispatch(m, &fired[i], s);
}

static void sample_once(struct po_monitor *m, po_sample *out) {
  po_sample *s = malloc(sizeof *s);
  if (!s) return;
  pthread_mutex_lock(&m->probe_mu);
  take_sample(m, s);
  resolve_gpu_thresholds(m);
  /* mu before probe_mu is released: samples reach the series in the order they were taken. */
  pthread_mutex_lock(&m->mu);
  pthread_mutex_unlock(&m->probe_mu);
  ingest_and_unlock(m, s);
  if (out) *out = *s;
  free(s);
}

/* ---- the thread --------------------------------------------------------------------------- */

static struct timespec to_timespec(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  return ts;
}

static void *sampler_main(void *arg) {
  struct po_monitor *m = arg;
  /* Named for top -H and gdb. Not registered with the profiler: it runs no zones. */
  pthread_setname_np(pthread_self(), "perfopt-sampler");
  uint64_t cpu0 = thread_cpu_ns();
  uint64_t next = po__now_ns();
  pthread_mutex_lock(&m->mu);
  while (!m->stop_requested) {
    pthread_mutex_unlock(&m->mu);
    uint64_t c0 = thread_cpu_ns();
    sample_once(m, NULL);
    uint64_t c1 = thread_cpu_ns();
    pthread_mutex_lock(&m->mu);
    m->sample_cpu_ns += c1 - c0;
    m->samples_timed++;
    /* Everything this thread spent since its last wake-up, waiting included, against the
     * budget: that is what it costs the process. */
    uint64_t iter = c1 - cpu0 - m->run_cpu_ns;
    m->run_cpu_ns = c1 - cpu0;
    m->iter_cpu_ns_avg =
        m->samples_timed == 1 ? (double)iter : 0.8 * m->iter_cpu_ns_avg + 0.2 * (double)iter;
    double want = interval_s(m->opt);
    double budget = m->opt->cfg.monitor_cpu_budget;
    if (m->opt->cfg.limit_monitor_overhead && budget > 0) {
      double needed = m->iter_cpu_ns_avg / 1e9 / budget;
      if (needed > want) want = needed > 3600 ? 3600 : needed;
    }
    m->effective_interval_s = want;
    uint64_t now = po__now_ns();
    next += (uint64_t)(want * 1e9);
    if (next < now) next = now + (uint64_t)(want * 1e9); /* fell behind: do not burst */
    struct timespec ts = to_timespec(next);
    while (!m->stop_requested && po__now_ns() < next) {
      int rc = pthread_cond_timedwait(&m->cv, &m->mu, &ts);
      if (rc == ETIMEDOUT) break;
    }
  }
  m->run_cpu_ns = thread_cpu_ns() - cpu0;
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

int po_monitor_start(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m) return PO_EINVAL;
  /* Open the probe here, so that a bad PROC_ROOT is reported to the caller. */
  pthread_mutex_lock(&m->probe_mu);
  int rc = ensure_probe(m);
  pthread_mutex_unlock(&m->probe_mu);
  if (rc) return rc;
  pthread_mutex_lock(&m->mu);
  while (m->has_thread && m->stop_requested) /* a stop in progress: let it finish first */
    pthread_cond_wait(&m->cv, &m->mu);
  if (m->has_thread) {
    pthread_mutex_unlock(&m->mu);
    return 0;
  }
  m->stop_requested = 0;
  m->run_cpu_ns = 0;
  m->run_wall_start_ns = po__now_ns();
  m->effective_interval_s = interval_s(opt);
  /* The thread starts with every signal blocked: the program's signals go to its own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&m->thread, NULL, sampler_main, m);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) m->has_thread = 1;
  pthread_mutex_unlock(&m->mu);
  return rc == 0 ? 0 : PO_ENOMEM;
}

int po_monitor_stop(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (!m->has_thread) {
    pthread_mutex_unlock(&m->mu);
    return 0;
  }
  if (pthread_equal(m->thread, pthread_self())) { /* from a listener on the sampler thread */
    pthread_mutex_unlock(&m->mu);
    return PO_EBUSY;
  }
  if (m->stop_requested) { /* another thread is stopping it: wait for that, join only once */
    while (m->has_thread) pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    return 0;
  }
  m->stop_requested = 1;
  pthread_cond_broadcast(&m->cv);
  pthread_t t = m->thread;
  pthread_mutex_unlock(&m->mu);
  pthread_join(t, NULL);
  pthread_mutex_lock(&m->mu);
  m->has_thread = 0;
  m->stop_requested = 0;
  m->cpu_ns_done += m->run_cpu_ns;
  m->wall_ns_done += po__now_ns() - m->run_wall_start_ns;
  m->run_cpu_ns = 0;
  pthread_cond_broadcast(&m->cv); /* other stoppers and starters waiting for this stop */
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po_monitor_running(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m) return 0;
  pthread_mutex_lock(&m->mu);
  int r = m->has_thread && !m->stop_requested;
  pthread_mutex_unlock(&m->mu);
  return r;
}

int po_monitor_sample_now(po_optimizer *opt, po_sample *out) {
  opt = po__opt_or_default(opt);
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m) return PO_EINVAL;
  sample_once(m, out);
  return 0;
}

int po_monitor_latest(po_optimizer *opt, po_sample *out) {
  opt = po__opt_or_default(opt);
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m || !out) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  int have = m->has_latest;
  if (have) *out = m->latest;
  pthread_mutex_unlock(&m->mu);
  return have ? 0 : PO_ENOENT;
}

/* mu held. */
static double overhead_ratio(const struct po_monitor *m) {
  uint64_t cpu = m->cpu_ns_done, wall = m->wall_ns_done;
  if (m->has_thread) {
    cpu += m->run_cpu_ns;
    wall += po__now_ns() - m->run_wall_start_ns;
  }
  return wall > 0 ? (double)cpu / (double)wall : 0;
}

int po_monitor_get_stats(po_optimizer *opt, po_monitor_stats *out) {
  opt = po__opt_or_default(opt);
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m || !out) return PO_EINVAL;
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&m->mu);
  out->samples = m->samples;
  out->interval_seconds = interval_s(opt);
  out->effective_interval_seconds = m->has_thread ? m->effective_interval_s : interval_s(opt);
  out->overhead_core_ratio = overhead_ratio(m);
  out->sample_cpu_seconds_avg =
      m->samples_timed ? (double)m->sample_cpu_ns / (double)m->samples_timed / 1e9 : 0;
  out->events = m->ev_total;
  out->dropped_events = m->ev_dropped;
  out->series_bytes = po__series_bytes(m->series);
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po__monitor_test_push(po_optimizer *opt, const po_sample *s) {
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m || !s || s->gpu_count < 0 || s->gpu_count > PO_SAMPLE_MAX_GPUS) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  ingest_and_unlock(m, s);
  return 0;
}

int po__monitor_gpu_free(po_optimizer *opt, int device, int64_t *free_bytes) {
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m || device < 0) return PO_EINVAL;
  pthread_mutex_lock(&m->probe_mu);
  query_gpus(m);
  int rc = PO_ENODEV;
  if ((size_t)device < m->gpu_count) {
    *free_bytes = (int64_t)m->gpus[device].memory_free_bytes;
    rc = 0;
  }
  pthread_mutex_unlock(&m->probe_mu);
  return rc;
}

/* ---- optimizer hooks ---------------------------------------------------------------------- */

int po__monitor_optimizer_init(po_optimizer *opt) {
  struct po_monitor *m = calloc(1, sizeof *m);
  if (!m) return PO_ENOMEM;
  int rc = po__memory_init(opt);
  if (rc) {
    free(m);
    return rc;
  }
  m->opt = opt;
  m->statm_fd = -1;
  pthread_mutex_init(&m->probe_mu, NULL);
  pthread_mutex_init(&m->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&m->cv, &ca);
  pthread_condattr_destroy(&ca);
  m->effective_interval_s = interval_s(opt);
  if (po_thresholds_resolve(&opt->cfg, NULL, &m->th) != 0) {
    /* Without hardware facts: the config's values, 0 (disabled) where it left them 0. */
    memset(&m->th, 0, sizeof m->th);
    const double v[PO_THRESHOLD_COUNT] = {opt->cfg.cpu_threshold, opt->cfg.memory_threshold,
                                          opt->cfg.gpu_memory_threshold,
                                          opt->cfg.disk_busy_threshold};
    for (int k = 0; k < PO_THRESHOLD_COUNT; k++) {
      m->th.t[k].metric = metric_names[k];
      m->th.t[k].value = v[k];
      m->th.t[k].source = "config";
    }
  }
  opt->monitor = m;
  pthread_once(&atfork_once, install_atfork);
  pthread_mutex_lock(&registry_mu);
  m->next = registry;
  registry = m;
  pthread_mutex_unlock(&registry_mu);
  if (opt->cfg.background_monitoring) {
    rc = po_monitor_start(opt);
    /* A machine without /proc still gets an optimizer; the report says no samples were taken. */
    if (rc) po__log(1, "perfopt: background monitoring not started: %s", po_strerror(rc));
  }
  return 0;
}

void po__monitor_optimizer_fini(po_optimizer *opt) {
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m) return;
  po_monitor_stop(opt);
  pthread_mutex_lock(&registry_mu);
  for (struct po_monitor **pp = &registry; *pp; pp = &(*pp)->next)
    if (*pp == m) {
      *pp = m->next;
      break;
    }
  pthread_mutex_unlock(&registry_mu);
  po__probe_close(m->probe);
  if (m->statm_fd >= 0) close(m->statm_fd);
  po__nvml_close(m->nvml);
  po__series_free(m->series);
  free(m->sys);
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->probe_mu);
  free(m);
  opt->monitor = NULL;
  po__memory_fini(opt);
}

/* ---- report sections ---------------------------------------------------------------------- */

static cJSON *num_or_null(double v) {
  return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static int add_series(struct po_monitor *m, cJSON *arr) {
  const po_series_set *s = m->series;
  for (size_t c = 0; c < po__series_columns(s); c++) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) return PO_ENOMEM;
    cJSON *t = cJSON_CreateArray(), *mn = cJSON_CreateArray(), *mx = cJSON_CreateArray(),
          *la = cJSON_CreateArray();
    int ok = cJSON_AddStringToObject(o, "name", po__series_name(s, c)) &&
             cJSON_AddStringToObject(o, "unit", po__series_unit(s, c)) && t &&
             cJSON_AddItemToObject(o, "t_seconds", t) && mn &&
             cJSON_AddItemToObject(o, "min", mn) && mx && cJSON_AddItemToObject(o, "max", mx) &&
             la && cJSON_AddItemToObject(o, "last", la);
    if (!ok) return PO_ENOMEM;
    for (size_t i = 0; i < po__series_len(s); i++) {
      po_series_point p;
      po__series_get(s, c, i, &p);
      if (!cJSON_AddItemToArray(t, cJSON_CreateNumber(p.t)) ||
          !cJSON_AddItemToArray(mn, num_or_null(p.min)) ||
          !cJSON_AddItemToArray(mx, num_or_null(p.max)) ||
          !cJSON_AddItemToArray(la, num_or_null(p.last)))
        return PO_ENOMEM;
    }
  }
  return 0;
}

static int add_threshold(cJSON *arr, const char *metric, int device, double value,
                         const char *source, const char *why) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(arr, o)) return PO_ENOMEM;
  if (!cJSON_AddStringToObject(o, "metric", metric) ||
      !cJSON_AddNumberToObject(o, "value", value) ||
      !cJSON_AddStringToObject(o, "source", source) || !cJSON_AddStringToObject(o, "why", why))
    return PO_ENOMEM;
  if (device >= 0 && !cJSON_AddNumberToObject(o, "device", device)) return PO_ENOMEM;
  return 0;
}

static int add_events(struct po_monitor *m, cJSON *arr) {
  for (size_t i = 0; i < m->ev_len; i++) {
    const event *e = &m->events[(m->ev_head + i) % MAX_EVENTS];
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) return PO_ENOMEM;
    cJSON *acts = cJSON_CreateArray();
    if (!cJSON_AddNumberToObject(o, "t_seconds", e->t) ||
        !cJSON_AddStringToObject(o, "metric", po_metric_name(e->metric)) ||
        (e->device >= 0 && !cJSON_AddNumberToObject(o, "device", e->device)) ||
        !cJSON_AddNumberToObject(o, "value", e->value) ||
        !cJSON_AddNumberToObject(o, "threshold", e->threshold) ||
        !cJSON_AddStringToObject(o, "level",
                                 e->level == PO_CLEANUP_AGGRESSIVE ? "aggressive" : "normal") ||
        !acts || !cJSON_AddItemToObject(o, "actions", acts) ||
        !cJSON_AddNumberToObject(o, "freed_bytes", (double)e->freed))
      return PO_ENOMEM;
    for (int k = 0; k < e->actions.n; k++)
      if (!cJSON_AddItemToArray(acts, cJSON_CreateString(e->actions.item[k]))) return PO_ENOMEM;
    if (e->actions.dropped && !cJSON_AddNumberToObject(o, "dropped_actions", e->actions.dropped))
      return PO_ENOMEM;
  }
  return 0;
}

int po__report_add_resources(po_optimizer *opt, cJSON *root) {
  cJSON *r = cJSON_AddObjectToObject(root, "resources");
  if (!r) return PO_ENOMEM;
  struct po_monitor *m = opt ? opt->monitor : NULL;
  if (!m) return 0;
  cJSON *series = NULL, *th = NULL, *events = NULL;
  /* probe_mu for the GPU thresholds (set by the sampler under probe_mu), then mu. */
  pthread_mutex_lock(&m->probe_mu);
  pthread_mutex_lock(&m->mu);
  int rc = 0;
  if (!cJSON_AddNumberToObject(r, "interval_seconds", interval_s(opt)) ||
      !cJSON_AddNumberToObject(r, "effective_interval_seconds",
                               m->has_thread ? m->effective_interval_s : interval_s(opt)) ||
      !cJSON_AddBoolToObject(r, "running", m->has_thread) ||
      !cJSON_AddNumberToObject(r, "sample_count", (double)m->samples) ||
      !cJSON_AddNumberToObject(r, "overhead_core_ratio", overhead_ratio(m)) ||
      !cJSON_AddNumberToObject(r, "series_bytes", (double)po__series_bytes(m->series)) ||
      !cJSON_AddNumberToObject(r, "samples_per_bucket",
                               (double)po__series_samples_per_bucket(m->series)) ||
      !(series = cJSON_AddArrayToObject(r, "series")) ||
      !(th = cJSON_AddArrayToObject(r, "thresholds")) ||
      !(events = cJSON_AddArrayToObject(r, "events")) ||
      !cJSON_AddNumberToObject(r, "dropped_events", (double)m->ev_dropped))
    rc = PO_ENOMEM;
  if (!rc) rc = add_series(m, series);
  for (int k = 0; k < PO_THRESHOLD_COUNT && !rc; k++) {
    const po_threshold *t = &m->th.t[k];
    if (k == PO_METRIC_GPU_MEMORY && m->gpu_thresholds_resolved) continue;
    rc = add_threshold(th, metric_names[k], -1, t->value, t->source ? t->source : "config", t->why);
  }
  if (m->gpu_thresholds_resolved) {
    for (size_t g = 0; g < m->gpu_count && !rc; g++) {
      int from_cfg = opt->cfg.gpu_memory_threshold > 0;
      char why[160];
      snprintf(why, sizeof why, "%s for GPU %zu (%s, %.1f GiB)",
               from_cfg ? "GPU_MEMORY_THRESHOLD" : "hardware default", g, m->gpus[g].name,
               (double)m->gpus[g].memory_total_bytes / (1024.0 * 1024 * 1024));
      rc = add_threshold(th, "gpu_memory", (int)g, m->gpu_threshold[g],
                         from_cfg ? "config" : "hardware default", why);
    }
  }
  if (!rc) rc = add_events(m, events);
  pthread_mutex_unlock(&m->mu);
  pthread_mutex_unlock(&m->probe_mu);
  if (!rc) rc = po__memory_report_phases(opt, r);
  return rc;
}

int po__report_add_memory(po_optimizer *opt, cJSON *root) {
  cJSON *mem = cJSON_AddObjectToObject(root, "memory");
  if (!mem) return PO_ENOMEM;
  if (!opt) return 0;
  /* A probe of its own: current values, whether or not the sampler runs. */
  po_probe *p = NULL;
  po_sys_sample *y = malloc(sizeof *y);
  po_proc_sample pr;
  int have_sys = 0, have_proc = 0;
  if (y && po__probe_open(opt->cfg.proc_root, &p) == 0) {
    have_sys = po__probe_system(p, y) == 0 && !(y->missing & PO_MISSING_MEMINFO);
    have_proc = po__probe_process(p, 0, 0, &pr) == 0;
  }
  int ok =
      cJSON_AddNumberToObject(mem, "rss_bytes", have_proc ? (double)pr.rss_bytes : -1) &&
      cJSON_AddNumberToObject(mem, "peak_rss_bytes", have_proc ? (double)pr.peak_rss_bytes : -1) &&
      cJSON_AddNumberToObject(mem, "limit_bytes", have_sys ? (double)y->memory_limit_bytes : -1) &&
      cJSON_AddStringToObject(
          mem, "limit_source",
          have_sys && y->limit_source == PO_LIMIT_CGROUP ? "cgroup" : "system") &&
      cJSON_AddNumberToObject(mem, "available_bytes",
                              have_sys ? (double)y->effective_available_bytes : -1);
  po__probe_close(p);
  free(y);
  if (!ok) return PO_ENOMEM;
  return po__memory_report_records(opt, mem);
}

static int add_gpu_device(cJSON *arr, const po_gpu_info *d) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(arr, o)) return PO_ENOMEM;
  int ok = cJSON_AddNumberToObject(o, "index", d->index) &&
           cJSON_AddStringToObject(o, "name", d->name) &&
           cJSON_AddStringToObject(o, "uuid", d->uuid) &&
           cJSON_AddNumberToObject(o, "memory_total_bytes", (double)d->memory_total_bytes) &&
           cJSON_AddNumberToObject(o, "memory_used_bytes", (double)d->memory_used_bytes) &&
           cJSON_AddNumberToObject(o, "memory_free_bytes", (double)d->memory_free_bytes) &&
           cJSON_AddNumberToObject(o, "utilization_gpu_ratio", d->utilization_gpu_ratio) &&
           cJSON_AddNumberToObject(o, "utilization_memory_ratio", d->utilization_memory_ratio) &&
           cJSON_AddNumberToObject(o, "temperature_celsius", d->temperature_celsius) &&
           cJSON_AddNumberToObject(o, "power_watts", d->power_watts) &&
           (!d->error[0] || cJSON_AddStringToObject(o, "error", d->error));
  return ok ? 0 : PO_ENOMEM;
}

int po__report_add_gpu(po_optimizer *opt, cJSON *root) {
  cJSON *g = cJSON_AddObjectToObject(root, "gpu");
  if (!g) return PO_ENOMEM;
  struct po_monitor *m = opt ? opt->monitor : NULL;
  po_gpu_info *devs = calloc(PO_SAMPLE_MAX_GPUS, sizeof *devs);
  if (!devs) return PO_ENOMEM;
  size_t count = 0, dropped = 0;
  char reason[160] = "";
  if (m) {
    pthread_mutex_lock(&m->probe_mu);
    query_gpus(m);
    count = m->gpu_count;
    dropped = m->gpus_dropped;
    memcpy(devs, m->gpus, count * sizeof *devs);
    po__strlcpy(reason, m->gpu_reason, sizeof reason);
    pthread_mutex_unlock(&m->probe_mu);
  } else {
    po_gpu_usage(NULL, devs, PO_SAMPLE_MAX_GPUS, &count, reason, sizeof reason);
  }
  cJSON *arr = NULL;
  int rc = cJSON_AddBoolToObject(g, "available", count > 0) &&
                   cJSON_AddStringToObject(g, "reason", count > 0 ? "" : reason) &&
                   (arr = cJSON_AddArrayToObject(g, "devices")) &&
                   cJSON_AddNumberToObject(g, "dropped_devices", (double)dropped)
               ? 0
               : PO_ENOMEM;
  for (size_t i = 0; i < count && !rc; i++) rc = add_gpu_device(arr, &devs[i]);
  free(devs);
  return rc;
}

int po__report_add_host(po_optimizer *opt, cJSON *host) {
  po_hardware *hw = malloc(sizeof *hw);
  if (!hw) return PO_ENOMEM;
  int rc = 0;
  if (po_hardware_probe(opt ? &opt->cfg : NULL, 0, hw) == 0) {
    int ok = cJSON_AddStringToObject(host, "cpu_model", hw->cpu_model) &&
             cJSON_AddNumberToObject(host, "cores_online", hw->cores_online) &&
             cJSON_AddNumberToObject(host, "cores_allowed", hw->cores_allowed) &&
             cJSON_AddNumberToObject(host, "cgroup_cpu_limit", hw->cgroup_cpu_limit) &&
             cJSON_AddNumberToObject(host, "memory_total_bytes", (double)hw->memory_total_bytes) &&
             cJSON_AddNumberToObject(host, "memory_limit_bytes", (double)hw->memory_limit_bytes) &&
             cJSON_AddStringToObject(host, "memory_limit_source",
                                     hw->limit_from_cgroup ? "cgroup" : "system") &&
             cJSON_AddNumberToObject(host, "cgroup_memory_max_bytes",
                                     (double)hw->cgroup_memory_max_bytes) &&
             cJSON_AddNumberToObject(host, "cgroup_version", hw->cgroup_version);
    if (!ok) rc = PO_ENOMEM;
  }
  free(hw);
  return rc;
}
