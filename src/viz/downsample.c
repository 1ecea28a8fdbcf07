/* Downsampling for line charts: M4, MinMax, LTTB and MinMaxLTTB, returning indices into the input.
 *
 * Every method walks the input once in chunks of DS_CHUNK values. float32 input and explicit x are
 * converted chunk by chunk into small stack buffers, so the kernels only ever see float64 arrays.
 * The kernels (min/max, sum, triangle areas) have an AVX2 version picked at run time and a portable
 * version; both compute the same values, element by element, in the same order of operations (no
 * FMA), so results do not depend on the machine except for the bucket sums of LTTB (partial sums).
 */
#include "viz/downsample.h"
#include "base/base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DS_X86 1
#include <immintrin.h>
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* the same rounding as the reference, on every target */
#endif

#define DS_CHUNK 1024
#define DS_NONE PO__DS_NONE
#define DS_DEFAULT_RATIO 4

/* ---- kernels: portable versions -------------------------------------------------------- */

typedef struct {
  double mn, mx;
  size_t nans;
} ds_mm;

static ds_mm mm_scalar(const double *y, size_t n) {
  ds_mm r = {INFINITY, -INFINITY, 0};
  for (size_t i = 0; i < n; i++) {
    double v = y[i];
    r.mn = v < r.mn ? v : r.mn; /* NaN compares false: ignored */
    r.mx = v > r.mx ? v : r.mx;
    r.nans += (size_t)(v != v);
  }
  return r;
}

/* First index of v in y[0, n) (n when absent). */
static size_t find_scalar(const double *y, size_t n, double v) {
  size_t i = 0;
  while (i < n && y[i] != v) i++;
  return i;
}

/* Sum and count of the non-NaN values. */
static double sum_scalar(const double *y, size_t n, size_t *cnt) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t c = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += y[i] == y[i] ? y[i] : 0.0;
    s1 += y[i + 1] == y[i + 1] ? y[i + 1] : 0.0;
    s2 += y[i + 2] == y[i + 2] ? y[i + 2] : 0.0;
    s3 += y[i + 3] == y[i + 3] ? y[i + 3] : 0.0;
    c += (size_t)(y[i] == y[i]) + (size_t)(y[i + 1] == y[i + 1]) + (size_t)(y[i + 2] == y[i + 2]) +
         (size_t)(y[i + 3] == y[i + 3]);
  }
  for (; i < n; i++) {
    s0 += y[i] == y[i] ? y[i] : 0.0;
    c += (size_t)(y[i] == y[i]);
  }
  *cnt += c;
  return (s0 + s1) + (s2 + s3);
}

/* Largest area of the chunk, its first index (*arg, DS_NONE when every area is NaN) and the
 * number of NaN areas (gaps). */
static double areamax_scalar(const double *x, double xbase, const double *y, size_t n, double ax,
                             double ay, double avgx, double avgy, size_t *arg, size_t *nans,
                             const double *pf, size_t pf_len) {
  (void)pf;
  (void)pf_len;
  double k1 = ax - avgx, k2 = avgy - ay, best = -INFINITY;
  size_t bad = 0, at = DS_NONE;
  for (size_t j = 0; j < n; j++) {
    double xj = x ? x[j] : xbase + (double)j;
    double a = fabs(k1 * (y[j] - ay) - (ax - xj) * k2);
    if (a > best || (at == DS_NONE && a == a)) {
      best = a;
      at = j;
    }
    bad += (size_t)(a != a);
  }
  *nans = bad;
  *arg = at;
  return best;
}

#ifdef DS_X86
__attribute__((target("avx2"))) static ds_mm mm_avx2(const double *y, size_t n) {
  __m256d mn0 = _mm256_set1_pd(INFINITY), mn1 = mn0;
  __m256d mx0 = _mm256_set1_pd(-INFINITY), mx1 = mx0;
  __m256i nan0 = _mm256_setzero_si256(), nan1 = nan0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d a = _mm256_loadu_pd(y + i), b = _mm256_loadu_pd(y + i + 4);
    /* min(a, acc) returns acc when a is NaN */
    mn0 = _mm256_min_pd(a, mn0);
    mn1 = _mm256_min_pd(b, mn1);
    mx0 = _mm256_max_pd(a, mx0);
    mx1 = _mm256_max_pd(b, mx1);
    nan0 = _mm256_sub_epi64(nan0, _mm256_castpd_si256(_mm256_cmp_pd(a, a, _CMP_UNORD_Q)));
    nan1 = _mm256_sub_epi64(nan1, _mm256_castpd_si256(_mm256_cmp_pd(b, b, _CMP_UNORD_Q)));
  }
  double m[4], x[4];
  long long c[4];
  _mm256_storeu_pd(m, _mm256_min_pd(mn0, mn1));
  _mm256_storeu_pd(x, _mm256_max_pd(mx0, mx1));
  _mm256_storeu_si256((__m256i *)c, _mm256_add_epi64(nan0, nan1));
  ds_mm r = mm_scalar(y + i, n - i);
  for (int k = 0; k < 4; k++) {
    r.mn = m[k] < r.mn ? m[k] : r.mn;
    r.mx = x[k] > r.mx ? x[k] : r.mx;
    r.nans += (size_t)c[k];
  }
  return r;
}

