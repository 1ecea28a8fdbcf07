/* libperfopt-heap: the allocation hooks. Loaded with LD_PRELOAD, it interposes the malloc family
 * and forwards to glibc's __libc_* entry points (no dlsym: they exist before any initialization,
 * so the very first allocation of the process, made before constructors run, works).
 *
 * Every block carries a 16-byte header in front of the user pointer:
 *   info = requested size (44 bits) | site index + 1 (20 bits, 0 = none)
 *   tag  = (user ^ cookie) with the low 4 bits as flags (UNTRACKED, ALIGNED)
 * so free() knows the exact requested size and site of what it releases without a table. A pointer
 * whose tag does not match was not allocated here (memory from before interposition, from
 * __libc_malloc called directly): it goes straight to glibc and is counted as foreign.
 * Aligned blocks keep glibc's base pointer in the word below the header.
 *
 * Hot path (malloc/free when the thread is attached, exact mode): one TLS flag test, glibc's call,
 * the header, per-thread counters written with plain stores, one atomic add to the process's live
 * bytes and a compare with its peak. No lock, no system call, no allocation.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

#define API __attribute__((visibility("default")))
#define HDR 16u
#define F_UNTRACKED 1ull
#define F_ALIGNED 2ull
#define SIZE_MASK PO_HEAP_SIZE_MAX

typedef struct hdr {
  uint64_t info;
  uint64_t tag;
} hdr;

__thread shim_thread shim_ts __attribute__((tls_model("initial-exec")));
shim_global shim_g;

static inline unsigned bucket_of(uint64_t n) {
  unsigned b = n ? 64u - (unsigned)__builtin_clzll(n) : 0u;
  return b < PO_HEAP_HIST_BUCKETS ? b : PO_HEAP_HIST_BUCKETS - 1;
}

static inline uint64_t tag_of(const void *user, uint64_t flags) {
  return (((uintptr_t)user ^ shim_g.cookie) & ~15ull) | flags;
}

static inline void *put_header(void *user, uint64_t n, uint32_t site, uint64_t flags) {
  hdr *h = (hdr *)user - 1;
  h->info = n | ((uint64_t)site << PO_HEAP_SIZE_BITS);
  h->tag = tag_of(user, flags);
  return user;
}

/* ---- accounting ------------------------------------------------------------------------- */

#define INLINE static inline __attribute__((always_inline))

static __attribute__((noinline)) void new_peak(po_heap_proc *p, int64_t live) {
  int64_t cur = LOAD(&p->peak_bytes);
  while (live > cur) {
    if (__atomic_compare_exchange_n(&p->peak_bytes, &cur, live, 1, RELAXED, RELAXED)) {
      STORE(&p->peak_ns, shim_now_ns());
      /* After the change that made the peak: see po_heap_site.epoch. */
      __atomic_fetch_add(&p->peak_epoch, 1, __ATOMIC_RELEASE);
      return;
    }
  }
}

/* Counters of this thread: its own slot (plain stores) or the shared one (atomic). NULL when the
 * process is not attached. */
static po_heap_thread *counters(shim_thread *t, int *atomic) {
  if (shim_g.state != 2) return NULL;
  if (!t->slot && !t->in_hook && !t->exiting) shim_thread_claim();
  *atomic = !t->slot || t->shared;
  return t->slot && !t->shared ? t->slot : &shim_g.proc->shared;
}

INLINE void count_alloc(po_heap_thread *s, int atomic, uint64_t n) {
  unsigned b = bucket_of(n);
  if (SHIM_LIKELY(!atomic)) {
    OWNED_ADD(&s->alloc_count, 1);
    OWNED_ADD(&s->alloc_bytes, n);
    OWNED_ADD(&s->hist[b], 1);
  } else {
    SHARED_ADD(&s->alloc_count, 1);
    SHARED_ADD(&s->alloc_bytes, n);
    SHARED_ADD(&s->hist[b], 1);
  }
  po_heap_proc *p = shim_g.proc;
  int64_t live = __atomic_add_fetch(&p->live_bytes, (int64_t)n, RELAXED);
  if (SHIM_UNLIKELY(live > LOAD(&p->peak_bytes))) new_peak(p, live);
}

INLINE void count_free(po_heap_thread *s, int atomic, uint64_t n) {
  if (SHIM_LIKELY(!atomic)) {
    OWNED_ADD(&s->free_count, 1);
    OWNED_ADD(&s->free_bytes, n);
  } else {
    SHARED_ADD(&s->free_count, 1);
    SHARED_ADD(&s->free_bytes, n);
  }
  SHARED_ADD(&shim_g.proc->live_bytes, -(int64_t)n);
}

/* The site of a new block of n bytes, recorded (full mode: always; sampled: on a sample), or 0.
 * Exact mode never calls it. */
