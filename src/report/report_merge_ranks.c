/* Merging the reports of a distributed job's ranks (or of several runs) into one report: an
 * aggregate profile (functions and call tree summed by name and calling context, each function
 * with its per-rank self times and its slowest rank), the memory-heaviest rank's memory, every
 * rank's caches and GPUs tagged with their rank, each rank's RSS and CPU series side by side,
 * a `ranks` table and a `merge` summary. The advisor runs over the result; each rank's own
 * non-profile suggestions are kept, tagged with the rank. */
#include "report/advisor.h"
#include "report/report_build.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a string-keyed index (open addressing, FNV-1a) ------------------------------------------- */

typedef struct strmap {
  size_t cap; /* power of two */
  int64_t *slot; /* -1 empty, else an index into the caller's items */
} strmap;

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int map_init(strmap *m, size_t want) {
  m->cap = 64;
  while (m->cap < want * 2) m->cap *= 2;
  m->slot = po__malloc(m->cap * sizeof *m->slot);
  if (!m->slot) return PO_ENOMEM;
  for (size_t i = 0; i < m->cap; i++) m->slot[i] = -1;
  return 0;
}

/* The slot for key: an existing item for which same(item) holds, or the empty slot where
 * it belongs. */
static int64_t *map_slot(strmap *m, const char *key, int (*same)(void *, int64_t), void *ctx) {
  for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
    if (m->slot[i] < 0 || same(ctx, m->slot[i])) return &m->slot[i];
}

/* ---- functions ------------------------------------------------------------------------------ */

typedef struct agg_fn {
  const cJSON *first; /* the first rank's entry: file and line */
  const char *name;
  double calls, total, self, min, max, sumsq, p[4];
  double *rank_self; /* per rank, NaN where absent */
} agg_fn;

typedef struct fn_set {
  agg_fn *v;
  size_t n, cap, ranks;
  strmap map;
  const char *probe;
} fn_set;

static int fn_same(void *ctx, int64_t i) {
  fn_set *s = ctx;
  return strcmp(s->v[i].name, s->probe) == 0;
}

static const char *const PKEYS[4] = {"p50_seconds", "p90_seconds", "p95_seconds", "p99_seconds"};

static agg_fn *fn_get(fn_set *s, const char *name, const cJSON *f) {
  s->probe = name;
  int64_t *slot = map_slot(&s->map, name, fn_same, s);
  if (*slot >= 0) return &s->v[*slot];
  if (s->n == s->cap) return NULL; /* sized for every entry up front */
  agg_fn *a = &s->v[s->n];
  memset(a, 0, sizeof *a);
  a->rank_self = po__malloc(s->ranks * sizeof(double));
  if (!a->rank_self) return NULL;
  for (size_t r = 0; r < s->ranks; r++) a->rank_self[r] = NAN;
  a->first = f;
  a->name = name;
  a->min = INFINITY;
  a->max = -INFINITY;
  *slot = (int64_t)s->n++;
  return a;
}

static int fn_add(fn_set *s, size_t rank, const cJSON *f) {
  const char *name = po__j_getstr(f, "name");
  if (!name) return 0;
  agg_fn *a = fn_get(s, name, f);
  if (!a) return PO_ENOMEM;
  double calls = po__j_getnum(f, "calls"), avg = po__j_getnum(f, "avg_seconds");
  double sd = po__j_getnum(f, "stddev_seconds"), self = po__j_getnum(f, "self_seconds");
  a->calls += calls;
  a->total += po__j_getnum(f, "total_seconds");
  a->self += self;
  a->sumsq += calls * (sd * sd + avg * avg);
  if (cJSON_IsNumber(po__j_get(f, "min_seconds"))) a->min = fmin(a->min, po__j_getnum(f, "min_seconds"));
  a->max = fmax(a->max, po__j_getnum(f, "max_seconds"));
  for (int k = 0; k < 4; k++) a->p[k] = fmax(a->p[k], po__j_getnum(f, PKEYS[k]));
  a->rank_self[rank] = isnan(a->rank_self[rank]) ? self : a->rank_self[rank] + self;
  return 0;
}

