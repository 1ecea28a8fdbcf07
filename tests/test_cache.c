/* Tests for the byte-budgeted cache (include/perfopt.h, cache section). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perfopt.h"
#include "support/support.h"

/* ---- free-callback bookkeeping: values are tokens (index + 1) into a freed-count array ---- */

#define MAX_TOKENS (1u << 21)
static unsigned char *freed_count; /* per token: how many times the free callback ran */
static size_t total_frees;
static pthread_mutex_t free_mu = PTHREAD_MUTEX_INITIALIZER;

#define FREE_LOG 65536
static size_t free_log[FREE_LOG]; /* tokens freed since the model last looked */
static size_t free_log_len;

static void count_free(void *value) {
  size_t tok = (size_t)(uintptr_t)value;
  pthread_mutex_lock(&free_mu);
  if (tok < MAX_TOKENS) freed_count[tok]++;
  if (free_log_len < FREE_LOG) free_log[free_log_len++] = tok;
  total_frees++;
  pthread_mutex_unlock(&free_mu);
}

static int setup(void **state) {
  (void)state;
  freed_count = calloc(MAX_TOKENS, 1);
  total_frees = 0;
  return freed_count ? 0 : -1;
}
static int teardown(void **state) {
  (void)state;
  free(freed_count);
  freed_count = NULL;
  return 0;
}

static void *tok(size_t t) {
  return (void *)(uintptr_t)t;
}

static int put_u64(po_cache *c, uint64_t key, size_t token, uint64_t size, po_resource_type type) {
  po_cache_entry_opts o = {type, count_free, 0, 0};
  return po_cache_put(c, &key, sizeof(key), tok(token), size, &o);
}
static int has(po_cache *c, uint64_t key) {
  void *v;
  return po_cache_get(c, &key, sizeof(key), &v) == 0;
}

/* ---- basics ------------------------------------------------------------------------------ */

static void test_put_get_remove(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  assert_int_equal(put_u64(c, 1, 1, 100, PO_RESOURCE_DATA), 0);
  void *v = NULL;
  uint64_t k = 1;
  assert_int_equal(po_cache_get(c, &k, sizeof(k), &v), 0);
  assert_ptr_equal(v, tok(1));
  k = 2;
  assert_int_equal(po_cache_get(c, &k, sizeof(k), &v), PO_ENOENT);
  k = 1;
  assert_int_equal(po_cache_remove(c, &k, sizeof(k)), 0);
  assert_int_equal(freed_count[1], 1);
  assert_int_equal(po_cache_remove(c, &k, sizeof(k)), PO_ENOENT);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_int_equal(st.hits, 1);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
  po_cache_destroy(c);
  assert_int_equal(total_frees, 1);
}

static void test_replace_frees_old_value(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  assert_int_equal(put_u64(c, 7, 1, 100, PO_RESOURCE_DATA), 0);
  assert_int_equal(put_u64(c, 7, 2, 300, PO_RESOURCE_DATA), 0);
  assert_int_equal(freed_count[1], 1);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_int_equal(st.bytes, 300);
  assert_int_equal(st.entries, 1);
  po_cache_destroy(c);
  assert_int_equal(freed_count[2], 1);
}

static void test_oversize_refused(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  assert_int_equal(put_u64(c, 1, 1, 1001, PO_RESOURCE_MODEL), PO_ETOOBIG);
  assert_false(has(c, 1));
  assert_int_equal(freed_count[1], 0); /* the caller keeps a refused value */
  assert_int_equal(put_u64(c, 2, 2, 1000, PO_RESOURCE_MODEL), 0); /* exactly the budget fits */
  assert_true(has(c, 2));
  po_cache_destroy(c);
}

static void test_evicts_until_new_object_fits(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  for (uint64_t k = 0; k < 10; k++)
    assert_int_equal(put_u64(c, k, k + 1, 100, PO_RESOURCE_DATA), 0);
  assert_int_equal(put_u64(c, 100, 200, 450, PO_RESOURCE_DATA), 0); /* needs 5 evictions */
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_true(st.bytes <= 1000);
  assert_int_equal(st.evictions, 5);
  assert_int_equal(st.entries, 6);
  po_cache_destroy(c);
  assert_int_equal(total_frees, 11);
}

