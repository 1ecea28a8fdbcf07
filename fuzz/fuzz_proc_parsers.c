/* libFuzzer target for the /proc parsers: stat, meminfo, diskstats, status, PID stat, CPU lists.
 * They read kernel text that may be truncated at any byte; they must never crash or read past
 * the buffer (ASan), whatever the bytes. */
#include "platform.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static po__stat_parsed stat_out;

static void count_disk(const po__diskstat_line *line, void *ctx) {
  (void)line;
  (*(size_t *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  po__meminfo_parsed mi;
  po__status_parsed st;
  po__pidstat_parsed ps;
  size_t disks = 0;
  (void)po__parse_stat(buf, size, &stat_out);
  (void)po__parse_meminfo(buf, size, &mi);
  (void)po__parse_diskstats(buf, size, count_disk, &disks);
  (void)po__parse_status(buf, size, &st);
  (void)po__parse_pidstat(buf, size, &ps);
  char *z = malloc(size + 1); /* the CPU-list parser takes a C string */
  if (z) {
    memcpy(z, data, size);
    z[size] = '\0';
    (void)po__parse_cpu_list(z);
    free(z);
  }
  return 0;
}
