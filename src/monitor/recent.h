/* The recent samples at full resolution: a ring of the last minute (or forecast window) of
 * samples, as columns, beside the coarsened series. The forecast reads it on every tick and the
 * flight record writes it out. Not thread-safe (the sampler's mu guards it). Not installed. */
#ifndef PO__RECENT_H
#define PO__RECENT_H

#include "base/base.h"
#include "base/ring.h"
#include "monitor/forecast.h"

enum {
  PO__RECENT_T,
  PO__RECENT_MEMORY_USED,
  PO__RECENT_MEMORY_LIMIT,
  PO__RECENT_MEMORY_AVAILABLE,
  PO__RECENT_RSS,
  PO__RECENT_CPU,
  PO__RECENT_PRESSURE_SOME,
  PO__RECENT_PRESSURE_FULL,
  PO__RECENT_TIME_TO_LIMIT,
  PO__RECENT_FIXED /* then per GPU: memory used, memory total, time to limit */
};
#define PO__RECENT_PER_GPU 3
#define PO__RECENT_MAX_COLUMNS (PO__RECENT_FIXED + PO__RECENT_PER_GPU * PO_SAMPLE_MAX_GPUS)
#define PO__RECENT_MIN 64
#define PO__RECENT_MAX 6000

typedef struct po__recent {
  size_t cap, gpus, columns;
  po__ring ring;
  double *col[PO__RECENT_MAX_COLUMNS]; /* into one allocation */
} po__recent;

/* Rows enough for `seconds` at `interval_s` (clamped to PO__RECENT_MIN..PO__RECENT_MAX). */
size_t po__recent_rows_for(double seconds, double interval_s);
/* NULL on ENOMEM. */
po__recent *po__recent_create(size_t cap, size_t gpus);
void po__recent_destroy(po__recent *r);
po__recent *po__recent_clone(const po__recent *r);

/* Appends one sample (values < 0 are stored as NaN: unknown), overwriting the oldest. Hot path:
 * no allocation, no lock. The time-to-limit columns are set afterwards with po__recent_set_last
 * once the forecast of this sample is known. */
void po__recent_push(po__recent *r, const po_sample *s);
void po__recent_set_last(po__recent *r, size_t column, double v);
/* A view of one column against time, for the forecast. */
po__ring_view po__recent_view(const po__recent *r, size_t column);
/* Row i (0 = oldest) of a column. */
double po__recent_at(const po__recent *r, size_t column, size_t i);
/* The column's name in the flight record ("t_seconds", "memory_used_bytes", "gpu0_..."). */
void po__recent_column_name(const po__recent *r, size_t column, char *buf, size_t len);

#endif
