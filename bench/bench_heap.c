/* Heap tracker bench: the workload (bench/heap_workload.c: 10M malloc/free pairs of random sizes
 * 16..4096 bytes, 1,024 live) alone, under libperfopt-heap in each mode, and under heaptrack when
 * it is installed. Each variant runs HEAP_BENCH_RUNS times (default 5), interleaved so that load
 * from other processes hits every variant alike; slowdowns are ratios of median wall times (fork
 * to exit, the whole process) to the baseline's median in the same run.
 *
 *   BENCH heap_baseline_seconds, heap_{exact,sampled,full}_slowdown, heap_heaptrack_slowdown,
 *   heap_full_nofp_slowdown (the workload built without frame pointers: libunwind every time),
 *   heap_peak_error_ratio (|tracked peak - the workload's own peak| / its peak, worst exact run),
 *   heap_sampled_total_estimate_error_ratio (sampled mode: the sites' estimated bytes summed
 *   against the exact total, worst run).
 *
 * Environment: BUILD (build dir, default build), HEAP_BENCH_RUNS, HEAP_BENCH_ITERATIONS.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "perfopt.h"

enum { V_BASE, V_EXACT, V_SAMPLED, V_FULL, V_FULL_NOFP, V_HEAPTRACK, V_COUNT };
static const char *const names[V_COUNT] = {"baseline", "exact",     "sampled",
                                           "full",     "full_nofp", "heaptrack"};
#define MAX_RUNS 31

static char workload[512], workload_nofp[512], shim[512], iterations[32], tmpdir[256];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs one variant; returns its wall time, fills *cpu and *true_peak (from its output). */
static double run_variant(int v, po_heap_session *s, double *cpu, long long *true_peak) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const char *prog = v == V_FULL_NOFP ? workload_nofp : workload;
    if (v == V_HEAPTRACK) {
      char out[300];
      snprintf(out, sizeof out, "%s/heaptrack", tmpdir);
      if (!freopen("/dev/null", "w", stderr)) _exit(97);
      execlp("heaptrack", "heaptrack", "-o", out, prog, iterations, (char *)NULL);
      _exit(98);
    }
    if (s && po_heap_session_apply_env(s, shim) != 0) _exit(99);
    execl(prog, prog, iterations, (char *)NULL);
    _exit(98);
  }
  close(fds[1]);
  char buf[4096];
  size_t len = 0;
  ssize_t n;
  while ((n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) len += (size_t)n;
  }
  buf[len] = '\0';
  close(fds[0]);
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  double t = now_s() - t0;
  *cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  const char *pk = strstr(buf, "heap_workload iterations=");
  pk = pk ? strstr(pk, "peak_bytes=") : NULL;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !pk) {
    fprintf(stderr, "bench_heap: %s run failed (status %d)\n", names[v], status);
    return -1;
  }
  *true_peak = atoll(pk + strlen("peak_bytes="));
  return t;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int have_heaptrack(void) {
  return system("command -v heaptrack >/dev/null 2>&1") == 0;
}

static const po_heap_mode mode_of[V_COUNT] = {PO_HEAP_EXACT, PO_HEAP_EXACT, PO_HEAP_SAMPLED,
                                              PO_HEAP_FULL,  PO_HEAP_FULL,  PO_HEAP_EXACT};

/* Sampled mode: how far the sum of the sites' estimated bytes is from the exact total. */
static double sampled_error(po_heap_session *s) {
  po_heap_snapshot *snap = NULL;
  double e = 1;
  if (po_heap_session_snapshot(s, 1, &snap) == 0 && snap->process_count == 1) {
    const po_heap_process *p = &snap->processes[0];
    double est = 0;
    for (size_t i = 0; i < p->site_count; i++) est += (double)p->sites[i].allocated_bytes;
    e = fabs(est - (double)p->allocated_bytes) / (double)p->allocated_bytes;
  }
  po_heap_snapshot_destroy(snap);
  return e;
}

static double sampled_err_max;

