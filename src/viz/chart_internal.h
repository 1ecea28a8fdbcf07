/* Private pieces of the chart module (src/svg.c, src/ticks.c, src/chart.c, src/html_report.c),
 * shared with tests/test_chart.c. Not installed. */
#ifndef PO__CHART_INTERNAL_H
#define PO__CHART_INTERNAL_H

#include "perfopt.h"

#include <stdarg.h>
#include <stddef.h>

struct cJSON;

/* ---- growing text buffer (src/svg.c) ----------------------------------------------------
 * Appends never fail loudly: on ENOMEM the buffer sets `oom` and ignores further appends, and the
 * caller checks `oom` once at the end. */
typedef struct po__cbuf {
  char *data;
  size_t len, cap;
  int oom;
} po__cbuf;

void po__cbuf_init(po__cbuf *b);
void po__cbuf_free(po__cbuf *b);
void po__cbuf_put(po__cbuf *b, const char *s, size_t n);
void po__cbuf_puts(po__cbuf *b, const char *s);
void po__cbuf_printf(po__cbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with XML escaping (& < > " '); control characters other than tab/newline and
 * invalid UTF-8 bytes become '?', so the document always parses. */
void po__cbuf_xml(po__cbuf *b, const char *s);
/* Hands the NUL-terminated data to the caller (NULL when oom); the buffer is left empty. */
char *po__cbuf_detach(po__cbuf *b, size_t *len);

/* ---- text metrics (src/svg.c) -----------------------------------------------------------
 * Advance widths of DejaVu Sans (the font the SVG declares first; Verdana is close), so labels can
 * be measured without a font engine. Non-ASCII characters count as a digit's width. */
#define PO__FONT_FAMILY "DejaVu Sans, Verdana, Arial, sans-serif"
double po__text_width(const char *s, double font_px, int bold);
/* Copies s into out (size outlen), cut to fit max_px with a trailing "…" when it does not fit.
 * Returns 1 when it cut, 0 when s fit, and writes "" when not even "…" fits. */
int po__text_fit(const char *s, double font_px, double max_px, char *out, size_t outlen);

/* ---- ticks and units (src/ticks.c) ------------------------------------------------------ */
/* Formats an axis tick: the prefix is chosen from `ref` (the largest |tick|) and the decimals from
 * `step`, so every label of one axis reads alike ("0", "0.5 GiB", "1 GiB", "1.5 GiB"). */
int po__format_tick(double v, po_unit unit, double ref, double step, char *buf, size_t len);

/* Ticks for an axis in `unit`, nice in the unit's display scale (0, 0.5, 1, 1.5 GiB rather than
 * multiples of 10^8 bytes; hours for long durations; time steps for PO_UNIT_ELAPSED). *ref gets
 * the magnitude that picked the scale: pass it to po__format_tick for every label of the axis. */
int po__axis_ticks(double dmin, double dmax, int target, po_unit unit, po_ticks *out, double *ref);

/* ---- chart layout introspection (src/chart.c), for tests --------------------------------- */
typedef struct po__box {
  double x, y, w, h;
  int kind; /* 0 title/legend/axis label, 1 tick label, 2 optional label, 3 marker (no text) */
} po__box;

typedef struct po__frame_rect {
  int64_t id, parent;
  double x, w;
  int depth;
} po__frame_rect;

/* The text boxes and flame rectangles the last render drew (valid until the next render or free).
 */
size_t po__chart_text_boxes(const po_chart *chart, const po__box **out);
size_t po__chart_frame_rects(const po_chart *chart, const po__frame_rect **out);
/* Points currently held by series i (after optimize: the reduced count). */
size_t po__chart_series_points(const po_chart *chart, size_t i);

/* ---- HTML report from a model tree (src/html_report.c) ----------------------------------- */
/* Renders the HTML report of the report tree `root` into a malloc'd string. NULL on ENOMEM. */
char *po__html_render_json(const struct cJSON *root, size_t *len);
/* The same page with `extra` (HTML, e.g. the live dashboard's script) inserted just before
 * </body>; extra NULL gives exactly po__html_render_json's page. */
char *po__html_render_json_with(const struct cJSON *root, const char *extra, size_t *len);

#endif
