/* Axis ticks and unit-aware number formatting for the charts.
 *
 * Ticks: a scored search after Talbot, Lin and Hanrahan, "An Extension of Wilkinson's Algorithm for
 * Positioning Tick Labels on Axes" (InfoVis 2010). Each candidate labeling (a step q * j * 10^z
 * from the nice list Q, skipping j-1 of every j, k labels starting at a multiple of the step) is
 * scored by simplicity (early Q entries, no skipping, zero included), coverage (labels span the
 * data closely), density (about `target` labels) and legibility (here: labels short enough to
 * read); upper bounds of each term prune the search. Only loose labelings (covering the data) are
 * kept, because the first and last tick become the axis range. */
#include "viz/chart_internal.h"
#include "base/base.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const double Q[] = {1, 5, 2, 2.5, 4, 3};
#define NQ ((int)PO__ARRAY_LEN(Q))
static const double W_SIMPLICITY = 0.25, W_COVERAGE = 0.2, W_DENSITY = 0.5, W_LEGIBILITY = 0.05;

static double fmod_pos(double a, double b) {
  return a - b * floor(a / b);
}

static double simplicity(int i, int j, double lmin, double lmax, double lstep) {
  const double eps = 1e-10;
  double v = 0;
  double m = fmod_pos(lmin, lstep);
  if ((m < eps * lstep || lstep - m < eps * lstep) && lmin <= 0 && lmax >= 0) v = 1;
  return 1.0 - (double)i / (NQ - 1) - j + v;
}

static double simplicity_max(int i, int j) {
  return 1.0 - (double)i / (NQ - 1) - j + 1.0;
}

static double coverage(double dmin, double dmax, double lmin, double lmax) {
  double r = 0.1 * (dmax - dmin);
  return 1.0 - 0.5 * ((dmax - lmax) * (dmax - lmax) + (dmin - lmin) * (dmin - lmin)) / (r * r);
}

static double coverage_max(double dmin, double dmax, double span) {
  double range = dmax - dmin;
  if (span > range) {
    double half = (span - range) / 2;
    double r = 0.1 * range;
    return 1.0 - half * half / (r * r);
  }
  return 1.0;
}

static double density(int k, int m, double dmin, double dmax, double lmin, double lmax) {
  double r = (k - 1) / (lmax - lmin);
  double rt = (m - 1) / (fmax(lmax, dmax) - fmin(dmin, lmin));
  return 2.0 - fmax(r / rt, rt / r);
}

static double density_max(int k, int m) {
  if (k >= m) return 2.0 - (k - 1.0) / (m - 1.0);
  return 1.0;
}

/* Legibility-lite: the paper scores label formats and font sizes; here only the number of
 * significant digits the labels need counts (1.0000001, 1.0000002 reads worse than 0, 5, 10).
 * Every candidate for the same data pays alike when the data itself needs many digits. */
static double legibility(double lmin, double lmax, double step) {
  double mag = fmax(fabs(lmin), fabs(lmax));
  if (mag == 0) return 1;
  double digits = floor(log10(mag)) - floor(log10(step) + 1e-9) + 1;
  return digits <= 3 ? 1.0 : digits <= 5 ? 0.6 : 0.2;
}

static int fill_ticks(double lmin, double lstep, int k, po_ticks *out) {
  if (k < 2 || k > PO_TICKS_MAX) return PO_EINVAL;
  out->count = (size_t)k;
  out->step = lstep;
  for (int i = 0; i < k; i++) {
    double v = lmin + i * lstep;
    if (fabs(v) < lstep * 1e-9) v = 0; /* no "-0" or 1e-17 labels */
    out->values[i] = v;
  }
  out->min = out->values[0];
  out->max = out->values[k - 1];
  return 0;
}

/* A usable [lo, hi] for degenerate input: constant, reversed, non-finite or overflowing ranges. */
static void sanitize_range(double *dmin, double *dmax) {
  double lo = *dmin, hi = *dmax;
  if (!isfinite(lo) && !isfinite(hi))
    lo = 0, hi = 1;
  else if (!isfinite(lo))
    lo = hi;
  else if (!isfinite(hi))
    hi = lo;
  if (lo > hi) {
    double t = lo;
    lo = hi;
    hi = t;
  }
  lo = fmax(lo, -DBL_MAX / 4);
  hi = fmin(hi, DBL_MAX / 4);
  if (hi - lo <= fabs(hi) * 1e-12 || hi - lo < DBL_MIN * 1e6) {
    double v = lo;
    if (v == 0)
      lo = 0, hi = 1;
    else if (v > 0)
      lo = 0, hi = v * 1.25; /* a positive constant: show it against zero */
    else
      lo = v * 1.25, hi = 0;
  }
  *dmin = lo;
  *dmax = hi;
}

