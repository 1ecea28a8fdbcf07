/* libFuzzer target for the cgroup value parsers: limit files ("max", numbers, v1's huge "no
 * limit") and memory.stat keys. Kernel text may be truncated at any byte; the stat reader must
 * never read past the buffer (ASan), the limit reader takes a C string. */
#include "linux/cgroup.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *buf = (const char *)data;
  (void)po__cgroup_stat_value(buf, size, "hierarchical_memory_limit");
  (void)po__cgroup_stat_value(buf, size, "inactive_file");
  char *z = malloc(size + 1);
  if (z) {
    memcpy(z, data, size);
    z[size] = '\0';
    uint64_t v;
    (void)po__cgroup_parse_limit(z, &v);
    free(z);
  }
  return 0;
}
