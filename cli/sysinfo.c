/* perfopt sysinfo: the system resource report — hardware, current usage, thresholds in force and
 * why, GPUs or why there are none. Text by default, --json for scripts. */
#include "cli.h"
#include "perfopt.h"
#include "platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt sysinfo [--json] [--window MS]\n"
          "Hardware, current resource usage (CPU measured over --window, default 200 ms),\n"
          "the thresholds in force and where they come from, and the GPUs (or why none).\n"
          "PERFOPT_PROC_ROOT and PERFOPT_NVML_LIBRARY point the probes elsewhere.\n");
}

#define GIB (1024.0 * 1024.0 * 1024.0)

static cJSON *num(cJSON *o, const char *k, double v) {
  return cJSON_AddNumberToObject(o, k, v);
}

static cJSON *gpu_json(const po_gpu_info *d, const po_gpu_target *t) {
  cJSON *g = cJSON_CreateObject();
  num(g, "index", d->index);
  cJSON_AddStringToObject(g, "name", d->name);
  cJSON_AddStringToObject(g, "uuid", d->uuid);
  num(g, "memory_total_bytes", (double)d->memory_total_bytes);
  num(g, "memory_used_bytes", (double)d->memory_used_bytes);
  num(g, "memory_free_bytes", (double)d->memory_free_bytes);
  num(g, "memory_reserved_bytes", (double)d->memory_reserved_bytes);
  cJSON_AddStringToObject(g, "memory_api", d->memory_v2 ? "v2" : "v1 (used includes reserved)");
  num(g, "utilization_gpu_ratio", d->utilization_gpu_ratio);
  num(g, "utilization_memory_ratio", d->utilization_memory_ratio);
  num(g, "temperature_celsius", d->temperature_celsius);
  num(g, "power_watts", d->power_watts);
  if (d->processes_known) {
    cJSON *ps = cJSON_AddArrayToObject(g, "processes");
    for (size_t i = 0; i < d->process_count; i++) {
      cJSON *p = cJSON_CreateObject();
      num(p, "pid", d->processes[i].pid);
      num(p, "used_memory_bytes",
          d->processes[i].used_memory_bytes == UINT64_MAX
              ? -1.0
              : (double)d->processes[i].used_memory_bytes);
      cJSON_AddItemToArray(ps, p);
    }
    num(g, "processes_dropped", (double)d->processes_dropped);
  }
  if (t) {
    num(g, "target_memory_ratio", t->memory_threshold_ratio);
    num(g, "target_bytes", (double)t->target_bytes);
    cJSON_AddStringToObject(g, "target_why", t->why);
  }
  if (d->error[0]) cJSON_AddStringToObject(g, "error", d->error);
  return g;
}

