/* Hardware facts: what the machine is (not how busy it is). Read once, for reports and for the
 * hardware-aware default thresholds. */
#include "platform.h"
#include "base/base.h"
#include "linux/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

/* "model name" on x86, "Hardware"/"Model"/"cpu model" elsewhere; the first one found.
 * Returns 0 or PO_ENOMEM. */
static int cpu_model(const char *root, po_hardware *hw) {
  char *buf = po__malloc(65536);
  if (!buf) return PO_ENOMEM;
  if (po__read_rel_text(root, "/proc/cpuinfo", buf, 65536) > 0) {
    static const char *keys[] = {"model name", "cpu model", "Hardware", "Model", "Processor"};
    for (size_t k = 0; k < PO__ARRAY_LEN(keys) && !hw->cpu_model[0]; k++) {
      size_t kl = strlen(keys[k]);
      for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (!strncmp(line, keys[k], kl) &&
            (line[kl] == '\t' || line[kl] == ' ' || line[kl] == ':')) {
          char *colon = strchr(line, ':');
          if (colon && (!nl || colon < nl)) {
            colon++;
            while (*colon == ' ' || *colon == '\t') colon++;
            size_t l = nl ? (size_t)(nl - colon) : strlen(colon);
            if (l >= sizeof hw->cpu_model) l = sizeof hw->cpu_model - 1;
            memcpy(hw->cpu_model, colon, l);
            hw->cpu_model[l] = '\0';
            break;
          }
        }
        line = nl ? nl + 1 : NULL;
      }
    }
  }
  free(buf);
  return 0;
}

/* The machine's names (not from the probe root: a fake /proc has no hostname). */
static void host_names(po_hardware *hw) {
  if (gethostname(hw->hostname, sizeof hw->hostname - 1) != 0) hw->hostname[0] = '\0';
  struct utsname u;
  if (uname(&u) != 0) return;
  po__strlcpy(hw->os, u.sysname, sizeof hw->os);
  po__strlcpy(hw->kernel, u.release, sizeof hw->kernel);
  po__strlcpy(hw->machine, u.machine, sizeof hw->machine);
}

/* The limits in force and the file each one was read from. */
/* Memory and cpu limits: the probe's view of the limiting cgroup, then the tightest anywhere up
 * the tree. Returns PO_ENOMEM when a scratch buffer cannot be had (the facts stay partial). */
static int limits(const char *root, int64_t budget, po_hardware *hw) {
  po_probe *p = NULL;
  int rc = po__probe_create_at(root, &p);
  if (rc == PO_ENOMEM) return rc;
  if (rc == 0) {
    po__probe_set_memory_budget(p, budget);
    po_system_sample *s = po__malloc(sizeof *s);
    rc = s ? po_probe_system(p, s) : PO_ENOMEM;
    if (rc == 0) {
      if (hw->cores_online <= 0) hw->cores_online = (int)(s->cpu_count + s->cpus_dropped);
      hw->memory_total_bytes = s->mem_total_bytes;
      hw->cgroup_memory_max_bytes = s->cgroup_memory_max_bytes;
      hw->cgroup_memory_high_bytes = s->cgroup_memory_high_bytes;
      hw->cgroup_swap_max_bytes = s->cgroup_swap_max_bytes;
      hw->memory_limit_bytes = s->memory_limit_bytes;
      hw->memory_limit_source = s->limit_source;
      hw->limit_from_cgroup =
          s->limit_source == PO_LIMIT_CGROUP || s->limit_source == PO_LIMIT_CGROUP_HIGH;
    }
    free(s);
    po_probe_destroy(p);
    if (rc == PO_ENOMEM) return rc;
  }
  hw->memory_budget_bytes = budget > 0 ? (uint64_t)budget : 0;
  po__cgroup *cg = po__malloc(sizeof *cg);
  if (!cg) return PO_ENOMEM;
  po__cgroup_discover(root, cg);
  hw->cgroup_version = cg->version;
  /* The tightest anywhere up the tree (a sample reads only the limiting directory's). */
  if (cg->memory_max) hw->cgroup_memory_max_bytes = cg->memory_max;
  if (cg->memory_high) hw->cgroup_memory_high_bytes = cg->memory_high;
  hw->cgroup_swap_max_bytes = cg->swap_max;
  po__strlcpy(hw->memory_max_from, cg->memory_max_from, sizeof hw->memory_max_from);
  po__strlcpy(hw->memory_high_from, cg->memory_high_from, sizeof hw->memory_high_from);
  po__strlcpy(hw->swap_max_from, cg->swap_max_from, sizeof hw->swap_max_from);
  free(cg);
  hw->cgroup_cpu_limit = po__cgroup_cpu_limit(root, hw->cpu_limit_from, sizeof hw->cpu_limit_from);
  return 0;
}

