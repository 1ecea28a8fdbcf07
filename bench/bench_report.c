/* Exports and the advisor: how fast, next to in-run baselines.
 *   trace_write_1m_events_ms     Chrome trace of a report with 1M zones, written to a file
 *                                (best of 3; the budget is 1000 ms)
 *   trace_fwrite_same_bytes_ms   baseline: fwrite of the very same bytes to the same file
 *   trace_1m_events_bytes        the size of that trace
 *   advisor_24h_report_ms        the advisor's rules over the 24-hour report (86,400 samples x
 *                                13 series, 6,000 call-tree nodes), best of 5
 *   json_print_24h_report_ms     baseline: printing the same report as JSON (what every saved
 *                                report costs anyway), best of 2
 *   prom_24h_report_ms, folded_24h_report_ms   the other exports of that report, best of 2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "report/advisor.h"
#include "report/report_build.h"
/* The fixture is test support code; the bench build links only libperfopt, so include it. */
#include "../tests/support/report_fixture.c"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* A report whose timeline holds n zones on 8 threads (constant keys: the model stays ~400 MB). */
static po_report *zones_report(size_t n) {
  static const char *const names[] = {"train_step", "forward", "backward", "optimizer",
                                      "load_batch", "augment", "all_reduce", "checkpoint"};
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "perfopt_version", PO_VERSION_STRING);
  cJSON *run = cJSON_AddObjectToObject(root, "run");
  cJSON_AddNumberToObject(run, "pid", 4242);
  cJSON *prof = cJSON_AddObjectToObject(root, "profile");
  cJSON *events = cJSON_AddArrayToObject(cJSON_AddObjectToObject(prof, "timeline"), "events");
  if (!events) return NULL;
  for (size_t i = 0; i < n; i++) {
    cJSON *e = cJSON_CreateObject();
    if (!e) return NULL;
    cJSON_AddItemToObjectCS(e, "tid", cJSON_CreateNumber((double)(1000 + i % 8)));
    cJSON_AddItemToObjectCS(e, "name", cJSON_CreateStringReference(names[i % 8]));
    cJSON_AddItemToObjectCS(e, "start_seconds", cJSON_CreateNumber((double)i * 1.7e-5));
    cJSON_AddItemToObjectCS(e, "dur_seconds", cJSON_CreateNumber(1.2e-5 + (double)(i % 13) * 1e-7));
    cJSON_AddItemToObjectCS(e, "depth", cJSON_CreateNumber((double)(i % 4)));
    cJSON_AddItemToArray(events, e);
  }
  return po__report_wrap(root);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void trace_bench(void) {
  po_report *rep = zones_report(1000000);
  if (!rep) {
    fprintf(stderr, "bench_report: out of memory\n");
    exit(1);
  }
  char path[] = "/tmp/perfopt-bench-trace-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) exit(1);
  close(fd);
  double best = INFINITY;
  for (int i = 0; i < 3; i++) {
    FILE *f = fopen(path, "w");
    double t0 = now_ms();
    if (!f || po_report_write_trace(rep, f) != 0 || fclose(f) != 0) exit(1);
    best = fmin(best, now_ms() - t0);
  }
  char *bytes;
  size_t len;
  char err[256];
  if (po__read_file(path, (size_t)1 << 31, &bytes, &len, err, sizeof err) != 0) exit(1);
  double base = INFINITY;
  for (int i = 0; i < 3; i++) {
    FILE *f = fopen(path, "w");
    double t0 = now_ms();
    if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) exit(1);
    base = fmin(base, now_ms() - t0);
  }
  unlink(path);
  free(bytes);
  po_report_destroy(rep);
  printf("BENCH trace_write_1m_events_ms %.1f ms\n", best);
  printf("BENCH trace_fwrite_same_bytes_ms %.1f ms\n", base);
  printf("BENCH trace_1m_events_bytes %zu bytes\n", len);
  printf("# trace writer / fwrite of its bytes: %.1fx\n", best / base);
}

static double time_advisor(cJSON *root) {
  double t[5];
  for (int i = 0; i < 5; i++) {
    double t0 = now_ms();
    if (po__advise(root) != 0) exit(1);
    t[i] = now_ms() - t0;
  }
  qsort(t, 5, sizeof t[0], cmp_double);
  return t[0];
}

int main(void) {
  trace_bench();
  cJSON *root = fixture_report(86400, 1, 2, 6000);
  if (!root) return 1;
  double adv = time_advisor(root);
  printf("BENCH advisor_24h_report_ms %.2f ms (%d suggestions)\n", adv,
         cJSON_GetArraySize(cJSON_GetObjectItem(root, "suggestions")));
  po_report *rep = po__report_wrap(root);
  double json = INFINITY, prom = INFINITY, folded = INFINITY;
  FILE *null = fopen("/dev/null", "w");
  for (int i = 0; i < 2 && null; i++) {
    double t0 = now_ms();
    char *s = po_report_to_string(rep, 1);
    json = fmin(json, now_ms() - t0);
    free(s);
    t0 = now_ms();
    if (po_report_write_prom(rep, null) != 0) return 1;
    prom = fmin(prom, now_ms() - t0);
    t0 = now_ms();
    if (po_report_write_folded(rep, null, PO_FOLDED_TIME) != 0) return 1;
    folded = fmin(folded, now_ms() - t0);
  }
  if (null) fclose(null);
  printf("BENCH json_print_24h_report_ms %.1f ms\n", json);
  printf("BENCH prom_24h_report_ms %.2f ms\n", prom);
  printf("BENCH folded_24h_report_ms %.2f ms\n", folded);
  printf("# advisor / JSON print of the same report: %.3f\n", adv / json);
  po_report_destroy(rep);
  return 0;
}
