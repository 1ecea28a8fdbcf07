/* Building the report's cJSON tree with a sticky error: every helper does nothing once an
 * allocation has failed (or its parent is NULL because one did), and the builder checks the error
 * once at the end. A failed allocation is therefore always an error of the whole build, never a
 * silently missing field. Only src/report/ includes cJSON. Not installed. */
#ifndef PO__REPORT_JSON_H
#define PO__REPORT_JSON_H

#include "base/base.h"

#include <cjson/cJSON.h>

typedef struct po__jw {
  int err; /* 0, or the first error (PO_ENOMEM) */
} po__jw;

/* A new object or array: added under `key` to an object parent, appended to an array parent
 * (key NULL). NULL after an error. */
cJSON *po__j_obj(po__jw *w, cJSON *parent, const char *key);
cJSON *po__j_arr(po__jw *w, cJSON *parent, const char *key);
/* Scalars, the same way. A NaN number is written as null. */
void po__j_num(po__jw *w, cJSON *parent, const char *key, double v);
void po__j_str(po__jw *w, cJSON *parent, const char *key, const char *v);
void po__j_bool(po__jw *w, cJSON *parent, const char *key, int v);
/* Adds an already built item (taking ownership, freeing it on error). */
void po__j_add(po__jw *w, cJSON *parent, const char *key, cJSON *item);

/* Read helpers for outputs that walk a report (NULL-safe; 0 / NULL when absent). */
double po__j_getnum(const cJSON *o, const char *key);
const char *po__j_getstr(const cJSON *o, const char *key);
const cJSON *po__j_get(const cJSON *o, const char *key);

#endif
