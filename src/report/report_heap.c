/* The heap part of the report: memory.heap, from a po_heap_snapshot. Its keys are documented in
 * docs/formats.md ("memory.heap"). Sizes are bounded: top lists by the snapshot's top_sites, the
 * call tree (the allocation flame graph) by CALL_TREE_MAX nodes, the timeline by the session. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "report/report_heap.h"

#define CALL_TREE_MAX 5000u

#define CHECK(x)                \
  do {                          \
    if (!(x)) return PO_ENOMEM; \
  } while (0)

static int num(cJSON *o, const char *k, double v) {
  return cJSON_AddNumberToObject(o, k, v) ? 0 : PO_ENOMEM;
}

static int str_or_null(cJSON *o, const char *k, const char *v) {
  return (v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)) ? 0 : PO_ENOMEM;
}

static int hex(cJSON *o, const char *k, uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)v);
  return cJSON_AddStringToObject(o, k, buf) ? 0 : PO_ENOMEM;
}

/* A frame's display name: the function, else module+offset, else the address. */
static void frame_name(const po_heap_frame *f, char *buf, size_t len) {
  if (f->function) {
    snprintf(buf, len, "%s", f->function);
  } else if (f->module) {
    const char *base = strrchr(f->module, '/');
    snprintf(buf, len, "%s+0x%llx", base ? base + 1 : f->module,
             (unsigned long long)f->module_offset);
  } else {
    snprintf(buf, len, "0x%llx", (unsigned long long)f->address);
  }
}

static int add_frame(cJSON *arr, const po_heap_frame *f) {
  cJSON *o = cJSON_CreateObject();
  CHECK(o && cJSON_AddItemToArray(arr, o));
  int rc = str_or_null(o, "function", f->function);
  if (!rc) rc = str_or_null(o, "file", f->file);
  if (!rc) rc = num(o, "line", f->line);
  if (!rc) rc = str_or_null(o, "module", f->module);
  if (!rc) rc = hex(o, "address", f->address);
  if (!rc && f->module) rc = hex(o, "module_offset", f->module_offset);
  return rc;
}

/* "name" is the innermost frame with file:line when known, for tables. */
static int add_site(cJSON *arr, const po_heap_site_info *s, int32_t pid) {
  cJSON *o = cJSON_CreateObject();
  CHECK(o && cJSON_AddItemToArray(arr, o));
  char name[512] = "(unknown)";
  if (s->frame_count) {
    const po_heap_frame *f = &s->frames[0];
    size_t n = 0;
    frame_name(f, name, sizeof name);
    n = strlen(name);
    if (f->file && n < sizeof name)
      snprintf(name + n, sizeof name - n, " (%s:%d)",
               strrchr(f->file, '/') ? strrchr(f->file, '/') + 1 : f->file, f->line);
  }
  int rc = cJSON_AddStringToObject(o, "name", name) ? 0 : PO_ENOMEM;
  if (!rc) rc = num(o, "pid", pid);
  if (!rc) rc = num(o, "allocations", (double)s->allocations);
  if (!rc) rc = num(o, "allocated_bytes", (double)s->allocated_bytes);
  if (!rc) rc = num(o, "live_allocations", (double)s->live_allocations);
  if (!rc) rc = num(o, "live_bytes", (double)s->live_bytes);
  if (!rc) rc = num(o, "bytes_at_peak", (double)s->bytes_at_peak);
  if (!rc) rc = cJSON_AddBoolToObject(o, "complete", s->complete) ? 0 : PO_ENOMEM;
  cJSON *frames = rc ? NULL : cJSON_AddArrayToObject(o, "frames");
  if (!rc && !frames) rc = PO_ENOMEM;
  for (size_t i = 0; !rc && i < s->frame_count; i++) rc = add_frame(frames, &s->frames[i]);
  return rc;
}

/* ---- merged top lists ------------------------------------------------------------------- */

typedef struct ref {
  const po_heap_site_info *site;
  int32_t pid;
  int64_t key;
} ref;

static int by_key_desc(const void *a, const void *b) {
  const ref *x = a, *y = b;
  return x->key > y->key ? -1 : x->key < y->key;
}

typedef enum { LIST_TOTAL, LIST_LEAKS } list_kind;

