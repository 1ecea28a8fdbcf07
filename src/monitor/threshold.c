/* Threshold state machine with hysteresis and cool-down. Pure: the caller passes the clock. */
#include "monitor/threshold.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

int po__threshold_step(po__threshold_state *st, double value, double threshold, double hysteresis,
                       uint64_t now_ns, uint64_t cooldown_ns) {
  if (!st || isnan(value) || !(threshold > 0)) return 0;
  if (hysteresis < 0 || isnan(hysteresis)) hysteresis = 0;
  if (!st->above) {
    if (value < threshold) return 0;
    st->above = 1;
    st->pending = 1;
    st->crossings++;
  } else if (value < threshold - hysteresis) {
    /* Re-armed. A crossing still held by the cool-down ends without firing. */
    if (st->pending) st->suppressed++;
    st->above = 0;
    st->pending = 0;
    return 0;
  }
  if (!st->pending) return 0;
  if (st->fired_once && now_ns - st->last_fire_ns < cooldown_ns) return 0;
  st->pending = 0;
  st->fired_once = 1;
  st->last_fire_ns = now_ns;
  return 1;
}

po_cleanup_level po__threshold_level(double value, double threshold) {
  return value >= threshold + (1.0 - threshold) / 2 ? PO_CLEANUP_AGGRESSIVE : PO_CLEANUP_NORMAL;
}

void po__actions_add(po__actions *a, const char *fmt, ...) {
  if (!a) return;
  if (a->n >= PO__ACTIONS_MAX) {
    a->dropped++;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->item[a->n], PO__ACTION_LEN, fmt, ap);
  va_end(ap);
  a->n++;
}