__attribute__((target("avx2"))) static size_t find_avx2(const double *y, size_t n, double v) {
  const __m256d t = _mm256_set1_pd(v);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d a = _mm256_cmp_pd(_mm256_loadu_pd(y + i), t, _CMP_EQ_OQ);
    __m256d b = _mm256_cmp_pd(_mm256_loadu_pd(y + i + 4), t, _CMP_EQ_OQ);
    int m = _mm256_movemask_pd(a) | (_mm256_movemask_pd(b) << 4);
    if (m) return i + (size_t)__builtin_ctz((unsigned)m);
  }
  return i + find_scalar(y + i, n - i, v);
}

__attribute__((target("avx2"))) static double sum_avx2(const double *y, size_t n, size_t *cnt) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0;
  __m256i c0 = _mm256_setzero_si256(), c1 = c0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256d a = _mm256_loadu_pd(y + i), b = _mm256_loadu_pd(y + i + 4);
    __m256d oa = _mm256_cmp_pd(a, a, _CMP_ORD_Q), ob = _mm256_cmp_pd(b, b, _CMP_ORD_Q);
    s0 = _mm256_add_pd(s0, _mm256_and_pd(a, oa));
    s1 = _mm256_add_pd(s1, _mm256_and_pd(b, ob));
    c0 = _mm256_sub_epi64(c0, _mm256_castpd_si256(oa));
    c1 = _mm256_sub_epi64(c1, _mm256_castpd_si256(ob));
  }
  double s[4];
  long long c[4];
  _mm256_storeu_pd(s, _mm256_add_pd(s0, s1));
  _mm256_storeu_si256((__m256i *)c, _mm256_add_epi64(c0, c1));
  size_t tail = 0;
  double t = sum_scalar(y + i, n - i, &tail);
  *cnt += tail + (size_t)(c[0] + c[1] + c[2] + c[3]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + t;
}

/* Per lane: the largest area and the index where it first appeared (strict >), so the smallest
 * index among lanes holding the overall maximum is the first occurrence. While computing, it
 * prefetches pf[0..pf_len) (the next chunk the bucket sums will stream) one line per step, so
 * the arithmetic hides the memory latency of the sums. */
