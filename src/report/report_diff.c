/* Comparing two reports: functions slower or faster (self time and p95), wall time, memory, and
 * suggestions new or vanished, as a diff model ({perfopt_version, diff}); its text form; and the
 * gates a CI job fails on (po_diff_check). */
#include "report/report_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A change smaller than this is "same": timing noise between two runs. */
#define SAME_BAND 0.05
/* A function is significant when its self time is at least this share of its run's profiled
 * time, or at least MIN_SELF_S, in either report; only significant ones are called slower or
 * faster and gated on. */
#define MIN_SHARE 0.01
#define MIN_SELF_S 0.001
/* p95 is compared only over at least this many calls in both reports. */
#define MIN_P95_CALLS 20
#define TEXT_ROWS 20

static double change(double a, double b) {
  return a > 0 && isfinite(a) && isfinite(b) ? (b - a) / a : NAN;
}

static const cJSON *find_named(const cJSON *arr, const char *name) {
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    const char *n = po__j_getstr(it, "name");
    if (n && strcmp(n, name) == 0) return it;
  }
  return NULL;
}

static double profiled(const cJSON *root) {
  return po__j_getnum(po__j_get(root, "profile"), "profiled_seconds");
}

static int significant(const cJSON *f, double prof) {
  double self = po__j_getnum(f, "self_seconds");
  return self >= MIN_SELF_S || (prof > 0 && self / prof >= MIN_SHARE);
}

static void pair(po__jw *w, cJSON *parent, const char *key, double a, double b) {
  cJSON *o = po__j_obj(w, parent, key);
  po__j_num(w, o, "a", a);
  po__j_num(w, o, "b", b);
  po__j_num(w, o, "change_ratio", change(a, b));
}

static void function_entry(po__jw *w, cJSON *arr, const char *name, const cJSON *fa,
                           const cJSON *fb, const cJSON *ra, const cJSON *rb) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "name", name);
  int sig = (fa && significant(fa, profiled(ra))) || (fb && significant(fb, profiled(rb)));
  double sa = fa ? po__j_getnum(fa, "self_seconds") : NAN;
  double sb = fb ? po__j_getnum(fb, "self_seconds") : NAN;
  double pa = fa ? po__j_getnum(fa, "p95_seconds") : NAN;
  double pb = fb ? po__j_getnum(fb, "p95_seconds") : NAN;
  double ca = fa ? po__j_getnum(fa, "calls") : 0, cb = fb ? po__j_getnum(fb, "calls") : 0;
  double sc = change(sa, sb);
  double pc = ca >= MIN_P95_CALLS && cb >= MIN_P95_CALLS ? change(pa, pb) : NAN;
  const char *status = !fa ? "new" : !fb ? "vanished" : "same";
  if (fa && fb && sig) {
    int up = sc >= SAME_BAND || pc >= SAME_BAND;
    int down = sc <= -SAME_BAND || pc <= -SAME_BAND;
    status = up ? "slower" : down ? "faster" : "same";
  }
  po__j_str(w, o, "status", status);
  po__j_bool(w, o, "significant", sig);
  po__j_num(w, o, "a_self_seconds", sa);
  po__j_num(w, o, "b_self_seconds", sb);
  po__j_num(w, o, "self_change_ratio", sc);
  po__j_num(w, o, "a_p95_seconds", pa);
  po__j_num(w, o, "b_p95_seconds", pb);
  po__j_num(w, o, "p95_change_ratio", pc);
  po__j_num(w, o, "a_calls", ca);
  po__j_num(w, o, "b_calls", cb);
}

static void functions(po__jw *w, cJSON *diff, const cJSON *ra, const cJSON *rb) {
  cJSON *arr = po__j_arr(w, diff, "functions");
  const cJSON *fa_list = po__j_get(po__j_get(ra, "profile"), "functions");
  const cJSON *fb_list = po__j_get(po__j_get(rb, "profile"), "functions");
  const cJSON *f;
  cJSON_ArrayForEach(f, fa_list) {
    const char *name = po__j_getstr(f, "name");
    if (name && !w->err) function_entry(w, arr, name, f, find_named(fb_list, name), ra, rb);
  }
  cJSON_ArrayForEach(f, fb_list) {
    const char *name = po__j_getstr(f, "name");
    if (name && !w->err && !find_named(fa_list, name))
      function_entry(w, arr, name, NULL, f, ra, rb);
  }
}

