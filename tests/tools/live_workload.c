/* A small job for the live endpoint's tests and bench: profiled zones and a memory footprint that
 * rises and falls (a sawtooth of a few MiB), so every chart and metric moves while it runs.
 *
 *   live_workload [--seconds S]    (default 10)
 *
 * It uses the default optimizer (po_get_optimizer: config from PERFOPT_* variables), so under
 * `perfopt run --serve` or PERFOPT_SERVER_ENABLE=1 it serves its own live endpoint. Public API
 * only. */
#include "perfopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile double sink;

static void compute(int n) {
  PO_PROFILE_FUNCTION();
  double acc = 0;
  for (int i = 1; i < n; i++) acc += 1.0 / i;
  sink = acc;
}

int main(int argc, char **argv) {
  double seconds = 10;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else {
      fprintf(stderr, "usage: live_workload [--seconds S]\n");
      return 2;
    }
  }
  if (!po_get_optimizer()) {
    fprintf(stderr, "live_workload: no optimizer: %s\n", po_last_error());
    return 1;
  }
  enum { SLOTS = 16, SLOT_BYTES = 1 << 20 };
  char *slots[SLOTS] = {0};
  double start = now_s();
  for (long step = 0; now_s() - start < seconds; step++) {
    {
      PO_SCOPE("train_step");
      {
        PO_SCOPE("load_batch");
        compute(20000);
      }
      int k = (int)(step % (2 * SLOTS));
      int slot = k < SLOTS ? k : 2 * SLOTS - 1 - k;
      if (k < SLOTS) { /* rising: touch a new MiB */
        slots[slot] = malloc(SLOT_BYTES);
        if (slots[slot]) memset(slots[slot], (int)step, SLOT_BYTES);
      } else { /* falling */
        free(slots[slot]);
        slots[slot] = NULL;
      }
      compute(200000);
    }
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  for (int i = 0; i < SLOTS; i++) free(slots[i]);
  return 0;
}
