/* Progressive training with profiling: the seed's first integration example, in C (`make demo`).
 *
 * A small MLP (examples/lib/mlp.c) learns the next candle's direction from past-only features of
 * real BTC candles (examples/lib/btc_data.c: both CSV layouts, cleaned, every skipped row counted),
 * bucket by bucket over market regimes (volatility terciles of the training period), low to high.
 * What perfopt does here, each the seed's recommendation:
 *   - train_bucket, transfer_knowledge, update_dashboard and each step's phases are profiled
 *     (PO_PROFILE_FUNCTION, PO_SCOPE("train_step"));
 *   - transfer_knowledge warm-starts a bucket from the previous bucket's weights under the memory
 *     guard (po_guard_run: the bytes the copy needs), with a cold start as the cheaper fallback;
 *   - each bucket's matrices live in the optimizer's cache (po_optimizer_cache, get-or-load);
 *   - each bucket is a phase, and memory is cleaned between phases (po_phase_set_cleanup): the
 *     registered cleanup handler frees the training scratch, which the next bucket re-creates,
 *     and the attached cache gives back half of what it holds (the finished bucket's data);
 *   - a training monitor keeps the loss and the resource timeline (po_monitor_latest) in
 *     fixed-memory streams and redraws its dashboard every N steps as SVG charts reduced by
 *     po_chart_optimize (the seed's optimize_visualization), written atomically;
 *   - the report: JSON, text and HTML with suggestions.
 * Accuracy is out of sample (the last 30% of the period, which the model never saw), beside the
 * naive baseline that always says "up" and the training period's majority direction.
 * examples/progressive_training.py is the PyTorch version; README.md "Examples" and docs/cli.md
 * ("make demo") describe what it shows.
 *
 * usage: progressive_training [--data hourly|daily|PATH] [--out DIR] [--epochs N] [--short]
 *                             [--dashboard-every N] [--transfer-bytes N] [--no-report]
 *                             [--no-profiling]
 * Writes into DIR (default demo-out): dashboard_{loss,accuracy,memory,cpu}.svg, results.json and,
 * unless --no-report (for `perfopt run`, which writes the report itself), report.json, report.txt
 * and report.html. Exit status 0, 1 on a failure (named), 2 on a usage error.
 */
#include "perfopt.h"

#include "lib/btc_data.h"
#include "lib/mlp.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 256
#define LEARNING_RATE 1e-3f
#define SHORT_TRAIN_SAMPLES 1500
#define STREAM_BUCKETS 1600 /* 2 x the chart width: full resolution for the dashboard */
#define CHART_WIDTH 800

typedef struct options {
  const char *data, *out;
  int epochs, short_run, report, profiling, dashboard_every;
  long long transfer_bytes; /* -1: what the copy needs */
} options;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the training scratch and its cleanup handler ---------------------------------------- */

/* Activations and the batch being trained: re-created on first use after a cleanup. The cleanup
 * handler may run on the monitor's thread (under memory pressure), hence the lock. */
typedef struct scratch {
  pthread_mutex_t lock;
  mlp_scratch *act;
  float *bx, *by;
  int frees; /* times the cleanup handler released it */
} scratch;

static void scratch_release(scratch *s) {
  mlp_scratch_free(s->act);
  free(s->bx);
  free(s->by);
  s->act = NULL, s->bx = s->by = NULL;
}

static void free_training_scratch(po_cleanup_level level, void *user) {
  (void)level;
  scratch *s = user;
  pthread_mutex_lock(&s->lock);
  if (s->act) s->frees++;
  scratch_release(s);
  pthread_mutex_unlock(&s->lock);
}

/* With the lock held. */
static int scratch_ready(scratch *s) {
  if (s->act) return 0;
  s->act = mlp_scratch_create(BATCH);
  s->bx = malloc(BATCH * MLP_IN * sizeof(float));
  s->by = malloc(BATCH * sizeof(float));
  if (s->act && s->bx && s->by) return 0;
  scratch_release(s);
  return -1;
}

/* ---- the training monitor ---------------------------------------------------------------- */

typedef struct monitor {
  po_optimizer *opt;
  const char *out;
  int every;
  po_ds_stream *loss, *rss, *cpu; /* (step, loss), (seconds, bytes), (seconds, cores) */
  uint64_t steps;
  double t_base;        /* run seconds = now_s() - t_base */
  double last_sample_t; /* the newest resource sample recorded */
  int buckets_begun;
  uint64_t first_step[BTC_BUCKETS], last_step[BTC_BUCKETS];
  double begin_t[BTC_BUCKETS], end_t[BTC_BUCKETS];
  int evaluated[BTC_BUCKETS];
  double accuracy[BTC_BUCKETS], always_up[BTC_BUCKETS], majority[BTC_BUCKETS];
  int redraws, write_errors;
} monitor;

static double run_seconds(const monitor *m) {
  return now_s() - m->t_base;
}