int po_chart_nice_ticks(double dmin, double dmax, int target, po_ticks *out) {
  if (!out || target < 2 || target > PO_TICKS_MAX) return PO_EINVAL;
  memset(out, 0, sizeof(*out));
  sanitize_range(&dmin, &dmax);
  const int m = target;
  double best = -INFINITY, best_lmin = dmin, best_step = (dmax - dmin);
  int best_k = 2, found = 0;

  for (int j = 1; j < 16; j++) {
    int stop_j = 0;
    for (int i = 0; i < NQ; i++) {
      double q = Q[i];
      double sm = simplicity_max(i, j);
      if (W_SIMPLICITY * sm + W_COVERAGE + W_DENSITY + W_LEGIBILITY < best) {
        stop_j = 1;
        break;
      }
      for (int k = 2; k <= PO_TICKS_MAX; k++) {
        double dm = density_max(k, m);
        if (W_SIMPLICITY * sm + W_COVERAGE + W_DENSITY * dm + W_LEGIBILITY < best) break;
        double delta = (dmax - dmin) / (k + 1) / j / q;
        double z = ceil(log10(delta));
        for (int zi = 0; zi < 40; zi++, z += 1) {
          double step = j * q * pow(10, z);
          if (!isfinite(step) || step <= 0) break;
          double cm = coverage_max(dmin, dmax, step * (k - 1));
          if (W_SIMPLICITY * sm + W_COVERAGE * cm + W_DENSITY * dm + W_LEGIBILITY < best) break;
          double min_start = floor(dmax / step) * j - (double)(k - 1) * j;
          double max_start = ceil(dmin / step) * j;
          if (min_start > max_start) continue;
          if (max_start - min_start > 1000) continue; /* pathological precision loss */
          for (double start = min_start; start <= max_start; start += 1) {
            double lmin = start * (step / j);
            double lmax = lmin + step * (k - 1);
            if (lmin > dmin + step * 1e-9 || lmax < dmax - step * 1e-9) continue; /* loose only */
            double s = simplicity(i, j, lmin, lmax, step);
            double c = coverage(dmin, dmax, lmin, lmax);
            double g = density(k, m, dmin, dmax, lmin, lmax);
            double l = legibility(lmin, lmax, step);
            double score = W_SIMPLICITY * s + W_COVERAGE * c + W_DENSITY * g + W_LEGIBILITY * l;
            if (score > best) {
              best = score;
              best_lmin = lmin;
              best_step = step;
              best_k = k;
              found = 1;
            }
          }
        }
      }
    }
    if (stop_j) break;
  }
  if (!found) return fill_ticks(dmin, dmax - dmin, 2, out);
  return fill_ticks(best_lmin, best_step, best_k, out);
}

int po_chart_time_ticks(double dmin, double dmax, int target, po_ticks *out) {
  if (!out || target < 2 || target > PO_TICKS_MAX) return PO_EINVAL;
  memset(out, 0, sizeof(*out));
  sanitize_range(&dmin, &dmax);
  static const double steps[] = {1,     2,     5,     10,    15,    30,     60,
                                 120,   300,   600,   900,   1800,  3600,   7200,
                                 10800, 14400, 21600, 43200, 86400, 172800, 604800};
  double range = dmax - dmin;
  if (range < 2 * 1 || range / steps[PO__ARRAY_LEN(steps) - 1] > PO_TICKS_MAX)
    return po_chart_nice_ticks(dmin, dmax, target, out);
  double best_err = INFINITY;
  double best_step = steps[0];
  int best_k = 0;
  for (size_t i = 0; i < PO__ARRAY_LEN(steps); i++) {
    double s = steps[i];
    double lo = floor(dmin / s) * s, hi = ceil(dmax / s) * s;
    double kf = (hi - lo) / s + 1;
    if (kf > PO_TICKS_MAX || kf < 2) continue;
    int k = (int)llround(kf);
    /* prefer the tick count nearest the target, then the tighter fit */
    double err = fabs((double)(k - target)) + (range > 0 ? ((hi - lo) - range) / range : 0);
    if (err < best_err) {
      best_err = err;
      best_step = s;
      best_k = k;
    }
  }
  if (best_k < 2) return po_chart_nice_ticks(dmin, dmax, target, out);
  return fill_ticks(floor(dmin / best_step) * best_step, best_step, best_k, out);
}

