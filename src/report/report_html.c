/* The HTML report: one self-contained page rendered from the report model (a cJSON tree).
 *
 * Everything is inline (style, SVG charts, a small script for sorting tables); nothing is fetched.
 * Size is bounded whatever the run length: every series is reduced to the chart width (M4 in
 * po_chart_optimize), the function table and the flame graph are capped, and what was left out is
 * counted on the page. */
#include "viz/chart_internal.h"
#include "base/base.h"
#include "report/report_html_heap.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHART_W 1100
#define MAX_TABLE_FUNCTIONS 200
#define MAX_BAR_FUNCTIONS 15
#define MAX_FLAME_FRAMES 3000
#define MAX_EVENT_ROWS 50
#define PO__STR2(x) #x
#define PO__STR(x) PO__STR2(x)

/* ---- model access -------------------------------------------------------------------------- */

static double num(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *arr(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsArray(v) ? v : NULL;
}

static const cJSON *obj(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsObject(v) ? v : NULL;
}

/* A JSON number as an integer; `fallback` when it is missing, fractional-garbage or out of range
 * (a cast of such a double is undefined behaviour, and report files are user input). */
static int64_t to_i64(double v, int64_t fallback) {
  return isfinite(v) && v > -9.2e18 && v < 9.2e18 ? (int64_t)v : fallback;
}

static int starts_with(const char *s, const char *p) {
  return s && strncmp(s, p, strlen(p)) == 0;
}

/* A JSON array of numbers as doubles (null and non-numbers become NaN). */
static double *to_doubles(const cJSON *a, size_t *n) {
  *n = 0;
  if (!a) return NULL;
  size_t cap = (size_t)cJSON_GetArraySize(a);
  double *d = po__malloc((cap ? cap : 1) * sizeof(double));
  if (!d) return NULL;
  const cJSON *it;
  cJSON_ArrayForEach(it, a) d[(*n)++] = cJSON_IsNumber(it) ? it->valuedouble : NAN;
  return d;
}

/* ---- HTML helpers ---------------------------------------------------------------------------- */

static void esc(po__cbuf *b, const char *s) {
  po__cbuf_xml(b, s ? s : "");
}

static void fmt(po__cbuf *b, double v, po_unit u) {
  char buf[64];
  po_format_value(v, u, buf, sizeof(buf));
  esc(b, buf);
}

static void note(po__cbuf *b, const char *text) {
  po__cbuf_puts(b, "<p class=\"note\">");
  esc(b, text);
  po__cbuf_puts(b, "</p>\n");
}

/* Renders a chart inline and frees it; dropped_fmt (one %llu) says how many items it left out. */
static void emit_chart(po__cbuf *b, po_chart *c, const char *dropped_fmt, size_t extra_dropped) {
  if (!c) {
    b->oom = 1;
    return;
  }
  po_chart_optimize(c, CHART_W);
  size_t len;
  char *svg = po_chart_svg_string(c, 0, &len);
  if (!svg)
    b->oom = 1;
  else {
    po__cbuf_puts(b, "<div class=\"chart\">");
    po__cbuf_put(b, svg, len);
    po__cbuf_puts(b, "</div>\n");
    size_t dropped = po_chart_dropped(c) + extra_dropped;
    if (dropped && dropped_fmt) {
      char msg[200];
      snprintf(msg, sizeof(msg), dropped_fmt, (unsigned long long)dropped);
      note(b, msg);
    }
  }
  free(svg);
  po_chart_destroy(c);
}

/* ---- key/value tables: labels people read, not JSON keys ------------------------------------- */

static const struct {
  const char *key, *label;
  int zero_is_none; /* 0 means "no limit" / "none" for this key */
} KV_LABELS[] = {
    {"hostname", "host name", 0},
    {"os", "operating system", 0},
    {"kernel", "kernel", 0},
    {"machine", "architecture", 0},
    {"cpu_model", "CPU", 0},
    {"cores_online", "cores online", 0},
    {"cores_allowed", "cores this process may use", 0},
    {"cgroup_cpu_limit", "cgroup CPU limit (cores)", 1},
    {"memory_total_bytes", "memory", 0},
    {"memory_limit_bytes", "memory limit in force", 1},
    {"memory_limit_source", "memory limit set by", 0},
    {"cgroup_memory_max_bytes", "cgroup memory limit", 1},
    {"cgroup_version", "cgroup version", 1},
    {"pid", "process id", 0},
    {"start_unix_seconds", "started", 0},
    {"report_unix_seconds", "report taken", 0},
    {"wall_seconds", "wall time", 0},
    {"rss_bytes", "RSS when the report was taken", 0},
    {"peak_rss_bytes", "peak RSS", 0},
    {"limit_bytes", "effective memory limit", 1},
    {"limit_source", "memory limit set by", 0},
    {"available_bytes", "available under the limit", 0},
    {"dropped_cleanups", "cleanups not listed (over 512)", 0},
    {"dropped_guards", "guard runs not listed (over 256)", 0},
    {"rank", "rank", 0},
};

/* The label of `key`: from the table, else the key with its unit suffix dropped and underscores
 * as spaces. *zero_is_none tells whether 0 means "none" for it. */
static void kv_label(const char *key, char *buf, size_t len, int *zero_is_none) {
  *zero_is_none = 0;
  for (size_t i = 0; i < PO__ARRAY_LEN(KV_LABELS); i++)
    if (strcmp(key, KV_LABELS[i].key) == 0) {
      *zero_is_none = KV_LABELS[i].zero_is_none;
      snprintf(buf, len, "%s", KV_LABELS[i].label);
      return;
    }
  static const char *const suffixes[] = {"_unix_seconds", "_bytes_per_second", "_bytes",
                                         "_seconds", "_ratio"};
  size_t n = strlen(key);
  for (size_t i = 0; i < PO__ARRAY_LEN(suffixes); i++) {
    size_t sl = strlen(suffixes[i]);
    if (n > sl && strcmp(key + n - sl, suffixes[i]) == 0) {
      n -= sl;
      break;
    }
  }
  snprintf(buf, len, "%.*s", (int)n, key);
  for (char *p = buf; *p; p++)
    if (*p == '_') *p = ' ';
}

static void kv_number(po__cbuf *b, const char *key, double v, int zero_is_none) {
  if (v == -1) { /* the report's "not measured" */
    po__cbuf_puts(b, "not measured");
  } else if (v == 0 && zero_is_none) {
    po__cbuf_puts(b, "none");
  } else if (strstr(key, "unix_seconds")) {
    time_t t = (time_t)to_i64(v, 0);
    struct tm tm;
    char buf[64];
    if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm))
      esc(b, buf);
  } else {
    po_unit u = po_unit_from_name(key);
    if (u == PO_UNIT_NONE)
      po__cbuf_printf(b, "%.10g", v);
    else
      fmt(b, v, u);
  }
}

/* Key/value rows from an object's scalar members, labelled and formatted by their key. */
static void kv_rows(po__cbuf *b, const cJSON *o) {
  const cJSON *it;
  cJSON_ArrayForEach(it, o) {
    if (!it->string || cJSON_IsObject(it) || cJSON_IsArray(it) || cJSON_IsNull(it)) continue;
    char label[128];
    int zero_is_none;
    kv_label(it->string, label, sizeof label, &zero_is_none);
    po__cbuf_puts(b, "<tr><th title=\"");
    esc(b, it->string);
    po__cbuf_puts(b, "\">");
    esc(b, label);
    po__cbuf_puts(b, "</th><td>");
    if (cJSON_IsString(it))
      esc(b, it->valuestring);
    else if (cJSON_IsBool(it))
      po__cbuf_puts(b, cJSON_IsTrue(it) ? "yes" : "no");
    else
      kv_number(b, it->string, it->valuedouble, zero_is_none);
    po__cbuf_puts(b, "</td></tr>\n");
  }
}

/* ---- sections -------------------------------------------------------------------------------- */

