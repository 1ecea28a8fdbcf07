/* BTC candles: loading and cleaning (btc_load), features and buckets. See btc_data.h. */
#include "btc_data.h"

#include "perfopt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const btc_feature_names[BTC_FEATURES] = {"ret_1",  "ret_6",  "ret_24",  "vol_6",
                                                     "vol_24", "vchg_6", "vchg_24", "range"};
const char *const btc_bucket_names[BTC_BUCKETS] = {"low_vol", "mid_vol", "high_vol"};

#define BAD_PRINT_RATIO 2.0

const char *btc_skip_name(btc_skip why) {
  static const char *const names[BTC_SKIP_REASONS] = {"missing or non-numeric cell",
                                                      "bad timestamp", "inconsistent candle",
                                                      "bad print", "duplicate timestamp"};
  return (unsigned)why < BTC_SKIP_REASONS ? names[why] : "?";
}

const char *btc_layout_name(btc_layout layout) {
  return layout == BTC_HOURLY ? "hourly" : "daily";
}

/* ---- cells ------------------------------------------------------------------------------- */

enum { COL_T, COL_OPEN, COL_HIGH, COL_LOW, COL_CLOSE, COL_VOLUME, COL_TRADECOUNT, COL_MAX };

typedef struct loader {
  btc_layout layout;
  unsigned null_flags; /* bit k: selected column k held NULL in the row being read */
} loader;

typedef struct cell_ctx {
  loader *l;
  int col;
} cell_ctx;

