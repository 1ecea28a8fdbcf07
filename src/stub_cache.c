/* Placeholder for the cache issue: replaced by src/cache.c. */
#include "optimizer.h"

#include <cjson/cJSON.h>

int po__cache_optimizer_init(po_optimizer *opt) {
  (void)opt;
  return 0;
}
void po__cache_optimizer_fini(po_optimizer *opt) { (void)opt; }
int po__report_add_cache(po_optimizer *opt, cJSON *root) {
  (void)opt;
  return cJSON_AddObjectToObject(root, "cache") ? 0 : PO_ENOMEM;
}