static void fn_json(po__jw *w, cJSON *arr, const agg_fn *a, size_t ranks, double wall_sum) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "name", a->name);
  po__j_str(w, o, "file", po__j_getstr(a->first, "file"));
  po__j_num(w, o, "line", po__j_getnum(a->first, "line"));
  po__j_num(w, o, "calls", a->calls);
  po__j_num(w, o, "total_seconds", a->total);
  po__j_num(w, o, "self_seconds", a->self);
  double avg = a->calls > 0 ? a->total / a->calls : 0;
  po__j_num(w, o, "avg_seconds", avg);
  po__j_num(w, o, "min_seconds", isfinite(a->min) ? a->min : 0);
  po__j_num(w, o, "max_seconds", isfinite(a->max) ? a->max : 0);
  double var = a->calls > 0 ? a->sumsq / a->calls - avg * avg : 0;
  po__j_num(w, o, "stddev_seconds", var > 0 ? sqrt(var) : 0);
  for (int k = 0; k < 4; k++) po__j_num(w, o, PKEYS[k], a->p[k]);
  po__j_num(w, o, "percent_total", wall_sum > 0 ? 100 * a->total / wall_sum : 0);
  size_t slowest = 0;
  for (size_t r = 1; r < ranks; r++)
    if (!(a->rank_self[r] <= a->rank_self[slowest]) && !isnan(a->rank_self[r])) slowest = r;
  if (isnan(a->rank_self[slowest]))
    for (size_t r = 0; r < ranks; r++)
      if (!isnan(a->rank_self[r])) slowest = r;
  po__j_num(w, o, "slowest_rank", (double)slowest);
  po__j_num(w, o, "slowest_rank_self_seconds", a->rank_self[slowest]);
  cJSON *per = po__j_arr(w, o, "rank_self_seconds");
  for (size_t r = 0; r < ranks; r++) po__j_num(w, per, NULL, a->rank_self[r]);
}

/* ---- the merged report ------------------------------------------------------------------------ */

typedef struct merge_in {
  const cJSON *const *r;
  size_t n;
  size_t heaviest, slowest;
  double start_min;
} merge_in;

/* Sets o.key to the string v in place of its old value, keeping the member's key: nothing can
 * fail half-way (cJSON_ReplaceItemInObject ignores a failed copy of the key). */
static void replace_str(po__jw *w, cJSON *o, const char *key, const char *v) {
  cJSON *old = cJSON_GetObjectItemCaseSensitive(o, key);
  if (w->err || !o || !old || (old->type & cJSON_StringIsConst)) return;
  cJSON *s = cJSON_CreateString(v);
  if (!s) {
    w->err = PO_ENOMEM;
    return;
  }
  s->string = old->string;
  old->string = NULL;
  cJSON_ReplaceItemViaPointer(o, old, s);
}

static void dup_into(po__jw *w, cJSON *parent, const char *key, const cJSON *src) {
  if (!src || w->err) return;
  po__j_add(w, parent, key, cJSON_Duplicate(src, 1));
}

