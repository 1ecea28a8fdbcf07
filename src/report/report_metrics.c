/* The report's metrics in the Prometheus text exposition format 0.0.4: what the live endpoint's
 * /metrics serves and what po_report_push sends. node_exporter's and the client libraries' names
 * where they exist (process_resident_memory_bytes, process_start_time_seconds,
 * node_memory_MemAvailable_bytes), perfopt_* otherwise; base units in the names; counters end in
 * _total.
 *
 * The one serializer: /metrics, the Pushgateway push and `perfopt report --format prom`
 * (po_report_write_prom, report_prom.c) all write this text.
 *
 * The input may be a loaded report file (user input): metric names derived from it are
 * sanitized, label values escaped, and a family or label set is never written twice (Prometheus
 * rejects the whole scrape for a duplicate). */
#include "report/report_metrics.h"

#include "report/json.h"
#include "viz/chart_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUNCTIONS 100 /* function families keep the top 100 by total time */
#define MAX_FAMILIES 256
#define NAME_MAX_LEN 120

typedef struct prom {
  po__cbuf b;
  char families[MAX_FAMILIES][NAME_MAX_LEN]; /* names written so far */
  size_t nfamilies;
} prom;

/* ---- format primitives ------------------------------------------------------------------------
 */

/* A number as Go's strconv parses it: shortest of %.15g / %.17g that reads back, NaN, +Inf, -Inf.
 */
