/* Streaming M4 with fixed memory: a series that grows during a run keeps at most 5 points per
 * bucket, and the bucket width doubles (neighbours merge) when a point falls outside the buckets.
 *
 * The first `nb` points are kept raw (sorted by x). The next one fixes the bucket grid: origin at
 * the smallest x, width a power of two chosen so the data spans about half the buckets. Bucket
 * numbers are floor((x - origin) / width); with power-of-two widths, halving the resolution maps
 * bucket b to floor(b / 2) exactly, so merged buckets hold exactly the M4 of their points.
 *
 * Whatever the input, the width stays a finite power of two in [2^-1022, 2^1023], so 1/width is
 * finite and non-zero too: x values that differ by a denormal share one bucket, and a span wider
 * than DBL_MAX (x near -1e308 and +1e308) still maps to a handful of buckets. Every loop that
 * halves the resolution therefore ends.
 */
#include "viz/downsample.h"
#include "base/base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ST_NONE UINT64_MAX
#define ST_RUN 4096
#define ST_DX_MIN 0x1p-1022 /* 1 / ST_DX_MIN is finite */
#define ST_DX_MAX 0x1p1023  /* the largest power of two */
#define ST_T_LIMIT 4e18     /* bucket numbers stay well inside int64_t */

typedef struct {
  double x, y;
  uint64_t seq;
} st_pt;

typedef struct {
  st_pt first, last, mn, mx, gap; /* seq ST_NONE: not set */
} st_bucket;

struct po_ds_stream {
  size_t nb;
  st_bucket *b; /* nb buckets; slot i is bucket number base + i */
  st_pt *raw;   /* the first nb points, sorted by x, before the grid exists */
  size_t raw_n;
  int gridded;
  double origin, dx, inv_dx;
  int64_t base;
  int64_t used_lo, used_hi; /* bucket numbers in use (used_lo > used_hi: none) */
  uint64_t seq, dropped, halvings;
};

static void st_clear(st_bucket *b) {
  st_pt none = {INFINITY, 0, ST_NONE};
  b->first = none;
  none.x = -INFINITY;
  b->last = none;
  none.x = 0;
  none.y = INFINITY;
  b->mn = none;
  none.y = -INFINITY;
  b->mx = none;
  none.y = NAN;
  none.x = INFINITY;
  b->gap = none;
}

/* Adds one point to a bucket. Ties keep the earlier point, except `last`, which keeps the later. */
static inline void st_add(st_bucket *b, double x, double y, uint64_t seq) {
  if (x < b->first.x || b->first.seq == ST_NONE) b->first = (st_pt){x, y, seq};
  if (x >= b->last.x) b->last = (st_pt){x, y, seq};
  if (y < b->mn.y || (b->mn.seq == ST_NONE && y == y)) b->mn = (st_pt){x, y, seq};
  if (y > b->mx.y || (b->mx.seq == ST_NONE && y == y)) b->mx = (st_pt){x, y, seq};
  if (PO__UNLIKELY(y != y) && x < b->gap.x) b->gap = (st_pt){x, y, seq};
}

static void st_merge(st_bucket *d, const st_bucket *s) {
  if (s->first.seq == ST_NONE) return;
  if (d->first.seq == ST_NONE) {
    *d = *s;
    return;
  }
  if (s->first.x < d->first.x || (s->first.x == d->first.x && s->first.seq < d->first.seq))
    d->first = s->first;
  if (s->last.x > d->last.x || (s->last.x == d->last.x && s->last.seq > d->last.seq))
    d->last = s->last;
  if (s->mn.seq != ST_NONE &&
      (d->mn.seq == ST_NONE || s->mn.y < d->mn.y || (s->mn.y == d->mn.y && s->mn.seq < d->mn.seq)))
    d->mn = s->mn;
  if (s->mx.seq != ST_NONE &&
      (d->mx.seq == ST_NONE || s->mx.y > d->mx.y || (s->mx.y == d->mx.y && s->mx.seq < d->mx.seq)))
    d->mx = s->mx;
  if (s->gap.seq != ST_NONE && (d->gap.seq == ST_NONE || s->gap.x < d->gap.x)) d->gap = s->gap;
}

