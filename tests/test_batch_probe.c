/* The batch probe (memory measured at small batches, a fitted line, one validating step) and the
 * guard's out-of-memory path that uses the same model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer.h"
#include "perfopt.h"

#define MB (1024ll * 1024)

/* A synthetic job: a step at batch b needs fixed + per * b bytes; it runs out of memory above
 * `fits`. The caller's measure reads what the last step used. */
typedef struct job {
  int64_t fixed, per, fits;
  int64_t in_use, calls, last_batch;
} job;

static int job_step(int64_t batch, void *user) {
  job *j = user;
  j->calls++;
  j->last_batch = batch;
  if (batch > j->fits) return PO_EOOM;
  j->in_use = j->fixed + j->per * batch;
  return 0;
}

static int64_t job_measure(void *user) {
  job *j = user;
  int64_t v = j->in_use;
  j->in_use = 0; /* peak since the previous call */
  return v;
}

static po_batch_probe_options job_options(job *j, int64_t available) {
  po_batch_probe_options o;
  po_batch_probe_options_init(&o);
  o.measure = job_measure;
  o.measure_user = j;
  o.available_bytes = available;
  o.headroom_ratio = 0.05;
  return o;
}

static void test_proposes_the_largest_batch_under_the_margin_in_four_steps(void **state) {
  (void)state;
  job j = {64 * MB, 3 * MB, 1000000, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 4096 * MB);
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  /* (4096 MB * 0.95 - 64 MB) / 3 MB = 1275.7 */
  assert_int_equal(r.batch, 1275);
  assert_int_equal(r.proposed_batch, 1275);
  assert_int_equal(r.steps, 4);
  assert_int_equal(r.fallbacks, 0);
  assert_int_equal(j.calls, 4);
  assert_int_equal(j.last_batch, 1275); /* validated at that size */
  assert_true(fabs(r.model.bytes_per_sample - 3.0 * MB) < 1);
  assert_true(fabs(r.model.fixed_bytes - 64.0 * MB) < 1);
  assert_int_equal(r.nmeasured, 3);
  assert_int_equal(r.measured_batch[2], 16);
}

static void test_a_failing_validation_halves_until_a_step_runs(void **state) {
  (void)state;
  /* the model says 1275 fits, the real job dies above 500 (another process took memory) */
  job j = {64 * MB, 3 * MB, 500, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 4096 * MB);
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  assert_int_equal(r.proposed_batch, 1275);
  assert_int_equal(r.fallbacks, 2); /* 1275 -> 637 -> 318 */
  assert_int_equal(r.batch, 318);
  assert_int_equal(r.steps, 6);
}

/* A huge model: the third default size would need most of the memory, so it is not measured. */
static void test_a_third_size_that_would_not_fit_is_not_measured(void **state) {
  (void)state;
  job j = {0, 100 * MB, 1000000, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 2000 * MB); /* 16 samples would need 1600 MB */
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  assert_int_equal(r.nmeasured, 2);
  assert_int_equal(r.batch, 19); /* 1900 MB / 100 MB */
  assert_int_equal(r.steps, 3);
}

static void test_cap_multiple_and_reduce(void **state) {
  (void)state;
  job j = {0, 1 * MB, 1000000, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 1000 * MB);
  o.multiple = 8;
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  assert_int_equal(r.batch, 944); /* 950 down to a multiple of 8 */
  o.max_batch = 100;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  assert_int_equal(r.batch, 96);
}

static int64_t other_rank_min(int64_t batch, void *user) {
  int64_t other = *(int64_t *)user;
  return batch < other ? batch : other;
}

static void test_distributed_reduce_takes_the_smallest_rank(void **state) {
  (void)state;
  job j = {0, 1 * MB, 1000000, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 1000 * MB);
  int64_t other = 300;
  o.reduce = other_rank_min;
  o.reduce_user = &other;
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  assert_int_equal(r.batch, 300);
}

static int64_t flat_measure(void *user) {
  (void)user;
  return 100 * MB;
}

static void test_errors(void **state) {
  (void)state;
  job j = {0, 1 * MB, 1000000, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 1000 * MB);
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, NULL, &j, &o, &r), PO_EINVAL);
  o.sizes[0] = 4, o.sizes[1] = 2; /* not ascending */
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), PO_EINVAL);
  o.sizes[0] = o.sizes[1] = 0;
  o.headroom_ratio = 1;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), PO_EINVAL);
  o.headroom_ratio = 0.05;
  /* memory that does not grow with the batch: nothing to size without a cap */
  o.measure = flat_measure;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), PO_ERANGE);
  o.max_batch = 64;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), 0);
  assert_int_equal(r.batch, 64);
  /* a measuring step that runs out of memory ends the probe */
  o = job_options(&j, 1000 * MB);
  j.fits = 1;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), PO_EOOM);
  assert_int_equal(r.steps, 2); /* 1 ran, 4 did not */
  /* not even one sample fits */
  j.fits = 1000000;
  o.available_bytes = 1 * MB;
  assert_int_equal(po_batch_probe(NULL, job_step, &j, &o, &r), PO_ETOOBIG);
}

