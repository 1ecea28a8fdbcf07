/* SVG charts: the chart model, sizing and reduction (po_chart_optimize) and the renderer.
 *
 * Every piece of text goes through draw_text(), which measures it with DejaVu Sans metrics and
 * records its box; optional labels (tick labels, threshold and band labels) are skipped when their
 * box would overlap one already drawn, so labels never collide whatever the data. */
#include "viz/chart_internal.h"
#include "base/base.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 64
#define MAX_DECOR 256
#define MAX_BARS 2000
#define MAX_FRAMES 1000000
#define MAX_DEPTH 96
#define FONT 11.0
#define TITLE_FONT 14.0
#define ROW_H 18.0

/* Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
 * deficiency. Vermillion is kept for alerts (markers), black for thresholds. */
static const char *const PALETTE[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                      "#56B4E9", "#D55E00", "#F0E442", "#000000"};
#define NPALETTE 8
static const char *const DASHES[] = {"", "6 3", "2 2", "8 3 2 3"};
/* Light tints of the same palette for flame frames (black text stays readable on each). */
static const char *const FLAME_TINTS[] = {"#F5C26B", "#9DD1F1", "#7FD1B9", "#E3A9CB",
                                          "#F7EE8F", "#8DB8DA", "#F2A57E"};
#define ALERT_COLOR "#D55E00"

typedef struct series {
  char *name;
  po_unit unit;
  double *x, *y, *y2; /* y2: the upper edge of a range series */
  size_t n;
  int range;
  int color;
} series;

typedef struct deco {
  double a, b;
  char *label;
} deco;

typedef struct bar {
  char *label, *tooltip;
  double value;
} bar;

typedef struct frame {
  int64_t id, parent;
  char *name;
  uint64_t calls;
  double total, self;
} frame;

typedef struct layout {
  double W, H;
  double top;      /* first pixel row below the title and the legend */
  double px, py;   /* plot area origin (integer px for pixel-exact M4) */
  double pw, ph;   /* plot area size */
  double xlo, xhi; /* x domain */
  double ylo, yhi; /* y domain */
  po_ticks xt, yt;
  double xref, yref; /* magnitudes that chose each axis' display scale */
  int legend_rows;
  int has_data;
} layout;

struct po_chart {
  po_chart_kind kind;
  char *title;
  int width, height;
  int fixed_w, fixed_h;
  char *axis_label[2];
  po_unit axis_unit[2];
  int axis_unit_set[2];
  series *ser;
  size_t nser, capser;
  deco *thr, *band, *mark;
  size_t nthr, capthr, nband, capband, nmark, capmark;
  bar *bars;
  size_t nbars, capbars;
  frame *frames;
  size_t nframes, capframes;
  int optimized;
  int full_resolution; /* po_chart_set_reduction(c, 0): optimize sizes but reduces nothing */
  int reduced;         /* a reduction ran: the full-resolution copies may be gone */
  int flame_depth;
  size_t dropped;        /* items refused at insertion (caps) */
  size_t render_dropped; /* items the last render could not draw (sub-pixel frames) */
  po__box *boxes;
  size_t nboxes, capboxes;
  po__frame_rect *rects;
  size_t nrects, caprects;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 8;
  while (n < need) n *= 2;
  void *q = po__realloc(*p, n * elem);
  if (!q) return PO_ENOMEM;
  *p = q;
  *cap = n;
  return 0;
}

static char *dup_or_empty(const char *s) {
  if (!s) s = "";
  size_t n = strlen(s);
  if (n > 4096) n = 4096; /* labels beyond this cannot be shown anyway */
  char *d = po__malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static int is_timeseries(const po_chart *c) {
  return c->kind == PO_CHART_LINES || c->kind == PO_CHART_AREAS || c->kind == PO_CHART_STACKED;
}

/* ---- construction -------------------------------------------------------------------------- */

po_chart *po_chart_create(po_chart_kind kind, const char *title) {
  if ((int)kind < 0 || kind > PO_CHART_FLAME) return NULL;
  po_chart *c = po__calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->kind = kind;
  c->width = 800;
  c->height = 300;
  if (title && !(c->title = dup_or_empty(title))) {
    free(c);
    return NULL;
  }
  return c;
}

static void free_series_data(series *s) {
  free(s->x);
  free(s->y);
  free(s->y2);
  s->x = s->y = s->y2 = NULL;
}

void po_chart_destroy(po_chart *c) {
  if (!c) return;
  free(c->title);
  free(c->axis_label[0]);
  free(c->axis_label[1]);
  for (size_t i = 0; i < c->nser; i++) {
    free(c->ser[i].name);
    free_series_data(&c->ser[i]);
  }
  free(c->ser);
  for (size_t i = 0; i < c->nthr; i++) free(c->thr[i].label);
  for (size_t i = 0; i < c->nband; i++) free(c->band[i].label);
  for (size_t i = 0; i < c->nmark; i++) free(c->mark[i].label);
  free(c->thr);
  free(c->band);
  free(c->mark);
  for (size_t i = 0; i < c->nbars; i++) {
    free(c->bars[i].label);
    free(c->bars[i].tooltip);
  }
  free(c->bars);
  for (size_t i = 0; i < c->nframes; i++) free(c->frames[i].name);
  free(c->frames);
  free(c->boxes);
  free(c->rects);
  free(c);
}

int po_chart_set_size(po_chart *c, int width_px, int height_px) {
  if (!c) return PO_EINVAL;
  if (width_px != 0 && (width_px < 120 || width_px > 10000)) return PO_ERANGE;
  if (height_px != 0 && (height_px < 60 || height_px > 20000)) return PO_ERANGE;
  if (width_px) c->width = width_px, c->fixed_w = 1;
  if (height_px) c->height = height_px, c->fixed_h = 1;
  c->optimized = 0;
  return 0;
}

int po_chart_set_reduction(po_chart *c, int on) {
  if (!c) return PO_EINVAL;
  if (c->full_resolution == !on) return 0;
  if (c->reduced && !on) return PO_ESTATE;
  c->full_resolution = !on;
  c->optimized = 0;
  return 0;
}

int po_chart_set_axis(po_chart *c, char axis, const char *label, po_unit unit) {
  if (!c || (axis != 'x' && axis != 'y') || (int)unit < 0 || unit > PO_UNIT_DATE) return PO_EINVAL;
  int a = axis == 'y';
  char *l = NULL;
  if (label && !(l = dup_or_empty(label))) return PO_ENOMEM;
  free(c->axis_label[a]);
  c->axis_label[a] = l;
  c->axis_unit[a] = unit;
  c->axis_unit_set[a] = 1;
  return 0;
}

static int add_series_common(po_chart *c, const char *name, po_unit unit, const double *x,
                             const double *y, const double *y2, const size_t *idx, size_t n,
                             int range) {
  if (!c || (!y && n > 0) || (range && !y2 && n > 0) || !is_timeseries(c)) return PO_EINVAL;
  if ((int)unit < 0 || unit > PO_UNIT_DATE) return PO_EINVAL;
  if (c->nser >= MAX_SERIES) {
    c->dropped++;
    return PO_ERANGE;
  }
  /* x must be non-decreasing and finite: the reducer and the renderer rely on it */
  double prev = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    size_t k = idx ? idx[i] : i;
    double xv = x ? x[k] : (double)k;
    if (!isfinite(xv) || xv < prev) return PO_EINVAL;
    prev = xv;
  }
  if (grow((void **)&c->ser, &c->capser, c->nser + 1, sizeof(series))) return PO_ENOMEM;
  series s;
  memset(&s, 0, sizeof(s));
  s.unit = unit;
  s.range = range;
  s.n = n;
  s.name = dup_or_empty(name);
  size_t bytes = (n ? n : 1) * sizeof(double);
  s.x = po__malloc(bytes);
  s.y = po__malloc(bytes);
  if (range) s.y2 = po__malloc(bytes);
  if (!s.name || !s.x || !s.y || (range && !s.y2)) {
    free(s.name);
    free_series_data(&s);
    return PO_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = idx ? idx[i] : i;
    s.x[i] = x ? x[k] : (double)k;
    s.y[i] = y[k];
    if (range) s.y2[i] = y2[k];
  }
  /* a range takes the colour of the line it belongs to */
  s.color = -1;
  for (size_t i = 0; i < c->nser; i++)
    if (strcmp(c->ser[i].name, s.name) == 0) s.color = c->ser[i].color;
  if (s.color < 0) {
    int used = 0;
    for (size_t i = 0; i < c->nser; i++)
      if (c->ser[i].color >= used) used = c->ser[i].color + 1;
    s.color = used;
  }
  if (!c->axis_unit_set[1] && c->nser == 0) c->axis_unit[1] = unit;
  c->ser[c->nser++] = s;
  c->optimized = 0;
  return 0;
}

