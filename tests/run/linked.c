/* Test child for perfopt run, linked with libperfopt: a zone in the parent and one in a forked
 * worker. Each process writes its own report at exit (PERFOPT_OUT), and perfopt run merges them. */
#include <perfopt.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile double sink;

static void work(int n) {
  for (int i = 0; i < n; i++) sink += (double)i * 0.5;
}

static void parent_work(void) {
  PO_PROFILE_FUNCTION();
  work(2000000);
}

static void child_work(void) {
  PO_PROFILE_FUNCTION();
  work(2000000);
}

static void shared_step(void) {
  PO_PROFILE_FUNCTION();
  work(100000);
}

int main(void) {
  parent_work();
  pid_t pid = fork();
  if (pid == 0) {
    child_work();
    for (int i = 0; i < 3; i++) shared_step();
    exit(0); /* a normal exit: the at-exit report is written */
  }
  for (int i = 0; i < 2; i++) shared_step();
  int st;
  if (pid > 0) waitpid(pid, &st, 0);
  return 0;
}