static void section_summary(po__cbuf *b, const cJSON *root) {
  const cJSON *host = obj(root, "host"), *run = obj(root, "run"), *prof = obj(root, "profile");
  const cJSON *mem = obj(root, "memory"), *res = obj(root, "resources");
  po__cbuf_puts(b, "<section id=\"summary\"><h2>Run summary</h2>\n<div class=\"cards\">");
  double wall = num(run, "wall_seconds");
  if (!isfinite(wall)) wall = num(prof, "wall_seconds");
  double peak = num(mem, "peak_rss_bytes");
  struct {
    const char *label;
    double v;
    po_unit u;
  } cards[] = {
      {"wall time", wall, PO_UNIT_SECONDS},
      {"peak memory (RSS)", peak, PO_UNIT_BYTES},
      {"profiled functions", (double)cJSON_GetArraySize(arr(prof, "functions")), PO_UNIT_COUNT},
      {"resource samples", num(res, "sample_count"), PO_UNIT_COUNT},
      {"suggestions", arr(root, "suggestions") ? (double)cJSON_GetArraySize(arr(root, "suggestions"))
                                               : NAN,
       PO_UNIT_COUNT}};
  for (size_t i = 0; i < PO__ARRAY_LEN(cards); i++) {
    po__cbuf_puts(b, "<div class=\"card\"><div class=\"big\">");
    if (isfinite(cards[i].v))
      fmt(b, cards[i].v, cards[i].u);
    else
      po__cbuf_puts(b, "&#8212;");
    po__cbuf_puts(b, "</div><div>");
    esc(b, cards[i].label);
    po__cbuf_puts(b, "</div></div>");
  }
  po__cbuf_puts(b, "</div>\n<div class=\"cols\"><div><h3>Host</h3>");
  if (host) {
    po__cbuf_puts(b, "<table class=\"kv\">");
    kv_rows(b, host);
    po__cbuf_puts(b, "</table>");
  } else
    note(b, "no host information recorded");
  po__cbuf_puts(b, "</div><div><h3>Run</h3>");
  if (run) {
    po__cbuf_puts(b, "<table class=\"kv\">");
    const cJSON *argv = arr(run, "argv");
    if (argv) {
      po__cbuf_puts(b, "<tr><th>command</th><td><code>");
      const cJSON *a;
      int first = 1;
      cJSON_ArrayForEach(a, argv) {
        if (!cJSON_IsString(a)) continue;
        if (!first) po__cbuf_puts(b, " ");
        esc(b, a->valuestring);
        first = 0;
      }
      po__cbuf_puts(b, "</code></td></tr>");
    }
    kv_rows(b, run);
    if (mem) kv_rows(b, mem);
    po__cbuf_puts(b, "</table>");
  } else
    note(b, "no run information recorded");
  po__cbuf_puts(b, "</div></div></section>\n");
}

/* ---- suggestions (the advisor's findings) ---------------------------------------------------- */

/* Evidence is [{name, value, unit}] (a plain string in reports of older versions). */
static void suggestion_evidence(po__cbuf *b, const cJSON *ev) {
  if (cJSON_IsString(ev)) {
    po__cbuf_puts(b, "<div>Evidence: ");
    esc(b, ev->valuestring);
    po__cbuf_puts(b, "</div>");
    return;
  }
  if (!cJSON_IsArray(ev) || cJSON_GetArraySize(ev) == 0) return;
  po__cbuf_puts(b, "<div class=\"ev\">Evidence: ");
  const cJSON *e;
  int first = 1;
  cJSON_ArrayForEach(e, ev) {
    const char *name = str(e, "name"), *unit = str(e, "unit");
    double v = num(e, "value");
    if (!name) continue;
    if (!first) po__cbuf_puts(b, "; ");
    first = 0;
    esc(b, name);
    po__cbuf_puts(b, " <b>");
    if (unit && strcmp(unit, "cores") == 0)
      po__cbuf_printf(b, "%.2f cores", v);
    else
      fmt(b, v, po_unit_from_name(unit));
    po__cbuf_puts(b, "</b>");
  }
  po__cbuf_puts(b, "</div>");
}

static void section_suggestions(po__cbuf *b, const cJSON *root) {
  const cJSON *s = arr(root, "suggestions");
  if (!s || cJSON_GetArraySize(s) == 0) return;
  po__cbuf_puts(b, "<section id=\"suggestions\"><h2>Suggestions</h2>\n<ul class=\"sugg\">");
  const cJSON *it;
  cJSON_ArrayForEach(it, s) {
    const char *sev = str(it, "severity");
    if (!sev) sev = "info";
    const char *cls = strcmp(sev, "critical") == 0 || strcmp(sev, "error") == 0 ? "crit"
                      : strcmp(sev, "warning") == 0                             ? "warn"
                                                                                : "info";
    po__cbuf_printf(b, "<li class=\"%s\"><span class=\"sev\">", cls);
    esc(b, sev);
    po__cbuf_puts(b, "</span> <b>");
    esc(b, str(it, "title"));
    po__cbuf_puts(b, "</b>");
    if (str(it, "id")) {
      po__cbuf_puts(b, " <span class=\"sid\">");
      esc(b, str(it, "id"));
      if (str(it, "target")) {
        po__cbuf_puts(b, " &#183; ");
        esc(b, str(it, "target"));
      }
      po__cbuf_puts(b, "</span>");
    }
    suggestion_evidence(b, cJSON_GetObjectItemCaseSensitive(it, "evidence"));
    if (str(it, "action")) {
      po__cbuf_puts(b, "<div>Action: ");
      esc(b, str(it, "action"));
      po__cbuf_puts(b, "</div>");
    }
    po__cbuf_puts(b, "</li>\n");
  }
  po__cbuf_puts(b, "</ul></section>\n");
}

typedef struct fnref {
  const cJSON *f;
  double key;
} fnref;

static int cmp_fnref_desc(const void *a, const void *b) {
  double x = ((const fnref *)a)->key, y = ((const fnref *)b)->key;
  return (x < y) - (x > y);
}

static void num_cell(po__cbuf *b, double v, po_unit u) {
  if (!isfinite(v)) {
    po__cbuf_puts(b, "<td data-v=\"-1\">&#8212;</td>");
    return;
  }
  po__cbuf_printf(b, "<td data-v=\"%.9g\">", v);
  fmt(b, v, u);
  po__cbuf_puts(b, "</td>");
}

/* The items of a JSON array, each with the number under `key` (0 when missing or not finite),
 * for sorting. *n is the array's size on entry and the count collected on return. NULL when out
 * of memory (b->oom is set). */
static fnref *collect_refs(po__cbuf *b, const cJSON *array, const char *key, size_t *n) {
  fnref *v = po__malloc(*n * sizeof(fnref));
  if (!v) {
    b->oom = 1;
    return NULL;
  }
  size_t k = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, array) {
    if (k == *n) break; /* *n counted the same array */
    double x = num(it, key);
    v[k].f = it;
    v[k++].key = isfinite(x) ? x : 0;
  }
  *n = k;
  return v;
}

static void section_functions(po__cbuf *b, const cJSON *root) {
  const cJSON *prof = obj(root, "profile");
  const cJSON *fns = arr(prof, "functions");
  po__cbuf_puts(b, "<section id=\"functions\"><h2>Top functions</h2>\n");
  size_t n = fns ? (size_t)cJSON_GetArraySize(fns) : 0;
  if (n == 0) {
    note(b, "no data recorded: no profiled functions");
    po__cbuf_puts(b, "</section>\n");
    return;
  }
  fnref *v = collect_refs(b, fns, "self_seconds", &n);
  if (!v) {
    po__cbuf_puts(b, "</section>\n");
    return;
  }
  qsort(v, n, sizeof(fnref), cmp_fnref_desc);
  po_chart *c = po_chart_create(PO_CHART_BARS, "Top functions by self time");
  if (c) {
    po_chart_set_axis(c, 'x', "self time (excluding callees)", PO_UNIT_SECONDS);
    for (size_t i = 0; i < n && i < MAX_BAR_FUNCTIONS; i++) {
      char tip[512];
      char tot[48], self[48];
      po_format_value(num(v[i].f, "total_seconds"), PO_UNIT_SECONDS, tot, sizeof(tot));
      po_format_value(v[i].key, PO_UNIT_SECONDS, self, sizeof(self));
      const char *name = str(v[i].f, "name");
      snprintf(tip, sizeof(tip), "%s\nself %s, total %s, %.0f calls", name ? name : "?", self, tot,
               num(v[i].f, "calls"));
      po_chart_add_bar(c, name, v[i].key, tip);
    }
  }
  emit_chart(b, c, NULL, 0);

  for (size_t i = 0; i < n; i++) {
    double t = num(v[i].f, "total_seconds");
    v[i].key = isfinite(t) ? t : 0;
  }
  qsort(v, n, sizeof(fnref), cmp_fnref_desc);
  size_t shown = n < MAX_TABLE_FUNCTIONS ? n : MAX_TABLE_FUNCTIONS;
  po__cbuf_puts(b,
                "<div class=\"scroll\"><table class=\"sortable "
                "data\"><thead><tr><th>function</th><th>calls</th>"
                "<th>total</th><th>self</th><th>avg</th><th>p95</th><th>max</th>"
                "<th>% of wall</th></tr></thead><tbody>\n");
  for (size_t i = 0; i < shown; i++) {
    const cJSON *f = v[i].f;
    po__cbuf_puts(b, "<tr><td class=\"name\" title=\"");
    esc(b, str(f, "file"));
    if (isfinite(num(f, "line"))) po__cbuf_printf(b, ":%.0f", num(f, "line"));
    po__cbuf_puts(b, "\">");
    esc(b, str(f, "name"));
    po__cbuf_puts(b, "</td>");
    num_cell(b, num(f, "calls"), PO_UNIT_COUNT);
    num_cell(b, num(f, "total_seconds"), PO_UNIT_SECONDS);
    num_cell(b, num(f, "self_seconds"), PO_UNIT_SECONDS);
    num_cell(b, num(f, "avg_seconds"), PO_UNIT_SECONDS);
    num_cell(b, num(f, "p95_seconds"), PO_UNIT_SECONDS);
    num_cell(b, num(f, "max_seconds"), PO_UNIT_SECONDS);
    double pct = num(f, "percent_total");
    num_cell(b, isfinite(pct) ? pct / 100 : NAN, PO_UNIT_RATIO);
    po__cbuf_puts(b, "</tr>\n");
  }
  po__cbuf_puts(b, "</tbody></table></div>\n");
  if (shown < n) {
    char msg[160];
    snprintf(msg, sizeof(msg),
             "Showing the %zu functions with the most total time; %zu more are in the JSON "
             "report.",
             shown, n - shown);
    note(b, msg);
  }
  note(b, "Click a column header to sort; the table scrolls.");
  free(v);
  po__cbuf_puts(b, "</section>\n");
}

