/* Charts and the HTML report: how big and how fast.
 *   html_report_24h_bytes   the HTML report of a 24-hour run (86,400 samples x 13 series, 6,000
 *                           call-tree nodes); the budget is 2 MiB
 *   html_render_24h_ms      rendering that report from its model (best of 3)
 *   chart_1m_points_ms      a line chart of 1M points: copy, M4 to 1100 px, SVG (best of 3)
 *   chart_1m_points_svg_bytes  the size of that SVG */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "viz/chart_internal.h"
#include "perfopt.h"
/* The fixture is test support code; the bench build links only libperfopt, so include it. */
#include "../tests/support/report_fixture.c"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

int main(void) {
  cJSON *root = fixture_report(86400, 1, 2, 6000);
  if (!root) return 1;
  double best = INFINITY;
  size_t len = 0;
  for (int i = 0; i < 3; i++) {
    double t0 = now_ms();
    char *html = po__html_render_json(root, &len);
    double t = now_ms() - t0;
    if (!html) return 1;
    free(html);
    if (t < best) best = t;
  }
  cJSON_Delete(root);
  printf("BENCH html_report_24h_bytes %zu bytes\n", len);
  printf("BENCH html_render_24h_ms %.1f ms\n", best);

  size_t n = 1000000;
  double *y = malloc(n * sizeof(double));
  if (!y) return 1;
  for (size_t i = 0; i < n; i++) y[i] = sin((double)i / 3000.0) + 0.05 * sin((double)i * 0.7);
  best = INFINITY;
  for (int i = 0; i < 3; i++) {
    double t0 = now_ms();
    po_chart *c = po_chart_create(PO_CHART_LINES, "1M points");
    if (!c || po_chart_add_series(c, "signal", PO_UNIT_NONE, NULL, y, n) != 0 ||
        po_chart_optimize(c, 1100) != 0)
      return 1;
    char *svg = po_chart_svg_string(c, 1, &len);
    double t = now_ms() - t0;
    if (!svg) return 1;
    free(svg);
    po_chart_destroy(c);
    if (t < best) best = t;
  }
  free(y);
  printf("BENCH chart_1m_points_ms %.1f ms\n", best);
  printf("BENCH chart_1m_points_svg_bytes %zu bytes\n", len);
  return 0;
}