static int same_suggestion(const cJSON *x, const cJSON *y) {
  const char *ix = po__j_getstr(x, "id"), *iy = po__j_getstr(y, "id");
  const char *tx = po__j_getstr(x, "target"), *ty = po__j_getstr(y, "target");
  return ix && iy && strcmp(ix, iy) == 0 && ((!tx && !ty) || (tx && ty && strcmp(tx, ty) == 0));
}

/* The suggestions of `from` that `other` does not have. */
static void suggestions_only_in(po__jw *w, cJSON *parent, const char *key, const cJSON *from,
                                const cJSON *other) {
  cJSON *arr = po__j_arr(w, parent, key);
  const cJSON *s, *t;
  cJSON_ArrayForEach(s, po__j_get(from, "suggestions")) {
    int found = 0;
    cJSON_ArrayForEach(t, po__j_get(other, "suggestions")) {
      found |= same_suggestion(s, t);
    }
    if (found || !po__j_getstr(s, "id")) continue;
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_str(w, o, "id", po__j_getstr(s, "id"));
    po__j_str(w, o, "severity", po__j_getstr(s, "severity"));
    po__j_str(w, o, "title", po__j_getstr(s, "title"));
    if (po__j_getstr(s, "target")) po__j_str(w, o, "target", po__j_getstr(s, "target"));
  }
}

static double num_or_nan(const cJSON *o, const char *key) {
  const cJSON *v = po__j_get(o, key);
  return cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : NAN;
}

int po_report_diff(const po_report *a, const po_report *b, po_report **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  const cJSON *ra = po_report_json(a), *rb = po_report_json(b);
  if (!ra || !rb) return PO_EINVAL;
  po__jw w = {0};
  cJSON *root = cJSON_CreateObject();
  if (!root) return PO_ENOMEM;
  po__j_str(&w, root, "perfopt_version", PO_VERSION_STRING);
  cJSON *diff = po__j_obj(&w, root, "diff");
  const cJSON *runa = po__j_get(ra, "run"), *runb = po__j_get(rb, "run");
  pair(&w, diff, "wall_seconds", num_or_nan(runa, "wall_seconds"),
       num_or_nan(runb, "wall_seconds"));
  pair(&w, diff, "profiled_seconds", num_or_nan(po__j_get(ra, "profile"), "profiled_seconds"),
       num_or_nan(po__j_get(rb, "profile"), "profiled_seconds"));
  const cJSON *ma = po__j_get(ra, "memory"), *mb = po__j_get(rb, "memory");
  cJSON *mem = po__j_obj(&w, diff, "memory");
  pair(&w, mem, "peak_rss_bytes", num_or_nan(ma, "peak_rss_bytes"),
       num_or_nan(mb, "peak_rss_bytes"));
  pair(&w, mem, "rss_bytes", num_or_nan(ma, "rss_bytes"), num_or_nan(mb, "rss_bytes"));
  functions(&w, diff, ra, rb);
  cJSON *sug = po__j_obj(&w, diff, "suggestions");
  suggestions_only_in(&w, sug, "new", rb, ra);
  suggestions_only_in(&w, sug, "vanished", ra, rb);
  if (w.err) {
    cJSON_Delete(root);
    return w.err;
  }
  *out = po__report_wrap(root);
  return *out ? 0 : PO_ENOMEM;
}

/* ---- text ---------------------------------------------------------------------------------- */

static int cmp_abs_delta(const void *x, const void *y) {
  const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
  double da = fabs(po__j_getnum(a, "b_self_seconds") - po__j_getnum(a, "a_self_seconds"));
  double db = fabs(po__j_getnum(b, "b_self_seconds") - po__j_getnum(b, "a_self_seconds"));
  return (da < db) - (da > db);
}

static void pct(char *buf, size_t len, const cJSON *o, const char *key) {
  const cJSON *v = po__j_get(o, key);
  if (cJSON_IsNumber(v))
    snprintf(buf, len, "%+.1f%%", v->valuedouble * 100);
  else
    snprintf(buf, len, "-");
}