static int64_t st_floordiv2(int64_t v) {
  return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

int po_ds_stream_create(size_t buckets, po_ds_stream **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  if (buckets < 2 || buckets > ((size_t)1 << 28)) return PO_EINVAL;
  po_ds_stream *s = po__calloc(1, sizeof *s);
  if (!s) return PO_ENOMEM;
  s->nb = buckets;
  s->b = po__malloc(buckets * sizeof *s->b);
  s->raw = po__malloc(buckets * sizeof *s->raw);
  if (!s->b || !s->raw) {
    po_ds_stream_destroy(s);
    return PO_ENOMEM;
  }
  po_ds_stream_reset(s);
  *out = s;
  return 0;
}

void po_ds_stream_destroy(po_ds_stream *s) {
  if (!s) return;
  free(s->b);
  free(s->raw);
  free(s);
}

void po_ds_stream_reset(po_ds_stream *s) {
  if (!s) return;
  for (size_t i = 0; i < s->nb; i++) st_clear(&s->b[i]);
  s->raw_n = 0;
  s->gridded = 0;
  s->origin = 0;
  s->dx = s->inv_dx = 0;
  s->base = 0;
  s->used_lo = 1;
  s->used_hi = 0;
  s->seq = s->dropped = s->halvings = 0;
}

/* Halves the resolution: bucket b becomes floor(b/2). Merges in place (targets never pass their
 * sources when walking upwards). */
static void st_halve(po_ds_stream *s) {
  int64_t nbase = st_floordiv2(s->base);
  for (size_t i = 0; i < s->nb; i++) {
    int64_t t = st_floordiv2(s->base + (int64_t)i) - nbase;
    st_bucket tmp = s->b[i];
    st_clear(&s->b[i]);
    st_merge(&s->b[t], &tmp);
  }
  s->base = nbase;
  s->used_lo = st_floordiv2(s->used_lo);
  s->used_hi = st_floordiv2(s->used_hi);
  s->dx *= 2;
  s->inv_dx *= 0.5;
  s->halvings++;
}

/* Moves the window so that slot 0 is bucket number nbase. */
static void st_rebase(po_ds_stream *s, int64_t nbase) {
  int64_t shift = nbase - s->base;
  if (shift == 0) return;
  size_t nb = s->nb;
  if (shift >= (int64_t)nb || -shift >= (int64_t)nb) { /* nothing stays in the window */
    for (size_t i = 0; i < nb; i++) st_clear(&s->b[i]);
  } else if (shift > 0) {
    size_t k = (size_t)shift;
    memmove(s->b, s->b + k, (nb - k) * sizeof *s->b);
    for (size_t i = nb - k; i < nb; i++) st_clear(&s->b[i]);
  } else {
    size_t k = (size_t)(-shift);
    memmove(s->b + k, s->b, (nb - k) * sizeof *s->b);
    for (size_t i = 0; i < k; i++) st_clear(&s->b[i]);
  }
  s->base = nbase;
}

static inline int st_can_halve(const po_ds_stream *s) {
  return s->dx < ST_DX_MAX;
}

/* The bucket number floor((x - origin) / dx) of a finite x, halving the resolution until it is
 * representable. x - origin overflows only when x and origin are huge and of opposite signs: their
 * halves are then exact and their difference finite (and dx <= 2^1022 then, since dx = 2^1023
 * gives |t| < 4 for any two finite doubles). x - origin itself is exact when it is tiny, so its
 * sign is right even where the product underflows to -0: a point below the origin is in a negative
 * bucket at every resolution, as halving keeps it. */
static int64_t st_bucket_of(po_ds_stream *s, double x) {
  for (;;) {
    double d = x - s->origin;
    double t =
        PO__LIKELY(isfinite(d)) ? d * s->inv_dx : (x * 0.5 - s->origin * 0.5) * (s->inv_dx * 2);
    if (t > -ST_T_LIMIT && t < ST_T_LIMIT) {
      int64_t bn = (int64_t)t;
      if (t < (double)bn || (t == 0 && d < 0)) bn--; /* floor for negatives */
      return bn;
    }
    if (!st_can_halve(s))
      return t < 0 ? -(int64_t)ST_T_LIMIT : (int64_t)ST_T_LIMIT; /* unreachable */
    st_halve(s);
  }
}

/* Slot of bucket number bn after making room for it. */
static size_t st_slot(po_ds_stream *s, int64_t bn) {
  int64_t nb = (int64_t)s->nb;
  for (;;) {
    int64_t rel = bn - s->base;
    if (rel >= 0 && rel < nb) break;
    int64_t lo = s->used_lo <= s->used_hi ? (bn < s->used_lo ? bn : s->used_lo) : bn;
    int64_t hi = s->used_lo <= s->used_hi ? (bn > s->used_hi ? bn : s->used_hi) : bn;
    if (hi - lo + 1 > nb && st_can_halve(s)) {
      st_halve(s);
      bn = st_floordiv2(bn);
      continue;
    }
    if (hi - lo + 1 > nb) {
      /* The widest buckets and still too few of them (fewer than 8 buckets and a span beyond
       * DBL_MAX): the point joins the outermost bucket that fits. */
      bn = bn < s->used_lo ? s->used_hi - nb + 1 : s->used_lo + nb - 1;
      continue;
    }
    /* growing upwards leaves room above, downwards room below */
    st_rebase(s, bn < s->base ? hi - nb + 1 : lo);
  }
  if (s->used_lo > s->used_hi) {
    s->used_lo = s->used_hi = bn;
  } else {
    if (bn < s->used_lo) s->used_lo = bn;
    if (bn > s->used_hi) s->used_hi = bn;
  }
  return (size_t)(bn - s->base);
}

static void st_grid_add(po_ds_stream *s, double x, double y, uint64_t seq) {
  int64_t bn = st_bucket_of(s, x);
  st_add(&s->b[st_slot(s, bn)], x, y, seq);
}

/* The bucket width for data spanning lo..hi over `half` buckets: the smallest power of two with
 * (hi - lo) / dx < half, within [ST_DX_MIN, ST_DX_MAX]. */
static double st_pick_dx(double lo, double hi, double half) {
  double range = hi - lo;
  if (!(range > 0)) return 1.0;           /* every x so far is the same */
  if (!isfinite(range)) return ST_DX_MAX; /* lo near -DBL_MAX, hi near +DBL_MAX */
  int e;
  frexp(range / half, &e);
  if (e > 1023) e = 1023;
  if (e < -1022) e = -1022;
  double dx = ldexp(1.0, e);
  while (dx > ST_DX_MIN && dx / 2 > range / half) dx /= 2;
  while (dx < ST_DX_MAX && range / dx >= half) dx *= 2;
  return dx;
}

/* Builds the grid from the raw points and the incoming x. */
static void st_make_grid(po_ds_stream *s, double x) {
  double lo = s->raw[0].x, hi = s->raw[s->raw_n - 1].x;
  if (x < lo) lo = x;
  if (x > hi) hi = x;
  double dx = st_pick_dx(lo, hi, (double)(s->nb / 2 ? s->nb / 2 : 1));
  s->origin = lo;
  s->dx = dx;
  s->inv_dx = 1.0 / dx;
  s->base = 0;
  s->gridded = 1;
  for (size_t i = 0; i < s->raw_n; i++) st_grid_add(s, s->raw[i].x, s->raw[i].y, s->raw[i].seq);
}

static void st_push_one(po_ds_stream *s, double x, double y) {
  if (PO__UNLIKELY(!isfinite(x))) {
    s->dropped++;
    return;
  }
  uint64_t seq = s->seq++;
  if (PO__LIKELY(s->gridded)) {
    st_grid_add(s, x, y, seq);
    return;
  }
  if (s->raw_n == s->nb) {
    st_make_grid(s, x);
    st_grid_add(s, x, y, seq);
    return;
  }
  size_t i = s->raw_n; /* insertion keeps raw sorted by x; ascending input appends */
  while (i > 0 && s->raw[i - 1].x > x) {
    s->raw[i] = s->raw[i - 1];
    i--;
  }
  s->raw[i] = (st_pt){x, y, seq};
  s->raw_n++;
}

int po_ds_stream_push(po_ds_stream *s, double x, double y) {
  if (!s) return PO_EINVAL;
  st_push_one(s, x, y);
  return 0;
}

int po_ds_stream_push_xy(po_ds_stream *s, const double *x, const double *y, size_t n) {
  if (!s || (n > 0 && (!x || !y))) return PO_EINVAL;
  for (size_t i = 0; i < n; i++) st_push_one(s, x[i], y[i]);
  return 0;
}

/* Implicit x: runs of points that share a bucket go through the vectorised extremes kernel. */
int po_ds_stream_push_y(po_ds_stream *s, const double *y, size_t n) {
  if (!s || (n > 0 && !y)) return PO_EINVAL;
  size_t i = 0;
  while (i < n) {
    if (!s->gridded || (double)s->seq >= 9007199254740992.0) {
      st_push_one(s, (double)s->seq, y[i++]);
      continue;
    }
    double x = (double)s->seq;
    int64_t bn = st_bucket_of(s, x);
    size_t slot = st_slot(s, bn);
    bn = s->base + (int64_t)slot; /* st_slot may have halved */
    /* first integer x of the next bucket: exact, since dx is a power of two */
    double room = ceil(s->origin + (double)(bn + 1) * s->dx) - x;
    size_t len = !(room >= 1) ? 1 : room > (double)(n - i) ? n - i : (size_t)room;
    if (len > ST_RUN) len = ST_RUN;
    st_bucket *b = &s->b[slot];
    if (len < 8) {
      for (size_t k = 0; k < len; k++) st_add(b, x + (double)k, y[i + k], s->seq + k);
    } else {
      size_t imin, imax, igap;
      po__ds_extremes(y + i, len, &imin, &imax, &igap);
      st_add(b, x, y[i], s->seq);
      st_add(b, x + (double)(len - 1), y[i + len - 1], s->seq + len - 1);
      if (imin != PO__DS_NONE) st_add(b, x + (double)imin, y[i + imin], s->seq + imin);
      if (imax != PO__DS_NONE) st_add(b, x + (double)imax, y[i + imax], s->seq + imax);
      if (igap != PO__DS_NONE) st_add(b, x + (double)igap, y[i + igap], s->seq + igap);
    }
    s->seq += len;
    i += len;
  }
  return 0;
}

size_t po_ds_stream_max_points(const po_ds_stream *s) {
  return s ? 5 * s->nb : 0;
}

static int st_cmp_pt(const void *a, const void *b) {
  const st_pt *p = a, *q = b;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  return p->seq < q->seq ? -1 : p->seq > q->seq;
}

int64_t po_ds_stream_read(const po_ds_stream *s, double *x, double *y, uint64_t *seq, size_t cap) {
  if (!s) return PO_EINVAL;
  size_t count = 0;
  if (!s->gridded) {
    if (s->raw_n > cap) return PO_ERANGE;
    for (size_t i = 0; i < s->raw_n; i++, count++) {
      if (x) x[count] = s->raw[i].x;
      if (y) y[count] = s->raw[i].y;
      if (seq) seq[count] = s->raw[i].seq;
    }
    return (int64_t)count;
  }
  for (size_t i = 0; i < s->nb; i++) {
    const st_bucket *b = &s->b[i];
    if (b->first.seq == ST_NONE) continue;
    st_pt p[5] = {b->first, b->mn, b->mx, b->last, b->gap};
    size_t m = 0;
    for (size_t k = 0; k < 5; k++)
      if (p[k].seq != ST_NONE) p[m++] = p[k];
    qsort(p, m, sizeof p[0], st_cmp_pt);
    for (size_t k = 0; k < m; k++) {
      if (k > 0 && p[k].seq == p[k - 1].seq) continue;
      if (count >= cap) return PO_ERANGE;
      if (x) x[count] = p[k].x;
      if (y) y[count] = p[k].y;
      if (seq) seq[count] = p[k].seq;
      count++;
    }
  }
  return (int64_t)count;
}

void po_ds_stream_get_stats(const po_ds_stream *s, po_ds_stream_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!s) return;
  out->pushed = s->seq;
  out->dropped = s->dropped;
  out->halvings = s->halvings;
  out->bucket_width = s->gridded ? s->dx : 0;
  if (!s->gridded) {
    out->buckets_used = s->raw_n;
  } else {
    for (size_t i = 0; i < s->nb; i++) out->buckets_used += s->b[i].first.seq != ST_NONE;
  }
}
