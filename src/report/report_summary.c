/* The end-of-run summary (`perfopt run`): /usr/bin/time -v's facts, said the way a user asks
 * them (how did it end, how long, how many cores, how much memory and when, GPU, I/O), then the
 * top functions and the suggestions. Reads the report model only. */
#include "report/report_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *bytes(double v, char *buf, size_t len) {
  po_format_value(v, PO_UNIT_BYTES, buf, len);
  return buf;
}

static const char *secs(double v, char *buf, size_t len) {
  po_format_value(v, PO_UNIT_SECONDS, buf, len);
  return buf;
}

static int is_num(const cJSON *o, const char *key) {
  return cJSON_IsNumber(po__j_get(o, key));
}

/* The command as a shell would show it: arguments with blanks or quotes in single quotes. */
static void command_line(const cJSON *argv, char *cmd, size_t len) {
  size_t off = 0;
  const cJSON *a;
  cmd[0] = '\0';
  cJSON_ArrayForEach(a, argv) {
    const char *s = cJSON_GetStringValue(a);
    if (!s) continue;
    int plain = s[0] && !strpbrk(s, " \t\n'\"$`\\|&;<>()*?");
    int n = snprintf(cmd + off, len - off, plain ? "%s%s" : "%s'%s'", off ? " " : "", s);
    if (n < 0 || off + (size_t)n >= len) {
      if (len > 4) memcpy(cmd + len - 4, "...", 4);
      return;
    }
    off += (size_t)n;
  }
}

static void headline(FILE *out, const cJSON *root) {
  const cJSON *run = po__j_get(root, "run"), *x = po__j_get(run, "exit");
  char cmd[200], w[32];
  command_line(po__j_get(run, "argv"), cmd, sizeof cmd);
  const char *desc = po__j_getstr(x, "description");
  fprintf(out, "perfopt: %s %s after %s\n", cmd[0] ? cmd : "the command", desc ? desc : "ended",
          secs(po__j_getnum(run, "wall_seconds"), w, sizeof w));
}

static void resources(FILE *out, const cJSON *root) {
  const cJSON *pr = po__j_get(root, "processes"), *t = po__j_get(pr, "totals");
  char a[32], b[32], c[32];
  fprintf(out, "  CPU        %s (%s user + %s system), %.2f cores on average, %.2f at peak\n",
          secs(po__j_getnum(t, "cpu_seconds"), a, sizeof a),
          secs(po__j_getnum(t, "user_seconds"), b, sizeof b),
          secs(po__j_getnum(t, "system_seconds"), c, sizeof c), po__j_getnum(t, "cores_average"),
          po__j_getnum(t, "peak_cpu_ratio"));
  /* The tree's peak is sampled; a single process's high-water mark is the kernel's, exact: the
   * larger of the two is the peak, and both are said. */
  double tree = po__j_getnum(t, "peak_rss_bytes"), maxp = po__j_getnum(t, "max_process_peak_rss_bytes");
  char when[48] = "";
  if (is_num(t, "peak_rss_seconds"))
    snprintf(when, sizeof when, " at %s", secs(po__j_getnum(t, "peak_rss_seconds"), b, sizeof b));
  char who[48] = "";
  if (is_num(t, "max_process_peak_rss_pid"))
    snprintf(who, sizeof who, " (pid %.0f)", po__j_getnum(t, "max_process_peak_rss_pid"));
  if (maxp > tree)
    fprintf(out, "  memory     peak RSS %s, one process%s (the kernel's high-water mark); the tree's "
                 "sampled peak %s%s\n",
            bytes(maxp, a, sizeof a), who, bytes(tree, c, sizeof c), when);
  else
    fprintf(out, "  memory     peak RSS of the tree %s%s; largest single process %s%s\n",
            bytes(tree, a, sizeof a), when, bytes(maxp, c, sizeof c), who);
  if (is_num(t, "gpu_peak_memory_bytes"))
    fprintf(out, "  GPU        peak %s at %s\n", bytes(po__j_getnum(t, "gpu_peak_memory_bytes"), a, sizeof a),
            secs(po__j_getnum(t, "gpu_peak_seconds"), b, sizeof b));
  else
    fprintf(out, "  GPU        none monitored (%s)\n",
            po__j_getstr(po__j_get(pr, "gpu"), "reason") ? po__j_getstr(po__j_get(pr, "gpu"), "reason")
                                                          : "no reading");
  fprintf(out, "  I/O        read %s, written %s; %.0f minor and %.0f major page faults\n",
          bytes(po__j_getnum(t, "read_bytes"), a, sizeof a),
          bytes(po__j_getnum(t, "write_bytes"), b, sizeof b), po__j_getnum(t, "minor_faults"),
          po__j_getnum(t, "major_faults"));
  fprintf(out, "  processes  %.0f seen, at most %.0f at once with %.0f threads; %.0f samples\n",
          po__j_getnum(t, "processes_seen"), po__j_getnum(t, "peak_processes"),
          po__j_getnum(t, "peak_threads"), po__j_getnum(pr, "sample_count"));
}