static int profile_json(po__jw *w, cJSON *root, const merge_in *in) {
  cJSON *prof = po__j_obj(w, root, "profile");
  double wall_max = 0, wall_sum = 0, profiled = 0;
  size_t nfn = 0;
  for (size_t r = 0; r < in->n; r++) {
    const cJSON *p = po__j_get(in->r[r], "profile");
    wall_max = fmax(wall_max, po__j_getnum(p, "wall_seconds"));
    wall_sum += po__j_getnum(p, "wall_seconds");
    profiled += po__j_getnum(p, "profiled_seconds");
    nfn += (size_t)cJSON_GetArraySize(po__j_get(p, "functions"));
  }
  po__j_num(w, prof, "wall_seconds", wall_max);
  po__j_num(w, prof, "profiled_seconds", profiled);
  po__j_num(w, prof, "ranks", (double)in->n);
  fn_set fs = {0};
  fs.ranks = in->n;
  fs.cap = nfn;
  fs.v = po__calloc(nfn ? nfn : 1, sizeof *fs.v);
  const cJSON **profs = po__calloc(in->n ? in->n : 1, sizeof *profs);
  int rc = fs.v && profs ? 0 : PO_ENOMEM;
  if (!rc) rc = map_init(&fs.map, nfn);
  for (size_t r = 0; r < in->n && !rc; r++) {
    const cJSON *p = po__j_get(in->r[r], "profile"), *f;
    profs[r] = p;
    cJSON_ArrayForEach(f, po__j_get(p, "functions")) {
      if (!rc) rc = fn_add(&fs, r, f);
    }
  }
  if (!rc) {
    /* Functions by name (a rank's self time each, for the slowest rank); the call tree by path
     * with the run's merger of in-process reports. */
    cJSON *funcs = po__j_arr(w, prof, "functions");
    for (size_t i = 0; i < fs.n && !w->err; i++) fn_json(w, funcs, &fs.v[i], in->n, wall_sum);
    po__report_merge_call_trees(w, prof, profs, in->n);
    po__j_arr(w, prof, "threads");
    cJSON *tl = po__j_obj(w, prof, "timeline");
    po__j_bool(w, tl, "enabled", 0);
    po__j_arr(w, tl, "events");
  }
  for (size_t i = 0; fs.v && i < fs.n; i++) free(fs.v[i].rank_self);
  free(fs.v);
  free(fs.map.slot);
  free(profs);
  return rc;
}

/* Each rank's RSS and CPU series, renamed rank<i>_<name> and shifted onto the earliest start. */
static void series_json(po__jw *w, cJSON *res, const merge_in *in) {
  static const char *const keep[] = {"process_rss_bytes", "process_cpu_ratio"};
  cJSON *arr = po__j_arr(w, res, "series");
  for (size_t r = 0; r < in->n && !w->err; r++) {
    double shift = po__j_getnum(po__j_get(in->r[r], "run"), "start_unix_seconds") - in->start_min;
    if (!isfinite(shift) || shift < 0) shift = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, po__j_get(po__j_get(in->r[r], "resources"), "series")) {
      const char *name = po__j_getstr(s, "name");
      if (!name || (strcmp(name, keep[0]) && strcmp(name, keep[1]))) continue;
      cJSON *o = cJSON_Duplicate(s, 1);
      char renamed[96];
      snprintf(renamed, sizeof renamed, "rank%zu_%s", r, name);
      replace_str(w, o, "name", renamed);
      cJSON *t;
      cJSON_ArrayForEach(t, po__j_get(o, "t_seconds")) {
        if (cJSON_IsNumber(t)) cJSON_SetNumberValue(t, t->valuedouble + shift);
      }
      po__j_add(w, arr, NULL, o);
    }
  }
}

/* Copies of each rank's entries of root.<section>.<list>, tagged with "rank"; `rename` prefixes
 * their "name" with "rank i: " when there is more than one rank. */
static void tagged_list(po__jw *w, cJSON *parent, const char *list, const merge_in *in,
                        const char *section, int rename) {
  cJSON *arr = po__j_arr(w, parent, list);
  for (size_t r = 0; r < in->n && !w->err; r++) {
    const cJSON *it;
    cJSON_ArrayForEach(it, po__j_get(po__j_get(in->r[r], section), list)) {
      cJSON *o = cJSON_Duplicate(it, 1);
      const char *name = po__j_getstr(o, "name");
      if (o && rename && name && in->n > 1) {
        char renamed[160];
        snprintf(renamed, sizeof renamed, "rank %zu: %s", r, name);
        replace_str(w, o, "name", renamed);
      }
      po__j_num(w, o, "rank", (double)r);
      po__j_add(w, arr, NULL, o);
    }
  }
}