static cJSON *build(const po_hardware *hw, const po_sys_sample *s, const po_thresholds *th,
                    const po_gpu_target *targets) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "perfopt_version", PO_VERSION_STRING);
  cJSON *h = cJSON_AddObjectToObject(root, "hardware");
  cJSON_AddStringToObject(h, "cpu_model", hw->cpu_model);
  num(h, "cores_online", hw->cores_online);
  num(h, "cores_allowed", hw->cores_allowed);
  num(h, "cgroup_cpu_limit_cores", hw->cgroup_cpu_limit);
  num(h, "memory_total_bytes", (double)hw->memory_total_bytes);
  num(h, "cgroup_memory_max_bytes", (double)hw->cgroup_memory_max_bytes);
  num(h, "memory_limit_bytes", (double)hw->memory_limit_bytes);
  cJSON_AddStringToObject(h, "limit_source", hw->limit_from_cgroup ? "cgroup" : "system");
  num(h, "cgroup_version", hw->cgroup_version);

  cJSON *u = cJSON_AddObjectToObject(root, "usage");
  num(u, "cpu_utilization_ratio", s->cpu.busy);
  num(u, "cpu_user_ratio", s->cpu.user);
  num(u, "cpu_system_ratio", s->cpu.system);
  num(u, "cpu_iowait_ratio", s->cpu.iowait);
  cJSON *cores = cJSON_AddArrayToObject(u, "cpu_per_core_ratio");
  for (uint32_t i = 0; i < s->cpu_count; i++)
    cJSON_AddItemToArray(cores, cJSON_CreateNumber(s->cpus[i].busy));
  num(u, "memory_total_bytes", (double)s->mem_total_bytes);
  num(u, "memory_available_bytes", (double)s->mem_available_bytes);
  num(u, "memory_used_bytes", (double)s->mem_used_bytes);
  num(u, "memory_cached_bytes", (double)s->mem_cached_bytes);
  num(u, "swap_total_bytes", (double)s->swap_total_bytes);
  num(u, "swap_used_bytes", (double)s->swap_used_bytes);
  num(u, "effective_limit_bytes", (double)s->memory_limit_bytes);
  num(u, "effective_available_bytes", (double)s->effective_available_bytes);
  num(u, "cgroup_memory_current_bytes", (double)s->cgroup_memory_current_bytes);
  cJSON *la = cJSON_AddArrayToObject(u, "load_average");
  for (int i = 0; i < 3; i++) cJSON_AddItemToArray(la, cJSON_CreateNumber(s->loadavg[i]));
  if (s->has_pressure) {
    num(u, "memory_pressure_some_avg10_percent", s->pressure_some_avg10);
    num(u, "memory_pressure_full_avg10_percent", s->pressure_full_avg10);
  } else {
    cJSON_AddNullToObject(u, "memory_pressure_some_avg10_percent");
  }
  cJSON *disks = cJSON_AddArrayToObject(u, "disks");
  for (uint32_t i = 0; i < s->disk_count; i++) {
    const po_disk_sample *d = &s->disks[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", d->name);
    num(o, "read_bytes", (double)d->read_bytes);
    num(o, "write_bytes", (double)d->write_bytes);
    num(o, "read_bytes_per_second", d->read_bytes_per_second);
    num(o, "write_bytes_per_second", d->write_bytes_per_second);
    num(o, "busy_ratio", d->busy_ratio);
    cJSON_AddItemToArray(disks, o);
  }

  cJSON *ths = cJSON_AddArrayToObject(root, "thresholds");
  for (int i = 0; i < PO_THRESHOLD_COUNT; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "metric", th->t[i].metric);
    num(o, "value", th->t[i].value);
    cJSON_AddStringToObject(o, "source", th->t[i].source);
    cJSON_AddStringToObject(o, "why", th->t[i].why);
    cJSON_AddItemToArray(ths, o);
  }

  cJSON *g = cJSON_AddObjectToObject(root, "gpu");
  size_t shown = hw->gpu_count < 8 ? hw->gpu_count : 8;
  cJSON_AddBoolToObject(g, "available", hw->gpu_count > 0);
  cJSON_AddStringToObject(g, "reason", hw->gpu_reason);
  num(g, "count", (double)hw->gpu_count);
  cJSON *devs = cJSON_AddArrayToObject(g, "devices");
  for (size_t i = 0; i < shown; i++)
    cJSON_AddItemToArray(devs, gpu_json(&hw->gpus[i], &targets[i]));
  return root;
}

