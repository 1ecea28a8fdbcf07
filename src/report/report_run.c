/* The run report (`perfopt run`, `perfopt attach`): the `run` section with how the run ended, the
 * `processes` section from the tree monitor's snapshot, and the in-process reports merged. */
#include "report/report_build.h"
#include "report/report_heap.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define MAX_REPORT_ENTRIES 64 /* processes.reports[] entries; further reports are only merged */

static void signal_name(int sig, char *buf, size_t len) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev) {
    snprintf(buf, len, "SIG%s", abbrev);
    return;
  }
#endif
  snprintf(buf, len, "signal %d", sig);
}

static double delta(int64_t before, int64_t after) {
  return before < 0 || after < 0 ? NAN : (double)(after - before);
}

/* true / false / null: null when it was killed by SIGKILL and no counter could be read. */
static int oom_killed(const po__run_sources *src) {
  const po_run_end *e = src->end;
  double dc = delta(src->oom_cgroup_before, src->oom_cgroup_after);
  double ds = delta(src->oom_system_before, src->oom_system_after);
  int known = !isnan(dc) || !isnan(ds);
  int rose = (!isnan(dc) && dc > 0) || (!isnan(ds) && ds > 0);
  if (!e) return -1;
  if (e->how == PO_RUN_KILLED && e->signal == SIGKILL) return known ? rose : -1;
  if (e->how == PO_RUN_GONE) return rose ? -1 : (known ? 0 : -1);
  return 0;
}

static const char *status_name(const po_run_end *e) {
  if (!e) return "running";
  if (e->timed_out) return "timeout";
  switch (e->how) {
  case PO_RUN_EXITED: return "exited";
  case PO_RUN_KILLED: return "killed";
  case PO_RUN_DETACHED: return "detached";
  case PO_RUN_GONE: return "gone";
  }
  return "unknown";
}

static void describe(const po__run_sources *src, int oom, char *buf, size_t len) {
  const po_run_end *e = src->end;
  char sig[32];
  if (!e) {
    snprintf(buf, len, "still running");
  } else if (e->how == PO_RUN_EXITED) {
    snprintf(buf, len, "exited with status %d", e->exit_code);
  } else if (e->how == PO_RUN_KILLED) {
    signal_name(e->signal, sig, sizeof sig);
    snprintf(buf, len, "killed by %s%s%s%s", sig, e->core_dumped ? " (core dumped)" : "",
             oom == 1 ? ": out of memory (the kernel's OOM killer)"
             : e->timed_out ? ": its time limit was reached"
             : e->forwarded_signal ? ": perfopt passed on the signal it received"
                                   : "",
             oom == -1 && e->signal == SIGKILL && !e->timed_out
                 ? " (OOM kill counters unavailable: an OOM kill cannot be told apart)"
                 : "");
  } else if (e->how == PO_RUN_DETACHED) {
    snprintf(buf, len, "still running when perfopt stopped watching");
  } else {
    snprintf(buf, len, "exited (how is not known to a process that only watched it)%s",
             oom == -1 ? "; an OOM kill happened meanwhile" : "");
  }
}

static void exit_json(po__jw *w, cJSON *run, const po__run_sources *src) {
  const po_run_end *e = src->end;
  cJSON *x = po__j_obj(w, run, "exit");
  int oom = oom_killed(src);
  char sig[32], text[256];
  po__j_str(w, x, "status", status_name(e));
  po__j_num(w, x, "exit_code", e && e->how == PO_RUN_EXITED ? (double)e->exit_code : NAN);
  po__j_num(w, x, "signal", e && e->how == PO_RUN_KILLED ? (double)e->signal : NAN);
  if (e && e->how == PO_RUN_KILLED) {
    signal_name(e->signal, sig, sizeof sig);
    po__j_str(w, x, "signal_name", sig);
  } else {
    po__j_add(w, x, "signal_name", cJSON_CreateNull());
  }
  po__j_bool(w, x, "core_dumped", e && e->core_dumped);
  po__j_num(w, x, "shell_status",
            !e                          ? NAN
            : e->how == PO_RUN_EXITED   ? (double)e->exit_code
            : e->how == PO_RUN_KILLED   ? (double)(128 + e->signal)
                                        : NAN);
  po__j_bool(w, x, "timed_out", e && e->timed_out);
  if (e && e->forwarded_signal) {
    signal_name(e->forwarded_signal, sig, sizeof sig);
    po__j_str(w, x, "forwarded_signal", sig);
  } else {
    po__j_add(w, x, "forwarded_signal", cJSON_CreateNull());
  }
  if (oom < 0)
    po__j_add(w, x, "oom_killed", cJSON_CreateNull());
  else
    po__j_bool(w, x, "oom_killed", oom);
  cJSON *k = po__j_obj(w, x, "oom_kills");
  po__j_num(w, k, "cgroup", delta(src->oom_cgroup_before, src->oom_cgroup_after));
  po__j_num(w, k, "system", delta(src->oom_system_before, src->oom_system_after));
  po__j_num(w, k, "cgroup_version", src->oom_cgroup_version);
  describe(src, oom, text, sizeof text);
  po__j_str(w, x, "description", text);
}

