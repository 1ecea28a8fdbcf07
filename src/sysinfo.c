/* The system resource report (`perfopt sysinfo`, the seed's system resource report): hardware,
 * one system sample over a window, the thresholds in force and the GPUs with their targets, as a
 * report built by the same serializers and keys as a run's report. */
#include "base/base.h"
#include "platform.h"
#include "report/report_build.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct readings {
  po_hardware hw;
  po_system_sample sys;
  po_thresholds th;
  po_gpu_target targets[8];
  double gpu_threshold[8];
} readings;

/* Two system samples window_ms apart (NVML start-up doubles as part of the CPU window). */
static int read_all(const po_config *cfg, int window_ms, readings *r) {
  po_probe *p = NULL;
  int rc = po_probe_create(cfg, &p);
  if (rc) return rc;
  /* A source the probe cannot read is reported as missing; only a failed allocation fails. */
  rc = po_probe_system(p, &r->sys) == PO_ENOMEM ? PO_ENOMEM : 0;
  if (!rc) rc = po_hardware_probe(cfg, 1, &r->hw);
  if (!rc && window_ms > 0) usleep((useconds_t)window_ms * 1000);
  if (!rc && po_probe_system(p, &r->sys) == PO_ENOMEM) rc = PO_ENOMEM;
  po_probe_destroy(p);
  if (!rc) rc = po_thresholds_resolve(cfg, &r->hw, &r->th);
  if (rc) return rc;
  size_t n = r->hw.gpu_count < 8 ? r->hw.gpu_count : 8;
  po_gpu_optimal_targets(r->hw.gpus, n, r->targets);
  for (size_t i = 0; i < n; i++)
    r->gpu_threshold[i] = cfg->gpu_memory_threshold > 0 ? cfg->gpu_memory_threshold
                                                        : r->targets[i].memory_threshold_ratio;
  return 0;
}

int po_report_create_sysinfo(const po_config *cfg, int window_ms, po_report **out) {
  if (!out || window_ms < 0) return PO_EINVAL;
  *out = NULL;
  po_config c;
  if (cfg)
    c = *cfg;
  else
    po_config_defaults(&c);
  readings *r = po__calloc(1, sizeof *r);
  if (!r) return PO_ENOMEM;
  int rc = read_all(&c, window_ms, r);
  cJSON *root = rc ? NULL : cJSON_CreateObject();
  if (!rc && !root) rc = PO_ENOMEM;
  if (!rc) {
    po__jw w = {0};
    size_t n = r->hw.gpu_count < 8 ? r->hw.gpu_count : 8;
    po__j_str(&w, root, "perfopt_version", PO_VERSION_STRING);
    po__report_host(&w, root, &r->hw);
    po__report_system(&w, root, &r->sys);
    po__report_thresholds(&w, root, &r->th, r->hw.gpus, n, r->gpu_threshold,
                          c.gpu_memory_threshold > 0);
    po__report_gpu(&w, root, r->hw.gpus, n, r->hw.gpu_count - n, r->hw.gpu_reason);
    rc = w.err;
    if (!rc && !(*out = po__report_wrap(root))) rc = PO_ENOMEM;
    if (rc && !*out) cJSON_Delete(w.err ? root : NULL);
    if (!rc && (rc = po_report_advise(*out)) != 0) { /* swap in use, memory pressure */
      po_report_destroy(*out);
      *out = NULL;
    }
  }
  free(r);
  return rc;
}