int po_chart_add_series(po_chart *c, const char *name, po_unit unit, const double *x,
                        const double *y, size_t n) {
  return add_series_common(c, name, unit, x, y, NULL, NULL, n, 0);
}

int po_chart_add_series_subset(po_chart *c, const char *name, po_unit unit, const double *x,
                               const double *y, const size_t *idx, size_t n_idx) {
  if (!idx && n_idx > 0) return PO_EINVAL;
  return add_series_common(c, name, unit, x, y, NULL, idx, n_idx, 0);
}

int po_chart_add_range(po_chart *c, const char *name, po_unit unit, const double *x,
                       const double *lo, const double *hi, size_t n) {
  return add_series_common(c, name, unit, x, lo, hi, NULL, n, 1);
}

static int add_deco(po_chart *c, deco **arr, size_t *n, size_t *cap, double a, double b,
                    const char *label) {
  if (!c || !is_timeseries(c)) return PO_EINVAL;
  if (*n >= MAX_DECOR) {
    c->dropped++;
    return PO_ERANGE;
  }
  if (grow((void **)arr, cap, *n + 1, sizeof(deco))) return PO_ENOMEM;
  char *l = dup_or_empty(label);
  if (!l) return PO_ENOMEM;
  (*arr)[*n].a = a;
  (*arr)[*n].b = b;
  (*arr)[*n].label = l;
  (*n)++;
  return 0;
}

int po_chart_add_threshold(po_chart *c, double y, const char *label) {
  if (!isfinite(y)) return PO_EINVAL;
  return add_deco(c, &c->thr, &c->nthr, &c->capthr, y, 0, label);
}

int po_chart_add_band(po_chart *c, double x_from, double x_to, const char *label) {
  if (!isfinite(x_from) || !isfinite(x_to) || x_to < x_from) return PO_EINVAL;
  return add_deco(c, &c->band, &c->nband, &c->capband, x_from, x_to, label);
}

int po_chart_add_marker(po_chart *c, double x, double y, const char *label) {
  if (!isfinite(x)) return PO_EINVAL;
  return add_deco(c, &c->mark, &c->nmark, &c->capmark, x, y, label);
}

int po_chart_add_bar(po_chart *c, const char *label, double value, const char *tooltip) {
  if (!c || c->kind != PO_CHART_BARS) return PO_EINVAL;
  if (c->nbars >= MAX_BARS) {
    c->dropped++;
    return PO_ERANGE;
  }
  if (grow((void **)&c->bars, &c->capbars, c->nbars + 1, sizeof(bar))) return PO_ENOMEM;
  bar b;
  b.label = dup_or_empty(label);
  b.tooltip = tooltip ? dup_or_empty(tooltip) : NULL;
  b.value = isfinite(value) ? value : 0;
  if (!b.label || (tooltip && !b.tooltip)) {
    free(b.label);
    free(b.tooltip);
    return PO_ENOMEM;
  }
  c->bars[c->nbars++] = b;
  c->optimized = 0;
  return 0;
}

int po_chart_add_frame(po_chart *c, int64_t id, int64_t parent, const char *name, uint64_t calls,
                       double total_seconds, double self_seconds) {
  if (!c || c->kind != PO_CHART_FLAME) return PO_EINVAL;
  if (c->nframes >= MAX_FRAMES) {
    c->dropped++;
    return PO_ERANGE;
  }
  if (grow((void **)&c->frames, &c->capframes, c->nframes + 1, sizeof(frame))) return PO_ENOMEM;
  frame f;
  f.id = id;
  f.parent = parent;
  f.calls = calls;
  f.total = isfinite(total_seconds) && total_seconds > 0 ? total_seconds : 0;
  f.self = isfinite(self_seconds) && self_seconds > 0 ? self_seconds : 0;
  f.name = dup_or_empty(name);
  if (!f.name) return PO_ENOMEM;
  c->frames[c->nframes++] = f;
  c->optimized = 0;
  return 0;
}

size_t po_chart_dropped(const po_chart *c) {
  return c ? c->dropped + c->render_dropped : 0;
}

size_t po__chart_text_boxes(const po_chart *c, const po__box **out) {
  *out = c->boxes;
  return c->nboxes;
}

size_t po__chart_frame_rects(const po_chart *c, const po__frame_rect **out) {
  *out = c->rects;
  return c->nrects;
}

size_t po__chart_series_points(const po_chart *c, size_t i) {
  return i < c->nser ? c->ser[i].n : 0;
}

/* ---- text ----------------------------------------------------------------------------------- */

static int boxes_overlap(const po__box *a, const po__box *b) {
  return a->x < b->x + b->w && b->x < a->x + a->w && a->y < b->y + b->h && b->y < a->y + a->h;
}

/* Draws text at (x, y) (baseline) with anchor 's'tart, 'm'iddle or 'e'nd; rotated -90 degrees when
 * `vertical`. Optional text is skipped (returns 0) when it would overlap a drawn label or leave the
 * canvas. Returns 1 when drawn. */
static int draw_text(po_chart *c, po__cbuf *b, const layout *L, double x, double y, char anchor,
                     double size, int bold, const char *fill, const char *text, int kind,
                     int optional, int vertical) {
  if (!text || !*text) return 0;
  double w = po__text_width(text, size, bold);
  double h = size * 1.2;
  po__box box;
  double start = anchor == 's' ? 0 : anchor == 'm' ? -w / 2 : -w;
  if (!vertical) {
    box.x = x + start;
    box.y = y - size * 0.95;
    box.w = w;
    box.h = h;
  } else {
    box.x = x - size * 0.95;
    box.y = y - start - w;
    box.w = h;
    box.h = w;
  }
  box.kind = kind;
  if (optional) {
    if (box.x < 0 || box.y < 0 || box.x + box.w > L->W + 0.01 || box.y + box.h > L->H + 0.01)
      return 0;
    po__box pad = box;
    pad.x -= 2;
    pad.w += 4;
    for (size_t i = 0; i < c->nboxes; i++)
      if (boxes_overlap(&pad, &c->boxes[i])) return 0;
  }
  if (grow((void **)&c->boxes, &c->capboxes, c->nboxes + 1, sizeof(po__box)) != 0) {
    b->oom = 1; /* an unrecorded box could let a later label overlap this one */
    return 0;
  }
  c->boxes[c->nboxes++] = box;
  po__cbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\"", x, y);
  if (anchor != 's') po__cbuf_printf(b, " text-anchor=\"%s\"", anchor == 'm' ? "middle" : "end");
  if (size != FONT) po__cbuf_printf(b, " font-size=\"%g\"", size);
  if (bold) po__cbuf_puts(b, " font-weight=\"bold\"");
  if (fill) po__cbuf_printf(b, " fill=\"%s\"", fill);
  if (vertical) po__cbuf_printf(b, " transform=\"rotate(-90 %.1f %.1f)\"", x, y);
  /* labels inside the plot get a white halo so they stay readable over lines and bands */
  if (kind == 2)
    po__cbuf_puts(b,
                  " stroke=\"#ffffff\" stroke-width=\"3\" stroke-opacity=\"0.85\" "
                  "stroke-linejoin=\"round\" paint-order=\"stroke\"");
  po__cbuf_puts(b, ">");
  po__cbuf_xml(b, text);
  po__cbuf_puts(b, "</text>\n");
  return 1;
}