static void record_resources(monitor *m) {
  po_sample s;
  if (po_monitor_latest(m->opt, &s) != 0 || s.t_seconds <= m->last_sample_t) return;
  m->last_sample_t = s.t_seconds;
  if (s.process_rss_bytes >= 0) po_ds_stream_push(m->rss, s.t_seconds, (double)s.process_rss_bytes);
  if (s.process_cpu_ratio >= 0) po_ds_stream_push(m->cpu, s.t_seconds, s.process_cpu_ratio);
}

/* Reads a stream into freshly allocated x/y (free both); returns the count or -1. */
static int64_t read_stream(const po_ds_stream *s, double **x, double **y) {
  size_t cap = po_ds_stream_max_points(s);
  *x = malloc((cap ? cap : 1) * sizeof **x);
  *y = malloc((cap ? cap : 1) * sizeof **y);
  int64_t n = *x && *y ? po_ds_stream_read(s, *x, *y, NULL, cap) : -1;
  if (n < 0) free(*x), free(*y), *x = *y = NULL;
  return n;
}

/* optimize_visualization, then an atomic write. */
static void save_chart(monitor *m, po_chart *c, const char *name) {
  char path[4096], err[256];
  snprintf(path, sizeof path, "%s/%s", m->out, name);
  if (!c || po_chart_optimize(c, CHART_WIDTH) != 0 || po_chart_save_svg(c, path, err, sizeof err)) {
    if (m->write_errors++ == 0)
      fprintf(stderr, "progressive_training: dashboard: %s\n", c ? err : "out of memory");
  }
  po_chart_destroy(c);
}

/* A line chart of one stream, with a band per bucket (in steps or in seconds). */
static po_chart *stream_chart(monitor *m, const char *title, const po_ds_stream *s,
                              const char *series, po_unit unit, int bands_in_steps) {
  po_chart *c = po_chart_create(PO_CHART_LINES, title);
  double *x, *y;
  int64_t n = c ? read_stream(s, &x, &y) : -1;
  if (n < 0) {
    po_chart_destroy(c);
    return NULL;
  }
  po_chart_set_axis(c, 'x', bands_in_steps ? "step" : "run time",
                    bands_in_steps ? PO_UNIT_COUNT : PO_UNIT_ELAPSED);
  if (n > 0) po_chart_add_series(c, series, unit, x, y, (size_t)n);
  free(x), free(y);
  for (int b = 0; b < m->buckets_begun; b++) {
    double from = bands_in_steps ? (double)m->first_step[b] : m->begin_t[b];
    double to = bands_in_steps ? (double)m->last_step[b] : m->end_t[b];
    if (to > from) po_chart_add_band(c, from, to, btc_bucket_names[b]);
  }
  return c;
}

static po_chart *accuracy_chart(const monitor *m) {
  po_chart *c = po_chart_create(PO_CHART_BARS, "out-of-sample accuracy per bucket");
  if (!c) return NULL;
  po_chart_set_axis(c, 'x', "accuracy", PO_UNIT_RATIO);
  for (int b = 0; b < BTC_BUCKETS; b++) {
    if (!m->evaluated[b]) continue;
    char label[64];
    snprintf(label, sizeof label, "%s: model", btc_bucket_names[b]);
    po_chart_add_bar(c, label, m->accuracy[b], NULL);
    snprintf(label, sizeof label, "%s: always up", btc_bucket_names[b]);
    po_chart_add_bar(c, label, m->always_up[b], NULL);
    snprintf(label, sizeof label, "%s: training majority", btc_bucket_names[b]);
    po_chart_add_bar(c, label, m->majority[b], NULL);
  }
  return c;
}

/* Redraws the four dashboard charts. */
static void update_dashboard(monitor *m) {
  PO_PROFILE_FUNCTION();
  record_resources(m);
  save_chart(m, stream_chart(m, "training loss per step", m->loss, "loss", PO_UNIT_NONE, 1),
             "dashboard_loss.svg");
  save_chart(m, accuracy_chart(m), "dashboard_accuracy.svg");
  save_chart(m, stream_chart(m, "memory (RSS)", m->rss, "RSS", PO_UNIT_BYTES, 0),
             "dashboard_memory.svg");
  save_chart(m, stream_chart(m, "CPU (share of one core)", m->cpu, "CPU", PO_UNIT_RATIO, 0),
             "dashboard_cpu.svg");
  m->redraws++;
}

static void record_step(monitor *m, float loss) {
  po_ds_stream_push(m->loss, (double)m->steps, (double)loss);
  m->steps++;
  record_resources(m);
  if (m->steps % (uint64_t)m->every == 0) update_dashboard(m);
}

static int monitor_init(monitor *m, po_optimizer *opt, const char *out, int every) {
  memset(m, 0, sizeof *m);
  m->opt = opt, m->out = out, m->every = every;
  po_sample s;
  double t = po_monitor_sample_now(opt, &s) == 0 ? s.t_seconds : 0;
  m->t_base = now_s() - t;
  m->last_sample_t = -1;
  if (po_ds_stream_create(STREAM_BUCKETS, &m->loss) ||
      po_ds_stream_create(STREAM_BUCKETS, &m->rss) || po_ds_stream_create(STREAM_BUCKETS, &m->cpu))
    return -1;
  record_resources(m);
  return 0;
}

