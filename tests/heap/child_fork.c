/* fork for tests/test_heap.c: the parent leaks 1000 bytes at parent_leak, forks; the child leaks
 * 2000 bytes at child_leak and exits 0; the parent waits for it and exits with its status.
 * usage: child_fork [many]   many: 70 children one after the other (more than the 64 slots), each
 * allocating, freeing and exiting 0; exits non-zero if one failed. */
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

static int many(void) {
  for (int i = 0; i < 70; i++) {
    pid_t pid = fork();
    if (pid < 0) return 5;
    if (pid == 0) {
      void *p = malloc(100);
      free(keep[0]); /* an inherited block, released in a process without a slot too */
      free(p);
      _exit(p ? 0 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) return 6;
  }
  return 0;
}

int main(int argc, char **argv) {
  keep[0] = parent_leak();
  if (argc > 1 && argv[1][0] == 'm') return many();
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
