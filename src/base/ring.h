/* One bounded ring of records: keeps the newest `cap` and counts what it overwrote. The records
 * live in the caller's array; the ring only does the index arithmetic. Not thread-safe: callers
 * hold their own lock. Used for threshold events, cleanup and guard records and cache shrinks. */
#ifndef PO__RING_H
#define PO__RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct po__ring {
  size_t head, len;
  uint64_t total;   /* records ever pushed */
  uint64_t dropped; /* records overwritten */
} po__ring;

/* The slot for the next record (overwriting the oldest when full). */
static inline size_t po__ring_push(po__ring *r, size_t cap) {
  size_t slot = (r->head + r->len) % cap;
  if (r->len == cap) {
    r->head = (r->head + 1) % cap;
    r->dropped++;
  } else {
    r->len++;
  }
  r->total++;
  return slot;
}

/* The slot of the i-th oldest record kept (i < r->len). */
static inline size_t po__ring_at(const po__ring *r, size_t i, size_t cap) {
  return (r->head + i) % cap;
}

#endif