/* SIEVE keeps visited objects and evicts the first unvisited one from the tail. */
static void test_sieve_keeps_visited(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(3, PO_CACHE_SIEVE, &c), 0);
  put_u64(c, 'A', 1, 1, PO_RESOURCE_DATA);
  put_u64(c, 'B', 2, 1, PO_RESOURCE_DATA);
  put_u64(c, 'C', 3, 1, PO_RESOURCE_DATA);
  assert_true(has(c, 'A'));
  assert_true(has(c, 'B'));
  put_u64(c, 'D', 4, 1, PO_RESOURCE_DATA); /* A, B visited: C goes */
  assert_int_equal(freed_count[3], 1);
  /* C was the newest, so the hand wraps to the tail: A, its bit cleared by the first pass */
  put_u64(c, 'E', 5, 1, PO_RESOURCE_DATA);
  assert_int_equal(freed_count[1], 1);
  put_u64(c, 'F', 6, 1, PO_RESOURCE_DATA); /* then B, also cleared; D and E stay */
  assert_int_equal(freed_count[2], 1);
  assert_int_equal(freed_count[4] + freed_count[5], 0);
  po_cache_destroy(c);
}

static void test_lru_evicts_least_recent(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(3, PO_CACHE_LRU, &c), 0);
  put_u64(c, 'A', 1, 1, PO_RESOURCE_DATA);
  put_u64(c, 'B', 2, 1, PO_RESOURCE_DATA);
  put_u64(c, 'C', 3, 1, PO_RESOURCE_DATA);
  assert_true(has(c, 'A'));
  put_u64(c, 'D', 4, 1, PO_RESOURCE_DATA);
  assert_int_equal(freed_count[2], 1); /* B was least recently used */
  assert_true(has(c, 'A'));
  po_cache_destroy(c);
}

/* S3-FIFO: one-hit wonders leave through the small queue; an object seen again is kept. */
static void test_s3fifo_filters_one_hit_wonders(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_S3FIFO, &c), 0);
  for (uint64_t k = 0; k < 100; k++) put_u64(c, k, k + 1, 10, PO_RESOURCE_DATA);
  for (int r = 0; r < 3; r++)
    for (uint64_t k = 0; k < 5; k++) assert_true(has(c, k));
  for (uint64_t k = 1000; k < 3000; k++) put_u64(c, k, k + 1, 10, PO_RESOURCE_DATA);
  for (uint64_t k = 0; k < 5; k++) assert_true(has(c, k)); /* hot set survived the scan */
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_true(st.bytes <= 1000);
  po_cache_destroy(c);
}

/* ---- the randomized model test ----------------------------------------------------------- */

#define RKEYS 2048
typedef struct {
  size_t token; /* 0 = absent */
  uint64_t size;
  int pins;
  po_resource_type type;
} ref_entry;

