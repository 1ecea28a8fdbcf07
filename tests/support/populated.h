/* An optimizer with every section of its report filled (for the allocation-failure and report-key
 * tests): a profile with functions, a call tree, live and exited threads and a timeline; series
 * with two GPUs (fake NVML: device 0 answers and runs processes, device 1's calls fail);
 * threshold events with more actions than are kept; cleanups by handlers and a listener; guards;
 * closed and open phases; an attached cache with shrinks. */
#ifndef PO_TEST_POPULATED_H
#define PO_TEST_POPULATED_H

#include "perfopt.h"

/* A config that points NVML at the fake library (PERFOPT_FAKE_NVML is set to "2,fail-calls-last")
 * with background monitoring off. */
void support_fake_gpu_config(po_config *c);
/* The optimizer (destroy with support_populated_destroy). Fails the test on error. */
po_optimizer *support_populated_optimizer(void);
void support_populated_destroy(po_optimizer *opt);

#endif
