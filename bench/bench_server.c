/* The live endpoint under load: wrk (Debian's) against /metrics of a live optimizer whose sampler
 * runs at 10 Hz, in this process.
 *
 *   BENCH serve_metrics_rps          wrk -t2 -c16 -d5s on /metrics (keep-alive)
 *   BENCH serve_metrics_errors       socket errors + non-2xx answers in that run (want 0)
 *   BENCH serve_404_rps              baseline: the same daemon and limits answering a static 404
 *                                    (the HTTP stack's ceiling here, no snapshot or body)
 *   BENCH serve_metrics_build_us     floor: one snapshot + metrics text built from scratch, and
 *   BENCH serve_metrics_rebuild_rps  the rate /metrics would have if each request rebuilt it
 *   BENCH serve_rss_growth_bytes     RSS after >= 100,000 more /metrics requests minus before
 *   BENCH serve_heap_in_use_growth_bytes   the same for bytes malloc'd and not freed
 * (series capped at 64 buckets, full before the first reading, so a snapshot's size is constant)
 *
 * Without wrk it says so and prints only the floor. */
#include "perfopt.h"
#include "report/report_metrics.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RSS_REQUESTS 100000

typedef struct wrk_result {
  double rps;
  long requests;
  long errors;
  int ok;
} wrk_result;

static wrk_result run_wrk(int port, const char *path, int seconds) {
  wrk_result r = {0, 0, 0, 0};
  char cmd[256];
  snprintf(cmd, sizeof cmd, "wrk -t2 -c16 -d%ds http://127.0.0.1:%d%s 2>&1", seconds, port, path);
  FILE *p = popen(cmd, "r");
  if (!p) return r;
  char line[512];
  while (fgets(line, sizeof line, p)) {
    long a, b, c, d;
    if (sscanf(line, " Requests/sec: %lf", &r.rps) == 1) r.ok = 1;
    if (sscanf(line, " %ld requests in", &a) == 1) r.requests = a;
    if (sscanf(line, " Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a, &b, &c,
               &d) == 4)
      r.errors += a + b + c + d;
    if (sscanf(line, " Non-2xx or 3xx responses: %ld", &a) == 1) r.errors += a;
  }
  if (pclose(p) != 0) r.ok = 0;
  return r;
}

static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The floor: a snapshot and its metrics text, built from scratch (median of 21). */
static double build_us(po_optimizer *opt) {
  double t[21];
  for (int i = 0; i < 21; i++) {
    double t0 = now_s();
    po_report *rep = NULL;
    if (po_report_create(opt, &rep) != 0) return -1;
    size_t len;
    char *text = po__report_prom_text(rep, &len);
    t[i] = (now_s() - t0) * 1e6;
    free(text);
    po_report_destroy(rep);
  }
  for (int i = 0; i < 21; i++)
    for (int j = i + 1; j < 21; j++)
      if (t[j] < t[i]) {
        double x = t[i];
        t[i] = t[j];
        t[j] = x;
      }
  return t[10];
}

/* Some profile content, so /metrics carries function families like a real job's. */
static void profile_something(void) {
  static volatile double sink;
  for (int i = 0; i < 2000; i++) {
    PO_SCOPE("bench_outer");
    {
      PO_SCOPE("bench_inner");
      sink = sink + i;
    }
  }
}

int main(void) {
  po_config cfg;
  po_config_defaults(&cfg);
  cfg.monitor_interval_ms = 100; /* the sampler runs at 10 Hz throughout */
  /* The report's series hold at most this many buckets, reached after 6.4 s: from then on a
   * snapshot has a constant size, so memory growth measures the server, not the series filling. */
  cfg.series_capacity = 64;
  po_optimizer *opt = NULL;
  double started = now_s();
  if (po_optimizer_create(&cfg, &opt) != 0) {
    fprintf(stderr, "bench_server: no optimizer: %s\n", po_last_error());
    return 1;
  }
  profile_something();
  double us = build_us(opt);
  printf("BENCH serve_metrics_build_us %.1f us\n", us);
  printf("BENCH serve_metrics_rebuild_rps %.0f req/s (if each request rebuilt the snapshot)\n",
         us > 0 ? 1e6 / us : 0);
  po_server_options o = {.token = ""};
  po_server *srv = NULL;
  char err[256];
  if (po_server_start(opt, &o, &srv, err, sizeof err) != 0) {
    fprintf(stderr, "bench_server: %s\n", err);
    return 1;
  }
  int port = po_server_port(srv);
  if (system("command -v wrk >/dev/null 2>&1") != 0) {
    printf(
        "bench_server: wrk is not installed (scripts/install-deps --server): load figures "
        "skipped\n");
  } else {
    run_wrk(port, "/metrics", 1); /* warm-up: first snapshot, page cache, connections */
    while (now_s() - started < 8) usleep(100 * 1000); /* the series are full */
    long rss_start = rss_bytes();
    wrk_result m = run_wrk(port, "/metrics", 5);
    wrk_result b = run_wrk(port, "/nothing", 5);
    printf("BENCH serve_metrics_rps %.0f req/s (wrk -t2 -c16 -d5s, sampler at 10 Hz)\n", m.rps);
    printf("BENCH serve_metrics_errors %ld\n", m.errors);
    printf("BENCH serve_404_rps %.0f req/s (baseline: same daemon, static 404, %ld non-2xx)\n",
           b.rps, b.errors);
    /* Steady state: from here, at least RSS_REQUESTS more requests must not grow memory. */
    long rss0 = rss_bytes();
    size_t heap0 = mallinfo2().uordblks;
    long total = 0, errors = 0;
    for (int i = 0; i < 20 && total < RSS_REQUESTS; i++) {
      wrk_result more = run_wrk(port, "/metrics", 5);
      if (!more.ok) break;
      total += more.requests;
      errors += more.errors;
    }
    long rss1 = rss_bytes();
    size_t heap1 = mallinfo2().uordblks;
    printf(
        "BENCH serve_rss_warmup_bytes %ld bytes (RSS growth over the first %ld requests: "
        "thread arenas, first snapshots)\n",
        rss0 - rss_start, m.requests);
    printf(
        "BENCH serve_rss_growth_bytes %ld bytes (over %ld more /metrics requests; RSS %ld -> "
        "%ld, %ld errors)\n",
        rss1 - rss0, total, rss0, rss1, errors);
    printf("BENCH serve_heap_in_use_growth_bytes %lld bytes (malloc'd and not freed, same span)\n",
           (long long)heap1 - (long long)heap0);
    if (!m.ok) fprintf(stderr, "bench_server: wrk failed\n");
  }
  po_server_destroy(srv);
  po_optimizer_destroy(opt);
  return 0;
}
