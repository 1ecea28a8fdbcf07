/* Charts and the HTML report: ticks, units, escaping, label layout, flame geometry, reduction,
 * degenerate input and the size of a 24-hour report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>

#include "viz/chart_internal.h"
#include "perfopt.h"
#include "support/report_fixture.h"
#include "support/support.h"

#define GIB 1073741824.0

/* ---- helpers -------------------------------------------------------------------------------- */

/* A small well-formedness check: every tag closes in order, attributes are quoted, no raw '<' or
 * '&' in text. Enough to catch escaping and nesting bugs without an XML library. */
static int xml_well_formed(const char *s, char *why, size_t whylen) {
  char stack[256][32];
  int depth = 0;
  const char *p = s;
  while (*p) {
    if (*p == '&') {
      const char *semi = strchr(p, ';');
      if (!semi || semi - p > 8) return snprintf(why, whylen, "bare & at %td", p - s), 0;
      p = semi + 1;
      continue;
    }
    if (*p != '<') {
      p++;
      continue;
    }
    if (strncmp(p, "<?", 2) == 0 || strncmp(p, "<!", 2) == 0) {
      const char *e = strchr(p, '>');
      if (!e) return snprintf(why, whylen, "unterminated declaration"), 0;
      p = e + 1;
      continue;
    }
    int closing = p[1] == '/';
    const char *n = p + 1 + closing;
    size_t nl = strcspn(n, " \t\n/>");
    if (nl == 0 || nl >= 32) return snprintf(why, whylen, "bad tag name at %td", p - s), 0;
    /* find the end of the tag, honouring quoted attribute values */
    const char *q = n + nl;
    char quote = 0;
    while (*q && (quote || *q != '>')) {
      if (quote) {
        if (*q == quote)
          quote = 0;
        else if (*q == '<')
          return snprintf(why, whylen, "'<' inside an attribute at %td", q - s), 0;
      } else if (*q == '"' || *q == '\'') {
        quote = *q;
      } else if (*q == '=' && q[1] != '"' && q[1] != '\'') {
        return snprintf(why, whylen, "unquoted attribute at %td", q - s), 0;
      }
      q++;
    }
    if (!*q) return snprintf(why, whylen, "unterminated tag at %td", p - s), 0;
    int self = q[-1] == '/';
    if (closing) {
      if (depth == 0 || strncmp(stack[depth - 1], n, nl) != 0 || stack[depth - 1][nl] != '\0')
        return snprintf(why, whylen, "mismatched </%.*s> at %td", (int)nl, n, p - s), 0;
      depth--;
    } else if (!self) {
      if (depth >= 256) return snprintf(why, whylen, "too deep"), 0;
      memcpy(stack[depth], n, nl);
      stack[depth][nl] = '\0';
      depth++;
    }
    p = q + 1;
  }
  if (depth != 0) return snprintf(why, whylen, "%d unclosed tags (%s)", depth, stack[depth - 1]), 0;
  return 1;
}

static void assert_valid_svg(const char *svg) {
  assert_non_null(svg);
  assert_non_null(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
  char why[128] = "";
  if (!xml_well_formed(svg, why, sizeof(why))) fail_msg("SVG not well-formed: %s", why);
  assert_null(strstr(svg, "nan"));
  assert_null(strstr(svg, "inf\""));
}

static char *render(po_chart *c) {
  char *svg = po_chart_svg_string(c, 1, NULL);
  assert_valid_svg(svg);
  return svg;
}

/* Pairs of boxes that overlap (two markers may touch: they hold no text); prints each. */
static size_t overlapping_pairs(const po__box *b, size_t n) {
  size_t bad = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      if (b[i].kind == 3 && b[j].kind == 3) continue;
      int overlap = b[i].x < b[j].x + b[j].w && b[j].x < b[i].x + b[i].w &&
                    b[i].y < b[j].y + b[j].h && b[j].y < b[i].y + b[i].h;
      if (!overlap) continue;
      bad++;
      fprintf(stderr, "labels %zu (%.1f,%.1f %.1fx%.1f) and %zu (%.1f,%.1f %.1fx%.1f) overlap\n", i,
              b[i].x, b[i].y, b[i].w, b[i].h, j, b[j].x, b[j].y, b[j].w, b[j].h);
    }
  return bad;
}

/* The chart's last rendering recorded at least min_text text boxes (labels it drew), and no two
 * of its boxes overlap. Without the first check a chart that recorded nothing would pass. */
static void assert_boxes_disjoint(const po_chart *c, size_t min_text) {
  const po__box *b;
  size_t n = po__chart_text_boxes(c, &b), text = 0;
  for (size_t i = 0; i < n; i++) text += b[i].kind != 3;
  if (text < min_text) fail_msg("%zu text boxes recorded, expected at least %zu", text, min_text);
  assert_int_equal(overlapping_pairs(b, n), 0);
}

/* Positive control for the helper: it sees an overlap, and markers touching each other are not
 * one. */
static void test_overlap_helper_sees_overlaps(void **state) {
  (void)state;
  po__box b[3] = {{10, 10, 50, 12, 0}, {40, 15, 50, 12, 1}, {200, 10, 5, 5, 3}};
  assert_int_equal(overlapping_pairs(b, 3), 1);
  po__box m[2] = {{10, 10, 11, 11, 3}, {15, 15, 11, 11, 3}};
  assert_int_equal(overlapping_pairs(m, 2), 0);
}

static void assert_ticks_cover(const po_ticks *t, double lo, double hi) {
  assert_true(t->count >= 2 && t->count <= PO_TICKS_MAX);
  assert_true(t->values[0] <= lo + fabs(lo) * 1e-12);
  assert_true(t->values[t->count - 1] >= hi - fabs(hi) * 1e-12);
  for (size_t i = 1; i < t->count; i++) {
    assert_true(t->values[i] > t->values[i - 1]);
    assert_true(isfinite(t->values[i]));
  }
}

/* ---- ticks ---------------------------------------------------------------------------------- */

