/* The report's `cache` section, from each attached cache's snapshot. */
#include "report/report_build.h"

static void type_json(po__jw *w, cJSON *arr, int t, const po_cache_type_stats *ts) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "type", po_resource_type_name(t));
  po__j_num(w, o, "hits", (double)ts->hits);
  po__j_num(w, o, "misses", (double)ts->misses);
  po__j_num(w, o, "evictions", (double)ts->evictions);
  po__j_num(w, o, "bytes", (double)ts->bytes);
  po__j_num(w, o, "entries", (double)ts->entries);
}

static void shrinks_json(po__jw *w, cJSON *o, const po__cache_snapshot *c) {
  cJSON *sh = po__j_arr(w, o, "shrinks");
  for (size_t i = 0; i < c->nshrinks; i++) {
    cJSON *so = po__j_obj(w, sh, NULL);
    po__j_num(w, so, "t_seconds", c->shrinks[i].t_seconds);
    po__j_num(w, so, "from_bytes", (double)c->shrinks[i].from_bytes);
    po__j_num(w, so, "to_bytes", (double)c->shrinks[i].to_bytes);
    po__j_str(w, so, "reason", c->shrinks[i].reason);
  }
  po__j_num(w, o, "shrinks_dropped", (double)c->stats.shrinks_dropped);
}

static void cache_json(po__jw *w, cJSON *arr, const po__cache_snapshot *c) {
  const po_cache_stats *st = &c->stats;
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "name", c->name);
  po__j_str(w, o, "policy", po_cache_policy_name(c->policy));
  po__j_bool(w, o, "enabled", c->enabled);
  po__j_num(w, o, "budget_bytes", (double)st->budget_bytes);
  po__j_num(w, o, "bytes", (double)st->bytes);
  po__j_num(w, o, "entries", (double)st->entries);
  po__j_num(w, o, "hits", (double)st->hits);
  po__j_num(w, o, "misses", (double)st->misses);
  po__j_num(w, o, "evictions", (double)st->evictions);
  po__j_num(w, o, "removals", (double)st->removals);
  po__j_num(w, o, "expirations", (double)st->expirations);
  po__j_num(w, o, "loads", (double)st->loads);
  po__j_num(w, o, "load_failures", (double)st->load_failures);
  po__j_num(w, o, "metadata_bytes", (double)st->metadata_bytes);
  po__j_num(w, o, "hit_ratio", st->hit_ratio);
  po__j_num(w, o, "insertions", (double)st->insertions);
  po__j_num(w, o, "inserted_bytes", (double)st->inserted_bytes);
  po__j_num(w, o, "distinct_keys_inserted", (double)st->distinct_keys_inserted);
  cJSON *pt = po__j_arr(w, o, "per_type");
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) type_json(w, pt, t, &st->per_type[t]);
  shrinks_json(w, o, c);
}

void po__report_cache(po__jw *w, cJSON *root, const po__cache_snapshot *caches, size_t n) {
  cJSON *arr = po__j_arr(w, po__j_obj(w, root, "cache"), "caches");
  for (size_t i = 0; i < n && !w->err; i++) cache_json(w, arr, &caches[i]);
}
