/* Memory-optimized visualization: the seed's second integration example, in C.
 *
 * A 10-million-point training-loss curve (decay, noise, plateaus and spikes; deterministic) is
 * drawn twice with perfopt's SVG charts at the target size: as it is (po_chart_set_reduction(c, 0):
 * every point in the SVG) and through po_chart_optimize (the seed's optimize_visualization: M4 to
 * the plot's pixel columns). Each variant runs in a process of its own, so that the peak memory
 * it reports is its own: time to build and write the SVG, peak RSS (and how much of it drawing
 * added above the data), file size.
 *
 * The pictures are then rasterised at the target size with rsvg-convert and compared pixel by
 * pixel (bench/pixel_diff.py: the share of drawn pixels that differ). rsvg-convert needs tens of
 * seconds of CPU per million points of a raw line (measured: about 40 s for 1M on the 2-core
 * development machine), so by default the comparison draws the same curve at 100,000 points
 * (--compare-points; equal to --points compares the big SVGs themselves). The chart places each
 * point at the centre of its pixel column, so the M4-reduced line covers exactly the pixels of
 * the full one: the expected difference is 0. examples/viz_optimization.py is the matplotlib
 * counterpart.
 *
 * usage: viz_optimization [--points N] [--compare-points N] [--out DIR] [--width PX]
 *                         [--height PX]
 * Run from the repository root (it calls bench/pixel_diff.py). Output in DIR (default
 * demo-out/viz-c): curve_raw.svg, curve_optimized.svg and .png, compare_raw/compare_optimized .svg
 * and .png, viz_results.json; the side-by-side table on stdout. Exit status 0, 1 on a failure
 * (named), 2 on a usage error.
 */
#include "perfopt.h"

#include <errno.h>
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

typedef struct options {
  size_t points;         /* the curve of the side-by-side table */
  size_t compare_points; /* the curve whose pictures are compared (0: none) */
  const char *out;
  int width, height;
} options;

/* What one variant measured, sent from its process to the parent through a pipe. */
typedef struct variant {
  int ok;
  double seconds_svg;      /* chart built, (optimized,) rendered and written */
  double seconds_png;      /* rsvg-convert to PNG at the target size (the parent's measure) */
  int64_t png_rss_bytes;   /* rsvg-convert's peak RSS */
  int64_t data_rss_bytes;  /* peak RSS once the curve exists, before drawing */
  int64_t peak_rss_bytes;  /* the process's peak RSS (getrusage of the child) */
  int64_t svg_bytes, png_bytes;
  char error[160];
} variant;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int64_t max_rss_bytes(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_maxrss * 1024 : -1;
}

