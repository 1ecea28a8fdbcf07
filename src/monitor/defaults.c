/* Hardware-aware defaults: the thresholds in force (config, or a default chosen from the machine's
 * cores and memory) and the seed's get_optimal_gpu_targets. Pure policy over hardware facts. */
#include "base/base.h"
#include "platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Headroom by size: a small device or machine has less absolute slack, so it gets a larger share
 * kept free. The same steps serve GPU memory and host memory (documented in docs/api.md). */
typedef struct {
  double below_gib;
  double ratio;
} size_step;
static const size_step memory_steps[] = {
    {4.0, 0.70}, {8.0, 0.75}, {16.0, 0.80}, {64.0, 0.85}, {1e300, 0.90}};

static double memory_ratio_for(uint64_t bytes, double *below) {
  double gib = (double)bytes / GIB;
  for (size_t i = 0; i < PO__ARRAY_LEN(memory_steps); i++)
    if (gib < memory_steps[i].below_gib) {
      *below = memory_steps[i].below_gib;
      return memory_steps[i].ratio;
    }
  *below = 1e300;
  return 0.90;
}

static void describe_size(char *dst, size_t len, const char *what, uint64_t bytes, double below,
                          double ratio) {
  if (below > 1e299)
    snprintf(dst, len, "hardware default: %s %.1f GiB (>= 64 GiB) -> %.2f", what,
             (double)bytes / GIB, ratio);
  else
    snprintf(dst, len, "hardware default: %s %.1f GiB (< %.0f GiB) -> %.2f", what,
             (double)bytes / GIB, below, ratio);
}

int po_gpu_optimal_targets(const po_gpu_info *devs, size_t n, po_gpu_target *out) {
  if ((n && (!devs || !out))) return PO_EINVAL;
  for (size_t i = 0; i < n; i++) {
    double below;
    double r = memory_ratio_for(devs[i].memory_total_bytes, &below);
    out[i].index = devs[i].index;
    out[i].memory_threshold_ratio = r;
    out[i].target_bytes = (uint64_t)((double)devs[i].memory_total_bytes * r);
    out[i].headroom_bytes = devs[i].memory_total_bytes - out[i].target_bytes;
    describe_size(out[i].why, sizeof out[i].why, "device memory", devs[i].memory_total_bytes, below,
                  r);
  }
  return 0;
}

/* A threshold the configuration gives (non-zero), with where that value came from: the
 * built-in default, the config file, the environment or the program. */
static void set_config(po_threshold *t, const po_config *c, const char *key, const char *metric,
                       double v) {
  const char *src = po_config_key_source(c, key);
  t->metric = metric;
  t->value = v;
  t->source = src ? src : "program";
  if (!strcmp(t->source, "default"))
    snprintf(t->why, sizeof t->why, "default %.2f (%s=0 picks one for this machine)", v, key);
  else if (!strcmp(t->source, "environment"))
    snprintf(t->why, sizeof t->why, "environment PERFOPT_%s: %.2f", key, v);
  else if (!strcmp(t->source, "config file"))
    snprintf(t->why, sizeof t->why, "config file (PERFOPT_CONFIG) %s: %.2f", key, v);
  else
    snprintf(t->why, sizeof t->why, "set by the program (%s): %.2f", key, v);
}

int po_thresholds_resolve(const po_config *cfg, const po_hardware *hw_in, po_thresholds *out) {
  po_config c;
  if (!out) return PO_EINVAL;
  memset(out, 0, sizeof *out);
  po__probe_config(cfg, &c);
  po_hardware *probed = NULL;
  const po_hardware *hw = hw_in;
  if (!hw) {
    probed = po__malloc(sizeof *probed);
    int rc = probed ? po__hw_facts(c.proc_root, NULL, probed) : PO_ENOMEM;
    if (rc) {
      free(probed);
      return rc;
    }
    hw = probed;
  }
  po_threshold *t;

  t = &out->t[PO_METRIC_CPU];
  if (c.cpu_threshold > 0) {
    set_config(t, &c, "CPU_THRESHOLD", "cpu", c.cpu_threshold);
  } else {
    /* Few cores: one busy core already moves the average a lot, and the job competes with
     * everything else on the box; leave more room. */
    int cores = hw->cores_allowed > 0 ? hw->cores_allowed : hw->cores_online;
    if (hw->cgroup_cpu_limit > 0 && hw->cgroup_cpu_limit < cores) cores = (int)hw->cgroup_cpu_limit;
    double v = cores <= 2 ? 0.75 : cores <= 8 ? 0.80 : cores <= 32 ? 0.85 : 0.90;
    t->metric = "cpu";
    t->value = v;
    t->source = "hardware default";
    snprintf(t->why, sizeof t->why, "hardware default: %d usable cores (%s) -> %.2f", cores,
             cores <= 2    ? "<= 2"
             : cores <= 8  ? "3-8"
             : cores <= 32 ? "9-32"
                           : "> 32",
             v);
  }

  t = &out->t[PO_METRIC_MEMORY];
  if (c.memory_threshold > 0) {
    set_config(t, &c, "MEMORY_THRESHOLD", "memory", c.memory_threshold);
  } else {
    double below;
    uint64_t lim = hw->memory_limit_bytes ? hw->memory_limit_bytes : hw->memory_total_bytes;
    double v = memory_ratio_for(lim, &below);
    t->metric = "memory";
    t->value = v;
    t->source = "hardware default";
    static const char *const what[] = {"system memory", "cgroup memory limit",
                                       "cgroup memory.high", "MEMORY_LIMIT_BYTES"};
    po_limit_source src = hw->memory_limit_source;
    describe_size(t->why, sizeof t->why,
                  (int)src >= 0 && (int)src < 4 ? what[src] : "memory limit", lim, below, v);
  }

  t = &out->t[PO_METRIC_GPU_MEMORY];
  if (c.gpu_memory_threshold > 0) {
    set_config(t, &c, "GPU_MEMORY_THRESHOLD", "gpu_memory", c.gpu_memory_threshold);
  } else {
    size_t known =
        hw->gpu_count < PO__ARRAY_LEN(hw->gpus) ? hw->gpu_count : PO__ARRAY_LEN(hw->gpus);
    uint64_t smallest = 0;
    for (size_t i = 0; i < known; i++)
      if (hw->gpus[i].memory_total_bytes &&
          (!smallest || hw->gpus[i].memory_total_bytes < smallest))
        smallest = hw->gpus[i].memory_total_bytes;
    t->metric = "gpu_memory";
    t->source = "hardware default";
    if (smallest) {
      double below;
      t->value = memory_ratio_for(smallest, &below);
      describe_size(t->why, sizeof t->why, "smallest GPU", smallest, below, t->value);
    } else {
      t->value = 0.90;
      snprintf(t->why, sizeof t->why, "hardware default: no GPU known -> %.2f", t->value);
    }
  }

  t = &out->t[PO_METRIC_DISK_BUSY];
  if (c.disk_busy_threshold > 0) {
    set_config(t, &c, "DISK_BUSY_THRESHOLD", "disk_busy", c.disk_busy_threshold);
  } else {
    t->metric = "disk_busy";
    t->value = 0.90;
    t->source = "hardware default";
    snprintf(t->why, sizeof t->why, "hardware default: any disk -> %.2f", t->value);
  }
  free(probed);
  return 0;
}
