/* The report as Prometheus text exposition (format 0.0.4), for a /metrics endpoint or a textfile
 * collector. Names follow node_exporter and the client libraries where the quantity is the same
 * (process_resident_memory_bytes, node_memory_MemAvailable_bytes from a sysinfo report's MemAvailable,
 * node_load1, node_disk_read_bytes_total); everything else is perfopt_*, in base units (bytes,
 * seconds, ratios 0..1). Every family has HELP and TYPE lines and its samples together. A value
 * the report does not have (absent, or -1 for "not measured") is left out, never written as 0. */
#include "report/outbuf.h"
#include "report/report_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUNCTIONS 200

/* ---- writing ------------------------------------------------------------------------------- */

static void family(po__ob *o, const char *name, const char *type, const char *help) {
  po__ob_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with the exposition's escapes (backslash, double quote, line feed). */
static void label_value(po__ob *o, const char *v) {
  const char *run = v;
  for (const char *p = v; *p; p++) {
    if (*p != '\\' && *p != '"' && *p != '\n') continue;
    po__ob_put(o, run, (size_t)(p - run));
    po__ob_puts(o, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n");
    run = p + 1;
  }
  po__ob_puts(o, run);
}

/* name{k1="v1",k2="v2"} value, with up to two labels (a NULL key ends the list). */
static void sample2(po__ob *o, const char *name, const char *k1, const char *v1, const char *k2,
                    const char *v2, double v) {
  po__ob_puts(o, name);
  if (k1) {
    po__ob_printf(o, "{%s=\"", k1);
    label_value(o, v1 ? v1 : "");
    if (k2) {
      po__ob_printf(o, "\",%s=\"", k2);
      label_value(o, v2 ? v2 : "");
    }
    po__ob_puts(o, "\"}");
  }
  po__ob_puts(o, " ");
  po__ob_num(o, v, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
  po__ob_puts(o, "\n");
}

static void sample(po__ob *o, const char *name, double v) {
  sample2(o, name, NULL, NULL, NULL, NULL, v);
}

/* A number member that is present, finite and not the report's -1 for "not measured". */
static int have(const cJSON *obj, const char *key, double *v) {
  const cJSON *x = po__j_get(obj, key);
  if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0) return 0;
  *v = x->valuedouble;
  return 1;
}

/* One gauge or counter from one value, when the report has it. */
static void scalar(po__ob *o, const char *name, const char *type, const char *help,
                   const cJSON *obj, const char *key) {
  double v;
  if (!have(obj, key, &v)) return;
  family(o, name, type, help);
  sample(o, name, v);
}

/* The last finite value of a series column, when the series exists. */
static int series_last(const cJSON *root, const char *name, double *v) {
  const cJSON *s;
  cJSON_ArrayForEach(s, po__j_get(po__j_get(root, "resources"), "series")) {
    const char *n = po__j_getstr(s, "name");
    if (!n || strcmp(n, name) != 0) continue;
    int found = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, po__j_get(s, "last")) {
      if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
        *v = it->valuedouble;
        found = 1;
      }
    }
    return found;
  }
  return 0;
}

/* ---- sections ------------------------------------------------------------------------------ */

