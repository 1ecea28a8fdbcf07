/* The cache's ties to the optimizer: the registry of attached caches, ENABLE_CACHING, the
 * memory-pressure listener, targeted clearing by resource type, and the report's cache section. */
#include "cache/cache_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTACHED 64

struct po_cache_registry {
  pthread_mutex_t lock;
  po_cache *caches[MAX_ATTACHED];
  size_t n;
  int hooks_registered; /* pressure listener and cleanup handlers */
  struct type_ctx {
    struct po_cache_registry *reg;
    po_resource_type type;
  } type_ctx[PO_CACHE_TYPE_COUNT];
};

int po__cache_optimizer_init(po_optimizer *opt) {
  struct po_cache_registry *r = calloc(1, sizeof(*r));
  if (!r) return PO_ENOMEM;
  pthread_mutex_init(&r->lock, NULL);
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) {
    r->type_ctx[t].reg = r;
    r->type_ctx[t].type = (po_resource_type)t;
  }
  opt->caches = r;
  return 0;
}

/* Runs after the monitor's fini: its listeners and handlers are gone. Caches still attached
 * stay usable on their own. */
void po__cache_optimizer_fini(po_optimizer *opt) {
  struct po_cache_registry *r = opt->caches;
  if (!r) return;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) {
    po_cache *c = r->caches[i];
    pthread_mutex_lock(&c->lock);
    c->opt = NULL;
    c->opt_enabled = 1;
    po__cache_apply_enabled(c);
    pthread_mutex_unlock(&c->lock);
  }
  r->n = 0;
  pthread_mutex_unlock(&r->lock);
  pthread_mutex_destroy(&r->lock);
  free(r);
  opt->caches = NULL;
}

double po__cache_shrink_fraction(po_cache *c) {
  pthread_mutex_lock(&c->lock);
  double f = c->opt ? c->opt->cfg.cache_shrink_fraction : 0.5;
  pthread_mutex_unlock(&c->lock);
  if (!(f >= 0.0 && f <= 1.0)) f = 0.5;
  return f;
}

/* Pressure listener: memory metrics shrink every attached cache (aggressive: to half of the
 * configured fraction); cpu and disk pressure leave caches alone. */
static int64_t on_pressure(const po_pressure_event *ev, void *user) {
  struct po_cache_registry *r = user;
  if (ev->metric != PO_METRIC_MEMORY && ev->metric != PO_METRIC_GPU_MEMORY &&
      ev->metric != PO_METRIC_MANUAL)
    return 0;
  const char *reason = po_metric_name(ev->metric);
  uint64_t freed = 0;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) {
    po_cache *c = r->caches[i];
    double f = po__cache_shrink_fraction(c);
    if (ev->level == PO_CLEANUP_AGGRESSIVE) f *= 0.5;
    freed += po__cache_shrink_typed(c, (uint64_t)((double)c->budget * f), reason);
  }
  pthread_mutex_unlock(&r->lock);
  return freed > INT64_MAX ? INT64_MAX : (int64_t)freed;
}

/* Cleanup handler for po_clear_resource(type) / po_optimize_memory: clears that type. */
static void on_cleanup(po_cleanup_level level, void *user) {
  struct type_ctx *tc = user;
  struct po_cache_registry *r = tc->reg;
  (void)level;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) po_cache_clear_type(r->caches[i], tc->type);
  pthread_mutex_unlock(&r->lock);
}

static void register_hooks(po_optimizer *opt, struct po_cache_registry *r) {
  if (r->hooks_registered) return;
  r->hooks_registered = 1;
  if (po_monitor_add_pressure_listener(opt, "cache", on_pressure, r, NULL))
    po__log(1, "cache: could not register the memory-pressure listener");
  /* handlers only for targeted clearing: a normal cleanup shrinks through the listener */
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) {
    if (po_cleanup_register(opt, "cache", (po_resource_type)t, 100, PO_CLEANUP_AGGRESSIVE,
                            on_cleanup, &r->type_ctx[t], NULL))
      po__log(1, "cache: could not register the %s cleanup handler", po_resource_type_name(t));
  }
}

int po_cache_attach(po_optimizer *opt, po_cache *c) {
  if (!opt || !c || !opt->caches) return PO_EINVAL;
  struct po_cache_registry *r = opt->caches;
  pthread_mutex_lock(&r->lock);
  int rc = 0;
  pthread_mutex_lock(&c->lock);
  if (c->opt)
    rc = PO_EBUSY;
  else if (r->n >= MAX_ATTACHED)
    rc = PO_ENOMEM;
  if (!rc) {
    c->opt = opt;
    c->opt_enabled = opt->cfg.enable_caching != 0;
    po__cache_apply_enabled(c);
    r->caches[r->n++] = c;
  }
  pthread_mutex_unlock(&c->lock);
  if (!rc) register_hooks(opt, r);
  pthread_mutex_unlock(&r->lock);
  return rc;
}

