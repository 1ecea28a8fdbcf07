/* The report's metrics as Prometheus text (report_metrics.c). Not installed. */
#ifndef PO__REPORT_METRICS_H
#define PO__REPORT_METRICS_H

#include "base/base.h"

/* The Prometheus text exposition (format 0.0.4) of rep's metrics, malloc'd and NUL-terminated;
 * *len (may be NULL) gets its length. NULL on ENOMEM or when rep is NULL. */
char *po__report_prom_text(const po_report *rep, size_t *len);

#define PO__PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
