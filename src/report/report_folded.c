/* Folded stacks ("main;train;forward 1234" per line), the input of Brendan Gregg's flamegraph.pl
 * and of speedscope: self time per calling context from profile.call_tree, or live heap bytes per
 * allocating stack from memory.heap. Frame names are written as they are except for the two
 * characters the format reserves: ';' (the separator) becomes ':' and line breaks become spaces. */
#include "report/outbuf.h"
#include "report/report_build.h"

#include <math.h>
#include <string.h>

#define MAX_DEPTH 512

typedef struct folded_ctx {
  const cJSON *root;
  po_folded_value what;
} folded_ctx;

static void frame(po__ob *o, const char *name) {
  const char *run = name;
  for (const char *p = name; *p; p++) {
    if (*p != ';' && *p != '\n' && *p != '\r') continue;
    po__ob_put(o, run, (size_t)(p - run));
    po__ob_put(o, *p == ';' ? ":" : " ", 1);
    run = p + 1;
  }
  po__ob_puts(o, run);
}

/* The call tree is in depth-first order, so a node's ancestors are on a stack: pop until the top
 * is the parent. A node whose parent is not there (a truncated tree) starts a new root. */
static int time_stacks(po__ob *o, const cJSON *tree) {
  struct {
    double id;
    const char *name;
  } stack[MAX_DEPTH] = {{0, NULL}};
  size_t depth = 0, lines = 0;
  const cJSON *n;
  cJSON_ArrayForEach(n, tree) {
    const cJSON *id = po__j_get(n, "id"), *parent = po__j_get(n, "parent");
    const char *name = po__j_getstr(n, "name");
    if (!cJSON_IsNumber(id) || !name) continue;
    double pid = cJSON_IsNumber(parent) ? parent->valuedouble : -1;
    while (depth && stack[depth - 1].id != pid) depth--;
    if (depth == MAX_DEPTH) continue; /* deeper than any real stack: skipped */
    stack[depth].id = id->valuedouble;
    stack[depth++].name = name;
    double self = po__j_getnum(n, "self_seconds");
    int64_t us = isfinite(self) && self > 0 && self < 9e12 ? (int64_t)llround(self * 1e6) : 0;
    if (us <= 0) continue;
    for (size_t i = 0; i < depth; i++) {
      if (i) po__ob_put(o, ";", 1);
      frame(o, stack[i].name);
    }
    po__ob_put(o, " ", 1);
    po__ob_i64(o, us);
    po__ob_put(o, "\n", 1);
    lines++;
  }
  return lines ? 0 : PO_ENOENT;
}

/* One allocating stack: frames innermost first (strings, or objects with "function"). */
static int heap_site(po__ob *o, const cJSON *site) {
  const cJSON *frames = po__j_get(site, "frames");
  double bytes = po__j_getnum(site, "live_bytes");
  int n = cJSON_GetArraySize(frames);
  if (!(bytes >= 1) || n <= 0 || bytes > 9e15) return 0;
  for (int i = n - 1, first = 1; i >= 0; i--) {
    const cJSON *f = cJSON_GetArrayItem(frames, i);
    const char *name = cJSON_IsString(f) ? f->valuestring : po__j_getstr(f, "function");
    if (!first) po__ob_put(o, ";", 1);
    first = 0;
    frame(o, name && *name ? name : "??");
  }
  po__ob_put(o, " ", 1);
  po__ob_i64(o, (int64_t)bytes);
  po__ob_put(o, "\n", 1);
  return 1;
}

/* memory.heap.sites[] or memory.heap.processes[].sites[] (the heap tracker's sites). */
static int heap_stacks(po__ob *o, const cJSON *heap) {
  size_t lines = 0;
  const cJSON *s, *p;
  cJSON_ArrayForEach(s, po__j_get(heap, "sites")) {
    lines += (size_t)heap_site(o, s);
  }
  cJSON_ArrayForEach(p, po__j_get(heap, "processes")) {
    cJSON_ArrayForEach(s, po__j_get(p, "sites")) {
      lines += (size_t)heap_site(o, s);
    }
  }
  return lines ? 0 : PO_ENOENT;
}

static int render(po__ob *o, const void *arg) {
  const folded_ctx *c = arg;
  if (c->what == PO_FOLDED_HEAP_BYTES)
    return heap_stacks(o, po__j_get(po__j_get(c->root, "memory"), "heap"));
  return time_stacks(o, po__j_get(po__j_get(c->root, "profile"), "call_tree"));
}

int po_report_write_folded(const po_report *rep, FILE *out, po_folded_value what) {
  if (!rep || (what != PO_FOLDED_TIME && what != PO_FOLDED_HEAP_BYTES)) return PO_EINVAL;
  folded_ctx c = {po_report_json(rep), what};
  return po__ob_write(out, render, &c);
}

int po_report_save_folded(const po_report *rep, const char *path, po_folded_value what,
                          char *errbuf, size_t errlen) {
  if (!rep || (what != PO_FOLDED_TIME && what != PO_FOLDED_HEAP_BYTES))
    return po__errf(PO_EINVAL, errbuf, errlen, "no report, or an unknown folded value");
  folded_ctx c = {po_report_json(rep), what};
  int rc = po__ob_save(path, render, &c, errbuf, errlen);
  if (rc == PO_ENOENT)
    po__errf(rc, errbuf, errlen, "%s: the report has no %s", path,
             what == PO_FOLDED_TIME ? "call tree with self time" : "heap sites (memory.heap)");
  return rc;
}