/* Sites of every process (each process's own top list, already sorted), merged and cut. */
static int merged_list(cJSON *heap, const char *key, const po_heap_snapshot *snap, list_kind kind) {
  cJSON *arr = cJSON_AddArrayToObject(heap, key);
  CHECK(arr);
  size_t n = 0;
  for (size_t p = 0; p < snap->process_count; p++) {
    n += kind == LIST_TOTAL ? snap->processes[p].top_by_total_count
                            : snap->processes[p].leak_site_count;
  }
  if (!n) return 0;
  ref *refs = po__malloc(n * sizeof *refs);
  CHECK(refs);
  size_t k = 0;
  for (size_t p = 0; p < snap->process_count; p++) {
    const po_heap_process *pr = &snap->processes[p];
    size_t cnt = kind == LIST_TOTAL ? pr->top_by_total_count : pr->leak_site_count;
    const size_t *idx = kind == LIST_TOTAL ? pr->top_by_total : pr->leak_sites;
    for (size_t i = 0; i < cnt; i++) {
      const po_heap_site_info *s = &pr->sites[idx[i]];
      refs[k++] =
          (ref){s, pr->pid, kind == LIST_TOTAL ? (int64_t)s->allocated_bytes : s->live_bytes};
    }
  }
  qsort(refs, n, sizeof *refs, by_key_desc);
  int rc = 0;
  for (size_t i = 0; i < n && i < snap->top_sites && !rc; i++)
    rc = add_site(arr, refs[i].site, refs[i].pid);
  free(refs);
  return rc;
}

/* Top sites at the peak: those of the process whose peak is the snapshot's. */
static int peak_list(cJSON *heap, const po_heap_snapshot *snap) {
  cJSON *arr = cJSON_AddArrayToObject(heap, "top_sites_at_peak");
  CHECK(arr);
  if (snap->peak_process < 0 || (size_t)snap->peak_process >= snap->process_count) return 0;
  const po_heap_process *p = &snap->processes[snap->peak_process];
  int rc = 0;
  for (size_t i = 0; i < p->top_at_peak_count && !rc; i++)
    rc = add_site(arr, &p->sites[p->top_at_peak[i]], p->pid);
  return rc;
}

/* ---- the allocation flame graph --------------------------------------------------------- */

typedef struct node {
  char name[256];
  int64_t parent;
  int64_t first_child, next_sibling;
  uint64_t allocations, total_bytes, self_bytes;
} node;

typedef struct tree {
  node *nodes;
  size_t count, cap;
  uint64_t dropped_bytes; /* bytes of sites whose path did not fit (or found no memory) */
} tree;

static int64_t child_named(tree *t, int64_t parent, const char *name) {
  int64_t c = parent < 0 ? (t->count ? 0 : -1) : t->nodes[parent].first_child;
  for (; c >= 0; c = t->nodes[c].next_sibling) {
    if (t->nodes[c].parent == parent && !strcmp(t->nodes[c].name, name)) return c;
  }
  if (t->count >= CALL_TREE_MAX) return -2;
  if (t->count == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 64;
    node *grown = po__realloc(t->nodes, cap * sizeof *grown);
    if (!grown) return -3;
    t->nodes = grown;
    t->cap = cap;
  }
  node *n = &t->nodes[t->count];
  snprintf(n->name, sizeof n->name, "%s", name);
  n->parent = parent;
  n->first_child = -1;
  n->allocations = n->total_bytes = n->self_bytes = 0;
  if (parent >= 0) {
    n->next_sibling = t->nodes[parent].first_child;
    t->nodes[parent].first_child = (int64_t)t->count;
  } else {
    /* roots chain from node 0 */
    n->next_sibling = -1;
    if (t->count) {
      int64_t r = 0;
      while (t->nodes[r].next_sibling >= 0) r = t->nodes[r].next_sibling;
      t->nodes[r].next_sibling = (int64_t)t->count;
    }
  }
  return (int64_t)t->count++;
}

/* Adds one site's bytes along its path, outermost frame first. PO_ENOMEM when the tree could
 * not grow; a path beyond CALL_TREE_MAX nodes is cut and its bytes counted. */
static int tree_add(tree *t, const po_heap_site_info *s) {
  int64_t at = -1;
  char name[256];
  for (size_t i = s->frame_count; i-- > 0;) {
    frame_name(&s->frames[i], name, sizeof name);
    int64_t c = child_named(t, at, name);
    if (c == -3) return PO_ENOMEM;
    if (c == -2) {
      t->dropped_bytes += s->allocated_bytes;
      break;
    }
    t->nodes[c].allocations += s->allocations;
    t->nodes[c].total_bytes += s->allocated_bytes;
    if (i == 0) t->nodes[c].self_bytes += s->allocated_bytes;
    at = c;
  }
  return 0;
}