static uint64_t rng_state;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* The model learns about evictions from the free callback (tokens are unique per put). */
static void run_model(po_cache_policy policy, long ops) {
  const uint64_t budget = 64 * 1024;
  ref_entry *ref = calloc(RKEYS, sizeof(*ref));
  uint32_t *tok_key = calloc(MAX_TOKENS, sizeof(uint32_t));
  assert_non_null(ref);
  assert_non_null(tok_key);
  po_cache *c;
  assert_int_equal(po_cache_create(budget, policy, &c), 0);
  rng_state = 0x1234567 + (uint64_t)policy;
  size_t next_tok = 1;
  uint64_t ref_bytes = 0, ref_entries = 0;
  for (long i = 0; i < ops; i++) {
    uint64_t key = rnd() % RKEYS;
    ref_entry *r = &ref[key];
    unsigned op = (unsigned)(rnd() % 1000);
    free_log_len = 0;
    /* 1. the operation */
    int rc = 0, put_pin = 0;
    size_t t = 0;
    uint64_t size = 0;
    po_resource_type type = PO_RESOURCE_OTHER;
    void *v = NULL;
    int was_present = r->token != 0, was_pinned = r->pins != 0;
    if (op < 450) {
      size = (rnd() % 100 == 0) ? budget + 1 + rnd() % 10 : 1 + rnd() % 4096;
      put_pin = rnd() % 200 == 0;
      type = (po_resource_type)(rnd() % PO_CACHE_TYPE_COUNT);
      t = next_tok++;
      if (t >= MAX_TOKENS) break; /* the token space is the test's limit, not the cache's */
      tok_key[t] = (uint32_t)key;
      po_cache_entry_opts o = {type, count_free, 0, put_pin};
      rc = po_cache_put(c, &key, sizeof(key), tok(t), size, &o);
    } else if (op < 800) {
      rc = po_cache_get(c, &key, sizeof(key), &v);
    } else if (op < 900) {
      rc = po_cache_remove(c, &key, sizeof(key));
    } else if (op < 950) {
      if (r->token && r->pins)
        rc = po_cache_unpin(c, &key, sizeof(key));
      else if (r->token)
        rc = po_cache_pin(c, &key, sizeof(key));
    } else if (op < 952) {
      po_cache_clear_type(c, type = (po_resource_type)(rnd() % PO_CACHE_TYPE_COUNT));
    } else if (op < 954) {
      po_cache_shrink(c, rnd() % budget, NULL);
    } else if (op < 955) {
      for (size_t k = 0; k < RKEYS; k++)
        while (ref[k].token && ref[k].pins) {
          uint64_t kk = k;
          assert_int_equal(po_cache_unpin(c, &kk, sizeof(kk)), 0);
          ref[k].pins--;
        }
    } else {
      po_cache_handle *h;
      rc = po_cache_acquire(c, &key, sizeof(key), &v, &h);
      if (!rc) po_cache_release(c, h);
    }
    /* 2. what left the cache: each token freed exactly once, never a pinned one */
    assert_true(free_log_len < FREE_LOG);
    for (size_t f = 0; f < free_log_len; f++) {
      size_t ft = free_log[f];
      assert_int_equal(freed_count[ft], 1);
      ref_entry *fr = &ref[tok_key[ft]];
      assert_int_equal(fr->token, ft);
      assert_int_equal(fr->pins, 0);
      if (op >= 950 && op < 952) assert_int_equal(fr->type, type); /* clear_type: that type only */
      ref_bytes -= fr->size;
      ref_entries--;
      fr->token = 0;
    }
    /* 3. the expected result, and the model update */
    if (op < 450) {
      assert_int_equal(freed_count[t], 0);
      if (size > budget) {
        assert_int_equal(rc, PO_ETOOBIG);
      } else if (rc == 0) {
        r->token = t;
        r->size = size;
        r->pins = put_pin;
        r->type = type;
        ref_bytes += size;
        ref_entries++;
      } else {
        assert_int_equal(rc, PO_EBUSY); /* pinned key, or pins leave no room */
      }
    } else if (op < 800 || op >= 955) {
      if (r->token) {
        assert_int_equal(rc, 0);
        assert_ptr_equal(v, tok(r->token));
      } else {
        assert_int_equal(rc, PO_ENOENT);
      }
    } else if (op < 900) {
      assert_int_equal(rc, !was_present ? PO_ENOENT : was_pinned ? PO_EBUSY : 0);
    } else if (op < 950 && r->token) {
      assert_int_equal(rc, 0);
      r->pins += was_pinned ? -1 : 1;
    }
    po_cache_stats st;
    po_cache_get_stats(c, &st);
    assert_true(st.bytes <= budget);
    assert_int_equal(st.bytes, ref_bytes);
    assert_int_equal(st.entries, ref_entries);
  }
  free_log_len = 0;
  size_t before = total_frees;
  po_cache_destroy(c);
  assert_int_equal(total_frees - before, ref_entries);
  for (size_t t = 1; t < next_tok && t < MAX_TOKENS; t++) assert_true(freed_count[t] <= 1);
  free(tok_key);
  free(ref);
}

static void test_budget_never_exceeded_sieve_1m_ops(void **state) {
  (void)state;
  run_model(PO_CACHE_SIEVE, 1000000);
}
static void test_budget_never_exceeded_s3fifo(void **state) {
  (void)state;
  run_model(PO_CACHE_S3FIFO, 300000);
}
static void test_budget_never_exceeded_lru(void **state) {
  (void)state;
  run_model(PO_CACHE_LRU, 300000);
}

/* ---- pins, types, TTL, shrink ------------------------------------------------------------ */

