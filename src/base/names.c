/* Names of the public enums, as the report and the API documentation spell them. */
#include "base/base.h"

static const char *const metric_names[] = {"cpu", "memory", "gpu_memory", "disk_busy", "manual"};
static const char *const type_names[] = {"model", "data", "visualization", "gpu", "other"};

const char *po_metric_name(po_metric m) {
  return (int)m >= 0 && (int)m < (int)PO__ARRAY_LEN(metric_names) ? metric_names[m] : "unknown";
}

const char *po_resource_type_name(int type) {
  if (type == PO_RESOURCE_ALL) return "all";
  if (type < 0 || type >= (int)PO__ARRAY_LEN(type_names)) return "unknown";
  return type_names[type];
}

static const char *const limit_names[] = {"system", "cgroup", "cgroup_high", "config"};

const char *po_limit_source_name(po_limit_source s) {
  return (int)s >= 0 && (int)s < (int)PO__ARRAY_LEN(limit_names) ? limit_names[s] : "unknown";
}

static const char *const grade_names[] = {"none", "warn", "normal", "aggressive", "emergency"};

const char *po_grade_name(po_grade g) {
  return (int)g >= 0 && (int)g < (int)PO__ARRAY_LEN(grade_names) ? grade_names[g] : "unknown";
}