static void run_json(po__jw *w, cJSON *root, const po__run_sources *src) {
  cJSON *run = po__j_obj(w, root, "run");
  po__j_str(w, run, "mode", src->attach ? "attach" : "run");
  po__j_num(w, run, "pid", src->pid);
  po__j_num(w, run, "start_unix_seconds", src->start_unix_seconds);
  po__j_num(w, run, "report_unix_seconds", src->start_unix_seconds + src->wall_seconds);
  po__j_num(w, run, "wall_seconds", src->wall_seconds);
  po__j_num(w, run, "interval_seconds", src->interval_seconds);
  cJSON *argv = po__j_arr(w, run, "argv");
  for (size_t i = 0; i < src->argc; i++) po__j_str(w, argv, NULL, src->argv[i]);
  exit_json(w, run, src);
}

/* ---- processes ------------------------------------------------------------------------------ */

static const char *proc_state_name(const po__proc_record *p) {
  return p->state == PO__PROC_RUNNING ? "running"
         : p->state == PO__PROC_REAPED ? (p->signal ? "killed" : "exited")
                                       : "ended";
}

static void u64(po__jw *w, cJSON *o, const char *k, uint64_t v) {
  po__j_num(w, o, k, (double)v);
}

static void gpu_num(po__jw *w, cJSON *o, const char *k, int64_t v) {
  po__j_num(w, o, k, v < 0 ? NAN : (double)v);
}

static int has_report(const po__run_sources *src, int pid) {
  for (size_t i = 0; i < src->nreports; i++)
    if (po__report_pid(src->reports[i]) == pid) return 1;
  return 0;
}

static void proc_json(po__jw *w, cJSON *arr, const po__proc_record *p, const po__run_sources *s) {
  cJSON *o = po__j_obj(w, arr, NULL);
  char sig[32];
  po__j_num(w, o, "pid", p->pid);
  po__j_num(w, o, "ppid", p->ppid);
  po__j_str(w, o, "comm", p->comm);
  po__j_str(w, o, "cmdline", p->cmdline);
  po__j_str(w, o, "state", proc_state_name(p));
  if (p->state == PO__PROC_REAPED && !p->signal) po__j_num(w, o, "exit_code", p->exit_code);
  if (p->state == PO__PROC_REAPED && p->signal) {
    signal_name(p->signal, sig, sizeof sig);
    po__j_str(w, o, "signal_name", sig);
  }
  po__j_num(w, o, "start_seconds", p->start_seconds);
  po__j_num(w, o, "end_seconds", p->end_seconds < 0 ? NAN : p->end_seconds);
  po__j_num(w, o, "user_seconds", p->user_seconds);
  po__j_num(w, o, "system_seconds", p->system_seconds);
  double end = p->end_seconds >= 0 ? p->end_seconds : p->last_seen_seconds;
  double life = end - (p->start_seconds > 0 ? p->start_seconds : 0);
  po__j_num(w, o, "cpu_ratio_average",
            life > 0 ? (p->user_seconds + p->system_seconds) / life : NAN);
  po__j_num(w, o, "cpu_ratio_peak", p->cpu_ratio_peak);
  u64(w, o, "rss_bytes", p->state == PO__PROC_RUNNING ? p->rss_bytes : 0);
  u64(w, o, "peak_rss_bytes", p->peak_rss_bytes);
  u64(w, o, "swap_bytes", p->swap_bytes);
  u64(w, o, "minor_faults", p->minor_faults);
  u64(w, o, "major_faults", p->major_faults);
  po__j_num(w, o, "read_bytes", p->has_io ? (double)p->read_bytes : NAN);
  po__j_num(w, o, "write_bytes", p->has_io ? (double)p->write_bytes : NAN);
  u64(w, o, "threads", p->threads);
  u64(w, o, "threads_peak", p->threads_peak);
  po__j_num(w, o, "open_fds", p->open_fds < 0 ? NAN : (double)p->open_fds);
  po__j_num(w, o, "open_fds_peak", p->open_fds_peak);
  u64(w, o, "voluntary_ctxt_switches", p->voluntary_ctxt_switches);
  u64(w, o, "involuntary_ctxt_switches", p->involuntary_ctxt_switches);
  gpu_num(w, o, "gpu_memory_bytes", p->gpu_memory_bytes);
  gpu_num(w, o, "gpu_peak_memory_bytes", p->gpu_peak_memory_bytes);
  po__j_num(w, o, "samples", (double)p->samples);
  po__j_bool(w, o, "in_process_report", has_report(s, p->pid));
}

