/* The sticky-error cJSON helpers (see report/json.h). */
#include "report/json.h"

#include <math.h>

void po__j_add(po__jw *w, cJSON *parent, const char *key, cJSON *item) {
  if (w->err || !parent || !item) {
    cJSON_Delete(item);
    if (!w->err) w->err = PO_ENOMEM;
    return;
  }
  cJSON_bool ok = cJSON_IsArray(parent) ? cJSON_AddItemToArray(parent, item)
                                        : cJSON_AddItemToObject(parent, key, item);
  if (!ok) {
    cJSON_Delete(item);
    w->err = PO_ENOMEM;
  }
}

static cJSON *add_new(po__jw *w, cJSON *parent, const char *key, cJSON *item) {
  if (w->err) {
    cJSON_Delete(item);
    return NULL;
  }
  po__j_add(w, parent, key, item);
  return w->err ? NULL : item;
}

cJSON *po__j_obj(po__jw *w, cJSON *parent, const char *key) {
  return add_new(w, parent, key, w->err ? NULL : cJSON_CreateObject());
}

cJSON *po__j_arr(po__jw *w, cJSON *parent, const char *key) {
  return add_new(w, parent, key, w->err ? NULL : cJSON_CreateArray());
}

void po__j_num(po__jw *w, cJSON *parent, const char *key, double v) {
  if (w->err) return;
  add_new(w, parent, key, isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v));
}

void po__j_str(po__jw *w, cJSON *parent, const char *key, const char *v) {
  if (w->err) return;
  add_new(w, parent, key, cJSON_CreateString(v ? v : ""));
}

void po__j_bool(po__jw *w, cJSON *parent, const char *key, int v) {
  if (w->err) return;
  add_new(w, parent, key, cJSON_CreateBool(v != 0));
}

const cJSON *po__j_get(const cJSON *o, const char *key) {
  return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

double po__j_getnum(const cJSON *o, const char *key) {
  const cJSON *v = po__j_get(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *po__j_getstr(const cJSON *o, const char *key) {
  return cJSON_GetStringValue(po__j_get(o, key));
}