/* Fits s into max_px like po__text_fit, and says whether the result is worth drawing: a label cut
 * down to a letter or two and "…" only adds noise (its full text stays in the tooltip). */
static int fit_useful(const char *s, double size, double max_px, char *out, size_t len) {
  int cut = po__text_fit(s, size, max_px, out, len);
  return out[0] && (!cut || strlen(out) >= 3 + 3); /* 3 bytes of "…" plus 3 of text */
}

/* ---- layout of time-series charts --------------------------------------------------------- */

static po_unit x_unit(const po_chart *c) {
  return c->axis_unit[0];
}
static po_unit y_unit(const po_chart *c) {
  return c->axis_unit[1];
}

static int unit_is_magnitude(po_unit u) {
  return u == PO_UNIT_BYTES || u == PO_UNIT_BYTES_PER_SECOND || u == PO_UNIT_RATIO ||
         u == PO_UNIT_WATTS || u == PO_UNIT_COUNT || u == PO_UNIT_SECONDS;
}

/* Data extents over every series (stacked sums for PO_CHART_STACKED). */
static int stack_compatible(const po_chart *c);

static void data_extent(const po_chart *c, double *xlo, double *xhi, double *ylo, double *yhi) {
  *xlo = INFINITY, *xhi = -INFINITY, *ylo = INFINITY, *yhi = -INFINITY;
  int stacked = c->kind == PO_CHART_STACKED && stack_compatible(c);
  for (size_t i = 0; i < c->nser; i++) {
    const series *s = &c->ser[i];
    if (s->n == 0) continue;
    if (s->x[0] < *xlo) *xlo = s->x[0];
    if (s->x[s->n - 1] > *xhi) *xhi = s->x[s->n - 1];
    if (stacked) continue;
    for (size_t k = 0; k < s->n; k++) {
      double v = s->y[k];
      if (isfinite(v)) {
        if (v < *ylo) *ylo = v;
        if (v > *yhi) *yhi = v;
      }
      if (s->range && isfinite(s->y2[k])) {
        if (s->y2[k] < *ylo) *ylo = s->y2[k];
        if (s->y2[k] > *yhi) *yhi = s->y2[k];
      }
    }
  }
  if (stacked) {
    size_t n = 0;
    for (size_t i = 0; i < c->nser; i++)
      if (!c->ser[i].range) n = c->ser[i].n;
    for (size_t k = 0; k < n; k++) {
      double sum = 0;
      for (size_t i = 0; i < c->nser; i++)
        if (!c->ser[i].range && isfinite(c->ser[i].y[k])) sum += c->ser[i].y[k];
      if (sum < *ylo) *ylo = sum;
      if (sum > *yhi) *yhi = sum;
    }
  }
}

static int stack_compatible(const po_chart *c) {
  const series *first = NULL;
  for (size_t i = 0; i < c->nser; i++) {
    const series *s = &c->ser[i];
    if (s->range) continue;
    if (!first) {
      first = s;
      continue;
    }
    if (s->n != first->n) return 0;
    for (size_t k = 0; k < s->n; k++)
      if (s->x[k] != first->x[k]) return 0;
  }
  return first != NULL;
}

static double legend_item_width(const char *name) {
  char buf[128];
  po__text_fit(name, FONT, 260, buf, sizeof(buf));
  return 14 + po__text_width(buf, FONT, 0) + 16;
}

static int legend_rows(const po_chart *c, double avail) {
  int rows = 0;
  double x = avail + 1;
  for (size_t i = 0; i < c->nser; i++) {
    if (c->ser[i].range) continue;
    double w = legend_item_width(c->ser[i].name);
    if (x + w > avail) rows++, x = 0;
    x += w;
  }
  return rows;
}

static int has_points(const po_chart *c) {
  for (size_t i = 0; i < c->nser; i++)
    for (size_t k = 0; k < c->ser[i].n; k++)
      if (isfinite(c->ser[i].y[k])) return 1;
  return 0;
}

static void compute_layout(const po_chart *c, layout *L) {
  memset(L, 0, sizeof(*L));
  L->W = c->width;
  L->H = c->height;
  L->top = 6;
  if (c->title && *c->title) L->top += 22;
  L->legend_rows = legend_rows(c, L->W - 16);
  L->top += L->legend_rows * 16 + (L->legend_rows ? 6 : 4);
  L->has_data = has_points(c);

  double xlo, xhi, ylo, yhi;
  data_extent(c, &xlo, &xhi, &ylo, &yhi);
  for (size_t i = 0; i < c->nthr; i++) {
    ylo = fmin(ylo, c->thr[i].a);
    yhi = fmax(yhi, c->thr[i].a);
  }
  if (!isfinite(xlo)) xlo = 0, xhi = 1;
  if (xhi <= xlo) xhi = xlo + 1;
  /* Wider than DBL_MAX, the scale would be 0 and the positions NaN: the axis keeps the range its
   * ticks use, and points beyond it are clipped. */
  if (!isfinite(xhi - xlo)) {
    xlo = fmax(xlo, -DBL_MAX / 4);
    xhi = fmin(xhi, DBL_MAX / 4);
  }
  if (!isfinite(ylo)) ylo = 0, yhi = 1;
  po_unit yu = y_unit(c);
  if ((unit_is_magnitude(yu) || c->kind != PO_CHART_LINES) && ylo > 0) ylo = 0;
  /* ratios read best on 0..100%; min/max spread may overshoot a little (clipped) */
  if (yu == PO_UNIT_RATIO && ylo >= 0 && yhi <= 1.05) ylo = 0, yhi = 1;
  L->xlo = xlo;
  L->xhi = xhi;

  double bottom = 8 + 16 + (c->axis_label[0] ? 16 : 0);
  L->ph = L->H - L->top - bottom;
  if (L->ph < 30) L->ph = 30;
  int yt = (int)(L->ph / 42);
  if (yt < 2) yt = 2;
  if (yt > 8) yt = 8;
  po__axis_ticks(ylo, yhi, yt, yu, &L->yt, &L->yref);
  L->ylo = L->yt.min;
  L->yhi = L->yt.max;
  double maxw = 0;
  for (size_t i = 0; i < L->yt.count; i++) {
    char buf[64];
    po__format_tick(L->yt.values[i], yu, L->yref, L->yt.step, buf, sizeof(buf));
    double w = po__text_width(buf, FONT, 0);
    if (w > maxw) maxw = w;
  }
  L->px = floor(8 + (c->axis_label[1] ? 16 : 0) + maxw + 6);
  double right = 28;
  L->pw = floor(L->W - L->px - right);
  if (L->pw < 20) L->pw = 20;
  L->py = L->top;

  int xt = (int)(L->pw / 80);
  if (xt < 2) xt = 2;
  if (xt > 12) xt = 12;
  po__axis_ticks(xlo, xhi, xt, x_unit(c), &L->xt, &L->xref);
  /* a last tick just past the data (24 h for 23:59:59 of samples) becomes the axis end */
  if (L->xt.max > xhi && L->xt.max - xhi < 0.02 * (xhi - xlo)) L->xhi = L->xt.max;
  /* A span of a few denormals would make the scale infinite: the axis takes its ticks' range. */
  if (!isfinite(L->pw / (L->xhi - L->xlo)) && L->xt.max > L->xt.min) {
    L->xlo = L->xt.min;
    L->xhi = L->xt.max;
  }
}