static void put_value(po__cbuf *b, double v) {
  if (isnan(v)) {
    po__cbuf_puts(b, "NaN");
    return;
  }
  if (isinf(v)) {
    po__cbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char s[40];
  snprintf(s, sizeof s, "%.15g", v);
  if (strtod(s, NULL) != v) snprintf(s, sizeof s, "%.17g", v);
  po__cbuf_puts(b, s);
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid (Prometheus rejects a scrape
 * with invalid UTF-8 in a label value). */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n = c < 0x80                 ? 1
             : c >= 0xC2 && c <= 0xDF ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if ((n == 3 && c == 0xE0 && s[1] < 0xA0) || (n == 3 && c == 0xED && s[1] >= 0xA0) ||
      (n == 4 && c == 0xF0 && s[1] < 0x90) || (n == 4 && c == 0xF4 && s[1] >= 0x90))
    return 0;
  return n;
}

/* Label value escaping: backslash, double quote and line feed; invalid UTF-8 becomes '?'. */
static void put_label_value(po__cbuf *b, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  while (*s) {
    size_t n = utf8_len(s);
    if (*s == '\\')
      po__cbuf_puts(b, "\\\\");
    else if (*s == '"')
      po__cbuf_puts(b, "\\\"");
    else if (*s == '\n')
      po__cbuf_puts(b, "\\n");
    else if (n == 0)
      po__cbuf_puts(b, "?");
    else
      po__cbuf_put(b, (const char *)s, n);
    s += n ? n : 1;
  }
}

/* The tail of a metric name (it always follows a "perfopt_" prefix) from arbitrary text: bytes
 * other than [a-zA-Z0-9_:] become '_'. */
static void sanitize_name(const char *in, char *out, size_t cap) {
  size_t n = 0;
  for (; *in && n + 1 < cap; in++, n++) {
    char c = *in;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
             (c >= '0' && c <= '9');
    out[n] = ok ? c : '_';
  }
  out[n] = 0;
}

/* Starts a family: HELP and TYPE. Returns 0 when the name was already written (skip it). */
static int family(prom *p, const char *name, const char *type, const char *help) {
  for (size_t i = 0; i < p->nfamilies; i++)
    if (!strcmp(p->families[i], name)) return 0;
  if (p->nfamilies == MAX_FAMILIES || strlen(name) >= NAME_MAX_LEN) return 0;
  po__strlcpy(p->families[p->nfamilies++], name, NAME_MAX_LEN);
  po__cbuf_printf(&p->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  return 1;
}

/* One sample; labels is "" or a preformatted {k="v",...}. */
static void sample(prom *p, const char *name, const char *labels, double v) {
  po__cbuf_puts(&p->b, name);
  po__cbuf_puts(&p->b, labels);
  po__cbuf_put(&p->b, " ", 1);
  put_value(&p->b, v);
  po__cbuf_put(&p->b, "\n", 1);
}

/* A gauge or counter family with one unlabelled sample; nothing when v is missing (NaN) or
 * negative (the report's "could not be measured"). */
static void single(prom *p, const char *name, const char *type, const char *help, double v) {
  if (!isfinite(v) || v < 0) return;
  if (family(p, name, type, help)) sample(p, name, "", v);
}

/* {key="value"} or {k1="v1",k2="v2"} into a cbuf (reset first). */
static const char *labels(po__cbuf *l, const char *k1, const char *v1, const char *k2,
                          const char *v2) {
  l->len = 0;
  po__cbuf_puts(l, "{");
  po__cbuf_printf(l, "%s=\"", k1);
  put_label_value(l, v1 ? v1 : "");
  po__cbuf_puts(l, "\"");
  if (k2) {
    po__cbuf_printf(l, ",%s=\"", k2);
    put_label_value(l, v2 ? v2 : "");
    po__cbuf_puts(l, "\"");
  }
  po__cbuf_puts(l, "}");
  return l->oom || !l->data ? "" : l->data;
}

/* The last non-null `last` value of a series (NaN when none). */
static double series_last(const cJSON *s) {
  const cJSON *last = po__j_get(s, "last");
  for (int i = cJSON_GetArraySize(last) - 1; i >= 0; i--) {
    const cJSON *v = cJSON_GetArrayItem(last, i);
    if (cJSON_IsNumber(v)) return v->valuedouble;
  }
  return NAN;
}

/* ---- sections ---------------------------------------------------------------------------------
 */

static void run_and_memory(prom *p, const cJSON *root, po__cbuf *l) {
  const cJSON *host = po__j_get(root, "host"), *run = po__j_get(root, "run");
  const char *ver = po__j_getstr(root, "perfopt_version");
  if (family(p, "perfopt_info", "gauge", "perfopt version and host; always 1"))
    sample(p, "perfopt_info", labels(l, "version", ver, "hostname", po__j_getstr(host, "hostname")),
           1);
  single(p, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.",
         cJSON_IsNumber(po__j_get(run, "start_unix_seconds"))
             ? po__j_getnum(run, "start_unix_seconds")
             : NAN);
  single(p, "perfopt_run_wall_seconds", "gauge", "Seconds since the run started.",
         cJSON_IsNumber(po__j_get(run, "wall_seconds")) ? po__j_getnum(run, "wall_seconds") : NAN);
  const cJSON *mem = po__j_get(root, "memory");
  if (!mem) return;
  single(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         po__j_getnum(mem, "rss_bytes"));
  single(p, "perfopt_process_peak_resident_memory_bytes", "gauge",
         "Peak resident memory size of the process in bytes.", po__j_getnum(mem, "peak_rss_bytes"));
  single(p, "node_memory_MemAvailable_bytes", "gauge",
         "Memory available to the job in bytes (MemAvailable, capped by the cgroup's limit).",
         po__j_getnum(mem, "available_bytes"));
  single(p, "perfopt_memory_limit_bytes", "gauge",
         "Effective memory limit in bytes (the cgroup's limit when set, else MemTotal).",
         po__j_getnum(mem, "limit_bytes"));
  single(p, "perfopt_memory_cleanups_total", "counter", "Cleanup handler and listener runs.",
         cJSON_GetArraySize(po__j_get(mem, "cleanups")) + po__j_getnum(mem, "dropped_cleanups"));
}

static void resources(prom *p, const cJSON *root, po__cbuf *l) {
  const cJSON *res = po__j_get(root, "resources");
  if (!res) return;
  single(p, "perfopt_resource_samples_total", "counter", "Samples the monitor took.",
         po__j_getnum(res, "sample_count"));
  single(p, "perfopt_monitor_overhead_core_ratio", "gauge",
         "CPU time of the monitor thread over its wall time (ratio of one core).",
         po__j_getnum(res, "overhead_core_ratio"));
  single(p, "perfopt_threshold_firings_total", "counter", "Threshold firings.",
         cJSON_GetArraySize(po__j_get(res, "events")) + po__j_getnum(res, "dropped_events"));
  const cJSON *s;
  cJSON_ArrayForEach(s, po__j_get(res, "series")) {
    const char *name = po__j_getstr(s, "name");
    /* Covered above under node_exporter's names; GPUs below with a label. */
    if (!name || !strcmp(name, "process_rss_bytes") || !strcmp(name, "memory_available_bytes") ||
        !strcmp(name, "memory_time_to_limit_seconds") || !strncmp(name, "gpu", 3))
      continue;
    char fam[NAME_MAX_LEN];
    char clean[NAME_MAX_LEN - 8];
    sanitize_name(name, clean, sizeof clean);
    snprintf(fam, sizeof fam, "perfopt_%s", clean);
    double v = series_last(s);
    if (isfinite(v) && family(p, fam, "gauge", "Last sampled value of the monitor's series."))
      sample(p, fam, "", v);
  }
  const cJSON *t;
  int header = 0;
  cJSON_ArrayForEach(t, po__j_get(res, "thresholds")) {
    double v = po__j_getnum(t, "value");
    const cJSON *dev = po__j_get(t, "device");
    if (!po__j_getstr(t, "metric") || !cJSON_IsNumber(po__j_get(t, "value"))) continue;
    if (!header && !family(p, "perfopt_threshold_ratio", "gauge", "Thresholds in force.")) return;
    header = 1;
    char d[24];
    snprintf(d, sizeof d, "%d", cJSON_IsNumber(dev) ? (int)dev->valuedouble : -1);
    sample(p, "perfopt_threshold_ratio",
           cJSON_IsNumber(dev) ? labels(l, "metric", po__j_getstr(t, "metric"), "gpu", d)
                               : labels(l, "metric", po__j_getstr(t, "metric"), NULL, NULL),
           v);
  }
}

static void gpus(prom *p, const cJSON *root, po__cbuf *l) {
  static const struct {
    const char *key, *name, *help;
  } fields[] = {
      {"memory_used_bytes", "perfopt_gpu_memory_used_bytes", "GPU memory in use in bytes."},
      {"memory_total_bytes", "perfopt_gpu_memory_total_bytes", "GPU memory in bytes."},
      {"utilization_gpu_ratio", "perfopt_gpu_utilization_ratio", "GPU busy ratio."},
      {"temperature_celsius", "perfopt_gpu_temperature_celsius", "GPU temperature."},
      {"power_watts", "perfopt_gpu_power_watts", "GPU power draw in watts."},
  };
  const cJSON *devs = po__j_get(po__j_get(root, "gpu"), "devices");
  if (cJSON_GetArraySize(devs) == 0) return;
  for (size_t f = 0; f < PO__ARRAY_LEN(fields); f++) {
    int header = 0;
    int seen[64] = {0};
    const cJSON *d;
    cJSON_ArrayForEach(d, devs) {
      double idx = po__j_getnum(d, "index"), v = po__j_getnum(d, fields[f].key);
      if (!cJSON_IsNumber(po__j_get(d, fields[f].key)) || v < 0 || idx < 0 || idx >= 64 ||
          seen[(int)idx])
        continue;
      seen[(int)idx] = 1;
      if (!header && !family(p, fields[f].name, "gauge", fields[f].help)) break;
      header = 1;
      char g[16];
      snprintf(g, sizeof g, "%d", (int)idx);
      sample(p, fields[f].name, labels(l, "gpu", g, NULL, NULL), v);
    }
  }
}

/* ---- functions: merged by name (two sites may share one), top MAX_FUNCTIONS by total --------- */

typedef struct fn {
  const char *name;
  double calls, total, self;
} fn;

static int by_name(const void *a, const void *b) {
  return strcmp(((const fn *)a)->name, ((const fn *)b)->name);
}
static int by_total_desc(const void *a, const void *b) {
  double x = ((const fn *)a)->total, y = ((const fn *)b)->total;
  return x < y ? 1 : x > y ? -1 : by_name(a, b);
}

static void functions(prom *p, const cJSON *root, po__cbuf *l) {
  const cJSON *prof = po__j_get(root, "profile");
  const cJSON *arr = po__j_get(prof, "functions");
  size_t cap = (size_t)cJSON_GetArraySize(arr), n = 0;
  single(p, "perfopt_profile_dropped_events_total", "counter", "Timeline events lost.",
         po__j_getnum(prof, "dropped_events"));
  if (!cap) return;
  fn *f = po__malloc(cap * sizeof *f);
  if (!f) {
    p->b.oom = 1;
    return;
  }
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    const char *name = po__j_getstr(it, "name");
    if (!name) continue;
    f[n++] = (fn){name, po__j_getnum(it, "calls"), po__j_getnum(it, "total_seconds"),
                  po__j_getnum(it, "self_seconds")};
  }
  qsort(f, n, sizeof *f, by_name);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m && !strcmp(f[m - 1].name, f[i].name)) {
      f[m - 1].calls += f[i].calls;
      f[m - 1].total += f[i].total;
      f[m - 1].self += f[i].self;
    } else {
      f[m++] = f[i];
    }
  }
  qsort(f, m, sizeof *f, by_total_desc);
  size_t shown = m < MAX_FUNCTIONS ? m : MAX_FUNCTIONS;
  static const struct {
    const char *name, *help;
    size_t off;
  } fams[] = {
      {"perfopt_function_calls_total", "Calls of a profiled function (zone).", offsetof(fn, calls)},
      {"perfopt_function_seconds_total", "Inclusive time in a profiled function.",
       offsetof(fn, total)},
      {"perfopt_function_self_seconds_total", "Time in a profiled function minus its children.",
       offsetof(fn, self)},
  };
  for (size_t k = 0; k < PO__ARRAY_LEN(fams); k++) {
    if (!family(p, fams[k].name, "counter", fams[k].help)) continue;
    for (size_t i = 0; i < shown; i++) {
      double v = *(const double *)(const void *)((const char *)&f[i] + fams[k].off);
      if (isfinite(v) && v >= 0)
        sample(p, fams[k].name, labels(l, "function", f[i].name, NULL, NULL), v);
    }
  }
  single(p, "perfopt_functions_not_exported", "gauge",
         "Profiled functions left out of the perfopt_function_* families (beyond the top 100).",
         (double)(m - shown));
  free(f);
}

