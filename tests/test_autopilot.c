/* The autopilot's state machine, fed sample by sample: the grade ladder on the forecast, checks
 * that stop the ladder, the level that never escalates alone, severity jumps, pressure,
 * hysteresis and cool-down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "monitor/autopilot.h"
#include "optimizer.h"
#include "report/report_build.h"
#include "report/report_metrics.h"
#include "support/support.h"

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
    po__autopilot_input in = in_at(i, 0.5, 50 - 2.5 * i); /* 50 s to the limit, and closing */
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
  feed(&st, 0, 100, 0.90, 20, acts2);
  assert_true(acts2[PO_GRADE_EMERGENCY] >= 1);
  /* far over the threshold starts aggressive, as the thresholds always did */
  po__autopilot_init(&st);
  po__autopilot_decision d = feed(&st, 0, 1, 0.95, -1, NULL);
  assert_int_equal(d.act, PO_GRADE_AGGRESSIVE);
  assert_int_equal(d.trigger, PO__TRIGGER_LEVEL);
}

/* A limit that stays most of a horizon away (a load that will level off): the ladder stops
 * below the emergency and repeats the aggressive cleanup; once the limit comes within half the
 * horizon, the emergency follows at once. */
static void test_the_emergency_waits_for_half_the_horizon(void **state) {
  (void)state;
  po__autopilot_state st;
  po__autopilot_init(&st);
  int acts[5] = {0};
  feed(&st, 0, 40, 0.5, 50, acts);
  assert_int_equal(acts[PO_GRADE_WARN], 1);
  assert_int_equal(acts[PO_GRADE_NORMAL], 1);
  assert_true(acts[PO_GRADE_AGGRESSIVE] >= 4); /* repeated every cool-down */
  assert_int_equal(acts[PO_GRADE_EMERGENCY], 0);
  po__autopilot_decision d = feed(&st, 40, 1, 0.5, 25, NULL);
  if (d.act != PO_GRADE_EMERGENCY) d = feed(&st, 41, 3, 0.5, 25, NULL); /* after its check */
  assert_int_equal(st.grade, PO_GRADE_EMERGENCY);
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

/* ---- through the optimizer: known samples pushed into its sampler ---------------------------- */

#define MB 1000000ll

static int checkpoints, cleanups;
static int64_t listener_frees; /* what the listener reports freeing at normal grade and above */
static int64_t dropped;        /* what the test's "process" has released since */
static po_grade last_grade_seen;

static void count_cleanup(po_cleanup_level level, void *user) {
  (void)level;
  (void)user;
  cleanups++;
}

static void count_checkpoint(const po_pressure_event *ev, void *user) {
  (void)user;
  assert_int_equal(ev->grade, PO_GRADE_EMERGENCY);
  checkpoints++;
}

static int64_t shrink_listener(const po_pressure_event *ev, void *user) {
  (void)user;
  last_grade_seen = ev->grade;
  if (ev->grade < PO_GRADE_NORMAL || !listener_frees) return 0;
  dropped += listener_frees;
  return listener_frees;
}

static po_optimizer *autopilot_opt(const char *flight) {
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.memory_threshold = 0.99;
  c.autopilot_horizon_seconds = 30;
  c.threshold_cooldown_ms = 2000;
  snprintf(c.nvml_library, sizeof c.nvml_library, "/nonexistent/libnvidia-ml.so.1");
  snprintf(c.flight_record_path, sizeof c.flight_record_path, "%s", flight);
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  checkpoints = cleanups = 0;
  dropped = 0;
  last_grade_seen = PO_GRADE_NONE;
  assert_int_equal(po_cleanup_register(opt, "count", PO_RESOURCE_DATA, 0, PO_CLEANUP_NORMAL,
                                       count_cleanup, NULL, NULL),
                   0);
  assert_int_equal(po_checkpoint_register(opt, "save", count_checkpoint, NULL, NULL), 0);
  assert_int_equal(po_monitor_add_pressure_listener(opt, "shrink", shrink_listener, NULL, NULL), 0);
  return opt;
}

/* A job leaking 10 MB/s towards a 1 GB limit, sampled each second from t = 0 to t_end. */
static void push_growth(po_optimizer *opt, int t0, int t_end) {
  for (int t = t0; t <= t_end; t++) {
    po_sample s;
    memset(&s, 0, sizeof s);
    s.t_seconds = t;
    s.cpu_utilization_ratio = s.process_cpu_ratio = s.disk_busy_ratio = -1;
    s.disk_read_bytes_per_second = s.disk_write_bytes_per_second = -1;
    s.memory_pressure_some_ratio = s.memory_pressure_full_ratio = -1;
    s.memory_limit_bytes = 1000 * MB;
    s.memory_used_bytes = 300 * MB + 10 * MB * t - dropped;
    s.memory_available_bytes = s.memory_limit_bytes - s.memory_used_bytes;
    s.process_rss_bytes = s.process_peak_rss_bytes = s.memory_used_bytes;
    assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  }
}

static const cJSON *get(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!v) fail_msg("missing key %s", k);
  return v;
}