static double sx(const layout *L, double x) {
  return L->px + (x - L->xlo) * (L->pw / (L->xhi - L->xlo));
}
/* A data point's x: the centre of the pixel column po_ds_column puts it in (px and pw are whole
 * pixels), so that every point of a column lies on one vertical line and the M4-reduced line
 * covers exactly the pixels of the full one (docs/api.md "Pixel-exact M4"). */
static double sx_point(const layout *L, double x) {
  return L->px + (double)po_ds_column(x, L->xlo, L->xhi, (size_t)L->pw) + 0.5;
}
static double sy(const layout *L, double y) {
  return L->py + L->ph - (y - L->ylo) * (L->ph / (L->yhi - L->ylo));
}

/* ---- reduction ------------------------------------------------------------------------------ */

/* Keeps x/y/y2 at the sorted indices keep[0..m) and frees the rest. */
static int keep_points(series *s, const size_t *keep, size_t m) {
  size_t bytes = (m ? m : 1) * sizeof(double);
  double *nx = po__malloc(bytes), *ny = po__malloc(bytes),
         *ny2 = s->range ? po__malloc(bytes) : NULL;
  if (!nx || !ny || (s->range && !ny2)) {
    free(nx);
    free(ny);
    free(ny2);
    return PO_ENOMEM;
  }
  for (size_t i = 0; i < m; i++) {
    nx[i] = s->x[keep[i]];
    ny[i] = s->y[keep[i]];
    if (s->range) ny2[i] = s->y2[keep[i]];
  }
  free_series_data(s);
  s->x = nx;
  s->y = ny;
  s->y2 = ny2;
  s->n = m;
  return 0;
}

/* M4 indices of one column array (y or y2) into out; returns the count or a negative code. */
static int64_t m4_indices(const layout *L, const double *x, const double *y, size_t n, size_t width,
                          size_t *out, size_t cap) {
  po_ds_input in;
  memset(&in, 0, sizeof(in));
  in.x = x;
  in.y = y;
  in.n = n;
  in.x_lo = L->xlo;
  in.x_hi = L->xhi;
  return po_ds_m4(&in, width, out, cap, NULL, 0);
}

/* A range (min..max band) keeps one point per pixel column: the column's lowest low and highest
 * high at its first x. A NaN in either edge is kept as a gap. */
static int reduce_range(const layout *L, series *s, size_t width) {
  if (s->n <= 2 * width) return 0;
  size_t cap = 2 * width + 2 * s->n / 2 + 2; /* gaps can at most alternate with points */
  if (cap > s->n) cap = s->n;
  double *nx = po__malloc(cap * sizeof(double)), *nlo = po__malloc(cap * sizeof(double)),
         *nhi = po__malloc(cap * sizeof(double));
  if (!nx || !nlo || !nhi) {
    free(nx), free(nlo), free(nhi);
    return PO_ENOMEM;
  }
  size_t m = 0, col = SIZE_MAX;
  int have = 0, last_gap = 0;
  double ax = 0, alo = 0, ahi = 0;
  for (size_t i = 0; i <= s->n; i++) {
    int end = i == s->n;
    int gap = !end && (!isfinite(s->y[i]) || !isfinite(s->y2[i]));
    size_t c = end ? SIZE_MAX : po_ds_column(s->x[i], L->xlo, L->xhi, width);
    if (have && (end || gap || c != col) && m < cap) {
      nx[m] = ax, nlo[m] = alo, nhi[m] = ahi, m++;
      have = 0;
      last_gap = 0;
    }
    if (end) break;
    if (gap) {
      if (!last_gap && m < cap) nx[m] = s->x[i], nlo[m] = NAN, nhi[m] = NAN, m++;
      last_gap = 1;
      continue;
    }
    if (!have) {
      have = 1, col = c, ax = s->x[i], alo = s->y[i], ahi = s->y2[i];
    } else {
      if (s->y[i] < alo) alo = s->y[i];
      if (s->y2[i] > ahi) ahi = s->y2[i];
    }
  }
  free_series_data(s);
  s->x = nx, s->y = nlo, s->y2 = nhi, s->n = m;
  return 0;
}

/* Reduces one series to the plot width with M4 (pixel-exact for the line). */
static int reduce_series(const layout *L, series *s, size_t width) {
  if (s->range) return reduce_range(L, s, width);
  size_t cap = po_ds_capacity(PO_DS_M4, width);
  if (s->n <= cap) return 0;
  size_t *idx = po__malloc(cap * sizeof(size_t));
  if (!idx) return PO_ENOMEM;
  int64_t m = m4_indices(L, s->x, s->y, s->n, width, idx, cap);
  int rc = m < 0 ? (int)m : keep_points(s, idx, (size_t)m);
  free(idx);
  return rc;
}

/* Stacked series share x: keep the union of every layer's and the total's M4 points. */
static int reduce_stacked(const layout *L, po_chart *c, size_t width) {
  size_t n = 0;
  for (size_t i = 0; i < c->nser; i++)
    if (!c->ser[i].range) n = c->ser[i].n;
  size_t cap = po_ds_capacity(PO_DS_M4, width);
  if (n <= cap) return 0;
  const series *ref = NULL;
  for (size_t i = 0; i < c->nser; i++)
    if (!c->ser[i].range) ref = &c->ser[i];
  size_t *idx = po__malloc(cap * sizeof(size_t));
  unsigned char *mark = po__calloc(n, 1);
  double *sum = po__calloc(n, sizeof(double));
  int rc = (!idx || !mark || !sum) ? PO_ENOMEM : 0;
  /* the total's envelope and the bottom layer are exact; middle boundaries follow those points */
  const double *bottom = NULL;
  for (size_t i = 0; rc == 0 && i < c->nser; i++) {
    if (c->ser[i].range) continue;
    if (!bottom) bottom = c->ser[i].y;
    for (size_t k = 0; k < n; k++)
      if (isfinite(c->ser[i].y[k])) sum[k] += c->ser[i].y[k];
  }
  for (int pass = 0; rc == 0 && pass < 2; pass++) {
    int64_t m = m4_indices(L, ref->x, pass ? bottom : sum, n, width, idx, cap);
    if (m < 0) rc = (int)m;
    for (int64_t k = 0; rc == 0 && k < m; k++) mark[idx[k]] = 1;
  }
  size_t total = 0;
  for (size_t k = 0; rc == 0 && k < n; k++) total += mark[k];
  size_t *keep = rc == 0 ? po__malloc((total ? total : 1) * sizeof(size_t)) : NULL;
  if (rc == 0 && !keep) rc = PO_ENOMEM;
  if (rc == 0) {
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
      if (mark[k]) keep[m++] = k;
    for (size_t i = 0; rc == 0 && i < c->nser; i++)
      if (!c->ser[i].range) rc = keep_points(&c->ser[i], keep, m);
  }
  free(keep);
  free(idx);
  free(mark);
  free(sum);
  for (size_t i = 0; rc == 0 && i < c->nser; i++)
    if (c->ser[i].range) rc = reduce_series(L, &c->ser[i], width);
  return rc;
}

/* ---- flame layout --------------------------------------------------------------------------- */

typedef struct fnode {
  size_t idx;
  size_t parent; /* index into frames, or SIZE_MAX for roots */
} fnode;

static int cmp_i64(const void *a, const void *b) {
  int64_t x = ((const frame *)a)->id, y = ((const frame *)b)->id;
  return (x > y) - (x < y);
}

