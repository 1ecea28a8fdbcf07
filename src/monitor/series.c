/* Bounded time-series columns: fixed memory, coarsened (never dropped) when full. See series.h. */
#include "monitor/series.h"

#include "base/base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Values are stored as float: a chart needs ~7 significant digits, and halving the bucket size
 * keeps a day of one-second samples for a dozen columns under 1 MiB. Times stay double. */
typedef struct po__bucket {
  float first, min, max, last;
} po__bucket;

typedef struct po__column {
  char name[PO__SERIES_NAME_LEN];
  char unit[PO__SERIES_UNIT_LEN];
  po__bucket *b; /* capacity buckets */
} po__column;

struct po__series_set {
  size_t capacity;
  size_t max_columns;
  size_t ncols;
  size_t len;          /* buckets in use */
  uint64_t per_bucket; /* samples a full bucket covers */
  uint64_t last_fill;  /* samples in the newest bucket */
  uint64_t pushed;
  double *t;        /* capacity bucket start times */
  po__column cols[]; /* max_columns */
};

static size_t bytes_for(size_t capacity, size_t max_columns) {
  return sizeof(po__series_set) + max_columns * sizeof(po__column) + capacity * sizeof(double) +
         max_columns * capacity * sizeof(po__bucket);
}

po__series_set *po__series_create(size_t capacity, size_t max_columns, size_t max_bytes) {
  if (capacity < 4 || max_columns == 0 || max_columns > PO__SERIES_MAX_COLUMNS) return NULL;
  if (max_bytes > 0) {
    size_t fixed = bytes_for(0, max_columns);
    size_t per_bucket = sizeof(double) + max_columns * sizeof(po__bucket);
    if (max_bytes <= fixed) return NULL;
    size_t fit = (max_bytes - fixed) / per_bucket;
    if (fit < capacity) capacity = fit;
  }
  capacity &= ~(size_t)1; /* pairs merge cleanly */
  if (capacity < 4) return NULL;
  po__series_set *s = po__calloc(1, sizeof(*s) + max_columns * sizeof(po__column));
  if (!s) return NULL;
  s->capacity = capacity;
  s->max_columns = max_columns;
  s->per_bucket = 1;
  s->t = po__calloc(capacity, sizeof(double));
  if (!s->t) {
    free(s);
    return NULL;
  }
  /* Every column's buckets are allocated now, so the memory never grows during a run. */
  for (size_t i = 0; i < max_columns; i++) {
    s->cols[i].b = po__calloc(capacity, sizeof(po__bucket));
    if (!s->cols[i].b) {
      po__series_destroy(s);
      return NULL;
    }
  }
  return s;
}

void po__series_destroy(po__series_set *s) {
  if (!s) return;
  for (size_t i = 0; i < s->max_columns; i++) free(s->cols[i].b);
  free(s->t);
  free(s);
}

int po__series_add_column(po__series_set *s, const char *name, const char *unit) {
  if (!s || !name || !unit) return PO_EINVAL;
  if (s->pushed > 0) return PO_ESTATE;
  if (s->ncols >= s->max_columns) return PO_ENOMEM;
  po__column *c = &s->cols[s->ncols];
  po__strlcpy(c->name, name, sizeof(c->name));
  po__strlcpy(c->unit, unit, sizeof(c->unit));
  return (int)s->ncols++;
}

/* NaN means "not measured": min/max ignore it, first/last keep the first/last measured value. */
static void bucket_merge(po__bucket *into, const po__bucket *b) {
  if (isnan(b->first)) return;
  if (isnan(into->first)) {
    *into = *b;
    return;
  }
  if (b->min < into->min) into->min = b->min;
  if (b->max > into->max) into->max = b->max;
  into->last = b->last;
}

static void coarsen(po__series_set *s) {
  size_t half = s->len / 2;
  for (size_t i = 0; i < half; i++) {
    s->t[i] = s->t[2 * i];
    for (size_t c = 0; c < s->ncols; c++) {
      po__bucket *b = s->cols[c].b;
      po__bucket m = b[2 * i];
      bucket_merge(&m, &b[2 * i + 1]);
      b[i] = m;
    }
  }
  s->len = half;
  s->per_bucket *= 2;
  /* The capacity is even and every bucket was full, so the newest merged bucket is full too. */
  s->last_fill = s->per_bucket;
}

void po__series_push(po__series_set *s, double t, const double *values) {
  if (!s || !values) return;
  int open_new = s->len == 0 || s->last_fill >= s->per_bucket;
  if (open_new && s->len == s->capacity) coarsen(s);
  if (open_new) {
    s->t[s->len] = t;
    for (size_t c = 0; c < s->ncols; c++) {
      float nan = NAN;
      s->cols[c].b[s->len] = (po__bucket){nan, nan, nan, nan};
    }
    s->len++;
    s->last_fill = 0;
  }
  size_t cur = s->len - 1;
  for (size_t c = 0; c < s->ncols; c++) {
    if (isnan(values[c])) continue;
    float v = (float)values[c];
    po__bucket one = {v, v, v, v};
    bucket_merge(&s->cols[c].b[cur], &one);
  }
  s->last_fill++;
  s->pushed++;
}

size_t po__series_columns(const po__series_set *s) {
  return s ? s->ncols : 0;
}
size_t po__series_len(const po__series_set *s) {
  return s ? s->len : 0;
}
size_t po__series_capacity(const po__series_set *s) {
  return s ? s->capacity : 0;
}
uint64_t po__series_pushed(const po__series_set *s) {
  return s ? s->pushed : 0;
}
uint64_t po__series_samples_per_bucket(const po__series_set *s) {
  return s ? s->per_bucket : 0;
}

size_t po__series_bytes(const po__series_set *s) {
  return s ? bytes_for(s->capacity, s->max_columns) : 0;
}

const char *po__series_name(const po__series_set *s, size_t col) {
  return s && col < s->ncols ? s->cols[col].name : NULL;
}

const char *po__series_unit(const po__series_set *s, size_t col) {
  return s && col < s->ncols ? s->cols[col].unit : NULL;
}

int po__series_get(const po__series_set *s, size_t col, size_t i, po__series_point *out) {
  if (!s || !out || col >= s->ncols || i >= s->len) return PO_ERANGE;
  const po__bucket *b = &s->cols[col].b[i];
  out->t = s->t[i];
  out->first = b->first;
  out->min = b->min;
  out->max = b->max;
  out->last = b->last;
  return 0;
}

po__series_set *po__series_clone(const po__series_set *s) {
  if (!s) return NULL;
  size_t cap = s->len > 4 ? s->len : 4;
  po__series_set *c = po__calloc(1, sizeof(*c) + s->ncols * sizeof(po__column));
  if (!c) return NULL;
  *c = *s;
  c->capacity = cap;
  c->max_columns = s->ncols;
  c->t = po__malloc(cap * sizeof(double));
  int ok = c->t != NULL;
  for (size_t i = 0; i < s->ncols; i++) {
    c->cols[i] = s->cols[i];
    c->cols[i].b = ok ? po__malloc(cap * sizeof(po__bucket)) : NULL;
    if (!c->cols[i].b) {
      ok = 0;
      continue;
    }
    memcpy(c->cols[i].b, s->cols[i].b, s->len * sizeof(po__bucket));
  }
  if (!ok) {
    for (size_t i = 0; i < s->ncols; i++) free(c->cols[i].b);
    free(c->t);
    free(c);
    return NULL;
  }
  memcpy(c->t, s->t, s->len * sizeof(double));
  return c;
}
