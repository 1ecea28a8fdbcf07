/* perfopt plot DATA.csv [--x COL] [--y COL,...] [--width PX] [--height PX] [--method M]
 *                      [--title T] -o OUT.svg
 *
 * Plots a CSV of any size in bounded memory: one pass streams the rows through the CSV reader (one
 * fixed buffer) into one streaming M4 downsampler per y column (2 x width buckets, fixed memory).
 * The stream buckets by x value, not by arrival, so x may come in any order (the Binance file is
 * newest first). The kept points, sorted by x, are then reduced to the width with the chosen
 * method and drawn with the SVG line chart.
 *
 * Time columns: a date cell ("2021-06-09 23:00:00", "2017-08-17 05-AM", "2024-08-07",
 * ISO 8601 with T/Z) becomes Unix seconds (UTC); in a numeric column named like a timestamp (unix,
 * timestamp, time, ts, epoch) values above 1e11 are read as milliseconds, above 1e14 as
 * microseconds and above 1e17 as nanoseconds, so mixed units in one file line up. */
#include "cli.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "perfopt.h"

#define PLOT_MAX_Y 16

static void plot_usage(FILE *out) {
  fprintf(out,
          "usage: perfopt plot DATA.csv [--x COL] [--y COL[,COL...]] [--width PX] [--height PX]\n"
          "                    [--method m4|minmax|lttb|minmaxlttb] [--title T] -o OUT.svg\n"
          "\n"
          "Plots a CSV of any size with bounded memory (a streaming M4 per y column).\n"
          "  --x COL      x column, by header name or 0-based index (default: the row number);\n"
          "               dates and Unix timestamps (s or ms, mixed) become a time axis\n"
          "  --y COLS     comma-separated y columns (default: the first numeric column that is\n"
          "               not x and not named like a time stamp)\n"
          "  --width PX   chart width (default 1000), --height PX (default 400)\n"
          "  --method M   reduction to the width: m4 (default, pixel-exact), minmax, lttb,\n"
          "               minmaxlttb\n"
          "  --title T    chart title (default: the file name)\n"
          "  -o OUT.svg   output file (- for standard output)\n"
          "Rows whose selected cells are missing or not numbers, or whose x is not finite, are\n"
          "skipped and counted.\n");
}