/* glibc's qsort_r: the frames come as context, so charts on different threads never share state. */
static int cmp_children(const void *a, const void *b, void *ctx) {
  const fnode *x = a, *y = b;
  const frame *f = ctx;
  if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
  double tx = f[x->idx].total, ty = f[y->idx].total;
  if (tx != ty) return tx > ty ? -1 : 1;
  return strcmp(f[x->idx].name, f[y->idx].name);
}

static size_t find_frame(const frame *f, size_t n, int64_t id) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (f[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && f[lo].id == id ? lo : SIZE_MAX;
}

/* Lays the frames out as an icicle over [x0, x0 + width): fills c->rects in drawing order and
 * counts frames that end up narrower than 0.5 px (or orphaned, or too deep) in render_dropped. */
static int flame_layout(po_chart *c, double x0, double width) {
  c->nrects = 0;
  c->render_dropped = 0;
  c->flame_depth = 0;
  size_t n = c->nframes;
  if (n == 0) return 0;
  qsort(c->frames, n, sizeof(frame), cmp_i64);
  fnode *nodes = po__malloc(n * sizeof(fnode));
  size_t *first = po__calloc(n + 1, sizeof(size_t)); /* first child slot per parent (+ roots) */
  size_t *count = po__calloc(n + 1, sizeof(size_t));
  typedef struct item {
    size_t node;
    double x, w;
    int depth;
  } item;
  item *stack = po__malloc((n + 1) * sizeof(item));
  if (!nodes || !first || !count || !stack) {
    free(nodes);
    free(first);
    free(count);
    free(stack);
    return PO_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    nodes[i].idx = i;
    nodes[i].parent =
        c->frames[i].parent < 0 ? SIZE_MAX : find_frame(c->frames, n, c->frames[i].parent);
    /* an orphan (unknown parent) or its own parent is never reached from a root */
    if (c->frames[i].parent >= 0 && (nodes[i].parent == SIZE_MAX || nodes[i].parent == i))
      nodes[i].parent = SIZE_MAX - 1;
  }
  qsort_r(nodes, n, sizeof(fnode), cmp_children, c->frames);
  /* children of p occupy nodes[first[p] .. first[p] + count[p]); roots are parent n */
  for (size_t i = 0; i < n; i++) {
    size_t p = nodes[i].parent == SIZE_MAX ? n : nodes[i].parent;
    if (p > n) continue;
    if (count[p]++ == 0) first[p] = i;
  }
  double root_total = 0;
  for (size_t k = 0; k < count[n]; k++) root_total += c->frames[nodes[first[n] + k].idx].total;
  size_t sp = 0, drawn = 0;
  if (root_total > 0) {
    /* push roots in reverse so they pop left to right */
    double x = x0 + width;
    for (size_t k = count[n]; k-- > 0;) {
      size_t idx = nodes[first[n] + k].idx;
      double w = c->frames[idx].total / root_total * width;
      x -= w;
      stack[sp++] = (item){idx, x, w, 0};
    }
  }
  while (sp > 0) {
    item it = stack[--sp];
    const frame *f = &c->frames[it.node];
    if (it.w < 0.5 || it.depth >= MAX_DEPTH) continue;
    if (grow((void **)&c->rects, &c->caprects, c->nrects + 1, sizeof(po__frame_rect))) {
      free(nodes), free(first), free(count), free(stack);
      return PO_ENOMEM;
    }
    c->rects[c->nrects++] = (po__frame_rect){f->id, f->parent, it.x, it.w, it.depth};
    drawn++;
    if (it.depth + 1 > c->flame_depth) c->flame_depth = it.depth + 1;
    size_t p = it.node, nc = count[p];
    if (nc == 0) continue;
    double sum = 0;
    for (size_t k = 0; k < nc; k++) sum += c->frames[nodes[first[p] + k].idx].total;
    /* children never spill out of their parent, even when their times add up to more */
    double scale = it.w / fmax(f->total, sum);
    if (!(scale > 0) || !isfinite(scale)) continue;
    double xe = it.x;
    for (size_t k = 0; k < nc; k++) xe += c->frames[nodes[first[p] + k].idx].total * scale;
    /* pushed right to left so that they pop left to right */
    for (size_t k = nc; k-- > 0;) {
      size_t idx = nodes[first[p] + k].idx;
      double w = c->frames[idx].total * scale;
      xe -= w;
      stack[sp++] = (item){idx, xe, w, it.depth + 1};
    }
  }
  c->render_dropped = n - drawn; /* orphans, cycles, sub-pixel and too-deep frames */
  free(nodes);
  free(first);
  free(count);
  free(stack);
  return 0;
}

/* ---- optimize ------------------------------------------------------------------------------- */

static double title_height(const po_chart *c) {
  return (c->title && *c->title) ? 28 : 6;
}

int po_chart_optimize(po_chart *c, int width_px) {
  if (!c) return PO_EINVAL;
  if (width_px < 0 || (width_px && (width_px < 120 || width_px > 10000))) return PO_ERANGE;
  if (width_px)
    c->width = width_px;
  else if (!c->fixed_w)
    c->width = 800;
  int rc = 0;
  if (is_timeseries(c)) {
    if (!c->fixed_h) {
      int rows = legend_rows(c, c->width - 16.0);
      c->height = (int)(250 + (rows > 1 ? (rows - 1) * 16 : 0) + (c->axis_label[0] ? 16 : 0));
    }
    layout L;
    compute_layout(c, &L);
    size_t width = (size_t)L.pw;
    if (c->full_resolution) {
      /* every point kept: the reference picture the reduced one is compared with */
    } else if (c->kind == PO_CHART_STACKED && stack_compatible(c)) {
      c->reduced = 1;
      rc = reduce_stacked(&L, c, width);
    } else {
      c->reduced = 1;
      for (size_t i = 0; rc == 0 && i < c->nser; i++) rc = reduce_series(&L, &c->ser[i], width);
    }
  } else if (c->kind == PO_CHART_BARS) {
    if (!c->fixed_h)
      c->height = (int)(title_height(c) + (double)(c->nbars ? c->nbars : 1) * 22 + 8 + 16 + 8 +
                        (c->axis_label[0] ? 16 : 0));
    if (c->height > 20000) c->height = 20000;
  } else if (c->kind == PO_CHART_FLAME) {
    rc = flame_layout(c, 8, c->width - 16.0);
    if (rc == 0 && !c->fixed_h) {
      int d = c->flame_depth ? c->flame_depth : 1;
      c->height = (int)(title_height(c) + d * ROW_H + 10);
    }
  }
  if (rc == 0) c->optimized = 1;
  return rc;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void svg_open(po__cbuf *b, const po_chart *c, int standalone) {
  if (standalone) po__cbuf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  po__cbuf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
                  "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"%s\" font-size=\"%g\" "
                  "role=\"img\" class=\"po-chart\"",
                  c->width, c->height, c->width, c->height, PO__FONT_FAMILY, FONT);
  if (c->title) {
    po__cbuf_puts(b, " aria-label=\"");
    po__cbuf_xml(b, c->title);
    po__cbuf_puts(b, "\"");
  }
  po__cbuf_puts(b, ">\n");
  if (c->title) {
    po__cbuf_puts(b, "<title>");
    po__cbuf_xml(b, c->title);
    po__cbuf_puts(b, "</title>\n");
  }
  po__cbuf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", c->width, c->height);
}

static void draw_title(po_chart *c, po__cbuf *b, const layout *L) {
  if (!c->title || !*c->title) return;
  char buf[512];
  po__text_fit(c->title, TITLE_FONT * 1.12, L->W - 16, buf, sizeof(buf));
  draw_text(c, b, L, 8, 20, 's', TITLE_FONT, 1, "#222222", buf, 0, 0, 0);
}

static void draw_no_data(po_chart *c, po__cbuf *b, const layout *L, double y) {
  double mid = (y + L->H) / 2;
  draw_text(c, b, L, L->W / 2, mid, 'm', FONT, 0, "#666666", "no data recorded", 0, 1, 0);
}

/* One coordinate rounded to 0.1 px without a trailing ".0": paths are most of a report's bytes. */
static void put_num(po__cbuf *b, double v) {
  /* degenerate domains (ranges near DBL_MAX) can map far off the canvas: clamp, never overflow */
  if (!(v > -1e7)) v = -1e7;
  if (v > 1e7) v = 1e7;
  long t = lround(v * 10);
  if (t < 0) {
    po__cbuf_put(b, "-", 1);
    t = -t;
  }
  char buf[32];
  int n = t % 10 ? snprintf(buf, sizeof(buf), "%ld.%ld", t / 10, t % 10)
                 : snprintf(buf, sizeof(buf), "%ld", t / 10);
  if (n > 0) po__cbuf_put(b, buf, (size_t)n);
}

/* cmd 'M' or 'L' starts a command; 0 continues the previous one (implicit lineto). */
static void put_xy(po__cbuf *b, char cmd, double x, double y) {
  if (cmd)
    po__cbuf_put(b, &cmd, 1);
  else
    po__cbuf_put(b, " ", 1);
  put_num(b, x);
  po__cbuf_put(b, " ", 1);
  put_num(b, y);
}

static void draw_legend(po_chart *c, po__cbuf *b, const layout *L) {
  double x = 8, y = title_height(c) + 10;
  int first = 1;
  for (size_t i = 0; i < c->nser; i++) {
    const series *s = &c->ser[i];
    if (s->range) continue;
    double w = legend_item_width(s->name);
    if (!first && x + w > L->W - 8) x = 8, y += 16;
    first = 0;
    const char *col = PALETTE[s->color % NPALETTE];
    const char *dash = DASHES[(s->color / NPALETTE) % 4];
    if (c->kind == PO_CHART_LINES)
      po__cbuf_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"2.5\"%s%s%s/>\n",
                      x, y - 4, x + 11, y - 4, col, *dash ? " stroke-dasharray=\"" : "", dash,
                      *dash ? "\"" : "");
    else
      po__cbuf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"11\" height=\"11\" fill=\"%s\"/>\n",
                      x, y - 9.5, col);
    char buf[128];
    po__text_fit(s->name, FONT, 260, buf, sizeof(buf));
    draw_text(c, b, L, x + 14, y, 's', FONT, 0, "#222222", buf, 0, 0, 0);
    x += w;
  }
}

