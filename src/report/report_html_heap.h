/* The heap section of the HTML report (src/report/report_html_heap.c). */
#ifndef PO_REPORT_HTML_HEAP_H
#define PO_REPORT_HTML_HEAP_H

#include "viz/chart_internal.h"

struct cJSON;

/* Appends <section id="heap"> from memory.heap: totals, the heap timeline with the peak marked,
 * the allocation flame graph and the site tables. Nothing when the report has no memory.heap.
 * Out of memory sets b->oom. */
void po__html_section_heap(po__cbuf *b, const struct cJSON *root);

#endif
