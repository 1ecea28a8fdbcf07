/* The process-tree monitor (see monitor/treemon.h). */
#include "monitor/treemon.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define SERIES_CAPACITY 4096
#define SERIES_MAX_BYTES (1024 * 1024)
#define HASH_SLOTS 1024 /* pid -> newest record; a power of two above PO__TREEMON_PROCS */

enum { COL_CPU, COL_RSS, COL_PROCS, COL_READ, COL_WRITE, COL_GPU, COL_COUNT };

static const struct {
  const char *name, *unit;
} columns[COL_COUNT] = {
    {"tree_cpu_ratio", "ratio"},
    {"tree_rss_bytes", "bytes"},
    {"tree_processes", "count"},
    {"tree_read_bytes_per_second", "bytes_per_second"},
    {"tree_write_bytes_per_second", "bytes_per_second"},
    {"tree_gpu_memory_bytes", "bytes"},
};

struct po__treemon {
  po_proc_tree *reader;
  po_gpu_session *gpu;
  int root_pid;
  unsigned flags;
  double boot_t0; /* seconds since boot when the monitor began */
  po_proc_info *rows;
  /* records, and pid -> index of the newest record of that pid (-1 empty) */
  po__proc_record *procs;
  size_t nprocs, cap_procs;
  int hash[HASH_SLOTS];
  uint64_t others_count;
  double others_cpu_seconds;
  uint32_t untracked;
  /* samples and peaks */
  uint64_t samples;
  double last_t;
  double sampler_cpu_seconds;
  uint64_t peak_rss_bytes;
  double peak_rss_seconds, peak_cpu_ratio, peak_cpu_seconds;
  uint32_t peak_processes, peak_threads;
  int64_t peak_open_fds;
  int64_t gpu_peak_bytes;
  double gpu_peak_seconds;
  po_proc_tree_totals last;
  po__series_set *series;
  int series_has_gpu;
  size_t nlast, last_head;
  po__tree_sample last_samples[PO__TREEMON_LAST];
  /* GPUs */
  double gpu_read_t; /* when last read; < 0 never */
  int gpu_monitored;
  size_t gpu_count, gpus_dropped;
  po_gpu_info gpus[PO_SAMPLE_MAX_GPUS];
  po_gpu_info gpu_scratch[PO_SAMPLE_MAX_GPUS]; /* a reading before take_gpus keeps it */
  char gpu_reason[160];
};

static double boot_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int po__treemon_create(const po_config *cfg, int root_pid, unsigned flags, po_gpu_session *gpu,
                       po__treemon **out) {
  *out = NULL;
  po__treemon *m = po__calloc(1, sizeof *m);
  if (!m) return PO_ENOMEM;
  m->gpu = gpu;
  m->root_pid = root_pid;
  m->flags = flags;
  m->boot_t0 = boot_seconds();
  m->gpu_peak_bytes = -1;
  m->gpu_read_t = -1;
  po__strlcpy(m->gpu_reason, gpu ? "not read yet" : "GPUs not monitored", sizeof m->gpu_reason);
  for (size_t i = 0; i < HASH_SLOTS; i++) m->hash[i] = -1;
  int rc = po_proc_tree_create(cfg, root_pid, flags, &m->reader);
  if (!rc) {
    m->rows = po__calloc(PO_PROC_TREE_MAX, sizeof *m->rows);
    if (!m->rows) rc = PO_ENOMEM;
  }
  if (rc) {
    po__treemon_destroy(m);
    return rc;
  }
  *out = m;
  return 0;
}

void po__treemon_destroy(po__treemon *m) {
  if (!m) return;
  po_proc_tree_destroy(m->reader);
  po__series_destroy(m->series);
  free(m->rows);
  free(m->procs);
  free(m);
}

/* ---- records -------------------------------------------------------------------------------- */

static size_t slot_of(int pid) {
  return ((size_t)(unsigned)pid * 2654435761u) & (HASH_SLOTS - 1);
}