static void monitor_free(monitor *m) {
  po_ds_stream_destroy(m->loss);
  po_ds_stream_destroy(m->rss);
  po_ds_stream_destroy(m->cpu);
}

/* ---- bucket data in the optimizer's cache ------------------------------------------------- */

/* A bucket's z-scored matrices (float32, as the model takes them) and the times that bound its
 * training and test windows. One allocation: the cache's free callback is free(). */
typedef struct bucket_data {
  size_t n_train, n_test;
  float *x_train, *y_train, *x_test, *y_test;
  double train_first_t, train_last_t, train_last_target_t, test_first_t, test_last_t;
} bucket_data;

typedef struct bucket_source {
  const btc_candles *candles;
  const btc_samples *samples;
  const btc_split *split;
  int bucket;
  int short_run;
} bucket_source;

static void zscore(const bucket_source *src, size_t j, float *dst) {
  const double *x = src->samples->x + j * BTC_FEATURES;
  for (int k = 0; k < BTC_FEATURES; k++)
    dst[k] = (float)((x[k] - src->split->mean[k]) / src->split->sd[k]);
}

/* The loader po_cache_get_or_load calls on a miss: builds the bucket's matrices. */
static int load_bucket(const void *key, size_t keylen, void *ctx, po_cache_loaded *out) {
  PO_PROFILE_FUNCTION();
  (void)key, (void)keylen;
  const bucket_source *src = ctx;
  const btc_samples *s = src->samples;
  size_t nt = src->split->n_train, n_train = 0, n_test = 0;
  for (size_t j = 0; j < s->n; j++)
    if (src->split->regime[j] == src->bucket) *(j < nt ? &n_train : &n_test) += 1;
  size_t skip = 0; /* --short: the last SHORT_TRAIN_SAMPLES of the bucket's training samples */
  if (src->short_run && n_train > SHORT_TRAIN_SAMPLES) skip = n_train - SHORT_TRAIN_SAMPLES;
  n_train -= skip;
  size_t floats = (n_train + n_test) * (MLP_IN + 1);
  bucket_data *d = malloc(sizeof *d + floats * sizeof(float));
  if (!d) return PO_ENOMEM;
  memset(d, 0, sizeof *d);
  d->n_train = n_train, d->n_test = n_test;
  d->x_train = (float *)(d + 1);
  d->y_train = d->x_train + n_train * MLP_IN;
  d->x_test = d->y_train + n_train;
  d->y_test = d->x_test + n_test * MLP_IN;
  size_t a = 0, b = 0, seen = 0;
  const double *t = src->candles->t;
  for (size_t j = 0; j < s->n; j++) {
    if (src->split->regime[j] != src->bucket) continue;
    if (j < nt && seen++ < skip) continue;
    size_t i = s->idx[j]; /* the candle the sample describes; its target is candle i + 1 */
    if (j < nt) {
      if (a == 0) d->train_first_t = t[i];
      d->train_last_t = t[i], d->train_last_target_t = t[i + 1];
      zscore(src, j, d->x_train + a * MLP_IN);
      d->y_train[a++] = s->y[j];
    } else {
      if (b == 0) d->test_first_t = t[i];
      d->test_last_t = t[i];
      zscore(src, j, d->x_test + b * MLP_IN);
      d->y_test[b++] = s->y[j];
    }
  }
  memset(out, 0, sizeof *out);
  out->value = d;
  out->size_bytes = sizeof *d + floats * sizeof(float);
  out->type = PO_RESOURCE_DATA;
  out->free_fn = free;
  return 0;
}

/* ---- knowledge transfer ------------------------------------------------------------------ */

typedef struct transfer_ctx {
  const mlp *previous;
  mlp *model; /* set by the operation that succeeded */
  uint64_t *rng;
} transfer_ctx;

/* The guard's contract: on failure leave ctx as it was (model stays NULL). */
static int warm_start(void *arg) {
  transfer_ctx *c = arg;
  mlp *m = malloc(sizeof *m);
  if (!m) return PO_EOOM;
  mlp_copy_weights(m, c->previous);
  c->model = m;
  return 0;
}

static int cold_start(void *arg) {
  transfer_ctx *c = arg;
  mlp *m = malloc(sizeof *m);
  if (!m) return PO_EOOM;
  mlp_init(m, c->rng);
  c->model = m;
  return 0;
}

/* The next bucket's model: a warm start from `previous` when the memory guard finds room for the
 * copy (its weights, gradients and Adam moments), else a cold start. `how` says which. */