/* The report's HTML (html != 0) or text, in a string the caller frees. */
static char *render(const po_report *rep, int html) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  assert_non_null(m);
  assert_int_equal(
      html ? po_report_write_html(rep, m) : po_report_write_text(rep, m, PO_SORT_TOTAL, 5), 0);
  fclose(m);
  assert_non_null(buf);
  return buf;
}

static void test_a_leak_nothing_stops_reaches_the_emergency_once(void **state) {
  (void)state;
  char flight[512];
  snprintf(flight, sizeof flight, "%s/leak.flight.json", support_tmpdir());
  unlink(flight);
  po_optimizer *opt = autopilot_opt(flight);
  push_growth(opt, 0, 60);
  assert_int_equal(checkpoints, 1);
  assert_true(cleanups >= 2); /* normal and aggressive (and the emergency's aggressive pass) */
  po_sample latest;
  assert_int_equal(po_monitor_latest(opt, &latest), 0);
  assert_int_equal(latest.memory_grade, PO_GRADE_EMERGENCY);
  assert_true(latest.memory_time_to_limit_seconds >= 0 && latest.memory_time_to_limit_seconds < 11);
  assert_true(fabs(latest.memory_growth_bytes_per_second - 10 * MB) < 0.5 * MB);

  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *mem = get(po_report_json(rep), "memory");
  const cJSON *fc = get(mem, "forecast");
  assert_string_equal(get(fc, "trend")->valuestring, "rising");
  assert_string_equal(get(fc, "grade")->valuestring, "emergency");
  assert_true(get(fc, "horizon_seconds")->valuedouble == 30);
  const cJSON *ap = get(mem, "autopilot");
  const cJSON *acts = get(ap, "actions");
  /* the grades climb in order (a grade may repeat while the next is held back) */
  static const char *const ladder[] = {"warn", "normal", "aggressive", "emergency"};
  int step = 0, nacts = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, acts) {
    const char *g = get(a, "grade")->valuestring;
    int climbed = step < 3 && !strcmp(g, ladder[step + 1]);
    if (climbed) step++;
    assert_string_equal(g, ladder[step]);
    /* a repeat keeps the grade; anything else climbs (the first action starts the ladder) */
    assert_true(cJSON_IsTrue(get(a, "repeat")) == (nacts > 0 && !climbed));
    nacts++;
    assert_string_equal(cJSON_GetArrayItem(get(a, "trigger"), 0)->valuestring, "forecast");
    assert_true(get(a, "time_to_limit_before_seconds")->valuedouble < 30);
    if (step < 3) {
      assert_true(cJSON_IsTrue(get(a, "checked")));
      assert_true(cJSON_IsFalse(get(a, "helped")));
    }
  }
  assert_int_equal(step, 3);
  const cJSON *fr = get(ap, "flight_record");
  assert_string_equal(get(fr, "path")->valuestring, flight);
  assert_true(get(fr, "writes")->valuedouble >= 1);
  assert_string_equal(get(fr, "error")->valuestring, "");
  /* the HTML draws the forecast ahead of the memory curve; the text says when the limit comes */
  char *html = render(rep, 1), *text = render(rep, 0);
  assert_non_null(strstr(html, "<title>limit forecast in"));
  assert_non_null(strstr(text, "autopilot grade emergency"));
  assert_non_null(strstr(text, "the limit in"));
  free(html);
  free(text);
  po_report_destroy(rep);

  /* The flight record: the report, why, and the recent samples at full resolution. */
  po_report *fl;
  char err[256];
  assert_int_equal(po_report_load(flight, &fl, err, sizeof err), 0);
  const cJSON *f = get(po_report_json(fl), "flight");
  assert_string_equal(get(f, "grade")->valuestring, "emergency");
  assert_non_null(strstr(get(f, "reason")->valuestring, "limit forecast in"));
  const cJSON *ts = get(get(f, "samples"), "t_seconds");
  const cJSON *used = get(get(f, "samples"), "memory_used_bytes");
  int n = cJSON_GetArraySize(ts);
  assert_int_equal(n, (int)get(f, "sample_count")->valuedouble);
  assert_int_equal(cJSON_GetArraySize(used), n);
  assert_true(n >= 40);
  /* full resolution: one row per pushed sample, one second apart */
  assert_true(cJSON_GetArrayItem(ts, 1)->valuedouble - cJSON_GetArrayItem(ts, 0)->valuedouble == 1);
  assert_non_null(get(get(po_report_json(fl), "memory"), "forecast"));
  /* a run report of the killed job takes the flight record in */
  po_report *run_rep;
  assert_int_equal(po_report_create(NULL, &run_rep), 0);
  assert_int_equal(po__report_add_flight(run_rep, run_rep, flight), PO_EINVAL); /* not a record */
  assert_int_equal(po__report_add_flight(run_rep, fl, flight), 0);
  const cJSON *rf = get(po_report_json(run_rep), "flight");
  assert_string_equal(get(rf, "path")->valuestring, flight);
  assert_string_equal(get(get(rf, "forecast"), "trend")->valuestring, "rising");
  assert_true(cJSON_GetArraySize(get(get(rf, "autopilot"), "actions")) >= 4);
  assert_int_equal(cJSON_GetArraySize(get(get(rf, "samples"), "t_seconds")), n);
  po_report_destroy(run_rep);
  /* positive control: a report without a forecast (as a run's) draws none; the text of the
   * flight record it took in shows the forecast the killed process had */
  static const char bare_json[] = "{\"perfopt_version\": \"t\"}";
  po_report *bare;
  assert_int_equal(po__report_parse(bare_json, strlen(bare_json), "t", &bare, err, sizeof err), 0);
  assert_int_equal(po__report_add_flight(bare, fl, ""), 0);
  html = render(bare, 1);
  text = render(bare, 0);
  assert_null(strstr(html, "<title>limit forecast in"));
  assert_non_null(strstr(text, "flight record, written"));
  assert_non_null(strstr(text, "autopilot grade emergency"));
  free(html);
  free(text);
  po_report_destroy(bare);
  po_report_destroy(fl);
  po_optimizer_destroy(opt);
}