/* ---- time parsing --------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int read_int(const char *s, size_t len, size_t *i, int digits, int *out) {
  int v = 0;
  for (int k = 0; k < digits; k++) {
    if (*i >= len || !isdigit((unsigned char)s[*i])) return -1;
    v = v * 10 + (s[(*i)++] - '0');
  }
  *out = v;
  return 0;
}

/* "YYYY-MM-DD", then optionally [ T]HH[:MM[:SS[.fff]]] or " HH-AM"/" HH-PM", optional Z. */
static int parse_date(const char *s, size_t len, double *out, void *user) {
  (void)user;
  size_t i = 0;
  int y, mo, d, h = 0, mi = 0, se = 0;
  double frac = 0;
  if (read_int(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || read_int(s, len, &i, 2, &mo) ||
      i >= len || s[i++] != '-' || read_int(s, len, &i, 2, &d))
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return -1;
  if (i < len && (s[i] == ' ' || s[i] == 'T')) {
    i++;
    if (read_int(s, len, &i, 2, &h)) return -1;
    if (i + 2 < len + 0 && s[i] == '-' && (s[i + 1] == 'A' || s[i + 1] == 'P') && i + 2 < len &&
        s[i + 2] == 'M') {
      if (h < 1 || h > 12) return -1;
      int pm = s[i + 1] == 'P';
      h = h % 12 + (pm ? 12 : 0);
      i += 3;
    } else if (i < len && s[i] == ':') {
      i++;
      if (read_int(s, len, &i, 2, &mi)) return -1;
      if (i < len && s[i] == ':') {
        i++;
        if (read_int(s, len, &i, 2, &se)) return -1;
        if (i < len && s[i] == '.') {
          double scale = 0.1;
          for (i++; i < len && isdigit((unsigned char)s[i]); i++, scale /= 10)
            frac += (s[i] - '0') * scale;
        }
      }
    }
    if (h > 23 || mi > 59 || se > 60) return -1;
  }
  if (i < len && s[i] == 'Z') i++;
  if (i != len) return -1;
  *out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + se + frac;
  return 0;
}

static int is_time_name(const char *name) {
  static const char *names[] = {"unix", "timestamp", "time",      "ts",     "epoch",
                                "date", "datetime",  "unix_time", "time_s", "t_seconds"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(name, names[i]) == 0) return 1;
  return 0;
}

/* Timestamps in ms/us/ns (mixed in one file) to seconds. */
static double normalize_epoch(double v) {
  double a = fabs(v);
  if (a > 1e17) return v / 1e9;
  if (a > 1e14) return v / 1e6;
  if (a > 1e11) return v / 1e3;
  return v;
}

/* ---- the command -------------------------------------------------------------------------- */

static int parse_method(const char *s, po_ds_method *m) {
  if (strcmp(s, "m4") == 0)
    *m = PO_DS_M4;
  else if (strcmp(s, "minmax") == 0)
    *m = PO_DS_MINMAX;
  else if (strcmp(s, "lttb") == 0)
    *m = PO_DS_LTTB;
  else if (strcmp(s, "minmaxlttb") == 0)
    *m = PO_DS_MINMAXLTTB;
  else
    return -1;
  return 0;
}

typedef struct {
  const char *path, *xcol, *ycols, *title, *out;
  int width, height;
  po_ds_method method;
} plot_args;

/* A column list: non-empty names separated by single commas. */
static int valid_list(const char *s) {
  size_t len = strlen(s);
  return len > 0 && s[0] != ',' && s[len - 1] != ',' && !strstr(s, ",,");
}

/* One option with its value (argv[*i] is the option). Returns 0, or 2 for a usage error. */
static int parse_option(int argc, char **argv, int *i, plot_args *a) {
  const char *o = argv[*i], *v = po_cli_value("plot", argc, argv, i);
  if (!v) return 2;
  long n;
  if (!strcmp(o, "--x")) {
    if (!*v) {
      po_cli_error("plot", "--x needs a column name or index, not ''");
      return 2;
    }
    a->xcol = v;
  } else if (!strcmp(o, "--y")) {
    if (!valid_list(v)) {
      po_cli_error("plot", "--y needs column names or indexes separated by commas, not '%s'", v);
      return 2;
    }
    a->ycols = v;
  } else if (!strcmp(o, "--title")) {
    a->title = v;
  } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
    if (!*v) {
      po_cli_error("plot", "%s needs a file name (or - for standard output)", o);
      return 2;
    }
    a->out = v;
  } else if (!strcmp(o, "--width") || !strcmp(o, "--height")) {
    int w = !strcmp(o, "--width");
    if (po_cli_parse_long("plot", o, v, w ? 120 : 60, w ? 10000 : 20000, "pixels", &n) != 0)
      return 2;
    *(w ? &a->width : &a->height) = (int)n;
  } else if (parse_method(v, &a->method)) {
    po_cli_error("plot", "unknown --method '%s' (m4, minmax, lttb, minmaxlttb)", v);
    return 2;
  }
  return 0;
}

static int parse_args(int argc, char **argv, plot_args *a) {
  static const char *const with_value[] = {"--x",      "--y",     "--title",  "-o",
                                           "--output", "--width", "--height", "--method"};
  memset(a, 0, sizeof *a);
  a->width = 1000;
  a->height = 400;
  a->method = PO_DS_M4;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
      plot_usage(stdout);
      return 1;
    }
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      known |= !strcmp(o, with_value[k]);
    if (known) {
      int rc = parse_option(argc, argv, &i, a);
      if (rc) return rc;
    } else if (o[0] == '-' && o[1] != '\0') {
      po_cli_error("plot", "unknown option '%s'", o);
      plot_usage(stderr);
      return 2;
    } else if (!a->path) {
      a->path = o;
    } else {
      po_cli_error("plot", "unexpected argument '%s'", o);
      return 2;
    }
  }
  if (!a->path || !a->out) {
    po_cli_error("plot", "%s", !a->path ? "missing DATA.csv" : "missing -o OUT.svg");
    plot_usage(stderr);
    return 2;
  }
  return 0;
}

