/* The memory autopilot's state machine (see autopilot.h). */
#include "monitor/autopilot.h"

#include <math.h>

void po__autopilot_init(po__autopilot_state *st) {
  *st = (po__autopilot_state){PO_GRADE_NONE, 0, 0, 0, 0, 0, -INFINITY, 0};
}

po_cleanup_level po__grade_level(po_grade g) {
  return g >= PO_GRADE_AGGRESSIVE ? PO_CLEANUP_AGGRESSIVE : PO_CLEANUP_NORMAL;
}

static po_grade max_grade(po_grade a, po_grade b) {
  return a > b ? a : b;
}

static po_grade forecast_grade(double ttl, double horizon) {
  if (!(ttl >= 0) || !(ttl < horizon)) return PO_GRADE_NONE;
  if (ttl < horizon / 8) return PO_GRADE_EMERGENCY;
  if (ttl < horizon / 4) return PO_GRADE_AGGRESSIVE;
  if (ttl < horizon / 2) return PO_GRADE_NORMAL;
  return PO_GRADE_WARN;
}

po_grade po__autopilot_wanted(const po__autopilot_params *p, const po__autopilot_input *in,
                              unsigned *trigger) {
  po_grade g = PO_GRADE_NONE;
  unsigned t = 0;
  if (in->threshold > 0 && in->ratio >= in->threshold) {
    /* aggressive from halfway between the threshold and 1, as a threshold firing always was */
    int far = in->ratio >= in->threshold + (1 - in->threshold) / 2;
    g = far ? PO_GRADE_AGGRESSIVE : PO_GRADE_NORMAL;
    t |= PO__TRIGGER_LEVEL;
  }
  po_grade f = forecast_grade(in->time_to_limit, p->horizon_seconds);
  if (f != PO_GRADE_NONE) {
    g = max_grade(g, f);
    t |= PO__TRIGGER_FORECAST;
  }
  if (in->pressure_full >= PO__AUTOPILOT_PSI_FULL) {
    g = max_grade(g, PO_GRADE_NORMAL);
    t |= PO__TRIGGER_PRESSURE;
  }
  *trigger = t;
  return g;
}

/* Back below every trigger by the hysteresis margin: the episode may end. */
static int clear_of_danger(const po__autopilot_params *p, const po__autopilot_input *in) {
  int level_clear = !(in->threshold > 0) || isnan(in->ratio) ||
                    in->ratio < in->threshold - p->hysteresis;
  int forecast_clear =
      !(in->time_to_limit >= 0) || in->time_to_limit >= p->horizon_seconds * (1 + p->hysteresis);
  int pressure_clear = !(in->pressure_full >= PO__AUTOPILOT_PSI_FULL);
  return level_clear && forecast_clear && pressure_clear;
}

/* A failed check escalates at once, except to the emergency (a checkpoint, a flight record):
 * that needs the limit within half the horizon, or memory pressure. A job loading data that
 * will level off well before its limit is not checkpointed a minute ahead. */
static int may_escalate(const po__autopilot_params *p, const po__autopilot_input *in, po_grade next) {
  if (next < PO_GRADE_EMERGENCY) return 1;
  return (in->time_to_limit >= 0 && in->time_to_limit < p->horizon_seconds / 2) ||
         in->pressure_full >= PO__AUTOPILOT_PSI_FULL;
}

static void act(po__autopilot_state *st, po_grade g, int repeat, const po__autopilot_input *in,
                po__autopilot_decision *d) {
  d->act = g;
  d->repeat = repeat;
  if (g == PO_GRADE_EMERGENCY && !st->emergency_done) {
    d->first_emergency = 1;
    st->emergency_done = 1;
  }
  st->grade = g;
  st->awaiting_check = 1;
  st->samples_since = 0;
  st->last_action_t = in->t_seconds;
}

void po__autopilot_step(po__autopilot_state *st, const po__autopilot_params *p,
                        const po__autopilot_input *in, po__autopilot_decision *d) {
  *d = (po__autopilot_decision){0};
  unsigned trig;
  po_grade wanted = po__autopilot_wanted(p, in, &trig);
  d->trigger = trig;
  st->samples_since++;
  int escalating_danger = (trig & (PO__TRIGGER_FORECAST | PO__TRIGGER_PRESSURE)) != 0;

  if (st->grade == PO_GRADE_NONE) { /* armed */
    if (wanted == PO_GRADE_NONE) return;
    int cooling = in->t_seconds - st->last_action_t < p->cooldown_seconds;
    if (cooling && wanted <= PO_GRADE_NORMAL) return; /* held, as a threshold in cool-down */
    st->episodes++;
    st->emergency_done = 0;
    st->last_helped = 0;
    st->held = 0;
    act(st, wanted, 0, in, d);
    return;
  }

  if (st->awaiting_check && st->samples_since >= PO__AUTOPILOT_SETTLE) {
    st->awaiting_check = 0;
    d->checked = 1;
    d->moved_out = !(trig & PO__TRIGGER_FORECAST);
    d->helped = !escalating_danger;
    st->last_helped = d->helped;
    st->held = !d->helped && st->grade < PO_GRADE_EMERGENCY;
  }
  if (st->held && may_escalate(p, in, (po_grade)(st->grade + 1))) {
    st->held = 0;
    act(st, max_grade((po_grade)(st->grade + 1), wanted), 0, in, d);
    return;
  }
  if (clear_of_danger(p, in)) {
    if (!st->awaiting_check) {
      st->grade = PO_GRADE_NONE;
      st->held = 0;
      d->rearmed = 1;
    }
    return;
  }
  if (wanted > st->grade) { /* worse than what was done: no waiting */
    st->held = 0;
    act(st, wanted, 0, in, d);
    return;
  }
  /* The danger came back after a helpful action, or the next grade is held back, or nothing is
   * left to escalate to: the same grade again once the cool-down has passed. */
  if (!st->awaiting_check && escalating_danger &&
      (st->last_helped || st->held || st->grade == PO_GRADE_EMERGENCY) &&
      in->t_seconds - st->last_action_t >= p->cooldown_seconds)
    act(st, st->grade, 1, in, d);
}
