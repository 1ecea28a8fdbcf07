/* The memory forecast (see forecast.h): bucket peaks, Theil–Sen slope, recent peak projected to
 * now, time to limit. Runs on the sampler's tick: no allocation, no system call, no lock. */
#include "monitor/forecast.h"

#include <math.h>

#define MAX_PAIRS (PO__FORECAST_BUCKETS * (PO__FORECAST_BUCKETS - 1) / 2)

static const char *const trend_names[] = {"unknown", "flat", "falling", "rising"};

const char *po__trend_name(po__trend t) {
  return (int)t >= 0 && (int)t < 4 ? trend_names[t] : "unknown";
}

static void swap(double *a, size_t i, size_t j) {
  double x = a[i];
  a[i] = a[j];
  a[j] = x;
}

/* Selection by partitioning around a median of three (Numerical Recipes' select, 0-based):
 * expected linear time; on return a[i] <= a[k] for i < k and a[i] >= a[k] for i > k. */
double po__select_kth(double *a, size_t n, size_t k) {
  size_t l = 0, ir = n - 1;
  for (;;) {
    if (ir <= l + 1) {
      if (ir == l + 1 && a[ir] < a[l]) swap(a, l, ir);
      return a[k];
    }
    size_t mid = l + (ir - l) / 2;
    swap(a, mid, l + 1);
    if (a[l] > a[ir]) swap(a, l, ir);
    if (a[l + 1] > a[ir]) swap(a, l + 1, ir);
    if (a[l] > a[l + 1]) swap(a, l, l + 1);
    size_t i = l + 1, j = ir;
    double pivot = a[l + 1];
    for (;;) {
      /* a[l] <= pivot <= a[ir] stop both scans; the bounds only say so to the analyzer */
      do i++;
      while (i < ir && a[i] < pivot);
      do j--;
      while (j > l && a[j] > pivot);
      if (j < i) break;
      swap(a, i, j);
    }
    a[l + 1] = a[j];
    a[j] = pivot;
    if (j >= k) ir = j - 1;
    if (j <= k) l = i;
  }
}

static double at_t(const po__ring_view *v, size_t i) {
  return v->t[(v->first + i) % v->cap];
}

typedef struct peaks {
  size_t m;
  double t[PO__FORECAST_BUCKETS], y[PO__FORECAST_BUCKETS];
} peaks;

/* The highest sample of each of up to PO__FORECAST_BUCKETS equal-time buckets over
 * [t_old, t_new], samples from index `from` on. */
static void bucket_peaks(const po__ring_view *v, size_t from, size_t count, double t_old,
                         double t_new, peaks *p) {
  size_t m = count < PO__FORECAST_BUCKETS ? count : PO__FORECAST_BUCKETS;
  p->m = 0;
  if (m == 0) return;
  double per_bucket = (double)m / (t_new - t_old);
  double bt[PO__FORECAST_BUCKETS], by[PO__FORECAST_BUCKETS];
  for (size_t b = 0; b < PO__FORECAST_BUCKETS; b++) by[b] = -INFINITY, bt[b] = NAN;
  size_t idx = (v->first + from) % v->cap; /* walked without a division per sample */
  for (size_t i = from; i < v->n; i++) {
    double t = v->t[idx], y = v->y[idx];
    if (++idx == v->cap) idx = 0;
    if (isnan(y)) continue;
    double pos = (t - t_old) * per_bucket;
    size_t b = !(pos > 0) ? 0 : pos < (double)m ? (size_t)pos : m - 1; /* times out of order */
    if (y > by[b]) by[b] = y, bt[b] = t;
  }
  for (size_t b = 0; b < m; b++)
    if (by[b] > -INFINITY) {
      p->t[p->m] = bt[b];
      p->y[p->m] = by[b];
      p->m++;
    }
}

/* Theil–Sen over the peaks [lo, hi): the median of the pairwise slopes, and the share of them
 * above / below zero. */