static void section_flame(po__cbuf *b, const cJSON *root) {
  const cJSON *tree = arr(obj(root, "profile"), "call_tree");
  po__cbuf_puts(b, "<section id=\"flame\"><h2>Call tree (flame graph)</h2>\n");
  size_t n = tree ? (size_t)cJSON_GetArraySize(tree) : 0;
  if (n == 0) {
    note(b, "no data recorded: the profile has no call tree");
    po__cbuf_puts(b, "</section>\n");
    return;
  }
  fnref *v = collect_refs(b, tree, "total_seconds", &n);
  if (!v) {
    po__cbuf_puts(b, "</section>\n");
    return;
  }
  size_t take = n;
  if (n > MAX_FLAME_FRAMES) {
    qsort(v, n, sizeof(fnref), cmp_fnref_desc);
    take = MAX_FLAME_FRAMES;
  }
  po_chart *c = po_chart_create(PO_CHART_FLAME, NULL);
  for (size_t i = 0; c && i < take; i++) {
    const cJSON *f = v[i].f;
    double id = num(f, "id"), calls = num(f, "calls");
    if (!isfinite(id) || fabs(id) >= 9.2e18) continue;
    po_chart_add_frame(c, (int64_t)id, to_i64(num(f, "parent"), -1), str(f, "name"),
                       (uint64_t)to_i64(calls > 0 ? calls : 0, 0), num(f, "total_seconds"),
                       num(f, "self_seconds"));
  }
  po__cbuf_puts(b,
                "<p class=\"hint\">Each bar is a function in its calling context; width is total "
                "time, callees below their caller. Hover a frame for calls and times.</p>\n");
  /* frames over the cap plus frames the chart could not draw (under half a pixel wide) */
  emit_chart(
      b, c,
      "%llu call-tree frames are not drawn: narrower than half a pixel, deeper than the "
      "chart, or beyond the " PO__STR(MAX_FLAME_FRAMES) " largest. The JSON report has them all.",
      n - take);
  free(v);
  po__cbuf_puts(b, "</section>\n");
}

/* ---- resource timelines ---------------------------------------------------------------------- */

typedef struct rseries {
  const char *name;
  po_unit unit;
  double *t, *mn, *mx, *last;
  size_t n;
  int used;
} rseries;

typedef struct rmodel {
  rseries *s;
  size_t n;
  const cJSON *thresholds, *events, *phases;
  double mem_limit;
  double cores; /* host.cores_online: what cpu_utilization_ratio is a share of; NaN unknown */
  const cJSON *gpu_devices;
} rmodel;

static void rmodel_free(rmodel *m) {
  for (size_t i = 0; i < m->n; i++) {
    free(m->s[i].t);
    free(m->s[i].mn);
    free(m->s[i].mx);
    free(m->s[i].last);
  }
  free(m->s);
}

/* Loads one `series` array's entries into m (room was made by the caller). */
static void rmodel_add(rmodel *m, const cJSON *ser) {
  const cJSON *it;
  cJSON_ArrayForEach(it, ser) {
    rseries *s = &m->s[m->n];
    s->name = str(it, "name");
    if (!s->name) continue;
    const char *unit = str(it, "unit");
    s->unit = po_unit_from_name(unit ? unit : s->name);
    size_t nt, n1, n2, n3;
    s->t = to_doubles(arr(it, "t_seconds"), &nt);
    s->mn = to_doubles(arr(it, "min"), &n1);
    s->mx = to_doubles(arr(it, "max"), &n2);
    s->last = to_doubles(arr(it, "last"), &n3);
    if (!s->last) { /* a series with only min/max still draws its envelope's top */
      free(s->last);
      s->last = s->mx ? to_doubles(arr(it, "max"), &n3) : NULL;
    }
    size_t n = nt;
    if (s->last && n3 < n) n = n3;
    if (!s->t || !s->last) n = 0;
    if (s->mn && n1 < n) n = n1;
    if (s->mx && n2 < n) n = n2;
    if (!s->mn || !s->mx || n1 < n || n2 < n) {
      free(s->mn), free(s->mx);
      s->mn = s->mx = NULL;
    }
    /* time must be finite and non-decreasing for a timeline: cut at the first bad point */
    for (size_t i = 0; i < n; i++)
      if (!isfinite(s->t[i]) || (i > 0 && s->t[i] < s->t[i - 1])) {
        n = i;
        break;
      }
    s->n = n;
    m->n++;
  }
}

/* The resource series and, for a run report (`perfopt run`), the process tree's. */
static int rmodel_load(const cJSON *root, rmodel *m) {
  memset(m, 0, sizeof(*m));
  const cJSON *res = obj(root, "resources");
  const cJSON *ser = arr(res, "series"), *tree = arr(obj(root, "processes"), "series");
  m->thresholds = arr(res, "thresholds");
  m->events = arr(res, "events");
  m->phases = arr(res, "phases");
  m->mem_limit = num(obj(root, "memory"), "limit_bytes");
  m->cores = num(obj(root, "host"), "cores_online");
  if (!(m->cores >= 1 && m->cores < 1e6)) m->cores = NAN;
  m->gpu_devices = arr(obj(root, "gpu"), "devices");
  size_t cap = (ser ? (size_t)cJSON_GetArraySize(ser) : 0) +
               (tree ? (size_t)cJSON_GetArraySize(tree) : 0);
  m->s = po__calloc(cap ? cap : 1, sizeof(rseries));
  if (!m->s) return PO_ENOMEM;
  rmodel_add(m, ser);
  rmodel_add(m, tree);
  return 0;
}

static rseries *find_series(rmodel *m, const char *name) {
  for (size_t i = 0; i < m->n; i++)
    if (strcmp(m->s[i].name, name) == 0) return &m->s[i];
  return NULL;
}

static void add_rseries(po_chart *c, rseries *s, const char *label) {
  if (!s || s->n == 0) return;
  s->used = 1;
  if (s->mn && s->mx) po_chart_add_range(c, label, s->unit, s->t, s->mn, s->mx, s->n);
  po_chart_add_series(c, label, s->unit, s->t, s->last, s->n);
}

/* Which thresholds and events belong to a chart. The monitor names metrics "cpu", "memory",
 * "gpu_memory" (with "device"), "disk_busy" and "manual" (a requested cleanup, shown with memory);
 * series-style names ("cpu_utilization_ratio", "gpu0_memory_used_ratio") match by prefix too.
 * `device` >= 0 selects one GPU: entries naming another device are skipped. */
static int metric_matches(const cJSON *entry, const char *prefix, int device) {
  const char *metric = str(entry, "metric");
  if (!metric) return 0;
  if (strcmp(prefix, "memory") == 0 && strcmp(metric, "manual") == 0) return 1;
  if (device >= 0) {
    char own[16];
    snprintf(own, sizeof(own), "gpu%d", device);
    if (starts_with(metric, own) && !isdigit((unsigned char)metric[strlen(own)])) return 1;
    if (!starts_with(metric, "gpu_")) return 0;
    double d = num(entry, "device");
    return !isfinite(d) || to_i64(d, -1) == device; /* no device: applies to every GPU */
  }
  return starts_with(metric, prefix);
}

/* The unit a metric's values are in: the monitor's own metric names carry ratios. */
static po_unit metric_unit(const char *metric) {
  po_unit u = po_unit_from_name(metric);
  if (u != PO_UNIT_NONE || !metric) return u;
  static const char *const ratios[] = {"cpu", "memory", "gpu_memory", "disk_busy", "manual"};
  for (size_t i = 0; i < PO__ARRAY_LEN(ratios); i++)
    if (strcmp(metric, ratios[i]) == 0) return PO_UNIT_RATIO;
  return PO_UNIT_NONE;
}

