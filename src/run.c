/* A run (po_run_*, perfopt.h): the composition behind `perfopt run` and `perfopt attach`. It
 * wires the tree monitor (monitor/treemon.c) to a GPU session, reads the OOM-kill counters
 * before and after, collects the in-process reports the tree's processes wrote into the report
 * directory, and hands everything to the report module. The caller owns the processes: it forks
 * or spawns, forwards signals, waits, and tells the run what it reaped and how the run ended. */
#include "base/base.h"
#include "platform.h"
#include "report/report_build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ARGV 256
#define MAX_REPORTS 256 /* in-process reports merged; further ones are counted */
#define MAX_ERRORS 64   /* in-process write failures listed */
#define MAX_REPORT_BYTES (256u << 20)

struct po_run {
  po_config cfg;
  int attach_pid;
  int child_pid;
  po_hardware hw;
  po_gpu_session *gpu;
  po__treemon *mon;
  uint64_t t0_ns;
  double start_unix;
  double interval;
  char *argv_buf; /* the command's arguments, NUL-separated */
  const char *argv[MAX_ARGV];
  size_t argc;
  char *report_dir;
  po__oom_counts oom_before, oom_after;
  po_heap_session *heap; /* borrowed, may be NULL */
  int ended;
  po_run_end end;
};

static double elapsed(const po_run *r) {
  return (double)(po__now_ns() - r->t0_ns) / 1e9;
}

/* Copies argv (NULL-terminated) into one buffer. */
static int copy_argv(po_run *r, const char *const *argv) {
  size_t len = 0, n = 0;
  for (; n < MAX_ARGV && argv[n]; n++) len += strlen(argv[n]) + 1;
  r->argv_buf = po__malloc(len ? len : 1);
  if (!r->argv_buf) return PO_ENOMEM;
  char *p = r->argv_buf;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(argv[i]) + 1;
    memcpy(p, argv[i], l);
    r->argv[i] = p;
    p += l;
  }
  r->argc = n;
  return 0;
}

/* The attached process's command line, from /proc (nothing when unreadable). */
static int read_argv(po_run *r, int pid) {
  char path[400];
  size_t len = 0;
  snprintf(path, sizeof path, "%s/proc/%d/cmdline", r->cfg.proc_root, pid);
  if (po__read_file(path, 1 << 16, &r->argv_buf, &len, NULL, 0) != 0) return 0;
  for (size_t i = 0; i < len && r->argc < MAX_ARGV; i += strlen(r->argv_buf + i) + 1)
    r->argv[r->argc++] = r->argv_buf + i;
  return 0;
}

int po_run_create(const po_config *cfg, const po_run_options *opt, po_run **out) {
  if (!out || !opt || opt->attach_pid < 0) return PO_EINVAL;
  *out = NULL;
  po_run *r = po__calloc(1, sizeof *r);
  if (!r) return PO_ENOMEM;
  po__probe_config(cfg, &r->cfg);
  r->attach_pid = opt->attach_pid;
  r->interval = opt->interval_seconds;
  r->t0_ns = po__now_ns();
  r->start_unix = po__unix_seconds();
  po_hardware_probe(&r->cfg, 0, &r->hw);
  int rc = 0;
  if (opt->argv)
    rc = copy_argv(r, opt->argv);
  else if (opt->attach_pid)
    rc = read_argv(r, opt->attach_pid);
  if (!rc && opt->report_dir && !(r->report_dir = po__strdup(opt->report_dir))) rc = PO_ENOMEM;
  if (!rc) rc = po_gpu_session_create(&r->cfg, &r->gpu);
  if (!rc) {
    int root = opt->attach_pid ? opt->attach_pid : (int)getpid();
    unsigned flags = opt->attach_pid ? 0 : PO_PROC_TREE_EXCLUDE_ROOT;
    rc = po__treemon_create(&r->cfg, root, flags, r->gpu, &r->mon);
  }
  if (rc) {
    po_run_destroy(r);
    return rc;
  }
  po__oom_counts_open(r->cfg.proc_root, opt->attach_pid, &r->oom_before);
  *out = r;
  return 0;
}

