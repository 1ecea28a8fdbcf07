/* The autopilot's state machine, fed sample by sample: the grade ladder on the forecast, checks
 * that stop the ladder, the level that never escalates alone, severity jumps, pressure,
 * hysteresis and cool-down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "monitor/autopilot.h"

static const po__autopilot_params P = {60, 0.05, 5};

static po__autopilot_input in_at(double t, double ratio, double ttl) {
  return (po__autopilot_input){t, ratio, 0.85, ttl, NAN};
}

/* Runs samples t = t0, t0+1, ... with the given ratio and ttl; returns the decision of the last
 * one and counts the actions of each grade. */
static po__autopilot_decision feed(po__autopilot_state *st, double t0, int n, double ratio,
                                   double ttl, int *acts) {
  po__autopilot_decision d = {0};
  for (int i = 0; i < n; i++) {
    po__autopilot_input in = in_at(t0 + i, ratio, ttl);
    po__autopilot_step(st, &P, &in, &d);
    if (d.act != PO_GRADE_NONE && acts) acts[d.act]++;
  }
  return d;
}

static void test_forecast_climbs_the_ladder_when_nothing_helps(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  po_grade seen[16];
  int n = 0, first_emergency = 0, checks = 0;
  for (int i = 0; i < 13; i++) {
    po__autopilot_input in = in_at(i, 0.5, 50 - 0.1 * i); /* stays within the horizon */
    po__autopilot_decision d;
    po__autopilot_step(&st, &P, &in, &d);
    if (d.act) seen[n++] = d.act;
    first_emergency += d.first_emergency;
    if (d.checked) {
      checks++;
      assert_false(d.helped);
      assert_false(d.moved_out);
    }
    assert_true(d.trigger & PO__TRIGGER_FORECAST);
  }
  assert_int_equal(n, 4);
  assert_int_equal(seen[0], PO_GRADE_WARN);
  assert_int_equal(seen[1], PO_GRADE_NORMAL);
  assert_int_equal(seen[2], PO_GRADE_AGGRESSIVE);
  assert_int_equal(seen[3], PO_GRADE_EMERGENCY);
  assert_int_equal(first_emergency, 1);
  assert_int_equal(checks, 4);
  /* At the top, the grade repeats only after the cool-down, and the emergency runs once. */
  int acts[5] = {0};
  po__autopilot_decision d = feed(&st, 13, 20, 0.5, 40, acts);
  assert_int_equal(acts[PO_GRADE_EMERGENCY], 4); /* t = 14, 19, 24, 29 (every 5 s) */
  assert_false(d.first_emergency);
  assert_int_equal(st.episodes, 1);
}

static void test_an_action_that_moves_the_forecast_out_stops_the_ladder(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  po__autopilot_decision d = feed(&st, 0, 1, 0.5, 50, NULL);
  assert_int_equal(d.act, PO_GRADE_WARN);
  d = feed(&st, 1, 3, 0.5, 50, NULL);
  assert_int_equal(d.act, PO_GRADE_NORMAL); /* warn did not help */
  /* the cleanup freed enough: no time to limit any more */
  int acts[5] = {0};
  d = feed(&st, 4, 3, 0.5, -1, acts);
  assert_true(d.checked && d.helped && d.moved_out);
  assert_int_equal(acts[PO_GRADE_AGGRESSIVE] + acts[PO_GRADE_EMERGENCY], 0);
  d = feed(&st, 7, 1, 0.5, -1, NULL);
  assert_true(d.rearmed || st.grade == PO_GRADE_NONE);
  assert_int_equal(st.grade, PO_GRADE_NONE);
}

/* A job that sits above its threshold without growing gets one cleanup, not an emergency.
 * Positive control: the same level with a forecast inside the horizon does escalate. */
static void test_the_level_alone_never_escalates(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  int acts[5] = {0};
  feed(&st, 0, 100, 0.90, -1, acts);
  assert_int_equal(acts[PO_GRADE_NORMAL], 1);
  assert_int_equal(acts[PO_GRADE_AGGRESSIVE] + acts[PO_GRADE_EMERGENCY], 0);
  po__autopilot_init(&st);
  int acts2[5] = {0};
  feed(&st, 0, 100, 0.90, 40, acts2);
  assert_true(acts2[PO_GRADE_EMERGENCY] >= 1);
  /* far over the threshold starts aggressive, as the thresholds always did */
  po__autopilot_init(&st);
  po__autopilot_decision d = feed(&st, 0, 1, 0.95, -1, NULL);
  assert_int_equal(d.act, PO_GRADE_AGGRESSIVE);
  assert_int_equal(d.trigger, PO__TRIGGER_LEVEL);
}