__attribute__((target("avx2"))) static double areamax_avx2(const double *x, double xbase,
                                                           const double *y, size_t n, double ax,
                                                           double ay, double avgx, double avgy,
                                                           size_t *arg, size_t *nans,
                                                           const double *pf, size_t pf_len) {
  const __m256d k1 = _mm256_set1_pd(ax - avgx), k2 = _mm256_set1_pd(avgy - ay);
  const __m256d vay = _mm256_set1_pd(ay), vax = _mm256_set1_pd(ax);
  const __m256d sign = _mm256_set1_pd(-0.0), eight = _mm256_set1_pd(8.0);
  __m256d ja = _mm256_setr_pd(0, 1, 2, 3), jb = _mm256_setr_pd(4, 5, 6, 7);
  const __m256d xoff = _mm256_set1_pd(xbase);
  __m256d m0 = _mm256_set1_pd(-INFINITY), m1 = m0;
  __m256d i0 = _mm256_set1_pd(-1), i1 = i0;
  __m256i c0 = _mm256_setzero_si256(), c1 = c0;
  size_t j = 0;
#define DS_AREA8(X0, X1)                                                                          \
  do {                                                                                            \
    __m256d a0 = _mm256_sub_pd(_mm256_mul_pd(k1, _mm256_sub_pd(_mm256_loadu_pd(y + j), vay)),     \
                               _mm256_mul_pd(_mm256_sub_pd(vax, (X0)), k2));                      \
    __m256d a1 = _mm256_sub_pd(_mm256_mul_pd(k1, _mm256_sub_pd(_mm256_loadu_pd(y + j + 4), vay)), \
                               _mm256_mul_pd(_mm256_sub_pd(vax, (X1)), k2));                      \
    a0 = _mm256_andnot_pd(sign, a0);                                                              \
    a1 = _mm256_andnot_pd(sign, a1);                                                              \
    __m256d g0 = _mm256_cmp_pd(a0, m0, _CMP_GT_OQ), g1 = _mm256_cmp_pd(a1, m1, _CMP_GT_OQ);       \
    m0 = _mm256_blendv_pd(m0, a0, g0);                                                            \
    m1 = _mm256_blendv_pd(m1, a1, g1);                                                            \
    i0 = _mm256_blendv_pd(i0, ja, g0);                                                            \
    i1 = _mm256_blendv_pd(i1, jb, g1);                                                            \
    c0 = _mm256_sub_epi64(c0, _mm256_castpd_si256(_mm256_cmp_pd(a0, a0, _CMP_UNORD_Q)));          \
    c1 = _mm256_sub_epi64(c1, _mm256_castpd_si256(_mm256_cmp_pd(a1, a1, _CMP_UNORD_Q)));          \
    ja = _mm256_add_pd(ja, eight);                                                                \
    jb = _mm256_add_pd(jb, eight);                                                                \
  } while (0)
  if (x) {
    for (; j + 8 <= n; j += 8) {
      if (j < pf_len) _mm_prefetch((const char *)(pf + j), _MM_HINT_T0);
      DS_AREA8(_mm256_loadu_pd(x + j), _mm256_loadu_pd(x + j + 4));
    }
  } else {
    for (; j + 8 <= n; j += 8) { /* xbase + j: exact, integers below 2^53 */
      if (j < pf_len) _mm_prefetch((const char *)(pf + j), _MM_HINT_T0);
      DS_AREA8(_mm256_add_pd(xoff, ja), _mm256_add_pd(xoff, jb));
    }
  }
#undef DS_AREA8
  double m[8], ix[8];
  long long c[4];
  _mm256_storeu_pd(m, m0);
  _mm256_storeu_pd(m + 4, m1);
  _mm256_storeu_pd(ix, i0);
  _mm256_storeu_pd(ix + 4, i1);
  _mm256_storeu_si256((__m256i *)c, _mm256_add_epi64(c0, c1));
  size_t tail = 0, targ = DS_NONE;
  double best = areamax_scalar(x ? x + j : NULL, xbase + (double)j, y + j, n - j, ax, ay, avgx,
                               avgy, &targ, &tail, NULL, 0);
  size_t at = targ == DS_NONE ? DS_NONE : j + targ;
  for (int k = 0; k < 8; k++) {
    if (ix[k] < 0) continue; /* lane saw only NaN */
    size_t li = (size_t)ix[k];
    if (at == DS_NONE || m[k] > best || (m[k] == best && li < at)) {
      best = m[k];
      at = li;
    }
  }
  *nans = tail + (size_t)(c[0] + c[1] + c[2] + c[3]);
  *arg = at;
  return best;
}
#endif

typedef struct {
  ds_mm (*mm)(const double *, size_t);
  double (*sum)(const double *, size_t, size_t *);
  size_t (*find)(const double *, size_t, double);
  double (*areamax)(const double *, double, const double *, size_t, double, double, double, double,
                    size_t *, size_t *, const double *, size_t);
} ds_kernels;

static ds_kernels ds_pick_kernels(void) {
  ds_kernels k = {mm_scalar, sum_scalar, find_scalar, areamax_scalar};
#ifdef DS_X86
  if (!getenv("PO_DS_SCALAR") && __builtin_cpu_supports("avx2")) {
    k.mm = mm_avx2;
    k.sum = sum_avx2;
    k.find = find_avx2;
    k.areamax = areamax_avx2;
  }
#endif
  return k;
}

/* ---- input access ------------------------------------------------------------------------ */

/* Chunk [s, s+len) of y (and x) as float64 arrays: the input itself when it is float64, else a
 * converted copy in the caller's buffers. *xp is NULL for implicit x. */
static const double *ds_y_chunk(const po_ds_input *in, size_t s, size_t len, double *buf) {
  if (in->y_type == PO_DS_F64) return (const double *)in->y + s;
  const float *f = (const float *)in->y + s;
  for (size_t i = 0; i < len; i++) buf[i] = (double)f[i];
  return buf;
}