/* ---- calendar dates (PO_UNIT_DATE: Unix seconds, UTC) ----------------------------------------
 * Ticks at calendar boundaries: round seconds, minutes, hours and days, then whole months and
 * years (first of the month, 00:00 UTC), so a ten-year price series reads 2015, 2016, ... rather
 * than "years since". `step` is the nominal length of the step in seconds; the labels' format
 * follows from it. */

#define DAY 86400.0
#define MONTH_S (30.436875 * DAY)

static double month_start(long months) { /* months since year 0 -> Unix seconds */
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  long y = months >= 0 ? months / 12 : -((-months + 11) / 12);
  tm.tm_year = (int)(y - 1900);
  tm.tm_mon = (int)(months - y * 12);
  tm.tm_mday = 1;
  return (double)timegm(&tm);
}

static long month_of(double t) {
  time_t tt = (time_t)floor(t);
  struct tm tm;
  if (!gmtime_r(&tt, &tm)) return 0;
  return (long)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

static int date_month_ticks(double dmin, double dmax, int months, po_ticks *out) {
  long lo = month_of(dmin), hi = month_of(dmax);
  lo -= ((lo % months) + months) % months;
  if (month_start(hi) < dmax) hi++;
  hi += (months - ((hi - lo) % months)) % months;
  long k = (hi - lo) / months + 1;
  if (k < 2 || k > PO_TICKS_MAX) return PO_EINVAL;
  out->count = (size_t)k;
  for (long i = 0; i < k; i++) out->values[i] = month_start(lo + i * months);
  out->min = out->values[0];
  out->max = out->values[k - 1];
  out->step = months * MONTH_S;
  return 0;
}

static int date_ticks(double dmin, double dmax, int target, po_ticks *out) {
  static const double secs[] = {1,    2,    5,     10,    15,    30,    60,     120, 300,
                                600,  900,  1800,  3600,  7200,  10800, 21600, 43200, DAY,
                                2 * DAY, 7 * DAY, 14 * DAY};
  static const int months[] = {1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200, 2400, 6000};
  memset(out, 0, sizeof(*out));
  sanitize_range(&dmin, &dmax);
  if (!(dmin > -6e10 && dmax < 2.5e11)) return po_chart_nice_ticks(dmin, dmax, target, out);
  double best = INFINITY;
  po_ticks cand;
  for (size_t i = 0; i < PO__ARRAY_LEN(secs) + PO__ARRAY_LEN(months); i++) {
    if (i < PO__ARRAY_LEN(secs)) {
      double st = secs[i], lo = floor(dmin / st) * st, hi = ceil(dmax / st) * st;
      double kf = (hi - lo) / st + 1;
      if (kf > PO_TICKS_MAX || kf < 2 || fill_ticks(lo, st, (int)llround(kf), &cand)) continue;
    } else if (date_month_ticks(dmin, dmax, months[i - PO__ARRAY_LEN(secs)], &cand)) {
      continue;
    }
    double span = cand.max - cand.min;
    double err = fabs((double)cand.count - target) + (span > 0 ? (span - (dmax - dmin)) / span : 0);
    if (err < best) {
      best = err;
      *out = cand;
    }
  }
  return isfinite(best) ? 0 : po_chart_nice_ticks(dmin, dmax, target, out);
}

/* A date label whose precision follows the tick step. */
static int format_date(double v, double step, char *buf, size_t len) {
  time_t t = (time_t)llround(v);
  struct tm tm;
  if (!isfinite(v) || !gmtime_r(&t, &tm)) return snprintf(buf, len, "n/a");
  const char *f = step >= 360 * DAY     ? "%Y"
                  : step >= 28 * DAY    ? "%Y-%m"
                  : step >= DAY         ? "%Y-%m-%d"
                  : step >= 60          ? "%m-%d %H:%M"
                  : step > 0            ? "%H:%M:%S"
                                        : "%Y-%m-%d %H:%M:%S UTC";
  size_t n = strftime(buf, len, f, &tm);
  return n ? (int)n : snprintf(buf, len, "n/a");
}

/* ---- units -------------------------------------------------------------------------------- */

po_unit po_unit_from_name(const char *name) {
  if (!name) return PO_UNIT_NONE;
  static const struct {
    const char *suffix;
    po_unit unit;
  } map[] = {{"unix_seconds", PO_UNIT_DATE},
             {"bytes_per_second", PO_UNIT_BYTES_PER_SECOND},
             {"bytes", PO_UNIT_BYTES},
             {"ratio", PO_UNIT_RATIO},
             {"seconds", PO_UNIT_SECONDS},
             {"celsius", PO_UNIT_CELSIUS},
             {"watts", PO_UNIT_WATTS},
             {"calls", PO_UNIT_COUNT},
             {"count", PO_UNIT_COUNT}};
  size_t n = strlen(name);
  for (size_t i = 0; i < PO__ARRAY_LEN(map); i++) {
    size_t sl = strlen(map[i].suffix);
    if (n >= sl && strcmp(name + n - sl, map[i].suffix) == 0 &&
        (n == sl || name[n - sl - 1] == '_'))
      return map[i].unit;
  }
  return PO_UNIT_NONE;
}

/* Decimals needed to print x (a tick step in display units) exactly, 0..15. */
static int decimals_for(double x) {
  x = fabs(x);
  if (x == 0 || !isfinite(x)) return 0;
  for (int d = 0; d < 15; d++) {
    double s = x * pow(10, d);
    if (nearbyint(s) != 0 && fabs(s - nearbyint(s)) < 1e-6 * s) return d;
  }
  return 15;
}

/* %.*f with trailing zeros (and a trailing dot) removed. */
static void fmt_trim(char *buf, size_t len, double v, int decimals) {
  if (fabs(v) >= 1e7) { /* beyond the largest prefix: scientific notation stays short */
    snprintf(buf, len, "%.3g", v);
    return;
  }
  snprintf(buf, len, "%.*f", decimals, v);
  if (decimals > 0 && strchr(buf, '.')) {
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0') buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.') buf[--n] = '\0';
  }
  if (strcmp(buf, "-0") == 0) snprintf(buf, len, "0");
}

