/* The integration examples as benchmarks.
 *   example_profiling_overhead_ratio  progressive_training (the `make demo` workload, 12 epochs on
 *                                     the hourly candles) with profiling on against the same run
 *                                     with PERFOPT_PROFILING=0, in rounds of interleaved runs:
 *                                     the median over rounds of (on - off) / off of the child's
 *                                     CPU time (user + system); the budget is 0.03
 *   example_noise_floor_ratio         the floor: the median over rounds of |off2 - off| / off,
 *                                     two unprofiled runs of the same round
 *   example_progressive_cpu_s         median CPU time of the profiled run
 *   example_progressive_wall_s        median wall time of the profiled run (the budget is 60 s)
 * CPU time rather than wall time: the run's wall time is mostly waiting for the dashboard's
 * fsyncs, which profiling does not touch, and other jobs on a shared machine move it far more
 * than the profiler can.
 *
 * Environment: BUILD (default build), BENCH_EXAMPLES_RUNS (rounds of three runs, default 9, 1..25).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 25

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One run of the example; its CPU and wall seconds. Output goes to /dev/null. */
static int run_example(const char *exe, const char *out, int profiling, double *cpu, double *wall) {
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout)) _exit(126);
    setenv("PERFOPT_PROFILING", profiling ? "1" : "0", 1);
    unsetenv("PERFOPT_OUT");
    execl(exe, exe, "--no-report", "--out", out, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return -1;
  *wall = now_s() - t0;
  *cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(void) {
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  int runs = getenv("BENCH_EXAMPLES_RUNS") ? atoi(getenv("BENCH_EXAMPLES_RUNS")) : 9;
  if (runs < 1) runs = 1;
  if (runs > MAX_RUNS) runs = MAX_RUNS;
  char exe[1024], out[1024];
  snprintf(exe, sizeof exe, "%s/examples/progressive_training", build);
  snprintf(out, sizeof out, "%s/bench-examples", build);
  mkdir(out, 0777);
  /* per round: one profiled run and two unprofiled ones, in a rotating order, so that drift in
   * the machine's load hits all three alike */
  double cpu[MAX_RUNS][3], wall[MAX_RUNS][3];
  for (int i = 0; i < runs; i++) {
    for (int k = 0; k < 3; k++) {
      int which = (i + k) % 3; /* 0 profiled, 1 and 2 not */
      if (run_example(exe, out, which == 0, &cpu[i][which], &wall[i][which]) != 0) {
        fprintf(stderr, "bench_examples: %s failed (run from the repository root after make)\n",
                exe);
        return 1;
      }
    }
  }
  double over[MAX_RUNS] = {0}, floor_[MAX_RUNS] = {0}, on_cpu[MAX_RUNS] = {0},
         on_wall[MAX_RUNS] = {0};
  for (int i = 0; i < runs; i++) {
    over[i] = (cpu[i][0] - cpu[i][1]) / cpu[i][1];
    floor_[i] = fabs(cpu[i][2] - cpu[i][1]) / cpu[i][1];
    on_cpu[i] = cpu[i][0];
    on_wall[i] = wall[i][0];
  }
  printf("BENCH example_profiling_overhead_ratio %.4f ratio (budget 0.03)\n", median(over, runs));
  printf(
      "BENCH example_noise_floor_ratio %.4f ratio (two unprofiled runs of a round differ by "
      "this much)\n",
      median(floor_, runs));
  printf("BENCH example_progressive_cpu_s %.3f s\n", median(on_cpu, runs));
  printf("BENCH example_progressive_wall_s %.2f s (budget 60 s)\n", median(on_wall, runs));
  printf("# %d rounds of %s --no-report: medians of per-round ratios of CPU time\n", runs, exe);
  return 0;
}
