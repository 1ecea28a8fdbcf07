/* Heap tracking, reader side: private interface between the session, the segment parser and the
 * symbolizer (src/monitor/heap_*.c). The segment format is src/base/heap_format.h. */
#ifndef PO_HEAP_SESSION_H
#define PO_HEAP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/heap_format.h"
#include "perfopt.h"

/* Strings and arrays owned by a snapshot, freed together. */
typedef struct po__heap_arena po__heap_arena;
void *po__heap_arena_alloc(po__heap_arena **a, size_t n); /* zeroed, 16-aligned; NULL on ENOMEM */
char *po__heap_arena_strndup(po__heap_arena **a, const char *s, size_t max);
void po__heap_arena_free(po__heap_arena *a);

/* Answers whether a process still runs (a zombie does not). */
typedef int (*po__heap_alive_fn)(int32_t pid);

typedef struct po__heap_parse_opts {
  size_t top_sites;               /* 0 = 20 */
  int symbolize;                  /* 1: resolve frames with libdw (0 in the fuzzer) */
  po__heap_alive_fn alive;        /* NULL: an active slot is "running" */
  double t_seconds;               /* when the copy was taken */
  const double *timeline_seconds; /* the session's timeline, copied into the snapshot */
  const int64_t *timeline_live_bytes;
  size_t timeline_count;
} po__heap_parse_opts;

/* Builds a snapshot from a private copy of `len` bytes of a segment (slots beyond len, or past
 * the claimed count, are not read). Every field is validated: a corrupt slot is skipped and
 * counted in slots_invalid; a bad header is PO_EPARSE. Returns 0, PO_EPARSE, PO_ENOMEM. */
PO_API int po__heap_parse(const void *seg, size_t len, const po__heap_parse_opts *opts,
                          po_heap_snapshot **out);

/* Fills function/file/line of frames[0..n) from the process's module map (modules already
 * validated: NUL-terminated paths, lo < hi). Module fields are set by the caller. Frames it cannot
 * resolve keep NULL names. Returns 0 or PO_ENOMEM. */
int po__heap_symbolize(const po_heap_module *mods, uint32_t nmods, po_heap_frame **frames, size_t n,
                       po__heap_arena **arena);

#endif
