/* libFuzzer: merging in-process reports (perfopt run). The files a run merges are written by the
 * processes it watched, so their content is input: any JSON must merge or be skipped cleanly, and
 * the merged report must render. The input is one report merged with itself and with the
 * second half of the input, when that half is JSON too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_build.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cJSON *a = cJSON_ParseWithLength((const char *)data, size);
  if (!a) return 0;
  cJSON *b = cJSON_ParseWithLength((const char *)data + size / 2, size - size / 2);
  const cJSON *reps[3] = {a, a, b ? b : a};
  po__run_sources src = {0};
  src.reports = reps;
  src.nreports = 3;
  po_report *rep = NULL;
  if (po__report_create_run(&src, &rep) == 0) {
    FILE *null = fopen("/dev/null", "w");
    if (null) {
      po_report_write_summary(rep, null, 10);
      po_report_write_text(rep, null, PO_SORT_SELF, 10);
      fclose(null);
    }
    po_report_destroy(rep);
  }
  cJSON_Delete(a);
  cJSON_Delete(b);
  return 0;
}