/* The same leak with a cache that frees 300 MB at the normal grade: the forecast moves out of
 * the horizon, the check says so, and no emergency follows. */
static void test_a_cleanup_that_frees_enough_stops_the_ladder(void **state) {
  (void)state;
  char flight[512];
  snprintf(flight, sizeof flight, "%s/freed.flight.json", support_tmpdir());
  unlink(flight);
  po_optimizer *opt = autopilot_opt(flight);
  listener_frees = 300 * MB;
  push_growth(opt, 0, 50);
  listener_frees = 0;
  assert_int_equal(checkpoints, 0);
  assert_int_not_equal(access(flight, F_OK), 0);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *acts = get(get(get(po_report_json(rep), "memory"), "autopilot"), "actions");
  int helped = 0, emergencies = 0;
  double freed = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, acts) {
    const char *g = get(a, "grade")->valuestring;
    emergencies += !strcmp(g, "emergency");
    freed += get(a, "freed_bytes")->valuedouble;
    if (cJSON_IsTrue(get(a, "checked")) && cJSON_IsTrue(get(a, "helped"))) {
      helped++;
      assert_true(cJSON_IsTrue(get(a, "moved_out_of_horizon")));
    }
  }
  assert_int_equal(emergencies, 0);
  assert_true(helped >= 1);
  assert_true(freed >= 300 * MB);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