static void test_ticks_unit_interval(void **state) {
  (void)state;
  po_ticks t;
  /* Talbot et al.'s scores: six labels 0, 0.2, ..., 1 when six are wanted; with five wanted,
   * 0, 0.25, ..., 1 matches the density exactly and wins despite the less simple step */
  assert_int_equal(po_chart_nice_ticks(0, 1, 6, &t), 0);
  assert_int_equal(t.count, 6);
  assert_true(fabs(t.step - 0.2) < 1e-12);
  assert_true(t.values[0] == 0 && fabs(t.values[5] - 1) < 1e-12);
  assert_int_equal(po_chart_nice_ticks(0, 1, 5, &t), 0);
  assert_int_equal(t.count, 5);
  assert_true(fabs(t.step - 0.25) < 1e-12);
  /* the same scores for 0..100: step 25 (5 labels, density 1, simplicity 0.4) scores 0.85 and
   * beats step 20 (6 labels, density 0.75, simplicity 0.6) at 0.775 */
  assert_int_equal(po_chart_nice_ticks(0, 100, 5, &t), 0);
  assert_true(t.step == 25);
  assert_int_equal(t.count, 5);
}

static void test_ticks_zero_to_97(void **state) {
  (void)state;
  po_ticks t;
  assert_int_equal(po_chart_nice_ticks(0, 97, 5, &t), 0);
  assert_ticks_cover(&t, 0, 97);
  assert_true(t.values[0] == 0);
  assert_true(t.values[t.count - 1] <= 100);
  /* 0, 25, ..., 100 (score 0.840: coverage 0.952) beats 0, 20, ..., 100 (0.765) */
  assert_true(t.step == 25);
  assert_int_equal(t.count, 5);
}

static void test_ticks_tiny_and_huge_ranges(void **state) {
  (void)state;
  po_ticks t;
  assert_int_equal(po_chart_nice_ticks(1.0000001, 1.0000002, 5, &t), 0);
  assert_ticks_cover(&t, 1.0000001, 1.0000002);
  /* every tick label must differ, however small the step */
  char a[64], b[64];
  for (size_t i = 1; i < t.count; i++) {
    po__format_tick(t.values[i - 1], PO_UNIT_NONE, t.max, t.step, a, sizeof(a));
    po__format_tick(t.values[i], PO_UNIT_NONE, t.max, t.step, b, sizeof(b));
    assert_string_not_equal(a, b);
  }
  assert_int_equal(po_chart_nice_ticks(0, 3e300, 5, &t), 0);
  assert_ticks_cover(&t, 0, 3e300);
  assert_int_equal(po_chart_nice_ticks(1e-300, 5e-300, 5, &t), 0);
  assert_ticks_cover(&t, 1e-300, 5e-300);
}

static void test_ticks_negative_range(void **state) {
  (void)state;
  po_ticks t;
  assert_int_equal(po_chart_nice_ticks(-50, -3, 5, &t), 0);
  assert_ticks_cover(&t, -50, -3);
  assert_int_equal(po_chart_nice_ticks(-7.5, 12, 5, &t), 0);
  assert_ticks_cover(&t, -7.5, 12);
  int has_zero = 0;
  for (size_t i = 0; i < t.count; i++) has_zero |= t.values[i] == 0;
  assert_true(has_zero); /* simplicity rewards a labelled zero */
}

static void test_ticks_constant_and_nonfinite(void **state) {
  (void)state;
  po_ticks t;
  assert_int_equal(po_chart_nice_ticks(5, 5, 5, &t), 0);
  assert_ticks_cover(&t, 5, 5);
  assert_true(t.max > 5); /* the constant is not drawn on the top edge */
  assert_int_equal(po_chart_nice_ticks(0, 0, 5, &t), 0);
  assert_ticks_cover(&t, 0, 1);
  assert_int_equal(po_chart_nice_ticks(NAN, NAN, 5, &t), 0);
  assert_ticks_cover(&t, 0, 1);
  assert_int_equal(po_chart_nice_ticks(3, INFINITY, 5, &t), 0);
  assert_ticks_cover(&t, 3, 3);
  assert_int_equal(po_chart_nice_ticks(0, 1, 1, &t), PO_EINVAL);
  assert_int_equal(po_chart_nice_ticks(0, 1, 5, NULL), PO_EINVAL);
}

static void test_time_ticks_use_clock_steps(void **state) {
  (void)state;
  po_ticks t;
  assert_int_equal(po_chart_time_ticks(0, 86400, 8, &t), 0);
  assert_ticks_cover(&t, 0, 86400);
  assert_true(fmod(t.step, 3600) == 0); /* whole hours */
  char buf[32];
  po__format_tick(t.values[1], PO_UNIT_ELAPSED, t.max, t.step, buf, sizeof(buf));
  assert_non_null(strstr(buf, " h"));
  assert_int_equal(po_chart_time_ticks(0, 600, 6, &t), 0);
  assert_true(fmod(t.step, 60) == 0);
  po__format_tick(t.values[1], PO_UNIT_ELAPSED, t.max, t.step, buf, sizeof(buf));
  assert_non_null(strstr(buf, "min"));
}

/* ---- units ---------------------------------------------------------------------------------- */

static void expect_format(double v, po_unit u, const char *want) {
  char buf[64];
  po_format_value(v, u, buf, sizeof(buf));
  if (strcmp(buf, want) != 0) fail_msg("format(%g, %d) = \"%s\", want \"%s\"", v, u, buf, want);
}

static void test_format_units(void **state) {
  (void)state;
  expect_format(1536, PO_UNIT_BYTES, "1.5 KiB");
  expect_format(512, PO_UNIT_BYTES, "512 B");
  expect_format(3 * GIB, PO_UNIT_BYTES, "3 GiB");
  expect_format(1.25 * 1048576, PO_UNIT_BYTES_PER_SECOND, "1.25 MiB/s");
  expect_format(0.0021, PO_UNIT_SECONDS, "2.1 ms");
  expect_format(0.00085, PO_UNIT_SECONDS, "850 \xC2\xB5s");
  expect_format(42e-9, PO_UNIT_SECONDS, "42 ns");
  expect_format(90, PO_UNIT_SECONDS, "90 s");
  expect_format(5400, PO_UNIT_SECONDS, "90 min");
  expect_format(36000, PO_UNIT_SECONDS, "10 h");
  expect_format(0.85, PO_UNIT_RATIO, "85%");
  expect_format(0.005, PO_UNIT_RATIO, "0.5%");
  expect_format(1234, PO_UNIT_COUNT, "1.23k");
  expect_format(17, PO_UNIT_COUNT, "17");
  expect_format(250, PO_UNIT_WATTS, "250 W");
  expect_format(67, PO_UNIT_CELSIUS,
                "67 \xC2\xB0"
                "C");
  expect_format(NAN, PO_UNIT_BYTES, "n/a");
  expect_format(0, PO_UNIT_SECONDS, "0 s");
  assert_int_equal(po_unit_from_name("gpu0_memory_used_bytes"), PO_UNIT_BYTES);
  assert_int_equal(po_unit_from_name("disk_read_bytes_per_second"), PO_UNIT_BYTES_PER_SECOND);
  assert_int_equal(po_unit_from_name("ratio"), PO_UNIT_RATIO);
  assert_int_equal(po_unit_from_name("grossbytes"), PO_UNIT_NONE);
}