static int is_null_word(const char *s, size_t len) {
  static const char *const words[] = {"null", "nan", "none", "n/a"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (strlen(words[i]) == len && strncasecmp(s, words[i], len) == 0) return 1;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long days_from_civil(long y, unsigned m, unsigned d) {
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (long)doe - 719468;
}

/* "YYYY-MM-DD" (the Yahoo layout's Date) as unix seconds at 00:00 UTC; -1 when it is not one. */
static int parse_date(const char *s, size_t len, double *out) {
  if (len != 10 || s[4] != '-' || s[7] != '-') return -1;
  for (size_t i = 0; i < len; i++)
    if (i != 4 && i != 7 && !isdigit((unsigned char)s[i])) return -1;
  long y = strtol(s, NULL, 10);
  unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
  unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
  static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return -1;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return -1;
  *out = (double)days_from_civil(y, m, d) * 86400.0;
  return 0;
}

/* The reader calls this for a selected cell that is not a plain number. It never rejects the row
 * (that would hide the reason): the value becomes NaN and btc_load decides, in the rules' order. */
static int parse_cell(const char *cell, size_t len, double *out, void *user) {
  cell_ctx *cc = user;
  *out = NAN;
  if (cc->col == COL_T && cc->l->layout == BTC_DAILY) {
    if (parse_date(cell, len, out) == 0) return 0;
  } else if (is_null_word(cell, len)) {
    cc->l->null_flags |= 1u << cc->col;
  }
  return 0;
}

/* ---- rows -------------------------------------------------------------------------------- */

typedef struct row {
  double v[COL_TRADECOUNT]; /* t, open, high, low, close, volume */
  uint64_t order;           /* position in the file */
} row;

static int detect_layout(po_csv *csv, btc_layout *layout) {
  const char *first = po_csv_column_name(csv, 0);
  int has_close = 0, has_vbtc = 0, has_volume = 0;
  for (size_t i = 0; i < po_csv_column_count(csv); i++) {
    const char *name = po_csv_column_name(csv, i);
    has_close |= !strcasecmp(name, "close");
    has_vbtc |= !strcasecmp(name, "volume btc");
    has_volume |= !strcasecmp(name, "volume");
  }
  if (first && !strcasecmp(first, "unix") && has_close && has_vbtc) {
    *layout = BTC_HOURLY;
    return 0;
  }
  if (first && !strcasecmp(first, "date") && has_close && has_volume) {
    *layout = BTC_DAILY;
    return 0;
  }
  return -1;
}

static int select_columns(po_csv *csv, loader *l, cell_ctx *ctx, size_t *ncols, char *err,
                          size_t errlen) {
  static const char *const hourly[] = {"unix",  "open",       "high",      "low",
                                       "close", "volume btc", "tradecount"};
  static const char *const daily[] = {"date", "open", "high", "low", "close", "volume"};
  const char *const *names = l->layout == BTC_HOURLY ? hourly : daily;
  size_t n = l->layout == BTC_HOURLY ? 7 : 6, cols[COL_MAX];
  for (size_t k = 0; k < n; k++) {
    int c = po_csv_find_column(csv, names[k], err, errlen);
    if (c < 0) return -1;
    cols[k] = (size_t)c;
  }
  if (po_csv_select(csv, cols, n) != 0) return -1;
  for (size_t k = 0; k < n; k++) {
    ctx[k] = (cell_ctx){l, (int)k};
    po_csv_set_parser(csv, k, parse_cell, &ctx[k]);
  }
  *ncols = n;
  return 0;
}

/* The first rule a row breaks (BTC_SKIP_REASONS when it breaks none; duplicates come later). */
static btc_skip check_row(const loader *l, double *v) {
  if (!isfinite(v[COL_T])) return BTC_SKIP_BAD_TIMESTAMP;
  if (l->layout == BTC_HOURLY && v[COL_T] > 1e11) v[COL_T] /= 1000.0; /* ms in newer rows */
  for (int k = COL_OPEN; k <= COL_VOLUME; k++)
    if (!isfinite(v[k])) return BTC_SKIP_MISSING_CELL;
  double o = v[COL_OPEN], h = v[COL_HIGH], lo = v[COL_LOW], c = v[COL_CLOSE];
  if (fmin(fmin(o, h), fmin(lo, c)) <= 0 || lo > h || o < lo || o > h || c < lo || c > h ||
      v[COL_VOLUME] < 0)
    return BTC_SKIP_INCONSISTENT;
  if (h / lo > BAD_PRINT_RATIO) return BTC_SKIP_BAD_PRINT;
  return BTC_SKIP_REASONS;
}

static int cmp_row(const void *a, const void *b) {
  const row *x = a, *y = b;
  if (x->v[COL_T] != y->v[COL_T]) return x->v[COL_T] < y->v[COL_T] ? -1 : 1;
  return (x->order > y->order) - (x->order < y->order);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Reads every row; keeps those that break no rule (in file order). */
static int read_rows(po_csv *csv, loader *l, size_t ncols, btc_candles *out, row **rows_out,
                     size_t *nrows) {
  size_t cap = 4096, n = 0;
  row *rows = malloc(cap * sizeof *rows);
  if (!rows) return -1;
  double v[COL_MAX];
  uint64_t returned = 0;
  int rc;
  for (;;) {
    l->null_flags = 0;
    if ((rc = po_csv_next(csv, v)) != 1) break;
    returned++;
    if (ncols > COL_TRADECOUNT && isnan(v[COL_TRADECOUNT]) && (l->null_flags >> COL_TRADECOUNT & 1))
      out->null_cells_unused++;
    btc_skip why = check_row(l, v);
    if (why != BTC_SKIP_REASONS) {
      out->skipped[why]++;
      continue;
    }
    if (n == cap) {
      row *bigger = realloc(rows, 2 * cap * sizeof *rows);
      if (!bigger) break;
      rows = bigger, cap *= 2;
    }
    memcpy(rows[n].v, v, sizeof rows[n].v);
    rows[n].order = returned;
    n++;
  }
  po_csv_stats st;
  po_csv_get_stats(csv, &st);
  /* rows the reader itself skipped: a selected cell missing or empty */
  out->skipped[BTC_SKIP_MISSING_CELL] += st.bad_rows;
  out->rows_read = returned + st.bad_rows;
  if (rc < 0 || rc == 1) { /* a read error, or out of memory */
    free(rows);
    return -1;
  }
  *rows_out = rows;
  *nrows = n;
  return 0;
}

/* Sorts by time, drops later duplicates and fills the columns. */
static int keep_rows(row *rows, size_t n, btc_candles *out) {
  out->newest_first = n > 1 && rows[0].v[COL_T] > rows[n - 1].v[COL_T];
  qsort(rows, n, sizeof *rows, cmp_row);
  double *cols[6];
  for (int k = 0; k < 6; k++)
    if (!(cols[k] = malloc((n ? n : 1) * sizeof(double)))) {
      while (k-- > 0) free(cols[k]);
      return -1;
    }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m > 0 && rows[i].v[COL_T] == cols[COL_T][m - 1]) {
      out->skipped[BTC_SKIP_DUPLICATE]++;
      continue;
    }
    for (int k = 0; k < 6; k++) cols[k][m] = rows[i].v[k];
    out->zero_volume += rows[i].v[COL_VOLUME] == 0;
    m++;
  }
  out->n = m;
  out->t = cols[COL_T], out->open = cols[COL_OPEN], out->high = cols[COL_HIGH];
  out->low = cols[COL_LOW], out->close = cols[COL_CLOSE], out->volume = cols[COL_VOLUME];
  return 0;
}

/* The period is the median step; a gap is a step over 1.5 periods. */
static int find_gaps(btc_candles *c) {
  if (c->n < 2) return 0;
  double *steps = malloc((c->n - 1) * sizeof *steps);
  if (!steps) return -1;
  for (size_t i = 1; i < c->n; i++) steps[i - 1] = c->t[i] - c->t[i - 1];
  qsort(steps, c->n - 1, sizeof *steps, cmp_double);
  size_t m = c->n - 1;
  c->period_seconds = m % 2 ? steps[m / 2] : (steps[m / 2 - 1] + steps[m / 2]) / 2;
  free(steps);
  for (size_t i = 1; i < c->n && c->period_seconds > 0; i++) {
    double periods = (c->t[i] - c->t[i - 1]) / c->period_seconds;
    if (periods > 1.5) {
      c->gaps++;
      c->missing_periods += (uint64_t)llround(periods) - 1;
      if (periods > c->largest_gap_periods) c->largest_gap_periods = periods;
    }
  }
  return 0;
}

int btc_load(const char *path, btc_candles *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  po_csv *csv;
  if (po_csv_create(path, NULL, &csv, err, errlen) != 0) return -1;
  loader l = {0};
  cell_ctx ctx[COL_MAX];
  size_t ncols = 0;
  if (detect_layout(csv, &l.layout) != 0) {
    snprintf(err, errlen,
             "%s: unknown CSV layout (expected the Yahoo daily layout Date,Open,High,Low,Close,"
             "Adj Close,Volume or the CryptoDataDownload hourly layout unix,date,symbol,open,"
             "high,low,close,Volume BTC,Volume USDT,tradecount)",
             path);
    po_csv_destroy(csv);
    return -1;
  }
  out->layout = l.layout;
  row *rows = NULL;
  size_t n = 0;
  int rc = select_columns(csv, &l, ctx, &ncols, err, errlen);
  if (rc == 0 && (rc = read_rows(csv, &l, ncols, out, &rows, &n)) != 0)
    snprintf(err, errlen, "%s: read error or out of memory", path);
  po_csv_destroy(csv);
  if (rc == 0 && (rc = keep_rows(rows, n, out)) != 0) snprintf(err, errlen, "out of memory");
  free(rows);
  if (rc == 0 && (rc = find_gaps(out)) != 0) snprintf(err, errlen, "out of memory");
  if (rc == 0 && out->n < 64) {
    snprintf(err, errlen, "%s: only %zu usable candles", path, out->n);
    rc = -1;
  }
  if (rc != 0) btc_free(out);
  return rc;
}

void btc_free(btc_candles *c) {
  free(c->t), free(c->open), free(c->high), free(c->low), free(c->close), free(c->volume);
  c->t = c->open = c->high = c->low = c->close = c->volume = NULL;
  c->n = 0;
}

/* ---- features ---------------------------------------------------------------------------- */

/* Population standard deviation (numpy's default, ddof 0) of v[0..n). */
static double sd_of(const double *v, size_t n) {
  double mean = 0, ss = 0;
  for (size_t i = 0; i < n; i++) mean += v[i];
  mean /= (double)n;
  for (size_t i = 0; i < n; i++) ss += (v[i] - mean) * (v[i] - mean);
  return sqrt(ss / (double)n);
}

static double mean_of(const double *v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += v[i];
  return s / (double)n;
}

int btc_features(const btc_candles *c, btc_samples *out) {
  memset(out, 0, sizeof *out);
  const size_t start = 24; /* the longest window */
  if (c->n < start + 2) return -1;
  size_t n = c->n - 1 - start; /* candles start .. n-2 have a next candle */
  double *lc = malloc(c->n * sizeof *lc), *r1 = malloc(c->n * sizeof *r1);
  out->x = malloc(n * BTC_FEATURES * sizeof *out->x);
  out->y = malloc(n);
  out->idx = malloc(n * sizeof *out->idx);
  if (!lc || !r1 || !out->x || !out->y || !out->idx) {
    free(lc), free(r1);
    btc_samples_free(out);
    return -1;
  }
  for (size_t i = 0; i < c->n; i++) lc[i] = log(c->close[i]);
  r1[0] = 0;
  for (size_t i = 1; i < c->n; i++) r1[i] = lc[i] - lc[i - 1];
  for (size_t j = 0; j < n; j++) {
    size_t i = start + j;
    double *x = out->x + j * BTC_FEATURES;
    x[0] = lc[i] - lc[i - 1];
    x[1] = lc[i] - lc[i - 6];
    x[2] = lc[i] - lc[i - 24];
    x[3] = sd_of(r1 + i - 5, 6);
    x[4] = sd_of(r1 + i - 23, 24);
    x[5] = log((c->volume[i] + 1.0) / (mean_of(c->volume + i - 5, 6) + 1.0));
    x[6] = log((c->volume[i] + 1.0) / (mean_of(c->volume + i - 23, 24) + 1.0));
    x[7] = log(c->high[i] / c->low[i]);
    out->y[j] = c->close[i + 1] > c->close[i];
    out->idx[j] = i;
  }
  out->n = n;
  free(lc);
  free(r1);
  return 0;
}

void btc_samples_free(btc_samples *s) {
  free(s->x), free(s->y), free(s->idx);
  memset(s, 0, sizeof *s);
}

/* numpy.quantile's default ("linear") of sorted a[0..n), with its interpolation formula. */
static double quantile_sorted(const double *a, size_t n, double p) {
  double pos = (double)(n - 1) * p;
  size_t lo = (size_t)floor(pos);
  size_t hi = lo + 1 < n ? lo + 1 : lo;
  double t = pos - (double)lo, d = a[hi] - a[lo];
  return t >= 0.5 ? a[hi] - d * (1 - t) : a[lo] + d * t;
}

int btc_split_samples(const btc_samples *s, btc_split *out) {
  memset(out, 0, sizeof *out);
  out->n_train = (size_t)((double)s->n * BTC_TRAIN_SHARE);
  size_t nt = out->n_train;
  double *vol = malloc((nt ? nt : 1) * sizeof *vol);
  out->regime = malloc(s->n ? s->n : 1);
  if (!vol || !out->regime || nt < 3) {
    free(vol);
    btc_split_free(out);
    return -1;
  }
  for (size_t j = 0; j < nt; j++) vol[j] = s->x[j * BTC_FEATURES + 4];
  qsort(vol, nt, sizeof *vol, cmp_double);
  out->q1 = quantile_sorted(vol, nt, 1.0 / 3.0);
  out->q2 = quantile_sorted(vol, nt, 2.0 / 3.0);
  free(vol);
  for (size_t j = 0; j < s->n; j++) {
    double v = s->x[j * BTC_FEATURES + 4];
    out->regime[j] = v <= out->q1 ? 0 : v <= out->q2 ? 1 : 2;
  }
  for (int k = 0; k < BTC_FEATURES; k++) {
    double m = 0, ss = 0;
    for (size_t j = 0; j < nt; j++) m += s->x[j * BTC_FEATURES + (size_t)k];
    m /= (double)nt;
    for (size_t j = 0; j < nt; j++) {
      double d = s->x[j * BTC_FEATURES + (size_t)k] - m;
      ss += d * d;
    }
    out->mean[k] = m;
    out->sd[k] = ss > 0 ? sqrt(ss / (double)nt) : 1.0;
  }
  return 0;
}

void btc_split_free(btc_split *sp) {
  free(sp->regime);
  sp->regime = NULL;
}