/* splitmix64: a fixed seed gives the same curve on every machine. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double rng_uniform(void) { /* [0, 1) */
  return (double)(rng_next() >> 11) * 0x1.0p-53;
}
static double rng_normal(void) { /* Box-Muller; one value per call keeps it simple */
  double u = rng_uniform(), v = rng_uniform();
  return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* Loss over n steps, the shape examples/viz_optimization.py draws: exponential decay to 0.25,
 * Gaussian noise (sd 0.06), a raised plateau where sin(t / (n/40)) > 0.95, and 40 spikes of
 * +0.5..2.0 (divergences the optimizer recovers from). */
static double *training_curve(size_t n) {
  double *y = malloc(n * sizeof *y);
  if (!y) return NULL;
  rng_state = 0x9E3779B97F4A7C15ull * 7;
  double dn = (double)n;
  for (size_t i = 0; i < n; i++) {
    double t = (double)i;
    y[i] = 2.5 * exp(-t / (dn / 6)) + 0.25 + 0.06 * rng_normal() +
           (sin(t / (dn / 40)) > 0.95 ? 0.15 : 0.0);
  }
  for (int k = 0; k < 40; k++) {
    size_t at = (size_t)(rng_uniform() * dn);
    y[at] += 0.5 + 1.5 * rng_uniform();
  }
  return y;
}

static int64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* The child's work: the curve, then one chart through the public API. */
static void draw_variant(const options *o, size_t points, int optimize, const char *svg,
                         variant *v) {
  double *y = training_curve(points);
  if (!y) {
    snprintf(v->error, sizeof v->error, "cannot allocate %zu points", points);
    return;
  }
  v->data_rss_bytes = max_rss_bytes();
  double t0 = now_s();
  char title[96], err[128];
  snprintf(title, sizeof title, "training loss, %zu steps", points);
  po_chart *c = po_chart_create(PO_CHART_LINES, title);
  int rc = c ? 0 : PO_ENOMEM;
  if (rc == 0) rc = po_chart_set_size(c, o->width, o->height);
  if (rc == 0) rc = po_chart_set_axis(c, 'x', "step", PO_UNIT_COUNT);
  if (rc == 0) rc = po_chart_set_axis(c, 'y', "loss", PO_UNIT_NONE);
  if (rc == 0) rc = po_chart_add_series(c, "loss", PO_UNIT_NONE, NULL, y, points);
  free(y); /* the chart holds its own copy */
  if (rc == 0) rc = optimize ? po_chart_optimize(c, o->width) : po_chart_set_reduction(c, 0);
  if (rc == 0 && po_chart_save_svg(c, svg, err, sizeof err) != 0) {
    snprintf(v->error, sizeof v->error, "%s", err);
    rc = PO_EIO;
  } else if (rc) {
    snprintf(v->error, sizeof v->error, "chart: %s", po_strerror(rc));
  }
  po_chart_destroy(c);
  v->seconds_svg = now_s() - t0;
  v->ok = rc == 0;
}

/* Runs draw_variant in a process of its own; its peak RSS comes from wait4. */
static int run_variant(const options *o, size_t points, int optimize, const char *svg,
                       variant *v) {
  memset(v, 0, sizeof *v);
  int fd[2];
  if (pipe(fd) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fd[0]);
    variant r;
    memset(&r, 0, sizeof r);
    draw_variant(o, points, optimize, svg, &r);
    ssize_t w = write(fd[1], &r, sizeof r);
    _exit(w == (ssize_t)sizeof r && r.ok ? 0 : 1);
  }
  close(fd[1]);
  ssize_t got = read(fd[0], v, sizeof *v);
  close(fd[0]);
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return -1;
  if (got != (ssize_t)sizeof *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->error, sizeof v->error, "the drawing process died (wait status %d)", status);
    return -1;
  }
  v->peak_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
  v->svg_bytes = file_size(svg);
  return v->ok ? 0 : -1;
}

/* rsvg-convert at the target size: the seconds and peak RSS it took go into *v. */
static int rasterise(const options *o, const char *svg, const char *png, variant *v) {
  char w[16], h[16];
  snprintf(w, sizeof w, "%d", o->width);
  snprintf(h, sizeof h, "%d", o->height);
  double t0 = now_s();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    /* --unlimited: the raw SVG's path attribute is beyond libxml2's default limits */
    execlp("rsvg-convert", "rsvg-convert", "--unlimited", "-w", w, "-h", h, "-f", "png", "-o", png,
           svg, (char *)NULL);
    fprintf(stderr, "viz_optimization: cannot run rsvg-convert: %s (Debian: librsvg2-bin)\n",
            strerror(errno));
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return -1;
  v->seconds_png = now_s() - t0;
  v->png_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
  v->png_bytes = file_size(png);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* bench/pixel_diff.py prints "RATIO DIFFER DRAWN": the share of drawn (non-white) pixels that
 * differ in any channel. */
static int pixel_diff(const char *a, const char *b, double *ratio, long *differ, long *drawn) {
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "python3 bench/pixel_diff.py '%s' '%s'", a, b);
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  int n = fscanf(p, "%lf %ld %ld", ratio, differ, drawn);
  int rc = pclose(p);
  return n == 3 && rc == 0 ? 0 : -1;
}

static double mib(int64_t b) {
  return (double)b / 1048576.0;
}

static void row_seconds(const char *label, double a, double b) {
  printf("%-30s%12.3f s %12.3f s\n", label, a, b);
}
static void row_mib(const char *label, int64_t a, int64_t b) {
  printf("%-30s%10.1f MiB %10.1f MiB\n", label, mib(a), mib(b));
}

/* The pictures compared: both variants of one curve, rasterised at the target size. */
typedef struct comparison {
  size_t points;
  variant raw, opt;
  double ratio;
  long differ, drawn;
} comparison;

