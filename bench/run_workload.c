/* The CPU-bound child of bench_run: THREADS threads (default: the cores online) each run a fixed
 * amount of integer work; prints the wall seconds the work took (its own clock, so perfopt's
 * start-up and report writing are not part of it). Never instrumented. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t iterations;
static volatile uint64_t sink;

static void *work(void *arg) {
  uint64_t x = (uint64_t)(uintptr_t)arg | 1;
  for (uint64_t i = 0; i < iterations; i++) { /* xorshift64: no memory traffic, no syscalls */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  sink += x;
  return NULL;
}

int main(int argc, char **argv) {
  iterations = argc > 1 ? strtoull(argv[1], NULL, 10) : 300000000ull;
  long n = argc > 2 ? atol(argv[2]) : sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > 64) n = 64;
  pthread_t t[64];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1));
  for (long i = 0; i < n; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.6f\n", (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