static void test_pinned_never_evicted(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  po_cache_entry_opts pin = {PO_RESOURCE_MODEL, count_free, 0, 1};
  uint64_t k = 999;
  assert_int_equal(po_cache_put(c, &k, sizeof(k), tok(999), 600, &pin), 0);
  for (uint64_t i = 0; i < 100; i++)
    assert_int_equal(put_u64(c, i, i + 1, 100, PO_RESOURCE_DATA), 0);
  assert_true(has(c, 999));
  assert_int_equal(freed_count[999], 0);
  assert_int_equal(put_u64(c, 5000, 5000, 500, PO_RESOURCE_DATA), PO_EBUSY); /* 600 pinned */
  assert_int_equal(po_cache_remove(c, &k, sizeof(k)), PO_EBUSY);
  assert_int_equal(po_cache_shrink(c, 0, NULL), PO_EBUSY);
  assert_true(has(c, 999));
  assert_int_equal(po_cache_unpin(c, &k, sizeof(k)), 0);
  assert_int_equal(po_cache_unpin(c, &k, sizeof(k)), PO_ESTATE);
  assert_int_equal(put_u64(c, 5000, 5000, 500, PO_RESOURCE_DATA), 0);
  assert_int_equal(po_cache_shrink(c, 0, NULL), 0);
  assert_int_equal(freed_count[999], 1);
  po_cache_destroy(c);
}

static void test_handle_pins_until_release(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(100, PO_CACHE_SIEVE, &c), 0);
  put_u64(c, 1, 1, 60, PO_RESOURCE_DATA);
  void *v;
  po_cache_handle *h;
  uint64_t k = 1;
  assert_int_equal(po_cache_acquire(c, &k, sizeof(k), &v, &h), 0);
  assert_int_equal(put_u64(c, 2, 2, 60, PO_RESOURCE_DATA), PO_EBUSY);
  po_cache_release(c, h);
  assert_int_equal(put_u64(c, 2, 2, 60, PO_RESOURCE_DATA), 0);
  assert_int_equal(freed_count[1], 1);
  po_cache_destroy(c);
}

static void test_clear_type_removes_exactly_that_type(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1u << 20, PO_CACHE_SIEVE, &c), 0);
  for (uint64_t i = 0; i < 50; i++)
    put_u64(c, i, i + 1, 10, (po_resource_type)(i % PO_CACHE_TYPE_COUNT));
  assert_int_equal(po_cache_clear_type(c, PO_RESOURCE_VISUALIZATION), 10);
  for (uint64_t i = 0; i < 50; i++) {
    int vis = i % PO_CACHE_TYPE_COUNT == PO_RESOURCE_VISUALIZATION;
    assert_int_equal(has(c, i), !vis);
    assert_int_equal(freed_count[i + 1], vis);
  }
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_int_equal(st.per_type[PO_RESOURCE_VISUALIZATION].entries, 0);
  assert_int_equal(st.per_type[PO_RESOURCE_MODEL].entries, 10);
  assert_int_equal(st.entries, 40);
  assert_int_equal(po_cache_clear(c), 40);
  assert_int_equal(total_frees, 50);
  po_cache_destroy(c);
  assert_int_equal(total_frees, 50);
}

static uint64_t fake_now;
static uint64_t fake_clock(void *arg) {
  (void)arg;
  return fake_now;
}

static void test_ttl_expiry(void **state) {
  (void)state;
  fake_now = 1000000000ULL;
  po_cache_options o = {"ttl", PO_CACHE_SIEVE, 0, fake_clock, NULL};
  po_cache *c;
  assert_int_equal(po_cache_create_ex(1000, &o, &c), 0);
  po_cache_entry_opts e = {PO_RESOURCE_DATA, count_free, 5000000000ULL /* 5 s */, 0};
  uint64_t k = 1, k2 = 2;
  assert_int_equal(po_cache_put(c, &k, sizeof(k), tok(1), 10, &e), 0);
  assert_int_equal(put_u64(c, 2, 2, 10, PO_RESOURCE_DATA), 0); /* no TTL */
  fake_now += 4900000000ULL;
  assert_true(has(c, 1));
  fake_now += 200000000ULL;
  void *v;
  assert_int_equal(po_cache_get(c, &k, sizeof(k), &v), PO_ENOENT);
  assert_int_equal(freed_count[1], 1); /* removed when found expired */
  assert_int_equal(po_cache_get(c, &k2, sizeof(k2), &v), 0);
  assert_int_equal(po_cache_put(c, &k, sizeof(k), tok(3), 10, &e), 0);
  fake_now += 6000000000ULL;
  assert_int_equal(po_cache_purge_expired(c), 1);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_int_equal(st.expirations, 2);
  assert_int_equal(st.entries, 1);
  po_cache_destroy(c);
}