/* The newest record of pid, or NULL. */
static po__proc_record *find_record(po__treemon *m, int pid) {
  for (size_t s = slot_of(pid), k = 0; k < HASH_SLOTS; k++, s = (s + 1) & (HASH_SLOTS - 1)) {
    if (m->hash[s] < 0) return NULL;
    if (m->procs[m->hash[s]].pid == pid) return &m->procs[m->hash[s]];
  }
  return NULL;
}

static void index_record(po__treemon *m, size_t idx) {
  int pid = m->procs[idx].pid;
  for (size_t s = slot_of(pid), k = 0; k < HASH_SLOTS; k++, s = (s + 1) & (HASH_SLOTS - 1)) {
    if (m->hash[s] < 0 || m->procs[m->hash[s]].pid == pid) {
      m->hash[s] = (int)idx;
      return;
    }
  }
}

/* A new record for row r, or NULL when the table is full (or memory is short). */
static po__proc_record *new_record(po__treemon *m, const po_proc_info *r, double t) {
  if (m->nprocs >= PO__TREEMON_PROCS) return NULL;
  if (m->nprocs == m->cap_procs) {
    size_t nc = m->cap_procs ? m->cap_procs * 2 : 16;
    po__proc_record *np = po__realloc(m->procs, nc * sizeof *np);
    if (!np) return NULL;
    m->procs = np;
    m->cap_procs = nc;
  }
  po__proc_record *p = &m->procs[m->nprocs];
  memset(p, 0, sizeof *p);
  p->pid = r->pid;
  p->boot_start = r->start_seconds;
  p->start_seconds = r->start_seconds > 0 ? r->start_seconds - m->boot_t0 : t;
  p->end_seconds = -1;
  p->gpu_memory_bytes = p->gpu_peak_memory_bytes = -1;
  p->need_cmdline = 1;
  index_record(m, m->nprocs);
  m->nprocs++;
  po__proc_record *parent = find_record(m, r->ppid);
  if (parent) parent->has_descendants = 1;
  return p;
}

static void update_record(po__proc_record *p, const po_proc_info *r, double t) {
  if (r->renamed || strcmp(p->comm, r->comm) != 0) p->need_cmdline = 1;
  p->ppid = r->ppid;
  memcpy(p->comm, r->comm, sizeof p->comm);
  p->last_seen_seconds = t;
  p->state = PO__PROC_RUNNING;
  p->end_seconds = -1;
  p->user_seconds = r->user_seconds;
  p->system_seconds = r->system_seconds;
  if (r->cpu_ratio > p->cpu_ratio_peak) p->cpu_ratio_peak = r->cpu_ratio;
  p->rss_bytes = r->rss_bytes;
  uint64_t peak = r->peak_rss_bytes > r->rss_bytes ? r->peak_rss_bytes : r->rss_bytes;
  if (peak > p->peak_rss_bytes) p->peak_rss_bytes = peak;
  p->swap_bytes = r->swap_bytes;
  p->minor_faults = r->minor_faults;
  p->major_faults = r->major_faults;
  p->has_io = r->has_io;
  p->read_bytes = r->read_bytes;
  p->write_bytes = r->write_bytes;
  p->threads = r->threads;
  if (r->threads > p->threads_peak) p->threads_peak = r->threads;
  p->open_fds = r->open_fds;
  if (r->open_fds > p->open_fds_peak) p->open_fds_peak = r->open_fds;
  p->voluntary_ctxt_switches = r->voluntary_ctxt_switches;
  p->involuntary_ctxt_switches = r->involuntary_ctxt_switches;
  p->samples++;
}

/* ---- one reading ---------------------------------------------------------------------------- */

/* The GPU memory each row's process holds, summed over the devices (-1 when no device lists it
 * or the driver does not say); returns the tree's sum (-1 when no GPU was read). */
static int64_t gpu_of(const po_gpu_info *gpus, size_t ngpus, int pid) {
  int64_t sum = -1;
  for (size_t d = 0; d < ngpus; d++)
    for (size_t k = 0; k < gpus[d].process_count; k++) {
      const po_gpu_process *gp = &gpus[d].processes[k];
      if ((int)gp->pid != pid || gp->used_memory_bytes == UINT64_MAX) continue;
      sum = (sum < 0 ? 0 : sum) + (int64_t)gp->used_memory_bytes;
    }
  return sum;
}

