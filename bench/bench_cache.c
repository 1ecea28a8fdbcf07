/* Cache benchmarks: miss ratios against libCacheSim's published figures (CloudPhysics trace),
 * a Zipf workload, hit latency (one and two threads) and metadata per entry.
 * Prints `BENCH <name> <value> <unit>` lines; timings are medians of several runs.
 *
 *   build/bench/bench_cache            all of it
 *   build/bench/bench_cache trace      only the trace replay (PERFOPT_TRACE=path overrides the
 * file)
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache_internal.h"
#include "perfopt.h"

#include <sys/mman.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* ---- replay -------------------------------------------------------------------------------- */

typedef struct {
  uint64_t id;
  uint32_t size;
} req;

/* Request replay as libCacheSim does it: a hit updates the policy; a miss inserts the object
 * (evicting until it fits); objects larger than the cache are not inserted. */
static double replay(const req *r, size_t n, uint64_t budget, po_cache_policy policy) {
  po_cache *c;
  if (po_cache_create(budget, policy, &c)) return -1;
  size_t misses = 0;
  for (size_t i = 0; i < n; i++) {
    void *v;
    if (po_cache_get(c, &r[i].id, sizeof(r[i].id), &v) == 0) continue;
    misses++;
    po_cache_put(c, &r[i].id, sizeof(r[i].id), NULL, r[i].size, NULL);
  }
  po_cache_destroy(c);
  return (double)misses / (double)n;
}

/* ---- the CloudPhysics trace (libCacheSim oracleGeneral: 24-byte little-endian records) ---- */

static req *load_trace(const char *path, size_t *n_out, uint64_t *footprint) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (len <= 0 || len % 24) {
    fclose(f);
    return NULL;
  }
  size_t n = (size_t)len / 24;
  unsigned char *buf = malloc((size_t)len);
  req *r = malloc(n * sizeof(*r));
  if (!buf || !r || fread(buf, 1, (size_t)len, f) != (size_t)len) {
    free(buf);
    free(r);
    fclose(f);
    return NULL;
  }
  fclose(f);
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = buf + i * 24;
    uint64_t id = 0;
    uint32_t size = 0;
    for (int b = 7; b >= 0; b--) id = id << 8 | p[4 + b];
    for (int b = 3; b >= 0; b--) size = size << 8 | p[12 + b];
    r[i].id = id;
    r[i].size = size;
  }
  free(buf);
  /* footprint: sum of sizes of unique objects (first size seen), via a cache that never evicts */
  po_cache *seen;
  uint64_t fp = 0;
  if (po_cache_create(UINT64_C(1) << 39, PO_CACHE_SIEVE, &seen) == 0) {
    for (size_t i = 0; i < n; i++) {
      void *v;
      if (po_cache_get(seen, &r[i].id, 8, &v) == 0) continue;
      po_cache_put(seen, &r[i].id, 8, NULL, 1, NULL);
      fp += r[i].size;
    }
    po_cache_destroy(seen);
  }
  *footprint = fp;
  *n_out = n;
  return r;
}

static void bench_trace(void) {
  const char *path = getenv("PERFOPT_TRACE");
  if (!path) path = "bench/data/cloudphysics-io.oracleGeneral.bin";
  size_t n;
  uint64_t fp;
  req *r = load_trace(path, &n, &fp);
  if (!r) {
    printf("# cannot read trace %s: skipping the miss-ratio table\n", path);
    return;
  }
  static const int pct[4] = {1, 5, 10, 20};
  static const po_cache_policy pol[3] = {PO_CACHE_SIEVE, PO_CACHE_LRU, PO_CACHE_S3FIFO};
  /* libCacheSim miss ratios for this trace (../shared/data/README.md) */
  static const double ref[3][4] = {{0.8231, 0.8108, 0.7903, 0.6877},
                                   {0.8339, 0.8229, 0.8097, 0.7333},
                                   {0.8229, 0.8031, 0.7356, 0.6755}};
  printf("# CloudPhysics trace: %zu requests, footprint %llu bytes\n", n, (unsigned long long)fp);
  printf("# %-7s %5s %10s %10s %8s\n", "policy", "size", "perfopt", "libCacheSim", "diff");
  for (int p = 0; p < 3; p++) {
    for (int s = 0; s < 4; s++) {
      uint64_t budget = (uint64_t)((double)fp * pct[s] / 100.0);
      double mr = replay(r, n, budget, pol[p]);
      printf("# %-7s %4d%% %10.4f %10.4f %+8.4f\n", po_cache_policy_name(pol[p]), pct[s], mr,
             ref[p][s], mr - ref[p][s]);
      printf("BENCH cache_cloudphysics_miss_ratio_%s_%d %.4f ratio\n", po_cache_policy_name(pol[p]),
             pct[s], mr);
    }
  }
  free(r);
}

