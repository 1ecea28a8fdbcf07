/* perfopt sysinfo: the system resource report — hardware, current usage, thresholds in force and
 * why, GPUs or why there are none. Text by default, --json for scripts (the same keys as a run's
 * report: host, system, thresholds, gpu). */
#include "cli.h"
#include "perfopt.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt sysinfo [--json] [--window MS]\n"
          "Hardware, current resource usage (CPU measured over --window, default 200 ms),\n"
          "the thresholds in force and where they come from, the GPUs (or why none), and\n"
          "suggestions (swap in use, memory pressure).\n"
          "PERFOPT_PROC_ROOT and PERFOPT_NVML_LIBRARY point the probes elsewhere.\n");
}

#define GIB (1024.0 * 1024.0 * 1024.0)

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The string value, escaped for the terminal (names come from /proc, /sys and NVML). A few
 * rotating buffers: one printf may show several. */
static const char *str(const cJSON *o, const char *k) {
  static char bufs[8][512];
  static unsigned next;
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
  char *b = bufs[next++ % 8];
  return po_cli_escape(s ? s : "", b, sizeof bufs[0]);
}

static void print_host(const cJSON *h) {
  printf("Hardware\n");
  printf("  CPU            %s\n", *str(h, "cpu_model") ? str(h, "cpu_model") : "(unknown)");
  printf("  cores          %.0f online, %.0f allowed", num(h, "cores_online"),
         num(h, "cores_allowed"));
  if (num(h, "cgroup_cpu_limit") > 0)
    printf(", cgroup limit %.2f cores", num(h, "cgroup_cpu_limit"));
  printf("\n  memory         %.2f GiB total", num(h, "memory_total_bytes") / GIB);
  if (strcmp(str(h, "memory_limit_source"), "system"))
    printf(", limit in force %.2f GiB (%s)", num(h, "memory_limit_bytes") / GIB,
           str(h, "memory_limit_source"));
  printf("\n");
  const cJSON *l;
  printf("\nLimits (where each was read)\n");
  cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(h, "limits")) {
    int cores = !strcmp(str(l, "unit"), "cores");
    printf("  %-14s %8.2f %s%s  %s\n", str(l, "name"), num(l, "value") / (cores ? 1 : GIB),
           cores ? "cores" : "GiB  ",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "in_force")) ? " *" : "  ",
           str(l, "from"));
  }
}

static void print_system(const cJSON *s) {
  printf("\nUsage\n");
  printf("  CPU            %5.1f%% (user %.1f%%, system %.1f%%, iowait %.1f%%)\n",
         100 * num(s, "cpu_utilization_ratio"), 100 * num(s, "cpu_user_ratio"),
         100 * num(s, "cpu_system_ratio"), 100 * num(s, "cpu_iowait_ratio"));
  printf("  memory         %.2f GiB used, %.2f GiB available of %.2f GiB",
         num(s, "memory_used_bytes") / GIB, num(s, "memory_available_bytes") / GIB,
         num(s, "memory_total_bytes") / GIB);
  if (strcmp(str(s, "memory_limit_source"), "system"))
    printf("; %s: %.2f GiB available of %.2f GiB", str(s, "memory_limit_source"),
           num(s, "effective_available_bytes") / GIB, num(s, "memory_limit_bytes") / GIB);
  printf("\n  swap           %.2f GiB used of %.2f GiB\n", num(s, "swap_used_bytes") / GIB,
         num(s, "swap_total_bytes") / GIB);
  const cJSON *la = cJSON_GetObjectItemCaseSensitive(s, "load_average");
  printf("  load average   %.2f %.2f %.2f\n", cJSON_GetNumberValue(cJSON_GetArrayItem(la, 0)),
         cJSON_GetNumberValue(cJSON_GetArrayItem(la, 1)),
         cJSON_GetNumberValue(cJSON_GetArrayItem(la, 2)));
  if (num(s, "memory_pressure_some_avg10_ratio") >= 0)
    printf("  mem pressure   some %.2f%%, full %.2f%% (avg10)\n",
           100 * num(s, "memory_pressure_some_avg10_ratio"),
           100 * num(s, "memory_pressure_full_avg10_ratio"));
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(s, "disks")) {
    printf("  disk %-9s %8.1f KiB/s read, %8.1f KiB/s write, %5.1f%% busy\n", str(d, "name"),
           num(d, "read_bytes_per_second") / 1024, num(d, "write_bytes_per_second") / 1024,
           100 * num(d, "busy_ratio"));
  }
}