static mlp *transfer_knowledge(po_optimizer *opt, const mlp *previous, int bucket,
                               long long required, uint64_t *rng, char *how, size_t howlen) {
  PO_PROFILE_FUNCTION();
  transfer_ctx ctx = {previous, NULL, rng};
  if (!previous) {
    snprintf(how, howlen, "cold start (first bucket)");
    return cold_start(&ctx) == 0 ? ctx.model : NULL;
  }
  char name[64];
  snprintf(name, sizeof name, "transfer to %s", btc_bucket_names[bucket]);
  po_guard_options go;
  po_guard_options_init(&go);
  go.name = name;
  po_guard_result res;
  int64_t need = required >= 0 ? (int64_t)required : (int64_t)sizeof(mlp);
  int rc = po_guard_run(opt, need, warm_start, cold_start, &ctx, &go, &res);
  if (rc != 0) return NULL;
  if (res.ran == 1)
    snprintf(how, howlen, "warm start (guard: %lld bytes needed)", (long long)need);
  else
    snprintf(how, howlen, "cold start (guard: %lld bytes needed, %lld available)", (long long)need,
             (long long)res.available_bytes);
  return ctx.model;
}

/* ---- training ---------------------------------------------------------------------------- */

typedef struct trainer {
  po_optimizer *opt;
  monitor *mon;
  scratch *scratch;
  int epochs;
  uint64_t rng;
} trainer;

typedef struct bucket_result {
  size_t n_train, n_test;
  double accuracy, always_up, majority;
  double final_accuracy; /* the model after the last bucket, on this bucket's test window */
  double train_first_t, train_last_t, train_last_target_t, test_first_t, test_last_t;
  char transfer[128];
} bucket_result;

/* One Adam step on the samples order[0..n) of the bucket's training set. */
static int train_step(trainer *tr, mlp *model, const bucket_data *d, const size_t *order,
                      size_t n) {
  PO_SCOPE("train_step");
  scratch *s = tr->scratch;
  pthread_mutex_lock(&s->lock);
  if (scratch_ready(s) != 0) {
    pthread_mutex_unlock(&s->lock);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    memcpy(s->bx + i * MLP_IN, d->x_train + order[i] * MLP_IN, MLP_IN * sizeof(float));
    s->by[i] = d->y_train[order[i]];
  }
  float loss = mlp_train_step(model, s->act, s->bx, s->by, n, LEARNING_RATE);
  pthread_mutex_unlock(&s->lock);
  record_step(tr->mon, loss);
  return 0;
}

static void evaluate(const mlp *model, const bucket_data *d, bucket_result *r) {
  PO_PROFILE_FUNCTION();
  size_t right = 0, ups = 0, train_ups = 0;
  float z[BATCH];
  for (size_t i = 0; i < d->n_test; i += BATCH) {
    size_t n = d->n_test - i < BATCH ? d->n_test - i : BATCH;
    mlp_predict(model, d->x_test + i * MLP_IN, n, z);
    for (size_t k = 0; k < n; k++) {
      int up = d->y_test[i + k] > 0.5f;
      right += (z[k] > 0) == up;
      ups += (size_t)up;
    }
  }
  for (size_t i = 0; i < d->n_train; i++) train_ups += d->y_train[i] > 0.5f;
  double nt = d->n_test ? (double)d->n_test : NAN;
  r->accuracy = (double)right / nt;
  r->always_up = (double)ups / nt;
  /* the training period's majority direction, said every time */
  r->majority = 2 * train_ups >= d->n_train ? r->always_up : 1 - r->always_up;
}

/* The bucket's data through the optimizer's cache: loaded on the first call (load_bucket), a hit
 * after that until a cleanup between buckets evicts it. Pinned until po_cache_release. */
static const bucket_data *fetch_bucket(po_cache *cache, bucket_source *src, po_cache_handle **h) {
  char key[64];
  int klen = snprintf(key, sizeof key, "bucket/%s", btc_bucket_names[src->bucket]);
  void *value = NULL;
  *h = NULL;
  if (!cache || po_cache_get_or_load(cache, key, (size_t)klen, load_bucket, src, &value, h) != 0)
    return NULL;
  return value;
}

/* One epoch of shuffled mini-batches over the bucket's training window (`order` has n_train). */
static int train_epoch(trainer *tr, mlp *model, const bucket_data *d, size_t *order) {
  for (size_t i = d->n_train; i > 1; i--) { /* Fisher-Yates */
    size_t k = (size_t)(mlp_rng_next(&tr->rng) % i), tmp = order[i - 1];
    order[i - 1] = order[k], order[k] = tmp;
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < d->n_train; i += BATCH)
    rc = train_step(tr, model, d, order + i, d->n_train - i < BATCH ? d->n_train - i : BATCH);
  return rc;
}

/* Trains `model` on the bucket's training window, fetching the data from the cache each epoch as
 * a data loader would (no sample of the test window is ever seen), then measures it on the test
 * window. */
static int train_bucket(trainer *tr, mlp *model, bucket_source *src, bucket_result *r) {
  PO_PROFILE_FUNCTION();
  po_cache *cache = po_optimizer_cache(tr->opt);
  po_cache_handle *h;
  const bucket_data *d = fetch_bucket(cache, src, &h);
  if (!d) return -1;
  size_t *order = malloc((d->n_train ? d->n_train : 1) * sizeof *order);
  for (size_t i = 0; order && i < d->n_train; i++) order[i] = i;
  int rc = order ? 0 : -1;
  for (int e = 0; rc == 0 && e < tr->epochs; e++) {
    if (e > 0 && !(d = fetch_bucket(cache, src, &h))) rc = -1;
    if (rc == 0) rc = train_epoch(tr, model, d, order);
    if (d && e + 1 < tr->epochs) po_cache_release(cache, h), h = NULL;
  }
  free(order);
  if (rc == 0) {
    evaluate(model, d, r);
    r->n_train = d->n_train, r->n_test = d->n_test;
    r->train_first_t = d->train_first_t, r->train_last_t = d->train_last_t;
    r->train_last_target_t = d->train_last_target_t;
    r->test_first_t = d->test_first_t, r->test_last_t = d->test_last_t;
  }
  po_cache_release(cache, h);
  return rc;
}

