/* The heap bench's workload: N malloc/free pairs of random sizes in [16, 4096] bytes with 1,024
 * blocks live (a random slot is freed and refilled each step). It knows its true peak of live
 * requested bytes and prints it, so the tracker's peak can be checked against it.
 *
 * usage: heap_workload [iterations]   (default 10,000,000)
 * prints: heap_workload iterations=<n> peak_bytes=<p> live_bytes=<l> seconds=<s>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LIVE 1024

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static inline uint64_t next_random(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Kept out of line so the allocation has a caller of its own in the stack. */
__attribute__((noinline)) static void *alloc_block(size_t n) {
  char *p = malloc(n);
  if (p) p[0] = (char)n; /* touch it, as a real program would */
  return p;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000L;
  static void *blocks[LIVE];
  static size_t sizes[LIVE];
  int64_t live = 0, peak = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < iterations; i++) {
    uint64_t r = next_random();
    size_t slot = (size_t)(r % LIVE);
    size_t n = 16 + (size_t)((r >> 32) % (4096 - 16 + 1));
    free(blocks[slot]);
    live -= (int64_t)sizes[slot];
    blocks[slot] = alloc_block(n);
    if (!blocks[slot]) return 1;
    sizes[slot] = n;
    live += (int64_t)n;
    if (live > peak) peak = live;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  for (size_t i = 0; i < LIVE; i++) free(blocks[i]);
  printf("heap_workload iterations=%ld peak_bytes=%lld live_bytes=%lld seconds=%.6f\n", iterations,
         (long long)peak, (long long)live, s);
  return 0;
}