static void caches(prom *p, const cJSON *root, po__cbuf *l) {
  static const struct {
    const char *key, *name, *type, *help;
  } fields[] = {
      {"hits", "perfopt_cache_hits_total", "counter", "Cache hits."},
      {"misses", "perfopt_cache_misses_total", "counter", "Cache misses."},
      {"evictions", "perfopt_cache_evictions_total", "counter", "Entries evicted."},
      {"bytes", "perfopt_cache_bytes", "gauge", "Bytes held (as declared by callers)."},
      {"budget_bytes", "perfopt_cache_budget_bytes", "gauge", "Byte budget."},
      {"entries", "perfopt_cache_entries", "gauge", "Entries held."},
  };
  const cJSON *list = po__j_get(po__j_get(root, "cache"), "caches");
  int n = cJSON_GetArraySize(list);
  if (n <= 0) return;
  for (size_t f = 0; f < PO__ARRAY_LEN(fields); f++) {
    if (!family(p, fields[f].name, fields[f].type, fields[f].help)) continue;
    for (int i = 0; i < n; i++) {
      const cJSON *c = cJSON_GetArrayItem(list, i);
      const char *name = po__j_getstr(c, "name");
      /* A second cache of the same name gets "#<index>" so the label sets stay distinct. */
      int dup = 0;
      for (int j = 0; j < i && name && !dup; j++) {
        const char *other = po__j_getstr(cJSON_GetArrayItem(list, j), "name");
        dup = other && !strcmp(other, name);
      }
      char alt[160];
      snprintf(alt, sizeof alt, "%.120s#%d", name ? name : "", i);
      double v = po__j_getnum(c, fields[f].key);
      if (cJSON_IsNumber(po__j_get(c, fields[f].key)) && v >= 0)
        sample(p, fields[f].name, labels(l, "cache", dup || !name ? alt : name, NULL, NULL), v);
    }
  }
}

