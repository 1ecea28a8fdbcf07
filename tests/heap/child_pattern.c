/* A child with a known allocation pattern for tests/test_heap.c (run under libperfopt-heap).
 *
 * Leaks, by site: early_ctor_alloc 777 bytes (in a constructor, before main), leak_a 3 x 1000,
 * leak_b 10 x 50 (calloc), leak_aligned 700 (posix_memalign 256). Peak: the leaks above plus
 * 8 x 1 MiB from big_alloc, all live at once in peak_phase and then freed. No stdio (its buffers
 * would add allocations); readiness is one byte written to fd 1.
 *
 * usage: child_pattern [exit|segv|kill|handler_exit|handler__exit]   (default exit)
 * Exits 10+ when an allocation variant broke its contract (alignment, contents, usable size).
 */
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *volatile early_block; /* volatile: an unused block may be optimized away */
static void *volatile kept[8];

NOINLINE static void early_ctor_alloc(void) {
  early_block = malloc(777);
}
__attribute__((constructor)) static void before_main(void) {
  early_ctor_alloc();
}

NOINLINE static void *leak_a(void) {
  return malloc(1000);
}
NOINLINE static void *leak_b(void) {
  return calloc(10, 50);
}
NOINLINE static void *leak_aligned(void) {
  void *p = NULL;
  return posix_memalign(&p, 256, 700) == 0 ? p : NULL;
}
NOINLINE static void *big_alloc(void) {
  return malloc(1u << 20);
}

NOINLINE static void peak_phase(void) {
  void *b[8];
  for (int i = 0; i < 8; i++) {
    b[i] = big_alloc();
    memset(b[i], i, 4096);
  }
  for (int i = 0; i < 8; i++) free(b[i]);
}

/* An allocation inside a callback that libc's qsort (built without frame pointers) calls: the
 * stack must still reach sort_with_callback and main. */
static int compare_and_allocate(const void *a, const void *b) {
  void *volatile p = malloc(33);
  free(p);
  return *(const int *)a - *(const int *)b;
}

NOINLINE static void sort_with_callback(void) {
  int v[4] = {3, 1, 2, 0};
  qsort(v, 4, sizeof v[0], compare_and_allocate);
}

static int aligned(const void *p, uintptr_t a) {
  return p && ((uintptr_t)p & (a - 1)) == 0;
}

NOINLINE static int variants(void) {
  char *p = realloc(NULL, 10);
  memcpy(p, "012345678", 10);
  p = realloc(p, 100000);
  if (memcmp(p, "012345678", 10)) return 10;
  p = realloc(p, 5);
  if (memcmp(p, "01234", 5) || malloc_usable_size(p) < 5) return 11;
  free(p);
  void *q = NULL;
  if (posix_memalign(&q, 64, 1000) || !aligned(q, 64)) return 12;
  memset(q, 7, 1000);
  q = realloc(q, 3000); /* an aligned block grows: contents kept */
  if (((unsigned char *)q)[999] != 7) return 13;
  free(q);
  void *r = aligned_alloc(4096, 8192), *s = memalign(128, 300), *t = valloc(100), *u = pvalloc(100),
       *v = reallocarray(NULL, 10, 20);
  if (!aligned(r, 4096) || !aligned(s, 128) || !aligned(t, 4096) || !aligned(u, 4096) || !v)
    return 14;
  if (malloc_usable_size(s) < 300 || posix_memalign(&q, 3, 8) != 22) return 15;
  free(r);
  free(s);
  free(t);
  free(u);
  free(v);
  return 0;
}

static void on_signal_exit(int sig) {
  (void)sig;
  exit(7);
}
static void on_signal__exit(int sig) {
  (void)sig;
  _exit(7);
}

int main(int argc, char **argv) {
  const char *how = argc > 1 ? argv[1] : "exit";
  for (int i = 0; i < 3; i++) kept[i] = leak_a();
  kept[3] = leak_b();
  kept[4] = leak_aligned();
  peak_phase();
  sort_with_callback();
  int rc = variants();
  if (rc) return rc;
  if (!strcmp(how, "segv")) {
    volatile int *null = (volatile int *)(uintptr_t)(argc - 2); /* 0: argc is 2 here */
    *null = 1;
  } else if (!strcmp(how, "kill")) {
    if (write(1, "R", 1) != 1) return 20;
    for (;;) pause();
  } else if (!strcmp(how, "handler_exit") || !strcmp(how, "handler__exit")) {
    signal(SIGUSR1, how[8] == '_' ? on_signal__exit : on_signal_exit);
    raise(SIGUSR1);
    return 21; /* not reached */
  }
  return 0;
}
