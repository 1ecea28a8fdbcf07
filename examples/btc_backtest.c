/* A real workload for `make demo`: a moving-average crossover back-test swept over a grid of
 * parameters on Binance BTC/USDT hourly candles (examples/data/btcusdt-hourly.csv, newest first).
 *
 * It is profiled with PO_PROFILE_FUNCTION / PO_SCOPE, monitored in the background, caches the
 * indicator series it computes (a byte-budgeted cache, typed "data"), marks each sweep bucket as
 * a phase, and writes the report as JSON, text and HTML.
 *
 * usage: btc_backtest [CSV] [OUT_DIR]
 */
#include "perfopt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  double *t, *close;
  size_t n;
} candles;

typedef struct {
  const candles *c;
  int kind; /* 0 = SMA, 1 = EMA */
  int period;
} indicator_req;

static int load_candles(const char *path, candles *out) {
  PO_PROFILE_FUNCTION();
  po_csv *csv;
  char err[256];
  if (po_csv_create(path, NULL, &csv, err, sizeof err) != 0) {
    fprintf(stderr, "btc_backtest: %s\n", err);
    return -1;
  }
  int tcol = po_csv_find_column(csv, "unix", err, sizeof err);
  int ccol = tcol >= 0 ? po_csv_find_column(csv, "close", err, sizeof err) : -1;
  if (tcol < 0 || ccol < 0) {
    fprintf(stderr, "btc_backtest: %s\n", err);
    po_csv_destroy(csv);
    return -1;
  }
  size_t cols[2] = {(size_t)tcol, (size_t)ccol};
  po_csv_select(csv, cols, 2);
  size_t cap = 1024, n = 0;
  double *t = malloc(cap * sizeof *t), *cl = malloc(cap * sizeof *cl);
  double row[2];
  int rc;
  while (t && cl && (rc = po_csv_next(csv, row)) == 1) {
    if (n == cap) {
      cap *= 2;
      double *nt = realloc(t, cap * sizeof *t), *nc = realloc(cl, cap * sizeof *cl);
      if (nt) t = nt;
      if (nc) cl = nc;
      if (!nt || !nc) break;
    }
    /* newer rows give milliseconds, older ones seconds */
    t[n] = row[0] > 1e11 ? row[0] / 1000.0 : row[0];
    cl[n] = row[1];
    n++;
  }
  po_csv_stats st;
  po_csv_get_stats(csv, &st);
  po_csv_destroy(csv);
  if (st.bad_rows)
    fprintf(stderr, "btc_backtest: skipped %llu bad rows (first at line %llu: %s)\n",
            (unsigned long long)st.bad_rows, (unsigned long long)st.first_bad_line,
            st.first_bad_reason);
  /* The file is newest first: reverse into time order. */
  for (size_t i = 0; i < n / 2; i++) {
    double a = t[i], b = cl[i];
    t[i] = t[n - 1 - i];
    cl[i] = cl[n - 1 - i];
    t[n - 1 - i] = a;
    cl[n - 1 - i] = b;
  }
  out->t = t;
  out->close = cl;
  out->n = n;
  return n > 0 ? 0 : -1;
}

static void sma(const double *x, size_t n, int p, double *out) {
  PO_PROFILE_FUNCTION();
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    sum += x[i];
    if (i >= (size_t)p) sum -= x[i - (size_t)p];
    out[i] = i + 1 >= (size_t)p ? sum / p : NAN;
  }
}

static void ema(const double *x, size_t n, int p, double *out) {
  PO_PROFILE_FUNCTION();
  double a = 2.0 / (p + 1), v = x[0];
  for (size_t i = 0; i < n; i++) {
    v = a * x[i] + (1 - a) * v;
    out[i] = i + 1 >= (size_t)p ? v : NAN;
  }
}

/* Cache loader: computes an indicator series the first time a (kind, period) is asked for. */
static int load_indicator(const void *key, size_t keylen, void *ctx, po_cache_loaded *out) {
  PO_PROFILE_FUNCTION();
  (void)key;
  (void)keylen;
  const indicator_req *r = ctx;
  double *v = malloc(r->c->n * sizeof *v);
  if (!v) return PO_ENOMEM;
  if (r->kind == 0)
    sma(r->c->close, r->c->n, r->period, v);
  else
    ema(r->c->close, r->c->n, r->period, v);
  memset(out, 0, sizeof *out);
  out->value = v;
  out->size_bytes = r->c->n * sizeof *v;
  out->type = PO_RESOURCE_DATA;
  out->free_fn = free;
  return 0;
}

static const double *indicator(po_cache *cache, const candles *c, int kind, int period,
                               po_cache_handle **h) {
  PO_PROFILE_FUNCTION();
  int key[2] = {kind, period};
  indicator_req req = {c, kind, period};
  void *v = NULL;
  if (po_cache_get_or_load(cache, key, sizeof key, load_indicator, &req, &v, h) != 0) return NULL;
  return v;
}

typedef struct {
  double final_equity, max_drawdown, sharpe;
  int trades;
} result;

static result simulate(const candles *c, const double *fast, const double *slow, double fee) {
  PO_PROFILE_FUNCTION();
  result r = {1.0, 0, 0, 0};
  int pos = 0;
  double peak = 1.0, sum = 0, sumsq = 0;
  size_t nret = 0;
  for (size_t i = 1; i < c->n; i++) {
    double ret = c->close[i] / c->close[i - 1] - 1.0;
    if (pos) {
      r.final_equity *= 1.0 + ret;
      sum += ret;
      sumsq += ret * ret;
      nret++;
    }
    if (isnan(fast[i]) || isnan(slow[i])) continue;
    int want = fast[i] > slow[i];
    if (want != pos) {
      r.final_equity *= 1.0 - fee;
      pos = want;
      r.trades++;
    }
    if (r.final_equity > peak) peak = r.final_equity;
    double dd = 1.0 - r.final_equity / peak;
    if (dd > r.max_drawdown) r.max_drawdown = dd;
  }
  if (nret > 1) {
    double mean = sum / (double)nret, var = sumsq / (double)nret - mean * mean;
    r.sharpe = var > 0 ? mean / sqrt(var) * sqrt(24.0 * 365.0) : 0;
  }
  return r;
}

