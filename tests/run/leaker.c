/* Test child for perfopt run --heap: a known allocation pattern. Leaks 10 x 1000 bytes at leak_a
 * (malloc), 3 x 65536 at leak_b (calloc), 5000 at leak_c (posix_memalign), 7000 at leak_d
 * (malloc then realloc); then holds a 4 MiB block for a moment and frees it, so the heap's peak
 * is exactly 218608 + 4194304 = 4412912 requested bytes, and 218608 bytes in 15 blocks leak.
 * usage: leaker [kill]   kill: ends by SIGKILL right after the 4 MiB block is freed. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

static void *volatile keep;

NOINLINE static void leak_a(void) {
  keep = malloc(1000);
}
NOINLINE static void leak_b(void) {
  keep = calloc(1, 65536);
}
NOINLINE static void leak_c(void) {
  void *p = NULL;
  if (posix_memalign(&p, 64, 5000) == 0) keep = p;
}
NOINLINE static void leak_d(void) {
  char *p = malloc(100);
  keep = p ? realloc(p, 7000) : NULL;
}

int main(int argc, char **argv) {
  for (volatile int i = 0; i < 10; i++) leak_a();
  for (volatile int i = 0; i < 3; i++) leak_b();
  leak_c();
  leak_d();
  char *volatile big = malloc(4u << 20);
  if (!big) return 1;
  memset(big, 1, 4u << 20);
  free(big);
  if (argc > 1 && !strcmp(argv[1], "kill")) raise(SIGKILL);
  return 0;
}
