/* Bounded time-series columns (internal to the monitor).
 *
 * A series set is a table: one shared time column and N value columns, all pushed together (one
 * row per sample). Its memory is fixed when it is created: `capacity` buckets per column, each
 * bucket holding the first, min, max and last value of the samples it covers and the time of its
 * first sample. While there is room, each push fills the current bucket until it covers
 * `samples_per_bucket` samples, then opens a new one. When every bucket is in use, adjacent pairs
 * are merged (resolution halves, samples_per_bucket doubles): old data is coarsened, never dropped.
 *
 * Not thread-safe: the sampler serializes access with its own lock.
 */
#ifndef PO__SERIES_H
#define PO__SERIES_H

#include <stddef.h>
#include <stdint.h>

#define PO__SERIES_NAME_LEN 48
#define PO__SERIES_UNIT_LEN 20
#define PO__SERIES_MAX_COLUMNS 64

typedef struct po__series_set po__series_set;

/* Creates an empty set with room for `max_columns` columns. The number of buckets per column is
 * `capacity`, lowered (to an even number, at least 4) so that the set's bytes stay within
 * `max_bytes` (0: no byte bound) once all max_columns columns exist. Returns NULL on ENOMEM or
 * bad arguments. */
po__series_set *po__series_create(size_t capacity, size_t max_columns, size_t max_bytes);
void po__series_destroy(po__series_set *s);

/* Adds a column (name and unit copied, truncated). Only before the first push. Returns the
 * column index, or PO_ESTATE after a push, PO_ENOMEM when max_columns are in use. */
/* A read-only copy holding only the buckets in use (for a report snapshot). NULL on ENOMEM. */
po__series_set *po__series_clone(const po__series_set *s);

int po__series_add_column(po__series_set *s, const char *name, const char *unit);

/* Pushes one row: values[i] for column i (NaN = not measured this time). t is seconds since run
 * start and should not decrease. */
void po__series_push(po__series_set *s, double t, const double *values);

size_t po__series_columns(const po__series_set *s);
size_t po__series_len(const po__series_set *s);      /* buckets in use */
size_t po__series_capacity(const po__series_set *s); /* buckets per column */
uint64_t po__series_pushed(const po__series_set *s); /* rows pushed since creation */
uint64_t po__series_samples_per_bucket(const po__series_set *s);
/* Bytes held by the set: constant from creation (all buckets are allocated up front). */
size_t po__series_bytes(const po__series_set *s);
const char *po__series_name(const po__series_set *s, size_t col);
const char *po__series_unit(const po__series_set *s, size_t col);

typedef struct po__series_point {
  double t;     /* time of the bucket's first sample */
  double first; /* NaN when no sample in the bucket measured this column */
  double min;
  double max;
  double last;
} po__series_point;
/* Reads bucket i (0 = oldest) of column col. Returns 0, or PO_ERANGE. */
int po__series_get(const po__series_set *s, size_t col, size_t i, po__series_point *out);

#endif
