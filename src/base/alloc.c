/* The test build's allocation door (see base/alloc.h). Compiled into the shipped library as an
 * empty file. */
#include "base/alloc.h"

#ifdef PERFOPT_TESTING
#include <stdatomic.h>

static _Atomic uint64_t countdown; /* 0: disarmed */
static _Atomic int persist_fail;
static _Atomic uint64_t seen, injected;

void po__fault_fail_at(uint64_t n, int persist) {
  atomic_store(&seen, 0);
  atomic_store(&injected, 0);
  atomic_store(&persist_fail, persist);
  atomic_store(&countdown, n);
}

uint64_t po__fault_count(void) {
  return atomic_load(&seen);
}

uint64_t po__fault_injected(void) {
  return atomic_load(&injected);
}

/* 1 when this allocation must fail. */
static int fail_now(void) {
  atomic_fetch_add(&seen, 1);
  uint64_t c = atomic_load(&countdown);
  while (c > 1)
    if (atomic_compare_exchange_weak(&countdown, &c, c - 1)) return 0;
  if (c == 0) return 0;
  if (!atomic_load(&persist_fail)) atomic_store(&countdown, 0);
  atomic_fetch_add(&injected, 1);
  return 1;
}

void *po__test_malloc(size_t n) {
  return fail_now() ? NULL : malloc(n);
}

void *po__test_calloc(size_t n, size_t size) {
  return fail_now() ? NULL : calloc(n, size);
}

void *po__test_realloc(void *p, size_t n) {
  return fail_now() ? NULL : realloc(p, n);
}

char *po__test_strdup(const char *s) {
  return fail_now() ? NULL : strdup(s);
}

void *po__test_aligned_alloc(size_t align, size_t n) {
  return fail_now() ? NULL : aligned_alloc(align, n);
}

int po__test_fault_point(void) {
  return fail_now();
}
#else
typedef int po__alloc_unused; /* ISO C forbids an empty translation unit */
#endif