typedef struct sums {
  double user, system;
  uint64_t minflt, majflt, rd, wr, vcs, ivcs, max_peak;
  int max_peak_pid;
} sums;

static void sum_records(const po__treemon_snapshot *t, sums *s) {
  memset(s, 0, sizeof *s);
  for (size_t i = 0; t && i < t->nprocs; i++) {
    const po__proc_record *p = &t->procs[i];
    s->user += p->user_seconds;
    s->system += p->system_seconds;
    s->minflt += p->minor_faults;
    s->majflt += p->major_faults;
    s->rd += p->read_bytes;
    s->wr += p->write_bytes;
    s->vcs += p->voluntary_ctxt_switches;
    s->ivcs += p->involuntary_ctxt_switches;
    if (p->peak_rss_bytes > s->max_peak) {
      s->max_peak = p->peak_rss_bytes;
      s->max_peak_pid = p->pid;
    }
  }
}

/* The tree over the whole run. With the kernel's figures for the reaped processes (a run), those
 * plus the processes still running; else the sums of what the samples saw. */
static void totals_json(po__jw *w, cJSON *pr, const po__run_sources *src) {
  const po__treemon_snapshot *t = src->tree;
  const po_run_end *e = src->end;
  cJSON *o = po__j_obj(w, pr, "totals");
  sums s;
  sum_records(t, &s);
  int ru = e && e->has_usage;
  double live_user = 0, live_sys = 0;
  uint64_t live_min = 0, live_maj = 0, live_vcs = 0, live_ivcs = 0, live_rd = 0, live_wr = 0;
  for (size_t i = 0; ru && t && i < t->nprocs; i++) {
    const po__proc_record *p = &t->procs[i];
    /* An ended process was reaped by an ancestor that the caller reaped in turn: its usage is
     * in the children's already. */
    if (p->state != PO__PROC_RUNNING) continue;
    live_user += p->user_seconds;
    live_sys += p->system_seconds;
    live_min += p->minor_faults;
    live_maj += p->major_faults;
    live_vcs += p->voluntary_ctxt_switches;
    live_ivcs += p->involuntary_ctxt_switches;
    live_rd += p->read_bytes;
    live_wr += p->write_bytes;
  }
  const po_child_usage *c = ru ? &e->children : NULL;
  double user = c ? c->user_seconds + live_user : s.user;
  double sys = c ? c->system_seconds + live_sys : s.system;
  double others = t ? t->others_cpu_seconds : 0;
  if (!c) user += others; /* integrated from samples: counted as user time */
  po__j_str(w, o, "source", c ? "rusage" : "samples");
  po__j_num(w, o, "user_seconds", user);
  po__j_num(w, o, "system_seconds", sys);
  po__j_num(w, o, "cpu_seconds", user + sys);
  po__j_num(w, o, "cores_average", src->wall_seconds > 0 ? (user + sys) / src->wall_seconds : 0);
  po__j_num(w, o, "unattributed_cpu_seconds",
            c ? fmax(0, user + sys - s.user - s.system) : others);
  u64(w, o, "peak_rss_bytes", t ? t->peak_rss_bytes : 0);
  po__j_num(w, o, "peak_rss_seconds", t ? t->peak_rss_seconds : NAN);
  uint64_t maxp = s.max_peak;
  int maxpid = s.max_peak_pid;
  if (c && c->max_rss_bytes > maxp) {
    maxp = c->max_rss_bytes;
    maxpid = -1;
  }
  u64(w, o, "max_process_peak_rss_bytes", maxp);
  po__j_num(w, o, "max_process_peak_rss_pid", maxpid > 0 ? (double)maxpid : NAN);
  po__j_num(w, o, "peak_cpu_ratio", t ? t->peak_cpu_ratio : 0);
  po__j_num(w, o, "peak_cpu_seconds", t ? t->peak_cpu_seconds : NAN);
  po__j_num(w, o, "peak_processes", t ? t->peak_processes : 0);
  po__j_num(w, o, "peak_threads", t ? t->peak_threads : 0);
  po__j_num(w, o, "peak_open_fds", t ? (double)t->peak_open_fds : 0);
  u64(w, o, "minor_faults", c ? c->minor_faults + live_min : s.minflt);
  u64(w, o, "major_faults", c ? c->major_faults + live_maj : s.majflt);
  u64(w, o, "read_bytes", c ? c->read_bytes + live_rd : s.rd);
  u64(w, o, "write_bytes", c ? c->write_bytes + live_wr : s.wr);
  u64(w, o, "voluntary_ctxt_switches", c ? c->voluntary_ctxt_switches + live_vcs : s.vcs);
  u64(w, o, "involuntary_ctxt_switches", c ? c->involuntary_ctxt_switches + live_ivcs : s.ivcs);
  gpu_num(w, o, "gpu_peak_memory_bytes", t ? t->gpu_peak_bytes : -1);
  po__j_num(w, o, "gpu_peak_seconds", t && t->gpu_peak_bytes >= 0 ? t->gpu_peak_seconds : NAN);
  po__j_num(w, o, "processes_seen", t ? (double)(t->nprocs + t->others_count) : 0);
  po__j_num(w, o, "processes_not_listed", t ? (double)t->others_count : 0);
  po__j_num(w, o, "processes_untracked", t ? t->untracked : 0);
}