/* ---- a sysinfo report's system section, the host, the advisor's findings --------------------
 * node_exporter's names for what /proc/meminfo, /proc/loadavg and /proc/diskstats say (a sysinfo
 * report's `system`), the host's MemTotal, and the suggestions by severity. Families the run's
 * sections already wrote are skipped by family(). */

static void system_section(prom *p, const cJSON *root, po__cbuf *l) {
  const cJSON *host = po__j_get(root, "host"), *sys = po__j_get(root, "system");
  single(p, "node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes.",
         cJSON_IsNumber(po__j_get(host, "memory_total_bytes"))
             ? po__j_getnum(host, "memory_total_bytes")
             : NAN);
  if (!sys) return;
  const cJSON *avail = po__j_get(sys, "memory_available_bytes");
  single(p, "node_memory_MemAvailable_bytes", "gauge",
         "Memory information field MemAvailable_bytes.",
         cJSON_IsNumber(avail) ? avail->valuedouble : NAN);
  const cJSON *st = po__j_get(sys, "swap_total_bytes"), *su = po__j_get(sys, "swap_used_bytes");
  single(p, "node_memory_SwapTotal_bytes", "gauge", "Memory information field SwapTotal_bytes.",
         cJSON_IsNumber(st) ? st->valuedouble : NAN);
  single(p, "node_memory_SwapFree_bytes", "gauge", "Memory information field SwapFree_bytes.",
         cJSON_IsNumber(st) && cJSON_IsNumber(su) ? st->valuedouble - su->valuedouble : NAN);
  static const char *const load[] = {"node_load1", "node_load5", "node_load15"};
  static const char *const load_help[] = {"1m load average.", "5m load average.",
                                          "15m load average."};
  const cJSON *la = po__j_get(sys, "load_average");
  for (int i = 0; i < 3 && cJSON_GetArraySize(la) == 3; i++) {
    const cJSON *x = cJSON_GetArrayItem(la, i);
    single(p, load[i], "gauge", load_help[i], cJSON_IsNumber(x) ? x->valuedouble : NAN);
  }
  static const char *const psi[][3] = {
      {"memory_pressure_some_avg10_ratio", "perfopt_memory_pressure_some_ratio",
       "Share of time some tasks stalled on memory over 10 s (PSI)."},
      {"memory_pressure_full_avg10_ratio", "perfopt_memory_pressure_full_ratio",
       "Share of time all tasks stalled on memory over 10 s (PSI)."},
      {"cpu_utilization_ratio", "perfopt_cpu_utilization_ratio",
       "Share of all cores busy (1 - idle - iowait)."}};
  for (size_t i = 0; i < PO__ARRAY_LEN(psi); i++) {
    const cJSON *x = po__j_get(sys, psi[i][0]);
    single(p, psi[i][1], "gauge", psi[i][2], cJSON_IsNumber(x) ? x->valuedouble : NAN);
  }
  static const char *const disk[][3] = {
      {"read_bytes", "node_disk_read_bytes_total", "The total number of bytes read successfully."},
      {"write_bytes", "node_disk_written_bytes_total",
       "The total number of bytes written successfully."}};
  const cJSON *disks = po__j_get(sys, "disks"), *d;
  for (size_t k = 0; k < 2 && cJSON_GetArraySize(disks) > 0; k++) {
    if (!family(p, disk[k][1], "counter", disk[k][2])) continue;
    int i = 0;
    cJSON_ArrayForEach(d, disks) {
      const cJSON *v = po__j_get(d, disk[k][0]);
      const char *name = po__j_getstr(d, "name");
      /* a repeated device name gets "#<index>" so the label sets stay distinct */
      int dup = 0;
      for (const cJSON *e = disks->child; e != d && name && !dup; e = e->next)
        dup = po__j_getstr(e, "name") && !strcmp(po__j_getstr(e, "name"), name);
      char alt[160];
      snprintf(alt, sizeof alt, "%.120s#%d", name ? name : "", i++);
      if (cJSON_IsNumber(v) && v->valuedouble >= 0)
        sample(p, disk[k][1], labels(l, "device", dup || !name ? alt : name, NULL, NULL),
               v->valuedouble);
    }
  }
  /* the thresholds of a sysinfo report are at the top level */
  const cJSON *t;
  int header = 0;
  cJSON_ArrayForEach(t, po__j_get(root, "thresholds")) {
    const char *metric = po__j_getstr(t, "metric");
    const cJSON *v = po__j_get(t, "value"), *dev = po__j_get(t, "device");
    if (!metric || !cJSON_IsNumber(v)) continue;
    if (!header && !family(p, "perfopt_threshold_ratio", "gauge", "Thresholds in force.")) break;
    header = 1;
    char g[24];
    snprintf(g, sizeof g, "%d", cJSON_IsNumber(dev) ? (int)dev->valuedouble : -1);
    sample(p, "perfopt_threshold_ratio",
           cJSON_IsNumber(dev) ? labels(l, "metric", metric, "gpu", g)
                               : labels(l, "metric", metric, NULL, NULL),
           v->valuedouble);
  }
}