/* ---- output ------------------------------------------------------------------------------ */

static void format_time(double t, char *buf, size_t len) {
  time_t s = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&s, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M", &tm) == 0)
    snprintf(buf, len, "%.0f", t);
}

static void print_data_summary(const char *path, const btc_candles *c) {
  char first[32], last[32];
  format_time(c->t[0], first, sizeof first);
  format_time(c->t[c->n - 1], last, sizeof last);
  uint64_t skipped = 0;
  for (int r = 0; r < BTC_SKIP_REASONS; r++) skipped += c->skipped[r];
  printf("%s: %s layout%s, %llu rows read, %zu kept (%s .. %s UTC)\n", path,
         btc_layout_name(c->layout), c->newest_first ? ", newest first" : "",
         (unsigned long long)c->rows_read, c->n, first, last);
  printf("  skipped %llu:", (unsigned long long)skipped);
  for (int r = 0; r < BTC_SKIP_REASONS; r++)
    printf("%s %llu %s", r ? "," : "", (unsigned long long)c->skipped[r],
           btc_skip_name((btc_skip)r));
  printf(
      "\n  not reasons to skip: %llu NULL cells in an unused column (tradecount), %llu candles "
      "kept with zero volume\n",
      (unsigned long long)c->null_cells_unused, (unsigned long long)c->zero_volume);
  printf("  gaps: %zu (%llu candles missing, the largest %.0f periods of %.0f s)\n", c->gaps,
         (unsigned long long)c->missing_periods, c->largest_gap_periods, c->period_seconds);
}