static const double *ds_x_chunk(const po_ds_input *in, size_t s, size_t len, double *buf) {
  if (!in->x) return NULL;
  if (in->x_type == PO_DS_F64) return (const double *)in->x + s;
  const float *f = (const float *)in->x + s;
  for (size_t i = 0; i < len; i++) buf[i] = (double)f[i];
  return buf;
}

static double ds_x_at(const po_ds_input *in, size_t i) {
  if (!in->x) return (double)i;
  return in->x_type == PO_DS_F32 ? (double)((const float *)in->x)[i] : ((const double *)in->x)[i];
}

static double ds_y_at(const po_ds_input *in, size_t i) {
  return in->y_type == PO_DS_F32 ? (double)((const float *)in->y)[i] : ((const double *)in->y)[i];
}

static int ds_check_input(const po_ds_input *in, size_t n_out, const char *what, char *errbuf,
                          size_t errlen) {
  if (!in) return po__errf(PO_EINVAL, errbuf, errlen, "%s: input is NULL", what);
  if (in->n > 0 && !in->y) return po__errf(PO_EINVAL, errbuf, errlen, "%s: y is NULL", what);
  if ((in->x_type != PO_DS_F64 && in->x_type != PO_DS_F32) ||
      (in->y_type != PO_DS_F64 && in->y_type != PO_DS_F32))
    return po__errf(PO_EINVAL, errbuf, errlen, "%s: unknown value type", what);
  if (n_out == 0)
    return po__errf(PO_EINVAL, errbuf, errlen, "%s: the output width/point count is 0", what);
  if (!in->x || in->n < 2) return 0;
  /* x must be non-decreasing and not NaN: one branch-free pass, then find the first culprit. */
  double buf[DS_CHUNK + 1];
  for (size_t s = 0; s + 1 < in->n; s += DS_CHUNK) {
    size_t len = in->n - s < DS_CHUNK + 1 ? in->n - s : DS_CHUNK + 1;
    const double *x = ds_x_chunk(in, s, len, buf);
    int bad = 0;
    for (size_t i = 0; i + 1 < len; i++) bad |= !(x[i] <= x[i + 1]);
    if (bad) {
      for (size_t i = 0; i + 1 < len; i++) {
        if (x[i] != x[i]) {
          return po__errf(PO_EINVAL, errbuf, errlen, "%s: x[%zu] is NaN", what, s + i);
        }
        if (!(x[i] <= x[i + 1])) {
          if (x[i + 1] != x[i + 1])
            return po__errf(PO_EINVAL, errbuf, errlen, "%s: x[%zu] is NaN", what, s + i + 1);
          return po__errf(PO_EINVAL, errbuf, errlen,
                          "%s: x is not sorted: x[%zu] = %g comes after x[%zu] = %g", what,
                          s + i + 1, x[i + 1], s + i, x[i]);
        }
      }
    }
  }
  return 0;
}

static int ds_emit(size_t *out, size_t cap, size_t *count, const size_t *idx, size_t k,
                   char *errbuf, size_t errlen) {
  /* sort the few candidates of one column ascending, drop repeats */
  size_t v[8];
  size_t m = 0;
  for (size_t i = 0; i < k; i++) {
    if (idx[i] == DS_NONE) continue;
    size_t j = m;
    while (j > 0 && v[j - 1] > idx[i]) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = idx[i];
    m++;
  }
  for (size_t i = 0; i < m; i++) {
    if (i > 0 && v[i] == v[i - 1]) continue;
    if (*count >= cap)
      return po__errf(PO_ERANGE, errbuf, errlen,
                      "downsample: output capacity %zu is too small (see po_ds_capacity)", cap);
    out[(*count)++] = v[i];
  }
  return 0;
}

/* ---- M4 and MinMax ----------------------------------------------------------------------- */

size_t po_ds_column(double x, double lo, double hi, size_t width) {
  if (width == 0 || !(hi > lo)) return 0;
  double t = (x - lo) * ((double)width / (hi - lo));
  if (!(t > 0)) return 0;
  if (t >= (double)width) return width - 1;
  return (size_t)t;
}

