/* The advisor's engine: reading the model for the rules, building suggestions, ordering them.
 * The rules themselves are in advisor_profile.c, advisor_memory.c, advisor_resources.c. */
#include "report/advisor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- reading the model ------------------------------------------------------------------- */

double po__adv_num(const cJSON *o, const char *key, int *ok) {
  const cJSON *v = po__j_get(o, key);
  int good = cJSON_IsNumber(v) && isfinite(v->valuedouble);
  if (ok) *ok = good;
  return good ? v->valuedouble : 0;
}

double po__adv_config(const po__adv *a, const char *key, double fallback) {
  int ok;
  double v = po__adv_num(a->config, key, &ok);
  return ok ? v : fallback;
}

static const cJSON *find_series(const po__adv *a, const char *name) {
  const cJSON *s;
  cJSON_ArrayForEach(s, po__j_get(a->resources, "series")) {
    const char *n = po__j_getstr(s, "name");
    if (n && strcmp(n, name) == 0) return s;
  }
  return NULL;
}

int po__adv_column(const po__adv *a, const char *series, const char *col, po__adv_col *out) {
  memset(out, 0, sizeof *out);
  const cJSON *s = find_series(a, series);
  const cJSON *v = po__j_get(s, col), *t = po__j_get(s, "t_seconds");
  if (!cJSON_IsArray(v)) return 0;
  double sum = 0;
  const cJSON *it, *ti = cJSON_IsArray(t) ? t->child : NULL;
  cJSON_ArrayForEach(it, v) {
    double tv = ti && cJSON_IsNumber(ti) ? ti->valuedouble : NAN;
    if (ti) ti = ti->next;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) continue;
    double x = it->valuedouble;
    if (out->n == 0) {
      out->min = out->max = out->first = x;
      out->t_first = tv;
    }
    out->min = fmin(out->min, x);
    out->max = fmax(out->max, x);
    out->last = x;
    out->t_last = tv;
    sum += x;
    out->n++;
  }
  out->mean = out->n ? sum / (double)out->n : 0;
  return 0;
}

double *po__adv_values(po__adv *a, const char *series, const char *col, size_t *n) {
  *n = 0;
  const cJSON *v = po__j_get(find_series(a, series), col);
  int len = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
  if (len <= 0) return NULL;
  double *d = po__malloc((size_t)len * sizeof *d);
  if (!d) {
    a->w.err = PO_ENOMEM;
    return NULL;
  }
  const cJSON *it;
  cJSON_ArrayForEach(it, v) {
    d[*n] = cJSON_IsNumber(it) && isfinite(it->valuedouble) ? it->valuedouble : NAN;
    if (++*n == (size_t)len) break;
  }
  return d;
}

/* ---- building suggestions ---------------------------------------------------------------- */

const char *po__adv_fmt(char *buf, size_t len, double v, const char *unit) {
  if (unit && strcmp(unit, "cores") == 0)
    snprintf(buf, len, "%.2f cores", v);
  else
    po_format_value(v, po_unit_from_name(unit), buf, len);
  return buf;
}

cJSON *po__adv_suggest(po__adv *a, const char *id, const char *severity, const char *target,
                       const char *title_fmt, ...) {
  char title[320];
  va_list ap;
  va_start(ap, title_fmt);
  vsnprintf(title, sizeof title, title_fmt, ap);
  va_end(ap);
  cJSON *s = po__j_obj(&a->w, a->out, NULL);
  po__j_str(&a->w, s, "id", id);
  po__j_str(&a->w, s, "severity", severity);
  po__j_str(&a->w, s, "title", title);
  if (target) po__j_str(&a->w, s, "target", target);
  po__j_arr(&a->w, s, "evidence");
  return a->w.err ? NULL : s;
}

void po__adv_evidence(po__adv *a, cJSON *s, const char *name, double value, const char *unit) {
  cJSON *e = po__j_obj(&a->w, (cJSON *)po__j_get(s, "evidence"), NULL);
  po__j_str(&a->w, e, "name", name);
  po__j_num(&a->w, e, "value", value);
  po__j_str(&a->w, e, "unit", unit);
}

void po__adv_action(po__adv *a, cJSON *s, const char *fmt, ...) {
  char text[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  po__j_str(&a->w, s, "action", text);
}

/* ---- the advisor ------------------------------------------------------------------------- */

static double profiled_seconds(const cJSON *profile) {
  int ok;
  double p = po__adv_num(profile, "profiled_seconds", &ok);
  if (ok && p > 0) return p;
  double sum = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, po__j_get(profile, "functions")) {
    double s = po__adv_num(f, "self_seconds", NULL);
    if (s > 0) sum += s;
  }
  return sum;
}

static int severity_rank(const cJSON *s) {
  const char *v = po__j_getstr(s, "severity");
  if (v && strcmp(v, "critical") == 0) return 0;
  if (v && strcmp(v, "warning") == 0) return 1;
  return 2;
}

/* Stable reorder: critical, then warning, then info; within one, the rules' order. */
void po__adv_order(cJSON *arr) {
  if (!cJSON_IsArray(arr)) return;
  cJSON *items[3] = {NULL, NULL, NULL}, *tails[3] = {NULL, NULL, NULL};
  cJSON *it = arr->child;
  while (it) {
    cJSON *next = it->next;
    int r = severity_rank(it);
    it->prev = it->next = NULL;
    if (!items[r])
      items[r] = it;
    else {
      tails[r]->next = it;
      it->prev = tails[r];
    }
    tails[r] = it;
    it = next;
  }
  arr->child = NULL;
  cJSON *last = NULL;
  for (int r = 0; r < 3; r++) {
    if (!items[r]) continue;
    if (!last)
      arr->child = items[r];
    else {
      last->next = items[r];
      items[r]->prev = last;
    }
    last = tails[r];
  }
  if (arr->child) arr->child->prev = last; /* cJSON keeps the tail in child->prev */
}

int po__advise(cJSON *root) {
  if (!cJSON_IsObject(root)) return PO_EINVAL;
  po__adv a = {0};
  a.root = root;
  a.profile = po__j_get(root, "profile");
  a.memory = po__j_get(root, "memory");
  a.resources = po__j_get(root, "resources");
  a.gpu = po__j_get(root, "gpu");
  a.cache = po__j_get(root, "cache");
  a.config = po__j_get(po__j_get(root, "run"), "config");
  a.system = po__j_get(root, "system");
  a.profiled_seconds = profiled_seconds(a.profile);
  a.out = cJSON_CreateArray();
  if (!a.out) return PO_ENOMEM;
  po__adv_rules_memory(&a);
  po__adv_rules_gpu(&a);
  po__adv_rules_io(&a);
  po__adv_rules_profile(&a);
  po__adv_rules_monitor(&a);
  if (a.w.err) {
    cJSON_Delete(a.out);
    return a.w.err;
  }
  po__adv_order(a.out);
  /* Replaced through the pointer with the old member's key: no allocation can fail half-way
   * (cJSON_ReplaceItemInObject ignores a failed copy of the key). */
  cJSON *old = cJSON_GetObjectItemCaseSensitive(root, "suggestions");
  if (old && !(old->type & cJSON_StringIsConst)) {
    a.out->string = old->string;
    old->string = NULL;
    cJSON_ReplaceItemViaPointer(root, old, a.out);
  } else if (cJSON_DeleteItemFromObjectCaseSensitive(root, "suggestions"),
             !cJSON_AddItemToObject(root, "suggestions", a.out)) {
    cJSON_Delete(a.out);
    return PO_ENOMEM;
  }
  return 0;
}