static void print_buckets(const bucket_result *r, int nb) {
  printf("out-of-sample accuracy (the test window: the last 30%% of the samples)\n");
  printf("%-9s %7s %7s  %8s %9s %8s %10s  %s\n", "bucket", "train", "test", "model", "always-up",
         "majority", "last model", "how the model started");
  for (int b = 0; b < nb; b++)
    printf("%-9s %7zu %7zu  %8.3f %9.3f %8.3f %10.3f  %s\n", btc_bucket_names[b], r[b].n_train,
           r[b].n_test, r[b].accuracy, r[b].always_up, r[b].majority, r[b].final_accuracy,
           r[b].transfer);
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

typedef struct run_facts {
  const char *path;
  const btc_candles *candles;
  const btc_samples *samples;
  const btc_split *split;
  const bucket_result *buckets;
  int nbuckets, epochs, redraws, scratch_frees;
  uint64_t steps, loss_points_kept;
  po_cache_stats cache;
  double train_seconds, total_seconds;
} run_facts;

/* results.json: what the run found, for tests and for comparing with the Python version. */
static int write_results(const char *dir, const run_facts *r) {
  char path[4096];
  snprintf(path, sizeof path, "%s/results.json", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  const btc_candles *c = r->candles;
  fprintf(f, "{\n  \"data\": ");
  json_string(f, r->path);
  fprintf(f,
          ",\n  \"layout\": \"%s\",\n  \"newest_first\": %s,\n  \"rows_read\": %llu,\n"
          "  \"candles\": %zu,\n  \"skipped\": {",
          btc_layout_name(c->layout), c->newest_first ? "true" : "false",
          (unsigned long long)c->rows_read, c->n);
  for (int k = 0; k < BTC_SKIP_REASONS; k++)
    fprintf(f, "%s\"%s\": %llu", k ? ", " : "", btc_skip_name((btc_skip)k),
            (unsigned long long)c->skipped[k]);
  fprintf(f, "},\n  \"null_cells_unused\": %llu,\n  \"zero_volume_candles\": %llu,\n",
          (unsigned long long)c->null_cells_unused, (unsigned long long)c->zero_volume);
  fprintf(f, "  \"first_time\": %.0f,\n  \"last_time\": %.0f,\n  \"period_seconds\": %.0f,\n",
          c->t[0], c->t[c->n - 1], c->period_seconds);
  fprintf(f, "  \"gaps\": %zu,\n  \"missing_candles\": %llu,\n  \"largest_gap_periods\": %.1f,\n",
          c->gaps, (unsigned long long)c->missing_periods, c->largest_gap_periods);
  fprintf(f, "  \"samples\": %zu,\n  \"train_samples\": %zu,\n  \"features\": [", r->samples->n,
          r->split->n_train);
  for (int k = 0; k < BTC_FEATURES; k++)
    fprintf(f, "%s\"%s\"", k ? ", " : "", btc_feature_names[k]);
  fprintf(f, "],\n  \"vol_24_terciles\": [%.9g, %.9g],\n  \"epochs\": %d,\n  \"buckets\": [\n",
          r->split->q1, r->split->q2, r->epochs);
  for (int b = 0; b < r->nbuckets; b++) {
    const bucket_result *x = &r->buckets[b];
    fprintf(f,
            "    {\"bucket\": \"%s\", \"train_samples\": %zu, \"test_samples\": %zu, "
            "\"accuracy\": %.6f, \"always_up\": %.6f, \"majority\": %.6f, "
            "\"last_model_accuracy\": %.6f, "
            "\"train_first_time\": %.0f, \"train_last_time\": %.0f, "
            "\"train_last_target_time\": %.0f, \"test_first_time\": %.0f, "
            "\"test_last_time\": %.0f, \"transfer\": ",
            btc_bucket_names[b], x->n_train, x->n_test, x->accuracy, x->always_up, x->majority,
            x->final_accuracy, x->train_first_t, x->train_last_t, x->train_last_target_t,
            x->test_first_t, x->test_last_t);
    json_string(f, x->transfer);
    fprintf(f, "}%s\n", b + 1 < r->nbuckets ? "," : "");
  }
  fprintf(f,
          "  ],\n  \"steps\": %llu,\n  \"loss_points_kept\": %llu,\n"
          "  \"dashboard_redraws\": %d,\n  \"scratch_frees\": %d,\n",
          (unsigned long long)r->steps, (unsigned long long)r->loss_points_kept, r->redraws,
          r->scratch_frees);
  fprintf(f,
          "  \"cache\": {\"loads\": %llu, \"hits\": %llu, \"misses\": %llu, \"entries\": %llu, "
          "\"bytes\": %llu, \"evictions\": %llu, \"shrinks\": %llu},\n",
          (unsigned long long)r->cache.loads, (unsigned long long)r->cache.hits,
          (unsigned long long)r->cache.misses, (unsigned long long)r->cache.entries,
          (unsigned long long)r->cache.bytes, (unsigned long long)r->cache.evictions,
          (unsigned long long)r->cache.shrinks);
  fprintf(f, "  \"train_seconds\": %.3f,\n  \"total_seconds\": %.3f\n}\n", r->train_seconds,
          r->total_seconds);
  int bad = ferror(f);
  return fclose(f) == 0 && !bad ? 0 : -1;
}

static int write_report(po_optimizer *opt, const char *dir) {
  char path[4096];
  int rc = 0;
  snprintf(path, sizeof path, "%s/report.json", dir);
  if (po_optimizer_save_json(opt, path) != 0) rc = -1;
  snprintf(path, sizeof path, "%s/report.html", dir);
  if (rc == 0 && po_optimizer_save_html(opt, path) != 0) rc = -1;
  snprintf(path, sizeof path, "%s/report.txt", dir);
  FILE *f = rc == 0 ? fopen(path, "w") : NULL;
  if (rc == 0 && (!f || po_optimizer_write_text(opt, f, PO_SORT_TOTAL) != 0)) rc = -1;
  if (f && fclose(f) != 0) rc = -1;
  if (rc) fprintf(stderr, "progressive_training: cannot write the report: %s\n", po_last_error());
  return rc;
}

/* ---- options ----------------------------------------------------------------------------- */

static int usage(const char *msg, const char *arg) {
  if (msg) fprintf(stderr, "progressive_training: %s%s\n", msg, arg ? arg : "");
  fprintf(stderr,
          "usage: progressive_training [--data hourly|daily|PATH] [--out DIR] [--epochs N] "
          "[--short]\n                            [--dashboard-every N] [--transfer-bytes N] "
          "[--no-report] [--no-profiling]\n");
  return 2;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Returns 0 to go on, 2 on a usage error, 1 after --help. */
static int parse_args(int argc, char **argv, options *o) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long n;
    if (!strcmp(a, "--data") && v && *v) {
      o->data = v, i++;
    } else if (!strcmp(a, "--out") && v && *v) {
      o->out = v, i++;
    } else if (!strcmp(a, "--epochs")) {
      if (parse_int(v, 1, 1000, &n)) return usage("--epochs must be 1..1000: ", v);
      o->epochs = (int)n, i++;
    } else if (!strcmp(a, "--dashboard-every")) {
      if (parse_int(v, 1, 1000000000, &n)) return usage("--dashboard-every must be >= 1: ", v);
      o->dashboard_every = (int)n, i++;
    } else if (!strcmp(a, "--transfer-bytes")) {
      if (parse_int(v, 0, INT64_MAX, &n)) return usage("--transfer-bytes must be >= 0: ", v);
      o->transfer_bytes = n, i++;
    } else if (!strcmp(a, "--short")) {
      o->short_run = 1;
    } else if (!strcmp(a, "--no-report")) {
      o->report = 0;
    } else if (!strcmp(a, "--no-profiling")) {
      o->profiling = 0;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(NULL, NULL);
      return 1;
    } else {
      return usage(!strcmp(a, "--data") || !strcmp(a, "--out") ? "a value is missing after "
                                                               : "unknown option ",
                   a);
    }
  }
  if (o->short_run && o->epochs > 2) o->epochs = 2;
  if (!o->dashboard_every) o->dashboard_every = o->short_run ? 60 : 200;
  return 0;
}

static const char *data_path(const char *data) {
  if (!strcmp(data, "hourly")) return "examples/data/btcusdt-hourly.csv";
  if (!strcmp(data, "daily")) return "examples/data/btc-usd-daily.csv";
  return data;
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct dataset {
  btc_candles candles;
  btc_samples samples;
  btc_split split;
} dataset;

static int load_dataset(const char *path, dataset *d) {
  PO_PROFILE_FUNCTION();
  char err[512];
  memset(d, 0, sizeof *d);
  if (btc_load(path, &d->candles, err, sizeof err) != 0) {
    fprintf(stderr, "progressive_training: %s\n", err);
    return -1;
  }
  if (btc_features(&d->candles, &d->samples) != 0 ||
      btc_split_samples(&d->samples, &d->split) != 0) {
    fprintf(stderr, "progressive_training: %s: too few candles or out of memory\n", path);
    return -1;
  }
  return 0;
}

static void free_dataset(dataset *d) {
  btc_split_free(&d->split);
  btc_samples_free(&d->samples);
  btc_free(&d->candles);
}

/* The trained model's weights, kept in the cache as a model (type "model"). */
static void cache_model(po_cache *cache, const mlp *model, int bucket) {
  float *w = malloc(sizeof model->p);
  if (!w) return;
  memcpy(w, model->p, sizeof model->p);
  char key[64];
  int n = snprintf(key, sizeof key, "model/%s", btc_bucket_names[bucket]);
  po_cache_entry_opts eo = {PO_RESOURCE_MODEL, free, 0, 0};
  if (po_cache_put(cache, key, (size_t)n, w, sizeof model->p, &eo) != 0) free(w);
}

/* One bucket: a phase with its transfer, its data from the cache, training and evaluation. */
static int run_bucket(trainer *tr, const dataset *ds, int b, int short_run, long long transfer,
                      uint64_t *init_rng, mlp **model, bucket_result *r) {
  monitor *mon = tr->mon;
  char phase[64];
  snprintf(phase, sizeof phase, "bucket %s", btc_bucket_names[b]);
  po_phase_begin(tr->opt, phase);
  mon->buckets_begun = b + 1;
  mon->first_step[b] = mon->steps;
  mon->begin_t[b] = run_seconds(mon);
  mlp *next =
      transfer_knowledge(tr->opt, *model, b, transfer, init_rng, r->transfer, sizeof r->transfer);
  free(*model);
  *model = next;
  int rc = next ? 0 : -1;
  bucket_source src = {&ds->candles, &ds->samples, &ds->split, b, short_run};
  if (rc == 0) rc = train_bucket(tr, next, &src, r);
  if (rc == 0) cache_model(po_optimizer_cache(tr->opt), next, b);
  mon->last_step[b] = mon->steps;
  mon->end_t[b] = run_seconds(mon);
  if (rc == 0) {
    mon->evaluated[b] = 1;
    mon->accuracy[b] = r->accuracy, mon->always_up[b] = r->always_up;
    mon->majority[b] = r->majority;
  }
  po_phase_end(tr->opt); /* the cleanup between buckets runs here */
  return rc;
}

static po_optimizer *create_optimizer(const options *o) {
  po_config cfg;
  char err[512];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "progressive_training: %s\n", err);
    return NULL;
  }
  /* a run of seconds: sample often enough to draw the resource timeline (100 ms keeps the
   * monitor within its CPU budget; 50 ms made the advisor say so) */
  if (!getenv("PERFOPT_MONITOR_INTERVAL_MS")) cfg.monitor_interval_ms = 100;
  if (!o->profiling) cfg.enable_profiling = 0;
  po_optimizer *opt = NULL;
  if (po_optimizer_create(&cfg, &opt) != 0)
    fprintf(stderr, "progressive_training: cannot create the optimizer: %s\n", po_last_error());
  return opt;
}

