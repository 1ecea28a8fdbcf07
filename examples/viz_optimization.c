/* Memory-optimized visualization in C: the seed's second integration example, with perfopt's own
 * SVG charts (examples/viz_optimization.py is the matplotlib version).
 *
 * A 10-million-point training-loss curve, drawn
 *   as is:      a plain SVG polyline of every point (what a program without perfopt writes);
 *   optimized:  po_ds_m4 picks the points 800 pixel columns can show (indices, no copy), a
 *               po_chart line chart takes only those (po_chart_add_series_subset) and
 *               po_chart_optimize fits them to its plot area.
 * For each: time, the process's peak memory (the kernel's high-water mark, reset before each
 * step) and the file size. Then the pixels: the every-point polyline and the M4-reduced polyline
 * (points at the centre of their po_ds_column, as po_chart draws them) are rasterized at the
 * target size with rsvg-convert and compared with bench/pixel_diff.py, on a 100,000-point curve of
 * the same shape (rsvg-convert needs minutes per million points); skipped when either tool is
 * missing.
 *
 * usage: viz_optimization [POINTS] [OUT_DIR]   (default 10000000, demo-out/viz)
 */
#include "perfopt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WIDTH 800
#define HEIGHT 300

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resets the peak-RSS mark (VmHWM); a kernel that refuses leaves the process-wide peak. */
static void reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f) {
    fputs("5", f);
    fclose(f);
  }
}

static double peak_mib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6)) kib = strtol(line + 6, NULL, 10);
  if (f) fclose(f);
  return (double)kib / 1024.0;
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Loss over n steps: decay, noise (a fixed LCG), plateaus and a few spikes. */
static void training_curve(double *x, double *y, size_t n) {
  uint64_t s = 7;
  for (size_t i = 0; i < n; i++) {
    double u = 0;
    for (int k = 0; k < 4; k++) { /* roughly normal: a sum of uniforms */
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      u += (double)(s >> 11) / 9007199254740992.0;
    }
    double t = (double)i;
    x[i] = t;
    y[i] = 2.5 * exp(-t / ((double)n / 6)) + 0.25 + 0.06 * (u - 2.0) * 1.7;
    if (sin(t / ((double)n / 40)) > 0.95) y[i] += 0.15;
    if (i % (n / 40 + 1) == n / 97) y[i] += 1.2;
  }
}

/* A bare SVG polyline over WIDTH x HEIGHT: each point at the centre of its po_ds_column, y scaled
 * to [lo, hi]. idx NULL: every point. */
static int write_polyline(const char *path, const double *x, const double *y, size_t n,
                          const size_t *idx, size_t k, double lo, double hi) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'>"
             "<rect width='100%%' height='100%%' fill='white'/><polyline fill='none' "
             "stroke='black' stroke-width='1' shape-rendering='crispEdges' stroke-linejoin='round' "
             "stroke-linecap='round' points='", WIDTH, HEIGHT);
  size_t m = idx ? k : n;
  for (size_t j = 0; j < m; j++) {
    size_t i = idx ? idx[j] : j;
    double px = (double)po_ds_column(x[i], x[0], x[n - 1], WIDTH) + 0.5;
    double py = (double)HEIGHT - 5 - (y[i] - lo) / (hi - lo) * (HEIGHT - 10);
    fprintf(f, "%.1f,%.2f ", px, py);
  }
  fputs("'/></svg>\n", f);
  return fclose(f) == 0 ? 0 : -1;
}

static void row(const char *what, double t, double peak, long bytes) {
  printf("%-12s %8.2f s %10.1f MiB peak RSS %12.1f KiB\n", what, t, peak, (double)bytes / 1024.0);
}

static int chart(const char *path, const double *x, const double *y, const size_t *idx, size_t k) {
  po_chart *c = po_chart_create(PO_CHART_LINES, "training loss");
  char err[256] = "";
  int rc = c ? po_chart_set_size(c, WIDTH, HEIGHT) : PO_ENOMEM;
  if (!rc) rc = po_chart_set_axis(c, 'x', "step", PO_UNIT_COUNT);
  if (!rc) rc = po_chart_add_series_subset(c, "loss", PO_UNIT_NONE, x, y, idx, k);
  if (!rc) rc = po_chart_optimize(c, WIDTH);
  if (!rc) rc = po_chart_save_svg(c, path, err, sizeof err);
  if (rc) fprintf(stderr, "viz_optimization: chart: %s %s\n", po_strerror(rc), err);
  po_chart_destroy(c);
  return rc;
}