static void process_and_memory(po__ob *o, const cJSON *root) {
  const cJSON *run = po__j_get(root, "run"), *mem = po__j_get(root, "memory");
  const cJSON *host = po__j_get(root, "host"), *sys = po__j_get(root, "system");
  const char *ver = po__j_getstr(root, "perfopt_version");
  family(o, "perfopt_build_info", "gauge", "The perfopt version that wrote the report.");
  sample2(o, "perfopt_build_info", "version", ver ? ver : "", NULL, NULL, 1);
  double v;
  if (have(run, "start_unix_seconds", &v) && v > 0)
    scalar(o, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.", run, "start_unix_seconds");
  scalar(o, "perfopt_run_wall_seconds", "gauge", "Wall time of the run when the report was built.",
         run, "wall_seconds");
  scalar(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", mem,
         "rss_bytes");
  scalar(o, "perfopt_process_resident_memory_peak_bytes", "gauge",
         "Peak resident memory size of the process in bytes.", mem, "peak_rss_bytes");
  const cJSON *lim_obj = mem ? mem : sys;
  const char *lim_key = mem ? "limit_bytes" : "memory_limit_bytes";
  if (have(lim_obj, lim_key, &v) && v > 0) {
    const char *src = po__j_getstr(lim_obj, mem ? "limit_source" : "memory_limit_source");
    family(o, "perfopt_memory_limit_bytes", "gauge",
           "The effective memory limit (the cgroup's when set, else the system's) in bytes.");
    sample2(o, "perfopt_memory_limit_bytes", "source", src ? src : "unknown", NULL, NULL, v);
  }
  scalar(o, "perfopt_memory_available_bytes", "gauge",
         "Memory available under the effective limit (cgroup-aware) in bytes.", mem ? mem : sys,
         mem ? "available_bytes" : "effective_available_bytes");
  scalar(o, "node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes.",
         host, "memory_total_bytes");
  scalar(o, "node_memory_MemAvailable_bytes", "gauge",
         "Memory information field MemAvailable_bytes.", sys, "memory_available_bytes");
  scalar(o, "node_memory_SwapTotal_bytes", "gauge", "Memory information field SwapTotal_bytes.",
         sys, "swap_total_bytes");
  double total, used;
  if (have(sys, "swap_total_bytes", &total) && have(sys, "swap_used_bytes", &used)) {
    family(o, "node_memory_SwapFree_bytes", "gauge", "Memory information field SwapFree_bytes.");
    sample(o, "node_memory_SwapFree_bytes", total - used);
  }
  scalar(o, "perfopt_memory_pressure_some_ratio", "gauge",
         "Share of time some tasks stalled on memory over the last 10 s (PSI some avg10).", sys,
         "memory_pressure_some_avg10_ratio");
  scalar(o, "perfopt_memory_pressure_full_ratio", "gauge",
         "Share of time all tasks stalled on memory over the last 10 s (PSI full avg10).", sys,
         "memory_pressure_full_avg10_ratio");
}

static void system_load_and_disks(po__ob *o, const cJSON *root) {
  const cJSON *sys = po__j_get(root, "system");
  const cJSON *la = po__j_get(sys, "load_average");
  static const char *const load_names[] = {"node_load1", "node_load5", "node_load15"};
  static const char *const load_help[] = {"1m load average.", "5m load average.",
                                          "15m load average."};
  for (int i = 0; i < 3 && cJSON_GetArraySize(la) == 3; i++) {
    const cJSON *x = cJSON_GetArrayItem(la, i);
    if (!cJSON_IsNumber(x)) continue;
    family(o, load_names[i], "gauge", load_help[i]);
    sample(o, load_names[i], x->valuedouble);
  }
  static const struct {
    const char *name, *key, *help;
  } disk[] = {{"node_disk_read_bytes_total", "read_bytes", "The total number of bytes read successfully."},
              {"node_disk_written_bytes_total", "write_bytes",
               "The total number of bytes written successfully."}};
  const cJSON *disks = po__j_get(sys, "disks"), *d;
  for (size_t k = 0; k < 2 && cJSON_GetArraySize(disks) > 0; k++) {
    family(o, disk[k].name, "counter", disk[k].help);
    cJSON_ArrayForEach(d, disks) {
      double v;
      const char *name = po__j_getstr(d, "name");
      if (name && have(d, disk[k].key, &v)) sample2(o, disk[k].name, "device", name, NULL, NULL, v);
    }
  }
}

static void cpu_and_series(po__ob *o, const cJSON *root) {
  double v;
  const cJSON *sys = po__j_get(root, "system");
  int got = series_last(root, "cpu_utilization_ratio", &v);
  if (!got) got = have(sys, "cpu_utilization_ratio", &v);
  if (got) {
    family(o, "perfopt_cpu_utilization_ratio", "gauge",
           "Share of all cores busy (1 - idle - iowait) at the last sample.");
    sample(o, "perfopt_cpu_utilization_ratio", v);
  }
  if (series_last(root, "process_cpu_ratio", &v)) {
    family(o, "perfopt_process_cpu_cores", "gauge",
           "Cores this process kept busy at the last sample (2 = two cores).");
    sample(o, "perfopt_process_cpu_cores", v);
  }
  static const struct {
    const char *series, *name, *help;
  } known[] = {
      {"memory_used_bytes", "perfopt_memory_used_bytes",
       "Memory used under the effective limit at the last sample, in bytes."},
      {"disk_read_bytes_per_second", "perfopt_disk_read_bytes_per_second",
       "Read rate of all whole disks at the last sample."},
      {"disk_write_bytes_per_second", "perfopt_disk_write_bytes_per_second",
       "Write rate of all whole disks at the last sample."},
      {"disk_busy_ratio", "perfopt_disk_busy_ratio",
       "Busy share of the busiest whole disk at the last sample."},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (!series_last(root, known[i].series, &v)) continue;
    family(o, known[i].name, "gauge", known[i].help);
    sample(o, known[i].name, v);
  }
}

static void gpus(po__ob *o, const cJSON *root) {
  static const struct {
    const char *name, *key, *help;
  } g[] = {
      {"perfopt_gpu_memory_used_bytes", "memory_used_bytes", "GPU memory used in bytes."},
      {"perfopt_gpu_memory_total_bytes", "memory_total_bytes", "GPU memory in bytes."},
      {"perfopt_gpu_utilization_ratio", "utilization_gpu_ratio",
       "Share of time the GPU was busy over the last sample period."},
      {"perfopt_gpu_temperature_celsius", "temperature_celsius", "GPU temperature in Celsius."},
      {"perfopt_gpu_power_watts", "power_watts", "GPU power draw in watts."},
  };
  const cJSON *devs = po__j_get(po__j_get(root, "gpu"), "devices"), *d;
  for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
    int started = 0;
    cJSON_ArrayForEach(d, devs) {
      double v, idx;
      if (!have(d, g[k].key, &v) || !have(d, "index", &idx)) continue;
      if (!started) family(o, g[k].name, "gauge", g[k].help);
      started = 1;
      char gpu[24];
      snprintf(gpu, sizeof gpu, "%.0f", idx);
      const char *name = po__j_getstr(d, "name");
      sample2(o, g[k].name, "gpu", gpu, "name", name ? name : "", v);
    }
  }
}

