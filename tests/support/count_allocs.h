/* Counts the allocations one thread makes, by replacing malloc and friends in the program that
 * includes this header (in exactly one file): every library in the process then calls these,
 * libc's own internals (opendir, fopen, strdup) included, and they forward to glibc's __libc_*
 * entry points. Not for sanitizer builds, which own malloc (COUNT_ALLOCS is 0 there: nothing is
 * replaced and nothing is counted). */
#ifndef PO_TEST_COUNT_ALLOCS_H
#define PO_TEST_COUNT_ALLOCS_H

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#ifndef COUNT_ALLOCS
#define COUNT_ALLOCS 1
#endif

static _Atomic pid_t count_allocs_tid; /* 0: count nothing */
static _Atomic uint64_t count_allocs_n;

/* Starts counting the allocations of thread `tid` (from zero). */
static inline void count_allocs_watch(pid_t tid) {
  atomic_store(&count_allocs_n, 0);
  atomic_store(&count_allocs_tid, tid);
}

/* Stops counting; returns the count. */
static inline uint64_t count_allocs_unwatch(void) {
  atomic_store(&count_allocs_tid, 0);
  return atomic_load(&count_allocs_n);
}

#if COUNT_ALLOCS
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static __thread pid_t count_allocs_self;

static inline void count_allocs_note(void) {
  pid_t w = atomic_load_explicit(&count_allocs_tid, memory_order_relaxed);
  if (!w) return;
  if (!count_allocs_self) count_allocs_self = gettid();
  if (count_allocs_self == w) atomic_fetch_add(&count_allocs_n, 1);
}

void *malloc(size_t n) {
  count_allocs_note();
  return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
  count_allocs_note();
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
  count_allocs_note();
  return __libc_realloc(p, n);
}
void free(void *p) {
  __libc_free(p);
}
void *memalign(size_t align, size_t n) {
  count_allocs_note();
  return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
  count_allocs_note();
  return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
  count_allocs_note();
  void *p = __libc_memalign(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
#endif

#endif