static void test_axis_labels_share_one_prefix(void **state) {
  (void)state;
  po_ticks t;
  assert_int_equal(po_chart_nice_ticks(0, 1.6 * GIB, 5, &t), 0);
  char buf[64];
  for (size_t i = 1; i < t.count; i++) {
    po__format_tick(t.values[i], PO_UNIT_BYTES, t.max, t.step, buf, sizeof(buf));
    assert_non_null(strstr(buf, "GiB"));
  }
  po__format_tick(0, PO_UNIT_BYTES, t.max, t.step, buf, sizeof(buf));
  assert_string_equal(buf, "0");
  po__format_tick(0.5, PO_UNIT_RATIO, 1, 0.25, buf, sizeof(buf));
  assert_string_equal(buf, "50%");
}

/* ---- escaping ------------------------------------------------------------------------------- */

static void test_names_are_xml_escaped(void **state) {
  (void)state;
  po_chart *c = po_chart_create(PO_CHART_LINES, "a<b & \"c\" 'd'");
  double x[] = {0, 1, 2}, y[] = {1, 3, 2};
  assert_int_equal(po_chart_add_series(c, "<script>alert(1)</script>&", PO_UNIT_NONE, x, y, 3), 0);
  assert_int_equal(po_chart_add_threshold(c, 2.5, "limit \"hard\" <x>"), 0);
  assert_int_equal(po_chart_add_marker(c, 1, NAN, "fired & cleaned <now>"), 0);
  char *svg = render(c);
  assert_null(strstr(svg, "<script"));
  assert_non_null(strstr(svg, "&lt;script&gt;alert(1)&lt;/script&gt;&amp;"));
  assert_non_null(strstr(svg, "a&lt;b &amp; &quot;c&quot; &#39;d&#39;"));
  free(svg);
  po_chart_destroy(c);

  po__cbuf b;
  po__cbuf_init(&b);
  po__cbuf_xml(&b, "ok\x01\xff\xc3\xa9<");
  char *s = po__cbuf_detach(&b, NULL);
  assert_string_equal(s, "ok??\xc3\xa9&lt;");
  free(s);
}

/* ---- layout --------------------------------------------------------------------------------- */

static void test_labels_never_overlap(void **state) {
  (void)state;
  int widths[] = {120, 200, 400, 800, 1600};
  for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
    po_chart *c =
        po_chart_create(PO_CHART_LINES, "A long title that will not fit in narrow charts at all");
    po_chart_set_axis(c, 'x', "time since start", PO_UNIT_ELAPSED);
    po_chart_set_axis(c, 'y', "memory", PO_UNIT_BYTES);
    double x[500], y[500], z[500];
    for (int i = 0; i < 500; i++) {
      x[i] = i * 173.0;
      y[i] = 1e9 + 5e8 * sin(i / 20.0);
      z[i] = 3e8 * (1 + cos(i / 7.0));
    }
    for (int s = 0; s < 9; s++) {
      char name[64];
      snprintf(name, sizeof(name), "series number %d with a long name", s);
      assert_int_equal(po_chart_add_series(c, name, PO_UNIT_BYTES, x, s % 2 ? y : z, 500), 0);
    }
    po_chart_add_threshold(c, 1.4e9, "threshold (config)");
    po_chart_add_threshold(c, 1.45e9, "another threshold close by");
    for (int k = 0; k < 30; k++) /* markers right where the threshold labels want to go */
      po_chart_add_marker(c, 86000.0 - k * 500, k % 2 ? NAN : 1.41e9, "fired");
    for (int p = 0; p < 12; p++) {
      char name[32];
      snprintf(name, sizeof(name), "epoch %d", p + 1);
      po_chart_add_band(c, p * 7200.0, (p + 1) * 7200.0, name);
    }
    assert_int_equal(po_chart_optimize(c, widths[w]), 0);
    char *svg = render(c);
    assert_boxes_disjoint(c, 10); /* even at 120 px: tick labels, axis labels, legend */
    free(svg);
    po_chart_destroy(c);
  }
  /* bars with long names */
  po_chart *b = po_chart_create(PO_CHART_BARS, "Top functions");
  po_chart_set_axis(b, 'x', "self time", PO_UNIT_SECONDS);
  for (int i = 0; i < 20; i++) {
    char name[128];
    snprintf(name, sizeof(name), "std::vector<std::pair<int,int>>::function_number_%d", i);
    po_chart_add_bar(b, name, 100.0 / (i + 1), NULL);
  }
  assert_int_equal(po_chart_optimize(b, 500), 0);
  char *svg = render(b);
  assert_boxes_disjoint(b, 20); /* one label per bar at least */
  free(svg);
  po_chart_destroy(b);
}

static void test_legend_and_ticks_are_drawn(void **state) {
  (void)state;
  po_chart *c = po_chart_create(PO_CHART_AREAS, "CPU");
  double y[100];
  for (int i = 0; i < 100; i++) y[i] = i / 100.0;
  po_chart_add_series(c, "system", PO_UNIT_RATIO, NULL, y, 100);
  po_chart_optimize(c, 800);
  char *svg = render(c);
  assert_non_null(strstr(svg, ">system</text>"));
  assert_non_null(strstr(svg, ">100%</text>"));
  assert_non_null(strstr(svg, ">0%</text>"));
  const po__box *b;
  assert_true(po__chart_text_boxes(c, &b) >= 5);
  free(svg);
  po_chart_destroy(c);
}

/* ---- flame graph ------------------------------------------------------------------------------
 */

static void check_flame_geometry(po_chart *c, int proportional) {
  const po__frame_rect *r;
  size_t n = po__chart_frame_rects(c, &r);
  assert_true(n > 0);
  for (size_t i = 0; i < n; i++) {
    if (r[i].parent < 0) {
      assert_int_equal(r[i].depth, 0);
      continue;
    }
    const po__frame_rect *p = NULL;
    for (size_t k = 0; k < n; k++)
      if (r[k].id == r[i].parent) p = &r[k];
    assert_non_null(p);
    assert_int_equal(r[i].depth, p->depth + 1);
    assert_true(r[i].x >= p->x - 1e-6);
    assert_true(r[i].x + r[i].w <= p->x + p->w + 1e-6);
  }
  /* siblings do not overlap */
  for (size_t i = 0; i < n; i++)
    for (size_t k = i + 1; k < n; k++)
      if (r[i].depth == r[k].depth)
        assert_true(r[i].x + r[i].w <= r[k].x + 1e-6 || r[k].x + r[k].w <= r[i].x + 1e-6);
  (void)proportional;
}