typedef struct {
  size_t ny;
  size_t ycol[PLOT_MAX_Y];
  const char *yname[PLOT_MAX_Y];
  po_ds_stream *stream[PLOT_MAX_Y];
  int has_x, x_time;
  size_t xcol;
} plot_state;

/* ---- the default y column ----------------------------------------------------------------- */

#define SNIFF_BYTES 65536

/* The first SNIFF_BYTES of the file, cut after its last complete line (the whole file when it is
 * smaller). NULL when it cannot be read (the streaming pass then names the error). */
static char *read_head(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(SNIFF_BYTES);
  size_t n = buf ? fread(buf, 1, SNIFF_BYTES, f) : 0;
  int whole = n < SNIFF_BYTES;
  fclose(f);
  if (!buf) return NULL;
  if (!whole)
    while (n > 0 && buf[n - 1] != '\n') n--;
  *len = n;
  return buf;
}

/* Most of the column's cells in the sample are numbers. */
static int column_is_numeric(const char *sample, size_t len, size_t col) {
  po_csv *c;
  if (po_csv_create_mem(sample, len, NULL, &c, NULL, 0) != 0) return 0;
  double v;
  int numeric = 0;
  if (po_csv_select(c, &col, 1) == 0) {
    while (po_csv_next(c, &v) == 1) {
    }
    po_csv_stats cs;
    po_csv_get_stats(c, &cs);
    numeric = cs.rows > 0 && cs.rows >= cs.bad_rows;
  }
  po_csv_destroy(c);
  return numeric;
}

/* The first column that is neither x nor named like a time stamp and holds numbers in the file's
 * first 64 KiB (a text column such as `symbol` cannot be plotted). Without a usable sample, the
 * first such column whatever it holds. -1: none. */
static long default_y(po_csv *csv, const plot_args *a, const plot_state *st) {
  size_t len = 0, ncol = po_csv_column_count(csv);
  char *sample = read_head(a->path, &len);
  long first = -1;
  for (size_t c = 0; c < ncol; c++) {
    if ((st->has_x && c == st->xcol) || is_time_name(po_csv_column_name(csv, c))) continue;
    if (first < 0) first = (long)c;
    if (!sample) break;
    if (column_is_numeric(sample, len, c)) {
      free(sample);
      return (long)c;
    }
  }
  free(sample);
  return sample ? -1 : first;
}

/* ---- columns and rows ----------------------------------------------------------------------- */

static int resolve_columns(po_csv *csv, const plot_args *a, plot_state *st) {
  char err[512];
  if (a->xcol) {
    int xc = po_csv_find_column(csv, a->xcol, err, sizeof err);
    if (xc < 0) {
      po_cli_error("plot", "%s: %s", a->path, err);
      return 1;
    }
    st->has_x = 1;
    st->xcol = (size_t)xc;
    st->x_time = is_time_name(po_csv_column_name(csv, st->xcol));
  }
  if (a->ycols) {
    const char *p = a->ycols;
    while (*p) {
      const char *comma = strchr(p, ',');
      size_t len = comma ? (size_t)(comma - p) : strlen(p);
      char name[256];
      if (len >= sizeof name) len = sizeof name - 1;
      memcpy(name, p, len);
      name[len] = '\0';
      if (st->ny == PLOT_MAX_Y) {
        po_cli_error("plot", "at most %d y columns", PLOT_MAX_Y);
        return 2;
      }
      int yc = po_csv_find_column(csv, name, err, sizeof err);
      if (yc < 0) {
        po_cli_error("plot", "%s: %s", a->path, err);
        return 1;
      }
      st->ycol[st->ny++] = (size_t)yc;
      p = comma ? comma + 1 : p + len;
    }
  } else {
    long c = default_y(csv, a, st);
    if (c < 0) {
      po_cli_error("plot", "%s: no numeric column to plot (use --y)", a->path);
      return 1;
    }
    st->ycol[st->ny++] = (size_t)c;
  }
  for (size_t i = 0; i < st->ny; i++) {
    const char *n = po_csv_column_name(csv, st->ycol[i]);
    st->yname[i] = n && n[0] ? n : "y";
  }
  return 0;
}

/* What streaming saw beyond the CSV reader's own counts. */
typedef struct {
  double xmin, xmax;        /* over finite x */
  uint64_t nonfinite_x;     /* rows skipped: x is inf or nan */
  uint64_t first_nonfinite; /* its data row (1 = the first row after the header) */
  int any_finite_y;
} stream_result;