static double theil_sen(const peaks *p, size_t lo, size_t hi, double *pos_share,
                        double *neg_share) {
  double s[MAX_PAIRS];
  size_t n = 0, pos = 0, neg = 0;
  for (size_t i = lo; i < hi; i++)
    for (size_t j = i + 1; j < hi; j++) {
      double dt = p->t[j] - p->t[i];
      if (!(dt > 0)) continue;
      double k = (p->y[j] - p->y[i]) / dt;
      s[n++] = k;
      pos += k > 0;
      neg += k < 0;
    }
  *pos_share = *neg_share = 0;
  if (n == 0) return 0;
  *pos_share = (double)pos / (double)n;
  *neg_share = (double)neg / (double)n;
  double upper = po__select_kth(s, n, n / 2);
  if (n % 2) return upper;
  double lower = s[0]; /* the largest of the lower half */
  for (size_t i = 1; i < n / 2; i++)
    if (s[i] > lower) lower = s[i];
  return (lower + upper) / 2;
}

void po__forecast_compute(const po__ring_view *v, double window_s, double limit,
                          double level_since, po__forecast *out) {
  *out = (po__forecast){PO__TREND_UNKNOWN, 0, NAN, limit, -1, 0, 0, 0};
  if (!v || v->n == 0 || v->cap == 0) return;
  double t_new = at_t(v, v->n - 1);
  /* The window: the newest samples within window_s (times ascend, so scan back). */
  size_t from = v->n, count = 0, idx = (v->first + v->n) % v->cap;
  while (from > 0) {
    size_t prev = idx ? idx - 1 : v->cap - 1;
    if (!(t_new - v->t[prev] <= window_s)) break;
    idx = prev;
    from--;
    if (!isnan(v->y[idx])) count++;
  }
  out->points = count;
  if (count < PO__FORECAST_MIN_POINTS) return;
  double t_old = at_t(v, from);
  out->window_seconds = t_new - t_old;
  if (!(t_new > t_old)) return;
  peaks p;
  bucket_peaks(v, from, count, t_old, t_new, &p);
  double pos, neg, rpos = 0, rneg;
  double slope = theil_sen(&p, 0, p.m, &pos, &neg);
  int rising = slope > 0 && pos >= PO__FORECAST_RISING;
  /* The recent half must agree: a step (a dataset loaded, a cache filled) looks like growth to
   * every pair that spans it, but it is flat on either side. */
  if (rising) rising = theil_sen(&p, p.m / 2, p.m, &rpos, &rneg) > 0 && rpos >= PO__FORECAST_RISING;
  out->slope_per_second = slope;
  out->agreement = slope > 0 ? pos : slope < 0 ? neg : 0;
  int falling = slope < 0 && neg >= PO__FORECAST_RISING;
  out->trend = rising ? PO__TREND_RISING : falling ? PO__TREND_FALLING : PO__TREND_FLAT;
  /* The level now: the highest recent sample carried forward along a rising trend. */
  double recent = t_new - (t_new - t_old) / 4;
  if (level_since > recent) recent = level_since;
  double carry = out->trend == PO__TREND_RISING ? slope : 0;
  double level = -INFINITY;
  idx = (v->first + v->n) % v->cap;
  for (size_t i = v->n; i > from; i--) {
    idx = idx ? idx - 1 : v->cap - 1;
    double t = v->t[idx], y = v->y[idx];
    if (t < recent && level > -INFINITY) break;
    if (isnan(y)) continue;
    double at_now = y + carry * (t_new - t);
    if (at_now > level) level = at_now;
  }
  if (level == -INFINITY) return;
  out->level = level;
  if (!(limit > 0)) return;
  if (level >= limit)
    out->time_to_limit_seconds = 0;
  else if (out->trend == PO__TREND_RISING)
    out->time_to_limit_seconds = (limit - level) / slope;
}
