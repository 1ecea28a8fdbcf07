/* The cache's private interface to the layers above it: a typed snapshot for the report, and the
 * owner hooks through which the optimizer attaches a cache without the cache knowing the
 * optimizer. Not installed. */
#ifndef PO__CACHE_H
#define PO__CACHE_H

#include "base/base.h"

#define PO__SHRINKS 32 /* shrink records kept per cache (older ones counted as dropped) */

typedef struct po__shrink_rec {
  double t_seconds;
  uint64_t from_bytes, to_bytes;
  char reason[32];
} po__shrink_rec;

typedef struct po__cache_snapshot {
  char name[64];
  po_cache_policy policy;
  int enabled;
  po_cache_stats stats;
  size_t nshrinks;
  po__shrink_rec shrinks[PO__SHRINKS]; /* oldest first */
} po__cache_snapshot;

/* A consistent copy of what the report shows about c. */
void po__cache_snapshot_take(po_cache *c, po__cache_snapshot *out);

/* Called once by po_cache_destroy, before anything is freed, so the owner can forget the cache. */
typedef void (*po__cache_release_fn)(po_cache *c, void *owner);

/* Ties c to an owner: `enabled` is ANDed with the cache's own switch, `shrink_fraction` is what
 * po_cache_on_pressure shrinks to, `release` runs when the cache is destroyed. owner NULL
 * releases the cache (enabled 1, fraction 0.5). PO_EBUSY when another owner holds it. */
int po__cache_set_owner(po_cache *c, void *owner, po__cache_release_fn release, int enabled,
                        double shrink_fraction);
/* The current owner, or NULL. */
void *po__cache_owner(po_cache *c);

/* Shrinks to target bytes by type priority (gpu entries first for reason "gpu_memory") and records
 * the shrink with reason. Returns the bytes released. */
uint64_t po__cache_shrink_typed(po_cache *c, uint64_t target, const char *reason);

#endif
