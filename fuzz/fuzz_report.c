/* libFuzzer: a saved report read back and rendered (text table and HTML). Reports come from
 * files users pass to `perfopt report`: any shape of JSON must render or fail cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  po_report *rep;
  char err[256];
  if (po__report_parse((const char *)data, size, "fuzz", &rep, err, sizeof err) != 0) return 0;
  FILE *null = fopen("/dev/null", "w");
  if (null) {
    po_report_write_text(rep, null, PO_SORT_SELF, 10);
    po_report_write_html(rep, null);
    fclose(null);
  }
  po_report_destroy(rep);
  return 0;
}
