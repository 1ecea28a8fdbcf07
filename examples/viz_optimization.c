/* Memory-optimized visualization: the seed's second integration example, in C.
 *
 * A 10-million-point training-loss curve (decay, noise, plateaus and spikes; deterministic) is
 * drawn three ways with perfopt's SVG charts at the target size, each in a process of its own so
 * that the peak memory it reports is its own (time to build and write the SVG, peak RSS and how
 * much of it drawing added above the data, file size):
 *   as is      po_chart_set_reduction(c, 0): every point in the SVG;
 *   optimized  po_chart_optimize (the seed's optimize_visualization: M4 to the plot's pixel
 *              columns). The chart copies the whole series before reducing it, so its peak
 *              memory is still the data's size over again;
 *   streamed   the curve is made chunk by chunk into a po_ds_stream (fixed memory, M4 over
 *              2 x the width in buckets) as a training loop would push its loss, then charted and
 *              optimized: the whole curve never exists. Its buckets do not fall on the pixel
 *              columns, so its line is drawn slightly differently (the antialiasing of the band).
 *
 * The pictures are then rasterised at the target size with rsvg-convert and compared pixel by
 * pixel with the one drawn as it is (bench/pixel_diff.py: the share of drawn pixels that differ
 * in any channel). rsvg-convert needs tens of seconds of CPU per million points of a raw line, so
 * by default the comparison draws the same curve at 100,000 points (--compare-points; equal to
 * --points compares the big SVGs themselves). The chart places each point at the centre of its
 * pixel column, so the M4-reduced line covers the pixels of the full one: the expected difference
 * of "optimized" is 0 or a few pixels. examples/viz_optimization.py is the matplotlib counterpart.
 *
 * usage: viz_optimization [--points N] [--compare-points N] [--out DIR] [--width PX]
 *                         [--height PX]
 * Run from the repository root (it calls bench/pixel_diff.py). Output in DIR (default
 * demo-out/viz-c): curve_{raw,optimized,streamed}.svg, the reduced ones' .png,
 * compare_{raw,optimized,streamed}.svg and .png, viz_results.json; the side-by-side table on
 * stdout. Exit status 0, 1 on a failure (named), 2 on a usage error.
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
  double seconds_svg;     /* chart built, (optimized,) rendered and written */
  double seconds_png;     /* rsvg-convert to PNG at the target size (the parent's measure) */
  int64_t png_rss_bytes;  /* rsvg-convert's peak RSS */
  int64_t data_rss_bytes; /* peak RSS once the curve exists, before drawing */
  int64_t peak_rss_bytes; /* the process's peak RSS (getrusage of the child) */
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

/* splitmix64's finaliser: a counter-based generator, so that any stretch of the curve can be made
 * on its own (the streamed variant makes it chunk by chunk) with the same values. */
static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double uniform_at(uint64_t i) { /* [0, 1) */
  return (double)(mix64(i) >> 11) * 0x1.0p-53;
}

#define SPIKES 40

/* Loss over n steps, the shape examples/viz_optimization.py draws: exponential decay to 0.25,
 * Gaussian noise (sd 0.06, Box-Muller), a raised plateau where sin(t / (n/40)) > 0.95, and 40
 * spikes of +0.5..2.0 (divergences the optimizer recovers from). Fills y[0..count) with the
 * points from..from+count of the n-point curve. */
static void curve_fill(double *y, size_t from, size_t count, size_t n) {
  double dn = (double)n;
  for (size_t k = 0; k < count; k++) {
    uint64_t i = from + k;
    double t = (double)i, u = uniform_at(2 * i), v = uniform_at(2 * i + 1);
    double noise = sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
    y[k] =
        2.5 * exp(-t / (dn / 6)) + 0.25 + 0.06 * noise + (sin(t / (dn / 40)) > 0.95 ? 0.15 : 0.0);
  }
  for (uint64_t s = 0; s < SPIKES; s++) {
    size_t at = (size_t)(uniform_at(~s) * dn);
    if (at >= from && at - from < count) y[at - from] += 0.5 + 1.5 * uniform_at(~s - SPIKES);
  }
}

