/* Downsampling benchmarks: 100M float64 points to 2,000 (single core), the streaming M4, visual
 * fidelity of M4 vs the raw series (rasterised with rsvg-convert), and `perfopt plot` of a 10M-row
 * CSV (peak RSS and time). Prints `BENCH <name> <value> <unit>` lines.
 *
 * Environment: BENCH_DS_N (points, default 100000000), BENCH_DS_RUNS (default 5),
 * BENCH_DS_SKIP_PLOT=1 / BENCH_DS_SKIP_PIXELS=1 to skip the parts that need the CLI or
 * rsvg-convert.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "perfopt.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static uint64_t rng = 88172645463325252ull;
static double rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static volatile double sink;

static double bench_sum(const double *y, size_t n) {
  double t0 = now_ms();
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    s0 += y[i];
    s1 += y[i + 1];
    s2 += y[i + 2];
    s3 += y[i + 3];
  }
  sink = s0 + s1 + s2 + s3;
  return now_ms() - t0;
}

static double bench_method(po_ds_method m, const po_ds_input *in, size_t n_out, size_t *out,
                           size_t cap, int64_t *count) {
  char err[200];
  double t0 = now_ms();
  int64_t k = po_downsample(m, in, n_out, out, cap, err, sizeof err);
  double t = now_ms() - t0;
  if (k < 0) {
    fprintf(stderr, "bench_downsample: %s\n", err);
    exit(1);
  }
  *count = k;
  return t;
}

/* ---- pixel fidelity -------------------------------------------------------------------- */

/* A bare SVG polyline: x snaps to the centre of its pixel column, exactly as po_ds_column buckets
 * it, so every point of a column lies on one vertical line (what M4's exactness needs); no
 * antialiasing so that pixels compare. */
static int write_svg(const char *path, const double *y, const size_t *idx, size_t n, size_t total,
                     int w, int h, double ymin, double ymax) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f,
          "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'>"
          "<rect width='100%%' height='100%%' fill='white'/>"
          "<polyline fill='none' stroke='black' stroke-width='1' shape-rendering='crispEdges' "
          "stroke-linejoin='round' stroke-linecap='round' "
          "points='",
          w, h);
  for (size_t k = 0; k < n; k++) {
    size_t i = idx ? idx[k] : k;
    double px = (double)po_ds_column((double)i, 0, (double)(total - 1), (size_t)w) + 0.5;
    double py = (double)(h - 1) - (y[i] - ymin) / (ymax - ymin) * (double)(h - 2);
    fprintf(f, "%.4f,%.4f ", px, py);
  }
  fprintf(f, "'/></svg>\n");
  return fclose(f);
}

static int run_cmd(const char *cmd) {
  int rc = system(cmd);
  return rc == 0 ? 0 : -1;
}

/* Returns differing/drawn pixels of two PNGs, via bench/pixel_diff.py (python3, zlib only). */
static double pixel_diff(const char *a, const char *b) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "python3 bench/pixel_diff.py %s %s", a, b);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  double r = -1;
  char line[256];
  if (fgets(line, sizeof line, p) == NULL || sscanf(line, "%lf", &r) != 1) r = -1;
  while (fgets(line, sizeof line, p) != NULL) {
  }
  pclose(p);
  return r;
}

static void bench_pixels(const char *dir) {
  const size_t n = 1000000;
  const int w = 1000, h = 400;
  double *y = malloc(n * sizeof *y);
  size_t *idx = malloc(po_ds_capacity(PO_DS_M4, (size_t)w) * sizeof *idx);
  double v = 0, ymin = INFINITY, ymax = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    v += rnd() - 0.5;
    y[i] = v + 30 * sin((double)i / 20000.0);
    ymin = y[i] < ymin ? y[i] : ymin;
    ymax = y[i] > ymax ? y[i] : ymax;
  }
  char raw[512], m4[512], lt[512], cmd[2048];
  snprintf(raw, sizeof raw, "%s/ds_raw", dir);
  snprintf(m4, sizeof m4, "%s/ds_m4", dir);
  snprintf(lt, sizeof lt, "%s/ds_lttb", dir);
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  int64_t km = po_ds_m4(&in, (size_t)w, idx, po_ds_capacity(PO_DS_M4, (size_t)w), NULL, 0);
  char svg[600], png[600];
  snprintf(svg, sizeof svg, "%s.svg", raw);
  write_svg(svg, y, NULL, n, n, w, h, ymin, ymax);
  snprintf(svg, sizeof svg, "%s.svg", m4);
  write_svg(svg, y, idx, (size_t)km, n, w, h, ymin, ymax);
  int64_t kl = po_ds_lttb(&in, 2000, idx, po_ds_capacity(PO_DS_LTTB, 2000), NULL, 0);
  snprintf(svg, sizeof svg, "%s.svg", lt);
  write_svg(svg, y, idx, (size_t)kl, n, w, h, ymin, ymax);
  const char *names[3] = {raw, m4, lt};
  for (int i = 0; i < 3; i++) {
    snprintf(cmd, sizeof cmd, "rsvg-convert --unlimited -o %s.png %s.svg", names[i], names[i]);
    if (run_cmd(cmd) != 0) {
      fprintf(stderr, "bench_downsample: rsvg-convert failed (install librsvg2-bin)\n");
      goto out;
    }
  }
  snprintf(png, sizeof png, "%s.png", raw);
  char pm4[600], plt[600];
  snprintf(pm4, sizeof pm4, "%s.png", m4);
  snprintf(plt, sizeof plt, "%s.png", lt);
  double dm = pixel_diff(png, pm4), dl = pixel_diff(png, plt);
  printf("BENCH ds_m4_pixel_diff_ratio %.6f ratio\n", dm);
  printf("BENCH ds_lttb2000_pixel_diff_ratio %.4f ratio\n", dl);
  printf("# M4 kept %lld of %zu points (width %d), LTTB 2000\n", (long long)km, n, w);