static void test_shrink_under_simulated_memory_threshold(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  put_u64(c, 1, 1, 200, PO_RESOURCE_MODEL);
  put_u64(c, 2, 2, 200, PO_RESOURCE_DATA);
  put_u64(c, 3, 3, 200, PO_RESOURCE_VISUALIZATION);
  put_u64(c, 4, 4, 200, PO_RESOURCE_OTHER);
  uint64_t freed = po_cache_on_pressure(c, "memory"); /* detached: shrinks to 0.5 */
  assert_int_equal(freed, 400);
  assert_false(has(c, 4)); /* other and visualization go first */
  assert_false(has(c, 3));
  assert_true(has(c, 2));
  assert_true(has(c, 1));
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_true(st.bytes <= 500);
  assert_int_equal(st.shrinks, 1);
  po_cache_destroy(c);
}

static void test_attached_cache_shrinks_on_optimizer_pressure(void **state) {
  (void)state;
  po_config cfg;
  po_config_defaults(&cfg);
  cfg.background_monitoring = 0;
  cfg.cache_shrink_fraction = 0.25;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&cfg, &opt), 0);
  po_cache_options o = {"models", PO_CACHE_SIEVE, 0, NULL, NULL};
  po_cache *c;
  assert_int_equal(po_cache_create_ex(1000, &o, &c), 0);
  assert_int_equal(po_cache_attach(opt, c), 0);
  assert_int_equal(po_cache_attach(opt, c), PO_EBUSY);
  for (uint64_t i = 0; i < 10; i++) put_u64(c, i, i + 1, 100, PO_RESOURCE_DATA);
  assert_int_equal(po_optimize_memory(opt, PO_CLEANUP_NORMAL, NULL), 0);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_true(st.bytes <= 250);
  assert_int_equal(st.shrinks, 1);
  /* the report's cache section */
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *caches =
      cJSON_GetObjectItem(cJSON_GetObjectItem(po_report_json(rep), "cache"), "caches");
  assert_int_equal(cJSON_GetArraySize(caches), 1);
  const cJSON *c0 = cJSON_GetArrayItem(caches, 0);
  assert_string_equal(cJSON_GetObjectItem(c0, "name")->valuestring, "models");
  assert_string_equal(cJSON_GetObjectItem(c0, "policy")->valuestring, "sieve");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c0, "per_type")), PO_CACHE_TYPE_COUNT);
  const cJSON *sh = cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "shrinks"), 0);
  assert_string_equal(cJSON_GetObjectItem(sh, "reason")->valuestring, "manual");
  assert_int_equal((int)cJSON_GetObjectItem(sh, "from_bytes")->valuedouble, 1000);
  po_report_destroy(rep);
  /* targeted clearing through the monitor's cleanup registry */
  assert_int_equal(po_clear_resource(opt, PO_RESOURCE_DATA, PO_CLEANUP_AGGRESSIVE, NULL), 0);
  po_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 0);
  po_cache_destroy(c); /* detaches */
  po_optimizer_destroy(opt);
  assert_int_equal(total_frees, 10);
}

/* ---- get-or-load ------------------------------------------------------------------------- */

typedef struct {
  int calls;
  int fail;
  pthread_mutex_t mu;
} loader_ctx;

static int slow_loader(const void *key, size_t keylen, void *ctx, po_cache_loaded *out) {
  (void)key;
  (void)keylen;
  loader_ctx *lc = ctx;
  pthread_mutex_lock(&lc->mu);
  lc->calls++;
  pthread_mutex_unlock(&lc->mu);
  struct timespec ts = {0, 50 * 1000 * 1000}; /* give the other threads time to queue up */
  nanosleep(&ts, NULL);
  if (lc->fail) return PO_EIO;
  out->value = tok(77);
  out->size_bytes = 10;
  out->type = PO_RESOURCE_MODEL;
  out->free_fn = count_free;
  return 0;
}

typedef struct {
  po_cache *c;
  loader_ctx *lc;
  pthread_barrier_t *bar;
  int rc;
  void *value;
} gol_arg;