/* Three significant digits, trailing zeros trimmed: 1.5, 15.2, 152. */
static void fmt3(char *buf, size_t len, double v) {
  double a = fabs(v);
  int d = a >= 100 ? 0 : a >= 10 ? 1 : 2;
  fmt_trim(buf, len, v, d);
}

typedef struct prefix {
  double div;
  const char *name;
} prefix;

static const prefix BIN[] = {{1, "B"},
                             {1024.0, "KiB"},
                             {1048576.0, "MiB"},
                             {1073741824.0, "GiB"},
                             {1099511627776.0, "TiB"},
                             {1125899906842624.0, "PiB"},
                             {1152921504606846976.0, "EiB"}};
static const prefix SI[] = {{1, ""},     {1e3, "k"},  {1e6, "M"}, {1e9, "G"},
                            {1e12, "T"}, {1e15, "P"}, {1e18, "E"}};
static const prefix SEC[] = {{1e-9, "ns"}, {1e-6, "\xC2\xB5s"}, {1e-3, "ms"},
                             {1, "s"},     {60, "min"},         {3600, "h"}};

/* The largest prefix p with |ref| >= p.div (for SI-style tables ordered ascending). */
static const prefix *pick_prefix(const prefix *t, size_t n, double ref) {
  ref = fabs(ref);
  const prefix *p = &t[0];
  for (size_t i = 1; i < n; i++)
    if (ref >= t[i].div) p = &t[i];
  return p;
}

static int finish(char *buf, size_t len, const char *num, const char *sep, const char *unit) {
  return snprintf(buf, len, "%s%s%s", num, (unit && *unit) ? sep : "", unit ? unit : "");
}