static double *training_curve(size_t n) {
  double *y = malloc(n * sizeof *y);
  if (y) curve_fill(y, 0, n, n);
  return y;
}

static int64_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

enum { AS_IS, OPTIMIZED, STREAMED, VARIANTS };
static const char *const variant_names[VARIANTS] = {"as is", "optimized", "streamed"};
static const char *const variant_keys[VARIANTS] = {"as_is", "optimized", "streamed"};

#define CHUNK 65536 /* the streamed variant's points in memory at once */

/* STREAMED: the curve is made chunk by chunk into a po_ds_stream (M4 over 2 x the width in
 * buckets, fixed memory), as a training loop would push its loss; the whole curve never exists.
 * x and y get the stream's points (free both); the count or -1. The time spent pushing is added to
 * *push_seconds (making the curve is not drawing it, as for the other variants). */
static int64_t stream_curve(const options *o, size_t points, double **x, double **y,
                            double *push_seconds) {
  po_ds_stream *st = NULL;
  double *chunk = malloc(CHUNK * sizeof *chunk);
  int64_t n = chunk && po_ds_stream_create(2 * (size_t)o->width, &st) == 0 ? 0 : -1;
  for (size_t from = 0; n == 0 && from < points; from += CHUNK) {
    size_t c = points - from < CHUNK ? points - from : CHUNK;
    curve_fill(chunk, from, c, points);
    double t0 = now_s();
    if (po_ds_stream_push_y(st, chunk, c) != 0) n = -1;
    *push_seconds += now_s() - t0;
  }
  free(chunk);
  size_t cap = st ? po_ds_stream_max_points(st) : 0;
  *x = malloc((cap ? cap : 1) * sizeof **x);
  *y = malloc((cap ? cap : 1) * sizeof **y);
  if (n == 0 && *x && *y)
    n = po_ds_stream_read(st, *x, *y, NULL, cap);
  else
    n = -1;
  po_ds_stream_destroy(st);
  return n;
}

/* The child's work: the curve, then one chart through the public API. */
static void draw_variant(const options *o, size_t points, int mode, const char *svg, variant *v) {
  double *x = NULL, *y = NULL, push_seconds = 0;
  int64_t n = (int64_t)points;
  if (mode != STREAMED) {
    y = training_curve(points);
    v->data_rss_bytes = max_rss_bytes();
  } else {
    v->data_rss_bytes = max_rss_bytes(); /* no data: the stream makes it as it goes */
    n = stream_curve(o, points, &x, &y, &push_seconds);
  }
  double t0 = now_s();
  if (!y || n < 0) {
    free(x), free(y);
    snprintf(v->error, sizeof v->error, "cannot allocate %zu points", points);
    return;
  }
  char title[96], err[128];
  snprintf(title, sizeof title, "training loss, %zu steps", points);
  po_chart *c = po_chart_create(PO_CHART_LINES, title);
  int rc = c ? 0 : PO_ENOMEM;
  if (rc == 0) rc = po_chart_set_size(c, o->width, o->height);
  if (rc == 0) rc = po_chart_set_axis(c, 'x', "step", PO_UNIT_COUNT);
  if (rc == 0) rc = po_chart_set_axis(c, 'y', "loss", PO_UNIT_NONE);
  if (rc == 0) rc = po_chart_add_series(c, "loss", PO_UNIT_NONE, x, y, (size_t)n);
  free(x), free(y); /* the chart holds its own copy */
  if (rc == 0) rc = mode != AS_IS ? po_chart_optimize(c, o->width) : po_chart_set_reduction(c, 0);
  if (rc == 0 && po_chart_save_svg(c, svg, err, sizeof err) != 0) {
    snprintf(v->error, sizeof v->error, "%s", err);
    rc = PO_EIO;
  } else if (rc) {
    snprintf(v->error, sizeof v->error, "chart: %s", po_strerror(rc));
  }
  po_chart_destroy(c);
  v->seconds_svg = now_s() - t0 + push_seconds;
  v->ok = rc == 0;
}

