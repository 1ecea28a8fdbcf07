/* The report's `host` and `run` sections. */
#include "report/report_build.h"

static void limit_json(po__jw *w, cJSON *arr, const char *name, double value, const char *unit,
                       const char *from, int in_force) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "name", name);
  po__j_num(w, o, "value", value);
  po__j_str(w, o, "unit", unit);
  po__j_str(w, o, "from", from);
  po__j_bool(w, o, "in_force", in_force);
}

/* host.limits[]: every limit found and the file (or key) it was read from; in_force marks the
 * effective memory limit. */
static void limits_json(po__jw *w, cJSON *host, const po_hardware *hw) {
  cJSON *arr = po__j_arr(w, host, "limits");
  po_limit_source src = hw->memory_limit_source;
  limit_json(w, arr, "memory_total", (double)hw->memory_total_bytes, "bytes",
             "/proc/meminfo MemTotal", src == PO_LIMIT_SYSTEM);
  if (hw->cgroup_memory_max_bytes)
    limit_json(w, arr, "memory_max", (double)hw->cgroup_memory_max_bytes, "bytes",
               hw->memory_max_from, src == PO_LIMIT_CGROUP);
  if (hw->cgroup_memory_high_bytes)
    limit_json(w, arr, "memory_high", (double)hw->cgroup_memory_high_bytes, "bytes",
               hw->memory_high_from, src == PO_LIMIT_CGROUP_HIGH);
  if (hw->memory_budget_bytes)
    limit_json(w, arr, "memory_budget", (double)hw->memory_budget_bytes, "bytes",
               "MEMORY_LIMIT_BYTES", src == PO_LIMIT_CONFIG);
  if (hw->cgroup_swap_max_bytes)
    limit_json(w, arr, "swap_max", (double)hw->cgroup_swap_max_bytes, "bytes", hw->swap_max_from,
               0);
  if (hw->cgroup_cpu_limit > 0)
    limit_json(w, arr, "cpu", hw->cgroup_cpu_limit, "cores", hw->cpu_limit_from, 1);
}

void po__report_host(po__jw *w, cJSON *root, const po_hardware *hw) {
  cJSON *host = po__j_obj(w, root, "host");
  if (!hw) return;
  po__j_str(w, host, "hostname", hw->hostname);
  po__j_str(w, host, "os", hw->os);
  po__j_str(w, host, "kernel", hw->kernel);
  po__j_str(w, host, "machine", hw->machine);
  po__j_str(w, host, "cpu_model", hw->cpu_model);
  po__j_num(w, host, "cores_online", hw->cores_online);
  po__j_num(w, host, "cores_allowed", hw->cores_allowed);
  po__j_num(w, host, "cgroup_cpu_limit", hw->cgroup_cpu_limit);
  po__j_num(w, host, "memory_total_bytes", (double)hw->memory_total_bytes);
  po__j_num(w, host, "memory_limit_bytes", (double)hw->memory_limit_bytes);
  po__j_str(w, host, "memory_limit_source", po_limit_source_name(hw->memory_limit_source));
  po__j_num(w, host, "cgroup_memory_max_bytes", (double)hw->cgroup_memory_max_bytes);
  po__j_num(w, host, "cgroup_memory_high_bytes", (double)hw->cgroup_memory_high_bytes);
  po__j_num(w, host, "cgroup_swap_max_bytes", (double)hw->cgroup_swap_max_bytes);
  po__j_num(w, host, "cgroup_version", hw->cgroup_version);
  limits_json(w, host, hw);
}

void po__report_run(po__jw *w, cJSON *root, const po__report_sources *src) {
  cJSON *run = po__j_obj(w, root, "run");
  po__j_num(w, run, "pid", src->pid);
  po__j_num(w, run, "start_unix_seconds", src->start_unix_seconds);
  po__j_num(w, run, "report_unix_seconds", src->start_unix_seconds + src->wall_seconds);
  po__j_num(w, run, "wall_seconds", src->wall_seconds);
  cJSON *argv = po__j_arr(w, run, "argv");
  for (size_t i = 0; i < src->argc; i++) po__j_str(w, argv, NULL, src->argv[i]);
  if (!src->cfg) return;
  char *cfg = po_config_to_json(src->cfg);
  if (!cfg) {
    w->err = PO_ENOMEM;
    return;
  }
  cJSON *c = cJSON_Parse(cfg);
  free(cfg);
  po__j_add(w, run, "config", c);
}
