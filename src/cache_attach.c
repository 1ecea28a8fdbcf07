/* Caches attached to an optimizer: the registry, ENABLE_CACHING and CACHE_SHRINK_FRACTION, the
 * memory-pressure listener and the cleanup handlers for targeted clearing, and the snapshots for
 * the report. The cache itself knows only an opaque owner (cache/cache.h). */
#include "optimizer.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ATTACHED 64

struct po__cache_registry {
  pthread_mutex_t lock;
  po_optimizer *opt;
  po_cache *caches[MAX_ATTACHED];
  size_t n;
  int hooks_registered; /* pressure listener and cleanup handlers */
  struct type_ctx {
    struct po__cache_registry *reg;
    po_resource_type type;
  } type_ctx[PO_CACHE_TYPE_COUNT];
};

int po__cache_registry_create(po_optimizer *opt) {
  struct po__cache_registry *r = po__calloc(1, sizeof(*r));
  if (!r) return PO_ENOMEM;
  pthread_mutex_init(&r->lock, NULL);
  r->opt = opt;
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) {
    r->type_ctx[t].reg = r;
    r->type_ctx[t].type = (po_resource_type)t;
  }
  opt->caches = r;
  return 0;
}

/* Runs after the sampler is gone (no firing can reach the listener). Caches still attached stay
 * usable on their own. */
void po__cache_registry_destroy(po_optimizer *opt) {
  struct po__cache_registry *r = opt->caches;
  if (!r) return;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) po__cache_set_owner(r->caches[i], NULL, NULL, 1, 0.5);
  r->n = 0;
  pthread_mutex_unlock(&r->lock);
  pthread_mutex_destroy(&r->lock);
  free(r);
  opt->caches = NULL;
}

/* Pressure listener: memory metrics shrink every attached cache to the configured fraction of
 * what it holds, or of its budget when that is smaller (aggressive: half of that fraction); cpu
 * and disk pressure, and the autopilot's warn grade, leave caches alone. */
static int64_t on_pressure(const po_pressure_event *ev, void *user) {
  struct po__cache_registry *r = user;
  if (ev->metric != PO_METRIC_MEMORY && ev->metric != PO_METRIC_GPU_MEMORY &&
      ev->metric != PO_METRIC_MANUAL)
    return 0;
  if (ev->grade == PO_GRADE_WARN) return 0; /* a heads-up: nothing is freed yet */
  const char *reason = po_metric_name(ev->metric);
  double f = r->opt->cfg.cache_shrink_fraction;
  if (!(f >= 0.0 && f <= 1.0)) f = 0.5;
  if (ev->level == PO_CLEANUP_AGGRESSIVE) f *= 0.5;
  uint64_t freed = 0;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) {
    po_cache_stats st;
    po_cache_get_stats(r->caches[i], &st);
    /* Of what it holds: a cache far below its budget still gives memory back. */
    uint64_t base = st.bytes < st.budget_bytes ? st.bytes : st.budget_bytes;
    freed += po__cache_shrink_typed(r->caches[i], (uint64_t)((double)base * f), reason);
  }
  pthread_mutex_unlock(&r->lock);
  return freed > INT64_MAX ? INT64_MAX : (int64_t)freed;
}

/* Cleanup handler for po_clear_resource(type) / po_optimize_memory: clears that type. */
static void on_cleanup(po_cleanup_level level, void *user) {
  struct type_ctx *tc = user;
  struct po__cache_registry *r = tc->reg;
  (void)level;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) po_cache_clear_type(r->caches[i], tc->type);
  pthread_mutex_unlock(&r->lock);
}

/* Registry lock held. */
static void register_hooks(struct po__cache_registry *r) {
  if (r->hooks_registered) return;
  r->hooks_registered = 1;
  if (po__memory_add_listener(r->opt->memory, "cache", on_pressure, r, NULL))
    po__log(1, "cache: could not register the memory-pressure listener");
  /* handlers only for targeted clearing: a normal cleanup shrinks through the listener */
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) {
    if (po__memory_register(r->opt->memory, "cache", (po_resource_type)t, 100,
                            PO_CLEANUP_AGGRESSIVE, on_cleanup, &r->type_ctx[t], NULL))
      po__log(1, "cache: could not register the %s cleanup handler", po_resource_type_name(t));
  }
}

/* The cache is being destroyed: forget it. */
static void on_release(po_cache *c, void *owner) {
  struct po__cache_registry *r = owner;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++)
    if (r->caches[i] == c) {
      r->caches[i] = r->caches[--r->n];
      break;
    }
  pthread_mutex_unlock(&r->lock);
  po__cache_set_owner(c, NULL, NULL, 1, 0.5);
}

int po_cache_attach(po_optimizer *opt, po_cache *c) {
  if (!opt || !c || !opt->caches) return PO_EINVAL;
  struct po__cache_registry *r = opt->caches;
  pthread_mutex_lock(&r->lock);
  int rc = r->n >= MAX_ATTACHED ? PO_EFULL : 0;
  if (!rc && po__cache_owner(c)) rc = PO_EBUSY;
  if (!rc)
    rc = po__cache_set_owner(c, r, on_release, opt->cfg.enable_caching != 0,
                             opt->cfg.cache_shrink_fraction);
  if (!rc) {
    r->caches[r->n++] = c;
    register_hooks(r);
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}

void po_cache_detach(po_cache *c) {
  if (!c) return;
  struct po__cache_registry *r = po__cache_owner(c);
  if (r) on_release(c, r);
}

int po__cache_registry_snapshot(po_optimizer *opt, po__cache_snapshot **out, size_t *n) {
  struct po__cache_registry *r = opt->caches;
  *out = NULL;
  *n = 0;
  pthread_mutex_lock(&r->lock);
  int rc = 0;
  if (r->n) {
    *out = po__malloc(r->n * sizeof **out);
    if (!*out) rc = PO_ENOMEM;
    for (size_t i = 0; !rc && i < r->n; i++) po__cache_snapshot_take(r->caches[i], &(*out)[i]);
    if (!rc) *n = r->n;
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}