/* AUTOPILOT=false: the memory threshold fires on the level alone, as before. */
static void test_autopilot_off_is_the_level_threshold(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  c.autopilot = 0;
  c.memory_threshold = 0.9;
  snprintf(c.nvml_library, sizeof c.nvml_library, "/nonexistent/libnvidia-ml.so.1");
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  checkpoints = 0;
  assert_int_equal(po_checkpoint_register(opt, "save", count_checkpoint, NULL, NULL), 0);
  dropped = 0;
  push_growth(opt, 0, 69); /* reaches 99 % of the limit */
  assert_int_equal(checkpoints, 0);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *mem = get(po_report_json(rep), "memory");
  assert_true(cJSON_IsFalse(get(get(mem, "autopilot"), "enabled")));
  assert_int_equal(cJSON_GetArraySize(get(get(mem, "autopilot"), "actions")), 0);
  const cJSON *ev = get(get(po_report_json(rep), "resources"), "events");
  assert_int_equal(cJSON_GetArraySize(ev), 1); /* one crossing, one firing */
  /* the forecast is still computed and reported */
  assert_string_equal(get(get(mem, "forecast"), "trend")->valuestring, "rising");
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

/* A GPU whose memory grows towards its total: its own forecast, grade and actions (GPU handlers
 * only), while host memory stays flat. */
static void test_each_gpu_has_its_own_forecast_and_grades(void **state) {
  (void)state;
  po_optimizer *opt = autopilot_opt("/nonexistent-dir/gpu.flight.json");
  int gpu_cleanups = 0;
  for (int t = 0; t <= 40; t++) {
    po_sample s;
    memset(&s, 0, sizeof s);
    s.t_seconds = t;
    s.cpu_utilization_ratio = s.process_cpu_ratio = s.disk_busy_ratio = -1;
    s.disk_read_bytes_per_second = s.disk_write_bytes_per_second = -1;
    s.memory_pressure_some_ratio = s.memory_pressure_full_ratio = -1;
    s.memory_limit_bytes = 1000 * MB;
    s.memory_used_bytes = 200 * MB;
    s.memory_available_bytes = 800 * MB;
    s.process_rss_bytes = s.process_peak_rss_bytes = 100 * MB;
    s.gpu_count = 1;
    s.gpus[0].memory_total_bytes = 8000 * MB;
    s.gpus[0].memory_used_bytes = 4000 * MB + 100 * MB * t;
    s.gpus[0].utilization_ratio = 0.9;
    assert_int_equal(po__sampler_push(opt->sampler, &s), 0);
  }
  po_sample latest;
  assert_int_equal(po_monitor_latest(opt, &latest), 0);
  assert_true(latest.memory_time_to_limit_seconds < 0); /* host: flat */
  assert_int_equal(latest.memory_grade, PO_GRADE_NONE);
  /* 8000 - 8000 MB at t = 40: the GPU is at its limit */
  assert_true(latest.gpus[0].time_to_limit_seconds >= 0 &&
              latest.gpus[0].time_to_limit_seconds < 1);
  assert_true(fabs(latest.gpus[0].growth_bytes_per_second - 100.0 * MB) < 5.0 * MB);
  assert_int_equal(latest.gpus[0].grade, PO_GRADE_EMERGENCY);
  assert_int_equal(checkpoints, 1);
  po_report *rep;
  assert_int_equal(po_report_create(opt, &rep), 0);
  const cJSON *mem = get(po_report_json(rep), "memory");
  const cJSON *g0 = cJSON_GetArrayItem(get(get(mem, "forecast"), "gpus"), 0);
  assert_non_null(g0);
  assert_int_equal((int)get(g0, "device")->valuedouble, 0);
  assert_string_equal(get(g0, "trend")->valuestring, "rising");
  assert_string_equal(get(get(mem, "forecast"), "trend")->valuestring, "flat");
  const cJSON *a;
  cJSON_ArrayForEach(a, get(get(mem, "autopilot"), "actions")) {
    assert_string_equal(get(a, "metric")->valuestring, "gpu_memory");
    gpu_cleanups++;
  }
  assert_true(gpu_cleanups >= 2);
  po_report_destroy(rep);
  po_optimizer_destroy(opt);
}

static void test_checkpoint_registry(void **state) {
  (void)state;
  po_config c;
  po_config_defaults(&c);
  c.background_monitoring = 0;
  po_optimizer *opt;
  assert_int_equal(po_optimizer_create(&c, &opt), 0);
  int ids[17];
  for (int i = 0; i < 16; i++)
    assert_int_equal(po_checkpoint_register(opt, "c", count_checkpoint, NULL, &ids[i]), 0);
  assert_int_equal(po_checkpoint_register(opt, "c", count_checkpoint, NULL, &ids[16]), PO_EFULL);
  assert_int_equal(po_checkpoint_register(opt, "c", NULL, NULL, NULL), PO_EINVAL);
  assert_int_equal(po_checkpoint_unregister(opt, ids[3]), 0);
  assert_int_equal(po_checkpoint_unregister(opt, ids[3]), PO_ENOENT);
  assert_int_equal(po_checkpoint_register(opt, "c", count_checkpoint, NULL, NULL), 0);
  po_optimizer_destroy(opt);
}

/* ---- allocation failures --------------------------------------------------------------------- */

static void test_recent_ring_allocation_failures_are_clean(void **state) {
  (void)state;
  for (uint64_t n = 1;; n++) {
    po__fault_fail_at(n, 0);
    po__recent *r = po__recent_create(64, 2);
    po__recent *c = r ? po__recent_clone(r) : NULL;
    int injected = po__fault_injected() > 0;
    po__fault_fail_at(0, 0);
    if (r) assert_true(c || injected);
    po__recent_destroy(c);
    po__recent_destroy(r);
    if (!injected) break;
    assert_true(n < 16);
  }
}

/* The first sample allocates the series and the recent ring; a failure there leaves a sampler
 * that stores samples without a forecast, and reports without crashing. */
static void test_first_sample_allocation_failures_are_clean(void **state) {
  (void)state;
  for (uint64_t n = 1;; n++) {
    po_optimizer *opt = autopilot_opt("/nonexistent-dir/flight.json");
    po__fault_fail_at(n, 0);
    push_growth(opt, 0, 3);
    int injected = po__fault_injected() > 0;
    po__fault_fail_at(0, 0);
    push_growth(opt, 4, 12);
    po_sample latest;
    assert_int_equal(po_monitor_latest(opt, &latest), 0);
    po_report *rep = NULL;
    assert_int_equal(po_report_create(opt, &rep), 0);
    po_report_destroy(rep);
    po_optimizer_destroy(opt);
    if (!injected) break;
    assert_true(n < 16);
  }
}

/* Every allocation of the flight record may fail: the failure is recorded, nothing is written,
 * nothing crashes. The path is in an unwritable place too, so a success reports the write error. */
static void test_flight_record_allocation_failures_are_recorded(void **state) {
  (void)state;
  char flight[512];
  snprintf(flight, sizeof flight, "%s/alloc.flight.json", support_tmpdir());
  po_optimizer *opt = autopilot_opt(flight);
  push_growth(opt, 0, 20);
  po_pressure_event ev = {20,   PO_METRIC_MEMORY,   -1, 0.5, 0.99, PO_CLEANUP_AGGRESSIVE,
                          NULL, PO_GRADE_EMERGENCY, 5};
  int failures = 0;
  for (uint64_t n = 1;; n++) {
    unlink(flight);
    po__fault_fail_at(n, 0);
    int rc = po__optimizer_flight_record(opt, &ev, "test");
    int injected = po__fault_injected() > 0;
    po__fault_fail_at(0, 0);
    if (!injected) {
      assert_int_equal(rc, 0);
      assert_int_equal(access(flight, F_OK), 0);
      break;
    }
    if (rc) {
      failures++;
      assert_int_not_equal(access(flight, F_OK), 0);
      assert_true(strlen(opt->flight.error) > 0);
    }
    assert_true(n < 100000);
  }
  assert_true(failures > 0);
  assert_string_equal(opt->flight.error, "");
  po_optimizer_destroy(opt);
}

/* Prometheus: the forecast from memory.forecast (none is +Inf, never the series' stale last
 * value), the grade as a number, each GPU's time to limit, the autopilot's actions and bytes. */
static char *prom_of(const char *json) {
  char text[4096];
  snprintf(text, sizeof text, "{\"perfopt_version\": \"test\", %s", json + 1);
  po_report *rep = NULL;
  char err[256];
  assert_int_equal(po__report_parse(text, strlen(text), "test", &rep, err, sizeof err), 0);
  size_t len = 0;
  char *out = po__report_prom_text(rep, &len);
  assert_non_null(out);
  po_report_destroy(rep);
  return out;
}

static void test_prometheus_exposes_the_forecast(void **state) {
  (void)state;
  static const char *series =
      "\"resources\": {\"series\": [{\"name\": \"memory_time_to_limit_seconds\", \"last\": [12.5, "
      "null]}]}";
  char json[2048];
  snprintf(json, sizeof json,
           "{\"memory\": {\"forecast\": {\"trend\": \"rising\", \"time_to_limit_seconds\": 42.5, "
           "\"slope_bytes_per_second\": 1048576, \"grade\": \"aggressive\", \"gpus\": "
           "[{\"device\": 1, \"trend\": \"flat\", \"time_to_limit_seconds\": -1}]}, "
           "\"autopilot\": {\"actions\": [{\"freed_bytes\": 1000}, {\"freed_bytes\": 24}], "
           "\"dropped_actions\": 3}}, %s}",
           series);
  char *t = prom_of(json);
  assert_non_null(strstr(t, "\nperfopt_memory_forecast_time_to_limit_seconds 42.5\n"));
  assert_non_null(strstr(t, "\nperfopt_memory_forecast_slope_bytes_per_second 1048576\n"));
  assert_non_null(strstr(t, "\nperfopt_memory_autopilot_grade{grade=\"aggressive\"} 1\n"));
  assert_non_null(
      strstr(t, "\nperfopt_gpu_memory_forecast_time_to_limit_seconds{gpu=\"1\"} +Inf\n"));
  assert_non_null(strstr(t, "\nperfopt_memory_autopilot_actions_total 5\n"));
  assert_non_null(strstr(t, "\nperfopt_memory_autopilot_freed_bytes_total 1024\n"));
  assert_null(strstr(t, "12.5")); /* the series' stale value is not exposed */
  free(t);
  /* no rising trend: +Inf, once */
  snprintf(json, sizeof json,
           "{\"memory\": {\"forecast\": {\"trend\": \"flat\", \"time_to_limit_seconds\": -1, "
           "\"grade\": \"none\"}}, %s}",
           series);
  t = prom_of(json);
  char *hit = strstr(t, "\nperfopt_memory_forecast_time_to_limit_seconds +Inf\n");
  assert_non_null(hit);
  assert_null(strstr(hit + 1, "\nperfopt_memory_forecast_time_to_limit_seconds "));
  assert_non_null(strstr(t, "\nperfopt_memory_autopilot_grade{grade=\"none\"} 1\n"));
  free(t);
  /* a report without a forecast exposes none of it */
  t = prom_of("{\"memory\": {\"rss_bytes\": 5}}");
  assert_null(strstr(t, "time_to_limit"));
  assert_null(strstr(t, "autopilot"));
  assert_non_null(strstr(t, "process_resident_memory_bytes 5")); /* positive control */
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forecast_climbs_the_ladder_when_nothing_helps),
      cmocka_unit_test(test_an_action_that_moves_the_forecast_out_stops_the_ladder),
      cmocka_unit_test(test_the_level_alone_never_escalates),
      cmocka_unit_test(test_the_emergency_waits_for_half_the_horizon),
      cmocka_unit_test(test_a_short_time_to_limit_acts_at_once),
      cmocka_unit_test(test_memory_pressure_is_a_danger),
      cmocka_unit_test(test_rearming_needs_the_hysteresis_margin),
      cmocka_unit_test(test_a_new_episode_within_the_cooldown_waits_unless_worse),
      cmocka_unit_test(test_a_leak_nothing_stops_reaches_the_emergency_once),
      cmocka_unit_test(test_a_cleanup_that_frees_enough_stops_the_ladder),
      cmocka_unit_test(test_autopilot_off_is_the_level_threshold),
      cmocka_unit_test(test_checkpoint_registry),
      cmocka_unit_test(test_each_gpu_has_its_own_forecast_and_grades),
      cmocka_unit_test(test_recent_ring_allocation_failures_are_clean),
      cmocka_unit_test(test_first_sample_allocation_failures_are_clean),
      cmocka_unit_test(test_flight_record_allocation_failures_are_recorded),
      cmocka_unit_test(test_prometheus_exposes_the_forecast),
  };
  return cmocka_run_group_tests_name("autopilot", tests, NULL, NULL);
}