void po_cache_detach(po_cache *c) {
  if (!c) return;
  pthread_mutex_lock(&c->lock);
  po_optimizer *opt = c->opt;
  pthread_mutex_unlock(&c->lock);
  if (!opt || !opt->caches) return;
  struct po_cache_registry *r = opt->caches;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n; i++) {
    if (r->caches[i] == c) {
      r->caches[i] = r->caches[--r->n];
      break;
    }
  }
  pthread_mutex_lock(&c->lock);
  c->opt = NULL;
  c->opt_enabled = 1;
  po__cache_apply_enabled(c);
  pthread_mutex_unlock(&c->lock);
  pthread_mutex_unlock(&r->lock);
}

static int add_u64(cJSON *o, const char *k, uint64_t v) {
  return cJSON_AddNumberToObject(o, k, (double)v) ? 0 : PO_ENOMEM;
}

static int cache_json(po_cache *c, cJSON *arr) {
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  cJSON *o = cJSON_CreateObject();
  if (!o) return PO_ENOMEM;
  cJSON_AddItemToArray(arr, o);
  int rc = 0;
  pthread_mutex_lock(&c->lock);
  char name[64];
  memcpy(name, c->name, sizeof(name));
  pthread_mutex_unlock(&c->lock);
  if (!cJSON_AddStringToObject(o, "name", name) ||
      !cJSON_AddStringToObject(o, "policy", po_cache_policy_name(c->policy)) ||
      !cJSON_AddBoolToObject(o, "enabled", po_cache_enabled(c)))
    return PO_ENOMEM;
  rc |= add_u64(o, "budget_bytes", st.budget_bytes);
  rc |= add_u64(o, "bytes", st.bytes);
  rc |= add_u64(o, "entries", st.entries);
  rc |= add_u64(o, "hits", st.hits);
  rc |= add_u64(o, "misses", st.misses);
  rc |= add_u64(o, "evictions", st.evictions);
  rc |= add_u64(o, "removals", st.removals);
  rc |= add_u64(o, "expirations", st.expirations);
  rc |= add_u64(o, "loads", st.loads);
  rc |= add_u64(o, "load_failures", st.load_failures);
  rc |= add_u64(o, "metadata_bytes", st.metadata_bytes);
  if (rc || !cJSON_AddNumberToObject(o, "hit_ratio", st.hit_ratio)) return PO_ENOMEM;
  cJSON *pt = cJSON_AddArrayToObject(o, "per_type");
  if (!pt) return PO_ENOMEM;
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) {
    const po_cache_type_stats *ts = &st.per_type[t];
    cJSON *to = cJSON_CreateObject();
    if (!to) return PO_ENOMEM;
    cJSON_AddItemToArray(pt, to);
    if (!cJSON_AddStringToObject(to, "type", po_resource_type_name(t))) return PO_ENOMEM;
    rc |= add_u64(to, "hits", ts->hits);
    rc |= add_u64(to, "misses", ts->misses);
    rc |= add_u64(to, "evictions", ts->evictions);
    rc |= add_u64(to, "bytes", ts->bytes);
    rc |= add_u64(to, "entries", ts->entries);
    if (rc) return PO_ENOMEM;
  }
  struct po__shrink_rec recs[PO__SHRINKS];
  size_t n = po__cache_shrinks(c, recs, PO__SHRINKS);
  cJSON *sh = cJSON_AddArrayToObject(o, "shrinks");
  if (!sh) return PO_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    cJSON *so = cJSON_CreateObject();
    if (!so) return PO_ENOMEM;
    cJSON_AddItemToArray(sh, so);
    if (!cJSON_AddNumberToObject(so, "t_seconds", recs[i].t_seconds) ||
        add_u64(so, "from_bytes", recs[i].from_bytes) ||
        add_u64(so, "to_bytes", recs[i].to_bytes) ||
        !cJSON_AddStringToObject(so, "reason", recs[i].reason))
      return PO_ENOMEM;
  }
  return add_u64(o, "shrinks_dropped", st.shrinks_dropped);
}

int po__report_add_cache(po_optimizer *opt, cJSON *root) {
  cJSON *sec = cJSON_AddObjectToObject(root, "cache");
  if (!sec) return PO_ENOMEM;
  cJSON *arr = cJSON_AddArrayToObject(sec, "caches");
  if (!arr) return PO_ENOMEM;
  if (!opt || !opt->caches) return 0;
  struct po_cache_registry *r = opt->caches;
  int rc = 0;
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < r->n && !rc; i++) rc = cache_json(r->caches[i], arr);
  pthread_mutex_unlock(&r->lock);
  return rc;
}
