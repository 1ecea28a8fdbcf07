/* Merging the in-process reports of a process tree into the tree's `profile` (perfopt run).
 *
 * Each process that links libperfopt writes its own report at exit; the run report's `profile`
 * is their total: functions matched by (name, file, line) with calls and times summed, call trees
 * merged by path, threads and timeline events listed with their pid, counters summed. Every field
 * is read defensively (the files are input): a missing or mistyped one counts as absent, and
 * every output list is bounded like the profiler's own. */
#include "report/report_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 20000
#define MAX_THREADS 1024
#define MAX_EVENTS 200000

static const cJSON *array_of(const cJSON *o, const char *key) {
  const cJSON *a = po__j_get(o, key);
  return cJSON_IsArray(a) ? a : NULL;
}

static const char *str_or(const cJSON *o, const char *key, const char *dflt) {
  const char *s = po__j_getstr(o, key);
  return s ? s : dflt;
}

/* A JSON number as an integer, clamped (the input may hold any double). */
static int64_t as_i64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN + 1;
  return (int64_t)v;
}

int po__report_pid(const cJSON *report) {
  int64_t v = as_i64(po__j_getnum(po__j_get(report, "run"), "pid"));
  return v < 0 || v > INT32_MAX ? 0 : (int)v;
}

/* ---- functions ------------------------------------------------------------------------------ */

typedef struct fref {
  const cJSON *f;
  const char *name, *file;
  double line;
} fref;

static int cmp_fref(const void *a, const void *b) {
  const fref *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (!c) c = strcmp(x->file, y->file);
  if (!c) c = (x->line > y->line) - (x->line < y->line);
  return c;
}

/* The merged entry of refs[0..n) (one function in several processes). */
static void merged_function(po__jw *w, cJSON *arr, const fref *refs, size_t n, double wall_sum) {
  double calls = 0, total = 0, self = 0, mn = INFINITY, mx = 0, sum_avg = 0, sum_sq = 0;
  for (size_t i = 0; i < n; i++) {
    const cJSON *f = refs[i].f;
    double c = po__j_getnum(f, "calls"), avg = po__j_getnum(f, "avg_seconds");
    double sd = po__j_getnum(f, "stddev_seconds");
    calls += c;
    total += po__j_getnum(f, "total_seconds");
    self += po__j_getnum(f, "self_seconds");
    mn = fmin(mn, po__j_getnum(f, "min_seconds"));
    mx = fmax(mx, po__j_getnum(f, "max_seconds"));
    sum_avg += c * avg;
    sum_sq += c * (sd * sd + avg * avg);
  }
  if (n == 1) {
    cJSON *copy = cJSON_Duplicate(refs[0].f, 1);
    po__j_add(w, arr, NULL, copy);
    if (copy && !w->err) {
      cJSON_DeleteItemFromObjectCaseSensitive(copy, "percent_total");
      po__j_num(w, copy, "percent_total", wall_sum > 0 ? 100.0 * total / wall_sum : 0);
    }
    return;
  }
  double mean = calls > 0 ? sum_avg / calls : 0;
  double var = calls > 0 ? sum_sq / calls - mean * mean : 0;
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "name", refs[0].name);
  po__j_str(w, o, "file", refs[0].file);
  po__j_num(w, o, "line", refs[0].line);
  po__j_num(w, o, "calls", calls);
  po__j_num(w, o, "total_seconds", total);
  po__j_num(w, o, "self_seconds", self);
  po__j_num(w, o, "avg_seconds", mean);
  po__j_num(w, o, "min_seconds", isinf(mn) ? 0 : mn);
  po__j_num(w, o, "max_seconds", mx);
  po__j_num(w, o, "stddev_seconds", var > 0 ? sqrt(var) : 0);
  /* Percentiles of a union cannot be rebuilt from the parts' percentiles. */
  static const char *const pct[] = {"p50_seconds", "p90_seconds", "p95_seconds", "p99_seconds"};
  for (size_t k = 0; k < 4; k++) po__j_num(w, o, pct[k], NAN);
  po__j_num(w, o, "percent_total", wall_sum > 0 ? 100.0 * total / wall_sum : 0);
  po__j_num(w, o, "processes", (double)n);
}