/* First index in [s, n) whose column is >= c (columns are monotone in x, x is sorted). */
static size_t ds_lower_bound(const po_ds_input *in, size_t s, size_t n, size_t c, double lo,
                             double scale) {
  size_t a = s, b = n;
  while (a < b) {
    size_t mid = a + (b - a) / 2;
    double t = (ds_x_at(in, mid) - lo) * scale;
    if (t >= (double)c)
      b = mid;
    else
      a = mid + 1;
  }
  return a;
}

/* Min/max (first occurrence) and first NaN of y[s, e). */
static void ds_column_extremes(const po_ds_input *in, const ds_kernels *k, size_t s, size_t e,
                               size_t *imin, size_t *imax, size_t *igap) {
  double buf[DS_CHUNK];
  double mn = 0, mx = 0;
  *imin = *imax = *igap = DS_NONE;
  for (size_t b = s; b < e; b += DS_CHUNK) {
    size_t len = e - b < DS_CHUNK ? e - b : DS_CHUNK;
    const double *y = ds_y_chunk(in, b, len, buf);
    ds_mm r = k->mm(y, len);
    if (PO__UNLIKELY(r.nans > 0)) {
      if (*igap == DS_NONE) {
        for (size_t i = 0; i < len; i++) {
          if (y[i] != y[i]) {
            *igap = b + i;
            break;
          }
        }
      }
      if (r.nans == len) continue;
    }
    /* rare after the first chunk: a new extreme means a short scan of this cached chunk */
    if (*imin == DS_NONE || r.mn < mn) {
      mn = r.mn;
      *imin = b + k->find(y, len, mn);
    }
    if (*imax == DS_NONE || r.mx > mx) {
      mx = r.mx;
      *imax = b + k->find(y, len, mx);
    }
  }
}

void po__ds_extremes(const double *y, size_t n, size_t *imin, size_t *imax, size_t *igap) {
  po_ds_input in = {0};
  in.y = y;
  in.n = n;
  ds_kernels k = ds_pick_kernels();
  ds_column_extremes(&in, &k, 0, n, imin, imax, igap);
}

static int64_t ds_columns(const po_ds_input *in, size_t width, int m4, size_t *out, size_t cap,
                          char *errbuf, size_t errlen) {
  const char *what = m4 ? "M4" : "MinMax";
  int rc = ds_check_input(in, width, what, errbuf, errlen);
  if (rc) return rc;
  if (!out && in->n > 0) return po__errf(PO_EINVAL, errbuf, errlen, "%s: out is NULL", what);
  size_t n = in->n, count = 0;
  if (n == 0) return 0;
  double lo = in->x_lo, hi = in->x_hi;
  if (!(hi > lo) || lo != lo || hi != hi) {
    lo = ds_x_at(in, 0);
    hi = ds_x_at(in, n - 1);
  }
  double scale = hi > lo ? (double)width / (hi - lo) : 0.0;
  ds_kernels k = ds_pick_kernels();
  size_t s = 0;
  for (size_t c = 0; c < width && s < n; c++) {
    size_t e = (c + 1 == width || scale == 0.0) ? n : ds_lower_bound(in, s, n, c + 1, lo, scale);
    if (e == s) continue;
    size_t idx[5];
    ds_column_extremes(in, &k, s, e, &idx[1], &idx[2], &idx[3]);
    idx[0] = m4 ? s : DS_NONE;
    idx[4] = m4 ? e - 1 : DS_NONE;
    if (idx[1] == DS_NONE) idx[0] = idx[4] = DS_NONE; /* all gap: the gap marker alone */
    rc = ds_emit(out, cap, &count, idx, 5, errbuf, errlen);
    if (rc) return rc;
    s = e;
  }
  return (int64_t)count;
}

int64_t po_ds_m4(const po_ds_input *in, size_t width, size_t *out, size_t cap, char *errbuf,
                 size_t errlen) {
  return ds_columns(in, width, 1, out, cap, errbuf, errlen);
}

int64_t po_ds_minmax(const po_ds_input *in, size_t width, size_t *out, size_t cap, char *errbuf,
                     size_t errlen) {
  return ds_columns(in, width, 0, out, cap, errbuf, errlen);
}

/* ---- LTTB -------------------------------------------------------------------------------- */

