/* The public face of the Prometheus text exposition (po_report_write_prom and friends): the same
 * text the live endpoint's /metrics serves, rendered by report_metrics.c. */
#include "report/outbuf.h"
#include "report/report_metrics.h"

#include <stdlib.h>
#include <string.h>

char *po_report_to_prom(const po_report *rep, size_t *len) {
  return po__report_prom_text(rep, len);
}

static int render(po__ob *o, const void *rep) {
  size_t len = 0;
  char *text = po__report_prom_text(rep, &len);
  if (!text) return PO_ENOMEM;
  po__ob_put(o, text, len);
  free(text);
  return o->err;
}

int po_report_write_prom(const po_report *rep, FILE *out) {
  if (!rep) return PO_EINVAL;
  return po__ob_write(out, render, rep);
}

int po_report_save_prom(const po_report *rep, const char *path, char *errbuf, size_t errlen) {
  if (!rep) return po__errf(PO_EINVAL, errbuf, errlen, "no report or path given");
  return po__ob_save(path, render, rep, errbuf, errlen);
}
