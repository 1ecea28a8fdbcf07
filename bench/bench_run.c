/* perfopt run's cost to the program it watches.
 *
 *   BENCH run_monitor_overhead_ratio <r> ratio
 *       a CPU-bound child (bench/run_workload: one thread per core, fixed work) under
 *       `perfopt run` at its default interval, without --heap: BENCH_RUN_REPS (default 11) pairs
 *       of runs back to back (alone then under perfopt, or the other way round, alternately),
 *       each pair giving the child's own wall time for its work under perfopt over its time
 *       alone; the median of the pairs' ratios, minus 1 (pairs cancel slow drifts of the
 *       machine's load). Target <= 0.01.
 *   BENCH run_baseline_child_alone_seconds <s> seconds   (the in-run baseline: the median alone)
 *   BENCH run_child_under_perfopt_seconds <s> seconds
 *   BENCH run_baseline_spread_ratio <r> ratio
 *       (max - min) / median of the child's runs alone: the noise the overhead ratio sits in.
 *   BENCH run_sampler_core_ratio <r> ratio
 *       perfopt's sampling thread CPU time over the run's wall time (processes.sampler_cpu_seconds
 *       / run.wall_seconds from the reports), median.
 *   BENCH run_sample_cpu_seconds <s> seconds   (median CPU time of one sample of the tree)
 *   BENCH run_fixed_cost_seconds <s> seconds
 *       what perfopt adds outside the child's work: the median wall time of `perfopt run --
 *       true` (start, spawn, report, summary).
 */
#include "perfopt.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char perfopt[512], workload[512], report[600];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv with stdout captured; returns the first number it printed (-1 on failure). */
static double run_capture(char *const argv[]) {
  int p[2];
  if (pipe(p) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  close(p[1]);
  char buf[128] = "";
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  close(p[0]);
  int st;
  waitpid(pid, &st, 0);
  if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
  buf[n] = '\0';
  return atof(buf);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double report_num(const char *section, const char *key) {
  po_report *rep = NULL;
  char err[256];
  if (po_report_load(report, &rep, err, sizeof err) != 0) return -1;
  const cJSON *root = po_report_json(rep);
  const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(root, section), key);
  double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
  po_report_destroy(rep);
  return d;
}

int main(void) {
  const char *build = getenv("BUILD");
  if (!build) build = "build";
  const char *r = getenv("BENCH_RUN_REPS");
  int reps = r ? atoi(r) : 11;
  if (reps < 1 || reps > 99) reps = 11;
  const char *it = getenv("BENCH_RUN_ITERATIONS");
  snprintf(perfopt, sizeof perfopt, "%s/perfopt", build);
  snprintf(workload, sizeof workload, "%s/bench/run_workload", build);
  snprintf(report, sizeof report, "/tmp/perfopt-bench-run-%d.json", (int)getpid());
  char iters[32];
  snprintf(iters, sizeof iters, "%s", it ? it : "100000000");
  char *alone[] = {workload, iters, NULL};
  char *under[] = {perfopt, "run", "-q", "-o", report, "--", workload, iters, NULL};
  char *empty[] = {perfopt, "run", "-q", "-o", report, "--", "/bin/true", NULL};
  double a[99], u[99], pr[99], sc[99], ss[99], fx[99];
  for (int i = 0; i < reps; i++) {
    int first_alone = i % 2 == 0;
    double x = run_capture(first_alone ? alone : under);
    double y = run_capture(first_alone ? under : alone);
    a[i] = first_alone ? x : y;
    u[i] = first_alone ? y : x;
    pr[i] = u[i] / a[i];
    if (a[i] < 0 || u[i] < 0) {
      fprintf(stderr, "bench_run: %s or %s failed (make %s %s first)\n", workload, perfopt,
              workload, perfopt);
      return 1;
    }
    double cpu = report_num("processes", "sampler_cpu_seconds");
    double wall = report_num("run", "wall_seconds");
    double samples = report_num("processes", "sample_count");
    sc[i] = wall > 0 ? cpu / wall : -1;
    ss[i] = samples > 0 ? cpu / samples : -1;
    double t0 = now_s();
    run_capture(empty);
    fx[i] = now_s() - t0;
  }
  unlink(report);
  double ma = median(a, reps), mu = median(u, reps); /* median() sorts: a[0], a[reps-1] */
  printf("BENCH run_monitor_overhead_ratio %.4f ratio\n", median(pr, reps) - 1);
  printf("BENCH run_baseline_child_alone_seconds %.4f seconds\n", ma);
  printf("BENCH run_child_under_perfopt_seconds %.4f seconds\n", mu);
  printf("BENCH run_baseline_spread_ratio %.4f ratio\n", (a[reps - 1] - a[0]) / ma);
  printf("BENCH run_sampler_core_ratio %.5f ratio\n", median(sc, reps));
  printf("BENCH run_sample_cpu_seconds %.7f seconds\n", median(ss, reps));
  printf("BENCH run_fixed_cost_seconds %.4f seconds\n", median(fx, reps));
  return 0;
}