static void test_flame_geometry(void **state) {
  (void)state;
  po_chart *c = po_chart_create(PO_CHART_FLAME, "calls");
  /* main(10) -> a(6) -> a1(3), a2(2); main -> b(3); other root(5) */
  assert_int_equal(po_chart_add_frame(c, 1, -1, "main", 1, 10, 1), 0);
  assert_int_equal(po_chart_add_frame(c, 2, 1, "a", 4, 6, 1), 0);
  assert_int_equal(po_chart_add_frame(c, 3, 2, "a1", 8, 3, 3), 0);
  assert_int_equal(po_chart_add_frame(c, 4, 2, "a2", 8, 2, 2), 0);
  assert_int_equal(po_chart_add_frame(c, 5, 1, "b", 2, 3, 3), 0);
  assert_int_equal(po_chart_add_frame(c, 6, -1, "worker", 1, 5, 5), 0);
  assert_int_equal(po_chart_optimize(c, 816), 0);
  char *svg = render(c);
  check_flame_geometry(c, 1);
  const po__frame_rect *r;
  size_t n = po__chart_frame_rects(c, &r);
  assert_int_equal(n, 6);
  double w[7] = {0};
  for (size_t i = 0; i < n; i++) w[r[i].id] = r[i].w;
  /* widths proportional to total time: the plot is 800 px for 15 s */
  assert_true(fabs(w[1] - 800 * 10 / 15.0) < 1e-6);
  assert_true(fabs(w[2] / w[1] - 0.6) < 1e-9);
  assert_true(fabs(w[3] / w[2] - 0.5) < 1e-9);
  assert_true(fabs(w[6] / w[1] - 0.5) < 1e-9);
  assert_non_null(strstr(svg, "<title>a1\n8 calls, total 3 s (20.0%), self 3 s</title>"));
  assert_int_equal(po_chart_dropped(c), 0);
  free(svg);
  po_chart_destroy(c);
}

static void test_flame_children_overfull_and_bad_links(void **state) {
  (void)state;
  po_chart *c = po_chart_create(PO_CHART_FLAME, NULL);
  /* children sum to more than the parent (clock skew between threads): they must still fit */
  po_chart_add_frame(c, 10, -1, "root", 1, 1.0, 0);
  po_chart_add_frame(c, 11, 10, "x", 1, 0.8, 0.8);
  po_chart_add_frame(c, 12, 10, "y", 1, 0.7, 0.7);
  po_chart_add_frame(c, 13, 99, "orphan", 1, 0.1, 0.1); /* unknown parent */
  po_chart_add_frame(c, 14, 14, "self-parent", 1, 0.1, 0.1);
  po_chart_add_frame(c, 15, 10, "tiny", 1, 1e-9, 1e-9); /* under half a pixel */
  po_chart_add_frame(c, 16, 10, "nan <&>", 1, NAN, NAN);
  assert_int_equal(po_chart_optimize(c, 400), 0);
  char *svg = render(c);
  check_flame_geometry(c, 0);
  assert_true(po_chart_dropped(c) >= 4);
  free(svg);
  po_chart_destroy(c);
}

static void test_flame_deep_tree_does_not_recurse(void **state) {
  (void)state;
  po_chart *c = po_chart_create(PO_CHART_FLAME, "deep");
  for (int i = 0; i < 100000; i++) po_chart_add_frame(c, i, i - 1, "f", 1, 100000.0 - i, 1);
  assert_int_equal(po_chart_optimize(c, 800), 0);
  char *svg = render(c);
  assert_true(po_chart_dropped(c) > 0); /* deeper than the chart shows */
  free(svg);
  po_chart_destroy(c);
}

/* ---- degenerate data ---------------------------------------------------------------------- */

static void test_empty_and_nan_series_do_not_crash(void **state) {
  (void)state;
  po_chart_kind kinds[] = {PO_CHART_LINES, PO_CHART_AREAS, PO_CHART_STACKED, PO_CHART_BARS,
                           PO_CHART_FLAME};
  for (size_t k = 0; k < 5; k++) {
    po_chart *c = po_chart_create(kinds[k], NULL);
    char *svg = render(c);
    assert_non_null(strstr(svg, "no data recorded"));
    free(svg);
    po_chart_destroy(c);
  }
  double nan3[] = {NAN, NAN, NAN}, one[] = {42}, x1[] = {7};
  po_chart *c = po_chart_create(PO_CHART_LINES, "gaps");
  assert_int_equal(po_chart_add_series(c, "all missing", PO_UNIT_BYTES, NULL, nan3, 3), 0);
  assert_int_equal(po_chart_add_series(c, "empty", PO_UNIT_BYTES, NULL, NULL, 0), 0);
  char *svg = render(c);
  assert_non_null(strstr(svg, "no data recorded"));
  free(svg);
  assert_int_equal(po_chart_add_series(c, "one point", PO_UNIT_BYTES, x1, one, 1), 0);
  assert_int_equal(po_chart_add_marker(c, 7, 42, "only"), 0);
  svg = render(c);
  assert_null(strstr(svg, "no data recorded"));
  free(svg);
  po_chart_destroy(c);

  /* a gap stays a gap: the line restarts with M after NaN */
  c = po_chart_create(PO_CHART_LINES, NULL);
  double y[] = {1, 2, NAN, NAN, 3, 4};
  po_chart_add_series(c, "gappy", PO_UNIT_NONE, NULL, y, 6);
  svg = render(c);
  const char *d = strstr(svg, "stroke-linejoin");
  assert_non_null(d);
  d = strstr(d, "d=\"");
  assert_non_null(d);
  int moves = 0;
  for (const char *p = d + 3; *p && *p != '"'; p++) moves += *p == 'M';
  assert_int_equal(moves, 2);
  free(svg);
  po_chart_destroy(c);
}

