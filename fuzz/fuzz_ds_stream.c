/* libFuzzer target for the streaming M4: any sequence of x/y doubles (infinities, NaN, denormals,
 * +-DBL_MAX included) through push, push_xy and push_y, into 2..65 buckets. Every call must end
 * (no loop on an extreme range), and afterwards the width is finite and positive with a finite
 * inverse, the points read back are sorted by x and within max_points, and the points with the
 * smallest and largest x are among them. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perfopt.h"

#define CHECK(c)                \
  do {                          \
    if (!(c)) __builtin_trap(); \
  } while (0)

static double take(const uint8_t **p, size_t *n) {
  double v = 0;
  if (*n >= sizeof v) {
    memcpy(&v, *p, sizeof v);
    *p += sizeof v;
    *n -= sizeof v;
  }
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t nb = 2 + data[0] % 64;
  data++;
  size--;
  po_ds_stream *s;
  if (po_ds_stream_create(nb, &s) != 0) return 0;
  double xmin = INFINITY, xmax = -INFINITY;
  uint64_t pushed = 0; /* finite x accepted so far: push_y's implicit x is this count */
  while (size > 0) {
    uint8_t op = data[0];
    data++;
    size--;
    if (op % 3 == 2) { /* push_y: implicit x = pushed, pushed + 1, ... */
      double y[16];
      size_t k = 1 + (size_t)(op >> 2) % 16;
      for (size_t i = 0; i < k; i++) y[i] = take(&data, &size);
      CHECK(po_ds_stream_push_y(s, y, k) == 0);
      if ((double)pushed < xmin) xmin = (double)pushed;
      if ((double)(pushed + k - 1) > xmax) xmax = (double)(pushed + k - 1);
      pushed += k;
      continue;
    }
    double x = take(&data, &size), y = take(&data, &size);
    CHECK((op % 3 == 0 ? po_ds_stream_push(s, x, y) : po_ds_stream_push_xy(s, &x, &y, 1)) == 0);
    if (isfinite(x)) {
      pushed++;
      if (x < xmin) xmin = x;
      if (x > xmax) xmax = x;
    }
  }
  po_ds_stream_stats st;
  po_ds_stream_get_stats(s, &st);
  CHECK(st.pushed == pushed);
  CHECK(st.bucket_width == 0 ||
        (isfinite(st.bucket_width) && st.bucket_width > 0 && isfinite(1.0 / st.bucket_width)));
  size_t cap = po_ds_stream_max_points(s);
  double *x = malloc(cap * sizeof *x);
  if (x) {
    int64_t k = po_ds_stream_read(s, x, NULL, NULL, cap);
    CHECK(k >= 0 && (size_t)k <= cap && (k > 0) == (pushed > 0));
    int has_min = 0, has_max = 0;
    for (int64_t i = 0; i < k; i++) {
      if (i) CHECK(x[i - 1] <= x[i]);
      has_min |= x[i] == xmin;
      has_max |= x[i] == xmax;
    }
    CHECK(pushed == 0 || (has_min && has_max));
    free(x);
  }
  po_ds_stream_destroy(s);
  return 0;
}