void po_run_destroy(po_run *r) {
  if (!r) return;
  po__treemon_destroy(r->mon);
  po_gpu_session_destroy(r->gpu);
  free(r->argv_buf);
  free(r->report_dir);
  free(r);
}

int po_run_set_child(po_run *r, int pid) {
  if (!r || pid <= 0 || r->attach_pid) return PO_EINVAL;
  r->child_pid = pid;
  return 0;
}

int po_run_set_heap(po_run *r, po_heap_session *s) {
  if (!r) return PO_EINVAL;
  r->heap = s;
  return 0;
}

int po_run_sample(po_run *r, po_run_progress *out) {
  if (!r) return PO_EINVAL;
  int rc = po__treemon_sample(r->mon, elapsed(r), 0, out);
  po_heap_totals ht;
  /* Also a point of the heap's own timeline (memory.heap.timeline). */
  int heap = r->heap && po_heap_session_totals(r->heap, &ht) == 0;
  if (out) out->heap_live_bytes = heap ? ht.live_bytes : -1;
  return rc;
}

int po_run_reaped(po_run *r, int pid, int wait_status, const po_child_usage *usage) {
  if (!r || pid <= 0) return PO_EINVAL;
  po__treemon_reaped(r->mon, elapsed(r), pid, wait_status, usage);
  return 0;
}

int po_run_finish(po_run *r, const po_run_end *end) {
  if (!r || !end) return PO_EINVAL;
  /* The last sample first: it marks the processes that ended and keeps the end's state. */
  int rc = po__treemon_sample(r->mon, elapsed(r), 1, NULL);
  r->end = *end;
  r->ended = 1;
  r->oom_after = r->oom_before;
  po__oom_counts_read(&r->oom_after);
  return rc;
}

/* ---- the in-process reports ------------------------------------------------------------------ */

typedef struct collected {
  po_report **reps;
  const cJSON **roots;
  size_t n;
  uint64_t not_merged;
  po__inproc_error errors[MAX_ERRORS];
  size_t nerrors;
  po_report *flight; /* the flight record of a process that wrote no report (killed) */
  int flight_pid;
  int report_pids[MAX_REPORTS];
} collected;

static void add_error(collected *c, int pid, const char *msg) {
  if (c->nerrors >= MAX_ERRORS) return;
  c->errors[c->nerrors].pid = pid;
  po__strlcpy(c->errors[c->nerrors].message, msg, sizeof c->errors[0].message);
  c->nerrors++;
}

/* pid from "perfopt-<pid>.json", "perfopt-<pid>-<n>.json", "perfopt-<pid>.err" or
 * "perfopt-<pid>.flight.json"; 0 otherwise. *kind: 'j' report, 'e' failure marker, 'f' the
 * memory autopilot's flight record. */
static int parse_name(const char *name, char *kind) {
  if (strncmp(name, "perfopt-", 8)) return 0;
  char *end;
  long pid = strtol(name + 8, &end, 10);
  if (pid <= 0 || pid > INT32_MAX || end == name + 8) return 0;
  if (*end == '-') {
    strtol(end + 1, &end, 10);
  }
  if (!strcmp(end, ".json"))
    *kind = 'j';
  else if (!strcmp(end, ".err"))
    *kind = 'e';
  else if (!strcmp(end, ".flight.json"))
    *kind = 'f';
  else
    return 0;
  return (int)pid;
}

static void read_error_file(collected *c, const char *path, int pid) {
  char text[256] = "";
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    po__read_fd_text(fd, text, sizeof text);
    close(fd);
  }
  size_t l = strlen(text);
  while (l && (text[l - 1] == '\n' || text[l - 1] == ' ')) text[--l] = '\0';
  add_error(c, pid, text[0] ? text : "the report could not be written (no reason recorded)");
}

static void load_report(collected *c, const char *path, int pid) {
  if (c->n >= MAX_REPORTS) {
    c->not_merged++;
    return;
  }
  char err[300];
  po_report *rep = NULL;
  if (po_report_load(path, &rep, err, sizeof err) != 0) {
    add_error(c, pid, err);
    c->not_merged++;
    return;
  }
  c->reps[c->n] = rep;
  c->roots[c->n] = po_report_json(rep);
  c->report_pids[c->n] = pid;
  c->n++;
}

