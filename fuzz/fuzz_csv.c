/* libFuzzer target for the streaming CSV reader: arbitrary bytes, a tiny buffer (so records
 * straddle refills), the first bytes choosing the delimiter, header mode and selected columns.
 * The file path is exercised through a memfd so the read/refill code runs too. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "perfopt.h"

static void drain(po_csv *c, const uint8_t *ctl) {
  size_t ncols = po_csv_column_count(c);
  size_t cols[4];
  size_t nsel = (size_t)(ctl[0] % 4) + 1;
  for (size_t i = 0; i < nsel; i++) cols[i] = ncols ? ctl[i] % (ncols + 1) : 0;
  if (po_csv_select(c, cols, nsel) != 0) return;
  double v[4];
  int guard = 0;
  while (po_csv_next(c, v) == 1 && guard++ < 100000) {
  }
  po_csv_stats st;
  po_csv_get_stats(c, &st);
  char err[128];
  po_csv_find_column(c, "x", err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint8_t ctl[4] = {data[0], data[1], data[2], data[3]};
  data += 4;
  size -= 4;
  po_csv_options o = {0};
  o.delimiter = (ctl[1] & 1) ? ';' : ',';
  o.no_header = (ctl[1] >> 1) & 1;
  o.buffer_bytes = 64 + (size_t)(ctl[2] % 64);
  po_csv *c = NULL;
  if (po_csv_create_mem((const char *)data, size, &o, &c, NULL, 0) == 0) {
    drain(c, ctl);
    po_csv_destroy(c);
  }
  int fd = memfd_create("fuzz_csv", 0);
  if (fd < 0) return 0;
  if (write(fd, data, size) == (ssize_t)size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (po_csv_create(path, &o, &c, NULL, 0) == 0) {
      drain(c, ctl);
      po_csv_destroy(c);
    }
  }
  close(fd);
  double d;
  po_parse_double((const char *)data, size < 64 ? size : 64, &d);
  return 0;
}