/* Average x and y of the non-NaN points of [s, e). Returns 0 when all are NaN. */
static int ds_bucket_avg(const po_ds_input *in, const ds_kernels *k, size_t s, size_t e,
                         double *avgx, double *avgy) {
  double ybuf[DS_CHUNK], xbuf[DS_CHUNK];
  double sy = 0, sx = 0;
  size_t cnt = 0;
  int has_nan = 0;
  for (size_t b = s; b < e; b += DS_CHUNK) {
    size_t len = e - b < DS_CHUNK ? e - b : DS_CHUNK;
    const double *y = ds_y_chunk(in, b, len, ybuf);
    size_t c = 0;
    sy += k->sum(y, len, &c);
    cnt += c;
    if (c != len) has_nan = 1;
    if (in->x && !has_nan) {
      size_t dummy = 0;
      sx += k->sum(ds_x_chunk(in, b, len, xbuf), len, &dummy);
    }
  }
  if (cnt == 0) return 0;
  if (!in->x) {
    if (!has_nan) {
      *avgx = (double)(s + e - 1) / 2.0; /* exact: the mean of consecutive integers */
    } else {
      sx = 0;
      for (size_t i = s; i < e; i++)
        if (ds_y_at(in, i) == ds_y_at(in, i)) sx += (double)i;
      *avgx = sx / (double)cnt;
    }
  } else if (has_nan) {
    sx = 0;
    for (size_t i = s; i < e; i++)
      if (ds_y_at(in, i) == ds_y_at(in, i)) sx += ds_x_at(in, i);
    *avgx = sx / (double)cnt;
  } else {
    *avgx = sx / (double)cnt;
  }
  *avgy = sy / (double)cnt;
  return 1;
}

/* Running sums of one bucket, fed chunk by chunk (same chunks and order as ds_bucket_avg). */
typedef struct {
  size_t s, e, pos, cnt;
  double sy, sx;
  int nan;
} ds_acc;

static void ds_acc_init(ds_acc *a, size_t s, size_t e) {
  memset(a, 0, sizeof *a);
  a->s = a->pos = s;
  a->e = e;
}

static void ds_acc_step(const po_ds_input *in, const ds_kernels *k, ds_acc *a, double *ybuf,
                        double *xbuf) {
  if (a->pos >= a->e) return;
  size_t len = a->e - a->pos < DS_CHUNK ? a->e - a->pos : DS_CHUNK;
  size_t c = 0;
  a->sy += k->sum(ds_y_chunk(in, a->pos, len, ybuf), len, &c);
  a->cnt += c;
  if (c != len) a->nan = 1;
  if (in->x && !a->nan) {
    size_t dummy = 0;
    a->sx += k->sum(ds_x_chunk(in, a->pos, len, xbuf), len, &dummy);
  }
  a->pos += len;
}

static int ds_acc_avg(const po_ds_input *in, const ds_kernels *k, const ds_acc *a, double *avgx,
                      double *avgy) {
  if (a->nan) return ds_bucket_avg(in, k, a->s, a->e, avgx, avgy); /* gaps: the slow path */
  if (a->cnt == 0) return 0;
  *avgx = in->x ? a->sx / (double)a->cnt : (double)(a->s + a->e - 1) / 2.0;
  *avgy = a->sy / (double)a->cnt;
  return 1;
}

/* LTTB on a validated input; n > n_out >= 3. Bucket i's areas need the average of bucket i+1, so
 * the sums of bucket i+2 (streamed from memory) are interleaved with the areas of bucket i (still
 * in cache from two steps ago): the memory stream and the arithmetic overlap. */