static void merge_functions(po__jw *w, cJSON *prof, const cJSON *const *profs, size_t n,
                            double wall_sum) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++) count += (size_t)cJSON_GetArraySize(array_of(profs[i], "functions"));
  cJSON *arr = po__j_arr(w, prof, "functions");
  fref *refs = po__calloc(count ? count : 1, sizeof *refs);
  if (!refs) {
    w->err = PO_ENOMEM;
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const cJSON *f;
    cJSON_ArrayForEach(f, array_of(profs[i], "functions")) {
      if (!cJSON_IsObject(f) || k == count) continue;
      refs[k].f = f;
      refs[k].name = str_or(f, "name", "");
      refs[k].file = str_or(f, "file", "");
      refs[k].line = po__j_getnum(f, "line");
      k++;
    }
  }
  if (k) qsort(refs, k, sizeof *refs, cmp_fref);
  for (size_t i = 0; i < k && !w->err;) {
    size_t j = i + 1;
    while (j < k && cmp_fref(&refs[i], &refs[j]) == 0) j++;
    merged_function(w, arr, refs + i, j - i, wall_sum);
    i = j;
  }
  free(refs);
}

/* ---- call trees: merged by path (parent, name) ------------------------------------------------ */

typedef struct mnode {
  int64_t parent; /* merged index, -1 for a root */
  const char *name;
  double calls, total, self;
  int open_at_exit;
  int64_t first_child, next_sibling; /* for the depth-first order of the output */
  int64_t out_id;
} mnode;

typedef struct tree_merge {
  mnode *nodes;
  size_t n, cap;
  int64_t *slots; /* open addressing over (parent, name) -> node index; -1 empty */
  size_t nslots;
  uint64_t truncated;
} tree_merge;

static uint64_t key_hash(int64_t parent, const char *name) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)parent;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211ull;
  return h ^ (h >> 29);
}

/* The merged node for (parent, name), created when new; -1 when the tree is full or memory ran
 * out (w->err set for the latter). */
static int64_t node_for(po__jw *w, tree_merge *m, int64_t parent, const char *name) {
  size_t mask = m->nslots - 1;
  for (size_t s = key_hash(parent, name) & mask;; s = (s + 1) & mask) {
    int64_t i = m->slots[s];
    if (i < 0) {
      if (m->n >= MAX_NODES) {
        m->truncated++;
        return -1;
      }
      if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        mnode *nn = po__realloc(m->nodes, nc * sizeof *nn);
        if (!nn) {
          w->err = PO_ENOMEM;
          return -1;
        }
        m->nodes = nn;
        m->cap = nc;
      }
      mnode *nd = &m->nodes[m->n];
      memset(nd, 0, sizeof *nd);
      nd->parent = parent;
      nd->name = name;
      nd->first_child = nd->next_sibling = -1;
      m->slots[s] = (int64_t)m->n;
      return (int64_t)m->n++;
    }
    if (m->nodes[i].parent == parent && !strcmp(m->nodes[i].name, name)) return i;
  }
}

/* Local id -> merged index for one report's nodes, in a small open-addressing table. */
typedef struct idmap {
  int64_t *keys, *vals;
  size_t mask;
} idmap;

static int64_t idmap_get(const idmap *im, int64_t key) {
  for (size_t s = (size_t)((uint64_t)key * 11400714819323198485ull) & im->mask;;
       s = (s + 1) & im->mask) {
    if (im->keys[s] == INT64_MIN) return -2;
    if (im->keys[s] == key) return im->vals[s];
  }
}

static void idmap_put(idmap *im, int64_t key, int64_t val) {
  for (size_t s = (size_t)((uint64_t)key * 11400714819323198485ull) & im->mask;;
       s = (s + 1) & im->mask) {
    if (im->keys[s] == INT64_MIN || im->keys[s] == key) {
      im->keys[s] = key;
      im->vals[s] = val;
      return;
    }
  }
}

/* Adds one report's call tree (nodes listed parents before children) to the merge. */
static void add_tree(po__jw *w, tree_merge *m, const cJSON *tree) {
  size_t n = (size_t)cJSON_GetArraySize(tree);
  if (!n) return;
  size_t slots = 16;
  while (slots < 2 * n) slots *= 2;
  idmap im = {po__malloc(slots * sizeof(int64_t)), po__malloc(slots * sizeof(int64_t)), slots - 1};
  if (!im.keys || !im.vals) {
    w->err = PO_ENOMEM;
  } else {
    for (size_t s = 0; s < slots; s++) im.keys[s] = INT64_MIN;
  }
  const cJSON *nd;
  cJSON_ArrayForEach(nd, tree) {
    if (w->err) break;
    if (!cJSON_IsObject(nd)) continue;
    int64_t id = as_i64(po__j_getnum(nd, "id"));
    int64_t lp = as_i64(po__j_getnum(nd, "parent"));
    int64_t mp = lp < 0 ? -1 : idmap_get(&im, lp);
    if (mp == -2) continue; /* a parent listed later, or missing: not mergeable */
    int64_t mi = node_for(w, m, mp, str_or(nd, "name", ""));
    if (mi < 0) {
      idmap_put(&im, id, -2);
      continue;
    }
    mnode *x = &m->nodes[mi];
    x->calls += po__j_getnum(nd, "calls");
    x->total += po__j_getnum(nd, "total_seconds");
    x->self += po__j_getnum(nd, "self_seconds");
    x->open_at_exit |= cJSON_IsTrue(po__j_get(nd, "open_at_exit"));
    idmap_put(&im, id, mi);
  }
  free(im.keys);
  free(im.vals);
}