/* Thresholds and firing events for the chart: ratio thresholds on byte or core charts are scaled
 * by what the ratio refers to (memory limit, GPU memory total, the host's cores). */
static void add_alerts(po_chart *c, rmodel *m, const char *prefix, int device, po_unit unit,
                       double scale) {
  const cJSON *it;
  cJSON_ArrayForEach(it, m->thresholds) {
    const char *metric = str(it, "metric");
    double v = num(it, "value");
    if (!metric_matches(it, prefix, device) || !isfinite(v) || v <= 0) continue;
    po_unit mu = metric_unit(metric);
    if (mu == PO_UNIT_RATIO && unit != PO_UNIT_RATIO) { /* bytes of a limit, cores of a host */
      if (!isfinite(scale) || scale <= 0) continue;
      v *= scale;
    } else if (mu != unit) {
      continue;
    }
    char label[160];
    const char *src = str(it, "source");
    snprintf(label, sizeof(label), "threshold (%s)", src ? src : "config");
    po_chart_add_threshold(c, v, label);
  }
  cJSON_ArrayForEach(it, m->events) {
    const char *metric = str(it, "metric");
    double t = num(it, "t_seconds");
    if (!metric_matches(it, prefix, device) || !isfinite(t)) continue;
    po__cbuf lb;
    po__cbuf_init(&lb);
    char tb[48], vb[48], hb[48];
    po_unit mu = metric_unit(metric);
    po_format_value(t, PO_UNIT_ELAPSED, tb, sizeof(tb));
    po_format_value(num(it, "value"), mu, vb, sizeof(vb));
    po_format_value(num(it, "threshold"), mu, hb, sizeof(hb));
    po__cbuf_printf(&lb, "threshold fired at %s: %s = %s (threshold %s)", tb, metric, vb, hb);
    const cJSON *acts = arr(it, "actions"), *a;
    int first = 1;
    cJSON_ArrayForEach(a, acts) {
      if (!cJSON_IsString(a)) continue;
      po__cbuf_printf(&lb, "%s%s", first ? "; actions: " : ", ", a->valuestring);
      first = 0;
    }
    double freed = num(it, "freed_bytes");
    if (isfinite(freed) && freed > 0) {
      po_format_value(freed, PO_UNIT_BYTES, vb, sizeof(vb));
      po__cbuf_printf(&lb, "; freed %s", vb);
    }
    po_chart_add_marker(c, t, NAN, lb.data ? lb.data : metric);
    po__cbuf_free(&lb);
  }
}

static void add_phases(po_chart *c, rmodel *m) {
  const cJSON *it;
  cJSON_ArrayForEach(it, m->phases) {
    double a = num(it, "start_seconds"), e = num(it, "end_seconds");
    if (isfinite(a) && isfinite(e) && e >= a) po_chart_add_band(c, a, e, str(it, "name"));
  }
}

static po_chart *timeline(rmodel *m, const char *title, po_unit unit, const char *ylabel) {
  po_chart *c = po_chart_create(PO_CHART_LINES, title);
  if (!c) return NULL;
  po_chart_set_axis(c, 'x', "time since start", PO_UNIT_ELAPSED);
  po_chart_set_axis(c, 'y', ylabel, unit);
  add_phases(c, m);
  return c;
}

static int any_points(rseries *const *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] && s[i]->n > 0) return 1;
  return 0;
}

#define DROPPED_NOTE "%llu thresholds, bands or markers over the per-chart cap were not drawn."

/* A run report's process tree (`perfopt run`, `perfopt attach`): the tree's CPU and memory over
 * time, and one row per process. */
#define MAX_PROCESS_ROWS 200

static void process_row(po__cbuf *b, const cJSON *p) {
  const char *cmd = str(p, "cmdline");
  po__cbuf_printf(b, "<tr><td data-v=\"%.0f\">%.0f</td>", num(p, "pid"), num(p, "pid"));
  po__cbuf_puts(b, "<td class=\"name\" title=\"");
  esc(b, cmd);
  po__cbuf_puts(b, "\">");
  esc(b, cmd && *cmd ? cmd : str(p, "comm"));
  po__cbuf_puts(b, "</td><td>");
  esc(b, str(p, "state"));
  const char *sig = str(p, "signal_name");
  if (sig) {
    po__cbuf_puts(b, " (");
    esc(b, sig);
    po__cbuf_puts(b, ")");
  } else if (isfinite(num(p, "exit_code"))) {
    po__cbuf_printf(b, " (%.0f)", num(p, "exit_code"));
  }
  po__cbuf_puts(b, "</td>");
  num_cell(b, num(p, "start_seconds"), PO_UNIT_ELAPSED);
  num_cell(b, num(p, "user_seconds") + num(p, "system_seconds"), PO_UNIT_SECONDS);
  num_cell(b, num(p, "cpu_ratio_average"), PO_UNIT_RATIO);
  num_cell(b, num(p, "peak_rss_bytes"), PO_UNIT_BYTES);
  num_cell(b, num(p, "gpu_peak_memory_bytes"), PO_UNIT_BYTES);
  num_cell(b, num(p, "threads_peak"), PO_UNIT_COUNT);
  num_cell(b, num(p, "open_fds_peak"), PO_UNIT_COUNT);
  po__cbuf_puts(b, "</tr>\n");
}

static void section_processes(po__cbuf *b, rmodel *m, const cJSON *root) {
  const cJSON *pr = obj(root, "processes");
  if (!pr) return;
  po__cbuf_puts(b, "<section id=\"processes\"><h2>Process tree</h2>\n");
  rseries *cpu = find_series(m, "tree_cpu_ratio"), *rss = find_series(m, "tree_rss_bytes"),
          *gpu = find_series(m, "tree_gpu_memory_bytes");
  rseries *all[] = {cpu, rss, gpu};
  if (!any_points(all, 3)) {
    note(b, "no data recorded: the process tree was never sampled");
  } else {
    po_chart *c = timeline(m, "CPU of the process tree (100% = one core)", PO_UNIT_RATIO, "CPU");
    if (c) add_rseries(c, cpu, "all processes");
    emit_chart(b, c, DROPPED_NOTE, 0);
    c = timeline(m, "Memory of the process tree", PO_UNIT_BYTES, "memory");
    if (c) {
      add_rseries(c, rss, "RSS, all processes");
      add_rseries(c, gpu, "GPU memory, all processes");
    }
    emit_chart(b, c, DROPPED_NOTE, 0);
  }
  const cJSON *list = arr(pr, "list");
  size_t n = list ? (size_t)cJSON_GetArraySize(list) : 0, shown = 0;
  po__cbuf_puts(b, "<div class=\"scroll\"><table class=\"sortable data\"><thead><tr><th>pid</th>"
                   "<th>command</th><th>state</th><th>started</th><th>CPU</th><th>cores</th>"
                   "<th>peak RSS</th><th>peak GPU</th><th>threads</th><th>files</th></tr></thead>"
                   "<tbody>\n");
  const cJSON *p;
  cJSON_ArrayForEach(p, list) {
    if (shown == MAX_PROCESS_ROWS) break;
    if (!cJSON_IsObject(p)) continue;
    process_row(b, p);
    shown++;
  }
  po__cbuf_puts(b, "</tbody></table></div>\n");
  if (shown < n) {
    char msg[160];
    snprintf(msg, sizeof(msg), "Showing the first %zu processes; %zu more are in the JSON report.",
             shown, n - shown);
    note(b, msg);
  }
  po__cbuf_puts(b, "</section>\n");
}

/* ---- CPU and memory timelines: each quantity on a scale where it can be read ---------------- */

/* A copy of s with every value multiplied by k (for a ratio of all cores drawn in cores). */
static int scaled_copy(const rseries *s, double k, rseries *out) {
  memset(out, 0, sizeof *out);
  out->name = s->name;
  out->unit = PO_UNIT_NONE;
  out->n = s->n;
  out->t = s->t;
  double **dst[] = {&out->mn, &out->mx, &out->last};
  const double *src[] = {s->mn, s->mx, s->last};
  for (int j = 0; j < 3; j++) {
    if (!src[j]) continue;
    *dst[j] = po__malloc((s->n ? s->n : 1) * sizeof(double));
    if (!*dst[j]) return PO_ENOMEM;
    for (size_t i = 0; i < s->n; i++) (*dst[j])[i] = src[j][i] * k;
  }
  return 0;
}

static void free_scaled(rseries *s) {
  free(s->mn), free(s->mx), free(s->last);
}