static int64_t ds_lttb_core(const po_ds_input *in, size_t n_out, size_t *out, size_t cap,
                            char *errbuf, size_t errlen) {
  size_t n = in->n, count = 0;
  ds_kernels k = ds_pick_kernels();
  double every = (double)(n - 2) / (double)(n_out - 2);
  double ybuf[DS_CHUNK], xbuf[DS_CHUNK], ybuf2[DS_CHUNK], xbuf2[DS_CHUNK];
  size_t a = 0;
  size_t first[1] = {0};
  int rc = ds_emit(out, cap, &count, first, 1, errbuf, errlen);
  if (rc) return rc;
    /* the average range of step i is [floor((i+1)*every)+1, floor((i+2)*every)+1) within n */
#define DS_AVG_RANGE(acc, i)                                  \
  do {                                                        \
    size_t s_ = (size_t)floor((double)((i) + 1) * every) + 1; \
    size_t e_ = (size_t)floor((double)((i) + 2) * every) + 1; \
    ds_acc_init((acc), s_, e_ > n ? n : e_);                  \
  } while (0)
  ds_acc acc, next;
  DS_AVG_RANGE(&acc, 0);
  while (acc.pos < acc.e) ds_acc_step(in, &k, &acc, ybuf2, xbuf2);
  for (size_t i = 0; i + 2 < n_out; i++) {
    double avgx, avgy;
    if (!ds_acc_avg(in, &k, &acc, &avgx, &avgy)) {
      /* the next bucket is all gap: aim at the last point instead */
      avgx = ds_x_at(in, n - 1);
      avgy = ds_y_at(in, n - 1);
    }
    if (i + 3 < n_out)
      DS_AVG_RANGE(&next, i + 1);
    else
      ds_acc_init(&next, 0, 0);
    size_t rs = (size_t)floor((double)i * every) + 1;
    size_t re = (size_t)floor((double)(i + 1) * every) + 1;
    if (re > n - 1) re = n - 1;
    double ax = ds_x_at(in, a), ay = ds_y_at(in, a);
    if (ay != ay) ay = avgy; /* a gap marker was kept as the anchor: use the average */
    double best = -1.0;
    size_t pick = DS_NONE, gap = DS_NONE;
    /* the sums' next-but-one chunk is prefetched while this chunk's areas are computed */
    const double *pf_base = in->y_type == PO_DS_F64 ? (const double *)in->y : NULL;
    for (size_t b = rs; b < re || next.pos < next.e; b += DS_CHUNK) {
      if (b >= re) {
        ds_acc_step(in, &k, &next, ybuf2, xbuf2);
        continue;
      }
      size_t len = re - b < DS_CHUNK ? re - b : DS_CHUNK;
      const double *y = ds_y_chunk(in, b, len, ybuf);
      const double *x = ds_x_chunk(in, b, len, xbuf);
      size_t nans = 0, arg = DS_NONE;
      size_t pf_at = next.pos + DS_CHUNK, pf_len = 0;
      if (pf_base && pf_at < next.e) pf_len = next.e - pf_at < DS_CHUNK ? next.e - pf_at : DS_CHUNK;
      double m = k.areamax(x, (double)b, y, len, ax, ay, avgx, avgy, &arg, &nans,
                           pf_len ? pf_base + pf_at : NULL, pf_len);
      ds_acc_step(in, &k, &next, ybuf2, xbuf2);
      if (PO__UNLIKELY(nans > 0) && gap == DS_NONE) {
        for (size_t j = 0; j < len; j++) {
          if (y[j] != y[j]) {
            gap = b + j;
            break;
          }
        }
      }
      if (arg != DS_NONE && m > best) {
        best = m;
        pick = b + arg;
      }
    }
    if (pick == DS_NONE) pick = gap != DS_NONE ? gap : rs; /* bucket all NaN */
    size_t idx[2] = {pick, gap};
    rc = ds_emit(out, cap, &count, idx, 2, errbuf, errlen);
    if (rc) return rc;
    a = pick;
    acc = next;
  }
#undef DS_AVG_RANGE
  size_t last[1] = {n - 1};
  rc = ds_emit(out, cap, &count, last, 1, errbuf, errlen);
  if (rc) return rc;
  return (int64_t)count;
}

static int64_t ds_all(size_t n, size_t *out, size_t cap, char *errbuf, size_t errlen) {
  if (n > cap)
    return po__errf(PO_ERANGE, errbuf, errlen,
                    "downsample: output capacity %zu is too small for %zu points", cap, n);
  for (size_t i = 0; i < n; i++) out[i] = i;
  return (int64_t)n;
}

int64_t po_ds_lttb(const po_ds_input *in, size_t n_out, size_t *out, size_t cap, char *errbuf,
                   size_t errlen) {
  int rc = ds_check_input(in, n_out, "LTTB", errbuf, errlen);
  if (rc) return rc;
  if (!out && in->n > 0) return po__errf(PO_EINVAL, errbuf, errlen, "LTTB: out is NULL");
  if (in->n <= n_out || in->n <= 2) return ds_all(in->n, out, cap, errbuf, errlen);
  if (n_out < 3)
    return po__errf(PO_EINVAL, errbuf, errlen,
                    "LTTB: n_out must be at least 3 (first, last and one bucket), got %zu", n_out);
  return ds_lttb_core(in, n_out, out, cap, errbuf, errlen);
}

