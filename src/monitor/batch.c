/* Batch sizes: advice from a given or measured cost per sample (po_batch_advise), and the probe that
 * measures it at small batches and validates its proposal with one step (po_batch_probe). */
#include "monitor/memory.h"

#include <math.h>
#include <string.h>

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

/* ---- the batch probe: memory measured at small batches, a fitted line, one validation ------ */

void po_batch_probe_options_init(po_batch_probe_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->device = -1;
}

int64_t po__batch_model_fit(const po_batch_model *model, double available, double headroom,
                            int64_t max_batch, int64_t multiple) {
  double per = model->bytes_per_sample;
  if (!(per > 0)) return -1;
  double usable = available * (1.0 - headroom) - (model->fixed_bytes > 0 ? model->fixed_bytes : 0);
  if (!(usable >= per)) return 0;
  double n = floor(usable / per);
  if (max_batch > 0 && n > (double)max_batch) n = (double)max_batch;
  if (n > (double)INT64_MAX / 2) n = (double)INT64_MAX / 2;
  int64_t b = (int64_t)n;
  if (multiple > 1) b -= b % multiple;
  return b;
}

int po__batch_model_from(const int64_t *batch, const int64_t *bytes, int n, po_batch_model *out) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < n; i++) {
    double x = (double)batch[i], y = (double)bytes[i];
    sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  double d = (double)n * sxx - sx * sx;
  if (n < 2 || !(d > 0)) return PO_EINVAL;
  out->bytes_per_sample = ((double)n * sxy - sx * sy) / d;
  out->fixed_bytes = (sy - out->bytes_per_sample * sx) / (double)n;
  return 0;
}

/* What one step adds to memory at its peak: the caller's measure, NVML used memory for a GPU, or
 * this process's peak RSS (reset before the step through /proc/self/clear_refs; where that is
 * refused, the RSS after the step). */
typedef struct meter {
  po__memory *m;
  const po_batch_probe_options *o;
  int64_t before;
  int peak_reset;
} meter;

static int64_t gpu_used(po__memory *m, int device) {
  po_gpu_info devs[PO_SAMPLE_MAX_GPUS];
  size_t count = 0;
  if (!m || !m->gpu ||
      po_gpu_session_query(m->gpu, devs, PO_SAMPLE_MAX_GPUS, &count, NULL, NULL, 0) != 0 ||
      (size_t)device >= count)
    return -1;
  return (int64_t)devs[device].memory_used_bytes;
}

static void meter_begin(meter *mt) {
  const po_batch_probe_options *o = mt->o;
  if (o->measure) {
    mt->before = o->measure(o->measure_user);
  } else if (o->device >= 0) {
    mt->before = gpu_used(mt->m, o->device);
  } else {
    mt->peak_reset = po__self_reset_peak_rss() == 0;
    mt->before = po__statm_rss_bytes(NULL);
  }
}

static int64_t meter_end(meter *mt) {
  const po_batch_probe_options *o = mt->o;
  int64_t after = o->measure         ? o->measure(o->measure_user)
                  : o->device >= 0   ? gpu_used(mt->m, o->device)
                  : mt->peak_reset ? po__self_hwm_bytes()
                                     : po__statm_rss_bytes(NULL);
  if (after < 0 || mt->before < 0) return -1;
  return after > mt->before ? after - mt->before : 0;
}

static int probe_options_ok(const po_batch_probe_options *o) {
  if (o->device < -1 || o->available_bytes < 0 || o->max_batch < 0 || o->multiple < 0 ||
      !(o->headroom_ratio >= 0 && o->headroom_ratio < 1))
    return 0;
  for (int i = 0; i < 3 && o->sizes[i]; i++)
    if (o->sizes[i] < 0 || (i > 0 && o->sizes[i] <= o->sizes[i - 1])) return 0;
  return 1;
}