static double rsi_filter_score(const candles *c, int period) {
  PO_PROFILE_FUNCTION();
  double gain = 0, loss = 0, score = 0;
  for (size_t i = 1; i < c->n; i++) {
    double d = c->close[i] - c->close[i - 1];
    double g = d > 0 ? d : 0, l = d < 0 ? -d : 0;
    gain = (gain * (period - 1) + g) / period;
    loss = (loss * (period - 1) + l) / period;
    double rsi = loss > 0 ? 100.0 - 100.0 / (1.0 + gain / loss) : 100.0;
    score += rsi > 70 ? -1 : rsi < 30 ? 1 : 0;
  }
  return score;
}

static void sweep_bucket(po_cache *cache, const candles *c, int kind, int fast_lo, int fast_hi,
                         result *best, int *best_fast, int *best_slow) {
  PO_PROFILE_FUNCTION();
  for (int f = fast_lo; f <= fast_hi; f++) {
    for (int s = f * 2; s <= 240; s += 3) {
      po_cache_handle *hf = NULL, *hs = NULL;
      const double *fast = indicator(cache, c, kind, f, &hf);
      const double *slow = indicator(cache, c, kind, s, &hs);
      if (fast && slow) {
        result r = simulate(c, fast, slow, 0.001);
        if (r.final_equity > best->final_equity) {
          *best = r;
          *best_fast = f;
          *best_slow = s;
        }
      }
      if (hf) po_cache_release(cache, hf);
      if (hs) po_cache_release(cache, hs);
    }
  }
}

int main(int argc, char **argv) {
  const char *csv = argc > 1 ? argv[1] : "examples/data/btcusdt-hourly.csv";
  const char *dir = argc > 2 ? argv[2] : ".";
  po_config cfg;
  char err[256];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "btc_backtest: %s\n", err);
    return 1;
  }
  cfg.monitor_interval_ms = 20; /* a short run: sample often enough to draw timelines */
  cfg.monitor_cpu_budget = 0.05; /* ... which costs more than the default budget of 0.5% */
  po_optimizer *opt;
  if (po_optimizer_create(&cfg, &opt) != 0) {
    fprintf(stderr, "btc_backtest: cannot create the optimizer\n");
    return 1;
  }
  po_cache *cache;
  po_cache_options copts = {.name = "indicators", .policy = PO_CACHE_SIEVE};
  /* A budget that holds about 40 indicator series, so the sweep exercises eviction. */
  if (po_cache_create_ex(40u * 36100u * sizeof(double), &copts, &cache) != 0) return 1;
  po_cache_attach(opt, cache);

  candles c = {0};
  if (load_candles(csv, &c) != 0) {
    fprintf(stderr, "btc_backtest: no candles read from %s\n", csv);
    return 1;
  }
  printf("btc_backtest: %zu hourly candles\n", c.n);

  result best = {0, 0, 0, 0};
  int bf = 0, bs = 0, bkind = 0;
  static const char *const kinds[] = {"SMA", "EMA"};
  for (int kind = 0; kind < 2; kind++) {
    for (int bucket = 0; bucket < 3; bucket++) {
      char phase[64];
      snprintf(phase, sizeof phase, "%s bucket %d", kinds[kind], bucket + 1);
      po_phase_begin(opt, phase);
      result r = {0, 0, 0, 0};
      int f = 0, s = 0;
      sweep_bucket(cache, &c, kind, 4 + bucket * 14, 16 + bucket * 14, &r, &f, &s);
      if (r.final_equity > best.final_equity) {
        best = r;
        bf = f;
        bs = s;
        bkind = kind;
      }
      po_phase_end(opt);
    }
  }
  double score = 0;
  for (int p = 7; p <= 28; p += 7) score += rsi_filter_score(&c, p);
  printf(
      "best: %s %d/%d  equity x%.2f  max drawdown %.1f%%  sharpe %.2f  trades %d  (rsi score "
      "%.0f)\n",
      kinds[bkind], bf, bs, best.final_equity, best.max_drawdown * 100, best.sharpe, best.trades,
      score);

  po_report *rep;
  if (po_report_create(opt, &rep) != 0) return 1;
  char path[1024];
  int rc = 0;
  snprintf(path, sizeof path, "%s/report.json", dir);
  if (po_report_save_json(rep, path, err, sizeof err) != 0) {
    fprintf(stderr, "btc_backtest: %s\n", err);
    rc = 1;
  }
  snprintf(path, sizeof path, "%s/report.html", dir);
  if (po_report_save_html(rep, path, err, sizeof err) != 0) {
    fprintf(stderr, "btc_backtest: %s\n", err);
    rc = 1;
  }
  snprintf(path, sizeof path, "%s/report.txt", dir);
  FILE *txt = fopen(path, "w");
  if (txt) {
    po_report_write_text(rep, txt, PO_SORT_TOTAL, 25);
    fclose(txt);
  }
  po_report_write_text(rep, stdout, PO_SORT_SELF, 12);
  po_report_destroy(rep);
  po_cache_destroy(cache);
  po_optimizer_destroy(opt);
  free(c.t);
  free(c.close);
  return rc;
}
