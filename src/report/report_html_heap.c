/* The heap section of the HTML report, from memory.heap (docs/formats.md): a summary, the heap
 * timeline with the peak marked, the allocation flame graph (frame width = bytes allocated) and
 * the site tables (at the peak, by total, leaks). Bounded like the rest of the page: the flame
 * graph keeps the report's call tree (at most 5,000 nodes), each table its first MAX_ROWS rows. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "report/report_html_heap.h"

#define CHART_W 1100
#define MAX_ROWS 25

static double num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void esc(po__cbuf *b, const char *s) {
  po__cbuf_xml(b, s ? s : "");
}

static void value(po__cbuf *b, double v, po_unit u) {
  char buf[64];
  if (!isfinite(v)) {
    po__cbuf_puts(b, "&#8212;");
    return;
  }
  po_format_value(v, u, buf, sizeof buf);
  esc(b, buf);
}

static void cell(po__cbuf *b, double v, po_unit u) {
  po__cbuf_printf(b, "<td data-v=\"%.9g\">", isfinite(v) ? v : -1);
  value(b, v, u);
  po__cbuf_puts(b, "</td>");
}

static void note(po__cbuf *b, const char *text) {
  po__cbuf_puts(b, "<p class=\"note\">");
  esc(b, text);
  po__cbuf_puts(b, "</p>\n");
}

static void emit(po__cbuf *b, po_chart *c) {
  if (!c) {
    b->oom = 1;
    return;
  }
  po_chart_optimize(c, CHART_W);
  size_t len;
  char *svg = po_chart_svg_string(c, 0, &len);
  if (!svg) {
    b->oom = 1;
  } else {
    po__cbuf_puts(b, "<div class=\"chart\">");
    po__cbuf_put(b, svg, len);
    po__cbuf_puts(b, "</div>\n");
  }
  size_t dropped = po_chart_dropped(c);
  if (svg && dropped) {
    char msg[160];
    snprintf(msg, sizeof msg, "%zu items are not drawn (too narrow or over the chart's caps).",
             dropped);
    note(b, msg);
  }
  free(svg);
  po_chart_destroy(c);
}

static void summary(po__cbuf *b, const cJSON *heap) {
  static const struct {
    const char *key, *label;
    po_unit unit;
  } rows[] = {{"peak_bytes", "peak (heap)", PO_UNIT_BYTES},
              {"peak_seconds", "peak reached at", PO_UNIT_ELAPSED},
              {"allocations", "allocations", PO_UNIT_COUNT},
              {"frees", "frees", PO_UNIT_COUNT},
              {"allocated_bytes", "allocated in total", PO_UNIT_BYTES},
              {"leaked_bytes", "leaked (live at exit)", PO_UNIT_BYTES},
              {"mmap_peak_bytes", "mmap peak (largest process)", PO_UNIT_BYTES}};
  po__cbuf_puts(b, "<table class=\"kv\"><tr><th>mode</th><td>");
  esc(b, str(heap, "mode"));
  po__cbuf_puts(b, "</td></tr>\n");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    po__cbuf_puts(b, "<tr><th>");
    esc(b, rows[i].label);
    po__cbuf_puts(b, "</th><td>");
    value(b, num(heap, rows[i].key), rows[i].unit);
    po__cbuf_puts(b, "</td></tr>\n");
  }
  po__cbuf_printf(b, "<tr><th>processes</th><td>%d</td></tr></table>\n",
                  cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(heap, "processes")));
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(heap, "estimated")))
    note(b, "Sampled mode: site values are unbiased estimates; totals and the peak are exact.");
}

/* The timeline the parent sampled, with the exact peak (a point of the same curve, which the
 * samples may have missed) inserted and marked. */
