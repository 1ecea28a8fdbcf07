/* Threads for tests/test_heap.c. usage: child_threads [pool|concurrent]
 * pool: 4 threads each do 10,000 malloc/free pairs of 64 bytes and leak 100 bytes at thread_leak,
 *       then 300 short threads one after the other each allocate and free once (slot reuse).
 * concurrent: 140 threads alive at once (more than the shim's 128 slots), each leaks 10 bytes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

static pthread_barrier_t barrier;

/* The compiler may drop a malloc/free pair whose block is never used: make it used. */
static void use(void *p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

NOINLINE static void *thread_leak(size_t n) {
  return malloc(n);
}

static void *worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 10000; i++) {
    void *p = malloc(64);
    if (!p) abort();
    use(p);
    free(p);
  }
  return thread_leak(100);
}

static void *short_lived(void *arg) {
  (void)arg;
  void *p = malloc(32);
  use(p);
  free(p);
  return NULL;
}

static void *waits(void *arg) {
  (void)arg;
  void *p = thread_leak(10);
  pthread_barrier_wait(&barrier);
  return p;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "concurrent")) {
    enum { N = 140 };
    pthread_t t[N];
    pthread_barrier_init(&barrier, NULL, N);
    for (int i = 0; i < N; i++) {
      if (pthread_create(&t[i], NULL, waits, NULL)) return 2;
    }
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    return 0;
  }
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    if (pthread_create(&t[i], NULL, worker, NULL)) return 2;
  }
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 300; i++) {
    pthread_t s;
    if (pthread_create(&s, NULL, short_lived, NULL)) return 3;
    pthread_join(s, NULL);
  }
  return 0;
}
