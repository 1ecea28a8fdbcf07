/* Thresholds: a pure state machine with hysteresis and cool-down (no clock, no threads), the
 * cleanup level a firing asks for, and the record of what a firing did. Not installed. */
#ifndef PO__THRESHOLD_H
#define PO__THRESHOLD_H

#include "base/base.h"

/* One metric's state. Zero-initialized = armed (below the threshold, never fired). */
typedef struct po__threshold_state {
  int above;   /* a crossing was seen and the value has not yet fallen below
                * threshold - hysteresis (re-arming) */
  int pending; /* that crossing has not fired yet: held back by the cool-down */
  int fired_once;
  uint64_t last_fire_ns;
  uint64_t crossings;  /* crossings seen */
  uint64_t suppressed; /* crossings that ended inside the cool-down without firing */
} po__threshold_state;

/* Feeds one value; returns 1 when this value fires the threshold, else 0.
 * Fires once per crossing: the value must reach `threshold`, and the threshold re-arms only when
 * the value falls below threshold - hysteresis. A crossing within cooldown_ns of the previous
 * firing is held: it fires when the cool-down ends if the value is still above the re-arm level,
 * and is counted as suppressed if it falls back first. NaN values and threshold <= 0 (disabled)
 * never fire and leave the state unchanged. */
int po__threshold_step(po__threshold_state *st, double value, double threshold, double hysteresis,
                       uint64_t now_ns, uint64_t cooldown_ns);

/* The cleanup level a firing asks for: aggressive when the value is at least halfway between the
 * threshold and 1 (e.g. 0.9 for a 0.8 threshold). */
po_cleanup_level po__threshold_level(double value, double threshold);

/* What was done for one firing or cleanup pass (recorded in the report). */
#define PO__ACTIONS_MAX 8
#define PO__ACTION_LEN 48
typedef struct po__actions {
  int n;
  int dropped; /* actions beyond PO__ACTIONS_MAX, counted */
  char item[PO__ACTIONS_MAX][PO__ACTION_LEN];
} po__actions;
void po__actions_add(po__actions *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