static void take_gpus(po__treemon *m, double t, const po_gpu_info *gpus, size_t ngpus,
                      const char *reason) {
  m->gpu_read_t = t;
  m->gpu_count = ngpus < PO_SAMPLE_MAX_GPUS ? ngpus : PO_SAMPLE_MAX_GPUS;
  m->gpus_dropped = ngpus - m->gpu_count;
  if (m->gpu_count) memcpy(m->gpus, gpus, m->gpu_count * sizeof *gpus);
  m->gpu_monitored = m->gpu_count > 0;
  po__strlcpy(m->gpu_reason, ngpus ? "" : (reason ? reason : "no GPU"), sizeof m->gpu_reason);
}

/* Creates the series at the first reading (the GPU column exists when GPUs were seen then). */
static void ensure_series(po__treemon *m) {
  if (m->series) return;
  m->series_has_gpu = m->gpu_monitored;
  size_t ncols = m->series_has_gpu ? COL_COUNT : COL_GPU;
  m->series = po__series_create(SERIES_CAPACITY, ncols, SERIES_MAX_BYTES);
  for (size_t c = 0; m->series && c < ncols; c++)
    po__series_add_column(m->series, columns[c].name, columns[c].unit);
}

static void remember_last(po__treemon *m, const po__tree_sample *s) {
  m->last_samples[m->last_head] = *s;
  m->last_head = (m->last_head + 1) % PO__TREEMON_LAST;
  if (m->nlast < PO__TREEMON_LAST) m->nlast++;
}

/* Marks records not seen in this reading as ended. */
static void end_unseen(po__treemon *m, double t) {
  for (size_t i = 0; i < m->nprocs; i++) {
    po__proc_record *p = &m->procs[i];
    if (p->state == PO__PROC_RUNNING && p->last_seen_seconds < t) {
      p->state = PO__PROC_ENDED;
      p->end_seconds = t;
      p->gpu_memory_bytes = -1;
    }
  }
}