static __attribute__((noinline)) uint32_t site_for_alloc(shim_thread *t, uint64_t n) {
  int mode = shim_g.mode;
  uint64_t bytes = n, count = 1;
  if (mode == PO_HEAP_MODE_SAMPLED) {
    t->until_sample -= (int64_t)n;
    if (SHIM_LIKELY(t->until_sample > 0)) return 0;
    t->until_sample = shim_sample_draw();
    bytes = shim_sample_weight(n);
    count = n ? (bytes + n / 2) / n : 1;
    SHARED_ADD(&shim_g.proc->sampled_allocs, 1);
  }
  int was_fast = t->fast;
  t->fast = 0;
  t->in_hook++;
  uint32_t site = shim_site_for_stack();
  if (site) shim_site_alloc(site, (int64_t)bytes, (int64_t)count);
  t->in_hook--;
  t->fast = was_fast;
  return site;
}

static void site_release(uint32_t site, uint64_t n) {
  if (shim_g.mode == PO_HEAP_MODE_SAMPLED) {
    uint64_t w = shim_sample_weight(n);
    shim_site_free(site, (int64_t)w, (int64_t)(n ? (w + n / 2) / n : 1));
  } else {
    shim_site_free(site, (int64_t)n, 1);
  }
}

/* track() when the thread is not on the hot path: not attached yet, inside the tracker, without
 * a slot of its own, or in a process that passes through. */
static __attribute__((noinline)) void *track_slow(void *user, uint64_t n, uint64_t flags) {
  shim_thread *t = &shim_ts;
  if (shim_g.state < 2) shim_start();
  int atomic = 1;
  po_heap_thread *s = t->in_hook ? NULL : counters(t, &atomic);
  if (!s) {
    if (shim_g.state == 2) SHARED_ADD(&shim_g.proc->untracked_allocs, 1);
    return put_header(user, n, 0, flags | F_UNTRACKED);
  }
  uint32_t site = shim_g.mode == PO_HEAP_MODE_EXACT ? 0 : site_for_alloc(t, n);
  put_header(user, n, site, flags);
  count_alloc(s, atomic, n);
  return user;
}

/* Accounts a new block and writes its header. `user` is 16-aligned and has HDR bytes below. */
INLINE void *track(void *user, uint64_t n, uint64_t flags) {
  shim_thread *t = &shim_ts;
  if (SHIM_LIKELY(t->fast)) {
    uint32_t site = shim_g.mode == PO_HEAP_MODE_EXACT ? 0 : site_for_alloc(t, n);
    put_header(user, n, site, flags);
    count_alloc(t->slot, 0, n);
    return user;
  }
  return track_slow(user, n, flags);
}

/* Reads a block's header; returns 0 for a block this shim did not allocate. */
INLINE int read_header(void *user, uint64_t *n, uint32_t *site, uint64_t *flags) {
  const hdr *h = (const hdr *)user - 1;
  uint64_t tag = h->tag;
  if ((tag & ~15ull) != tag_of(user, 0)) return 0;
  *n = h->info & SIZE_MASK;
  *site = (uint32_t)(h->info >> PO_HEAP_SIZE_BITS);
  *flags = tag & 15ull;
  return 1;
}

static inline void *base_of(void *user, uint64_t flags) {
  return (flags & F_ALIGNED) ? ((void **)user)[-3] : (void *)((hdr *)user - 1);
}

static __attribute__((noinline)) void untrack_slow(uint64_t n) {
  int atomic = 1;
  po_heap_thread *s = counters(&shim_ts, &atomic);
  if (s) count_free(s, atomic, n);
}

/* Accounts the release of a tracked block (its header already read). */
INLINE void untrack(uint64_t n, uint32_t site, uint64_t flags) {
  if (flags & F_UNTRACKED) return;
  shim_thread *t = &shim_ts;
  if (site && shim_g.state == 2) site_release(site, n);
  if (SHIM_LIKELY(t->fast)) {
    count_free(t->slot, 0, n);
    return;
  }
  untrack_slow(n);
}

static void count_foreign(void) {
  if (shim_g.state == 2) SHARED_ADD(&shim_g.proc->foreign_frees, 1);
}

static void *refuse_too_large(void) {
  if (shim_g.state == 2) SHARED_ADD(&shim_g.proc->too_large, 1);
  errno = ENOMEM;
  return NULL;
}

/* ---- the malloc family ------------------------------------------------------------------ */

API void *malloc(size_t n) {
  if (SHIM_UNLIKELY(n > SIZE_MASK)) return refuse_too_large();
  char *b = __libc_malloc(n + HDR);
  return b ? track(b + HDR, n, 0) : NULL;
}

API void free(void *p) {
  if (!p) return;
  uint64_t n, flags;
  uint32_t site;
  if (SHIM_UNLIKELY(!read_header(p, &n, &site, &flags))) {
    count_foreign();
    __libc_free(p);
    return;
  }
  ((hdr *)p - 1)->tag = 0; /* a second free of the block is then foreign: glibc reports it */
  untrack(n, site, flags);
  __libc_free(base_of(p, flags));
}

API void *calloc(size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  if (n > SIZE_MASK) return refuse_too_large();
  char *b = __libc_calloc(1, n + HDR);
  return b ? track(b + HDR, n, 0) : NULL;
}