static int call_tree(cJSON *heap, const po_heap_snapshot *snap) {
  tree t = {NULL, 0, 0, 0};
  int rc = 0;
  for (size_t p = 0; p < snap->process_count && !rc; p++) {
    const po_heap_process *pr = &snap->processes[p];
    for (size_t i = 0; i < pr->site_count && !rc; i++) rc = tree_add(&t, &pr->sites[i]);
  }
  cJSON *arr = rc ? NULL : cJSON_AddArrayToObject(heap, "call_tree");
  if (!rc && !arr) rc = PO_ENOMEM;
  for (size_t i = 0; i < t.count && !rc; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      rc = PO_ENOMEM;
      break;
    }
    const node *n = &t.nodes[i];
    rc = num(o, "id", (double)i);
    if (!rc) rc = num(o, "parent", (double)n->parent);
    if (!rc) rc = cJSON_AddStringToObject(o, "name", n->name) ? 0 : PO_ENOMEM;
    if (!rc) rc = num(o, "allocations", (double)n->allocations);
    if (!rc) rc = num(o, "total_bytes", (double)n->total_bytes);
    if (!rc) rc = num(o, "self_bytes", (double)n->self_bytes);
  }
  if (!rc) rc = num(heap, "call_tree_dropped_bytes", (double)t.dropped_bytes);
  free(t.nodes);
  return rc;
}

/* ---- processes and totals --------------------------------------------------------------- */

static int add_drops(cJSON *o, const po_heap_process *p) {
  cJSON *d = cJSON_AddObjectToObject(o, "dropped");
  CHECK(d);
  int rc = num(d, "sites", (double)p->sites_dropped);
  if (!rc) rc = num(d, "stacks_truncated", (double)p->stacks_truncated);
  if (!rc) rc = num(d, "threads_shared", (double)p->threads_shared);
  if (!rc) rc = num(d, "modules", (double)p->modules_dropped);
  if (!rc) rc = num(d, "paths_truncated", (double)p->paths_truncated);
  if (!rc) rc = num(d, "incomplete_sites", (double)p->incomplete_sites);
  if (!rc) rc = num(d, "foreign_frees", (double)p->foreign_frees);
  if (!rc) rc = num(d, "untracked_allocations", (double)p->untracked_allocations);
  if (!rc) rc = num(d, "refused_allocations", (double)p->refused_allocations);
  return rc;
}

static int add_process(cJSON *arr, const po_heap_snapshot *snap, const po_heap_process *p) {
  cJSON *o = cJSON_CreateObject();
  CHECK(o && cJSON_AddItemToArray(arr, o));
  int parent_pid = p->parent_index >= 0 && (size_t)p->parent_index < snap->process_count
                       ? snap->processes[p->parent_index].pid
                       : -1;
  int rc = num(o, "pid", p->pid);
  if (!rc) rc = num(o, "ppid", p->ppid);
  if (!rc) rc = num(o, "parent_index", p->parent_index);
  if (!rc) rc = num(o, "parent_pid", parent_pid);
  if (!rc) rc = str_or_null(o, "origin", p->origin);
  if (!rc) rc = str_or_null(o, "state", p->state);
  if (!rc) rc = str_or_null(o, "exe", p->exe);
  if (!rc) rc = str_or_null(o, "mode", po_heap_mode_name(p->mode));
  const struct {
    const char *k;
    double v;
  } f[] = {{"start_seconds", p->start_seconds},
           {"end_seconds", p->end_seconds},
           {"live_bytes", (double)p->live_bytes},
           {"peak_bytes", (double)p->peak_bytes},
           {"peak_seconds", p->peak_seconds},
           {"inherited_bytes", (double)p->inherited_bytes},
           {"allocations", (double)p->allocations},
           {"frees", (double)p->frees},
           {"allocated_bytes", (double)p->allocated_bytes},
           {"freed_bytes", (double)p->freed_bytes},
           {"leaked_bytes", (double)p->leaked_bytes},
           {"leaked_allocations", (double)p->leaked_allocations},
           {"mmap_calls", (double)p->mmap_calls},
           {"munmap_calls", (double)p->munmap_calls},
           {"mmap_bytes", (double)p->mmap_bytes},
           {"munmap_bytes", (double)p->munmap_bytes},
           {"mmap_live_bytes", (double)p->mmap_live_bytes},
           {"mmap_peak_bytes", (double)p->mmap_peak_bytes},
           {"sampled_allocations", (double)p->sampled_allocations},
           {"unwind_fallbacks", (double)p->unwind_fallbacks},
           {"sites", (double)p->site_count}};
  for (size_t i = 0; i < sizeof f / sizeof f[0] && !rc; i++) rc = num(o, f[i].k, f[i].v);
  if (!rc) rc = add_drops(o, p);
  return rc;
}

