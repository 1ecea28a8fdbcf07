/* Placeholder for the monitor issue: replaced by src/sampler.c, src/memory.c, src/linux/. */
#include "optimizer.h"

#include <cjson/cJSON.h>

int po__monitor_optimizer_init(po_optimizer *opt) {
  (void)opt;
  return 0;
}
void po__monitor_optimizer_fini(po_optimizer *opt) { (void)opt; }
int po__report_add_memory(po_optimizer *opt, cJSON *root) {
  (void)opt;
  return cJSON_AddObjectToObject(root, "memory") ? 0 : PO_ENOMEM;
}
int po__report_add_resources(po_optimizer *opt, cJSON *root) {
  (void)opt;
  return cJSON_AddObjectToObject(root, "resources") ? 0 : PO_ENOMEM;
}
int po__report_add_gpu(po_optimizer *opt, cJSON *root) {
  (void)opt;
  return cJSON_AddObjectToObject(root, "gpu") ? 0 : PO_ENOMEM;
}
int po__report_add_host(po_optimizer *opt, cJSON *host) {
  (void)opt;
  (void)host;
  return 0;
}