/* One run of variant v; for the exact mode also the tracked peak's error. */
static double one_run(int v, double *cpu, double *peak_err) {
  po_heap_session *s = NULL;
  int tracked = v != V_BASE && v != V_HEAPTRACK;
  if (tracked && po_heap_session_create(mode_of[v], &s) != 0) return -1;
  long long true_peak = 0;
  double t = run_variant(v, s, cpu, &true_peak);
  if (t > 0 && v == V_SAMPLED) {
    double e = sampled_error(s);
    if (e > sampled_err_max) sampled_err_max = e;
  }
  if (t > 0 && v == V_EXACT) {
    po_heap_snapshot *snap = NULL;
    if (po_heap_session_snapshot(s, 1, &snap) == 0 && snap->process_count == 1 && true_peak > 0) {
      double e =
          fabs((double)snap->processes[0].peak_bytes - (double)true_peak) / (double)true_peak;
      if (e > *peak_err) *peak_err = e;
    } else {
      *peak_err = 1;
    }
    po_heap_snapshot_destroy(snap);
  }
  po_heap_session_destroy(s);
  return t;
}

int main(void) {
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  int runs = getenv("HEAP_BENCH_RUNS") ? atoi(getenv("HEAP_BENCH_RUNS")) : 5;
  if (runs < 1 || runs > MAX_RUNS) runs = 5;
  snprintf(iterations, sizeof iterations, "%s",
           getenv("HEAP_BENCH_ITERATIONS") ? getenv("HEAP_BENCH_ITERATIONS") : "10000000");
  snprintf(workload, sizeof workload, "%s/bench/heap_workload", build);
  snprintf(workload_nofp, sizeof workload_nofp, "%s/bench/heap_workload_nofp", build);
  snprintf(shim, sizeof shim, "%s/libperfopt-heap.so", build);
  snprintf(tmpdir, sizeof tmpdir, "/tmp/perfopt-bench-heap-XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  int ht = have_heaptrack();
  double t[V_COUNT][MAX_RUNS], cpu[V_COUNT][MAX_RUNS], peak_err = 0;
  for (int r = 0; r < runs; r++) {
    for (int v = 0; v < V_COUNT; v++) {
      if (v == V_HEAPTRACK && !ht) continue;
      t[v][r] = one_run(v, &cpu[v][r], &peak_err);
      if (t[v][r] <= 0) return 1;
    }
  }
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "bench_heap: could not remove %s\n", tmpdir);
  double med[V_COUNT], mcpu[V_COUNT];
  for (int v = 0; v < V_COUNT; v++) {
    int off = v == V_HEAPTRACK && !ht;
    med[v] = off ? 0 : median(t[v], runs);
    mcpu[v] = off ? 0 : median(cpu[v], runs);
  }
  printf("# %d runs of %s iterations each, medians of whole-process wall (and CPU) times\n", runs,
         iterations);
  printf("BENCH heap_baseline_seconds %.4f seconds\n", med[V_BASE]);
  printf("BENCH heap_baseline_cpu_seconds %.4f seconds\n", mcpu[V_BASE]);
  for (int v = V_EXACT; v < V_COUNT; v++) {
    if (v == V_HEAPTRACK && !ht) {
      printf("# heaptrack not installed: heap_heaptrack_slowdown not measured\n");
      continue;
    }
    printf("BENCH heap_%s_slowdown %.3f ratio\n", names[v], med[v] / med[V_BASE]);
    printf("BENCH heap_%s_slowdown_cpu %.3f ratio\n", names[v], mcpu[v] / mcpu[V_BASE]);
  }
  if (ht) printf("BENCH heap_full_vs_heaptrack %.3f ratio\n", med[V_FULL] / med[V_HEAPTRACK]);
  printf("BENCH heap_sampled_total_estimate_error_ratio %.6f ratio\n", sampled_err_max);
  printf("BENCH heap_peak_error_ratio %.6f ratio\n", peak_err);
  return 0;
}
