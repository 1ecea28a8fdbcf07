/* BTC candles for the C examples: both CSV layouts in examples/data, cleaned and in time order,
 * with a count of every row skipped and why; the past-only features, the next-candle target, the
 * time split and the volatility-regime buckets. The rules are examples/README.md's ("Data" and
 * "Features, target and buckets"), which examples/btc_data.py follows too, so the C and Python
 * versions compute the same thing. Public perfopt API only (the CSV reader). */
#ifndef EXAMPLES_BTC_DATA_H
#define EXAMPLES_BTC_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum { BTC_HOURLY = 0, BTC_DAILY = 1 } btc_layout;

/* Why a row was skipped, in the order the checks run (a row counts once, for the first). */
typedef enum {
  BTC_SKIP_MISSING_CELL = 0, /* a used cell is missing, empty, NULL or not a finite number */
  BTC_SKIP_BAD_TIMESTAMP,    /* the time cell is not a number (hourly) or a date (daily) */
  BTC_SKIP_INCONSISTENT,     /* a price <= 0, low > high, open or close outside [low, high],
                              * or a negative volume */
  BTC_SKIP_BAD_PRINT,        /* high / low > 2 within one candle (an open far from its
                              * neighbours' closes: the 16199.91 print of 2017-08-17) */
  BTC_SKIP_DUPLICATE,        /* a timestamp seen before in the file (the first row is kept) */
  BTC_SKIP_REASONS
} btc_skip;

typedef struct btc_candles {
  btc_layout layout;
  size_t n;  /* candles kept, oldest first */
  double *t; /* unix seconds (UTC) */
  double *open, *high, *low, *close, *volume;
  uint64_t rows_read; /* data rows in the file (blank lines not counted) */
  uint64_t skipped[BTC_SKIP_REASONS];
  uint64_t null_cells_unused; /* NULL cells in a column the examples do not use (tradecount) */
  uint64_t zero_volume;       /* candles kept with a volume of 0 (no trade in that period) */
  int newest_first;           /* the file lists newer rows first */
  double period_seconds;      /* median step between kept candles */
  size_t gaps;                /* steps longer than 1.5 periods */
  double largest_gap_periods;
  uint64_t missing_periods; /* candles the gaps leave out */
} btc_candles;

/* Reads either layout (found from the header). Returns 0, or -1 with a message in err (file,
 * unknown layout, no usable row, out of memory). */
int btc_load(const char *path, btc_candles *out, char *err, size_t errlen);
void btc_free(btc_candles *c);
const char *btc_skip_name(btc_skip why);
const char *btc_layout_name(btc_layout layout);

/* ---- features, target, split, buckets ---------------------------------------------------- */

#define BTC_FEATURES 8
extern const char *const btc_feature_names[BTC_FEATURES];
#define BTC_BUCKETS 3
extern const char *const btc_bucket_names[BTC_BUCKETS];
#define BTC_TRAIN_SHARE 0.7

/* Sample j describes candle idx[j] from candles <= idx[j] only; y[j] = 1 when candle idx[j] + 1
 * closes higher. x is row-major, BTC_FEATURES per sample. */
typedef struct btc_samples {
  size_t n;
  double *x;
  unsigned char *y;
  size_t *idx;
} btc_samples;

int btc_features(const btc_candles *c, btc_samples *out);
void btc_samples_free(btc_samples *s);

/* The time split and regimes: samples [0, n_train) are the training period; the z-score
 * statistics and the vol_24 terciles come from it alone. regime[j] in 0..2 for every sample. */
typedef struct btc_split {
  size_t n_train;
  double q1, q2; /* vol_24 terciles of the training period */
  double mean[BTC_FEATURES], sd[BTC_FEATURES];
  unsigned char *regime;
} btc_split;

int btc_split_samples(const btc_samples *s, btc_split *out);
void btc_split_free(btc_split *sp);

#endif