static void test_bad_arguments_are_errors(void **state) {
  (void)state;
  po_chart *c = po_chart_create(PO_CHART_LINES, NULL);
  double x[] = {0, 2, 1}, y[] = {1, 2, 3};
  assert_int_equal(po_chart_add_series(c, "unsorted", PO_UNIT_NONE, x, y, 3), PO_EINVAL);
  assert_int_equal(po_chart_add_bar(c, "not a bar chart", 1, NULL), PO_EINVAL);
  assert_int_equal(po_chart_add_band(c, 5, 1, "reversed"), PO_EINVAL);
  assert_int_equal(po_chart_set_size(c, 10, 0), PO_ERANGE);
  assert_int_equal(po_chart_optimize(c, 50), PO_ERANGE);
  assert_int_equal(po_chart_set_axis(c, 'z', "?", PO_UNIT_NONE), PO_EINVAL);
  assert_null(po_chart_create((po_chart_kind)42, NULL));
  po_chart_destroy(c);
  po_chart_destroy(NULL);
  char err[256] = "";
  c = po_chart_create(PO_CHART_LINES, NULL);
  assert_int_not_equal(po_chart_save_svg(c, "/nonexistent-dir/x/chart.svg", err, sizeof(err)), 0);
  assert_non_null(strstr(err, "/nonexistent-dir/x/chart.svg"));
  po_chart_destroy(c);
}

/* ---- reduction ------------------------------------------------------------------------------ */

static void test_optimize_reduces_to_width_and_keeps_extremes(void **state) {
  (void)state;
  size_t n = 1000000;
  double *y = malloc(n * sizeof(double));
  assert_non_null(y);
  for (size_t i = 0; i < n; i++) y[i] = sin((double)i / 5000.0) + 1e-3 * (double)(i % 7);
  y[123457] = 50; /* a single spike must survive */
  y[876543] = -50;
  po_chart *c = po_chart_create(PO_CHART_LINES, "1M points");
  assert_int_equal(po_chart_add_series(c, "signal", PO_UNIT_NONE, NULL, y, n), 0);
  free(y); /* the chart holds its own copy */
  assert_int_equal(po_chart_optimize(c, 800), 0);
  size_t m = po__chart_series_points(c, 0);
  assert_true(m <= 4 * 800);
  assert_true(m >= 100);
  size_t len;
  char *svg = po_chart_svg_string(c, 1, &len);
  assert_valid_svg(svg);
  assert_true(len < 200000);
  /* the y axis reaches the spikes: ticks at or beyond +-50 */
  assert_non_null(strstr(svg, ">50</text>"));
  assert_non_null(strstr(svg, ">-50</text>"));
  free(svg);
  po_chart_destroy(c);
}

static void test_stacked_areas_share_reduced_x(void **state) {
  (void)state;
  size_t n = 20000;
  double *t = malloc(n * sizeof(double)), *a = malloc(n * sizeof(double)),
         *b = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    t[i] = (double)i;
    a[i] = 1e9 + 1e8 * sin((double)i / 300.0);
    b[i] = 2e9 + 3e8 * cos((double)i / 70.0);
  }
  po_chart *c = po_chart_create(PO_CHART_STACKED, "memory by category");
  po_chart_set_axis(c, 'x', NULL, PO_UNIT_ELAPSED);
  assert_int_equal(po_chart_add_series(c, "process", PO_UNIT_BYTES, t, a, n), 0);
  assert_int_equal(po_chart_add_series(c, "other", PO_UNIT_BYTES, t, b, n), 0);
  assert_int_equal(po_chart_optimize(c, 600), 0);
  assert_int_equal(po__chart_series_points(c, 0), po__chart_series_points(c, 1));
  assert_true(po__chart_series_points(c, 0) < n);
  char *svg = render(c);
  /* layers are opaque areas drawn top-down: the upper one first */
  const char *other = strstr(svg, "<title>other</title>"),
             *proc = strstr(svg, "<title>process</title>");
  assert_non_null(other);
  assert_non_null(proc);
  assert_true(other < proc);
  free(svg);
  po_chart_destroy(c);
  free(t), free(a), free(b);
}

/* The series path of a one-series line chart: its "d" attribute (borrowed from svg). */
static const char *series_path(const char *svg) {
  const char *d = strstr(svg, "stroke-linejoin");
  return d ? strstr(d, "d=\"") + 3 : NULL;
}

static void test_reduction_off_keeps_every_point(void **state) {
  (void)state;
  size_t n = 50000;
  double *y = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) y[i] = sin((double)i / 50.0) + (double)(i % 7) * 0.01;
  po_chart *c = po_chart_create(PO_CHART_LINES, "full resolution");
  assert_int_equal(po_chart_add_series(c, "signal", PO_UNIT_NONE, NULL, y, n), 0);
  assert_int_equal(po_chart_set_reduction(c, 0), 0);
  assert_int_equal(po_chart_optimize(c, 800), 0);
  assert_int_equal(po__chart_series_points(c, 0), n);
  free(render(c)); /* the render keeps them too (it optimizes only when asked to) */
  assert_int_equal(po__chart_series_points(c, 0), n);
  /* turned back on, the next optimize reduces; after that the full copy is gone for good */
  assert_int_equal(po_chart_set_reduction(c, 1), 0);
  assert_int_equal(po_chart_optimize(c, 800), 0);
  assert_true(po__chart_series_points(c, 0) <= 4 * 800);
  assert_int_equal(po_chart_set_reduction(c, 0), PO_ESTATE);
  assert_int_equal(po_chart_set_reduction(NULL, 0), PO_EINVAL);
  po_chart_destroy(c);
  free(y);
}

/* Every point of a line sits at the centre of its pixel column (x = whole pixel + 0.5), which is
 * what makes the M4-reduced line cover the same pixels as the full one. */
static void test_line_points_sit_at_column_centres(void **state) {
  (void)state;
  size_t n = 30000;
  double *y = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) y[i] = (double)((i * 7919) % 1000);
  for (int reduce = 0; reduce < 2; reduce++) {
    po_chart *c = po_chart_create(PO_CHART_LINES, NULL);
    assert_int_equal(po_chart_add_series(c, "noise", PO_UNIT_NONE, NULL, y, n), 0);
    assert_int_equal(po_chart_set_reduction(c, reduce), 0);
    char *svg = render(c);
    const char *p = series_path(svg);
    assert_non_null(p);
    size_t xs = 0;
    while (*p && *p != '"') {
      /* "Mx y" then " x y" pairs */
      if (*p == 'M' || *p == 'L') p++;
      char *end;
      double x = strtod(p, &end);
      assert_true(end > p);
      assert_true(fabs(x - floor(x) - 0.5) < 1e-9);
      xs++;
      p = end;
      strtod(p, &end); /* y */
      p = end;
      while (*p == ' ') p++;
    }
    assert_true(reduce ? xs < n : xs == n);
    free(svg);
    po_chart_destroy(c);
  }
  free(y);
}