static void *gol_thread(void *p) {
  gol_arg *a = p;
  pthread_barrier_wait(a->bar);
  po_cache_handle *h = NULL;
  a->rc = po_cache_get_or_load(a->c, "model-a", 7, slow_loader, a->lc, &a->value, &h);
  if (!a->rc) po_cache_release(a->c, h);
  return NULL;
}

static void run_8_loaders(po_cache *c, loader_ctx *lc, gol_arg *args) {
  pthread_t th[8];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 8);
  for (int i = 0; i < 8; i++) {
    args[i] = (gol_arg){c, lc, &bar, 1, NULL};
    assert_int_equal(pthread_create(&th[i], NULL, gol_thread, &args[i]), 0);
  }
  for (int i = 0; i < 8; i++) support_join(th[i], SUPPORT_WAIT_SECONDS);
  pthread_barrier_destroy(&bar);
}

static void test_get_or_load_from_8_threads_loads_once(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  loader_ctx lc = {0, 0, PTHREAD_MUTEX_INITIALIZER};
  gol_arg args[8];
  run_8_loaders(c, &lc, args);
  assert_int_equal(lc.calls, 1);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(args[i].rc, 0);
    assert_ptr_equal(args[i].value, tok(77));
  }
  void *v;
  assert_int_equal(po_cache_get(c, "model-a", 7, &v), 0);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_int_equal(st.loads, 1);
  assert_int_equal(freed_count[77], 0);
  po_cache_destroy(c);
  assert_int_equal(freed_count[77], 1);
}

static void test_loader_failure_reaches_every_waiter(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  loader_ctx lc = {0, 1, PTHREAD_MUTEX_INITIALIZER};
  gol_arg args[8];
  run_8_loaders(c, &lc, args);
  for (int i = 0; i < 8; i++) assert_int_equal(args[i].rc, PO_EIO);
  assert_true(lc.calls >= 1);
  void *v;
  assert_int_equal(po_cache_get(c, "model-a", 7, &v), PO_ENOENT);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.load_failures, (uint64_t)lc.calls);
  po_cache_destroy(c);
  assert_int_equal(total_frees, 0);
}

static void test_caching_off(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  put_u64(c, 1, 1, 10, PO_RESOURCE_DATA);
  po_cache_set_enabled(c, 0);
  assert_false(po_cache_enabled(c));
  assert_false(has(c, 1)); /* every get misses */
  assert_int_equal(put_u64(c, 2, 2, 10, PO_RESOURCE_DATA), 0);
  assert_int_equal(freed_count[2], 1); /* taken and released at once */
  loader_ctx lc = {0, 0, PTHREAD_MUTEX_INITIALIZER};
  for (int i = 0; i < 3; i++) {
    void *v;
    po_cache_handle *h;
    assert_int_equal(po_cache_get_or_load(c, "k", 1, slow_loader, &lc, &v, &h), 0);
    assert_ptr_equal(v, tok(77));
    assert_int_equal(freed_count[77], (unsigned)i);
    po_cache_release(c, h);
    assert_int_equal(freed_count[77], (unsigned)i + 1);
  }
  assert_int_equal(lc.calls, 3);
  po_cache_set_enabled(c, 1);
  assert_true(has(c, 1));
  po_cache_destroy(c);

  /* ENABLE_CACHING=false on the optimizer turns attached caches off */
  po_config cfg;
  po_config_defaults(&cfg);
  cfg.background_monitoring = 0;
  cfg.enable_caching = 0;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&cfg, &opt), 0);
  assert_int_equal(po_cache_create(1000, PO_CACHE_SIEVE, &c), 0);
  assert_int_equal(po_cache_attach(opt, c), 0);
  assert_false(po_cache_enabled(c));
  put_u64(c, 3, 3, 10, PO_RESOURCE_DATA);
  assert_false(has(c, 3));
  po_cache_detach(c);
  assert_true(po_cache_enabled(c));
  po_cache_destroy(c);
  po_optimizer_destroy(opt);
}

/* ---- concurrent readers and writers (run under ASan and TSan) --------------------------- */

/* Writers always map key k to the value token k + 1, so a reader can check every hit. */
typedef struct {
  po_cache *c;
  int writer;
  unsigned seed;
  _Atomic int *stop;
  long hits;  /* hits whose value belonged to the key */
  long wrong; /* hits that returned another key's value */
} rw_arg;