/* With --heap: the tree's heap (exact peak and leaks) and the top allocation sites at the peak. */
static void heap(FILE *out, const cJSON *root, size_t top_n) {
  const cJSON *h = po__j_get(po__j_get(root, "memory"), "heap");
  if (!cJSON_IsObject(h)) return;
  char a[32], b[32], c[32], d[32];
  if (cJSON_IsArray(po__j_get(h, "processes")) && cJSON_GetArraySize(po__j_get(h, "processes")) == 0 &&
      !(po__j_getnum(h, "processes_dropped") > 0)) {
    fprintf(out, "  heap       no process loaded the heap tracker (a static or setuid program ignores "
                 "LD_PRELOAD)\n");
    return;
  }
  fprintf(out, "  heap       peak %s (pid %.0f) at %s; %s allocated in %.0f allocations; %s leaked\n",
          bytes(po__j_getnum(h, "peak_bytes"), a, sizeof a), po__j_getnum(h, "peak_pid"),
          secs(po__j_getnum(h, "peak_seconds"), b, sizeof b),
          bytes(po__j_getnum(h, "allocated_bytes"), c, sizeof c), po__j_getnum(h, "allocations"),
          bytes(po__j_getnum(h, "leaked_bytes"), d, sizeof d));
  double dropped = po__j_getnum(h, "processes_dropped");
  if (dropped > 0) /* the figures above leave these out: say so rather than look complete */
    fprintf(out, "  heap       %.0f process%s not traced (every process slot taken): not counted above\n",
            dropped, dropped == 1 ? "" : "es");
  const cJSON *sites = po__j_get(h, "top_sites_at_peak"), *site;
  if (cJSON_GetArraySize(sites) <= 0 || top_n == 0) return;
  const char *mode = po__j_getstr(h, "mode");
  fprintf(out, "  top allocation sites at the heap's peak%s:\n",
          mode && !strcmp(mode, "sampled") ? " (sampled: estimates)" : "");
  size_t k = 0;
  cJSON_ArrayForEach(site, sites) {
    if (k++ == top_n) break;
    const char *name = po__j_getstr(site, "name");
    fprintf(out, "    %-48.48s %10s at the peak %10s allocated\n", name ? name : "?",
            bytes(po__j_getnum(site, "bytes_at_peak"), a, sizeof a),
            bytes(po__j_getnum(site, "allocated_bytes"), b, sizeof b));
  }
}

static int cmp_self_desc(const void *a, const void *b) {
  double x = po__j_getnum(*(const cJSON *const *)a, "self_seconds");
  double y = po__j_getnum(*(const cJSON *const *)b, "self_seconds");
  return (x < y) - (x > y);
}

static int functions(FILE *out, const cJSON *root, size_t top_n) {
  const cJSON *prof = po__j_get(root, "profile"), *funcs = po__j_get(prof, "functions");
  int n = cJSON_IsArray(funcs) ? cJSON_GetArraySize(funcs) : 0;
  if (n <= 0 || top_n == 0) return 0;
  const cJSON **rows = po__malloc((size_t)n * sizeof *rows);
  if (!rows) return PO_ENOMEM;
  int k = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, funcs) rows[k++] = f;
  qsort(rows, (size_t)n, sizeof *rows, cmp_self_desc);
  double procs = po__j_getnum(prof, "processes");
  fprintf(out, "  top functions by self time (in-process profile%s):\n",
          procs > 1 ? ", processes merged" : "");
  for (size_t i = 0; i < (size_t)n && i < top_n; i++) {
    char s[32], t[32];
    const char *name = po__j_getstr(rows[i], "name");
    fprintf(out, "    %-36.36s %10s self %10s total %12.0f calls\n", name ? name : "?",
            secs(po__j_getnum(rows[i], "self_seconds"), s, sizeof s),
            secs(po__j_getnum(rows[i], "total_seconds"), t, sizeof t),
            po__j_getnum(rows[i], "calls"));
  }
  free(rows);
  return 0;
}