out:
  free(y);
  free(idx);
}

/* ---- perfopt plot of a 10M-row CSV --------------------------------------------------- */

static void bench_plot(const char *build) {
  char csv[512], out[512], perfopt[512];
  snprintf(csv, sizeof csv, "%s/bench_plot_10m.csv", build);
  snprintf(out, sizeof out, "%s/bench_plot_10m.svg", build);
  snprintf(perfopt, sizeof perfopt, "%s/perfopt", build);
  struct stat st;
  if (stat(csv, &st) != 0) {
    /* same content as mk/downsample.mk's rule: t,value,noise */
    FILE *f = fopen(csv, "w");
    if (!f) return;
    fprintf(f, "t,value,noise\n");
    double v = 100;
    for (long i = 0; i < 10000000; i++) {
      v += rnd() - 0.5;
      fprintf(f, "%ld,%.4f,%.3f\n", i, v, rnd());
    }
    fclose(f);
    stat(csv, &st);
  }
  double t0 = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    execl(perfopt, "perfopt", "plot", csv, "--x", "t", "--y", "value", "-o", out, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return;
  double secs = (now_ms() - t0) / 1e3;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bench_downsample: perfopt plot failed\n");
    return;
  }
  printf("BENCH plot_peak_rss_mib %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
  printf("BENCH plot_10m_rows_s %.3f s\n", secs);
  printf("BENCH plot_csv_mb_per_s %.0f MB/s\n", (double)st.st_size / 1e6 / secs);
}

int main(void) {
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  size_t n = getenv("BENCH_DS_N") ? (size_t)strtoull(getenv("BENCH_DS_N"), NULL, 10) : 100000000;
  int runs = getenv("BENCH_DS_RUNS") ? atoi(getenv("BENCH_DS_RUNS")) : 5;
  if (runs < 1) runs = 1;
  if (runs > 15) runs = 15;
  double *y = malloc(n * sizeof *y);
  if (!y) {
    fprintf(stderr, "bench_downsample: cannot allocate %zu points\n", n);
    return 1;
  }
  double v = 0;
  for (size_t i = 0; i < n; i++) {
    v += rnd() - 0.5;
    y[i] = v;
  }
  size_t cap = po_ds_capacity(PO_DS_M4, 2000);
  size_t *out = malloc(cap * sizeof *out);
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  double t[15];
  int64_t k = 0;
  for (int r = 0; r < runs; r++) t[r] = bench_sum(y, n);
  double scale = 1e8 / (double)n; /* report per 100M points */
  printf("BENCH ds_sum_100m_ms %.1f ms\n", median(t, runs) * scale);
  static const struct {
    po_ds_method m;
    const char *name;
  } methods[] = {{PO_DS_M4, "ds_m4_100m_ms"},
                 {PO_DS_MINMAX, "ds_minmax_100m_ms"},
                 {PO_DS_LTTB, "ds_lttb_100m_ms"},
                 {PO_DS_MINMAXLTTB, "ds_minmaxlttb_100m_ms"}};
  for (size_t m = 0; m < 4; m++) {
    for (int r = 0; r < runs; r++) t[r] = bench_method(methods[m].m, &in, 2000, out, cap, &k);
    printf("BENCH %s %.1f ms\n", methods[m].name, median(t, runs) * scale);
  }

  /* streaming M4: 2 x 2000 buckets, batches of 4096 points */
  po_ds_stream *s;
  if (po_ds_stream_create(4000, &s) == 0) {
    size_t sn = n < 50000000 ? n : 50000000;
    for (int r = 0; r < 3; r++) {
      po_ds_stream_reset(s);
      double t0 = now_ms();
      for (size_t i = 0; i < sn; i += 4096)
        po_ds_stream_push_y(s, y + i, sn - i < 4096 ? sn - i : 4096);
      t[r] = (now_ms() - t0) * 1e6 / (double)sn;
    }
    printf("BENCH ds_stream_m4_ns_per_point %.3f ns\n", median(t, 3));
    po_ds_stream_reset(s);
    double t0 = now_ms();
    size_t sn2 = 10000000;
    for (size_t i = 0; i < sn2 && i < n; i++) po_ds_stream_push(s, (double)i, y[i]);
    printf("BENCH ds_stream_push_one_ns_per_point %.3f ns\n", (now_ms() - t0) * 1e6 / (double)sn2);
    po_ds_stream_destroy(s);
  }
  free(y);
  free(out);

  if (!getenv("BENCH_DS_SKIP_PIXELS")) bench_pixels(build);
  if (!getenv("BENCH_DS_SKIP_PLOT")) bench_plot(build);
  return 0;
}