static void print_results(const options *o, const variant *raw, const variant *opt,
                          const comparison *cmp) {
  printf("%zu-point training curve at %d x %d px (the data: %.1f MiB of doubles)\n", o->points,
         o->width, o->height, mib((int64_t)(o->points * sizeof(double))));
  printf("%-30s%14s %14s\n", "", "as is", "optimized");
  row_seconds("build + write SVG", raw->seconds_svg, opt->seconds_svg);
  row_mib("peak RSS", raw->peak_rss_bytes, opt->peak_rss_bytes);
  row_mib("  above the data", raw->peak_rss_bytes - raw->data_rss_bytes,
          opt->peak_rss_bytes - opt->data_rss_bytes);
  printf("%-30s%10.1f KiB %10.1f KiB\n", "SVG file", (double)raw->svg_bytes / 1024,
         (double)opt->svg_bytes / 1024);
  if (cmp->points != o->points)
    printf("%-30s%14s %12.3f s\n", "rasterise (rsvg-convert)", "-", opt->seconds_png);
  if (!cmp->points) return;
  if (cmp->points != o->points)
    printf("pictures compared on the same curve at %zu points (--compare-points: rsvg-convert's "
           "time grows with the points of a raw line)\n",
           cmp->points);
  row_seconds("rasterise (rsvg-convert)", cmp->raw.seconds_png, cmp->opt.seconds_png);
  row_mib("  its peak RSS", cmp->raw.png_rss_bytes, cmp->opt.png_rss_bytes);
  printf("%-30s%10.1f KiB %10.1f KiB\n", "PNG file", (double)cmp->raw.png_bytes / 1024,
         (double)cmp->opt.png_bytes / 1024);
  printf("PNG pixels at %d x %d: %ld of %ld drawn pixels differ (ratio %.6f)\n", o->width,
         o->height, cmp->differ, cmp->drawn, cmp->ratio);
}

static void json_variant(FILE *f, const char *name, const variant *v, const char *end) {
  fprintf(f,
          "    \"%s\": {\"seconds_svg\": %.6f, \"peak_rss_bytes\": %lld, \"data_rss_bytes\": %lld, "
          "\"svg_bytes\": %lld, \"seconds_png\": %.6f, \"png_rss_bytes\": %lld, "
          "\"png_bytes\": %lld}%s\n",
          name, v->seconds_svg, (long long)v->peak_rss_bytes, (long long)v->data_rss_bytes,
          (long long)v->svg_bytes, v->seconds_png, (long long)v->png_rss_bytes,
          (long long)v->png_bytes, end);
}

static int write_json(const char *path, const options *o, const variant *raw, const variant *opt,
                      const comparison *cmp) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "{\n  \"points\": %zu,\n  \"width\": %d,\n  \"height\": %d,\n  \"drawn\": {\n",
          o->points, o->width, o->height);
  json_variant(f, "as_is", raw, ",");
  json_variant(f, "optimized", opt, "");
  fprintf(f, "  },\n  \"compared\": {\n    \"points\": %zu,\n", cmp->points);
  json_variant(f, "as_is", &cmp->raw, ",");
  json_variant(f, "optimized", &cmp->opt, ",");
  fprintf(f, "    \"pixels\": {\"differ\": %ld, \"drawn\": %ld, \"ratio\": %.6f}\n  }\n}\n",
          cmp->differ, cmp->drawn, cmp->ratio);
  int bad = ferror(f);
  return fclose(f) == 0 && !bad ? 0 : -1;
}

static int usage(const char *msg, const char *arg) {
  if (msg) fprintf(stderr, "viz_optimization: %s%s\n", msg, arg ? arg : "");
  fprintf(stderr, "usage: viz_optimization [--points N] [--compare-points N] [--out DIR] "
                  "[--width PX] [--height PX]\n");
  return 2;
}

static int parse_number(const char *s, unsigned long long lo, unsigned long long hi,
                        unsigned long long *out) {
  if (!s || *s < '0' || *s > '9') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Returns 0 to go on, 2 on a usage error, 1 after --help. */
static int parse_args(int argc, char **argv, options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long long n;
    if (!strcmp(a, "--points")) {
      if (parse_number(v, 3, 200000000, &n)) return usage("--points must be 3..200000000: ", v);
      o->points = (size_t)n, i++;
    } else if (!strcmp(a, "--compare-points")) {
      if (parse_number(v, 0, 200000000, &n) || (n && n < 3))
        return usage("--compare-points must be 0 (no comparison) or 3..200000000: ", v);
      o->compare_points = (size_t)n, i++;
    } else if (!strcmp(a, "--width")) {
      if (parse_number(v, 120, 10000, &n)) return usage("--width must be 120..10000: ", v);
      o->width = (int)n, i++;
    } else if (!strcmp(a, "--height")) {
      if (parse_number(v, 60, 20000, &n)) return usage("--height must be 60..20000: ", v);
      o->height = (int)n, i++;
    } else if (!strcmp(a, "--out")) {
      if (!v || !*v) return usage("--out needs a directory", NULL);
      o->out = v, i++;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(NULL, NULL);
      return 1;
    } else {
      return usage("unknown option ", a);
    }
  }
  if (o->compare_points > o->points) o->compare_points = o->points;
  return 0;
}