static void last_samples_json(po__jw *w, cJSON *pr, const po__treemon_snapshot *t) {
  cJSON *arr = po__j_arr(w, pr, "last_samples");
  for (size_t i = 0; t && i < t->nlast; i++) {
    const po__tree_sample *s = &t->last_samples[i];
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_num(w, o, "t_seconds", s->t_seconds);
    po__j_num(w, o, "cpu_ratio", s->cpu_ratio);
    u64(w, o, "rss_bytes", s->rss_bytes);
    po__j_num(w, o, "processes", s->processes);
    gpu_num(w, o, "gpu_memory_bytes", s->gpu_memory_bytes);
  }
}

static void inproc_json(po__jw *w, cJSON *pr, const po__run_sources *src) {
  cJSON *o = po__j_obj(w, pr, "in_process_reports");
  po__j_num(w, o, "merged", (double)src->nreports);
  po__j_num(w, o, "not_merged", (double)src->reports_not_merged);
  cJSON *errs = po__j_arr(w, o, "errors");
  for (size_t i = 0; i < src->nerrors && !w->err; i++) {
    cJSON *e = po__j_obj(w, errs, NULL);
    po__j_num(w, e, "pid", src->errors[i].pid);
    po__j_str(w, e, "message", src->errors[i].message);
  }
  po__report_inproc_entries(w, po__j_arr(w, pr, "reports"), src->reports, src->nreports,
                            MAX_REPORT_ENTRIES);
  po__j_num(w, o, "reports_not_listed",
            src->nreports > MAX_REPORT_ENTRIES ? (double)(src->nreports - MAX_REPORT_ENTRIES) : 0);
}