/* The last model (after every bucket) on each bucket's test window: what progressive training
 * kept of the earlier regimes. The bucket data comes through the cache: the cleanups between
 * buckets evicted it, so it is loaded again. */
static void evaluate_final(po_optimizer *opt, const mlp *model, const dataset *ds,
                           bucket_result *res) {
  PO_PROFILE_FUNCTION();
  po_cache *cache = po_optimizer_cache(opt);
  for (int b = 0; cache && model && b < BTC_BUCKETS; b++) {
    bucket_source src = {&ds->candles, &ds->samples, &ds->split, b, 0};
    po_cache_handle *h;
    const bucket_data *d = fetch_bucket(cache, &src, &h);
    if (!d) continue;
    bucket_result r;
    evaluate(model, d, &r);
    res[b].final_accuracy = r.accuracy;
    po_cache_release(cache, h);
  }
}

static int train_all(po_optimizer *opt, const options *o, const dataset *ds, monitor *mon,
                     bucket_result *res, int *scratch_frees) {
  scratch sc;
  memset(&sc, 0, sizeof sc);
  pthread_mutex_init(&sc.lock, NULL);
  int handler = -1;
  po_cleanup_register(opt, "training scratch", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL,
                      free_training_scratch, &sc, &handler);
  po_phase_set_cleanup(opt, PO_CLEANUP_NORMAL);
  trainer tr = {opt, mon, &sc, o->epochs, 0x5EED};
  uint64_t init_rng = 42;
  mlp *model = NULL;
  int rc = 0;
  for (int b = 0; rc == 0 && b < BTC_BUCKETS; b++) {
    rc = run_bucket(&tr, ds, b, o->short_run, o->transfer_bytes, &init_rng, &model, &res[b]);
    if (rc)
      fprintf(stderr, "progressive_training: bucket %s failed (out of memory?)\n",
              btc_bucket_names[b]);
  }
  if (rc == 0) evaluate_final(opt, model, ds, res);
  free(model);
  update_dashboard(mon);
  if (handler >= 0) po_cleanup_unregister(opt, handler);
  scratch_release(&sc);
  pthread_mutex_destroy(&sc.lock);
  *scratch_frees = sc.frees;
  return rc;
}