void po__treemon_push(po__treemon *m, double t, const po_proc_info *rows, size_t n,
                      const po_proc_tree_totals *tot, const po_gpu_info *gpus, size_t ngpus,
                      const char *reason, po_run_progress *out) {
  double dt = m->samples ? t - m->last_t : 0;
  if (gpus || reason) take_gpus(m, t, gpus, ngpus, reason);
  int64_t tree_gpu = m->gpu_monitored ? 0 : -1;
  double read_delta = 0, write_delta = 0;
  for (size_t i = 0; i < n; i++) {
    const po_proc_info *r = &rows[i];
    po__proc_record *p = find_record(m, r->pid);
    if (p && fabs(p->boot_start - r->start_seconds) > 0.02) p = NULL; /* the pid was reused */
    if (!p && (p = new_record(m, r, t)) == NULL) {
      if (r->first_read) m->others_count++;
      double span = r->first_read && r->start_seconds > 0 ? m->boot_t0 + t - r->start_seconds : dt;
      m->others_cpu_seconds += r->cpu_ratio * (span > 0 ? span : 0);
      continue;
    }
    uint64_t rb = p->samples ? p->read_bytes : 0, wb = p->samples ? p->write_bytes : 0;
    update_record(p, r, t);
    read_delta += (double)(r->read_bytes > rb ? r->read_bytes - rb : 0);
    write_delta += (double)(r->write_bytes > wb ? r->write_bytes - wb : 0);
    if (m->gpu_monitored) {
      int64_t g = gpu_of(m->gpus, m->gpu_count, r->pid);
      p->gpu_memory_bytes = g;
      if (g > p->gpu_peak_memory_bytes) p->gpu_peak_memory_bytes = g;
      if (g > 0) tree_gpu += g;
    }
  }
  end_unseen(m, t);
  m->untracked = tot->untracked;
  m->last = *tot;
  if (tot->rss_bytes > m->peak_rss_bytes || !m->samples) {
    m->peak_rss_bytes = tot->rss_bytes;
    m->peak_rss_seconds = t;
  }
  if (tot->cpu_ratio > m->peak_cpu_ratio) {
    m->peak_cpu_ratio = tot->cpu_ratio;
    m->peak_cpu_seconds = t;
  }
  if (tot->processes > m->peak_processes) m->peak_processes = tot->processes;
  if (tot->threads > m->peak_threads) m->peak_threads = tot->threads;
  if (tot->open_fds > m->peak_open_fds) m->peak_open_fds = tot->open_fds;
  if (tree_gpu > m->gpu_peak_bytes) {
    m->gpu_peak_bytes = tree_gpu;
    m->gpu_peak_seconds = t;
  }
  ensure_series(m);
  if (m->series) {
    double v[COL_COUNT] = {tot->cpu_ratio, (double)tot->rss_bytes, (double)tot->processes,
                           dt > 0 ? read_delta / dt : NAN, dt > 0 ? write_delta / dt : NAN,
                           tree_gpu >= 0 ? (double)tree_gpu : NAN};
    po__series_push(m->series, t, v);
  }
  po__tree_sample s = {t, tot->cpu_ratio, tot->rss_bytes, tot->processes, tree_gpu};
  remember_last(m, &s);
  m->samples++;
  m->last_t = t;
  if (out) {
    out->elapsed_seconds = t;
    out->cpu_ratio = tot->cpu_ratio;
    double cpu = m->others_cpu_seconds;
    for (size_t i = 0; i < m->nprocs; i++) cpu += m->procs[i].user_seconds + m->procs[i].system_seconds;
    out->cpu_seconds = cpu;
    out->rss_bytes = tot->rss_bytes;
    out->peak_rss_bytes = m->peak_rss_bytes;
    out->gpu_memory_bytes = tree_gpu;
    out->processes = tot->processes;
  }
}

static void fill_cmdlines(po__treemon *m) {
  for (size_t i = 0; i < m->nprocs; i++) {
    po__proc_record *p = &m->procs[i];
    if (!p->need_cmdline || p->state != PO__PROC_RUNNING) continue;
    /* Empty in the middle of an exec (the new image's arguments are not set up yet): again at
     * the next sample. */
    char line[PO__TREEMON_CMDLINE];
    if (po_proc_tree_cmdline(m->reader, p->pid, line, sizeof line) > 0) {
      memcpy(p->cmdline, line, sizeof line);
      p->need_cmdline = 0;
    }
  }
}

int po__treemon_sample(po__treemon *m, double t, int force_gpu, po_run_progress *out) {
  double c0 = thread_cpu_seconds();
  size_t n = 0;
  po_proc_tree_totals tot;
  int rc = po_proc_tree_read(m->reader, m->rows, PO_PROC_TREE_MAX, &n, &tot);
  if (rc) return rc;
  po_gpu_info *gpus = NULL;
  size_t ngpus = 0, dropped = 0;
  char reason[160] = "";
  int gpu_due = m->gpu && (force_gpu || m->gpu_read_t < 0 || t - m->gpu_read_t >= PO__TREEMON_GPU_PERIOD);
  if (gpu_due) {
    gpus = m->gpu_scratch;
    po_gpu_session_query(m->gpu, gpus, PO_SAMPLE_MAX_GPUS, &ngpus, &dropped, reason,
                         sizeof reason);
  }
  po__treemon_push(m, t, m->rows, n, &tot, gpu_due ? gpus : NULL, ngpus, gpu_due ? reason : NULL,
                   out);
  if (gpu_due) m->gpus_dropped = dropped;
  fill_cmdlines(m);
  m->sampler_cpu_seconds += thread_cpu_seconds() - c0;
  return 0;
}