static void *rw_thread(void *p) {
  rw_arg *a = p;
  uint64_t s = a->seed * 0x9e3779b97f4a7c15ULL + 1;
  for (long i = 0; i < 200000 && !*a->stop; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    uint64_t key = s % 5000;
    if (a->writer) {
      if (i % 16 == 0)
        po_cache_remove(a->c, &key, sizeof(key));
      else
        put_u64(a->c, key, key + 1, 1 + s % 64, PO_RESOURCE_DATA);
    } else {
      void *v;
      if (po_cache_get(a->c, &key, sizeof(key), &v) == 0) {
        if (v == tok(key + 1))
          a->hits++;
        else
          a->wrong++;
      }
    }
  }
  return NULL;
}

static void run_readers_writers(po_cache_policy policy) {
  po_cache *c;
  assert_int_equal(po_cache_create(20000, policy, &c), 0);
  /* Some keys before any thread starts: a reader that the scheduler runs to its end before the
   * writers start (a loaded machine) still finds values to check. */
  for (uint64_t k = 0; k < 300; k++) put_u64(c, k, k + 1, 16, PO_RESOURCE_DATA);
  _Atomic int stop = 0;
  rw_arg args[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (rw_arg){c, i < 2, (unsigned)i + 1, &stop, 0, 0};
    assert_int_equal(pthread_create(&th[i], NULL, rw_thread, &args[i]), 0);
  }
  for (int i = 0; i < 4; i++) support_join(th[i], SUPPORT_WAIT_SECONDS);
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  assert_true(st.bytes <= 20000);
  assert_true(st.hits > 0);
  for (int i = 2; i < 4; i++) { /* the readers */
    assert_int_equal(args[i].wrong, 0);
    assert_true(args[i].hits > 0); /* they did check values */
  }
  po_cache_destroy(c);
}

static void test_concurrent_gets_and_puts_sieve(void **state) {
  (void)state;
  run_readers_writers(PO_CACHE_SIEVE);
}
static void test_concurrent_gets_and_puts_s3fifo(void **state) {
  (void)state;
  run_readers_writers(PO_CACHE_S3FIFO);
}
static void test_concurrent_gets_and_puts_lru(void **state) {
  (void)state;
  run_readers_writers(PO_CACHE_LRU);
}

static void test_bad_arguments(void **state) {
  (void)state;
  po_cache *c;
  assert_int_equal(po_cache_create(0, PO_CACHE_SIEVE, &c), PO_EINVAL);
  assert_int_equal(po_cache_create(10, (po_cache_policy)9, &c), PO_EINVAL);
  assert_int_equal(po_cache_create(10, PO_CACHE_SIEVE, &c), 0);
  void *v;
  assert_int_equal(po_cache_get(c, NULL, 3, &v), PO_EINVAL);
  po_cache_entry_opts bad = {(po_resource_type)7, NULL, 0, 0};
  assert_int_equal(po_cache_put(c, "k", 1, NULL, 1, &bad), PO_EINVAL);
  assert_int_equal(po_cache_put(c, "", 0, tok(1), 1, NULL), 0); /* the empty key is a key */
  assert_int_equal(po_cache_get(c, "", 0, &v), 0);
  assert_string_equal(po_cache_policy_name(PO_CACHE_S3FIFO), "s3fifo");
  po_cache_destroy(c);
  po_cache_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_put_get_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_replace_frees_old_value, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversize_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_evicts_until_new_object_fits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sieve_keeps_visited, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lru_evicts_least_recent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_s3fifo_filters_one_hit_wonders, setup, teardown),
      cmocka_unit_test_setup_teardown(test_budget_never_exceeded_sieve_1m_ops, setup, teardown),
      cmocka_unit_test_setup_teardown(test_budget_never_exceeded_s3fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_budget_never_exceeded_lru, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pinned_never_evicted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_handle_pins_until_release, setup, teardown),
      cmocka_unit_test_setup_teardown(test_clear_type_removes_exactly_that_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shrink_under_simulated_memory_threshold, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_attached_cache_shrinks_on_optimizer_pressure, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_get_or_load_from_8_threads_loads_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loader_failure_reaches_every_waiter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_caching_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_gets_and_puts_sieve, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_gets_and_puts_s3fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_gets_and_puts_lru, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