/* Real memory: each step allocates batch MiB, touches and frees them. The peak RSS increment is
 * measured without any help from the caller. */
static int alloc_step(int64_t batch, void *user) {
  (void)user;
  size_t n = (size_t)batch * (size_t)MB;
  char *p = malloc(n);
  if (!p) return PO_EOOM;
  memset(p, 1, n);
  __asm__ volatile("" : : "r"(p) : "memory"); /* the compiler may not drop the buffer */
  free(p);
  return 0;
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void test_peak_rss_is_measured_around_each_step(void **state) {
  (void)state;
#ifdef UNDER_TSAN
  /* ThreadSanitizer's allocator keeps freed blocks resident and reuses them: the peak increment
   * of a step is then only what it allocated beyond them (docs/api.md says so of any caching
   * allocator). Nothing to check here. */
  skip();
#endif
  po_batch_probe_options o;
  po_batch_probe_options_init(&o);
  o.sizes[0] = 8, o.sizes[1] = 16, o.sizes[2] = 32;
  o.available_bytes = 256 * MB;
  o.max_batch = 64;
  po_batch_probe_result r;
  assert_int_equal(po_batch_probe(NULL, alloc_step, NULL, &o, &r), 0);
  /* the freed buffer left RSS before the measure: only the peak saw it */
  assert_true(r.measured_bytes[2] >= 28 * MB);
  assert_true(fabs(r.model.bytes_per_sample - (double)MB) < 0.2 * (double)MB);
  assert_true(r.batch >= 200 || r.batch == 64);
}

/* ---- the guard's out-of-memory path ----------------------------------------------------------- */

typedef struct guarded {
  po__memory *m;
  int64_t batch, fits;
  int runs, fallbacks;
} guarded;

/* Runs out of memory above `fits`; when it does, the machine has 600 MB left. */
static int guarded_primary(void *ctx) {
  guarded *g = ctx;
  g->runs++;
  if (g->batch <= g->fits) return 0;
  po__memory_test_set_available(g->m, -1, 600 * MB);
  return PO_EOOM;
}

static int guarded_fallback(void *ctx) {
  guarded *g = ctx;
  g->fallbacks++;
  return 0;
}

static void test_guard_retries_at_the_batch_the_model_fits(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  po__memory_test_set_available(opt->memory, -1, 4096 * MB);
  po_batch_model model = {100.0 * MB, 10.0 * MB};
  guarded g = {opt->memory, 200, 50, 0, 0};
  po_guard_options o;
  po_guard_options_init(&o);
  o.batch_model = &model;
  o.batch = &g.batch;
  po_guard_result res;
  assert_int_equal(po_guard_run(opt, 0, guarded_primary, guarded_fallback, &g, &o, &res), 0);
  assert_int_equal(res.required_bytes, 100 * MB + 200 * 10 * MB); /* from the model */
  assert_int_equal(res.ran, 1);
  assert_int_equal(g.runs, 2);
  assert_int_equal(g.fallbacks, 0);
  assert_int_equal(res.retried_batch, 50); /* (600 - 100) / 10 */
  assert_int_equal(g.batch, 50);
  /* positive control: without the model the same failure goes to the fallback */
  g = (guarded){opt->memory, 200, 50, 0, 0};
  po__memory_test_set_available(opt->memory, -1, 4096 * MB);
  po_guard_options_init(&o);
  assert_int_equal(po_guard_run(opt, 2100 * MB, guarded_primary, guarded_fallback, &g, &o, &res), 0);
  assert_int_equal(res.ran, 2);
  assert_int_equal(g.fallbacks, 1);
  assert_int_equal(res.retried_batch, 0);
  /* the report shows the retry */
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *gu = cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "memory"), "guards");
  assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(gu, 0), "retried_batch")->valuedouble,
                   50);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

static void test_probes_are_in_the_report(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  job j = {64 * MB, 3 * MB, 1000000, 0, 0, 0};
  po_batch_probe_options o = job_options(&j, 4096 * MB);
  assert_int_equal(po_batch_probe(opt, job_step, &j, &o, NULL), 0);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *p = cJSON_GetArrayItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "memory"), "batch_probes"), 0);
  assert_non_null(p);
  assert_int_equal((int)cJSON_GetObjectItem(p, "batch")->valuedouble, 1275);
  assert_string_equal(cJSON_GetObjectItem(p, "result")->valuestring, "ok");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "measured")), 3);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_proposes_the_largest_batch_under_the_margin_in_four_steps),
      cmocka_unit_test(test_a_failing_validation_halves_until_a_step_runs),
      cmocka_unit_test(test_a_third_size_that_would_not_fit_is_not_measured),
      cmocka_unit_test(test_cap_multiple_and_reduce),
      cmocka_unit_test(test_distributed_reduce_takes_the_smallest_rank),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_peak_rss_is_measured_around_each_step),
      cmocka_unit_test(test_guard_retries_at_the_batch_the_model_fits),
      cmocka_unit_test(test_probes_are_in_the_report),
  };
  return cmocka_run_group_tests_name("batch_probe", tests, NULL, NULL);
}