static void value_line(FILE *out, const char *label, const cJSON *p, po_unit unit) {
  char a[48], b[48], c[32];
  if (!p) return;
  po_format_value(po__j_getnum(p, "a"), unit, a, sizeof a);
  po_format_value(po__j_getnum(p, "b"), unit, b, sizeof b);
  if (!cJSON_IsNumber(po__j_get(p, "a")) || !cJSON_IsNumber(po__j_get(p, "b"))) return;
  pct(c, sizeof c, p, "change_ratio");
  fprintf(out, "  %-16s %12s -> %12s  %s\n", label, a, b, c);
}

static void suggestion_lines(FILE *out, const char *what, const cJSON *list) {
  const cJSON *s;
  cJSON_ArrayForEach(s, list) {
    const char *t = po__j_getstr(s, "target");
    fprintf(out, "  %s [%s] %s%s%s: %s\n", what, po__j_getstr(s, "severity"),
            po__j_getstr(s, "id"), t ? " " : "", t ? t : "", po__j_getstr(s, "title"));
  }
}

int po_report_write_diff_text(const po_report *diff, FILE *out) {
  const cJSON *d = po__j_get(po_report_json(diff), "diff");
  if (!d || !out) return PO_EINVAL;
  fprintf(out, "perfopt diff (a -> b)\n");
  value_line(out, "wall time", po__j_get(d, "wall_seconds"), PO_UNIT_SECONDS);
  value_line(out, "profiled time", po__j_get(d, "profiled_seconds"), PO_UNIT_SECONDS);
  const cJSON *mem = po__j_get(d, "memory");
  value_line(out, "peak RSS", po__j_get(mem, "peak_rss_bytes"), PO_UNIT_BYTES);
  value_line(out, "RSS at the end", po__j_get(mem, "rss_bytes"), PO_UNIT_BYTES);
  const cJSON *funcs = po__j_get(d, "functions"), *f;
  int n = cJSON_GetArraySize(funcs);
  const cJSON **rows = po__calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
  if (!rows) return PO_ENOMEM;
  size_t k = 0;
  cJSON_ArrayForEach(f, funcs) {
    const char *st = po__j_getstr(f, "status");
    if (k < (size_t)n && st && strcmp(st, "same") != 0 && cJSON_IsTrue(po__j_get(f, "significant")))
      rows[k++] = f;
  }
  qsort(rows, k, sizeof *rows, cmp_abs_delta);
  fprintf(out, "\n%-9s %-40s %12s %12s %8s %8s\n", "status", "function", "self a", "self b",
          "self", "p95");
  for (size_t i = 0; i < k && i < TEXT_ROWS; i++) {
    char sa[32], sb[32], sc[16], pc[16];
    po_format_value(po__j_getnum(rows[i], "a_self_seconds"), PO_UNIT_SECONDS, sa, sizeof sa);
    po_format_value(po__j_getnum(rows[i], "b_self_seconds"), PO_UNIT_SECONDS, sb, sizeof sb);
    pct(sc, sizeof sc, rows[i], "self_change_ratio");
    pct(pc, sizeof pc, rows[i], "p95_change_ratio");
    fprintf(out, "%-9s ", po__j_getstr(rows[i], "status"));
    po__text_cell(out, po__j_getstr(rows[i], "name"), 40);
    fprintf(out, " %12s %12s %8s %8s\n", sa, sb, sc, pc);
  }
  if (k == 0) fprintf(out, "  (no significant function changed by 5%% or more)\n");
  if (k > TEXT_ROWS) fprintf(out, "  ... %zu more in the JSON diff\n", k - TEXT_ROWS);
  const cJSON *sug = po__j_get(d, "suggestions");
  fprintf(out, "\nsuggestions: %d new, %d vanished\n",
          cJSON_GetArraySize(po__j_get(sug, "new")), cJSON_GetArraySize(po__j_get(sug, "vanished")));
  suggestion_lines(out, "+", po__j_get(sug, "new"));
  suggestion_lines(out, "-", po__j_get(sug, "vanished"));
  free(rows);
  return ferror(out) ? PO_EIO : 0;
}

