#include "populated.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "optimizer.h"
#include "support.h"

#define GIB (1024ll * 1024 * 1024)
static po_cache *populated_cache;

#define HANDLERS 9 /* more than a firing's 8 recorded actions: dropped_actions appears */

void support_fake_gpu_config(po_config *c) {
  const char *build = getenv("BUILD");
  setenv("PERFOPT_FAKE_NVML", "2,fail-calls-last", 1);
  po_config_defaults(c);
  c->background_monitoring = 0;
  snprintf(c->nvml_library, sizeof c->nvml_library, "%s/tests/fakes/libfake_nvml.so",
           build && build[0] ? build : "build");
}

static void nothing(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
}

static int64_t listener(const po_pressure_event *ev, void *user) {
  (void)ev;
  (void)user;
  return 4096;
}

static int op_ok(void *ctx) {
  (void)ctx;
  return 0;
}

/* A thread that names itself, runs a zone and leaves another open when it exits. */
static void *worker(void *arg) {
  (void)arg;
  static po_site done = PO_SITE_INIT("populated.worker_zone", __FILE__, __LINE__);
  static po_site open = PO_SITE_INIT("populated.left_open", __FILE__, __LINE__);
  po_profile_thread_name("populated-worker");
  po_zone_begin(&done);
  po_zone_end();
  po_zone_begin(&open);
  return NULL;
}

static void profile(void) {
  static po_site outer = PO_SITE_INIT("populated.outer", __FILE__, __LINE__);
  static po_site inner = PO_SITE_INIT("populated.inner", __FILE__, __LINE__);
  assert_int_equal(po_profile_set_timeline(1, 4096), 0);
  po_zone_begin(&outer);
  po_zone_begin(&inner);
  po_zone_end();
  po_zone_end();
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, worker, NULL), 0);
  support_join(t, SUPPORT_WAIT_SECONDS);
}

/* One real sample (the fake GPUs answer, their thresholds resolve), then samples that cross the
 * memory and GPU thresholds. */
static void samples(po_optimizer *opt) {
  po_sample s;
  assert_int_equal(po_monitor_sample_now(opt, &s), 0);
  assert_int_equal(s.gpu_count, 2);
  s.memory_limit_bytes = 16 * GIB;
  s.memory_used_bytes = 16 * GIB - GIB / 10;
  s.memory_available_bytes = GIB / 10;
  s.gpus[0].memory_total_bytes = 8 * GIB;
  s.gpus[0].memory_used_bytes = 8 * GIB - GIB / 20;
  s.t_seconds += 0.5;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  s.t_seconds += 0.5;
  assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
}

po_optimizer *support_populated_optimizer(void) {
  po_config c;
  support_fake_gpu_config(&c);
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  profile();
  for (int i = 0; i < HANDLERS; i++) {
    char name[32];
    snprintf(name, sizeof name, "handler %d", i);
    assert_int_equal(po_cleanup_register(opt, name, (po_resource_type)(i % PO_CACHE_TYPE_COUNT), i,
                                         PO_CLEANUP_NORMAL, nothing, NULL, NULL),
                     0);
  }
  assert_int_equal(po_monitor_add_pressure_listener(opt, "models", listener, NULL, NULL), 0);
  po_cache *cache = NULL;
  po_cache_options co = {.name = "populated", .policy = PO_CACHE_S3FIFO};
  assert_null(populated_cache); /* one at a time */
  assert_int_equal(po_cache_create_ex(1 << 20, &co, &cache), 0);
  populated_cache = cache;
  assert_int_equal(po_cache_attach(opt, cache), 0);
  for (uint64_t k = 0; k < 64; k++) {
    po_cache_entry_opts eo = {.type = (po_resource_type)(k % PO_CACHE_TYPE_COUNT)};
    assert_int_equal(po_cache_put(cache, &k, sizeof k, NULL, 4096, &eo), 0);
  }
  void *v;
  uint64_t k0 = 0, missing = 1000;
  assert_int_equal(po_cache_get(cache, &k0, sizeof k0, &v), 0);
  assert_int_equal(po_cache_get(cache, &missing, sizeof missing, &v), PO_ENOENT);
  assert_int_equal(po_cache_shrink(cache, 128 * 1024, NULL), 0);
  assert_int_equal(po_phase_begin(opt, "warm-up"), 0);
  assert_int_equal(po_phase_end(opt), 0);
  po_guard_options go;
  po_guard_options_init(&go);
  go.name = "knowledge transfer";
  assert_int_equal(po_guard_run(opt, 1024, op_ok, NULL, NULL, &go, NULL), 0);
  samples(opt);
  assert_int_equal(po_phase_begin(opt, "training"), 0); /* left open */
  return opt;
}

void support_populated_destroy(po_optimizer *opt) {
  po_optimizer_destroy(opt);
  po_cache_destroy(populated_cache); /* an attached cache outlives its optimizer */
  populated_cache = NULL;
}