/* The machine's busy share and this process's cores on one axis in cores: the process is never
 * drawn as "100%" above a system at 50% (a share of one core against a share of all of them),
 * and nothing is clipped at 100%. Without the core count, two charts. */
static void section_cpu(po__cbuf *b, rmodel *m) {
  po__cbuf_puts(b, "<section id=\"cpu\"><h2>CPU</h2>\n");
  rseries *sys = find_series(m, "cpu_utilization_ratio"),
          *proc = find_series(m, "process_cpu_ratio");
  rseries *all[] = {sys, proc};
  if (!any_points(all, 2)) {
    note(b, "no data recorded: no CPU samples (background monitoring off or too short a run)");
  } else if (isfinite(m->cores)) {
    po_chart *c = timeline(m, "CPU: cores busy", PO_UNIT_NONE, "cores");
    rseries sys_cores;
    int rc = sys && sys->n ? scaled_copy(sys, m->cores, &sys_cores) : 0;
    if (rc) b->oom = 1;
    if (c && !rc) {
      char label[64];
      snprintf(label, sizeof label, "all %.0f cores", m->cores);
      po_chart_add_threshold(c, m->cores, label);
      if (sys && sys->n) add_rseries(c, &sys_cores, "whole machine");
      add_rseries(c, proc, "this process");
      add_alerts(c, m, "cpu", -1, PO_UNIT_NONE, m->cores);
      if (sys) sys->used = 1;
    }
    if (sys && sys->n) free_scaled(&sys_cores);
    emit_chart(b, c, DROPPED_NOTE, 0);
  } else {
    if (sys && sys->n) {
      po_chart *c = timeline(m, "CPU: the whole machine (share of all cores)", PO_UNIT_RATIO, "CPU");
      if (c) {
        add_rseries(c, sys, "whole machine");
        add_alerts(c, m, "cpu", -1, PO_UNIT_RATIO, NAN);
      }
      emit_chart(b, c, DROPPED_NOTE, 0);
    }
    if (proc && proc->n) {
      po_chart *c = timeline(m, "CPU: this process (cores busy)", PO_UNIT_NONE, "cores");
      if (c) add_rseries(c, proc, "this process");
      emit_chart(b, c, DROPPED_NOTE, 0);
    }
  }
  po__cbuf_puts(b, "</section>\n");
}

/* The forecast drawn ahead of the memory curve: a line from the forecast's level at the last
 * sample to where the trend meets the limit (memory.forecast), with the limit and a marker where
 * they meet. Drawn at most a horizon (or a quarter of the run, when longer) ahead, so that a
 * distant limit does not squeeze the recorded curve. */
static void add_forecast(po_chart *c, const rseries *used, const cJSON *mem) {
  const cJSON *f = obj(mem, "forecast");
  double level = num(f, "level_bytes"), slope = num(f, "slope_bytes_per_second");
  double ttl = num(f, "time_to_limit_seconds"), limit = num(f, "limit_bytes");
  double horizon = num(f, "horizon_seconds");
  const char *trend = str(f, "trend");
  if (!used || !used->n || !trend || strcmp(trend, "rising") || !(ttl >= 0) ||
      !isfinite(level) || !(slope > 0) || !(limit > 0))
    return;
  double t0 = used->t[used->n - 1], span = t0 - used->t[0];
  double ahead = isfinite(horizon) && horizon > span / 4 ? horizon : span / 4;
  if (!(ahead > 0)) ahead = ttl;
  double dt = ttl < ahead ? ttl : ahead;
  double x[2] = {t0, t0 + dt}, y[2] = {level, level + slope * dt};
  po_chart_add_series(c, "forecast", PO_UNIT_BYTES, x, y, 2);
  po_chart_add_threshold(c, limit, "memory limit");
  char tb[48], label[96];
  po_format_value(ttl, PO_UNIT_SECONDS, tb, sizeof tb);
  snprintf(label, sizeof label, "limit forecast in %s", tb);
  po_chart_add_marker(c, t0 + dt, y[1], ttl <= ahead ? label : "forecast continues");
}

/* The autopilot's graded actions and whether each helped; the flight record when one exists. */
static void section_autopilot(po__cbuf *b, const cJSON *root) {
  const cJSON *mem = obj(root, "memory"), *ap = obj(mem, "autopilot"), *it;
  const cJSON *acts = arr(ap, "actions"), *fl = obj(root, "flight");
  if (fl) {
    char msg[400];
    snprintf(msg, sizeof msg, "Flight record: written at the emergency grade (%s).",
             str(fl, "reason") ? str(fl, "reason") : "no reason recorded");
    note(b, msg);
  }
  if (!acts || cJSON_GetArraySize(acts) == 0) return;
  po__cbuf_puts(b, "<h3>Autopilot</h3><table class=\"data sortable\"><thead><tr><th>time</th>"
                   "<th>metric</th><th>grade</th><th>trigger</th><th>limit in (before)</th>"
                   "<th>freed</th><th>limit in (after)</th><th>helped</th></tr></thead><tbody>");
  int k = 0;
  cJSON_ArrayForEach(it, acts) {
    if (k++ >= MAX_EVENT_ROWS) break;
    po__cbuf_puts(b, "<tr>");
    num_cell(b, num(it, "t_seconds"), PO_UNIT_ELAPSED);
    po__cbuf_puts(b, "<td>");
    esc(b, str(it, "metric"));
    po__cbuf_puts(b, "</td><td>");
    esc(b, str(it, "grade"));
    po__cbuf_puts(b, "</td><td>");
    const cJSON *tr, *trig = arr(it, "trigger");
    int first = 1;
    cJSON_ArrayForEach(tr, trig) {
      if (!first) po__cbuf_puts(b, ", ");
      esc(b, cJSON_IsString(tr) ? tr->valuestring : "");
      first = 0;
    }
    po__cbuf_puts(b, "</td>");
    double before = num(it, "time_to_limit_before_seconds");
    num_cell(b, before >= 0 ? before : NAN, PO_UNIT_SECONDS);
    num_cell(b, num(it, "freed_bytes"), PO_UNIT_BYTES);
    double after = num(it, "time_to_limit_after_seconds");
    num_cell(b, after >= 0 ? after : NAN, PO_UNIT_SECONDS);
    const cJSON *helped = cJSON_GetObjectItemCaseSensitive(it, "helped");
    po__cbuf_puts(b, !helped ? "<td>not checked</td>"
                     : cJSON_IsTrue(helped) ? "<td>yes</td>"
                                            : "<td>no</td>");
    po__cbuf_puts(b, "</tr>\n");
  }
  po__cbuf_puts(b, "</tbody></table>\n");
  int total = cJSON_GetArraySize(acts);
  if (total > MAX_EVENT_ROWS) {
    char msg[96];
    snprintf(msg, sizeof(msg), "%d more autopilot actions are in the JSON report.",
             total - MAX_EVENT_ROWS);
    note(b, msg);
  }
}

/* The process's peak (its max column when recorded) as a marker. */
static void add_peak_marker(po_chart *c, const rseries *rss) {
  if (!rss || !rss->n) return;
  const double *v = rss->mx ? rss->mx : rss->last;
  size_t pk = SIZE_MAX;
  for (size_t i = 0; i < rss->n; i++)
    if (isfinite(v[i]) && (pk == SIZE_MAX || v[i] > v[pk])) pk = i;
  if (pk == SIZE_MAX) return;
  char vb[48], tb[48], label[128];
  po_format_value(v[pk], PO_UNIT_BYTES, vb, sizeof(vb));
  po_format_value(rss->t[pk], PO_UNIT_ELAPSED, tb, sizeof(tb));
  snprintf(label, sizeof(label), "peak of this process: %s at %s", vb, tb);
  po_chart_add_marker(c, rss->t[pk], v[pk], label);
}

static double series_max(const rseries *s) {
  double mx = NAN;
  for (size_t i = 0; s && i < s->n; i++) {
    double v = s->mx ? s->mx[i] : s->last[i];
    if (isfinite(v) && !(v <= mx)) mx = v;
  }
  return mx;
}

/* The process on the machine's scale (with the forecast drawn ahead of the machine's curve), or on its own when it would be a flat line there (under a
 * tenth of the machine's use). */
static void memory_timelines(po__cbuf *b, rmodel *m, rseries *rss, rseries *used,
                             const cJSON *mem) {
  double rmax = series_max(rss), umax = series_max(used);
  int own = isfinite(rmax) && isfinite(umax) && rmax > 0 && rmax < 0.1 * umax;
  if (own) {
    po_chart *p = timeline(m, "This process: RSS (peak marked)", PO_UNIT_BYTES, "memory");
    if (p) {
      add_rseries(p, rss, "this process (RSS)");
      add_peak_marker(p, rss);
    }
    emit_chart(b, p, DROPPED_NOTE, 0);
  }
  po_chart *c = timeline(m, own ? "System memory" : "Memory over time (peak marked)", PO_UNIT_BYTES,
                         "memory");
  if (c) {
    add_rseries(c, used, "system used");
    if (!own) {
      add_rseries(c, rss, "this process (RSS)");
      add_peak_marker(c, rss);
    }
    add_alerts(c, m, "memory", -1, PO_UNIT_BYTES, m->mem_limit);
    add_forecast(c, used, mem);
  }
  emit_chart(b, c, DROPPED_NOTE, 0);
}

