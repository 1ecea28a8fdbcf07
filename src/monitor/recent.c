/* The recent samples at full resolution (see recent.h). */
#include "monitor/recent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fixed_names[PO__RECENT_FIXED] = {
    "t_seconds",           "memory_used_bytes",       "memory_limit_bytes",
    "memory_available_bytes", "process_rss_bytes",    "cpu_utilization_ratio",
    "memory_pressure_some_ratio", "memory_pressure_full_ratio", "memory_time_to_limit_seconds"};
static const char *const gpu_names[PO__RECENT_PER_GPU] = {
    "memory_used_bytes", "memory_total_bytes", "time_to_limit_seconds"};

size_t po__recent_rows_for(double seconds, double interval_s) {
  double rows = interval_s > 0 ? ceil(seconds / interval_s) + 1 : PO__RECENT_MAX;
  if (!(rows >= PO__RECENT_MIN)) rows = PO__RECENT_MIN;
  if (rows > PO__RECENT_MAX) rows = PO__RECENT_MAX;
  return (size_t)rows;
}

po__recent *po__recent_create(size_t cap, size_t gpus) {
  if (cap == 0 || gpus > PO_SAMPLE_MAX_GPUS) return NULL;
  po__recent *r = po__calloc(1, sizeof *r);
  if (!r) return NULL;
  r->cap = cap;
  r->gpus = gpus;
  r->columns = PO__RECENT_FIXED + PO__RECENT_PER_GPU * gpus;
  double *block = po__malloc(r->columns * cap * sizeof *block);
  if (!block) {
    free(r);
    return NULL;
  }
  for (size_t c = 0; c < r->columns; c++) r->col[c] = block + c * cap;
  return r;
}

void po__recent_destroy(po__recent *r) {
  if (!r) return;
  free(r->col[0]);
  free(r);
}

po__recent *po__recent_clone(const po__recent *r) {
  if (!r) return NULL;
  po__recent *c = po__recent_create(r->cap, r->gpus);
  if (!c) return NULL;
  c->ring = r->ring;
  memcpy(c->col[0], r->col[0], r->columns * r->cap * sizeof(double));
  return c;
}

static double known(double v) {
  return v >= 0 ? v : NAN;
}

void po__recent_push(po__recent *r, const po_sample *s) {
  size_t slot = po__ring_push(&r->ring, r->cap);
  double v[PO__RECENT_FIXED] = {s->t_seconds,
                                known((double)s->memory_used_bytes),
                                known((double)s->memory_limit_bytes),
                                known((double)s->memory_available_bytes),
                                known((double)s->process_rss_bytes),
                                known(s->cpu_utilization_ratio),
                                known(s->memory_pressure_some_ratio),
                                known(s->memory_pressure_full_ratio),
                                NAN};
  for (size_t c = 0; c < PO__RECENT_FIXED; c++) r->col[c][slot] = v[c];
  for (size_t g = 0; g < r->gpus; g++) {
    int have = (int)g < s->gpu_count;
    double *const *gc = &r->col[PO__RECENT_FIXED + PO__RECENT_PER_GPU * g];
    gc[0][slot] = have ? known((double)s->gpus[g].memory_used_bytes) : NAN;
    gc[1][slot] = have ? known((double)s->gpus[g].memory_total_bytes) : NAN;
    gc[2][slot] = NAN;
  }
}

void po__recent_set_last(po__recent *r, size_t column, double v) {
  if (r->ring.len == 0 || column >= r->columns) return;
  r->col[column][po__ring_at(&r->ring, r->ring.len - 1, r->cap)] = v;
}

po__ring_view po__recent_view(const po__recent *r, size_t column) {
  return (po__ring_view){r->col[PO__RECENT_T], r->col[column], r->cap, r->ring.head, r->ring.len};
}

double po__recent_at(const po__recent *r, size_t column, size_t i) {
  return r->col[column][po__ring_at(&r->ring, i, r->cap)];
}

void po__recent_column_name(const po__recent *r, size_t column, char *buf, size_t len) {
  if (column < PO__RECENT_FIXED) {
    snprintf(buf, len, "%s", fixed_names[column]);
  } else if (column < r->columns) {
    size_t k = column - PO__RECENT_FIXED;
    snprintf(buf, len, "gpu%zu_%s", k / PO__RECENT_PER_GPU, gpu_names[k % PO__RECENT_PER_GPU]);
  } else if (len) {
    buf[0] = '\0';
  }
}