/* Streams every row into the per-column downsamplers. A row whose x is not finite is skipped
 * (counted); in a time column it is an error: no instant is infinite. */
static int stream_rows(po_csv *csv, const plot_args *a, plot_state *st, stream_result *res) {
  size_t cols[PLOT_MAX_Y + 1];
  size_t nsel = 0;
  if (st->has_x) cols[nsel++] = st->xcol;
  for (size_t i = 0; i < st->ny; i++) cols[nsel++] = st->ycol[i];
  if (po_csv_select(csv, cols, nsel) != 0) return 1;
  if (st->has_x) po_csv_set_parser(csv, 0, parse_date, NULL); /* dates become Unix seconds */
  for (size_t i = 0; i < st->ny; i++) {
    if (po_ds_stream_create(2 * (size_t)a->width, &st->stream[i]) != 0) {
      po_cli_error("plot", "out of memory");
      return 1;
    }
  }
  double v[PLOT_MAX_Y + 1];
  uint64_t row = 0;
  int r;
  memset(res, 0, sizeof *res);
  res->xmin = INFINITY;
  res->xmax = -INFINITY;
  while ((r = po_csv_next(csv, v)) == 1) {
    double x = (double)row++;
    if (st->has_x) {
      x = st->x_time ? normalize_epoch(v[0]) : v[0];
      if (!isfinite(x)) {
        po_csv_stats cs;
        po_csv_get_stats(csv, &cs);
        if (st->x_time) {
          po_cli_error("plot", "%s: data row %llu: the time column '%s' holds %g, not an instant",
                       a->path, (unsigned long long)(cs.rows + cs.bad_rows),
                       po_csv_column_name(csv, st->xcol), x);
          return 1;
        }
        if (res->nonfinite_x++ == 0) res->first_nonfinite = cs.rows + cs.bad_rows;
        continue;
      }
    }
    if (x < res->xmin) res->xmin = x;
    if (x > res->xmax) res->xmax = x;
    for (size_t i = 0; i < st->ny; i++) {
      double y = v[nsel - st->ny + i];
      res->any_finite_y |= isfinite(y);
      po_ds_stream_push(st->stream[i], x, y);
    }
  }
  if (r < 0) {
    po_cli_error("plot", "%s: read error: %s", a->path, po_strerror(r));
    return 1;
  }
  return 0;
}

/* Says what was skipped; an error when nothing is left to draw. */
static int check_rows(const po_csv *csv, const plot_args *a, const plot_state *st,
                      const stream_result *res) {
  po_csv_stats cs;
  po_csv_get_stats(csv, &cs);
  if (cs.bad_rows > 0)
    po_cli_error("plot",
                 "%s: skipped %llu of %llu rows with missing or non-numeric cells (first: line "
                 "%llu: %s)",
                 a->path, (unsigned long long)cs.bad_rows,
                 (unsigned long long)(cs.bad_rows + cs.rows), (unsigned long long)cs.first_bad_line,
                 cs.first_bad_reason);
  if (res->nonfinite_x > 0)
    po_cli_error("plot",
                 "%s: skipped %llu rows whose x ('%s') is infinite or nan (first: data row %llu)",
                 a->path, (unsigned long long)res->nonfinite_x, po_csv_column_name(csv, st->xcol),
                 (unsigned long long)res->first_nonfinite);
  if (cs.rows == 0) {
    po_cli_error("plot", "%s: no plottable rows", a->path);
    return 1;
  }
  if (cs.rows == res->nonfinite_x) {
    po_cli_error("plot", "%s: no row has a finite x in column '%s'", a->path,
                 po_csv_column_name(csv, st->xcol));
    return 1;
  }
  if (!res->any_finite_y) {
    po_cli_error("plot", "%s: the y column%s hold%s no finite number", a->path,
                 st->ny > 1 ? "s" : "", st->ny > 1 ? "" : "s");
    return 1;
  }
  return 0;
}

