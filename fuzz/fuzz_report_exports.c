/* libFuzzer: a saved report read back, advised, exported in every format, compared with itself
 * and merged with itself. Reports come
 * from files users pass to `perfopt report` and `perfopt merge`: any shape of JSON must export
 * or fail cleanly. A top-level string "fuzz_gate" is tried as a --fail-if gate on the diff. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_build.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  po_report *rep;
  char err[256];
  if (po__report_parse((const char *)data, size, "fuzz", &rep, err, sizeof err) != 0) return 0;
  po_report_advise(rep);
  FILE *null = fopen("/dev/null", "w");
  if (null) {
    po_report_write_text(rep, null, PO_SORT_SELF, 10);
    po_report_write_trace(rep, null);
    po_report_write_folded(rep, null, PO_FOLDED_TIME);
    po_report_write_folded(rep, null, PO_FOLDED_HEAP_BYTES);
    po_report_write_prom(rep, null);
  }
  po_report *d = NULL, *m = NULL;
  if (po_report_diff(rep, rep, &d) == 0) {
    char why[256];
    po_diff_check(d, po__j_getstr(po_report_json(rep), "fuzz_gate"), why, sizeof why);
    if (null) po_report_write_diff_text(d, null);
  }
  const po_report *two[2] = {rep, rep};
  if (po_report_merge(two, 2, &m) == 0 && null) po_report_write_html(m, null);
  if (null) fclose(null);
  po_report_destroy(m);
  po_report_destroy(d);
  po_report_destroy(rep);
  return 0;
}
