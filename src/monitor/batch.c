/* Batch-size advice: the largest batch that fits, from a given or measured cost per sample. */
#include "monitor/memory.h"

#include <math.h>

/* Fills *per and *fixed from the request: given, or from two measurements (memory grows linearly
 * with the batch; the intercept is the fixed part). */
static int cost_model(const po_batch_request *req, double *per, double *fixed) {
  *per = (double)req->bytes_per_sample;
  *fixed = (double)req->fixed_bytes;
  if (req->bytes_per_sample > 0) return 0;
  if (req->batch_a <= 0 || req->batch_b <= 0 || req->batch_a == req->batch_b ||
      req->bytes_a < 0 || req->bytes_b < 0)
    return PO_EINVAL;
  *per = (double)(req->bytes_b - req->bytes_a) / (double)(req->batch_b - req->batch_a);
  if (!(*per > 0)) return PO_EINVAL;
  *fixed = (double)req->bytes_a - *per * (double)req->batch_a;
  if (*fixed < 0) *fixed = 0;
  return 0;
}

static int64_t round_batch(double n, po_batch_rounding rounding) {
  if (n > (double)INT64_MAX / 2) n = (double)INT64_MAX / 2;
  int64_t b = (int64_t)n;
  if (rounding == PO_BATCH_MULTIPLE_OF_8) return b - b % 8;
  int64_t p2 = 1;
  while (p2 <= b / 2) p2 *= 2;
  return b >= 1 ? p2 : 0;
}

int po__memory_batch_advise(po__memory *m, const po_batch_request *req, int64_t *batch_out) {
  if (batch_out) *batch_out = 0;
  if (!req || !batch_out || req->fixed_bytes < 0 || req->available_bytes < 0 ||
      req->max_batch < 0 || req->headroom_ratio < 0 || !(req->headroom_ratio < 1) ||
      req->bytes_per_sample < 0 ||
      (req->rounding != PO_BATCH_MULTIPLE_OF_8 && req->rounding != PO_BATCH_POWER_OF_TWO))
    return PO_EINVAL;
  double per, fixed;
  int rc = cost_model(req, &per, &fixed);
  if (rc) return rc;
  double avail = (double)req->available_bytes;
  if (req->available_bytes == 0) {
    int64_t a = po__memory_available(m, req->device);
    if (a < 0) return PO_ENOTSUP;
    avail = (double)a;
  }
  double headroom = req->headroom_ratio > 0 ? req->headroom_ratio : 0.1;
  double usable = avail * (1.0 - headroom) - fixed;
  if (usable < per) return PO_ETOOBIG;
  double n = floor(usable / per);
  if (req->max_batch > 0 && n > (double)req->max_batch) n = (double)req->max_batch;
  int64_t b = round_batch(n, req->rounding);
  if (b <= 0) return PO_ETOOBIG;
  *batch_out = b;
  return 0;
}