/* ---- the memory forecast and the autopilot (memory.forecast, memory.autopilot) -------------- */

/* A number of the report, NaN when missing or not a number. */
static double num(const cJSON *o, const char *key) {
  const cJSON *v = po__j_get(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *const grades[] = {"none", "warn", "normal", "aggressive", "emergency"};

/* Seconds until the limit at the trend: the forecast's value when rising, +Inf when flat or
 * falling (an alert `< 600` then reads naturally), NaN (nothing written) when unknown. */
static double time_to_limit(const cJSON *f) {
  const char *trend = po__j_getstr(f, "trend");
  const cJSON *t = po__j_get(f, "time_to_limit_seconds");
  if (!trend) return NAN;
  if (!strcmp(trend, "rising"))
    return cJSON_IsNumber(t) && t->valuedouble >= 0 ? t->valuedouble : NAN;
  return !strcmp(trend, "flat") || !strcmp(trend, "falling") ? INFINITY : NAN;
}

/* The grade in force as a state set: one sample per grade, 1 for the one in force. Nothing when
 * the report's grade is not one of the five. gpu is NULL for host memory. */
static void grade_samples(prom *p, const char *fam, const char *grade, const char *gpu, po__cbuf *l,
                          int *header, const char *help) {
  size_t k = 0;
  while (k < PO__ARRAY_LEN(grades) && (!grade || strcmp(grade, grades[k]))) k++;
  if (k == PO__ARRAY_LEN(grades)) return;
  if (!*header && !family(p, fam, "gauge", help)) return;
  *header = 1;
  for (size_t g = 0; g < PO__ARRAY_LEN(grades); g++)
    sample(
        p, fam,
        gpu ? labels(l, "gpu", gpu, "grade", grades[g]) : labels(l, "grade", grades[g], NULL, NULL),
        g == k);
}

static void gpu_forecasts(prom *p, const cJSON *list, po__cbuf *l) {
  int header_t = 0, header_g = 0, seen[64] = {0};
  const cJSON *g;
  cJSON_ArrayForEach(g, list) {
    const cJSON *dev = po__j_get(g, "device");
    if (!cJSON_IsNumber(dev) || dev->valuedouble < 0 || dev->valuedouble >= 64 ||
        seen[(int)dev->valuedouble])
      continue;
    seen[(int)dev->valuedouble] = 1;
    char d[16];
    snprintf(d, sizeof d, "%d", (int)dev->valuedouble);
    double t = time_to_limit(g);
    if (!isnan(t) &&
        (header_t || family(p, "perfopt_gpu_memory_forecast_time_to_limit_seconds", "gauge",
                            "Seconds until the GPU's memory is full at the recent "
                            "trend (+Inf when not rising)."))) {
      header_t = 1;
      sample(p, "perfopt_gpu_memory_forecast_time_to_limit_seconds",
             labels(l, "gpu", d, NULL, NULL), t);
    }
    grade_samples(p, "perfopt_gpu_memory_autopilot_grade", po__j_getstr(g, "grade"), d, l,
                  &header_g, "The memory autopilot's grade in force for the GPU (1 for it).");
  }
}

static void forecast(prom *p, const cJSON *root, po__cbuf *l) {
  const cJSON *mem = po__j_get(root, "memory");
  const cJSON *f = po__j_get(mem, "forecast"), *ap = po__j_get(mem, "autopilot");
  if (cJSON_IsObject(f)) {
    double t = time_to_limit(f);
    if (!isnan(t) && family(p, "perfopt_memory_forecast_time_to_limit_seconds", "gauge",
                            "Seconds until memory reaches its effective limit at the recent "
                            "trend (+Inf when not rising)."))
      sample(p, "perfopt_memory_forecast_time_to_limit_seconds", "", t);
    const cJSON *slope = po__j_get(f, "slope_bytes_per_second");
    if (cJSON_IsNumber(slope) && isfinite(slope->valuedouble) &&
        family(p, "perfopt_memory_forecast_slope_bytes_per_second", "gauge",
               "Trend of memory use in bytes per second (Theil-Sen over the window)."))
      sample(p, "perfopt_memory_forecast_slope_bytes_per_second", "", slope->valuedouble);
    int header = 0;
    grade_samples(p, "perfopt_memory_autopilot_grade", po__j_getstr(f, "grade"), NULL, l, &header,
                  "The memory autopilot's grade in force (1 for it).");
    single(p, "perfopt_memory_pressure_some_ratio", "gauge",
           "PSI memory some avg10: share of time some task stalled on memory.",
           num(f, "pressure_some_ratio"));
    single(p, "perfopt_memory_pressure_full_ratio", "gauge",
           "PSI memory full avg10: share of time all tasks stalled on memory.",
           num(f, "pressure_full_ratio"));
    gpu_forecasts(p, po__j_get(f, "gpus"), l);
  }
  if (cJSON_IsObject(ap)) {
    single(p, "perfopt_memory_autopilot_episodes_total", "counter",
           "Memory pressure episodes the autopilot handled.", num(ap, "episodes"));
    if (cJSON_IsArray(po__j_get(ap, "actions")))
      single(p, "perfopt_memory_autopilot_actions_total", "counter",
             "Cleanups the memory autopilot ran.",
             cJSON_GetArraySize(po__j_get(ap, "actions")) +
                 fmax(0, po__j_getnum(ap, "dropped_actions")));
    double freed = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, po__j_get(ap, "actions")) {
      double b = po__j_getnum(a, "freed_bytes");
      if (b > 0) freed += b;
    }
    single(p, "perfopt_memory_autopilot_freed_bytes_total", "counter",
           "Bytes freed by the memory autopilot's recorded actions (kept ones).", freed);
  }
}

static void suggestions(prom *p, const cJSON *root, po__cbuf *l) {
  const cJSON *list = po__j_get(root, "suggestions"), *s;
  if (!cJSON_IsArray(list) || !family(p, "perfopt_suggestions", "gauge",
                                      "The advisor's suggestions for this report, by severity."))
    return;
  static const char *const sev[] = {"critical", "warning", "info"};
  for (int k = 0; k < 3; k++) {
    double n = 0;
    cJSON_ArrayForEach(s, list) {
      const char *v = po__j_getstr(s, "severity");
      n += v && !strcmp(v, sev[k]);
    }
    sample(p, "perfopt_suggestions", labels(l, "severity", sev[k], NULL, NULL), n);
  }
}

char *po__report_prom_text(const po_report *rep, size_t *len) {
  const cJSON *root = po_report_json(rep);
  if (!root) return NULL;
  prom *p = po__calloc(1, sizeof *p);
  if (!p) return NULL;
  po__cbuf l;
  po__cbuf_init(&l);
  po__cbuf_init(&p->b);
  run_and_memory(p, root, &l);
  forecast(p, root, &l);
  resources(p, root, &l);
  gpus(p, root, &l);
  functions(p, root, &l);
  caches(p, root, &l);
  system_section(p, root, &l);
  suggestions(p, root, &l);
  if (l.oom) p->b.oom = 1;
  po__cbuf_free(&l);
  char *out = po__cbuf_detach(&p->b, len);
  free(p);
  return out;
}