/* ---- gates --------------------------------------------------------------------------------- */

static int severity_rank(const char *s) {
  if (!s) return -1;
  if (!strcmp(s, "info")) return 0;
  if (!strcmp(s, "warning")) return 1;
  if (!strcmp(s, "critical")) return 2;
  return -1;
}

/* "10%" or "10" as a ratio (0.10); -1 when malformed. */
static double parse_percent(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || !isfinite(v) || v < 0 || v > 1e6) return -1;
  if (*end == '%') end++;
  return *end ? -1 : v / 100;
}

static int gate_function(const cJSON *d, double limit, char *why, size_t whylen) {
  const cJSON *f;
  cJSON_ArrayForEach(f, po__j_get(d, "functions")) {
    if (!cJSON_IsTrue(po__j_get(f, "significant"))) continue;
    const cJSON *sc = po__j_get(f, "self_change_ratio"), *pc = po__j_get(f, "p95_change_ratio");
    double c = fmax(cJSON_IsNumber(sc) ? sc->valuedouble : -INFINITY,
                    cJSON_IsNumber(pc) ? pc->valuedouble : -INFINITY);
    if (c > limit) {
      snprintf(why, whylen, "%s is %.1f%% slower (%s), over the %.1f%% allowed",
               po__j_getstr(f, "name"), c * 100,
               cJSON_IsNumber(sc) && sc->valuedouble == c ? "self time" : "p95", limit * 100);
      return 1;
    }
  }
  return 0;
}

static int gate_value(const cJSON *p, const char *label, double limit, char *why, size_t whylen) {
  const cJSON *c = po__j_get(p, "change_ratio");
  if (cJSON_IsNumber(c) && c->valuedouble > limit) {
    snprintf(why, whylen, "%s rose %.1f%%, over the %.1f%% allowed", label, c->valuedouble * 100,
             limit * 100);
    return 1;
  }
  return 0;
}

static int gate_suggestions(const cJSON *d, int min_rank, char *why, size_t whylen) {
  const cJSON *s;
  cJSON_ArrayForEach(s, po__j_get(po__j_get(d, "suggestions"), "new")) {
    if (severity_rank(po__j_getstr(s, "severity")) >= min_rank) {
      snprintf(why, whylen, "new %s suggestion %s: %s", po__j_getstr(s, "severity"),
               po__j_getstr(s, "id"), po__j_getstr(s, "title"));
      return 1;
    }
  }
  return 0;
}

int po_diff_check(const po_report *diff, const char *spec, char *why, size_t whylen) {
  char dummy[8];
  if (!why || !whylen) why = dummy, whylen = sizeof dummy;
  why[0] = '\0';
  const cJSON *d = po__j_get(po_report_json(diff), "diff");
  const char *colon = spec ? strchr(spec, ':') : NULL;
  if (!d || !colon) goto bad;
  size_t klen = (size_t)(colon - spec);
  const char *arg = colon + 1;
  const cJSON *mem = po__j_get(d, "memory");
  if (klen == 11 && !strncmp(spec, "suggestions", klen)) {
    int r = severity_rank(arg);
    if (r < 0) goto bad;
    return gate_suggestions(d, r, why, whylen);
  }
  double limit = parse_percent(arg);
  if (limit < 0) goto bad;
  if (klen == 6 && !strncmp(spec, "slower", klen)) return gate_function(d, limit, why, whylen);
  if (klen == 4 && !strncmp(spec, "wall", klen))
    return gate_value(po__j_get(d, "wall_seconds"), "wall time", limit, why, whylen);
  if (klen == 4 && !strncmp(spec, "peak", klen))
    return gate_value(po__j_get(mem, "peak_rss_bytes"), "peak RSS", limit, why, whylen);
  if (klen == 3 && !strncmp(spec, "rss", klen))
    return gate_value(po__j_get(mem, "rss_bytes"), "RSS at the end", limit, why, whylen);
bad:
  snprintf(why, whylen,
           "'%s' is not a gate: use slower:PCT, wall:PCT, peak:PCT, rss:PCT (e.g. slower:10%%) or "
           "suggestions:info|warning|critical",
           spec ? spec : "(null)");
  return PO_EINVAL;
}
