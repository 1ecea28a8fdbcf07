/* Folded stacks ("main;train;forward 1234" per line), the input of Brendan Gregg's flamegraph.pl
 * and of speedscope: self time per calling context from profile.call_tree, or bytes allocated
 * per allocating stack from the heap tracker's memory.heap.call_tree. Frame names are written as
 * they are except for the two characters the format reserves: ';' (the separator) becomes ':'
 * and line breaks become spaces. */
#include "report/outbuf.h"
#include "report/report_build.h"

#include <math.h>
#include <stdlib.h>
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

/* One line per node with a value: the path from its root (parents looked up by id, so any
 * node order works: the profile's tree is depth-first, the heap's in creation order). Ids must be
 * 0..n-1; a node with another id, a parent out of range or a path deeper than MAX_DEPTH (a
 * cycle in a hostile file) is skipped. `scale` turns the value into the integer written. */
static int tree_stacks(po__ob *o, const cJSON *tree, const char *key, double scale) {
  int n = cJSON_GetArraySize(tree);
  if (n <= 0) return PO_ENOENT;
  const cJSON **by_id = po__calloc((size_t)n, sizeof *by_id);
  if (!by_id) return PO_ENOMEM;
  const cJSON *node;
  cJSON_ArrayForEach(node, tree) {
    const cJSON *id = po__j_get(node, "id");
    if (cJSON_IsNumber(id) && id->valuedouble >= 0 && id->valuedouble < n &&
        id->valuedouble == floor(id->valuedouble) && po__j_getstr(node, "name"))
      by_id[(int)id->valuedouble] = node;
  }
  size_t lines = 0;
  const char *path[MAX_DEPTH] = {NULL};
  for (int i = 0; i < n; i++) {
    double v = by_id[i] ? po__j_getnum(by_id[i], key) * scale : 0;
    int64_t value = isfinite(v) && v > 0 && v < 9e15 ? (int64_t)llround(v) : 0;
    if (value <= 0) continue;
    size_t depth = 0;
    const cJSON *at = by_id[i];
    while (at && depth < MAX_DEPTH) {
      path[depth++] = po__j_getstr(at, "name");
      double parent = po__j_getnum(at, "parent");
      at = cJSON_IsNumber(po__j_get(at, "parent")) && parent >= 0 && parent < n &&
                   parent == floor(parent)
               ? by_id[(int)parent]
               : NULL;
    }
    if (at) continue; /* deeper than MAX_DEPTH: a cycle */
    for (size_t k = depth; k-- > 0;) {
      frame(o, path[k]);
      if (k) po__ob_put(o, ";", 1);
    }
    po__ob_put(o, " ", 1);
    po__ob_i64(o, value);
    po__ob_put(o, "\n", 1);
    lines++;
  }
  free(by_id);
  return lines ? 0 : PO_ENOENT;
}

static int render(po__ob *o, const void *arg) {
  const folded_ctx *c = arg;
  if (c->what == PO_FOLDED_HEAP_BYTES)
    return tree_stacks(o, po__j_get(po__j_get(po__j_get(c->root, "memory"), "heap"), "call_tree"),
                       "self_bytes", 1);
  return tree_stacks(o, po__j_get(po__j_get(c->root, "profile"), "call_tree"), "self_seconds", 1e6);
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