static void print_text(const po_hardware *hw, const po_sys_sample *s, const po_thresholds *th,
                       const po_gpu_target *targets) {
  printf("Hardware\n");
  printf("  CPU            %s\n", hw->cpu_model[0] ? hw->cpu_model : "(unknown)");
  printf("  cores          %d online, %d allowed", hw->cores_online, hw->cores_allowed);
  if (hw->cgroup_cpu_limit > 0) printf(", cgroup limit %.2f cores", hw->cgroup_cpu_limit);
  printf("\n  memory         %.2f GiB total", (double)hw->memory_total_bytes / GIB);
  if (hw->limit_from_cgroup)
    printf(", cgroup limit %.2f GiB (the limit in force)", (double)hw->memory_limit_bytes / GIB);
  printf("\n\nUsage\n");
  printf("  CPU            %5.1f%% (user %.1f%%, system %.1f%%, iowait %.1f%%)\n",
         100 * s->cpu.busy, 100 * s->cpu.user, 100 * s->cpu.system, 100 * s->cpu.iowait);
  printf("  memory         %.2f GiB used, %.2f GiB available of %.2f GiB",
         (double)s->mem_used_bytes / GIB, (double)s->mem_available_bytes / GIB,
         (double)s->mem_total_bytes / GIB);
  if (s->limit_source == PO_LIMIT_CGROUP)
    printf("; cgroup: %.2f GiB available of %.2f GiB", (double)s->effective_available_bytes / GIB,
           (double)s->memory_limit_bytes / GIB);
  printf("\n  swap           %.2f GiB used of %.2f GiB\n", (double)s->swap_used_bytes / GIB,
         (double)s->swap_total_bytes / GIB);
  printf("  load average   %.2f %.2f %.2f\n", s->loadavg[0], s->loadavg[1], s->loadavg[2]);
  if (s->has_pressure)
    printf("  mem pressure   some %.2f%%, full %.2f%% (avg10)\n", s->pressure_some_avg10,
           s->pressure_full_avg10);
  for (uint32_t i = 0; i < s->disk_count; i++) {
    const po_disk_sample *d = &s->disks[i];
    printf("  disk %-9s %8.1f KiB/s read, %8.1f KiB/s write, %5.1f%% busy\n", d->name,
           d->read_bytes_per_second / 1024, d->write_bytes_per_second / 1024, 100 * d->busy_ratio);
  }
  printf("\nThresholds in force\n");
  for (int i = 0; i < PO_THRESHOLD_COUNT; i++)
    printf("  %-11s %.2f  %s\n", th->t[i].metric, th->t[i].value, th->t[i].why);
  printf("\nGPUs\n");
  if (!hw->gpu_count) {
    printf("  none: %s\n", hw->gpu_reason);
    return;
  }
  size_t shown = hw->gpu_count < 8 ? hw->gpu_count : 8;
  for (size_t i = 0; i < shown; i++) {
    const po_gpu_info *d = &hw->gpus[i];
    printf("  [%u] %s  %s\n", d->index, d->name, d->uuid);
    printf("      memory %.2f / %.2f GiB used%s, util %.0f%% gpu %.0f%% mem, %.0f C, %.1f W\n",
           (double)d->memory_used_bytes / GIB, (double)d->memory_total_bytes / GIB,
           d->memory_v2 ? "" : " (v1: includes reserved)", 100 * d->utilization_gpu_ratio,
           100 * d->utilization_memory_ratio, d->temperature_celsius, d->power_watts);
    printf("      target: stay under %.0f%% (%s)\n", 100 * targets[i].memory_threshold_ratio,
           targets[i].why);
    if (d->error[0]) printf("      error: %s\n", d->error);
  }
  if (hw->gpu_count > shown) printf("  ... and %zu more\n", hw->gpu_count - shown);
}

int po_cli_sysinfo(int argc, char **argv) {
  int json = 0;
  long window_ms = 200;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      json = 1;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
      char *end;
      window_ms = strtol(argv[++i], &end, 10);
      if (*end || window_ms < 0 || window_ms > 60000) {
        fprintf(stderr, "perfopt sysinfo: --window must be 0..60000 ms, not '%s'\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "perfopt sysinfo: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  po_config cfg;
  char err[256];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt sysinfo: %s\n", err);
    return 1;
  }
  po_hardware *hw = malloc(sizeof *hw);
  po_sys_sample *s = malloc(sizeof *s);
  po_probe *p = NULL;
  int rc = 1;
  if (!hw || !s) goto out;
  int prc = po__probe_open(cfg.proc_root, &p);
  if (prc != 0) {
    fprintf(stderr, "perfopt sysinfo: cannot read %s/proc/stat: %s\n",
            cfg.proc_root[0] ? cfg.proc_root : "", po_strerror(prc));
    goto out;
  }
  po__probe_system(p, s);
  po_hardware_probe(&cfg, 1, hw); /* NVML start-up doubles as part of the CPU window */
  if (window_ms > 0) usleep((useconds_t)window_ms * 1000);
  po__probe_system(p, s);
  po_thresholds th;
  po_thresholds_resolve(&cfg, hw, &th);
  po_gpu_target targets[8];
  po_gpu_optimal_targets(hw->gpus, hw->gpu_count < 8 ? hw->gpu_count : 8, targets);
  if (json) {
    cJSON *root = build(hw, s, &th, targets);
    char *text = root ? cJSON_Print(root) : NULL;
    if (!text) {
      fprintf(stderr, "perfopt sysinfo: out of memory\n");
      cJSON_Delete(root);
      goto out;
    }
    puts(text);
    free(text);
    cJSON_Delete(root);
  } else {
    print_text(hw, s, &th, targets);
  }
  rc = fflush(stdout) == 0 ? 0 : 1;
out:
  po__probe_close(p);
  free(hw);
  free(s);
  return rc;
}