static void print_thresholds_and_gpus(const cJSON *root) {
  printf("\nThresholds in force\n");
  const cJSON *t;
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(root, "thresholds")) {
    printf("  %-11s %.2f  %s\n", str(t, "metric"), num(t, "value"), str(t, "why"));
  }
  const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "gpu");
  printf("\nGPUs\n");
  if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "available"))) {
    printf("  none: %s\n", str(g, "reason"));
    return;
  }
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(g, "devices")) {
    printf("  [%.0f] %s  %s\n", num(d, "index"), str(d, "name"), str(d, "uuid"));
    printf("      memory %.2f / %.2f GiB used%s, util %.0f%% gpu %.0f%% mem, %.0f C, %.1f W\n",
           num(d, "memory_used_bytes") / GIB, num(d, "memory_total_bytes") / GIB,
           strcmp(str(d, "memory_api"), "v2") ? " (v1: includes reserved)" : "",
           100 * num(d, "utilization_gpu_ratio"), 100 * num(d, "utilization_memory_ratio"),
           num(d, "temperature_celsius"), num(d, "power_watts"));
    if (*str(d, "error")) printf("      error: %s\n", str(d, "error"));
  }
  if (num(g, "dropped_devices") > 0) printf("  ... and %.0f more\n", num(g, "dropped_devices"));
}

static void print_suggestions(const cJSON *root) {
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "suggestions"), *s;
  printf("\nSuggestions\n");
  if (cJSON_GetArraySize(list) == 0) printf("  none\n");
  cJSON_ArrayForEach(s, list) {
    printf("  [%s] %s: %s\n", str(s, "severity"), str(s, "id"), str(s, "title"));
    if (*str(s, "action")) printf("      %s\n", str(s, "action"));
  }
}

static int parse_args(int argc, char **argv, int *json, long *window_ms) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      *json = 1;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--window")) {
      const char *v = po_cli_value("sysinfo", argc, argv, &i);
      if (!v || po_cli_parse_long("sysinfo", "--window", v, 0, 60000, "ms", window_ms) != 0)
        return 2;
    } else {
      po_cli_error("sysinfo", "unknown option '%s'", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  return -1;
}

int po_cli_sysinfo(int argc, char **argv) {
  int json = 0;
  long window_ms = 200;
  int prc = parse_args(argc, argv, &json, &window_ms);
  if (prc >= 0) return prc;
  po_config cfg;
  char err[256];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    po_cli_error("sysinfo", "%s", err);
    return 1;
  }
  po_report *rep = NULL;
  int rc = po_report_create_sysinfo(&cfg, (int)window_ms, &rep);
  if (rc) {
    po_cli_error("sysinfo", "cannot read %s/proc/stat: %s", cfg.proc_root, po_strerror(rc));
    return 1;
  }
  const cJSON *root = po_report_json(rep);
  if (json) {
    char *text = po_report_to_string(rep, 1);
    if (text) puts(text);
    rc = text ? 0 : 1;
    po_free(text);
  } else {
    print_host(cJSON_GetObjectItemCaseSensitive(root, "host"));
    print_system(cJSON_GetObjectItemCaseSensitive(root, "system"));
    print_thresholds_and_gpus(root);
    print_suggestions(root);
  }
  po_report_destroy(rep);
  return rc; /* main reports a write error on stdout */
}