/* ---- HTML report ---------------------------------------------------------------------------- */

static size_t count_of(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_html_report_24h_under_2mb(void **state) {
  (void)state;
  cJSON *root = fixture_report(86400, 1, 1, 6000);
  assert_non_null(root);
  size_t len = 0;
  char *html = po__html_render_json(root, &len);
  assert_non_null(html);
  printf("# 24-hour report: %zu bytes of HTML (86400 points per series)\n", len);
  assert_true(len < 2u * 1024 * 1024);
  char why[128] = "";
  char *script = strstr(html, "<script>");
  assert_non_null(script);
  *script = '\0'; /* the markup before the script must be well-formed (the script has "&&") */
  int ok = xml_well_formed(strstr(html, "<body>") + 6, why, sizeof(why));
  *script = '<';
  if (!ok) fail_msg("HTML body not well-formed: %s", why);
  const char *ids[] = {"id=\"summary\"", "id=\"suggestions\"", "id=\"functions\"",
                       "id=\"flame\"",   "id=\"cpu\"",         "id=\"memory\"",
                       "id=\"disk\"",    "id=\"gpu\"",         "id=\"cache\""};
  for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) assert_non_null(strstr(html, ids[i]));
  assert_true(count_of(html, "<svg ") >= 8);
  assert_null(strstr(html, "no data recorded"));
  assert_non_null(strstr(html, "peak of this process"));
  assert_non_null(strstr(html, "threshold fired at"));
  assert_non_null(strstr(html, "epoch 12"));
  assert_non_null(strstr(html, "call-tree frames are not drawn"));
  assert_null(strstr(html, "url(http"));
  assert_null(strstr(html, "<script src"));
  assert_null(strstr(html, "<link"));
  free(html);
  cJSON_Delete(root);
}

static void test_html_report_empty_sections_say_so(void **state) {
  (void)state;
  cJSON *root = cJSON_Parse(
      "{\"perfopt_version\":\"0.1.0\",\"host\":{\"hostname\":\"h<1>\"},"
      "\"suggestions\":[],\"gpu\":{\"available\":false,"
      "\"reason\":\"libnvidia-ml.so.1 not found\"}}");
  assert_non_null(root);
  size_t len;
  char *html = po__html_render_json(root, &len);
  assert_non_null(html);
  assert_true(count_of(html, "no data recorded") >= 6);
  assert_non_null(strstr(html, "h&lt;1&gt;"));
  assert_non_null(strstr(html, "libnvidia-ml.so.1 not found"));
  assert_null(strstr(html, "id=\"suggestions\""));
  assert_int_equal(count_of(html, "<svg "), 0);
  free(html);
  cJSON_Delete(root);

  /* wrong types everywhere must not crash */
  root = cJSON_Parse(
      "{\"profile\":{\"functions\":[1,\"x\",{\"name\":5}],\"call_tree\":[{}]},"
      "\"resources\":{\"series\":[{\"name\":\"cpu_utilization_ratio\","
      "\"t_seconds\":[3,2,1],\"last\":[0.1]},{\"name\":\"x\"},7],"
      "\"events\":[{\"metric\":\"cpu\"}],\"phases\":[{\"start_seconds\":5}]},"
      "\"cache\":{\"caches\":[{}]},\"memory\":{\"cleanups\":[{}]}}");
  assert_non_null(root);
  html = po__html_render_json(root, &len);
  assert_non_null(html);
  free(html);
  cJSON_Delete(root);

  /* values at the edge of double: no overflow, no "nan" in coordinates */
  root = cJSON_Parse(
      "{\"profile\":{\"call_tree\":[{\"id\":1e300,\"parent\":-1e300,"
      "\"calls\":1e300,\"total_seconds\":1e308},{\"id\":2,\"parent\":1,"
      "\"total_seconds\":-5}]},\"gpu\":{\"devices\":[{\"index\":1e99}]},"
      "\"resources\":{\"series\":[{\"name\":\"gpu0_memory_used_bytes\","
      "\"t_seconds\":[-1e308,1e308],\"last\":[1e308,-1e308]}],"
      "\"thresholds\":[{\"metric\":\"gpu_memory\",\"device\":1e300,"
      "\"value\":1e300}]},\"run\":{\"start_unix_seconds\":1e300}}");
  assert_non_null(root);
  html = po__html_render_json(root, &len);
  assert_non_null(html);
  assert_null(strstr(html, "nan"));
  *strstr(html, "<script>") = '\0';
  char why[128] = "";
  if (!xml_well_formed(strstr(html, "<body>") + 6, why, sizeof(why)))
    fail_msg("HTML body not well-formed: %s", why);
  free(html);
  cJSON_Delete(root);
}