/* ---- profile ------------------------------------------------------------------------------- */

static int cmp_total_desc(const void *x, const void *y) {
  double a = po__j_getnum(*(const cJSON *const *)x, "total_seconds");
  double b = po__j_getnum(*(const cJSON *const *)y, "total_seconds");
  return (a < b) - (a > b);
}

static void function_family(po__ob *o, const cJSON *const *f, size_t n, const char *name,
                            const char *type, const char *key, const char *help) {
  family(o, name, type, help);
  for (size_t i = 0; i < n; i++) {
    double v;
    if (have(f[i], key, &v)) sample2(o, name, "function", po__j_getstr(f[i], "name"), NULL, NULL, v);
  }
}

static void call_durations(po__ob *o, const cJSON *const *f, size_t n) {
  static const char *const q[] = {"0.5", "0.9", "0.95", "0.99"};
  static const char *const qk[] = {"p50_seconds", "p90_seconds", "p95_seconds", "p99_seconds"};
  const char *name = "perfopt_function_call_duration_seconds";
  family(o, name, "summary", "Duration of single calls of a profiled function (inclusive).");
  for (size_t i = 0; i < n; i++) {
    const char *fn = po__j_getstr(f[i], "name");
    double calls, avg, v;
    for (int k = 0; k < 4; k++)
      if (have(f[i], qk[k], &v)) sample2(o, name, "function", fn, "quantile", q[k], v);
    if (!have(f[i], "calls", &calls)) continue;
    sample2(o, "perfopt_function_call_duration_seconds_sum", "function", fn, NULL, NULL,
            have(f[i], "avg_seconds", &avg) ? avg * calls : 0);
    sample2(o, "perfopt_function_call_duration_seconds_count", "function", fn, NULL, NULL, calls);
  }
}