/* Writes the merged nodes in depth-first order (an explicit stack: no recursion on input). */
static void write_tree(po__jw *w, cJSON *prof, tree_merge *m) {
  cJSON *arr = po__j_arr(w, prof, "call_tree");
  if (!m->n || w->err) return;
  for (size_t i = m->n; i-- > 0;) { /* children lists in first-seen order */
    int64_t p = m->nodes[i].parent;
    if (p >= 0) {
      m->nodes[i].next_sibling = m->nodes[p].first_child;
      m->nodes[p].first_child = (int64_t)i;
    }
  }
  int64_t *stack = po__malloc(m->n * sizeof *stack);
  if (!stack) {
    w->err = PO_ENOMEM;
    return;
  }
  int64_t next_id = 0;
  for (size_t r = 0; r < m->n && !w->err; r++) {
    if (m->nodes[r].parent >= 0) continue;
    size_t top = 0;
    stack[top++] = (int64_t)r;
    while (top && !w->err) {
      mnode *x = &m->nodes[stack[--top]];
      x->out_id = next_id++;
      cJSON *o = po__j_obj(w, arr, NULL);
      po__j_num(w, o, "id", (double)x->out_id);
      po__j_num(w, o, "parent", x->parent < 0 ? -1.0 : (double)m->nodes[x->parent].out_id);
      po__j_str(w, o, "name", x->name);
      po__j_num(w, o, "calls", x->calls);
      po__j_num(w, o, "total_seconds", x->total);
      po__j_num(w, o, "self_seconds", x->self);
      if (x->open_at_exit) po__j_bool(w, o, "open_at_exit", 1);
      /* push children reversed so the first child comes out first */
      size_t base = top;
      for (int64_t c = x->first_child; c >= 0; c = m->nodes[c].next_sibling) stack[top++] = c;
      for (size_t a = base, b = top; a + 1 < b; a++, b--) {
        int64_t tmp = stack[a];
        stack[a] = stack[b - 1];
        stack[b - 1] = tmp;
      }
    }
  }
  free(stack);
}

void po__report_merge_call_trees(po__jw *w, cJSON *prof, const cJSON *const *profs, size_t n) {
  tree_merge m = {0};
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += (size_t)cJSON_GetArraySize(array_of(profs[i], "call_tree"));
  if (total > MAX_NODES) total = MAX_NODES;
  m.nslots = 16;
  while (m.nslots < 2 * total) m.nslots *= 2;
  m.slots = po__malloc(m.nslots * sizeof *m.slots);
  if (!m.slots) {
    w->err = PO_ENOMEM;
    return;
  }
  for (size_t s = 0; s < m.nslots; s++) m.slots[s] = -1;
  double truncated = 0;
  for (size_t i = 0; i < n && !w->err; i++) {
    add_tree(w, &m, array_of(profs[i], "call_tree"));
    truncated += po__j_getnum(profs[i], "call_tree_truncated");
  }
  write_tree(w, prof, &m);
  po__j_num(w, prof, "call_tree_truncated", truncated + (double)m.truncated);
  free(m.nodes);
  free(m.slots);
}

/* ---- threads, counters, timeline ---------------------------------------------------------------- */

/* Appends a copy of each element of `from` (objects only) with "pid" added, up to *room. */
static double append_with_pid(po__jw *w, cJSON *to, const cJSON *from, int pid, size_t *room) {
  double dropped = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, from) {
    if (w->err) break;
    if (!cJSON_IsObject(e)) continue;
    if (!*room) {
      dropped++;
      continue;
    }
    cJSON *copy = cJSON_Duplicate(e, 1);
    po__j_add(w, to, NULL, copy);
    if (copy && !w->err && !cJSON_HasObjectItem(copy, "pid")) po__j_num(w, copy, "pid", pid);
    (*room)--;
  }
  return dropped;
}

static void merge_counters(po__jw *w, cJSON *prof, const cJSON *const *profs, size_t n) {
  static const char *const keys[] = {"truncated_names", "null_names",      "unmatched_ends",
                                     "open_at_exit",    "depth_overflows", "site_overflows"};
  cJSON *o = po__j_obj(w, prof, "counters");
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    double v = 0;
    for (size_t i = 0; i < n; i++) v += po__j_getnum(po__j_get(profs[i], "counters"), keys[k]);
    po__j_num(w, o, keys[k], v);
  }
}