/* Rasterizes both SVGs and prints their pixel difference (bench/pixel_diff.py). */
static void compare_pixels(const char *dir, size_t n) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "rsvg-convert --unlimited -o %s/raw.png %s/raw_polyline.svg && "
           "rsvg-convert --unlimited -o %s/m4.png %s/m4_polyline.svg",
           dir, dir, dir, dir);
  if (system(cmd) != 0) {
    printf("pixels: skipped (rsvg-convert missing: apt-get install librsvg2-bin)\n");
    return;
  }
  snprintf(cmd, sizeof cmd, "python3 bench/pixel_diff.py %s/raw.png %s/m4.png", dir, dir);
  FILE *p = popen(cmd, "r");
  double ratio = -1;
  unsigned long differ = 0, drawn = 0;
  if (!p || fscanf(p, "%lf %lu %lu", &ratio, &differ, &drawn) != 3) ratio = -1;
  if (p && pclose(p) != 0) ratio = -1;
  if (ratio < 0)
    printf("pixels: skipped (python3 bench/pixel_diff.py failed: run from the repository)\n");
  else
    printf("pixels at %d x %d (%zu points): every-point and M4 polylines differ in %lu of %lu "
           "drawn pixels (%.6f)\n", WIDTH, HEIGHT, n, differ, drawn, ratio);
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000000;
  const char *dir = argc > 2 ? argv[2] : "demo-out/viz";
  if (n < 16) {
    fprintf(stderr, "usage: viz_optimization [POINTS >= 16] [OUT_DIR]\n");
    return 2;
  }
  char cmd[512], path[512];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd) != 0) return 1;
  double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  if (!x || !y) return 1;
  training_curve(x, y, n);
  double lo = y[0], hi = y[0];
  for (size_t i = 1; i < n; i++) lo = y[i] < lo ? y[i] : lo, hi = y[i] > hi ? y[i] : hi;
  printf("%zu-point training curve, %d x %d px (data: %.0f MiB)\n", n, WIDTH, HEIGHT,
         (double)(2 * n * sizeof(double)) / 1048576.0);

  reset_peak();
  double t0 = now();
  snprintf(path, sizeof path, "%s/raw_polyline.svg", dir);
  if (write_polyline(path, x, y, n, NULL, 0, lo, hi) != 0) return 1;
  row("as is", now() - t0, peak_mib(), file_size(path));
  unlink(path); /* 10M points: over 100 MB */

  reset_peak();
  t0 = now();
  size_t cap = po_ds_capacity(PO_DS_M4, WIDTH);
  size_t *idx = malloc(cap * sizeof *idx);
  po_ds_input in = {.x = x, .y = y, .n = n};
  char err[256];
  int64_t k = idx ? po_ds_m4(&in, WIDTH, idx, cap, err, sizeof err) : PO_ENOMEM;
  if (k < 0) {
    fprintf(stderr, "viz_optimization: M4: %s\n", po_strerror((int)k));
    return 1;
  }
  snprintf(path, sizeof path, "%s/chart.svg", dir);
  if (chart(path, x, y, idx, (size_t)k) != 0) return 1;
  row("optimized", now() - t0, peak_mib(), file_size(path));
  printf("M4 keeps %lld of %zu points; the chart is %s\n", (long long)k, n, path);

  /* Pixels, on a smaller curve of the same shape. */
  size_t np = n < 100000 ? n : 100000;
  training_curve(x, y, np);
  lo = hi = y[0];
  for (size_t i = 1; i < np; i++) lo = y[i] < lo ? y[i] : lo, hi = y[i] > hi ? y[i] : hi;
  in.n = np;
  k = po_ds_m4(&in, WIDTH, idx, cap, err, sizeof err);
  snprintf(path, sizeof path, "%s/raw_polyline.svg", dir);
  if (k < 0 || write_polyline(path, x, y, np, NULL, 0, lo, hi) != 0) return 1;
  snprintf(path, sizeof path, "%s/m4_polyline.svg", dir);
  if (write_polyline(path, x, y, np, idx, (size_t)k, lo, hi) != 0) return 1;
  compare_pixels(dir, np);
  free(idx);
  free(x);
  free(y);
  return 0;
}