static void test_html_report_save_through_the_model(void **state) {
  (void)state;
  cJSON *root = fixture_report(3600, 5, 2, 500);
  assert_non_null(root);
  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  char json[512], html[600];
  snprintf(json, sizeof(json), "%s/chart-report.json", support_tmpdir());
  snprintf(html, sizeof(html), "%s/chart-report.html", support_tmpdir());
  FILE *f = fopen(json, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(text);
  po_report *rep = NULL;
  char err[256] = "";
  assert_int_equal(po_report_load(json, &rep, err, sizeof(err)), 0);
  assert_int_equal(po_report_save_html(rep, html, err, sizeof(err)), 0);
  struct stat st;
  assert_int_equal(stat(html, &st), 0);
  assert_true(st.st_size > 10000);
  assert_int_not_equal(po_report_save_html(rep, "/nonexistent-dir/r.html", err, sizeof(err)), 0);
  assert_non_null(strstr(err, "/nonexistent-dir/r.html"));
  po_report_destroy(rep);
}

static void test_html_thresholds_follow_their_gpu(void **state) {
  (void)state;
  cJSON *root = cJSON_Parse(
      "{\"perfopt_version\":\"0.1.0\",\"memory\":{\"limit_bytes\":-1},"
      "\"gpu\":{\"available\":true,\"devices\":["
      "{\"index\":0,\"name\":\"A\",\"memory_total_bytes\":85899345920},"
      "{\"index\":1,\"name\":\"B\",\"memory_total_bytes\":42949672960}]},"
      "\"resources\":{\"series\":["
      "{\"name\":\"gpu0_memory_used_bytes\",\"unit\":\"bytes\",\"t_seconds\":[0,1,2],"
      "\"last\":[1e9,2e9,3e9]},"
      "{\"name\":\"gpu1_memory_used_bytes\",\"unit\":\"bytes\",\"t_seconds\":[0,1,2],"
      "\"last\":[1e9,2e9,3e9]},"
      "{\"name\":\"process_rss_bytes\",\"unit\":\"bytes\",\"t_seconds\":[0,1,2],"
      "\"last\":[1e9,2e9,3e9]}],"
      "\"thresholds\":[{\"metric\":\"gpu_memory\",\"device\":0,\"value\":0.5,"
      "\"source\":\"config\"},{\"metric\":\"gpu_memory\",\"device\":1,\"value\":0.25,"
      "\"source\":\"config\"},{\"metric\":\"memory\",\"value\":0.9,\"source\":\"config\"}],"
      "\"events\":[{\"t_seconds\":1,\"metric\":\"gpu_memory\",\"device\":1,\"value\":0.3,"
      "\"threshold\":0.25,\"actions\":[\"log\"]}]}}");
  assert_non_null(root);
  char *html = po__html_render_json(root, NULL);
  assert_non_null(html);
  /* GPU 0: half of 80 GiB; GPU 1: a quarter of 40 GiB; no memory line (the limit is unknown) */
  const char *g0 = strstr(html, "GPU 0 memory"), *g1 = strstr(html, "GPU 1 memory");
  assert_non_null(g0);
  assert_non_null(g1);
  assert_int_equal(count_of(html, "(40 GiB)</title>"), 1);
  assert_int_equal(count_of(html, "(10 GiB)</title>"), 1);
  assert_true(strstr(html, "(40 GiB)</title>") < g1);
  assert_true(strstr(html, "(10 GiB)</title>") > g1);
  assert_int_equal(count_of(html, "threshold fired at"), 1);
  assert_true(strstr(html, "threshold fired at") > g1);
  assert_non_null(strstr(html, "gpu_memory = 30% (threshold 25%)"));
  free(html);
  cJSON_Delete(root);
}

static void test_save_html_report_of_the_default_optimizer(void **state) {
  (void)state;
  setenv("PERFOPT_BACKGROUND_MONITORING", "false", 1);
  char path[512];
  snprintf(path, sizeof(path), "%s/default-report.html", support_tmpdir());
  assert_int_equal(po_optimizer_save_html(NULL, path), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(st.st_size > 1000);
}

static void *render_charts(void *arg) {
  int seed = *(int *)arg;
  for (int round = 0; round < 5; round++) {
    po_chart *f = po_chart_create(PO_CHART_FLAME, "flame");
    for (int i = 0; i < 300; i++)
      po_chart_add_frame(f, i, i ? (i - 1) / 3 : -1, "frame", 1, 1000.0 / (i + 1 + seed), 0.1);
    char *svg = po_chart_svg_string(f, 1, NULL);
    if (!svg) return (void *)1;
    free(svg);
    po_chart_destroy(f);
    po_chart *c = po_chart_create(PO_CHART_LINES, "lines");
    double y[2000];
    for (int i = 0; i < 2000; i++) y[i] = sin(i / (10.0 + seed));
    po_chart_add_series(c, "s", PO_UNIT_NONE, NULL, y, 2000);
    po_chart_optimize(c, 300);
    svg = po_chart_svg_string(c, 0, NULL);
    if (!svg) return (void *)1;
    free(svg);
    po_chart_destroy(c);
  }
  return NULL;
}

/* A one-series report section: n samples of `name` with value f(i). */
static cJSON *series_json(const char *name, const char *unit, size_t n, double base, double step) {
  cJSON *s = cJSON_CreateObject();
  cJSON_AddStringToObject(s, "name", name);
  cJSON_AddStringToObject(s, "unit", unit);
  cJSON *t = cJSON_AddArrayToObject(s, "t_seconds"), *l = cJSON_AddArrayToObject(s, "last");
  for (size_t i = 0; i < n; i++) {
    cJSON_AddItemToArray(t, cJSON_CreateNumber((double)i));
    cJSON_AddItemToArray(l, cJSON_CreateNumber(base + step * (double)(i % 4)));
  }
  return s;
}

/* The text of the section with that id (up to its end), copied; NULL when absent. */
static char *section_of(const char *html, const char *id) {
  char open[64];
  snprintf(open, sizeof open, "<section id=\"%s\">", id);
  const char *a = strstr(html, open);
  if (!a) return NULL;
  const char *e = strstr(a, "</section>");
  return strndup(a, (size_t)(e - a));
}

static void test_html_cpu_is_drawn_in_cores(void **state) {
  (void)state;
  /* a single-threaded job on 2 cores: the process at 1 core, the machine at 50% */
  cJSON *root = cJSON_Parse("{\"perfopt_version\":\"0.1.0\",\"host\":{\"cores_online\":2},"
                            "\"resources\":{\"series\":[]}}");
  cJSON *ser = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "resources"), "series");
  cJSON_AddItemToArray(ser, series_json("cpu_utilization_ratio", "ratio", 60, 0.5, 0));
  cJSON_AddItemToArray(ser, series_json("process_cpu_ratio", "ratio", 60, 1.0, 0));
  size_t len;
  char *html = po__html_render_json(root, &len);
  char *cpu = section_of(html, "cpu");
  assert_non_null(cpu);
  assert_non_null(strstr(cpu, "CPU: cores busy"));
  assert_non_null(strstr(cpu, "all 2 cores"));
  assert_null(strstr(cpu, "100%")); /* no percent axis for a share of one core */
  assert_int_equal(count_of(cpu, "<svg "), 1);
  free(cpu);
  free(html);
  /* without the core count: two charts, the process in cores on its own */
  cJSON_DeleteItemFromObject(root, "host");
  html = po__html_render_json(root, &len);
  cpu = section_of(html, "cpu");
  assert_int_equal(count_of(cpu, "<svg "), 2);
  assert_non_null(strstr(cpu, "CPU: this process (cores busy)"));
  free(cpu);
  free(html);
  cJSON_Delete(root);
}