static void timeline(po__cbuf *b, const cJSON *heap) {
  const cJSON *tl = cJSON_GetObjectItemCaseSensitive(heap, "timeline");
  const cJSON *ts = cJSON_GetObjectItemCaseSensitive(tl, "t_seconds");
  const cJSON *vs = cJSON_GetObjectItemCaseSensitive(tl, "live_bytes");
  int n = cJSON_GetArraySize(ts);
  if (n <= 0 || n != cJSON_GetArraySize(vs)) {
    note(b, "no heap timeline recorded (the session's totals were not sampled during the run)");
    return;
  }
  double pb = num(heap, "peak_bytes"), ps = num(heap, "peak_seconds");
  int have_peak = isfinite(pb) && isfinite(ps) && pb > 0;
  double *t = po__malloc(((size_t)n + 1) * sizeof *t), *v = po__malloc(((size_t)n + 1) * sizeof *v);
  po_chart *c = t && v ? po_chart_create(PO_CHART_LINES, "Heap over time (peak marked)") : NULL;
  int k = 0;
  for (const cJSON *a = c ? ts->child : NULL, *y = c ? vs->child : NULL; a && y && k < n;
       a = a->next, y = y->next) {
    if (!cJSON_IsNumber(a) || (k > 0 && a->valuedouble < t[k - 1])) continue;
    if (have_peak && ps <= a->valuedouble && (k == 0 || ps >= t[k - 1])) {
      t[k] = ps;
      v[k++] = pb;
      have_peak = 2; /* inserted */
    }
    t[k] = a->valuedouble;
    v[k++] = cJSON_IsNumber(y) ? y->valuedouble : NAN;
  }
  if (c && have_peak == 1 && (k == 0 || ps >= t[k - 1])) {
    t[k] = ps;
    v[k++] = pb;
  }
  if (c) {
    po_chart_set_axis(c, 'x', "time since start", PO_UNIT_ELAPSED);
    po_chart_set_axis(c, 'y', "live heap", PO_UNIT_BYTES);
    po_chart_add_series(c, "live heap (running processes)", PO_UNIT_BYTES, t, v, (size_t)k);
    if (have_peak) {
      char vb[48], tb[48], label[128];
      po_format_value(pb, PO_UNIT_BYTES, vb, sizeof vb);
      po_format_value(ps, PO_UNIT_ELAPSED, tb, sizeof tb);
      snprintf(label, sizeof label, "heap peak: %s at %s", vb, tb);
      po_chart_add_marker(c, ps, pb, label);
    }
  }
  free(t);
  free(v);
  emit(b, c);
}

static void flame(po__cbuf *b, const cJSON *heap) {
  const cJSON *tree = cJSON_GetObjectItemCaseSensitive(heap, "call_tree");
  if (cJSON_GetArraySize(tree) <= 0) {
    note(b, "no allocation call tree (exact mode records no call sites)");
    return;
  }
  po_chart *c = po_chart_create(PO_CHART_FLAME, "Allocations by call stack (width: bytes allocated)");
  if (c) po_chart_set_axis(c, 'x', "bytes allocated", PO_UNIT_BYTES);
  const cJSON *it;
  cJSON_ArrayForEach(it, tree) {
    double id = num(it, "id"), parent = num(it, "parent"), n = num(it, "allocations");
    if (!c || !isfinite(id) || !isfinite(parent) || fabs(id) > 1e15 || fabs(parent) > 1e15)
      continue;
    po_chart_add_frame(c, (int64_t)id, (int64_t)parent, str(it, "name"),
                       isfinite(n) && n > 0 && n < 1.8e19 ? (uint64_t)n : 0, num(it, "total_bytes"),
                       num(it, "self_bytes"));
  }
  po__cbuf_puts(b,
                "<p class=\"hint\">Each bar is a function in its calling context; width is the "
                "bytes allocated beneath it, callees below their caller.</p>\n");
  emit(b, c);
}

static void site_table(po__cbuf *b, const cJSON *heap, const char *key, const char *title,
                       const char *value_key, const char *value_label) {
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(heap, key);
  if (cJSON_GetArraySize(list) <= 0) return;
  po__cbuf_puts(b, "<h3>");
  esc(b, title);
  po__cbuf_puts(b, "</h3><table class=\"data sortable\"><thead><tr><th>site</th><th>pid</th><th>");
  esc(b, value_label);
  po__cbuf_puts(b, "</th><th>allocations</th><th>live</th></tr></thead><tbody>\n");
  int k = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, list) {
    if (k++ >= MAX_ROWS) break;
    po__cbuf_puts(b, "<tr><td>");
    esc(b, str(it, "name"));
    po__cbuf_puts(b, "</td>");
    cell(b, num(it, "pid"), PO_UNIT_NONE);
    cell(b, num(it, value_key), PO_UNIT_BYTES);
    cell(b, num(it, "allocations"), PO_UNIT_COUNT);
    cell(b, num(it, "live_bytes"), PO_UNIT_BYTES);
    po__cbuf_puts(b, "</tr>\n");
  }
  po__cbuf_puts(b, "</tbody></table>\n");
}

void po__html_section_heap(po__cbuf *b, const cJSON *root) {
  const cJSON *heap =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "memory"), "heap");
  if (!cJSON_IsObject(heap)) return;
  po__cbuf_puts(b, "<section id=\"heap\"><h2>Heap</h2>\n");
  summary(b, heap);
  timeline(b, heap);
  flame(b, heap);
  site_table(b, heap, "top_sites_at_peak", "Top sites at the peak", "bytes_at_peak", "at peak");
  site_table(b, heap, "top_sites_by_total", "Top sites by bytes allocated", "allocated_bytes",
             "allocated");
  site_table(b, heap, "leaks", "Leaks at exit by site", "live_bytes", "leaked");
  po__cbuf_puts(b, "</section>\n");
}