static void rank_row(po__jw *w, cJSON *arr, const cJSON *r, size_t i) {
  const cJSON *prof = po__j_get(r, "profile"), *mem = po__j_get(r, "memory");
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_num(w, o, "rank", (double)i);
  po__j_str(w, o, "hostname", po__j_getstr(po__j_get(r, "host"), "hostname"));
  po__j_num(w, o, "pid", po__j_getnum(po__j_get(r, "run"), "pid"));
  po__j_num(w, o, "wall_seconds", po__j_getnum(po__j_get(r, "run"), "wall_seconds"));
  po__j_num(w, o, "profiled_seconds", po__j_getnum(prof, "profiled_seconds"));
  po__j_num(w, o, "peak_rss_bytes", po__j_getnum(mem, "peak_rss_bytes"));
  po__j_num(w, o, "limit_bytes", po__j_getnum(mem, "limit_bytes"));
  const cJSON *f, *top = NULL;
  cJSON_ArrayForEach(f, po__j_get(prof, "functions")) {
    if (!top || po__j_getnum(f, "self_seconds") > po__j_getnum(top, "self_seconds")) top = f;
  }
  po__j_str(w, o, "top_function", top ? po__j_getstr(top, "name") : "");
  po__j_num(w, o, "top_function_self_seconds", top ? po__j_getnum(top, "self_seconds") : 0);
  int counts[3] = {0, 0, 0};
  const cJSON *s;
  cJSON_ArrayForEach(s, po__j_get(r, "suggestions")) {
    const char *sev = po__j_getstr(s, "severity");
    counts[sev && !strcmp(sev, "critical") ? 0 : sev && !strcmp(sev, "warning") ? 1 : 2]++;
  }
  po__j_num(w, o, "suggestions_critical", counts[0]);
  po__j_num(w, o, "suggestions_warning", counts[1]);
  po__j_num(w, o, "suggestions_info", counts[2]);
}

static int is_profile_rule(const char *id) {
  return !strcmp(id, "hot-function") || !strcmp(id, "tiny-calls") || !strcmp(id, "latency-tail") ||
         !strcmp(id, "memory-near-limit") || !strcmp(id, "memory-headroom");
}

/* Each rank's own suggestions that the aggregate does not make again, tagged with the rank. */
static void rank_suggestions(po__jw *w, cJSON *root, const merge_in *in) {
  cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "suggestions");
  for (size_t r = 0; r < in->n && !w->err; r++) {
    const cJSON *s;
    cJSON_ArrayForEach(s, po__j_get(in->r[r], "suggestions")) {
      const char *id = po__j_getstr(s, "id"), *title = po__j_getstr(s, "title");
      if (!id || is_profile_rule(id)) continue;
      cJSON *o = cJSON_Duplicate(s, 1);
      char t[400];
      snprintf(t, sizeof t, "rank %zu: %s", r, title ? title : id);
      replace_str(w, o, "title", t);
      po__j_num(w, o, "rank", (double)r);
      po__j_add(w, arr, NULL, o);
    }
  }
}

static void summary(const merge_in *in0, merge_in *in) {
  *in = *in0;
  in->start_min = INFINITY;
  for (size_t r = 0; r < in->n; r++) {
    const cJSON *run = po__j_get(in->r[r], "run"), *mem = po__j_get(in->r[r], "memory");
    const cJSON *hm = po__j_get(po__j_get(in->r[in->heaviest], "memory"), "peak_rss_bytes");
    if (po__j_getnum(mem, "peak_rss_bytes") > (cJSON_IsNumber(hm) ? hm->valuedouble : -1))
      in->heaviest = r;
    if (po__j_getnum(run, "wall_seconds") >
        po__j_getnum(po__j_get(in->r[in->slowest], "run"), "wall_seconds"))
      in->slowest = r;
    double st = po__j_getnum(run, "start_unix_seconds");
    if (cJSON_IsNumber(po__j_get(run, "start_unix_seconds")) && st < in->start_min)
      in->start_min = st;
  }
  if (!isfinite(in->start_min)) in->start_min = 0;
}