/* Runs draw_variant in a process of its own; its peak RSS comes from wait4. */
static int run_variant(const options *o, size_t points, int mode, const char *svg, variant *v) {
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
    draw_variant(o, points, mode, svg, &r);
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

static void row_seconds(const char *label, const variant *v, int per_variant_png) {
  printf("%-26s", label);
  for (int k = 0; k < VARIANTS; k++)
    printf("%12.3f s", per_variant_png ? v[k].seconds_png : v[k].seconds_svg);
  printf("\n");
}
static void row_mib(const char *label, const int64_t *b) {
  printf("%-26s", label);
  for (int k = 0; k < VARIANTS; k++) printf("%10.1f MiB", mib(b[k]));
  printf("\n");
}
static void row_kib(const char *label, const int64_t *b) {
  printf("%-26s", label);
  for (int k = 0; k < VARIANTS; k++) printf("%10.1f KiB", (double)b[k] / 1024);
  printf("\n");
}

/* The pictures compared: the variants of one curve, rasterised at the target size; each of the
 * reduced ones against the one drawn as it is. */
typedef struct comparison {
  size_t points;
  variant v[VARIANTS];
  double ratio[VARIANTS];
  long differ[VARIANTS], drawn[VARIANTS];
} comparison;

static void print_results(const options *o, const variant *v, const comparison *cmp) {
  int64_t b[VARIANTS];
  printf("%zu-point training curve at %d x %d px (the data: %.1f MiB of doubles)\n", o->points,
         o->width, o->height, mib((int64_t)(o->points * sizeof(double))));
  printf("%-26s", "");
  for (int k = 0; k < VARIANTS; k++) printf("%14s", variant_names[k]);
  printf("\n");
  row_seconds("build + write SVG", v, 0);
  for (int k = 0; k < VARIANTS; k++) b[k] = v[k].peak_rss_bytes;
  row_mib("peak RSS", b);
  for (int k = 0; k < VARIANTS; k++) b[k] = v[k].peak_rss_bytes - v[k].data_rss_bytes;
  row_mib("  above the data", b);
  for (int k = 0; k < VARIANTS; k++) b[k] = v[k].svg_bytes;
  row_kib("SVG file", b);
  if (!cmp->points) return;
  if (cmp->points != o->points)
    printf(
        "pictures compared on the same curve at %zu points (--compare-points: rsvg-convert's "
        "time grows with the points of a raw line)\n",
        cmp->points);
  row_seconds("rasterise (rsvg-convert)", cmp->v, 1);
  for (int k = 0; k < VARIANTS; k++) b[k] = cmp->v[k].png_rss_bytes;
  row_mib("  its peak RSS", b);
  for (int k = 0; k < VARIANTS; k++) b[k] = cmp->v[k].png_bytes;
  row_kib("PNG file", b);
  for (int k = OPTIMIZED; k < VARIANTS; k++)
    printf("PNG pixels at %d x %d, %s against as is: %ld of %ld drawn pixels differ (ratio %.6f)\n",
           o->width, o->height, variant_names[k], cmp->differ[k], cmp->drawn[k], cmp->ratio[k]);
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

static void json_pixels(FILE *f, const char *name, const comparison *cmp, int k, const char *end) {
  fprintf(f, "    \"%s\": {\"differ\": %ld, \"drawn\": %ld, \"ratio\": %.6f}%s\n", name,
          cmp->differ[k], cmp->drawn[k], cmp->ratio[k], end);
}

static int write_json(const char *path, const options *o, const variant *v, const comparison *cmp) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "{\n  \"points\": %zu,\n  \"width\": %d,\n  \"height\": %d,\n  \"drawn\": {\n",
          o->points, o->width, o->height);
  for (int k = 0; k < VARIANTS; k++)
    json_variant(f, variant_keys[k], &v[k], k + 1 < VARIANTS ? "," : "");
  fprintf(f, "  },\n  \"compared\": {\n    \"points\": %zu,\n", cmp->points);
  for (int k = 0; k < VARIANTS; k++) json_variant(f, variant_keys[k], &cmp->v[k], ",");
  json_pixels(f, "pixels", cmp, OPTIMIZED, ",");
  json_pixels(f, "pixels_streamed", cmp, STREAMED, "");
  fprintf(f, "  }\n}\n");
  int bad = ferror(f);
  return fclose(f) == 0 && !bad ? 0 : -1;
}