static void test_a_short_time_to_limit_acts_at_once(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  po__autopilot_decision d = feed(&st, 0, 1, 0.5, 5, NULL);
  assert_int_equal(d.act, PO_GRADE_EMERGENCY);
  assert_true(d.first_emergency);
  /* from warn, a sudden worsening does not wait for the check */
  po__autopilot_init(&st);
  d = feed(&st, 0, 1, 0.5, 50, NULL);
  assert_int_equal(d.act, PO_GRADE_WARN);
  d = feed(&st, 1, 1, 0.5, 12, NULL);
  assert_int_equal(d.act, PO_GRADE_AGGRESSIVE);
}

static void test_memory_pressure_is_a_danger(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  po__autopilot_input in = {0, 0.5, 0.85, -1, 0.25};
  po__autopilot_decision d;
  po__autopilot_step(&st, &P, &in, &d);
  assert_int_equal(d.act, PO_GRADE_NORMAL);
  assert_int_equal(d.trigger, PO__TRIGGER_PRESSURE);
  for (int i = 1; i <= 3; i++) {
    in.t_seconds = i;
    po__autopilot_step(&st, &P, &in, &d);
  }
  assert_true(d.checked && !d.helped);
  assert_true(d.moved_out); /* there was no forecast danger; pressure stayed */
  assert_int_equal(d.act, PO_GRADE_AGGRESSIVE);
  /* positive control: unknown pressure is no danger */
  po__autopilot_init(&st);
  in = (po__autopilot_input){0, 0.5, 0.85, -1, NAN};
  po__autopilot_step(&st, &P, &in, &d);
  assert_int_equal(d.act, PO_GRADE_NONE);
}

static void test_rearming_needs_the_hysteresis_margin(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  feed(&st, 0, 5, 0.90, -1, NULL);
  assert_int_equal(st.grade, PO_GRADE_NORMAL);
  feed(&st, 5, 5, 0.82, -1, NULL); /* below 0.85 but not below 0.80 */
  assert_int_equal(st.grade, PO_GRADE_NORMAL);
  po__autopilot_decision d = feed(&st, 10, 1, 0.79, -1, NULL);
  assert_true(d.rearmed);
  assert_int_equal(st.grade, PO_GRADE_NONE);
  /* a forecast just past the horizon is not clear either: horizon * (1 + hysteresis) = 63 */
  po__autopilot_init(&st);
  feed(&st, 0, 5, 0.5, 50, NULL);
  feed(&st, 5, 3, 0.5, 61, NULL);
  assert_int_not_equal(st.grade, PO_GRADE_NONE);
  feed(&st, 8, 1, 0.5, 64, NULL);
  assert_int_equal(st.grade, PO_GRADE_NONE);
}

static void test_a_new_episode_within_the_cooldown_waits_unless_worse(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  feed(&st, 0, 4, 0.90, -1, NULL); /* acts at t = 0 */
  feed(&st, 4, 1, 0.70, -1, NULL); /* re-armed at t = 4 */
  assert_int_equal(st.grade, PO_GRADE_NONE);
  po__autopilot_decision d = feed(&st, 4.5, 1, 0.90, -1, NULL);
  assert_int_equal(d.act, PO_GRADE_NONE); /* held: 4.5 s after the last action */
  d = feed(&st, 5, 1, 0.90, -1, NULL);
  assert_int_equal(d.act, PO_GRADE_NORMAL); /* the cool-down is over */
  assert_int_equal(st.episodes, 2);
  feed(&st, 6, 3, 0.70, -1, NULL); /* re-armed at t = 8 */
  assert_int_equal(st.grade, PO_GRADE_NONE);
  d = feed(&st, 9, 1, 0.5, 3, NULL); /* 4 s after the last action, but worse: not held */
  assert_int_equal(d.act, PO_GRADE_EMERGENCY);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forecast_climbs_the_ladder_when_nothing_helps),
      cmocka_unit_test(test_an_action_that_moves_the_forecast_out_stops_the_ladder),
      cmocka_unit_test(test_the_level_alone_never_escalates),
      cmocka_unit_test(test_a_short_time_to_limit_acts_at_once),
      cmocka_unit_test(test_memory_pressure_is_a_danger),
      cmocka_unit_test(test_rearming_needs_the_hysteresis_margin),
      cmocka_unit_test(test_a_new_episode_within_the_cooldown_waits_unless_worse),
  };
  return cmocka_run_group_tests_name("autopilot", tests, NULL, NULL);
}