static void section_memory(po__cbuf *b, rmodel *m, const cJSON *root) {
  po__cbuf_puts(b, "<section id=\"memory\"><h2>Memory</h2>\n");
  rseries *rss = find_series(m, "process_rss_bytes"), *used = find_series(m, "memory_used_bytes");
  rseries *avail = find_series(m, "memory_available_bytes");
  rseries *all[] = {rss, used, avail};
  if (!any_points(all, 3)) {
    note(b, "no data recorded: no memory samples");
  } else {
    memory_timelines(b, m, rss, used, obj(root, "memory"));
    /* memory by category: this process, other processes, available (needs a shared time axis) */
    if (rss && used && avail && rss->n == used->n && used->n == avail->n && rss->n > 0 &&
        memcmp(rss->t, used->t, rss->n * sizeof(double)) == 0 &&
        memcmp(rss->t, avail->t, rss->n * sizeof(double)) == 0) {
      size_t n = rss->n;
      double *other = po__malloc(n * sizeof(double));
      po_chart *s = po_chart_create(PO_CHART_STACKED, "System memory by category");
      if (other && s) {
        for (size_t i = 0; i < n; i++) {
          double o = used->last[i] - rss->last[i];
          other[i] = isfinite(o) ? (o > 0 ? o : 0) : NAN;
        }
        po_chart_set_axis(s, 'x', "time since start", PO_UNIT_ELAPSED);
        po_chart_set_axis(s, 'y', "memory", PO_UNIT_BYTES);
        add_phases(s, m);
        po_chart_add_series(s, "this process (RSS)", PO_UNIT_BYTES, rss->t, rss->last, n);
        po_chart_add_series(s, "other processes", PO_UNIT_BYTES, rss->t, other, n);
        po_chart_add_series(s, "available", PO_UNIT_BYTES, rss->t, avail->last, n);
        avail->used = 1;
      }
      free(other);
      emit_chart(b, s, DROPPED_NOTE, 0);
    }
  }
  const cJSON *mem = obj(root, "memory");
  const cJSON *cl = arr(mem, "cleanups"), *gd = arr(mem, "guards"), *it;
  if (cl && cJSON_GetArraySize(cl) > 0) {
    po__cbuf_puts(b,
                  "<h3>Cleanups</h3><table class=\"data sortable\"><thead><tr><th>time</th>"
                  "<th>level</th><th>type</th><th>handler</th><th>freed</th></tr></thead><tbody>");
    int k = 0;
    cJSON_ArrayForEach(it, cl) {
      if (k++ >= MAX_EVENT_ROWS) break;
      po__cbuf_puts(b, "<tr>");
      num_cell(b, num(it, "t_seconds"), PO_UNIT_ELAPSED);
      po__cbuf_puts(b, "<td>");
      esc(b, str(it, "level"));
      po__cbuf_puts(b, "</td><td>");
      esc(b, str(it, "type"));
      po__cbuf_puts(b, "</td><td>");
      esc(b, str(it, "handler"));
      po__cbuf_puts(b, "</td>");
      num_cell(b, num(it, "freed_bytes"), PO_UNIT_BYTES);
      po__cbuf_puts(b, "</tr>\n");
    }
    po__cbuf_puts(b, "</tbody></table>\n");
    int total = cJSON_GetArraySize(cl);
    if (total > MAX_EVENT_ROWS) {
      char msg[96];
      snprintf(msg, sizeof(msg), "%d more cleanups are in the JSON report.",
               total - MAX_EVENT_ROWS);
      note(b, msg);
    }
  }
  if (gd && cJSON_GetArraySize(gd) > 0) {
    po__cbuf_puts(b,
                  "<h3>Memory guards</h3><table class=\"data sortable\"><thead><tr><th>time</th>"
                  "<th>guard</th><th>required</th><th>available</th><th>ran</th><th>result</th>"
                  "</tr></thead><tbody>");
    int k = 0;
    cJSON_ArrayForEach(it, gd) {
      if (k++ >= MAX_EVENT_ROWS) break;
      po__cbuf_puts(b, "<tr>");
      num_cell(b, num(it, "t_seconds"), PO_UNIT_ELAPSED);
      po__cbuf_puts(b, "<td>");
      esc(b, str(it, "name"));
      po__cbuf_puts(b, "</td>");
      num_cell(b, num(it, "required_bytes"), PO_UNIT_BYTES);
      num_cell(b, num(it, "available_bytes"), PO_UNIT_BYTES);
      po__cbuf_puts(b, "<td>");
      esc(b, str(it, "ran"));
      po__cbuf_puts(b, "</td><td>");
      esc(b, str(it, "result"));
      po__cbuf_puts(b, "</td></tr>\n");
    }
    po__cbuf_puts(b, "</tbody></table>\n");
  }
  section_autopilot(b, root);
  po__cbuf_puts(b, "</section>\n");
}

static void section_disk(po__cbuf *b, rmodel *m) {
  po__cbuf_puts(b, "<section id=\"disk\"><h2>Disk</h2>\n");
  rseries *rd = find_series(m, "disk_read_bytes_per_second");
  rseries *wr = find_series(m, "disk_write_bytes_per_second");
  rseries *busy = find_series(m, "disk_busy_ratio");
  rseries *io[] = {rd, wr};
  if (!any_points(io, 2) && !(busy && busy->n)) {
    note(b, "no data recorded: no disk samples");
  } else {
    if (any_points(io, 2)) {
      po_chart *c = timeline(m, "Disk throughput", PO_UNIT_BYTES_PER_SECOND, "throughput");
      if (c) {
        add_rseries(c, rd, "read");
        add_rseries(c, wr, "write");
      }
      emit_chart(b, c, DROPPED_NOTE, 0);
    }
    if (busy && busy->n) {
      po_chart *c = timeline(m, "Disk busy time", PO_UNIT_RATIO, "busy");
      if (c) {
        add_rseries(c, busy, "busy");
        add_alerts(c, m, "disk", -1, PO_UNIT_RATIO, NAN);
      }
      emit_chart(b, c, DROPPED_NOTE, 0);
    }
  }
  po__cbuf_puts(b, "</section>\n");
}

static const cJSON *gpu_device(const rmodel *m, int index) {
  const cJSON *it;
  cJSON_ArrayForEach(it, m->gpu_devices) if (to_i64(num(it, "index"), -1) == index) return it;
  return NULL;
}

static void section_gpu(po__cbuf *b, rmodel *m, const cJSON *root) {
  po__cbuf_puts(b, "<section id=\"gpu\"><h2>GPU</h2>\n");
  const cJSON *gpu = obj(root, "gpu");
  int drew = 0;
  for (int g = 0; g < 64; g++) {
    char nm[64], nu[64], prefix[16], title[160];
    snprintf(nm, sizeof(nm), "gpu%d_memory_used_bytes", g);
    snprintf(nu, sizeof(nu), "gpu%d_utilization_ratio", g);
    snprintf(prefix, sizeof(prefix), "gpu%d", g);
    rseries *mem = find_series(m, nm), *util = find_series(m, nu);
    if (!(mem && mem->n) && !(util && util->n)) continue;
    const cJSON *dev = gpu_device(m, g);
    const char *dname = str(dev, "name");
    if (mem && mem->n) {
      snprintf(title, sizeof(title), "GPU %d memory%s%s", g, dname ? ": " : "", dname ? dname : "");
      po_chart *c = timeline(m, title, PO_UNIT_BYTES, "memory");
      if (c) {
        add_rseries(c, mem, "used");
        add_alerts(c, m, prefix, g, PO_UNIT_BYTES, num(dev, "memory_total_bytes"));
      }
      emit_chart(b, c, DROPPED_NOTE, 0);
    }
    if (util && util->n) {
      snprintf(title, sizeof(title), "GPU %d utilization", g);
      po_chart *c = timeline(m, title, PO_UNIT_RATIO, "utilization");
      if (c) add_rseries(c, util, "utilization");
      emit_chart(b, c, DROPPED_NOTE, 0);
    }
    drew = 1;
  }
  const cJSON *devs = arr(gpu, "devices");
  if (devs && cJSON_GetArraySize(devs) > 0) {
    po__cbuf_puts(b,
                  "<table class=\"data\"><thead><tr><th>#</th><th>name</th><th>memory used</th>"
                  "<th>memory total</th><th>utilization</th><th>temperature</th><th>power</th>"
                  "</tr></thead><tbody>");
    const cJSON *it;
    cJSON_ArrayForEach(it, devs) {
      po__cbuf_printf(b, "<tr><td>%.0f</td><td title=\"", num(it, "index"));
      esc(b, str(it, "uuid"));
      po__cbuf_puts(b, "\">");
      esc(b, str(it, "name"));
      po__cbuf_puts(b, "</td>");
      num_cell(b, num(it, "memory_used_bytes"), PO_UNIT_BYTES);
      num_cell(b, num(it, "memory_total_bytes"), PO_UNIT_BYTES);
      num_cell(b, num(it, "utilization_gpu_ratio"), PO_UNIT_RATIO);
      num_cell(b, num(it, "temperature_celsius"), PO_UNIT_CELSIUS);
      num_cell(b, num(it, "power_watts"), PO_UNIT_WATTS);
      po__cbuf_puts(b, "</tr>\n");
    }
    po__cbuf_puts(b, "</tbody></table>\n");
    drew = 1;
  }
  if (!drew) {
    const char *why = str(gpu, "reason");
    char msg[300];
    snprintf(msg, sizeof(msg), "no data recorded: no GPU%s%s", why && *why ? " (" : "",
             why && *why ? why : "");
    if (why && *why) strncat(msg, ")", sizeof(msg) - strlen(msg) - 1);
    note(b, msg);
  }
  po__cbuf_puts(b, "</section>\n");
}