static void merge_lists(po__jw *w, cJSON *prof, const cJSON *const *profs, const int *pids,
                        size_t n) {
  cJSON *threads = po__j_arr(w, prof, "threads");
  size_t room = MAX_THREADS;
  double not_listed = 0;
  for (size_t i = 0; i < n; i++) {
    not_listed += append_with_pid(w, threads, array_of(profs[i], "threads"), pids[i], &room);
    not_listed += po__j_getnum(profs[i], "threads_not_listed");
  }
  po__j_num(w, prof, "threads_not_listed", not_listed);
  merge_counters(w, prof, profs, n);
  cJSON *tl = po__j_obj(w, prof, "timeline");
  int enabled = 0;
  double not_exported = 0;
  cJSON *events = po__j_arr(w, tl, "events");
  room = MAX_EVENTS;
  for (size_t i = 0; i < n; i++) {
    const cJSON *t = po__j_get(profs[i], "timeline");
    enabled |= cJSON_IsTrue(po__j_get(t, "enabled"));
    not_exported += append_with_pid(w, events, array_of(t, "events"), pids[i], &room);
    not_exported += po__j_getnum(t, "not_exported_events");
  }
  po__j_bool(w, tl, "enabled", enabled);
  po__j_num(w, tl, "not_exported_events", not_exported);
}

/* ---- the merged profile ------------------------------------------------------------------------ */

void po__report_merge_profiles(po__jw *w, cJSON *root, const cJSON *const *reports, size_t n) {
  const cJSON **profs = po__calloc(n ? n : 1, sizeof *profs);
  int *pids = po__calloc(n ? n : 1, sizeof *pids);
  if (!profs || !pids) {
    w->err = PO_ENOMEM;
    free(profs);
    free(pids);
    return;
  }
  double wall = 0, wall_sum = 0, profiled = 0, dropped = 0, probe = 0, tick = 0;
  for (size_t i = 0; i < n; i++) {
    profs[i] = po__j_get(reports[i], "profile");
    pids[i] = po__report_pid(reports[i]);
    double pw = po__j_getnum(profs[i], "wall_seconds");
    wall = fmax(wall, pw);
    wall_sum += pw;
    profiled += po__j_getnum(profs[i], "profiled_seconds");
    dropped += po__j_getnum(profs[i], "dropped_events");
    if (probe == 0) probe = po__j_getnum(profs[i], "probe_cost_ns");
    if (tick == 0) tick = po__j_getnum(profs[i], "ns_per_tick");
  }
  cJSON *prof = po__j_obj(w, root, "profile");
  po__j_num(w, prof, "wall_seconds", wall);
  po__j_num(w, prof, "profiled_seconds", profiled);
  po__j_num(w, prof, "dropped_events", dropped);
  po__j_num(w, prof, "probe_cost_ns", probe);
  po__j_num(w, prof, "ns_per_tick", tick);
  po__j_num(w, prof, "processes", (double)n);
  merge_functions(w, prof, profs, n, wall_sum);
  po__report_merge_call_trees(w, prof, profs, n);
  merge_lists(w, prof, profs, pids, n);
  free(profs);
  free(pids);
}

/* ---- per-process entries ----------------------------------------------------------------------- */

void po__report_inproc_entries(po__jw *w, cJSON *arr, const cJSON *const *reports, size_t n,
                               size_t max) {
  for (size_t i = 0; i < n && i < max && !w->err; i++) {
    const cJSON *rep = reports[i], *run = po__j_get(rep, "run");
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_num(w, o, "pid", po__report_pid(rep));
    const cJSON *argv = array_of(run, "argv");
    po__j_add(w, o, "argv", argv ? cJSON_Duplicate(argv, 1) : cJSON_CreateArray());
    po__j_num(w, o, "start_unix_seconds", po__j_getnum(run, "start_unix_seconds"));
    po__j_num(w, o, "wall_seconds", po__j_getnum(run, "wall_seconds"));
    const cJSON *prof = po__j_get(rep, "profile");
    cJSON *p = cJSON_IsObject(prof) ? cJSON_Duplicate(prof, 1) : cJSON_CreateObject();
    if (p) { /* the call tree and the timeline are in the merged profile, with this pid */
      cJSON_DeleteItemFromObjectCaseSensitive(p, "call_tree");
      cJSON_DeleteItemFromObjectCaseSensitive(p, "timeline");
    }
    po__j_add(w, o, "profile", p);
    static const char *const keep[] = {"memory", "cache"};
    for (size_t k = 0; k < 2; k++) {
      const cJSON *sec = po__j_get(rep, keep[k]);
      if (cJSON_IsObject(sec)) po__j_add(w, o, keep[k], cJSON_Duplicate(sec, 1));
    }
  }
}