/* ---- Zipf ---------------------------------------------------------------------------------- */

/* Zipf(alpha = 1) over n ranks by inverse CDF (binary search). */
static double *zipf_cdf(size_t n) {
  double *cdf = malloc(n * sizeof(double));
  if (!cdf) return NULL;
  double sum = 0;
  for (size_t i = 0; i < n; i++) cdf[i] = (sum += 1.0 / (double)(i + 1));
  for (size_t i = 0; i < n; i++) cdf[i] /= sum;
  return cdf;
}
static size_t zipf_draw(const double *cdf, size_t n) {
  double u = (double)(rnd() >> 11) * 0x1.0p-53;
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void bench_zipf_miss(void) {
  const size_t nobj = 1000000, nreq = 2000000;
  double *cdf = zipf_cdf(nobj);
  req *r = malloc(nreq * sizeof(*r));
  uint32_t *size = malloc(nobj * sizeof(uint32_t));
  if (!cdf || !r || !size) return;
  rng = 42;
  uint64_t fp = 0;
  for (size_t i = 0; i < nobj; i++) fp += size[i] = (uint32_t)(1024 + rnd() % (64 * 1024 + 1));
  for (size_t i = 0; i < nreq; i++) {
    size_t k = zipf_draw(cdf, nobj);
    r[i].id = k * 0x9e3779b97f4a7c15ULL; /* rank -> scattered id */
    r[i].size = size[k];
  }
  uint64_t budget = fp / 100;
  double sieve = replay(r, nreq, budget, PO_CACHE_SIEVE);
  double lru = replay(r, nreq, budget, PO_CACHE_LRU);
  double s3 = replay(r, nreq, budget, PO_CACHE_S3FIFO);
  printf("# Zipf alpha=1, 1M objects of 1-65 KiB, 2M requests, budget 1%% of %llu bytes\n",
         (unsigned long long)fp);
  printf("BENCH cache_zipf_miss_ratio_sieve_1pct %.4f ratio\n", sieve);
  printf("BENCH cache_zipf_miss_ratio_lru_1pct %.4f ratio\n", lru);
  printf("BENCH cache_zipf_miss_ratio_s3fifo_1pct %.4f ratio\n", s3);
  free(cdf);
  free(r);
  free(size);
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * 4096;
}

/* ---- hit latency --------------------------------------------------------------------------- */

#define NKEYS (1u << 22)
typedef struct {
  po_cache *c;
  const uint64_t *keys;
  size_t n;
  pthread_barrier_t *bar;
  double seconds, cpu_seconds;
  uint64_t sink;
} hit_arg;

static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *hit_loop(void *p) {
  hit_arg *a = p;
  if (a->bar) pthread_barrier_wait(a->bar);
  double t0 = now_s(), c0 = thread_cpu_s();
  uint64_t sink = 0;
  for (size_t i = 0; i < a->n; i++) {
    void *v;
    if (po_cache_get(a->c, &a->keys[i], sizeof(uint64_t), &v) == 0) sink += (uintptr_t)v;
  }
  a->seconds = now_s() - t0;
  a->cpu_seconds = thread_cpu_s() - c0;
  a->sink = sink;
  return NULL;
}

static double time_hits(po_cache *c, const uint64_t *keys, size_t n) {
  hit_arg a = {c, keys, n, NULL, 0, 0, 0};
  hit_loop(&a);
  return a.seconds * 1e9 / (double)n;
}

/* ---- the floor: a bare open-addressing table -------------------------------------------- */

/* The same keys in a table with as many slots as the cache's, each slot holding the key and the
 * value inline (one probe, no entry to follow), the cache's hash and home slot, linear probing,
 * 2 MiB pages advised as the cache does, called like po_cache_get (a function that is not
 * inlined, key by pointer, value through a pointer): what a lookup costs at the least on this
 * machine, with these keys, at this size. */
typedef struct bare_slot {
  uint64_t key; /* key + 1; 0 = empty */
  void *value;
} bare_slot;

typedef struct bare_table {
  bare_slot *slots;
  size_t cap;
} bare_table;

static size_t bare_home(const bare_table *t, uint64_t h) {
  return (size_t)(((h & 0xffffffffULL) * t->cap) >> 32);
}

static int bare_create(bare_table *t, size_t cap) {
  size_t bytes = (cap * sizeof(bare_slot) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
  void *p = aligned_alloc(2u << 20, bytes);
  if (!p) return -1;
  madvise(p, bytes, MADV_HUGEPAGE);
  memset(p, 0, bytes);
  t->slots = p;
  t->cap = cap;
  return 0;
}

static void bare_put(bare_table *t, uint64_t key, void *value) {
  size_t i = bare_home(t, po__cache_hash8(key));
  while (t->slots[i].key && t->slots[i].key != key + 1) i = i + 1 == t->cap ? 0 : i + 1;
  t->slots[i] = (bare_slot){key + 1, value};
}

static __attribute__((noinline)) int bare_get(const bare_table *t, const void *key, size_t keylen,
                                              void **value) {
  uint64_t k;
  if (keylen != sizeof k) return PO_EINVAL;
  memcpy(&k, key, sizeof k);
  size_t i = bare_home(t, po__cache_hash8(k));
  for (;;) {
    const bare_slot *s = &t->slots[i];
    if (s->key == k + 1) {
      *value = s->value;
      return 0;
    }
    if (!s->key) return PO_ENOENT;
    i = i + 1 == t->cap ? 0 : i + 1;
  }
}

/* The second floor: the cache's own layout without the cache. Slots of 8 bytes (a 16-bit tag and
 * a 48-bit pointer, as many as the cache's) pointing at 48-byte records laid out in insertion
 * order like the cache's slab entries, the key in the record; the same call shape. The gap
 * between the two floors is what following a pointer to the entry costs (a second cache line
 * per lookup); the gap between this one and po_cache_get is the cache's own code (epoch
 * announcement, statistics, policy bit, checks). */
typedef struct indirect_rec {
  unsigned char header[32]; /* the cache entry's links, size and flags */
  uint64_t key;
  void *value;
} indirect_rec;

typedef struct indirect_table {
  uint64_t *slots; /* tag << 48 | record address; 0 = empty */
  indirect_rec *recs;
  size_t cap;
} indirect_table;

#define PTR_MASK ((UINT64_C(1) << 48) - 1)

static int indirect_create(indirect_table *t, size_t cap, size_t n) {
  size_t sbytes = (cap * 8 + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
  size_t rbytes = (n * sizeof(indirect_rec) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
  t->slots = aligned_alloc(2u << 20, sbytes);
  t->recs = aligned_alloc(2u << 20, rbytes);
  if (!t->slots || !t->recs) return -1;
  madvise(t->slots, sbytes, MADV_HUGEPAGE);
  madvise(t->recs, rbytes, MADV_HUGEPAGE);
  memset(t->slots, 0, sbytes);
  memset(t->recs, 0, rbytes);
  t->cap = cap;
  return 0;
}

static void indirect_put(indirect_table *t, size_t at, uint64_t key, void *value) {
  uint64_t h = po__cache_hash8(key);
  indirect_rec *r = &t->recs[at];
  r->key = key;
  r->value = value;
  size_t i = (size_t)(((h & 0xffffffffULL) * t->cap) >> 32);
  while (t->slots[i]) i = i + 1 == t->cap ? 0 : i + 1;
  t->slots[i] = (h & ~PTR_MASK) | (uint64_t)(uintptr_t)r;
}

static __attribute__((noinline)) int indirect_get(const indirect_table *t, const void *key,
                                                  size_t keylen, void **value) {
  uint64_t k;
  if (keylen != sizeof k) return PO_EINVAL;
  memcpy(&k, key, sizeof k);
  uint64_t h = po__cache_hash8(k);
  size_t i = (size_t)(((h & 0xffffffffULL) * t->cap) >> 32);
  for (;;) {
    uint64_t s = t->slots[i];
    if (!s) return PO_ENOENT;
    if ((s & ~PTR_MASK) == (h & ~PTR_MASK)) {
      const indirect_rec *r = (const indirect_rec *)(uintptr_t)(s & PTR_MASK);
      if (r->key == k) {
        *value = r->value;
        return 0;
      }
    }
    i = i + 1 == t->cap ? 0 : i + 1;
  }
}

static double time_indirect(const indirect_table *t, const uint64_t *keys, size_t n) {
  double t0 = now_s();
  uint64_t sink = 0;
  for (size_t i = 0; i < n; i++) {
    void *v;
    if (indirect_get(t, &keys[i], sizeof keys[i], &v) == 0) sink += (uintptr_t)v;
  }
  double s = now_s() - t0;
  __asm__ volatile("" : : "r"(sink) : "memory");
  return s * 1e9 / (double)n;
}

static double time_bare(const bare_table *t, const uint64_t *keys, size_t n) {
  double t0 = now_s();
  uint64_t sink = 0;
  for (size_t i = 0; i < n; i++) {
    void *v;
    if (bare_get(t, &keys[i], sizeof keys[i], &v) == 0) sink += (uintptr_t)v;
  }
  double s = now_s() - t0;
  __asm__ volatile("" : : "r"(sink) : "memory");
  return s * 1e9 / (double)n;
}

/* Two threads, each doing n gets. Wall speedup = 2 * (one-thread time) / (two-thread wall);
 * the CPU speedup uses each thread's CPU time instead, so preemption by other processes on a
 * shared machine does not count, while contention between the two threads still does. */
static void two_thread_speedup(po_cache *c, const uint64_t *keys, size_t n, double *wall_sp,
                               double *cpu_sp) {
  hit_arg one = {c, keys, n, NULL, 0, 0, 0};
  hit_loop(&one);
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, 2);
  hit_arg a[2] = {{c, keys, n, &bar, 0, 0, 0}, {c, keys + (NKEYS - n), n, &bar, 0, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, hit_loop, &a[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&bar);
  double wall = a[0].seconds > a[1].seconds ? a[0].seconds : a[1].seconds;
  double cpu = a[0].cpu_seconds > a[1].cpu_seconds ? a[0].cpu_seconds : a[1].cpu_seconds;
  *wall_sp = 2.0 * one.seconds / wall;
  *cpu_sp = 2.0 * one.cpu_seconds / cpu;
}

static void bench_hits(void) {
  const size_t nent = 1000000;
  po_cache *c;
  if (po_cache_create(UINT64_C(1) << 40, PO_CACHE_SIEVE, &c)) return;
  struct mallinfo2 m0 = mallinfo2();
  long rss0 = rss_bytes();
  for (uint64_t k = 0; k < nent; k++)
    po_cache_put(c, &k, sizeof(k), (void *)(uintptr_t)(k + 1), 64, NULL);
  struct mallinfo2 m1 = mallinfo2();
  long rss1 = rss_bytes();
  po_cache_stats st;
  po_cache_get_stats(c, &st);
  double own = (double)st.metadata_bytes / (double)nent;
  printf(
      "# metadata, 1M entries with 8-byte keys: %.1f bytes/entry by the cache's accounting"
      " (entries, slabs, table), %.1f by RSS growth; malloc heap alone (mallinfo2): %.1f\n",
      own, (double)(rss1 - rss0) / (double)nent,
      (double)((m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd)) / (double)nent);
  printf("BENCH cache_metadata_bytes_per_entry %.1f bytes\n", own);

  uint64_t *zk = malloc(NKEYS * sizeof(uint64_t));
  uint64_t *uk = malloc(NKEYS * sizeof(uint64_t));
  double *cdf = zipf_cdf(nent);
  if (!zk || !uk || !cdf) return;
  rng = 7;
  for (size_t i = 0; i < NKEYS; i++) zk[i] = zipf_draw(cdf, nent);
  for (size_t i = 0; i < NKEYS; i++) uk[i] = rnd() % nent;
  bare_table bare;
  indirect_table ind;
  if (bare_create(&bare, c->table->cap) != 0 || indirect_create(&ind, c->table->cap, nent) != 0)
    return;
  for (uint64_t k = 0; k < nent; k++) {
    bare_put(&bare, k, (void *)(uintptr_t)(k + 1));
    indirect_put(&ind, (size_t)k, k, (void *)(uintptr_t)(k + 1));
  }
  const int runs = 5;
  const size_t n = NKEYS / 2;
  double z[5], u[5], sp[5], cs[5], fz[5], fu[5], rz[5], iz[5], riz[5];
  time_hits(c, zk, n); /* warm-up */
  time_bare(&bare, zk, n);
  time_indirect(&ind, zk, n);
  /* The cache and the floors alternate, so that all see the same moments of a shared machine. */
  for (int i = 0; i < runs; i++) {
    z[i] = time_hits(c, zk, n);
    fz[i] = time_bare(&bare, zk, n);
    iz[i] = time_indirect(&ind, zk, n);
    rz[i] = z[i] / fz[i];
    riz[i] = z[i] / iz[i];
  }
  for (int i = 0; i < runs; i++) {
    u[i] = time_hits(c, uk, n);
    fu[i] = time_bare(&bare, uk, n);
  }
  for (int i = 0; i < runs; i++) two_thread_speedup(c, zk, n, &sp[i], &cs[i]);
  printf(
      "# hit latency: warm SIEVE cache of 1M entries, median of %d runs of %zu gets"
      " (2 shared cores: expect noise)\n",
      runs, n);
  printf(
      "# floors: the same keys in a bare open-addressing table of %zu slots (key and value"
      " inline), and in the cache's layout without the cache (slots point at entries)\n",
      bare.cap);
  printf("BENCH cache_get_hit_ns %.1f ns\n", median(z, runs));
  printf("BENCH cache_hash_probe_floor_ns %.1f ns\n", median(fz, runs));
  printf("BENCH cache_get_hit_over_floor_ratio %.2f ratio\n", median(rz, runs));
  printf("BENCH cache_entry_probe_floor_ns %.1f ns\n", median(iz, runs));
  printf("BENCH cache_get_hit_over_entry_floor_ratio %.2f ratio\n", median(riz, runs));
  printf("BENCH cache_get_hit_uniform_ns %.1f ns\n", median(u, runs));
  printf("BENCH cache_hash_probe_floor_uniform_ns %.1f ns\n", median(fu, runs));
  printf("BENCH cache_get_hit_2threads_speedup %.2f x\n", median(sp, runs));
  printf("BENCH cache_get_hit_2threads_cpu_speedup %.2f x\n", median(cs, runs));
  free(zk);
  free(uk);
  free(cdf);
  free(bare.slots);
  free(ind.slots);
  free(ind.recs);
  po_cache_destroy(c);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : "";
  if (!*only || !strcmp(only, "trace")) bench_trace();
  if (!*only || !strcmp(only, "zipf")) bench_zipf_miss();
  if (!*only || !strcmp(only, "hits")) bench_hits();
  return 0;
}