static void run_json(po__jw *w, cJSON *root, const merge_in *in) {
  cJSON *run = po__j_obj(w, root, "run");
  const cJSON *r0 = po__j_get(in->r[0], "run");
  double wall = 0, end = 0;
  for (size_t r = 0; r < in->n; r++) {
    const cJSON *x = po__j_get(in->r[r], "run");
    wall = fmax(wall, po__j_getnum(x, "wall_seconds"));
    end = fmax(end, po__j_getnum(x, "report_unix_seconds"));
  }
  po__j_num(w, run, "pid", po__j_getnum(r0, "pid"));
  po__j_num(w, run, "start_unix_seconds", in->start_min);
  po__j_num(w, run, "report_unix_seconds", end);
  po__j_num(w, run, "wall_seconds", wall);
  dup_into(w, run, "argv", po__j_get(r0, "argv"));
  dup_into(w, run, "config", po__j_get(r0, "config"));
}

int po_report_merge(const po_report *const *reps, size_t n, po_report **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  if (!reps || n == 0) return PO_EINVAL;
  const cJSON **roots = po__calloc(n, sizeof *roots);
  if (!roots) return PO_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (!(roots[i] = po_report_json(reps[i]))) {
      free(roots);
      return PO_EINVAL;
    }
  merge_in in0 = {roots, n, 0, 0, 0}, in;
  summary(&in0, &in);
  po__jw w = {0};
  cJSON *root = cJSON_CreateObject();
  if (!root) w.err = PO_ENOMEM;
  po__j_str(&w, root, "perfopt_version", PO_VERSION_STRING);
  dup_into(&w, root, "host", po__j_get(roots[0], "host"));
  run_json(&w, root, &in);
  if (!w.err) {
    int rc = profile_json(&w, root, &in);
    if (rc && !w.err) w.err = rc;
  }
  const cJSON *hmem = po__j_get(roots[in.heaviest], "memory");
  cJSON *mem = hmem ? cJSON_Duplicate(hmem, 1) : cJSON_CreateObject();
  po__j_num(&w, mem, "rank", (double)in.heaviest);
  po__j_add(&w, root, "memory", mem);
  cJSON *res = po__j_obj(&w, root, "resources");
  series_json(&w, res, &in);
  po__j_arr(&w, res, "events");
  po__j_arr(&w, res, "phases");
  cJSON *gpu = po__j_obj(&w, root, "gpu");
  tagged_list(&w, gpu, "devices", &in, "gpu", 0);
  po__j_bool(&w, gpu, "available", cJSON_GetArraySize(po__j_get(gpu, "devices")) > 0);
  po__j_str(&w, gpu, "reason", "");
  tagged_list(&w, po__j_obj(&w, root, "cache"), "caches", &in, "cache", 1);
  cJSON *ranks = po__j_arr(&w, root, "ranks");
  for (size_t r = 0; r < n && !w.err; r++) rank_row(&w, ranks, roots[r], r);
  cJSON *m = po__j_obj(&w, root, "merge");
  po__j_num(&w, m, "ranks", (double)n);
  po__j_num(&w, m, "memory_heaviest_rank", (double)in.heaviest);
  po__j_num(&w, m, "slowest_rank", (double)in.slowest);
  po__j_arr(&w, root, "suggestions");
  if (!w.err) w.err = po__advise(root);
  rank_suggestions(&w, root, &in);
  if (!w.err) po__adv_order((cJSON *)po__j_get(root, "suggestions"));
  free(roots);
  if (w.err) {
    cJSON_Delete(root);
    return w.err;
  }
  *out = po__report_wrap(root);
  return *out ? 0 : PO_ENOMEM;
}
