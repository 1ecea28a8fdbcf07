/* Test child for perfopt run: N threads that each burn CPU for MS milliseconds. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static long ms;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *burn(void *arg) {
  volatile unsigned long x = 0;
  double end = now() + (double)ms / 1000.0;
  while (now() < end)
    for (int i = 0; i < 100000; i++) x += (unsigned long)i;
  return arg;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 4;
  ms = argc > 2 ? atol(argv[2]) : 500;
  pthread_t t[64];
  if (n > 64) n = 64;
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, burn, NULL);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  return 0;
}
