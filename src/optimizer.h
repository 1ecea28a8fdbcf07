/* The optimizer object: private layout shared by the modules that hang state off it. */
#ifndef PO_OPTIMIZER_H
#define PO_OPTIMIZER_H

#include "perfopt.h"

#include <pthread.h>

struct cJSON;

struct po_optimizer {
  po_config cfg;
  pthread_mutex_t lock;
  double created_unix_seconds;
  /* Module state, owned by each module (NULL until that module initializes it). */
  struct po_monitor *monitor;       /* src/sampler.c and friends (monitor issue) */
  struct po_memory_state *memory;   /* src/memory.c (monitor issue) */
  struct po_cache_registry *caches; /* src/cache.c (cache issue) */
};

/* Module hooks called by po_optimizer_create / po_optimizer_destroy. Each returns 0 or PO_E*.
 * The monitor module starts its sampler here when cfg.background_monitoring is set. */
int po__monitor_optimizer_init(po_optimizer *opt);
void po__monitor_optimizer_fini(po_optimizer *opt);
int po__cache_optimizer_init(po_optimizer *opt);
void po__cache_optimizer_fini(po_optimizer *opt);

/* Report sections: each module adds its object to the report root (see docs/formats.md).
 * opt may be NULL (profile-only report): add an empty/absent-state section then. */
int po__report_add_profile(struct cJSON *root);
int po__report_add_memory(po_optimizer *opt, struct cJSON *root);
int po__report_add_resources(po_optimizer *opt, struct cJSON *root);
int po__report_add_gpu(po_optimizer *opt, struct cJSON *root);
int po__report_add_cache(po_optimizer *opt, struct cJSON *root);
/* Fills the "host" object (the monitor module adds hardware facts: CPU model, cores, cgroup). */
int po__report_add_host(po_optimizer *opt, struct cJSON *host);

#endif
