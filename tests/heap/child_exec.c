/* exec for tests/test_heap.c: leaks 1234 bytes at pre_exec_leak, then execs itself with
 * "second", which leaks 4321 bytes at post_exec_leak and exits 0. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *volatile keep;

NOINLINE static void *pre_exec_leak(void) {
  return malloc(1234);
}
NOINLINE static void *post_exec_leak(void) {
  return malloc(4321);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "second")) {
    keep = post_exec_leak();
    return 0;
  }
  keep = pre_exec_leak();
  execl("/proc/self/exe", argv[0], "second", (char *)NULL);
  return 2;
}
