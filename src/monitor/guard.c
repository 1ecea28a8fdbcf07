/* Available memory and the memory guard (the seed's knowledge-transfer safeguard). */
#include "monitor/memory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef PERFOPT_TESTING
void po__memory_test_set_available(po__memory *m, int device, int64_t bytes) {
  if (!m || device < -1 || device + 1 >= PO__TEST_DEVICES) return;
  pthread_mutex_lock(&m->mu);
  m->has_test_available[device + 1] = bytes >= 0;
  m->test_available[device + 1] = bytes;
  pthread_mutex_unlock(&m->mu);
}
#endif

static int64_t gpu_free(po__memory *m, int device) {
  po_gpu_info devs[PO_SAMPLE_MAX_GPUS];
  size_t count = 0;
  if (!m->gpu ||
      po_gpu_session_query(m->gpu, devs, PO_SAMPLE_MAX_GPUS, &count, NULL, NULL, 0) != 0 ||
      (size_t)device >= count)
    return -1;
  return (int64_t)devs[device].memory_free_bytes;
}

/* The effective available host memory (cgroup-aware), through a probe of its own: a probe serves
 * one thread at a time, and the sampler owns its own. */
static int64_t host_available(const char *proc_root, int64_t budget) {
  po_probe *p;
  if (po__probe_create_at(proc_root, &p) != 0) return -1;
  po__probe_set_memory_budget(p, budget);
  po_system_sample *s = po__malloc(sizeof *s);
  int64_t avail = -1;
  if (s && po_probe_system(p, s) == 0 && !(s->missing & PO_PROBE_MISSING_MEMINFO))
    avail = (int64_t)s->effective_available_bytes;
  free(s);
  po_probe_destroy(p);
  return avail;
}

int64_t po__memory_available(po__memory *m, int device) {
  if (device < -1) return -1;
  if (m && device + 1 < PO__TEST_DEVICES) {
    pthread_mutex_lock(&m->mu);
    int has = m->has_test_available[device + 1];
    int64_t v = m->test_available[device + 1];
    pthread_mutex_unlock(&m->mu);
    if (has) return v;
  }
  if (device >= 0) return m ? gpu_free(m, device) : -1;
  return host_available(m ? m->proc_root : "", m ? m->budget_bytes : 0);
}

static void record_guard(po__memory *m, const char *name, const po_guard_result *r, int rc) {
  pthread_mutex_lock(&m->mu);
  po__guard_record *g = &m->guards[po__ring_push(&m->guards_ring, PO__MAX_GUARD_RECORDS)];
  g->t_seconds = po__run_seconds();
  po__strlcpy(g->name, name, sizeof(g->name));
  g->required_bytes = r->required_bytes;
  g->available_bytes = r->available_bytes;
  g->ran = r->ran;
  g->result = rc;
  g->retried_batch = r->retried_batch;
  pthread_mutex_unlock(&m->mu);
}

/* Cleanup for a guard: a GPU guard clears GPU resources only; a host guard clears everything. */
static void guard_cleanup(po__memory *m, int device, po_cleanup_level level) {
  po__memory_cleanup(m, level, device >= 0 ? PO_RESOURCE_GPU : PO_RESOURCE_ALL, 0, NULL, NULL,
                     NULL);
}

/* After an out-of-memory of a batched primary: the batch the model says fits now (after the
 * aggressive cleanup), when it is smaller than the one that failed; else 0. */
static int64_t batch_that_fits(po__memory *m, const po_guard_options *o) {
  if (!o->batch_model || !o->batch || *o->batch <= 1) return 0;
  int64_t avail = po__memory_available(m, o->device);
  if (avail < 0) return *o->batch / 2; /* unknown: the halving everyone else does */
  int64_t b = po__batch_model_fit(o->batch_model, (double)avail, o->headroom_ratio, 0, 1);
  return b >= 1 && b < *o->batch ? b : 0;
}

/* Runs primary when `need` fits (after one cleanup when short), the fallback when it does not or
 * when primary runs out of memory (after one more try at a batch that fits, for a batched
 * primary). Returns what ran's result. */
static int guard_decide(po__memory *m, double need, po_guard_fn primary, po_guard_fn fallback,
                        void *ctx, const po_guard_options *o, po_guard_result *r) {
  int device = o->device;
  r->available_bytes = po__memory_available(m, device);
  if (r->available_bytes >= 0 && (double)r->available_bytes < need) {
    /* Short: free what can be freed, then look again before giving up on the primary. */
    guard_cleanup(m, device, PO_CLEANUP_NORMAL);
    r->available_bytes = po__memory_available(m, device);
  }
  int fits = r->available_bytes < 0 || (double)r->available_bytes >= need;
  if (fits) {
    r->ran = 1;
    int rc = r->primary_rc = primary(ctx);
    if (rc != PO_EOOM) return rc;
    guard_cleanup(m, device, PO_CLEANUP_AGGRESSIVE);
    int64_t b = batch_that_fits(m, o);
    if (b > 0) {
      *o->batch = r->retried_batch = b;
      rc = r->primary_rc = primary(ctx);
      if (rc != PO_EOOM) return rc;
    }
    if (!fallback) return rc;
    r->ran = 2;
    return fallback(ctx);
  }
  if (!fallback) return PO_EOOM;
  r->ran = 2;
  return fallback(ctx);
}

int po__memory_guard(po__memory *m, int64_t required_bytes, po_guard_fn primary,
                     po_guard_fn fallback, void *ctx, const po_guard_options *o,
                     po_guard_result *out) {
  po_guard_options def;
  if (!o) {
    po_guard_options_init(&def);
    o = &def;
  }
  if (!m || !primary || required_bytes < 0 || o->device < -1 || o->headroom_ratio < 0 ||
      isnan(o->headroom_ratio) || (o->batch && *o->batch < 0))
    return PO_EINVAL;
  const char *name = o->name && *o->name ? o->name : "guard";
  if (required_bytes == 0 && o->batch_model && o->batch) {
    double model = o->batch_model->fixed_bytes + o->batch_model->bytes_per_sample * (double)*o->batch;
    required_bytes = model > 0 && model < 9e18 ? (int64_t)model : 0;
  }
  po_guard_result r = {0, 0, required_bytes, -1, 0};
  double need = (double)required_bytes * (1.0 + o->headroom_ratio);
  int rc = guard_decide(m, need, primary, fallback, ctx, o, &r);
  if (r.ran != 0 &&
      (o->cleanup_after == PO_CLEANUP_NORMAL || o->cleanup_after == PO_CLEANUP_AGGRESSIVE))
    guard_cleanup(m, o->device, (po_cleanup_level)o->cleanup_after);
  record_guard(m, name, &r, rc);
  if (out) *out = r;
  return rc;
}

void po_guard_options_init(po_guard_options *o) {
  if (!o) return;
  memset(o, 0, sizeof(*o));
  o->name = "guard";
  o->device = -1;
  o->headroom_ratio = 0;
  o->cleanup_after = PO_CLEANUP_NORMAL;
}