/* Writes a polyline path for y over x (NaN splits it into pieces). */
static void path_line(po__cbuf *b, const layout *L, const double *x, const double *y, size_t n) {
  int pen = 0;
  for (size_t k = 0; k < n; k++) {
    if (!isfinite(y[k])) {
      pen = 0;
      continue;
    }
    put_xy(b, pen ? 0 : 'M', sx_point(L, x[k]), sy(L, y[k]));
    pen = 1;
  }
}

/* Closed polygons between lower (NULL: the baseline) and upper, split at NaN gaps. */
static void path_area(po__cbuf *b, const layout *L, const double *x, const double *lo,
                      const double *hi, size_t n) {
  double base = L->ylo > 0 ? L->ylo : L->yhi < 0 ? L->yhi : 0;
  size_t k = 0;
  while (k < n) {
    while (k < n && (!isfinite(hi[k]) || (lo && !isfinite(lo[k])))) k++;
    size_t s = k;
    while (k < n && isfinite(hi[k]) && (!lo || isfinite(lo[k]))) k++;
    if (k == s) break;
    for (size_t i = s; i < k; i++) put_xy(b, i == s ? 'M' : 0, sx_point(L, x[i]), sy(L, hi[i]));
    if (lo) {
      for (size_t i = k; i-- > s;) put_xy(b, 0, sx_point(L, x[i]), sy(L, lo[i]));
    } else {
      put_xy(b, 0, sx_point(L, x[k - 1]), sy(L, base));
      put_xy(b, 0, sx_point(L, x[s]), sy(L, base));
    }
    po__cbuf_puts(b, "Z");
  }
}

/* Stacked layers drawn top-down, each as one opaque area from its cumulative top to the baseline,
 * so every boundary is written once (half the bytes of band polygons). */
static int draw_stacked(po_chart *c, po__cbuf *b, const layout *L) {
  size_t sn = 0, nl = 0;
  const double *x = NULL;
  for (size_t i = 0; i < c->nser; i++)
    if (!c->ser[i].range) sn = c->ser[i].n, x = c->ser[i].x, nl++;
  if (sn == 0 || nl == 0) return 0;
  double *cum = po__calloc(nl * sn, sizeof(double));
  size_t *which = po__malloc(nl * sizeof(size_t));
  if (!cum || !which) {
    free(cum);
    free(which);
    return PO_ENOMEM;
  }
  size_t l = 0;
  for (size_t i = 0; i < c->nser; i++) {
    if (c->ser[i].range) continue;
    const double *y = c->ser[i].y;
    for (size_t k = 0; k < sn; k++)
      cum[l * sn + k] = (l ? cum[(l - 1) * sn + k] : 0) + (isfinite(y[k]) ? y[k] : 0);
    which[l++] = i;
  }
  for (size_t j = nl; j-- > 0;) {
    const series *s = &c->ser[which[j]];
    po__cbuf_puts(b, "<g><title>");
    po__cbuf_xml(b, s->name);
    po__cbuf_printf(b, "</title><path fill=\"%s\" stroke=\"none\" d=\"",
                    PALETTE[s->color % NPALETTE]);
    path_area(b, L, x, NULL, cum + j * sn, sn);
    po__cbuf_puts(b, "\"/></g>\n");
  }
  free(cum);
  free(which);
  return 0;
}

static void draw_series(po_chart *c, po__cbuf *b, const layout *L) {
  /* ranges first, under the lines */
  for (size_t i = 0; i < c->nser; i++) {
    const series *s = &c->ser[i];
    if (!s->range || s->n == 0) continue;
    po__cbuf_printf(b, "<path fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" d=\"",
                    PALETTE[s->color % NPALETTE]);
    path_area(b, L, s->x, s->y, s->y2, s->n);
    po__cbuf_puts(b, "\"><title>");
    po__cbuf_xml(b, s->name);
    po__cbuf_puts(b, " (min..max per sample interval)</title></path>\n");
  }
  int stacked = c->kind == PO_CHART_STACKED && stack_compatible(c);
  if (stacked && draw_stacked(c, b, L) == 0) return;
  for (size_t i = 0; i < c->nser; i++) {
    const series *s = &c->ser[i];
    if (s->range || s->n == 0) continue;
    const char *col = PALETTE[s->color % NPALETTE];
    const char *dash = DASHES[(s->color / NPALETTE) % 4];
    po__cbuf_puts(b, "<g><title>");
    po__cbuf_xml(b, s->name);
    po__cbuf_puts(b, "</title>");
    if (c->kind == PO_CHART_AREAS || c->kind == PO_CHART_STACKED) {
      po__cbuf_printf(b, "<path fill=\"%s\" fill-opacity=\"0.25\" stroke=\"none\" d=\"", col);
      path_area(b, L, s->x, NULL, s->y, s->n);
      po__cbuf_puts(b, "\"/>");
    }
    po__cbuf_printf(b,
                    "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                    "stroke-linejoin=\"round\"%s%s%s d=\"",
                    col, *dash ? " stroke-dasharray=\"" : "", dash, *dash ? "\"" : "");
    path_line(b, L, s->x, s->y, s->n);
    po__cbuf_puts(b, "\"/></g>\n");
  }
}

