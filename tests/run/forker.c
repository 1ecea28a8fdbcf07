/* Test child for perfopt run: forks a worker that allocates MB mebibytes and holds them HOLD_MS
 * milliseconds; the parent waits for it and exits with the worker's status. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 64;
  long hold_ms = argc > 2 ? atol(argv[2]) : 300;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    char *p = malloc(mb << 20);
    if (!p) _exit(1);
    memset(p, 1, mb << 20);
    struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    _exit(p[0] == 1 ? 0 : 1);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