/* Allocates n bytes aligned to `align` (a power of two). */
static void *aligned_block(size_t align, size_t n) {
  if (align <= HDR) return malloc(n);
  if (n > SIZE_MASK || align > SIZE_MASK) return refuse_too_large();
  char *b = __libc_memalign(align, n + align);
  if (!b) return NULL;
  char *user = b + align; /* aligned, with at least 32 bytes below for the header and base */
  ((void **)user)[-3] = b;
  return track(user, n, F_ALIGNED);
}

API void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  if (n == 0) {
    free(p);
    return NULL;
  }
  uint64_t old, flags;
  uint32_t site;
  if (!read_header(p, &old, &site, &flags)) {
    count_foreign();
    return __libc_realloc(p, n); /* stays foreign */
  }
  if (n > SIZE_MASK) return refuse_too_large();
  if (flags & F_ALIGNED) { /* glibc's realloc would not keep the offset: copy */
    void *q = malloc(n);
    if (!q) return NULL;
    memcpy(q, p, old < n ? old : n);
    free(p);
    return q;
  }
  char *b = __libc_realloc((hdr *)p - 1, n + HDR);
  if (!b) return NULL; /* the old block is intact and still accounted */
  untrack(old, site, flags);
  return track(b + HDR, n, 0);
}

API void *reallocarray(void *p, size_t count, size_t size) {
  size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return NULL;
  }
  return realloc(p, n);
}

static int is_pow2(size_t a) {
  return a && !(a & (a - 1));
}

API int posix_memalign(void **out, size_t align, size_t n) {
  if (!is_pow2(align) || align % sizeof(void *)) return EINVAL;
  int saved = errno;
  void *p = aligned_block(align, n);
  if (!p) {
    int e = errno;
    errno = saved;
    return e ? e : ENOMEM;
  }
  *out = p;
  return 0;
}

API void *aligned_alloc(size_t align, size_t n) {
  if (!is_pow2(align)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned_block(align, n);
}

/* glibc's memalign rounds an alignment that is not a power of two up to one. */
API void *memalign(size_t align, size_t n) {
  if (align > ((size_t)1 << 62)) {
    errno = EINVAL;
    return NULL;
  }
  size_t a = align < HDR ? HDR : align;
  if (!is_pow2(a)) a = (size_t)1 << (64 - __builtin_clzll(a));
  return aligned_block(a, n);
}

static size_t page_size(void) {
  static size_t ps;
  if (!ps) ps = (size_t)sysconf(_SC_PAGESIZE);
  return ps;
}

API void *valloc(size_t n) {
  return aligned_block(page_size(), n);
}

API void *pvalloc(size_t n) {
  size_t ps = page_size(), r;
  if (__builtin_add_overflow(n, ps - 1, &r)) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned_block(ps, (r & ~(ps - 1)) ? (r & ~(ps - 1)) : ps);
}

/* The requested size is what the caller may use (glibc's contract: at least the request). */
API size_t malloc_usable_size(void *p) {
  if (!p) return 0;
  uint64_t n, flags;
  uint32_t site;
  if (read_header(p, &n, &site, &flags)) return (size_t)n;
  return shim_g.real_usable_size ? shim_g.real_usable_size(p) : 0;
}

/* ---- mmap family: counted apart (large buffers, pinned host memory) ---------------------- */

static void count_map(int64_t bytes, int is_map) {
  if (shim_g.state != 2 || shim_ts.in_hook) return;
  po_heap_proc *p = shim_g.proc;
  if (is_map > 0) {
    SHARED_ADD(&p->mmap_count, 1);
    SHARED_ADD(&p->mmap_bytes, (uint64_t)bytes);
  } else if (is_map < 0) {
    SHARED_ADD(&p->munmap_count, 1);
    SHARED_ADD(&p->munmap_bytes, (uint64_t)-bytes);
  }
  int64_t live = __atomic_add_fetch(&p->mmap_live_bytes, bytes, RELAXED);
  int64_t cur = LOAD(&p->mmap_peak_bytes);
  while (live > cur &&
         !__atomic_compare_exchange_n(&p->mmap_peak_bytes, &cur, live, 1, RELAXED, RELAXED)) {
  }
}

/* System calls directly: glibc's mmap is a thin wrapper, and the shim must not depend on symbol
 * lookup order (another preloaded library may interpose mmap too; it still sees its callers). */
API void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  if (r == -1) return MAP_FAILED;
  count_map((int64_t)len, 1);
  return (void *)r;
}

API void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return mmap(addr, len, prot, flags, fd, off);
}

API int munmap(void *addr, size_t len) {
  long r = syscall(SYS_munmap, addr, len);
  if (r == 0) count_map(-(int64_t)len, -1);
  return (int)r;
}

API void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
  void *target = NULL;
  if (flags & MREMAP_FIXED) {
    __builtin_va_list ap;
    __builtin_va_start(ap, flags);
    target = __builtin_va_arg(ap, void *);
    __builtin_va_end(ap);
  }
  long r = syscall(SYS_mremap, old, old_len, new_len, flags, target);
  if (r == -1) return MAP_FAILED;
  count_map((int64_t)new_len - (int64_t)old_len, 0);
  return (void *)r;
}
