/* The memory autopilot: graded actions decided from the level, the forecast and memory pressure,
 * each checked a few samples later and escalated when it did not move the limit out of the
 * horizon. A pure state machine (no clock, no threads): the sampler feeds it one input per
 * sample for host memory and for each GPU, runs what it decides through the owner's firing
 * callback, and records the outcome. Not installed.
 *
 * Grades: warn (listeners are told; nothing is freed) -> normal cleanup -> aggressive cleanup
 * (every handler, attached caches shrink harder) -> emergency (aggressive cleanup, the flight
 * record, the user's checkpoint handlers; once per episode).
 *
 * What a sample asks for (the wanted grade):
 *   level    used / limit >= threshold: normal, aggressive past halfway to 1 (as the thresholds
 *            always did);
 *   forecast time to limit < horizon: warn; < horizon/2 normal; < horizon/4 aggressive;
 *            < horizon/8 emergency;
 *   pressure PSI full avg10 >= PO__AUTOPILOT_PSI_FULL: normal (the kernel already stalls).
 * An episode starts at the wanted grade. An action is checked once PO__AUTOPILOT_SETTLE samples
 * have followed it: it helped when no forecast or pressure danger remains. When it did not and
 * such a danger remains, the next grade acts at once (so warn lasts a few samples), except the
 * emergency, which a failed check reaches only when the limit is within half the horizon (or
 * under pressure): until then the grade is held and repeated. A worse wanted grade acts at once
 * at any time; a forecast or pressure danger that comes back after a helpful action, persists
 * while the next grade is held, or persists at the emergency grade, repeats the grade once the
 * cool-down has passed (the emergency's checkpoint and flight record run once per episode). The level alone never escalates (a job that
 * sits steadily above its threshold is not dying). The episode ends, re-arming, when the level is
 * below threshold - hysteresis, the time to limit is none or beyond horizon * (1 + hysteresis),
 * and pressure is gone; a new episode within the cool-down of the last action waits unless it
 * asks for a worse grade.
 */
#ifndef PO__AUTOPILOT_H
#define PO__AUTOPILOT_H

#include "base/base.h"

#define PO__AUTOPILOT_SETTLE 3        /* samples between an action and its check */
#define PO__AUTOPILOT_PSI_FULL 0.10   /* memory PSI full avg10 (ratio) that counts as danger */

enum { /* why an action was taken (bits) */
       PO__TRIGGER_LEVEL = 1,
       PO__TRIGGER_FORECAST = 2,
       PO__TRIGGER_PRESSURE = 4
};

typedef struct po__autopilot_params {
  double horizon_seconds;
  double hysteresis;       /* ratio, as THRESHOLD_HYSTERESIS */
  double cooldown_seconds; /* as THRESHOLD_COOLDOWN_MS */
} po__autopilot_params;

typedef struct po__autopilot_input {
  double t_seconds;
  double ratio;          /* used / limit; NaN unknown */
  double threshold;      /* level threshold in force (<= 0: none) */
  double time_to_limit;  /* forecast; < 0 none */
  double pressure_full;  /* PSI full avg10 as a ratio; NaN or < 0 unknown */
} po__autopilot_input;

typedef struct po__autopilot_state {
  po_grade grade;         /* the grade acted at in this episode; NONE: armed */
  int awaiting_check;     /* the last action is not checked yet */
  int last_helped;        /* the last checked action helped */
  int held;               /* its check failed, but the next grade is held back (see below) */
  int emergency_done;     /* the emergency actions ran in this episode */
  unsigned samples_since; /* samples since the last action */
  double last_action_t;   /* seconds; -inf before any */
  uint64_t episodes;
} po__autopilot_state;

typedef struct po__autopilot_decision {
  po_grade act;       /* grade to run now; PO_GRADE_NONE: nothing */
  unsigned trigger;   /* PO__TRIGGER_* bits of the danger in force */
  int repeat;         /* the same grade again (after a helpful action) */
  int first_emergency; /* act is EMERGENCY for the first time in the episode */
  int checked;        /* the previous action was checked at this sample */
  int helped;         /* ... and no forecast or pressure danger remained */
  int moved_out;      /* ... and the time to limit was none or beyond the horizon */
  int rearmed;        /* the episode ended at this sample */
} po__autopilot_decision;

/* Initializes an armed state. */
void po__autopilot_init(po__autopilot_state *st);
/* Feeds one sample; fills *d. */
void po__autopilot_step(po__autopilot_state *st, const po__autopilot_params *p,
                        const po__autopilot_input *in, po__autopilot_decision *d);
/* The grade a sample asks for by itself, and its trigger bits. */
po_grade po__autopilot_wanted(const po__autopilot_params *p, const po__autopilot_input *in,
                              unsigned *trigger);
/* The cleanup level a grade runs (warn and none: normal, but warn runs no handler). */
po_cleanup_level po__grade_level(po_grade g);

#endif
