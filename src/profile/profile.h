/* profile: internal interface between the zone recorder, the auto-instrumentation runtime and
 * the report builder. */
#ifndef PO_PROFILE_H
#define PO_PROFILE_H

#include "base/base.h"

/* Site registry. Ids start at 1. po__site_id() registers a static site on first use. */
PO_API uint32_t po__site_register(po_site *site);
/* A site identified by a code address (auto-instrumentation); its name is resolved at report
 * time through the symbolizer. Returns 0 when the registry is full (counted). */
PO_API uint32_t po__site_for_addr(void *addr);
/* A site for a dynamic name (copied). Returns 0 when the registry is full. */
PO_API uint32_t po__site_for_name(const char *name);

/* Begin a zone by site id (the id must come from one of the functions above). */
PO_API void po__zone_begin_id(uint32_t id);

/* Resolves a code address to a function name, file and line. Returns 0 when it found a name;
 * *name and *file point to storage the symbolizer owns (valid for the process lifetime). */
typedef int (*po__symbolizer_fn)(void *addr, const char **name, const char **file, int *line);
PO_API void po__set_symbolizer(po__symbolizer_fn fn);

/* Probe-cost compensation used by auto-instrumentation: `bias` ticks are removed from every
 * zone's own measurement and `full` ticks from its parent for each descendant zone. */
PO_API void po__set_probe_cost(uint64_t bias_ticks, uint64_t full_ticks);

/* Measures the cost of a begin/end pair in the calling thread without recording anything:
 * bias = what a zone around nothing measures; full = what the pair adds to an enclosing zone.
 * `begin` is called with `arg` to open each probed zone (NULL: a plain po__zone_begin_id). */
PO_API void po__calibrate_probe(void (*begin)(void *), void (*end)(void *), void *arg,
                                uint64_t *bias_ticks, uint64_t *full_ticks);

#endif