/* How the x axis is shown: calendar time as dates (UTC), else the column's own numbers. */
static void x_axis(const plot_state *st, const po_csv *csv, double xmin, double xmax,
                   po_unit *unit, char *label, size_t len) {
  *unit = PO_UNIT_NONE;
  if (!st->has_x) {
    snprintf(label, len, "row");
    return;
  }
  const char *name = po_csv_column_name(csv, st->xcol);
  if (!st->x_time && !(xmin > 1e8 && xmax < 5e9 && is_time_name(name))) {
    snprintf(label, len, "%s", name && name[0] ? name : "x");
    return;
  }
  *unit = PO_UNIT_DATE;
  snprintf(label, len, "date (UTC)");
}

/* Draws every stream's points, reduced to the width, into the chart. */
static int add_series(po_chart *chart, const plot_args *a, const plot_state *st,
                      const stream_result *res, po_csv *csv) {
  size_t maxp = po_ds_stream_max_points(st->stream[0]);
  size_t cap = po_ds_capacity(a->method, (size_t)a->width);
  double *px = malloc(maxp * sizeof *px), *py = malloc(maxp * sizeof *py);
  size_t *idx = malloc((cap > maxp ? cap : maxp) * sizeof *idx);
  int rc = 1;
  if (!px || !py || !idx) {
    po_cli_error("plot", "out of memory");
    goto out;
  }
  po_unit xunit = PO_UNIT_NONE;
  char xlabel[128], err[512];
  x_axis(st, csv, res->xmin, res->xmax, &xunit, xlabel, sizeof xlabel);
  po_chart_set_axis(chart, 'x', xlabel, xunit);
  if (st->ny == 1) po_chart_set_axis(chart, 'y', st->yname[0], PO_UNIT_NONE);
  for (size_t i = 0; i < st->ny; i++) {
    int64_t k = po_ds_stream_read(st->stream[i], px, py, NULL, maxp);
    if (k < 0) goto out;
    po_ds_input in = {0};
    in.x = px;
    in.y = py;
    in.n = (size_t)k;
    int64_t m = po_downsample(a->method, &in, (size_t)a->width, idx, cap, err, sizeof err);
    if (m < 0) {
      po_cli_error("plot", "%s", err);
      goto out;
    }
    int crc = po_chart_add_series_subset(chart, st->yname[i], PO_UNIT_NONE, px, py, idx, (size_t)m);
    if (crc) {
      po_cli_error("plot", "cannot add series '%s': %s", st->yname[i], po_strerror(crc));
      goto out;
    }
  }
  rc = 0;
out:
  free(px);
  free(py);
  free(idx);
  return rc;
}

static int write_chart(po_chart *chart, const char *out) {
  char err[512];
  if (po_cli_is_stdout(out)) {
    if (po_chart_write_svg(chart, stdout) == 0) return 0;
    return po_cli_stdout_error("plot");
  }
  if (po_chart_save_svg(chart, out, err, sizeof err) == 0) return 0;
  po_cli_error("plot", "%s", err);
  return 1;
}

int po_cli_plot(int argc, char **argv) {
  plot_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc == 1 ? 0 : rc;
  char err[512];
  po_csv *csv = NULL;
  if (po_csv_create(a.path, NULL, &csv, err, sizeof err) != 0) {
    po_cli_error("plot", "%s", err);
    return 1;
  }
  plot_state st;
  memset(&st, 0, sizeof st);
  stream_result res;
  po_chart *chart = NULL;
  rc = resolve_columns(csv, &a, &st);
  if (!rc) rc = stream_rows(csv, &a, &st, &res);
  if (!rc) rc = check_rows(csv, &a, &st, &res);
  if (rc) goto out;

  char title[512];
  const char *base = strrchr(a.path, '/');
  snprintf(title, sizeof title, "%s", a.title ? a.title : base ? base + 1 : a.path);
  chart = po_chart_create(PO_CHART_LINES, title);
  if (!chart) {
    po_cli_error("plot", "out of memory");
    rc = 1;
    goto out;
  }
  po_chart_set_size(chart, a.width, a.height);
  rc = add_series(chart, &a, &st, &res, csv);
  if (!rc) rc = write_chart(chart, a.out);
out:
  for (size_t i = 0; i < st.ny; i++) po_ds_stream_destroy(st.stream[i]);
  po_chart_destroy(chart);
  po_csv_destroy(csv);
  return rc;
}
