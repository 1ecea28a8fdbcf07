/* libFuzzer target for the memory forecast: any samples (NaN, infinities, times out of order,
 * duplicates), any window, limit and level start, on a ring that wraps anywhere. It must never
 * crash, read outside the ring (ASan) or return a negative time to limit other than -1. */
#include "monitor/forecast.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  double head[4] = {0, 0, 0, 0};
  size_t hn = size < sizeof head ? size : sizeof head;
  memcpy(head, data, hn);
  data += hn;
  size -= hn;
  size_t n = size / (2 * sizeof(double));
  if (n == 0) return 0;
  double *t = malloc(n * sizeof *t), *y = malloc(n * sizeof *y);
  if (!t || !y) {
    free(t);
    free(y);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(&t[i], data + 16 * i, 8);
    memcpy(&y[i], data + 16 * i + 8, 8);
  }
  size_t first = (size_t)(fabs(head[3]) < 1e9 ? fabs(head[3]) : 0) % n;
  po__ring_view v = {t, y, n, first, n};
  po__forecast f;
  po__forecast_compute(&v, head[0], head[1], head[2], &f);
  if (!(f.time_to_limit_seconds == -1 || f.time_to_limit_seconds >= 0 ||
        isnan(f.time_to_limit_seconds)))
    abort();
  free(t);
  free(y);
  return 0;
}
