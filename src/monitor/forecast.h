/* The memory forecast: when will usage reach its limit? A pure function of recent samples (no
 * clock, no threads, no allocation), called by the sampler on every tick for host memory and
 * for each GPU. Not installed.
 *
 * Method. The window (the last `window_s` seconds) is cut into at most PO__FORECAST_BUCKETS
 * buckets of equal time, each represented by its highest sample: what kills a job is the peak
 * of its saw-tooth, not its mean. The trend is the Theil–Sen slope of those bucket peaks (the
 * median of the slopes between every pair), which a saw-tooth, noise or a few outliers move
 * little. The level now is the highest recent sample projected to now along that slope (recent:
 * the last quarter of the window, and not before `level_since`, which lets a caller discard what
 * a cleanup just freed). The time to limit is (limit - level) / slope when usage is rising:
 * the slope is positive and at least PO__FORECAST_RISING of the pair slopes agree; otherwise
 * there is none (flat, falling, or not enough samples).
 *
 * Cost: at most 16 buckets, so at most 120 slopes and one selection (and 28 more for the recent
 * half when the whole window rises); measured in bench/bench_autopilot.c
 * (autopilot_tick_overhead_us). 16, 20 and 24 buckets forecast equally well there; 16 costs half
 * of 24.
 */
#ifndef PO__FORECAST_H
#define PO__FORECAST_H

#include <stddef.h>

#define PO__FORECAST_BUCKETS 16
#define PO__FORECAST_MIN_POINTS 8 /* samples in the window before any forecast */
#define PO__FORECAST_RISING 0.65  /* share of pair slopes > 0 for "rising" */

typedef enum {
  PO__TREND_UNKNOWN = 0, /* too few samples in the window */
  PO__TREND_FLAT = 1,
  PO__TREND_FALLING = 2,
  PO__TREND_RISING = 3
} po__trend;

/* A ring of samples as columns: element i (0 = oldest) is t[(first + i) % cap]; times ascend.
 * A value that is NaN is skipped. */
typedef struct po__ring_view {
  const double *t;
  const double *y;
  size_t cap, first, n;
} po__ring_view;

typedef struct po__forecast {
  po__trend trend;
  double slope_per_second;      /* Theil–Sen slope of the bucket peaks; 0 when unknown */
  double level;                 /* the recent peak, projected to now; NaN when unknown */
  double limit;                 /* as given */
  double time_to_limit_seconds; /* -1: none (flat, falling, unknown); 0: at or over the limit */
  double agreement;             /* share of pair slopes with the sign of the slope, 0..1 */
  double window_seconds;        /* time the samples used span */
  size_t points;                /* samples in the window */
} po__forecast;

/* Forecasts from the samples of v within window_s of the newest one, against limit (> 0; else
 * no time to limit). level_since: samples older than this time do not set the level (pass
 * -INFINITY or 0 to use the whole recent quarter). Always fills *out. */
void po__forecast_compute(const po__ring_view *v, double window_s, double limit,
                          double level_since, po__forecast *out);

/* "unknown", "flat", "falling", "rising". */
const char *po__trend_name(po__trend t);

/* The k-th smallest of a[0..n) (0-based), reordering a; n > 0, k < n. Exposed for tests. */
double po__select_kth(double *a, size_t n, size_t k);

#endif