/* The advisor's suggestions (issue 11 fills suggestions[]: severity, title, action). */
static void suggestions(FILE *out, const cJSON *root) {
  const cJSON *arr = po__j_get(root, "suggestions"), *s;
  if (cJSON_GetArraySize(arr) <= 0) return;
  fprintf(out, "  suggestions:\n");
  cJSON_ArrayForEach(s, arr) {
    const char *title = po__j_getstr(s, "title"), *action = po__j_getstr(s, "action");
    fprintf(out, "    - %s%s%s\n", title ? title : "?", action ? ": " : "", action ? action : "");
  }
}

/* After a kill, the samples just before it: what the tree was doing. */
static void last_samples(FILE *out, const cJSON *root) {
  const char *status = po__j_getstr(po__j_get(po__j_get(root, "run"), "exit"), "status");
  if (!status || (strcmp(status, "killed") && strcmp(status, "timeout"))) return;
  const cJSON *arr = po__j_get(po__j_get(root, "processes"), "last_samples"), *s;
  if (cJSON_GetArraySize(arr) <= 0) return;
  fprintf(out, "  last samples:");
  cJSON_ArrayForEach(s, arr) {
    char t[32], r[32];
    fprintf(out, " [%s: %.2f cores, %s]", secs(po__j_getnum(s, "t_seconds"), t, sizeof t),
            po__j_getnum(s, "cpu_ratio"), bytes(po__j_getnum(s, "rss_bytes"), r, sizeof r));
  }
  fputc('\n', out);
}

/* The OOM killer struck during the run but not the command itself (a worker of a script, a
 * process the command waited for): the exit status alone would hide it. */
static void oom_note(FILE *out, const cJSON *root) {
  const cJSON *ex = po__j_get(po__j_get(root, "run"), "exit");
  if (cJSON_IsTrue(po__j_get(ex, "oom_killed"))) return; /* the headline says it */
  const cJSON *k = po__j_get(ex, "oom_kills");
  double cg = po__j_getnum(k, "cgroup"), sys = po__j_getnum(k, "system");
  if (cg > 0)
    fprintf(out, "  note: the kernel's OOM killer killed %.0f process%s in the command's memory "
            "cgroup during the run\n", cg, cg == 1 ? "" : "es");
  else if (sys > 0)
    fprintf(out, "  note: the kernel's OOM killer killed %.0f process%s on this machine during the "
            "run (in the command's tree or not)\n", sys, sys == 1 ? "" : "es");
}

static void notes(FILE *out, const cJSON *root) {
  oom_note(out, root);
  const cJSON *in = po__j_get(po__j_get(root, "processes"), "in_process_reports"), *e;
  cJSON_ArrayForEach(e, po__j_get(in, "errors")) {
    const char *m = po__j_getstr(e, "message");
    fprintf(out, "  note: process %.0f could not write its in-process report: %s\n",
            po__j_getnum(e, "pid"), m ? m : "?");
  }
  double other = po__j_getnum(po__j_get(po__j_get(root, "processes"), "totals"), "processes_not_listed");
  if (other > 0)
    fprintf(out, "  note: %.0f processes beyond the first %d are summed, not listed\n", other,
            PO__TREEMON_PROCS);
}

int po_report_write_summary(const po_report *rep, FILE *out, size_t top_n) {
  const cJSON *root = po_report_json(rep);
  if (!root || !out) return PO_EINVAL;
  headline(out, root);
  resources(out, root);
  heap(out, root, top_n);
  int rc = functions(out, root, top_n);
  suggestions(out, root);
  last_samples(out, root);
  po__report_text_forecast(root, out, "  ");
  notes(out, root);
  if (rc) return rc;
  return ferror(out) ? PO_EIO : 0;
}
