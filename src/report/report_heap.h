/* The heap part of the report's memory section (src/report/report_heap.c). */
#ifndef PO_REPORT_HEAP_H
#define PO_REPORT_HEAP_H

#include "perfopt.h"

struct cJSON;

/* Adds memory.heap from a snapshot (keys in docs/formats.md, "memory.heap"). Every failed
 * allocation is PO_ENOMEM (the object may then be partly filled; the caller drops the report).
 * Returns 0, PO_EINVAL or PO_ENOMEM. */
int po__report_add_heap(struct cJSON *memory, const po_heap_snapshot *snap);

#endif