static void processes_json(po__jw *w, cJSON *root, const po__run_sources *src) {
  const po__treemon_snapshot *t = src->tree;
  cJSON *pr = po__j_obj(w, root, "processes");
  po__j_str(w, pr, "mode", src->attach ? "attach" : "run");
  po__j_num(w, pr, "root_pid", src->pid);
  po__j_num(w, pr, "interval_seconds", src->interval_seconds);
  po__j_num(w, pr, "sample_count", t ? (double)t->samples : 0);
  po__j_num(w, pr, "sampler_cpu_seconds", t ? t->sampler_cpu_seconds : 0);
  po__j_num(w, pr, "overhead_core_ratio",
            t && src->wall_seconds > 0 ? t->sampler_cpu_seconds / src->wall_seconds : 0);
  totals_json(w, pr, src);
  cJSON *list = po__j_arr(w, pr, "list");
  for (size_t i = 0; t && i < t->nprocs && !w->err; i++) proc_json(w, list, &t->procs[i], src);
  po__j_num(w, pr, "samples_per_bucket",
            t && t->series ? (double)po__series_samples_per_bucket(t->series) : 1);
  po__report_series(w, po__j_arr(w, pr, "series"), t ? t->series : NULL);
  last_samples_json(w, pr, t);
  cJSON *g = po__j_obj(w, pr, "gpu");
  po__j_bool(w, g, "monitored", t && t->gpu_monitored);
  po__j_str(w, g, "reason", t && !t->gpu_monitored ? t->gpu_reason : "");
  inproc_json(w, pr, src);
}

/* ---- the report ------------------------------------------------------------------------------ */

/* The in-process report that started first: its memory, resources and cache sections describe
 * the program the user ran (the others are in processes.reports). */
static const cJSON *primary(const po__run_sources *src) {
  const cJSON *best = NULL;
  double best_start = INFINITY;
  for (size_t i = 0; i < src->nreports; i++) {
    double s = po__j_getnum(po__j_get(src->reports[i], "run"), "start_unix_seconds");
    if (!best || s < best_start) {
      best = src->reports[i];
      best_start = s;
    }
  }
  return best;
}

static void copy_or_empty(po__jw *w, cJSON *root, const cJSON *from, const char *key) {
  const cJSON *sec = po__j_get(from, key);
  if (cJSON_IsObject(sec))
    po__j_add(w, root, key, cJSON_Duplicate(sec, 1));
  else if (!strcmp(key, "memory"))
    po__report_memory(w, root, NULL, NULL);
  else if (!strcmp(key, "resources"))
    po__report_resources(w, root, NULL, NULL);
  else
    po__report_cache(w, root, NULL, 0);
}

int po__report_create_run(const po__run_sources *src, po_report **out) {
  *out = NULL;
  po__jw w = {0};
  cJSON *root = cJSON_CreateObject();
  if (!root) return PO_ENOMEM;
  const po__treemon_snapshot *t = src->tree;
  po__j_str(&w, root, "perfopt_version", PO_VERSION_STRING);
  po__report_host(&w, root, src->hw);
  run_json(&w, root, src);
  processes_json(&w, root, src);
  if (src->nreports)
    po__report_merge_profiles(&w, root, src->reports, src->nreports);
  else
    po__report_profile(&w, root, NULL);
  const cJSON *first = primary(src);
  copy_or_empty(&w, root, first, "memory");
  if (src->heap && !w.err) { /* the heap of the whole tree, traced from outside */
    cJSON *mem = cJSON_GetObjectItemCaseSensitive(root, "memory");
    cJSON_DeleteItemFromObjectCaseSensitive(mem, "heap");
    int hr = mem ? po__report_add_heap(mem, src->heap) : PO_ENOMEM;
    if (hr) w.err = hr;
  }
  copy_or_empty(&w, root, first, "resources");
  po__report_gpu(&w, root, t ? t->gpus : NULL, t ? t->gpu_count : 0, t ? t->gpus_dropped : 0,
                 t ? t->gpu_reason : "GPUs not monitored");
  copy_or_empty(&w, root, first, "cache");
  po__j_arr(&w, root, "suggestions");
  if (w.err) {
    cJSON_Delete(root);
    return w.err;
  }
  *out = po__report_wrap(root);
  return *out ? 0 : PO_ENOMEM;
}