static void path_in(char *buf, size_t len, const char *dir, const char *name) {
  if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len) buf[0] = '\0';
}

/* Draws and rasterises both variants of the comparison curve (the main curve's SVGs when it is
 * the same one) and compares the PNGs. */
static int compare(const options *o, comparison *cmp) {
  char raw_svg[4096], opt_svg[4096], raw_png[4096], opt_png[4096];
  int same = cmp->points == o->points;
  path_in(raw_svg, sizeof raw_svg, o->out, same ? "curve_raw.svg" : "compare_raw.svg");
  path_in(opt_svg, sizeof opt_svg, o->out, same ? "curve_optimized.svg" : "compare_optimized.svg");
  path_in(raw_png, sizeof raw_png, o->out, same ? "curve_raw.png" : "compare_raw.png");
  path_in(opt_png, sizeof opt_png, o->out, same ? "curve_optimized.png" : "compare_optimized.png");
  if (!same && (run_variant(o, cmp->points, 0, raw_svg, &cmp->raw) != 0 ||
                run_variant(o, cmp->points, 1, opt_svg, &cmp->opt) != 0)) {
    fprintf(stderr, "viz_optimization: %s\n", cmp->raw.ok ? cmp->opt.error : cmp->raw.error);
    return -1;
  }
  if (rasterise(o, raw_svg, raw_png, &cmp->raw) != 0 ||
      rasterise(o, opt_svg, opt_png, &cmp->opt) != 0) {
    fprintf(stderr, "viz_optimization: rsvg-convert failed on %s\n",
            cmp->raw.png_bytes > 0 ? opt_svg : raw_svg);
    return -1;
  }
  if (pixel_diff(raw_png, opt_png, &cmp->ratio, &cmp->differ, &cmp->drawn) != 0) {
    fprintf(stderr, "viz_optimization: python3 bench/pixel_diff.py failed (run the example from "
                    "the repository root)\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  options o = {10000000, 100000, "demo-out/viz-c", 800, 300};
  int prc = parse_args(argc, argv, &o);
  if (prc) return prc == 1 ? 0 : prc;
  if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "viz_optimization: cannot create %s: %s\n", o.out, strerror(errno));
    return 1;
  }
  char raw_svg[4096], opt_svg[4096], json[4096];
  path_in(raw_svg, sizeof raw_svg, o.out, "curve_raw.svg");
  path_in(opt_svg, sizeof opt_svg, o.out, "curve_optimized.svg");
  path_in(json, sizeof json, o.out, "viz_results.json");
  if (!raw_svg[0] || !opt_svg[0] || !json[0]) return usage("--out: path too long", NULL);

  variant raw, opt;
  if (run_variant(&o, o.points, 0, raw_svg, &raw) != 0 ||
      run_variant(&o, o.points, 1, opt_svg, &opt) != 0) {
    fprintf(stderr, "viz_optimization: %s\n", raw.ok ? opt.error : raw.error);
    return 1;
  }
  comparison cmp;
  memset(&cmp, 0, sizeof cmp);
  cmp.points = o.compare_points;
  if (cmp.points) {
    if (cmp.points == o.points) cmp.raw = raw, cmp.opt = opt;
    if (compare(&o, &cmp) != 0) return 1;
    if (cmp.points == o.points) raw = cmp.raw, opt = cmp.opt;
  }
  char opt_png[4096];
  path_in(opt_png, sizeof opt_png, o.out, "curve_optimized.png");
  if (cmp.points != o.points && rasterise(&o, opt_svg, opt_png, &opt) != 0) {
    fprintf(stderr, "viz_optimization: rsvg-convert failed on %s\n", opt_svg);
    return 1;
  }
  print_results(&o, &raw, &opt, &cmp);
  if (write_json(json, &o, &raw, &opt, &cmp) != 0) {
    fprintf(stderr, "viz_optimization: cannot write %s: %s\n", json, strerror(errno));
    return 1;
  }
  return 0;
}