static void draw_axes(po_chart *c, po__cbuf *b, const layout *L) {
  po_unit yu = y_unit(c), xu = x_unit(c);
  double yref = L->yref;
  /* grid and y labels */
  for (size_t i = 0; i < L->yt.count; i++) {
    double v = L->yt.values[i], y = sy(L, v);
    po__cbuf_printf(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                    L->px, y, L->px + L->pw, y);
    char buf[64];
    po__format_tick(v, yu, yref, L->yt.step, buf, sizeof(buf));
    draw_text(c, b, L, L->px - 6, y + 4, 'e', FONT, 0, "#444444", buf, 1, 1, 0);
  }
  /* x ticks inside the domain */
  double xref = L->xref;
  for (size_t i = 0; i < L->xt.count; i++) {
    double v = L->xt.values[i];
    if (v < L->xlo - 1e-9 * (L->xhi - L->xlo) || v > L->xhi + 1e-9 * (L->xhi - L->xlo)) continue;
    double x = sx(L, v);
    po__cbuf_printf(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444444\"/>\n",
                    x, L->py + L->ph, x, L->py + L->ph + 4);
    char buf[64];
    po__format_tick(v, xu, xref, L->xt.step, buf, sizeof(buf));
    draw_text(c, b, L, x, L->py + L->ph + 16, 'm', FONT, 0, "#444444", buf, 1, 1, 0);
  }
  po__cbuf_printf(b, "<path fill=\"none\" stroke=\"#444444\" d=\"M%.1f %.1fV%.1fH%.1f\"/>\n", L->px,
                  L->py, L->py + L->ph, L->px + L->pw);
  if (c->axis_label[0]) {
    char buf[256];
    po__text_fit(c->axis_label[0], FONT, L->pw, buf, sizeof(buf));
    draw_text(c, b, L, L->px + L->pw / 2, L->H - 8, 'm', FONT, 0, "#444444", buf, 0, 1, 0);
  }
  if (c->axis_label[1]) {
    char buf[256];
    po__text_fit(c->axis_label[1], FONT, L->ph, buf, sizeof(buf));
    draw_text(c, b, L, 18, L->py + L->ph / 2, 'm', FONT, 0, "#444444", buf, 0, 1, 1);
  }
}

static void draw_bands(po_chart *c, po__cbuf *b, const layout *L) {
  for (size_t i = 0; i < c->nband; i++) {
    double a = fmax(c->band[i].a, L->xlo), e = fmin(c->band[i].b, L->xhi);
    if (e < a) continue;
    double x0 = sx(L, a), x1 = sx(L, e);
    po__cbuf_printf(b,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#000000\" "
                    "fill-opacity=\"%s\"><title>",
                    x0, L->py, fmax(x1 - x0, 0.5), L->ph, i % 2 ? "0.09" : "0.045");
    char t1[48], t2[48];
    po_format_value(c->band[i].a, x_unit(c), t1, sizeof(t1));
    po_format_value(c->band[i].b, x_unit(c), t2, sizeof(t2));
    po__cbuf_xml(b, c->band[i].label);
    po__cbuf_printf(b, ": %s to %s</title></rect>\n", t1, t2);
  }
}

static void draw_band_labels(po_chart *c, po__cbuf *b, const layout *L) {
  for (size_t i = 0; i < c->nband; i++) {
    double a = fmax(c->band[i].a, L->xlo), e = fmin(c->band[i].b, L->xhi);
    if (e < a) continue;
    double x0 = sx(L, a), x1 = sx(L, e);
    char buf[128];
    if (fit_useful(c->band[i].label, 10, x1 - x0 - 6, buf, sizeof(buf)))
      draw_text(c, b, L, x0 + 3, L->py + 12, 's', 10, 0, "#555555", buf, 2, 1, 0);
  }
}

static void draw_thresholds(po_chart *c, po__cbuf *b, const layout *L) {
  for (size_t i = 0; i < c->nthr; i++) {
    double v = c->thr[i].a;
    if (v < L->ylo || v > L->yhi) continue;
    double y = sy(L, v);
    char val[48];
    po_format_value(v, y_unit(c), val, sizeof(val));
    po__cbuf_printf(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000000\" "
                    "stroke-width=\"1.2\" stroke-dasharray=\"6 4\"><title>",
                    L->px, y, L->px + L->pw, y);
    po__cbuf_xml(b, c->thr[i].label);
    po__cbuf_printf(b, " (%s)</title></line>\n", val);
    char text[160], fit[160];
    snprintf(text, sizeof(text), "%s %s", c->thr[i].label, val);
    if (!fit_useful(text, 10, L->pw / 2, fit, sizeof(fit))) continue;
    if (!draw_text(c, b, L, L->px + L->pw - 4, y - 4, 'e', 10, 0, "#000000", fit, 2, 1, 0))
      draw_text(c, b, L, L->px + L->pw - 4, y + 13, 'e', 10, 0, "#000000", fit, 2, 1, 0);
  }
}

/* Marks an area labels must avoid (a marker); markers themselves may touch each other. */
static void add_obstacle(po_chart *c, po__cbuf *b, double x, double y, double w, double h) {
  if (grow((void **)&c->boxes, &c->capboxes, c->nboxes + 1, sizeof(po__box)) != 0)
    b->oom = 1;
  else
    c->boxes[c->nboxes++] = (po__box){x, y, w, h, 3};
}

static void draw_markers(po_chart *c, po__cbuf *b, const layout *L) {
  for (size_t i = 0; i < c->nmark; i++) {
    double xv = c->mark[i].a, yv = c->mark[i].b;
    if (xv < L->xlo || xv > L->xhi) continue;
    double x = sx(L, xv);
    po__cbuf_puts(b, "<g class=\"po-marker\"><title>");
    po__cbuf_xml(b, c->mark[i].label);
    po__cbuf_puts(b, "</title>");
    if (isfinite(yv) && yv >= L->ylo && yv <= L->yhi) {
      po__cbuf_printf(b,
                      "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#ffffff\" "
                      "stroke-width=\"1.5\"/>",
                      x, sy(L, yv), ALERT_COLOR);
      add_obstacle(c, b, x - 5.5, sy(L, yv) - 5.5, 11, 11);
    } else {
      po__cbuf_printf(b,
                      "<path d=\"M%.1f %.1fl-5 -8h10z\" fill=\"%s\" stroke=\"#ffffff\" "
                      "stroke-width=\"1\"/>",
                      x, L->py + 1, ALERT_COLOR);
      add_obstacle(c, b, x - 5.5, L->py - 7.5, 11, 9);
    }
    po__cbuf_puts(b, "</g>\n");
  }
}

static void render_timeseries(po_chart *c, po__cbuf *b) {
  layout L;
  compute_layout(c, &L);
  draw_title(c, b, &L);
  draw_legend(c, b, &L);
  if (!L.has_data) {
    draw_no_data(c, b, &L, L.top);
    return;
  }
  draw_bands(c, b, &L);
  draw_axes(c, b, &L);
  /* clip ids must be unique when several charts share one HTML page */
  static unsigned long clip_seq;
  unsigned long id = __atomic_add_fetch(&clip_seq, 1, __ATOMIC_RELAXED);
  po__cbuf_printf(b,
                  "<clipPath id=\"po-clip-%lu\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                  "height=\"%.1f\"/></clipPath><g clip-path=\"url(#po-clip-%lu)\">\n",
                  id, L.px, L.py - 1, L.pw + 1, L.ph + 2, id);
  draw_series(c, b, &L);
  po__cbuf_puts(b, "</g>\n");
  draw_markers(c, b, &L);
  draw_thresholds(c, b, &L);
  draw_band_labels(c, b, &L);
}