void po__treemon_reaped(po__treemon *m, double t, int pid, int status, const po_child_usage *u) {
  po__proc_record *p = find_record(m, pid);
  if (!p) return;
  p->state = PO__PROC_REAPED;
  if (p->end_seconds < 0) p->end_seconds = t;
  p->gpu_memory_bytes = -1;
  if (WIFEXITED(status)) {
    p->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    p->signal = WTERMSIG(status);
    p->core_dumped = WCOREDUMP(status) != 0;
  }
  /* wait4's usage covers the process and the descendants it reaped: its own only when it had
   * none (as far as the samples saw). */
  if (!u || p->has_descendants) return;
  if (u->user_seconds + u->system_seconds > p->user_seconds + p->system_seconds) {
    p->user_seconds = u->user_seconds;
    p->system_seconds = u->system_seconds;
  }
  if (u->max_rss_bytes > p->peak_rss_bytes) p->peak_rss_bytes = u->max_rss_bytes;
  if (u->minor_faults > p->minor_faults) p->minor_faults = u->minor_faults;
  if (u->major_faults > p->major_faults) p->major_faults = u->major_faults;
  if (u->voluntary_ctxt_switches > p->voluntary_ctxt_switches)
    p->voluntary_ctxt_switches = u->voluntary_ctxt_switches;
  if (u->involuntary_ctxt_switches > p->involuntary_ctxt_switches)
    p->involuntary_ctxt_switches = u->involuntary_ctxt_switches;
}

int po__treemon_snapshot_create(po__treemon *m, po__treemon_snapshot **out) {
  *out = NULL;
  po__treemon_snapshot *s = po__calloc(1, sizeof *s);
  if (!s) return PO_ENOMEM;
  s->procs = m->nprocs ? po__malloc(m->nprocs * sizeof *s->procs) : NULL;
  s->gpus = m->gpu_count ? po__malloc(m->gpu_count * sizeof *s->gpus) : NULL;
  s->series = m->series ? po__series_clone(m->series) : NULL;
  if ((m->nprocs && !s->procs) || (m->gpu_count && !s->gpus) || (m->series && !s->series)) {
    po__treemon_snapshot_destroy(s);
    return PO_ENOMEM;
  }
  s->root_pid = m->root_pid;
  s->exclude_root = (m->flags & PO_PROC_TREE_EXCLUDE_ROOT) != 0;
  s->samples = m->samples;
  s->elapsed_seconds = m->last_t;
  s->sampler_cpu_seconds = m->sampler_cpu_seconds;
  s->nprocs = m->nprocs;
  if (m->nprocs) memcpy(s->procs, m->procs, m->nprocs * sizeof *s->procs);
  s->others_count = m->others_count;
  s->others_cpu_seconds = m->others_cpu_seconds;
  s->untracked = m->untracked;
  s->peak_rss_bytes = m->peak_rss_bytes;
  s->peak_rss_seconds = m->peak_rss_seconds;
  s->peak_cpu_ratio = m->peak_cpu_ratio;
  s->peak_cpu_seconds = m->peak_cpu_seconds;
  s->peak_processes = m->peak_processes;
  s->peak_threads = m->peak_threads;
  s->peak_open_fds = m->peak_open_fds;
  s->gpu_peak_bytes = m->gpu_peak_bytes;
  s->gpu_peak_seconds = m->gpu_peak_seconds;
  s->last = m->last;
  s->nlast = m->nlast;
  for (size_t i = 0; i < m->nlast; i++) {
    size_t k = (m->last_head + PO__TREEMON_LAST - m->nlast + i) % PO__TREEMON_LAST;
    s->last_samples[i] = m->last_samples[k];
  }
  s->gpu_monitored = m->gpu_monitored;
  s->gpu_count = m->gpu_count;
  s->gpus_dropped = m->gpus_dropped;
  if (m->gpu_count) memcpy(s->gpus, m->gpus, m->gpu_count * sizeof *s->gpus);
  memcpy(s->gpu_reason, m->gpu_reason, sizeof s->gpu_reason);
  *out = s;
  return 0;
}

void po__treemon_snapshot_destroy(po__treemon_snapshot *s) {
  if (!s) return;
  po__series_destroy(s->series);
  free(s->procs);
  free(s->gpus);
  free(s);
}