/* Picks the display scale of `ref` in `unit`: prefix name, divisor and joiner. */
static void unit_scale(po_unit unit, double ref, double *div, const char **name, const char **sep,
                       const char **suffix) {
  *div = 1;
  *name = "";
  *sep = " ";
  *suffix = "";
  switch (unit) {
    case PO_UNIT_BYTES:
    case PO_UNIT_BYTES_PER_SECOND: {
      const prefix *p = pick_prefix(BIN, PO__ARRAY_LEN(BIN), ref);
      *div = p->div;
      *name = p->name;
      if (unit == PO_UNIT_BYTES_PER_SECOND) *suffix = "/s";
      break;
    }
    case PO_UNIT_SECONDS: {
      double a = fabs(ref);
      const prefix *p = &SEC[3];
      if (a == 0)
        p = &SEC[3];
      else if (a < 1e-6)
        p = &SEC[0];
      else if (a < 1e-3)
        p = &SEC[1];
      else if (a < 1)
        p = &SEC[2];
      else if (a < 120)
        p = &SEC[3];
      else if (a < 7200)
        p = &SEC[4];
      else
        p = &SEC[5];
      *div = p->div;
      *name = p->name;
      break;
    }
    case PO_UNIT_ELAPSED: {
      double a = fabs(ref);
      *div = a >= 3 * 3600 ? 3600 : a >= 180 ? 60 : 1;
      *name = *div == 3600 ? "h" : *div == 60 ? "min" : "s";
      break;
    }
    case PO_UNIT_RATIO:
      *div = 0.01;
      *name = "%";
      *sep = "";
      break;
    case PO_UNIT_CELSIUS:
      *name =
          "\xC2\xB0"
          "C";
      break;
    case PO_UNIT_WATTS: {
      const prefix *p = pick_prefix(SI, PO__ARRAY_LEN(SI), ref);
      *div = p->div;
      *name = p->div == 1 ? "W" : p->div == 1e3 ? "kW" : p->div == 1e6 ? "MW" : "GW";
      break;
    }
    case PO_UNIT_NONE:
    case PO_UNIT_COUNT:
    default: {
      const prefix *p = pick_prefix(SI, PO__ARRAY_LEN(SI), ref);
      *div = p->div;
      *name = p->name;
      *sep = "";
      break;
    }
  }
}

int po_format_value(double v, po_unit unit, char *buf, size_t len) {
  if (!buf || len == 0) return PO_EINVAL;
  if (unit == PO_UNIT_DATE) return format_date(v, 0, buf, len);
  if (isnan(v)) return snprintf(buf, len, "n/a");
  if (isinf(v)) return snprintf(buf, len, v > 0 ? "inf" : "-inf");
  double div;
  const char *name, *sep, *suffix;
  unit_scale(unit, v, &div, &name, &sep, &suffix);
  char num[64];
  double x = v / div;
  if (unit == PO_UNIT_BYTES && div == 1)
    fmt_trim(num, sizeof(num), x, 0);
  else if ((unit == PO_UNIT_COUNT || unit == PO_UNIT_NONE) && div == 1 && x == nearbyint(x))
    fmt_trim(num, sizeof(num), x, 0);
  else if (unit == PO_UNIT_RATIO && x != 0 && fabs(x) < 0.01)
    return snprintf(buf, len, "%s0.01%%", x > 0 ? "<" : ">-");
  else if (unit == PO_UNIT_NONE && div == 1 && fabs(x) < 0.01 && x != 0)
    snprintf(num, sizeof(num), "%.3g", x);
  else
    fmt3(num, sizeof(num), x);
  char u[32];
  snprintf(u, sizeof(u), "%s%s", name, suffix);
  return finish(buf, len, num, sep, u);
}

int po__format_tick(double v, po_unit unit, double ref, double step, char *buf, size_t len) {
  if (!buf || len == 0) return PO_EINVAL;
  if (!isfinite(v)) return po_format_value(v, unit, buf, len);
  if (unit == PO_UNIT_DATE) return format_date(v, step, buf, len);
  double div;
  const char *name, *sep, *suffix;
  unit_scale(unit, ref, &div, &name, &sep, &suffix);
  char num[64];
  int d = decimals_for(step / div);
  fmt_trim(num, sizeof(num), v / div, d);
  if (v == 0 && unit != PO_UNIT_RATIO && unit != PO_UNIT_ELAPSED) return snprintf(buf, len, "0");
  char u[32];
  snprintf(u, sizeof(u), "%s%s", name, suffix);
  return finish(buf, len, num, sep, u);
}

int po__axis_ticks(double dmin, double dmax, int target, po_unit unit, po_ticks *out, double *ref) {
  if (!out || !ref) return PO_EINVAL;
  sanitize_range(&dmin, &dmax);
  *ref = fmax(fabs(dmin), fabs(dmax));
  if (unit == PO_UNIT_ELAPSED) return po_chart_time_ticks(dmin, dmax, target, out);
  if (unit == PO_UNIT_DATE) return date_ticks(dmin, dmax, target, out);
  double div;
  const char *name, *sep, *suffix;
  unit_scale(unit, *ref, &div, &name, &sep, &suffix);
  int rc = po_chart_nice_ticks(dmin / div, dmax / div, target, out);
  if (rc) return rc;
  for (size_t i = 0; i < out->count; i++) out->values[i] *= div;
  out->min *= div;
  out->max *= div;
  out->step *= div;
  return 0;
}