/* A flight record (written at the autopilot's emergency grade) is kept when it is the command's
 * own (pid `top`) or the first one found; it goes into the run's report only when its process
 * wrote no report (it was killed), see take_flight. A record that does not load is skipped. */
static void load_flight(collected *c, const char *path, int pid, int top) {
  if (c->flight && (c->flight_pid == top || pid != top)) return;
  po_report *rep = NULL;
  char err[300];
  if (po_report_load(path, &rep, err, sizeof err) != 0) {
    po__log(1, "perfopt: flight record %s not read: %s", path, err);
    return;
  }
  po_report_destroy(c->flight);
  c->flight = rep;
  c->flight_pid = pid;
}

/* The run's report takes in the kept flight record (the samples, forecast and actions the
 * process had before it was killed) unless that process's own report was merged. */
static int take_flight(const collected *c, po_report *rep) {
  if (!c->flight) return 0;
  for (size_t i = 0; i < c->n; i++)
    if (c->report_pids[i] == c->flight_pid) return 0;
  return po__report_add_flight(rep, c->flight, "");
}

/* Loads every report (and failure marker) in the directory. Only regular files are read: a link
 * planted in it is never followed. */
static int collect(const char *dir, int top, collected *c) {
  c->reps = po__calloc(MAX_REPORTS, sizeof *c->reps);
  c->roots = po__calloc(MAX_REPORTS, sizeof *c->roots);
  if (!c->reps || !c->roots) return PO_ENOMEM;
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    char kind = 0, path[4200];
    int pid = parse_name(e->d_name, &kind);
    if (!pid) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (kind == 'e')
      read_error_file(c, path, pid);
    else if (kind == 'f')
      load_flight(c, path, pid, top);
    else
      load_report(c, path, pid);
  }
  closedir(d);
  return 0;
}

static void release(collected *c) {
  for (size_t i = 0; i < c->n; i++) po_report_destroy(c->reps[i]);
  po_report_destroy(c->flight);
  free(c->reps);
  free(c->roots);
}

int po_run_report_create(po_run *r, po_report **out) {
  if (!r || !out) return PO_EINVAL;
  *out = NULL;
  po__treemon_snapshot *snap = NULL;
  po_heap_snapshot *heap = NULL;
  collected col;
  memset(&col, 0, sizeof col);
  int rc = po__treemon_snapshot_create(r->mon, &snap);
  if (!rc) rc = collect(r->report_dir, r->attach_pid ? r->attach_pid : r->child_pid, &col);
  if (!rc && r->heap) rc = po_heap_session_snapshot(r->heap, 0, &heap);
  if (!rc) {
    po__run_sources src = {0};
    src.hw = &r->hw;
    src.attach = r->attach_pid != 0;
    src.pid = r->attach_pid ? r->attach_pid : r->child_pid;
    src.start_unix_seconds = r->start_unix;
    src.wall_seconds = r->ended ? snap->elapsed_seconds : elapsed(r);
    src.interval_seconds = r->interval;
    src.argv = r->argv;
    src.argc = r->argc;
    src.end = r->ended ? &r->end : NULL;
    const po__oom_counts *after = r->ended ? &r->oom_after : &r->oom_before;
    src.oom_cgroup_before = r->oom_before.cgroup;
    src.oom_cgroup_after = after->cgroup;
    src.oom_system_before = r->oom_before.system;
    src.oom_system_after = after->system;
    src.oom_cgroup_version = r->oom_before.cgroup_version;
    src.tree = snap;
    src.reports = col.roots;
    src.nreports = col.n;
    src.reports_not_merged = col.not_merged;
    src.errors = col.errors;
    src.nerrors = col.nerrors;
    src.heap = heap;
    rc = po__report_create_run(&src, out);
    if (!rc) rc = take_flight(&col, *out);
    /* The advisor reads the whole run report, flight record included: the saved file carries
     * its suggestions like an in-process report does. */
    if (!rc) rc = po_report_advise(*out);
    if (rc && *out) {
      po_report_destroy(*out);
      *out = NULL;
    }
  }
  po_heap_snapshot_destroy(heap);
  release(&col);
  po__treemon_snapshot_destroy(snap);
  return rc;
}