/* Series no section claimed (temperatures, power, new metrics) still get drawn, grouped by unit. */
static void section_other(po__cbuf *b, rmodel *m) {
  int any = 0;
  for (size_t i = 0; i < m->n; i++)
    if (!m->s[i].used && m->s[i].n) any = 1;
  if (!any) return;
  po__cbuf_puts(b, "<section id=\"other\"><h2>Other series</h2>\n");
  for (int u = 0; u <= PO_UNIT_COUNT; u++) {
    po_chart *c = NULL;
    for (size_t i = 0; i < m->n; i++) {
      rseries *s = &m->s[i];
      if (s->used || !s->n || (int)s->unit != u) continue;
      if (!c) c = timeline(m, "Other series", (po_unit)u, NULL);
      if (c) add_rseries(c, s, s->name);
    }
    if (c) emit_chart(b, c, DROPPED_NOTE, 0);
  }
  po__cbuf_puts(b, "</section>\n");
}

static void section_cache(po__cbuf *b, const cJSON *root) {
  po__cbuf_puts(b, "<section id=\"cache\"><h2>Caches</h2>\n");
  const cJSON *caches = arr(obj(root, "cache"), "caches");
  if (!caches || cJSON_GetArraySize(caches) == 0) {
    note(b, "no data recorded: no cache was used");
    po__cbuf_puts(b, "</section>\n");
    return;
  }
  po__cbuf_puts(b,
                "<table class=\"data sortable\"><thead><tr><th>cache</th><th>policy</th>"
                "<th>used</th><th>budget</th><th>entries</th><th>hit ratio</th><th>hits</th>"
                "<th>misses</th><th>evictions</th><th>shrinks</th></tr></thead><tbody>\n");
  const cJSON *it;
  cJSON_ArrayForEach(it, caches) {
    po__cbuf_puts(b, "<tr><td class=\"name\">");
    esc(b, str(it, "name"));
    po__cbuf_puts(b, "</td><td>");
    esc(b, str(it, "policy"));
    po__cbuf_puts(b, "</td>");
    num_cell(b, num(it, "bytes"), PO_UNIT_BYTES);
    num_cell(b, num(it, "budget_bytes"), PO_UNIT_BYTES);
    num_cell(b, num(it, "entries"), PO_UNIT_COUNT);
    double hr = num(it, "hit_ratio");
    if (!isfinite(hr)) {
      double h = num(it, "hits"), mi = num(it, "misses");
      hr = h + mi > 0 ? h / (h + mi) : NAN;
    }
    num_cell(b, hr, PO_UNIT_RATIO);
    num_cell(b, num(it, "hits"), PO_UNIT_COUNT);
    num_cell(b, num(it, "misses"), PO_UNIT_COUNT);
    num_cell(b, num(it, "evictions"), PO_UNIT_COUNT);
    num_cell(b, (double)cJSON_GetArraySize(arr(it, "shrinks")), PO_UNIT_COUNT);
    po__cbuf_puts(b, "</tr>\n");
    const cJSON *pt = arr(it, "per_type"), *t;
    cJSON_ArrayForEach(t, pt) {
      po__cbuf_puts(b, "<tr class=\"sub\"><td class=\"name\">&#8627; ");
      esc(b, str(t, "type"));
      po__cbuf_puts(b, "</td><td></td>");
      num_cell(b, num(t, "bytes"), PO_UNIT_BYTES);
      po__cbuf_puts(b, "<td></td>");
      num_cell(b, num(t, "entries"), PO_UNIT_COUNT);
      double h = num(t, "hits"), mi = num(t, "misses");
      num_cell(b, h + mi > 0 ? h / (h + mi) : NAN, PO_UNIT_RATIO);
      num_cell(b, h, PO_UNIT_COUNT);
      num_cell(b, mi, PO_UNIT_COUNT);
      num_cell(b, num(t, "evictions"), PO_UNIT_COUNT);
      po__cbuf_puts(b, "<td></td></tr>\n");
    }
  }
  po__cbuf_puts(b, "</tbody></table>\n</section>\n");
}

/* ---- ranks (a merged report: perfopt merge) ------------------------------------------------ */

#define MAX_RANK_COLUMNS 16
#define MAX_RANK_FUNCTIONS 20

static void ranks_table(po__cbuf *b, const cJSON *ranks) {
  po__cbuf_puts(b,
                "<table class=\"data sortable\"><thead><tr><th>rank</th><th>host</th><th>pid</th>"
                "<th>wall time</th><th>profiled</th><th>peak RSS</th><th>top function</th>"
                "<th>its self time</th><th>suggestions</th></tr></thead><tbody>\n");
  const cJSON *r;
  cJSON_ArrayForEach(r, ranks) {
    po__cbuf_puts(b, "<tr>");
    num_cell(b, num(r, "rank"), PO_UNIT_COUNT);
    po__cbuf_puts(b, "<td>");
    esc(b, str(r, "hostname"));
    po__cbuf_puts(b, "</td>");
    num_cell(b, num(r, "pid"), PO_UNIT_COUNT);
    num_cell(b, num(r, "wall_seconds"), PO_UNIT_SECONDS);
    num_cell(b, num(r, "profiled_seconds"), PO_UNIT_SECONDS);
    num_cell(b, num(r, "peak_rss_bytes"), PO_UNIT_BYTES);
    po__cbuf_puts(b, "<td class=\"name\">");
    esc(b, str(r, "top_function"));
    po__cbuf_puts(b, "</td>");
    num_cell(b, num(r, "top_function_self_seconds"), PO_UNIT_SECONDS);
    po__cbuf_printf(b, "<td>%.0f critical, %.0f warning, %.0f info</td></tr>\n",
                    num(r, "suggestions_critical"), num(r, "suggestions_warning"),
                    num(r, "suggestions_info"));
  }
  po__cbuf_puts(b, "</tbody></table>\n");
}

/* The functions with the most self time, one column per rank; the slowest rank's cell marked. */
static void ranks_functions(po__cbuf *b, const cJSON *root, int nranks) {
  const cJSON *fns = arr(obj(root, "profile"), "functions");
  size_t n = fns ? (size_t)cJSON_GetArraySize(fns) : 0;
  if (n == 0) return;
  fnref *v = collect_refs(b, fns, "self_seconds", &n);
  if (!v) return;
  qsort(v, n, sizeof(fnref), cmp_fnref_desc);
  int cols = nranks < MAX_RANK_COLUMNS ? nranks : MAX_RANK_COLUMNS;
  po__cbuf_puts(b, "<h3>Self time per rank</h3><div class=\"scroll\"><table class=\"data\">"
                   "<thead><tr><th>function</th>");
  for (int r = 0; r < cols; r++) po__cbuf_printf(b, "<th>rank %d</th>", r);
  po__cbuf_puts(b, "</tr></thead><tbody>\n");
  for (size_t i = 0; i < n && i < MAX_RANK_FUNCTIONS; i++) {
    const cJSON *per = arr(v[i].f, "rank_self_seconds");
    int slowest = (int)to_i64(num(v[i].f, "slowest_rank"), -1);
    po__cbuf_puts(b, "<tr><td class=\"name\">");
    esc(b, str(v[i].f, "name"));
    po__cbuf_puts(b, "</td>");
    for (int r = 0; r < cols; r++) {
      const cJSON *x = cJSON_GetArrayItem(per, r);
      if (r == slowest) po__cbuf_puts(b, "<td class=\"slowest\" title=\"slowest rank\">");
      else po__cbuf_puts(b, "<td>");
      if (cJSON_IsNumber(x))
        fmt(b, x->valuedouble, PO_UNIT_SECONDS);
      else
        po__cbuf_puts(b, "&#8212;");
      po__cbuf_puts(b, "</td>");
    }
    po__cbuf_puts(b, "</tr>\n");
  }
  po__cbuf_puts(b, "</tbody></table></div>\n");
  if (nranks > cols) {
    char msg[120];
    snprintf(msg, sizeof msg, "Showing the first %d of %d ranks; the JSON report has them all.",
             cols, nranks);
    note(b, msg);
  }
  free(v);
}