static int add_histogram(cJSON *heap, const po_heap_snapshot *snap) {
  cJSON *arr = cJSON_AddArrayToObject(heap, "size_histogram");
  CHECK(arr);
  for (unsigned b = 0; b < PO_HEAP_HISTOGRAM_BUCKETS; b++) {
    uint64_t n = 0;
    for (size_t p = 0; p < snap->process_count; p++) n += snap->processes[p].size_histogram[b];
    if (!n) continue;
    cJSON *o = cJSON_CreateObject();
    CHECK(o && cJSON_AddItemToArray(arr, o));
    double lo = b ? (double)(1ull << (b - 1)) : 0, hi = b ? (double)(1ull << b) - 1 : 0;
    int rc = num(o, "min_bytes", lo);
    if (!rc) rc = num(o, "max_bytes", hi);
    if (!rc) rc = num(o, "allocations", (double)n);
    if (rc) return rc;
  }
  return 0;
}

static int add_timeline(cJSON *heap, const po_heap_snapshot *snap) {
  cJSON *tl = cJSON_AddObjectToObject(heap, "timeline");
  CHECK(tl);
  cJSON *t = cJSON_AddArrayToObject(tl, "t_seconds");
  cJSON *v = cJSON_AddArrayToObject(tl, "live_bytes");
  CHECK(t && v);
  for (size_t i = 0; i < snap->timeline_count; i++) {
    cJSON *a = cJSON_CreateNumber(snap->timeline_seconds[i]);
    CHECK(a && cJSON_AddItemToArray(t, a));
    cJSON *b = cJSON_CreateNumber((double)snap->timeline_live_bytes[i]);
    CHECK(b && cJSON_AddItemToArray(v, b));
  }
  return 0;
}

static int add_totals(cJSON *heap, const po_heap_snapshot *snap) {
  double allocs = 0, frees = 0, allocated = 0, live = 0, leaked = 0, leaked_n = 0, mmap = 0,
         mlive = 0, mpeak = 0;
  for (size_t i = 0; i < snap->process_count; i++) {
    const po_heap_process *p = &snap->processes[i];
    allocs += (double)p->allocations;
    frees += (double)p->frees;
    allocated += (double)p->allocated_bytes;
    if (!strcmp(p->state, "running"))
      live += (double)p->live_bytes, mlive += (double)p->mmap_live_bytes;
    leaked += (double)p->leaked_bytes;
    leaked_n += (double)p->leaked_allocations;
    mmap += (double)p->mmap_bytes;
    if ((double)p->mmap_peak_bytes > mpeak) mpeak = (double)p->mmap_peak_bytes;
  }
  int peak_pid = snap->peak_process >= 0 ? snap->processes[snap->peak_process].pid : -1;
  const struct {
    const char *k;
    double v;
  } f[] = {{"sample_interval_bytes", (double)snap->sample_interval_bytes},
           {"t_seconds", snap->t_seconds},
           {"peak_bytes", (double)snap->peak_bytes},
           {"peak_seconds", snap->peak_seconds},
           {"peak_pid", peak_pid},
           {"allocations", allocs},
           {"frees", frees},
           {"allocated_bytes", allocated},
           {"live_bytes", live},
           {"leaked_bytes", leaked},
           {"leaked_allocations", leaked_n},
           {"mmap_bytes", mmap},
           {"mmap_live_bytes", mlive},
           {"mmap_peak_bytes", mpeak},
           {"processes_dropped", (double)snap->processes_dropped},
           {"slots_invalid", (double)snap->slots_invalid}};
  int rc = 0;
  for (size_t i = 0; i < sizeof f / sizeof f[0] && !rc; i++) rc = num(heap, f[i].k, f[i].v);
  return rc;
}

int po__report_add_heap(cJSON *memory, const po_heap_snapshot *snap) {
  if (!memory || !snap) return PO_EINVAL;
  cJSON *heap = cJSON_AddObjectToObject(memory, "heap");
  CHECK(heap);
  CHECK(cJSON_AddStringToObject(heap, "mode", po_heap_mode_name(snap->mode)));
  CHECK(cJSON_AddBoolToObject(heap, "estimated", snap->mode == PO_HEAP_SAMPLED));
  int rc = add_totals(heap, snap);
  if (!rc) rc = add_histogram(heap, snap);
  cJSON *procs = rc ? NULL : cJSON_AddArrayToObject(heap, "processes");
  if (!rc && !procs) rc = PO_ENOMEM;
  for (size_t i = 0; i < snap->process_count && !rc; i++)
    rc = add_process(procs, snap, &snap->processes[i]);
  if (!rc) rc = peak_list(heap, snap);
  if (!rc) rc = merged_list(heap, "top_sites_by_total", snap, LIST_TOTAL);
  if (!rc) rc = merged_list(heap, "leaks", snap, LIST_LEAKS);
  if (!rc) rc = add_timeline(heap, snap);
  if (!rc) rc = call_tree(heap, snap);
  return rc;
}