static void test_html_small_process_memory_gets_its_own_scale(void **state) {
  (void)state;
  cJSON *root = cJSON_Parse("{\"perfopt_version\":\"0.1.0\",\"resources\":{\"series\":[]}}");
  cJSON *ser = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "resources"), "series");
  cJSON_AddItemToArray(ser, series_json("memory_used_bytes", "bytes", 60, 20e9, 1e8));
  cJSON_AddItemToArray(ser, series_json("process_rss_bytes", "bytes", 60, 30e6, 1e6));
  size_t len;
  char *html = po__html_render_json(root, &len);
  char *mem = section_of(html, "memory");
  assert_non_null(strstr(mem, "This process: RSS (peak marked)"));
  assert_non_null(strstr(mem, "System memory"));
  free(mem);
  free(html);
  /* a process that is most of the machine's use shares its chart (positive control) */
  cJSON_ReplaceItemInArray(ser, 1, series_json("process_rss_bytes", "bytes", 60, 15e9, 1e6));
  html = po__html_render_json(root, &len);
  mem = section_of(html, "memory");
  assert_null(strstr(mem, "This process: RSS"));
  assert_non_null(strstr(mem, "Memory over time (peak marked)"));
  free(mem);
  free(html);
  cJSON_Delete(root);
}

static void test_html_tables_use_labels_and_say_none(void **state) {
  (void)state;
  cJSON *root = cJSON_Parse(
      "{\"perfopt_version\":\"0.1.0\",\"host\":{\"cores_online\":2,\"cgroup_memory_max_bytes\":0,"
      "\"cgroup_cpu_limit\":0,\"memory_total_bytes\":25276026880},"
      "\"run\":{\"pid\":7,\"start_unix_seconds\":1600000000},"
      "\"memory\":{\"available_bytes\":-1}}");
  size_t len;
  char *html = po__html_render_json(root, &len);
  char *sum = section_of(html, "summary");
  assert_non_null(strstr(sum, ">cgroup memory limit</th><td>none<"));
  assert_non_null(strstr(sum, ">cgroup CPU limit (cores)</th><td>none<"));
  assert_non_null(strstr(sum, ">memory</th><td>23.5 GiB<"));
  assert_non_null(strstr(sum, ">started</th><td>2020-09-13 12:26:40 UTC<"));
  assert_non_null(strstr(sum, ">available under the limit</th><td>not measured<"));
  assert_null(strstr(sum, ">cgroup_memory_max_bytes<")); /* the key is only the tooltip */
  assert_null(strstr(sum, "0 B"));
  free(sum);
  free(html);
  cJSON_Delete(root);
}

static void test_date_ticks_fall_on_calendar_boundaries(void **state) {
  (void)state;
  po_ticks t;
  double ref;
  char buf[64];
  /* 2014-09-17 .. 2024-01-01: whole years */
  assert_int_equal(po__axis_ticks(1410912000, 1704067200, 6, PO_UNIT_DATE, &t, &ref), 0);
  assert_true(t.count >= 3 && t.count <= 12);
  for (size_t i = 0; i < t.count; i++) {
    po__format_tick(t.values[i], PO_UNIT_DATE, ref, t.step, buf, sizeof buf);
    assert_int_equal(strlen(buf), 4); /* "2016" */
    assert_int_equal(fmod(t.values[i] - 1451606400, 86400), 0); /* midnight */
  }
  /* ten days: whole days */
  assert_int_equal(po__axis_ticks(1600000000, 1600864000, 6, PO_UNIT_DATE, &t, &ref), 0);
  po__format_tick(t.values[1], PO_UNIT_DATE, ref, t.step, buf, sizeof buf);
  assert_int_equal(strlen(buf), 10); /* "2020-09-14" */
  /* six hours: hours and minutes */
  assert_int_equal(po__axis_ticks(1600000000, 1600021600, 6, PO_UNIT_DATE, &t, &ref), 0);
  po__format_tick(t.values[1], PO_UNIT_DATE, ref, t.step, buf, sizeof buf);
  assert_non_null(strchr(buf, ':'));
  assert_int_equal(fmod(t.values[1], 3600), 0);
  po_format_value(1600000000, PO_UNIT_DATE, buf, sizeof buf);
  assert_string_equal(buf, "2020-09-13 12:26:40 UTC");
}

static void test_charts_on_several_threads(void **state) {
  (void)state;
  pthread_t th[4];
  int seeds[4] = {0, 1, 2, 3};
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, render_charts, &seeds[i]), 0);
  for (int i = 0; i < 4; i++) assert_null(support_join(th[i], SUPPORT_WAIT_SECONDS));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ticks_unit_interval),
      cmocka_unit_test(test_html_cpu_is_drawn_in_cores),
      cmocka_unit_test(test_html_small_process_memory_gets_its_own_scale),
      cmocka_unit_test(test_html_tables_use_labels_and_say_none),
      cmocka_unit_test(test_date_ticks_fall_on_calendar_boundaries),
      cmocka_unit_test(test_ticks_zero_to_97),
      cmocka_unit_test(test_ticks_tiny_and_huge_ranges),
      cmocka_unit_test(test_ticks_negative_range),
      cmocka_unit_test(test_ticks_constant_and_nonfinite),
      cmocka_unit_test(test_time_ticks_use_clock_steps),
      cmocka_unit_test(test_format_units),
      cmocka_unit_test(test_axis_labels_share_one_prefix),
      cmocka_unit_test(test_names_are_xml_escaped),
      cmocka_unit_test(test_overlap_helper_sees_overlaps),
      cmocka_unit_test(test_labels_never_overlap),
      cmocka_unit_test(test_legend_and_ticks_are_drawn),
      cmocka_unit_test(test_flame_geometry),
      cmocka_unit_test(test_flame_children_overfull_and_bad_links),
      cmocka_unit_test(test_flame_deep_tree_does_not_recurse),
      cmocka_unit_test(test_empty_and_nan_series_do_not_crash),
      cmocka_unit_test(test_bad_arguments_are_errors),
      cmocka_unit_test(test_optimize_reduces_to_width_and_keeps_extremes),
      cmocka_unit_test(test_stacked_areas_share_reduced_x),
      cmocka_unit_test(test_reduction_off_keeps_every_point),
      cmocka_unit_test(test_line_points_sit_at_column_centres),
      cmocka_unit_test(test_html_report_24h_under_2mb),
      cmocka_unit_test(test_html_report_empty_sections_say_so),
      cmocka_unit_test(test_html_report_save_through_the_model),
      cmocka_unit_test(test_html_thresholds_follow_their_gpu),
      cmocka_unit_test(test_save_html_report_of_the_default_optimizer),
      cmocka_unit_test(test_charts_on_several_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