static void render_bars(po_chart *c, po__cbuf *b) {
  layout L;
  memset(&L, 0, sizeof(L));
  L.W = c->width;
  L.H = c->height;
  draw_title(c, b, &L);
  double top = title_height(c) + 4;
  if (c->nbars == 0) {
    draw_no_data(c, b, &L, top);
    return;
  }
  double maxv = 0, minv = 0, labw = 0;
  for (size_t i = 0; i < c->nbars; i++) {
    maxv = fmax(maxv, c->bars[i].value);
    minv = fmin(minv, c->bars[i].value);
    labw = fmax(labw, po__text_width(c->bars[i].label, FONT, 0));
  }
  po_unit xu = x_unit(c);
  double left = floor(fmin(labw, L.W * 0.4) + 14);
  char vbuf[64];
  po_format_value(maxv, xu, vbuf, sizeof(vbuf));
  double right = po__text_width(vbuf, FONT, 0) + 16;
  L.px = left;
  L.pw = fmax(L.W - left - right, 20);
  po_ticks t;
  double xref;
  int nt = (int)(L.pw / 90);
  po__axis_ticks(minv, maxv, nt < 2 ? 2 : nt > 10 ? 10 : nt, xu, &t, &xref);
  L.xlo = t.min;
  L.xhi = t.max;
  double row = 22;
  size_t fit_rows = (size_t)fmax(1, (L.H - top - 8 - 16 - (c->axis_label[0] ? 16 : 0)) / row);
  size_t n = c->nbars < fit_rows ? c->nbars : fit_rows;
  c->render_dropped = c->nbars - n;
  double axis_y = top + (double)n * row + 4;
  L.py = top;
  L.ph = axis_y - top;
  for (size_t i = 0; i < t.count; i++) {
    double x = sx(&L, t.values[i]);
    po__cbuf_printf(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                    x, top, x, axis_y);
    char buf[64];
    po__format_tick(t.values[i], xu, xref, t.step, buf, sizeof(buf));
    draw_text(c, b, &L, x, axis_y + 15, 'm', FONT, 0, "#444444", buf, 1, 1, 0);
  }
  for (size_t i = 0; i < n; i++) {
    const bar *r = &c->bars[i];
    double y = top + (double)i * row + 3;
    double x0 = sx(&L, fmin(0, r->value)), x1 = sx(&L, fmax(0, r->value));
    po__cbuf_puts(b, "<g><title>");
    if (r->tooltip)
      po__cbuf_xml(b, r->tooltip);
    else {
      po_format_value(r->value, xu, vbuf, sizeof(vbuf));
      po__cbuf_xml(b, r->label);
      po__cbuf_printf(b, ": %s", vbuf);
    }
    po__cbuf_printf(b,
                    "</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" "
                    "fill=\"%s\"/></g>\n",
                    x0, y, fmax(x1 - x0, 0.5), PALETTE[0]);
    char lab[256];
    po__text_fit(r->label, FONT, left - 14, lab, sizeof(lab));
    draw_text(c, b, &L, left - 6, y + 12, 'e', FONT, 0, "#222222", lab, 0, 1, 0);
    po_format_value(r->value, xu, vbuf, sizeof(vbuf));
    draw_text(c, b, &L, x1 + 4, y + 12, 's', FONT, 0, "#444444", vbuf, 2, 1, 0);
  }
  po__cbuf_printf(b, "<path fill=\"none\" stroke=\"#444444\" d=\"M%.1f %.1fV%.1fH%.1f\"/>\n",
                  sx(&L, 0), top, axis_y, L.px + L.pw);
  if (c->axis_label[0]) {
    char buf[256];
    po__text_fit(c->axis_label[0], FONT, L.pw, buf, sizeof(buf));
    draw_text(c, b, &L, L.px + L.pw / 2, axis_y + 31, 'm', FONT, 0, "#444444", buf, 0, 1, 0);
  }
}

static unsigned hash_name(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void render_flame(po_chart *c, po__cbuf *b) {
  layout L;
  memset(&L, 0, sizeof(L));
  L.W = c->width;
  L.H = c->height;
  draw_title(c, b, &L);
  double top = title_height(c);
  if (c->nrects == 0) {
    draw_no_data(c, b, &L, top);
    return;
  }
  double root_total = 0;
  for (size_t i = 0; i < c->nrects; i++)
    if (c->rects[i].depth == 0) {
      size_t k = find_frame(c->frames, c->nframes, c->rects[i].id);
      if (k != SIZE_MAX) root_total += c->frames[k].total;
    }
  /* Frames measure time unless the x axis says otherwise (bytes: an allocation flame graph). */
  po_unit unit = c->axis_unit_set[0] ? c->axis_unit[0] : PO_UNIT_SECONDS;
  const char *what = unit == PO_UNIT_BYTES ? "allocations" : "calls";
  for (size_t i = 0; i < c->nrects; i++) {
    const po__frame_rect *r = &c->rects[i];
    size_t k = find_frame(c->frames, c->nframes, r->id);
    if (k == SIZE_MAX) continue;
    const frame *f = &c->frames[k];
    double y = top + r->depth * ROW_H;
    if (y + ROW_H > L.H) continue;
    char tot[48], self[48];
    po_format_value(f->total, unit, tot, sizeof(tot));
    po_format_value(f->self, unit, self, sizeof(self));
    po__cbuf_puts(b, "<g><title>");
    po__cbuf_xml(b, f->name);
    po__cbuf_printf(b, "\n%llu %s, total %s (%.1f%%), self %s</title>",
                    (unsigned long long)f->calls, what, tot,
                    root_total > 0 ? 100.0 * f->total / root_total : 0.0, self);
    po__cbuf_printf(b,
                    "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"%s\" "
                    "stroke=\"#ffffff\" stroke-width=\"0.5\"/>",
                    r->x, y, r->w, ROW_H - 1,
                    FLAME_TINTS[hash_name(f->name) % PO__ARRAY_LEN(FLAME_TINTS)]);
    po__cbuf_puts(b, "</g>\n");
    if (r->w > 24) {
      char name[256];
      if (fit_useful(f->name, FONT, r->w - 6, name, sizeof(name)))
        draw_text(c, b, &L, r->x + 3, y + 13, 's', FONT, 0, "#111111", name, 1, 1, 0);
    }
  }
}

static int render(po_chart *c, po__cbuf *b, int standalone) {
  if (!c->optimized) {
    int rc = po_chart_optimize(c, 0);
    if (rc) return rc;
  }
  c->nboxes = 0;
  svg_open(b, c, standalone);
  switch (c->kind) {
    case PO_CHART_BARS:
      render_bars(c, b);
      break;
    case PO_CHART_FLAME:
      render_flame(c, b);
      break;
    default:
      render_timeseries(c, b);
      break;
  }
  po__cbuf_puts(b, "</svg>\n");
  return b->oom ? PO_ENOMEM : 0;
}

char *po_chart_svg_string(po_chart *c, int standalone, size_t *len) {
  if (!c) return NULL;
  po__cbuf b;
  po__cbuf_init(&b);
  if (render(c, &b, standalone) != 0) {
    po__cbuf_free(&b);
    return NULL;
  }
  return po__cbuf_detach(&b, len);
}

int po_chart_write_svg(po_chart *c, FILE *out) {
  if (!c || !out) return PO_EINVAL;
  size_t len;
  char *s = po_chart_svg_string(c, 1, &len);
  if (!s) return PO_ENOMEM;
  int rc = fwrite(s, 1, len, out) == len ? 0 : PO_EIO;
  free(s);
  return rc;
}

int po_chart_save_svg(po_chart *c, const char *path, char *errbuf, size_t errlen) {
  if (!c || !path) return po__errf(PO_EINVAL, errbuf, errlen, "chart or path is NULL");
  size_t len;
  char *s = po_chart_svg_string(c, 1, &len);
  if (!s) return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory rendering the chart", path);
  int rc = po__write_file_atomic(path, s, len, errbuf, errlen);
  free(s);
  return rc;
}