static int profile(po__ob *o, const cJSON *root) {
  const cJSON *prof = po__j_get(root, "profile");
  scalar(o, "perfopt_profile_profiled_seconds", "gauge",
         "Inclusive time of the top-level zones of every thread.", prof, "profiled_seconds");
  const cJSON *funcs = po__j_get(prof, "functions"), *it;
  int total = cJSON_GetArraySize(funcs);
  if (total <= 0) return 0;
  const cJSON **f = po__malloc((size_t)total * sizeof *f);
  if (!f) return PO_ENOMEM;
  size_t n = 0;
  cJSON_ArrayForEach(it, funcs) {
    if (n < (size_t)total && po__j_getstr(it, "name")) f[n++] = it;
  }
  qsort(f, n, sizeof *f, cmp_total_desc);
  if (n > MAX_FUNCTIONS) n = MAX_FUNCTIONS; /* a bounded label set: the functions that matter */
  function_family(o, f, n, "perfopt_function_calls_total", "counter", "calls",
                  "Calls of a profiled function.");
  function_family(o, f, n, "perfopt_function_seconds_total", "counter", "total_seconds",
                  "Inclusive time of a profiled function (recursion counted once).");
  function_family(o, f, n, "perfopt_function_self_seconds_total", "counter", "self_seconds",
                  "Time of a profiled function excluding its profiled callees.");
  call_durations(o, f, n);
  free(f);
  return 0;
}

/* ---- caches, monitor, suggestions ----------------------------------------------------------- */

static void caches(po__ob *o, const cJSON *root) {
  static const struct {
    const char *name, *type, *key, *help;
  } c[] = {
      {"perfopt_cache_hits_total", "counter", "hits", "Lookups that found their entry."},
      {"perfopt_cache_misses_total", "counter", "misses", "Lookups that did not."},
      {"perfopt_cache_evictions_total", "counter", "evictions", "Entries evicted for room."},
      {"perfopt_cache_bytes", "gauge", "bytes", "Declared sizes of the entries held, in bytes."},
      {"perfopt_cache_budget_bytes", "gauge", "budget_bytes", "The cache's byte budget."},
      {"perfopt_cache_entries", "gauge", "entries", "Entries held."},
      {"perfopt_cache_hit_ratio", "gauge", "hit_ratio", "Hits over lookups since creation."},
  };
  const cJSON *list = po__j_get(po__j_get(root, "cache"), "caches"), *it;
  if (cJSON_GetArraySize(list) <= 0) return;
  for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
    family(o, c[k].name, c[k].type, c[k].help);
    cJSON_ArrayForEach(it, list) {
      double v;
      const char *name = po__j_getstr(it, "name");
      if (name && have(it, c[k].key, &v)) sample2(o, c[k].name, "cache", name, NULL, NULL, v);
    }
  }
}