int64_t po_ds_minmaxlttb(const po_ds_input *in, size_t n_out, size_t ratio, size_t *out, size_t cap,
                         char *errbuf, size_t errlen) {
  int rc = ds_check_input(in, n_out, "MinMaxLTTB", errbuf, errlen);
  if (rc) return rc;
  if (!out && in->n > 0) return po__errf(PO_EINVAL, errbuf, errlen, "MinMaxLTTB: out is NULL");
  if (ratio == 0) ratio = DS_DEFAULT_RATIO;
  size_t n = in->n;
  if (n <= n_out || n <= 2) return ds_all(n, out, cap, errbuf, errlen);
  if (n_out < 3)
    return po__errf(PO_EINVAL, errbuf, errlen, "MinMaxLTTB: n_out must be at least 3, got %zu",
                    n_out);
  size_t bins = n_out * ratio / 2;
  if (bins < 1) bins = 1;
  if (n <= bins * 4) return ds_lttb_core(in, n_out, out, cap, errbuf, errlen);

  /* Preselect: MinMax of the inner points, plus the first and last point. */
  size_t pcap = po_ds_capacity(PO_DS_MINMAX, bins) + 2;
  size_t *sel = po__malloc(pcap * sizeof *sel);
  double *gx = po__malloc(pcap * sizeof *gx);
  double *gy = po__malloc(pcap * sizeof *gy);
  int64_t ret;
  if (!sel || !gx || !gy) {
    ret = po__errf(PO_ENOMEM, errbuf, errlen, "MinMaxLTTB: out of memory");
    goto done;
  }
  po_ds_input inner = *in;
  inner.n = n - 2;
  inner.y = in->y_type == PO_DS_F32 ? (const void *)((const float *)in->y + 1)
                                    : (const void *)((const double *)in->y + 1);
  if (in->x)
    inner.x = in->x_type == PO_DS_F32 ? (const void *)((const float *)in->x + 1)
                                      : (const void *)((const double *)in->x + 1);
  inner.x_lo = inner.x_hi = 0; /* the inner points' own x range */
  ret = ds_columns(&inner, bins, 0, sel + 1, pcap - 2, errbuf, errlen);
  if (ret < 0) goto done;
  size_t m = (size_t)ret + 2;
  sel[0] = 0;
  /* ds_columns filled sel[1 .. m-1) (it returned m - 2 indices). */
  for (size_t i = 1; i + 1 < m; i++)
    sel[i] += 1;  // NOLINT(clang-analyzer-core.uninitialized.Assign)
  sel[m - 1] = n - 1;
  for (size_t i = 0; i < m; i++) {
    gx[i] = ds_x_at(in, sel[i]);
    gy[i] = ds_y_at(in, sel[i]);
  }
  po_ds_input g = {0};
  g.x = gx;
  g.y = gy;
  g.n = m;
  if (m <= n_out) {
    if (m > cap) {
      ret =
          po__errf(PO_ERANGE, errbuf, errlen, "MinMaxLTTB: output capacity %zu is too small", cap);
      goto done;
    }
    memcpy(out, sel, m * sizeof *out);
    ret = (int64_t)m;
    goto done;
  }
  ret = ds_lttb_core(&g, n_out, out, cap, errbuf, errlen);
  if (ret < 0) goto done;
  for (int64_t i = 0; i < ret; i++) out[i] = sel[out[i]];
done:
  free(sel);
  free(gx);
  free(gy);
  return ret;
}

size_t po_ds_capacity(po_ds_method method, size_t n_out) {
  switch (method) {
    case PO_DS_M4:
      return 5 * n_out; /* first, min, max, last and one gap marker per column */
    case PO_DS_MINMAX:
      return 3 * n_out;
    case PO_DS_LTTB:
    case PO_DS_MINMAXLTTB:
      return 2 * n_out; /* each bucket may add one gap marker */
  }
  return 5 * n_out;
}

int64_t po_downsample(po_ds_method method, const po_ds_input *in, size_t n_out, size_t *out,
                      size_t cap, char *errbuf, size_t errlen) {
  switch (method) {
    case PO_DS_M4:
      return po_ds_m4(in, n_out, out, cap, errbuf, errlen);
    case PO_DS_MINMAX:
      return po_ds_minmax(in, n_out, out, cap, errbuf, errlen);
    case PO_DS_LTTB:
      return po_ds_lttb(in, n_out, out, cap, errbuf, errlen);
    case PO_DS_MINMAXLTTB:
      return po_ds_minmaxlttb(in, n_out, 0, out, cap, errbuf, errlen);
  }
  return po__errf(PO_EINVAL, errbuf, errlen, "downsample: unknown method %d", (int)method);
}