static void section_ranks(po__cbuf *b, const cJSON *root) {
  const cJSON *ranks = arr(root, "ranks");
  int n = cJSON_GetArraySize(ranks);
  if (n <= 0) return;
  po__cbuf_puts(b, "<section id=\"ranks\"><h2>Ranks</h2>\n");
  const cJSON *m = obj(root, "merge");
  char msg[200];
  snprintf(msg, sizeof msg,
           "%d reports merged: the slowest rank is %.0f, the memory-heaviest is %.0f (its "
           "memory is shown below). Functions and call trees are summed over the ranks.",
           n, num(m, "slowest_rank"), num(m, "memory_heaviest_rank"));
  po__cbuf_puts(b, "<p class=\"hint\">");
  esc(b, msg);
  po__cbuf_puts(b, "</p>\n");
  ranks_table(b, ranks);
  ranks_functions(b, root, n);
  po__cbuf_puts(b, "</section>\n");
}

static const char STYLE[] =
    "body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;font-size:14px;color:#222;"
    "margin:0 auto;padding:16px 24px;max-width:1180px;background:#fafafa}"
    "h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid "
    "#ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}"
    "nav a{margin-right:12px;color:#0072B2}"
    ".cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #ddd;"
    "border-radius:6px;padding:10px 16px;min-width:180px}.big{font-size:22px;font-weight:bold}"
    ".cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{flex:1;min-width:320px}"
    "table{border-collapse:collapse;background:#fff}td,th{padding:3px 8px;border-bottom:1px solid "
    "#eee;text-align:left;vertical-align:top}table.data td[data-v]{text-align:right;"
    "font-variant-numeric:tabular-nums}table.kv th{font-weight:normal;color:#555}"
    "table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:' \\2195';"
    "color:#aaa}td.name{max-width:520px;overflow-wrap:anywhere}tr.sub td{color:#555;font-size:13px}"
    ".chart{background:#fff;border:1px solid #ddd;border-radius:4px;margin:8px 0;overflow-x:auto}"
    ".chart svg{display:block;max-width:100%;height:auto}"
    ".note{color:#666;font-style:italic}.hint{color:#555}"
    ".scroll{max-height:520px;overflow-y:auto;border:1px solid #ddd;display:inline-block}"
    ".scroll thead th{position:sticky;top:0;background:#fff;box-shadow:0 1px 0 #ddd}"
    "ul.sugg{list-style:none;padding:0}ul.sugg li{background:#fff;border-left:5px solid #56B4E9;"
    "padding:8px 12px;margin:6px 0}ul.sugg li.warn{border-color:#E69F00}ul.sugg "
    "li.crit{border-color:#D55E00}.sev{text-transform:uppercase;font-size:11px;color:#555}"
    ".sid{font-size:12px;color:#777;margin-left:6px}ul.sugg div{margin-top:3px}"
    "td.slowest{background:#fde0cf;font-weight:bold}"
    "footer{margin:32px 0 8px;color:#777;font-size:12px}";

static const char SCRIPT[] =
    "(function(){document.querySelectorAll('table.sortable').forEach(function(t){"
    "var hs=t.tHead?t.tHead.rows[0].cells:[];Array.prototype.forEach.call(hs,function(th,i){"
    "th.addEventListener('click',function(){var b=t.tBodies[0];"
    "var rows=Array.prototype.filter.call(b.rows,function(r){return "
    "!r.classList.contains('sub');});"
    "var asc=th.getAttribute('data-dir')!=='asc';th.setAttribute('data-dir',asc?'asc':'desc');"
    "rows.sort(function(a,c){var x=a.cells[i],y=c.cells[i];if(!x||!y)return 0;"
    "var vx=x.getAttribute('data-v'),vy=y.getAttribute('data-v');"
    "var r=(vx!==null&&vy!==null)?(parseFloat(vx)-parseFloat(vy)):"
    "x.textContent.localeCompare(y.textContent);return asc?r:-r;});"
    "rows.forEach(function(r){var s=[];var n=r.nextElementSibling;"
    "while(n&&n.classList.contains('sub')){s.push(n);n=n.nextElementSibling;}"
    "b.appendChild(r);s.forEach(function(e){b.appendChild(e);});});});});});})();";

char *po__html_render_json(const cJSON *root, size_t *len) {
  return po__html_render_json_with(root, NULL, len);
}

char *po__html_render_json_with(const cJSON *root, const char *extra, size_t *len) {
  if (!root) return NULL;
  po__cbuf b;
  po__cbuf_init(&b);
  const char *hostname = str(obj(root, "host"), "hostname");
  po__cbuf_puts(&b,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<title>perfopt report");
  if (hostname) {
    po__cbuf_puts(&b, ": ");
    esc(&b, hostname);
  }
  po__cbuf_printf(&b, "</title>\n<style>%s</style>\n</head><body>\n<h1>perfopt report", STYLE);
  if (hostname) {
    po__cbuf_puts(&b, " &#8212; ");
    esc(&b, hostname);
  }
  po__cbuf_puts(&b, "</h1>\n<nav><a href=\"#summary\">summary</a>");
  if (cJSON_GetArraySize(arr(root, "suggestions")) > 0)
    po__cbuf_puts(&b, "<a href=\"#suggestions\">suggestions</a>");
  if (obj(root, "processes")) po__cbuf_puts(&b, "<a href=\"#processes\">processes</a>");
  if (cJSON_GetArraySize(arr(root, "ranks")) > 0) po__cbuf_puts(&b, "<a href=\"#ranks\">ranks</a>");
  po__cbuf_puts(&b,
                "<a href=\"#functions\">functions</a><a href=\"#flame\">flame graph</a>"
                "<a href=\"#cpu\">CPU</a><a href=\"#memory\">memory</a><a href=\"#disk\">disk</a>"
                "<a href=\"#gpu\">GPU</a><a href=\"#cache\">caches</a></nav>\n");
  section_summary(&b, root);
  section_suggestions(&b, root);
  section_ranks(&b, root);
  section_functions(&b, root);
  section_flame(&b, root);
  rmodel m;
  if (rmodel_load(root, &m) != 0)
    b.oom = 1;
  else {
    section_processes(&b, &m, root);
    section_cpu(&b, &m);
    section_memory(&b, &m, root);
    po__html_section_heap(&b, root);
    section_disk(&b, &m);
    section_gpu(&b, &m, root);
    section_other(&b, &m);
  }
  rmodel_free(&m);
  section_cache(&b, root);
  const char *ver = str(root, "perfopt_version");
  po__cbuf_puts(&b, "<footer>Written by perfopt ");
  esc(&b, ver ? ver : PO_VERSION_STRING);
  po__cbuf_puts(&b,
                ". Self-contained: no network access, no external files. Times are seconds "
                "since the run started; hover charts for details.</footer>\n");
  po__cbuf_printf(&b, "<script>%s</script>\n", SCRIPT);
  if (extra) po__cbuf_puts(&b, extra);
  po__cbuf_puts(&b, "</body></html>\n");
  return po__cbuf_detach(&b, len);
}

/* ---- public entry points ------------------------------------------------------------------- */

int po_report_write_html(const po_report *rep, FILE *out) {
  if (!rep || !out) return PO_EINVAL;
  size_t len;
  char *html = po__html_render_json(po_report_json(rep), &len);
  if (!html) return PO_ENOMEM;
  int rc = fwrite(html, 1, len, out) == len ? 0 : PO_EIO;
  free(html);
  return rc;
}

int po_report_save_html(const po_report *rep, const char *path, char *errbuf, size_t errlen) {
  if (!rep || !path) return po__errf(PO_EINVAL, errbuf, errlen, "report or path is NULL");
  size_t len;
  char *html = po__html_render_json(po_report_json(rep), &len);
  if (!html)
    return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory rendering the report", path);
  int rc = po__write_file_atomic(path, html, len, errbuf, errlen);
  free(html);
  return rc;
}