static void record_probe(po__memory *m, int device, int rc, const po_batch_probe_result *r) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  po__probe_record *p = &m->probes[po__ring_push(&m->probes_ring, PO__MAX_PROBE_RECORDS)];
  p->t_seconds = po__run_seconds();
  p->device = device;
  p->result = rc;
  p->r = *r;
  pthread_mutex_unlock(&m->mu);
}

/* Measures each size; fills r->measured_* and r->model. A third size is skipped when the line
 * through the first two says it would need more than half of the usable memory (measuring must
 * not be what runs out of memory). */
static int measure_sizes(meter *mt, po_batch_step_fn step, void *user, const int64_t *sizes,
                         double usable, po_batch_probe_result *r) {
  for (int i = 0; i < 3 && sizes[i]; i++) {
    if (i >= 2 && po__batch_model_from(r->measured_batch, r->measured_bytes, r->nmeasured,
                                       &r->model) == 0 &&
        r->model.fixed_bytes + r->model.bytes_per_sample * (double)sizes[i] > usable / 2)
      break;
    meter_begin(mt);
    int rc = step(sizes[i], user);
    r->steps++;
    if (rc) return rc;
    int64_t inc = meter_end(mt);
    if (inc < 0) return PO_ENOTSUP;
    r->measured_batch[r->nmeasured] = sizes[i];
    r->measured_bytes[r->nmeasured++] = inc;
  }
  return po__batch_model_from(r->measured_batch, r->measured_bytes, r->nmeasured, &r->model);
}

/* One step at the proposal; on an out-of-memory, half of it (to the multiple) until one runs. */
static int validate(po_batch_step_fn step, void *user, int64_t multiple, po_batch_probe_result *r) {
  int64_t b = r->proposed_batch;
  for (;;) {
    int rc = step(b, user);
    r->steps++;
    if (rc != PO_EOOM) {
      if (!rc) r->batch = b;
      return rc;
    }
    r->fallbacks++;
    b /= 2;
    if (multiple > 1) b -= b % multiple;
    if (b < 1) return PO_EOOM;
  }
}

static int run_probe(po__memory *m, po_batch_step_fn step, void *user,
                     const po_batch_probe_options *o, po_batch_probe_result *r) {
  static const int64_t default_sizes[3] = {1, 4, 16};
  const int64_t *sizes = o->sizes[0] ? o->sizes : default_sizes;
  r->available_bytes = o->available_bytes ? o->available_bytes : po__memory_available(m, o->device);
  if (r->available_bytes < 0) return PO_ENOTSUP;
  double headroom = o->headroom_ratio > 0 ? o->headroom_ratio : 0.05;
  meter mt = {m, o, 0, 0};
  int rc = measure_sizes(&mt, step, user, sizes, (double)r->available_bytes * (1 - headroom), r);
  if (rc) return rc;
  int64_t b = po__batch_model_fit(&r->model, (double)r->available_bytes, headroom, o->max_batch,
                                  o->multiple);
  if (b < 0) {
    if (!o->max_batch) return PO_ERANGE; /* memory does not grow with the batch */
    b = o->max_batch;
  }
  if (o->reduce && b > 0) b = o->reduce(b, o->reduce_user);
  if (b < 1) return PO_ETOOBIG;
  r->proposed_batch = b;
  return validate(step, user, o->multiple, r);
}

int po__memory_batch_probe(po__memory *m, po_batch_step_fn step, void *user,
                           const po_batch_probe_options *o, po_batch_probe_result *out) {
  po_batch_probe_options def;
  if (!o) {
    po_batch_probe_options_init(&def);
    o = &def;
  }
  po_batch_probe_result r;
  memset(&r, 0, sizeof r);
  if (out) *out = r;
  if (!step || !probe_options_ok(o)) return PO_EINVAL;
  int rc = run_probe(m, step, user, o, &r);
  record_probe(m, o->device, rc, &r);
  if (out) *out = r;
  return rc;
}