static void monitor(po__ob *o, const cJSON *root) {
  const cJSON *res = po__j_get(root, "resources"), *mem = po__j_get(root, "memory"), *it;
  scalar(o, "perfopt_monitor_samples_total", "counter", "Resource samples taken.", res,
         "sample_count");
  scalar(o, "perfopt_monitor_overhead_ratio", "gauge",
         "CPU time of the sampler thread over its wall time (share of one core).", res,
         "overhead_core_ratio");
  scalar(o, "perfopt_monitor_interval_seconds", "gauge", "The effective sampling interval.", res,
         "effective_interval_seconds");
  const cJSON *th = po__j_get(res, "thresholds");
  if (!th) th = po__j_get(root, "thresholds"); /* a sysinfo report */
  if (cJSON_GetArraySize(th) > 0) {
    family(o, "perfopt_threshold_ratio", "gauge", "Thresholds in force (ratios of their limit).");
    cJSON_ArrayForEach(it, th) {
      double v, dev;
      const char *metric = po__j_getstr(it, "metric");
      if (!metric || !have(it, "value", &v)) continue;
      char d[24];
      snprintf(d, sizeof d, "%.0f", have(it, "device", &dev) ? dev : -1);
      sample2(o, "perfopt_threshold_ratio", "metric", metric, have(it, "device", &dev) ? "gpu" : NULL,
              d, v);
    }
  }
  const cJSON *events = po__j_get(res, "events");
  if (cJSON_IsArray(events)) {
    static const char *const metrics[] = {"cpu", "memory", "gpu_memory", "disk_busy", "manual"};
    family(o, "perfopt_threshold_firings_total", "counter",
           "Threshold firings listed in the report (the newest 256 are kept).");
    for (size_t k = 0; k < 5; k++) {
      double n = 0;
      cJSON_ArrayForEach(it, events) {
        const char *m = po__j_getstr(it, "metric");
        n += m && strcmp(m, metrics[k]) == 0;
      }
      sample2(o, "perfopt_threshold_firings_total", "metric", metrics[k], NULL, NULL, n);
    }
  }
  const cJSON *cl = po__j_get(mem, "cleanups");
  if (cJSON_IsArray(cl)) {
    double freed = 0;
    cJSON_ArrayForEach(it, cl) {
      freed += fmax(0, po__j_getnum(it, "freed_bytes"));
    }
    family(o, "perfopt_cleanups_total", "counter", "Cleanup handlers and listeners run.");
    sample(o, "perfopt_cleanups_total",
           (double)cJSON_GetArraySize(cl) + fmax(0, po__j_getnum(mem, "dropped_cleanups")));
    family(o, "perfopt_cleanup_freed_bytes_total", "counter",
           "Bytes the listed cleanups freed (RSS drop around each).");
    sample(o, "perfopt_cleanup_freed_bytes_total", freed);
  }
}

static void suggestions(po__ob *o, const cJSON *root) {
  const cJSON *list = po__j_get(root, "suggestions"), *it;
  if (!cJSON_IsArray(list)) return;
  static const char *const sev[] = {"critical", "warning", "info"};
  family(o, "perfopt_suggestions", "gauge", "The advisor's suggestions by severity.");
  for (int k = 0; k < 3; k++) {
    double n = 0;
    cJSON_ArrayForEach(it, list) {
      const char *s = po__j_getstr(it, "severity");
      n += s && strcmp(s, sev[k]) == 0;
    }
    sample2(o, "perfopt_suggestions", "severity", sev[k], NULL, NULL, n);
  }
}

static int render(po__ob *o, const void *arg) {
  const cJSON *root = arg;
  process_and_memory(o, root);
  system_load_and_disks(o, root);
  cpu_and_series(o, root);
  gpus(o, root);
  int rc = profile(o, root);
  caches(o, root);
  monitor(o, root);
  suggestions(o, root);
  return rc ? rc : o->err;
}

int po_report_write_prom(const po_report *rep, FILE *out) {
  if (!rep) return PO_EINVAL;
  return po__ob_write(out, render, po_report_json(rep));
}

int po_report_save_prom(const po_report *rep, const char *path, char *errbuf, size_t errlen) {
  if (!rep) return po__errf(PO_EINVAL, errbuf, errlen, "no report or path given");
  return po__ob_save(path, render, po_report_json(rep), errbuf, errlen);
}

char *po_report_to_prom(const po_report *rep, size_t *len) {
  if (!rep) return NULL;
  po__ob o;
  po__ob_init(&o, NULL);
  if (render(&o, po_report_json(rep))) {
    po__ob_free(&o);
    return NULL;
  }
  return po__ob_detach(&o, len);
}