static void print_split(const dataset *ds) {
  const btc_samples *s = &ds->samples;
  char a[32], b[32], c[32];
  format_time(ds->candles.t[s->idx[0]], a, sizeof a);
  format_time(ds->candles.t[s->idx[ds->split.n_train - 1]], b, sizeof b);
  format_time(ds->candles.t[s->idx[s->n - 1]], c, sizeof c);
  printf(
      "%zu samples, %d features; training period %s .. %s (%zu samples), test period .. %s; "
      "vol_24 terciles %.5f / %.5f\n",
      s->n, BTC_FEATURES, a, b, ds->split.n_train, c, ds->split.q1, ds->split.q2);
}

int main(int argc, char **argv) {
  options o = {"hourly", "demo-out", 12, 0, 1, 1, 0, -1};
  int prc = parse_args(argc, argv, &o);
  if (prc) return prc == 1 ? 0 : prc;
  double t_start = now_s();
  if (mkdir(o.out, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "progressive_training: cannot create %s: %s\n", o.out, strerror(errno));
    return 1;
  }
  po_optimizer *opt = create_optimizer(&o);
  if (!opt) return 1;
  const char *path = data_path(o.data);
  dataset ds;
  monitor mon;
  memset(&mon, 0, sizeof mon); /* monitor_free below reads mon.loss when the data failed */
  bucket_result res[BTC_BUCKETS];
  memset(res, 0, sizeof res);
  int rc = load_dataset(path, &ds);
  if (rc == 0) {
    print_data_summary(path, &ds.candles);
    print_split(&ds);
    if ((rc = monitor_init(&mon, opt, o.out, o.dashboard_every)) != 0)
      fprintf(stderr, "progressive_training: out of memory\n");
  }
  run_facts facts;
  memset(&facts, 0, sizeof facts);
  if (rc == 0) {
    double t0 = now_s();
    rc = train_all(opt, &o, &ds, &mon, res, &facts.scratch_frees);
    facts.train_seconds = now_s() - t0;
  }
  if (rc == 0) {
    print_buckets(res, BTC_BUCKETS);
    po_ds_stream_stats ls;
    po_ds_stream_get_stats(mon.loss, &ls);
    po_cache_get_stats(po_optimizer_cache(opt), &facts.cache);
    printf("%llu steps in %.2f s; dashboard redrawn %d times into %s/dashboard_*.svg\n",
           (unsigned long long)mon.steps, facts.train_seconds, mon.redraws, o.out);
    printf(
        "cleanup between buckets: the training scratch freed %d times, the cache shrunk %llu "
        "times (%llu entries evicted); the cache loaded %llu times, %llu hits\n",
        facts.scratch_frees, (unsigned long long)facts.cache.shrinks,
        (unsigned long long)facts.cache.evictions, (unsigned long long)facts.cache.loads,
        (unsigned long long)facts.cache.hits);
    facts.path = path, facts.candles = &ds.candles, facts.samples = &ds.samples;
    facts.split = &ds.split, facts.buckets = res, facts.nbuckets = BTC_BUCKETS;
    facts.epochs = o.epochs, facts.redraws = mon.redraws, facts.steps = mon.steps;
    facts.loss_points_kept = ls.buckets_used;
    if (o.report && write_report(opt, o.out) != 0) rc = -1;
    facts.total_seconds = now_s() - t_start;
    if (write_results(o.out, &facts) != 0) {
      fprintf(stderr, "progressive_training: cannot write %s/results.json\n", o.out);
      rc = -1;
    }
    if (o.report) { /* else perfopt run prints the table and writes the report */
      printf("\n");
      po_optimizer_write_text(opt, stdout, PO_SORT_SELF);
      printf("report: %s/report.json, report.txt and report.html\n", o.out);
    }
  }
  if (rc == 0 || mon.loss) monitor_free(&mon);
  free_dataset(&ds);
  po_optimizer_destroy(opt);
  return rc == 0 ? 0 : 1;
}
