/* fork for tests/test_heap.c: the parent leaks 1000 bytes at parent_leak, forks; the child leaks
 * 2000 bytes at child_leak and exits 0; the parent waits for it and exits with its status. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *volatile keep[2];

NOINLINE static void *parent_leak(void) {
  return malloc(1000);
}
NOINLINE static void *child_leak(void) {
  return malloc(2000);
}

int main(void) {
  keep[0] = parent_leak();
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    keep[1] = child_leak();
    exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) return 3;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 4;
}
