/* Wall-clock helpers and the run's time origin. */
#include "base/base.h"

#include <pthread.h>
#include <time.h>

uint64_t po__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double po__unix_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t run_origin_ns;
static pthread_once_t run_origin_once = PTHREAD_ONCE_INIT;
static void run_origin_init(void) {
  run_origin_ns = po__now_ns();
}
__attribute__((constructor)) static void run_origin_ctor(void) {
  pthread_once(&run_origin_once, run_origin_init);
}

double po__run_seconds(void) {
  pthread_once(&run_origin_once, run_origin_init);
  return (double)(po__now_ns() - run_origin_ns) * 1e-9;
}
