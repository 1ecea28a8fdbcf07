/* A realistic report model with every section filled, for the chart and HTML report tests and the
 * fixture generator (tests/tools/gen_report_fixture.c). */
#ifndef PO_TEST_REPORT_FIXTURE_H
#define PO_TEST_REPORT_FIXTURE_H

#include <cjson/cJSON.h>

/* A report of a training run lasting `run_seconds`, sampled every `interval_seconds` (so
 * run_seconds / interval_seconds points per resource series: 86400 / 1 is the 24-hour case), with
 * `gpus` GPUs and about `tree_nodes` call-tree nodes. Deterministic (fixed seed). NULL on ENOMEM.
 */
cJSON *fixture_report(double run_seconds, double interval_seconds, int gpus, int tree_nodes);

#endif