int po__hw_facts(const char *root, const char *nvml_library, po_hardware *hw) {
  return po__hw_facts_budget(root, nvml_library, 0, hw);
}

int po__hw_facts_budget(const char *root, const char *nvml_library, int64_t budget,
                        po_hardware *hw) {
  if (!hw) return PO_EINVAL;
  memset(hw, 0, sizeof *hw);
  if (!root) root = "";
  if (!strcmp(root, "/")) root = "";
  if (strlen(root) > 255) return PO_EINVAL;
  host_names(hw);
  if (cpu_model(root, hw) != 0) return PO_ENOMEM;

  char buf[4096];
  if (po__read_rel_text(root, "/sys/devices/system/cpu/online", buf, sizeof buf) > 0)
    hw->cores_online = po__parse_cpu_list(buf);

  int rc = limits(root, budget, hw);
  if (rc == PO_ENOMEM) return rc;
  {
    char rel[] = "/proc/self/status";
    char status[8192];
    po__status_parsed st;
    ssize_t n = po__read_rel_text(root, rel, status, sizeof status);
    if (n > 0 && po__parse_status(status, (size_t)n, &st) == 0 && st.cpus_allowed_list[0])
      hw->cores_allowed = po__parse_cpu_list(st.cpus_allowed_list);
  }
  if (hw->cores_allowed <= 0 && !root[0]) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) hw->cores_allowed = CPU_COUNT(&set);
  }
  if (hw->cores_allowed <= 0) hw->cores_allowed = hw->cores_online;
  if (hw->cores_online < 0) hw->cores_online = 0;
  if (!nvml_library) {
    po__strlcpy(hw->gpu_reason, "GPUs not queried", sizeof hw->gpu_reason);
    return 0;
  }
  po__nvml *n = NULL;
  rc = po__nvml_create(nvml_library, &n, hw->gpu_reason, sizeof hw->gpu_reason);
  if (rc) return rc == PO_ENOMEM ? rc : 0; /* no GPU is a normal state, no memory is not */
  po_gpu_info *devs = po__calloc(PO_GPU_MAX_DEVICES, sizeof *devs);
  if (!devs) {
    po__nvml_destroy(n);
    return PO_ENOMEM;
  }
  size_t count = 0, dropped = 0;
  if (po__nvml_query(n, devs, PO_GPU_MAX_DEVICES, &count, &dropped, hw->gpu_reason,
                     sizeof hw->gpu_reason) == 0) {
    hw->gpu_count = count + dropped;
    hw->gpus_dropped = dropped;
    size_t keep = count < PO__ARRAY_LEN(hw->gpus) ? count : PO__ARRAY_LEN(hw->gpus);
    memcpy(hw->gpus, devs, keep * sizeof devs[0]);
  }
  free(devs);
  po__nvml_destroy(n);
  return 0;
}

/* ---- the public face: the seed's measure_gpu_usage and hardware facts ------------------ */

/* cfg NULL: defaults with the two probe keys taken from the environment, without failing on an
 * unrelated bad PERFOPT_* variable. */
void po__probe_config(const po_config *cfg, po_config *out) {
  if (cfg) {
    *out = *cfg;
    return;
  }
  po_config_defaults(out);
  const char *v = getenv("PERFOPT_NVML_LIBRARY");
  if (v) po__strlcpy(out->nvml_library, v, sizeof out->nvml_library);
  v = getenv("PERFOPT_PROC_ROOT");
  if (v) po__strlcpy(out->proc_root, v, sizeof out->proc_root);
}

int po_gpu_usage(const po_config *cfg, po_gpu_info *devs, size_t max, size_t *count, char *reason,
                 size_t reason_len) {
  po_config c;
  if (!count || (max && !devs)) return PO_EINVAL;
  *count = 0;
  if (reason && reason_len) reason[0] = '\0';
  po__probe_config(cfg, &c);
  po__nvml *n = NULL;
  if (po__nvml_create(c.nvml_library, &n, reason, reason_len) != 0) return 0;
  size_t dropped = 0;
  (void)po__nvml_query(n, devs, max, count, &dropped, reason, reason_len);
  if (dropped && reason && reason_len)
    snprintf(reason, reason_len, "%zu more devices than the %zu asked for", dropped, max);
  po__nvml_destroy(n);
  return 0;
}

int po_hardware_probe(const po_config *cfg, int with_gpus, po_hardware *out) {
  po_config c;
  if (!out) return PO_EINVAL;
  po__probe_config(cfg, &c);
  return po__hw_facts_budget(c.proc_root, with_gpus ? c.nvml_library : NULL, c.memory_limit_bytes,
                             out);
}