static int usage(const char *msg, const char *arg) {
  if (msg) fprintf(stderr, "viz_optimization: %s%s\n", msg, arg ? arg : "");
  fprintf(stderr,
          "usage: viz_optimization [--points N] [--compare-points N] [--out DIR] "
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

static void variant_path(char *buf, size_t len, const char *dir, int same, int k, const char *ext) {
  static const char *const files[VARIANTS] = {"raw", "optimized", "streamed"};
  char name[64];
  snprintf(name, sizeof name, "%s_%s.%s", same ? "curve" : "compare", files[k], ext);
  path_in(buf, len, dir, name);
}

/* Draws and rasterises the variants of the comparison curve (the main curve's SVGs when it is
 * the same one) and compares the reduced ones' PNGs with the raw one's. */
static int compare(const options *o, comparison *cmp) {
  char svg[VARIANTS][4096], png[VARIANTS][4096];
  int same = cmp->points == o->points;
  for (int k = 0; k < VARIANTS; k++) {
    variant_path(svg[k], sizeof svg[k], o->out, same, k, "svg");
    variant_path(png[k], sizeof png[k], o->out, same, k, "png");
    if (!same && run_variant(o, cmp->points, k, svg[k], &cmp->v[k]) != 0) {
      fprintf(stderr, "viz_optimization: %s\n", cmp->v[k].error);
      return -1;
    }
    if (rasterise(o, svg[k], png[k], &cmp->v[k]) != 0) {
      fprintf(stderr, "viz_optimization: rsvg-convert failed on %s\n", svg[k]);
      return -1;
    }
  }
  for (int k = OPTIMIZED; k < VARIANTS; k++)
    if (pixel_diff(png[AS_IS], png[k], &cmp->ratio[k], &cmp->differ[k], &cmp->drawn[k]) != 0) {
      fprintf(stderr,
              "viz_optimization: python3 bench/pixel_diff.py failed (run the example "
              "from the repository root)\n");
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
  char svg[VARIANTS][4096], json[4096];
  for (int k = 0; k < VARIANTS; k++) variant_path(svg[k], sizeof svg[k], o.out, 1, k, "svg");
  path_in(json, sizeof json, o.out, "viz_results.json");
  if (!svg[AS_IS][0] || !svg[STREAMED][0] || !json[0]) return usage("--out: path too long", NULL);

  variant v[VARIANTS];
  for (int k = 0; k < VARIANTS; k++)
    if (run_variant(&o, o.points, k, svg[k], &v[k]) != 0) {
      fprintf(stderr, "viz_optimization: %s\n", v[k].error);
      return 1;
    }
  comparison cmp;
  memset(&cmp, 0, sizeof cmp);
  cmp.points = o.compare_points;
  if (cmp.points == o.points) memcpy(cmp.v, v, sizeof v);
  if (cmp.points && compare(&o, &cmp) != 0) return 1;
  if (cmp.points == o.points) memcpy(v, cmp.v, sizeof v);
  /* the big curve's reduced pictures, for looking at (the raw one would take minutes) */
  for (int k = OPTIMIZED; cmp.points != o.points && k < VARIANTS; k++) {
    char png[4096];
    variant_path(png, sizeof png, o.out, 1, k, "png");
    if (rasterise(&o, svg[k], png, &v[k]) != 0) {
      fprintf(stderr, "viz_optimization: rsvg-convert failed on %s\n", svg[k]);
      return 1;
    }
  }
  print_results(&o, v, &cmp);
  if (write_json(json, &o, v, &cmp) != 0) {
    fprintf(stderr, "viz_optimization: cannot write %s: %s\n", json, strerror(errno));
    return 1;
  }
  return 0;
}
