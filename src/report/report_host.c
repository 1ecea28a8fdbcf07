/* The report's `host` and `run` sections. */
#include "report/report_build.h"

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
  po__j_str(w, host, "memory_limit_source", hw->limit_from_cgroup ? "cgroup" : "system");
  po__j_num(w, host, "cgroup_memory_max_bytes", (double)hw->cgroup_memory_max_bytes);
  po__j_num(w, host, "cgroup_version", hw->cgroup_version);
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
