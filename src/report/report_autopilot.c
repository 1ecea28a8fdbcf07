/* The report's memory.forecast and memory.autopilot, and the flight record's `flight` section,
 * from the sampler's snapshot (docs/formats.md). */
#include "report/report_build.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void forecast_json(po__jw *w, cJSON *o, const po__forecast *f, po_grade grade,
                          const po__sampler_snapshot *s) {
  po__j_str(w, o, "trend", po__trend_name(f->trend));
  po__j_num(w, o, "time_to_limit_seconds", f->time_to_limit_seconds);
  po__j_num(w, o, "slope_bytes_per_second", f->slope_per_second);
  po__j_num(w, o, "level_bytes", f->level);
  po__j_num(w, o, "limit_bytes", f->limit);
  po__j_num(w, o, "agreement_ratio", f->agreement);
  po__j_num(w, o, "points", (double)f->points);
  po__j_num(w, o, "window_seconds", s->window_seconds);
  po__j_num(w, o, "horizon_seconds", s->autopilot_params.horizon_seconds);
  po__j_str(w, o, "grade", po_grade_name(grade));
}

/* memory.forecast: host memory, with one entry per GPU in `gpus`. */
static void forecasts_json(po__jw *w, cJSON *mem, const po__sampler_snapshot *s) {
  cJSON *fc = po__j_obj(w, mem, "forecast");
  static const po__forecast none = {PO__TREND_UNKNOWN, 0, NAN, NAN, -1, 0, 0, 0};
  forecast_json(w, fc, s->resources ? &s->forecast[0] : &none, s->grade[0], s);
  const po_sample *l = s->has_latest ? &s->latest : NULL;
  po__j_num(w, fc, "pressure_some_ratio", l ? l->memory_pressure_some_ratio : -1);
  po__j_num(w, fc, "pressure_full_ratio", l ? l->memory_pressure_full_ratio : -1);
  cJSON *gpus = po__j_arr(w, fc, "gpus");
  for (size_t k = 1; k < s->resources && !w->err; k++) {
    cJSON *o = po__j_obj(w, gpus, NULL);
    po__j_num(w, o, "device", (double)(k - 1));
    forecast_json(w, o, &s->forecast[k], s->grade[k], s);
  }
}

static void trigger_json(po__jw *w, cJSON *o, unsigned t) {
  cJSON *arr = po__j_arr(w, o, "trigger");
  if (t & PO__TRIGGER_FORECAST) po__j_str(w, arr, NULL, "forecast");
  if (t & PO__TRIGGER_LEVEL) po__j_str(w, arr, NULL, "level");
  if (t & PO__TRIGGER_PRESSURE) po__j_str(w, arr, NULL, "pressure");
}

static void actions_json(po__jw *w, cJSON *ap, const po__sampler_snapshot *s) {
  cJSON *arr = po__j_arr(w, ap, "actions");
  for (size_t i = 0; i < s->nactions && !w->err; i++) {
    const po__ap_record *r = &s->actions[i];
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_num(w, o, "t_seconds", r->t_seconds);
    po__j_str(w, o, "metric", po_metric_name(r->metric));
    if (r->device >= 0) po__j_num(w, o, "device", r->device);
    po__j_str(w, o, "grade", po_grade_name(r->grade));
    trigger_json(w, o, r->trigger);
    po__j_bool(w, o, "repeat", r->repeat);
    po__j_num(w, o, "used_ratio", r->ratio);
    po__j_num(w, o, "time_to_limit_before_seconds", r->time_to_limit_before);
    po__j_num(w, o, "freed_bytes", (double)r->freed_bytes);
    po__j_bool(w, o, "checked", r->checked);
    if (!r->checked) continue;
    po__j_num(w, o, "check_t_seconds", r->check_t_seconds);
    po__j_num(w, o, "time_to_limit_after_seconds", r->time_to_limit_after);
    po__j_bool(w, o, "moved_out_of_horizon", r->moved_out);
    po__j_bool(w, o, "helped", r->helped);
  }
  po__j_num(w, ap, "dropped_actions", (double)s->actions_dropped);
}

static void flight_status_json(po__jw *w, cJSON *ap, const po__flight *f) {
  cJSON *o = po__j_obj(w, ap, "flight_record");
  po__j_str(w, o, "path", f ? f->path : "");
  po__j_num(w, o, "writes", f ? (double)f->writes : 0);
  po__j_num(w, o, "last_t_seconds", f ? f->last_t_seconds : -1);
  po__j_str(w, o, "error", f ? f->error : "");
}

void po__report_autopilot(po__jw *w, cJSON *mem, const po__sampler_snapshot *s,
                          const po__flight *flight) {
  if (!s || !mem) return;
  forecasts_json(w, mem, s);
  cJSON *ap = po__j_obj(w, mem, "autopilot");
  po__j_bool(w, ap, "enabled", s->autopilot);
  po__j_num(w, ap, "horizon_seconds", s->autopilot_params.horizon_seconds);
  uint64_t episodes = 0;
  for (size_t k = 0; k < s->resources; k++) episodes += s->episodes[k];
  po__j_num(w, ap, "episodes", (double)episodes);
  actions_json(w, ap, s);
  flight_status_json(w, ap, flight);
}

void po__report_flight(po__jw *w, cJSON *root, const po__sampler_snapshot *s, const po__flight *f) {
  cJSON *fl = po__j_obj(w, root, "flight");
  po__j_str(w, fl, "reason", f->reason);
  po__j_num(w, fl, "t_seconds", f->t_seconds);
  po__j_str(w, fl, "metric", po_metric_name(f->metric));
  if (f->device >= 0) po__j_num(w, fl, "device", f->device);
  po__j_str(w, fl, "grade", po_grade_name(f->grade));
  po__j_num(w, fl, "used_ratio", f->value);
  po__j_num(w, fl, "time_to_limit_seconds", f->time_to_limit_seconds);
  const po__recent *r = s ? s->recent : NULL;
  size_t rows = r ? r->ring.len : 0;
  po__j_num(w, fl, "sample_count", (double)rows);
  cJSON *cols = po__j_obj(w, fl, "samples");
  for (size_t c = 0; r && c < r->columns && !w->err; c++) {
    char name[64];
    po__recent_column_name(r, c, name, sizeof name);
    cJSON *arr = po__j_arr(w, cols, name);
    for (size_t i = 0; i < rows && !w->err; i++) po__j_num(w, arr, NULL, po__recent_at(r, c, i));
  }
}

int po__report_add_flight(po_report *rep, const po_report *flight, const char *path) {
  cJSON *root = (cJSON *)po_report_json(rep);
  const cJSON *froot = po_report_json(flight);
  const cJSON *fl = cJSON_GetObjectItemCaseSensitive(froot, "flight");
  if (!root || !cJSON_IsObject(fl)) return PO_EINVAL;
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(froot, "memory");
  po__jw w = {0};
  cJSON *copy = cJSON_Duplicate(fl, 1);
  if (!copy) return PO_ENOMEM;
  po__j_str(&w, copy, "path", path ? path : "");
  /* what the job saw and did in its last moments, beside the samples */
  const char *keys[] = {"forecast", "autopilot", "limit_bytes", "limit_source"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !w.err; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(mem, keys[i]);
    if (v) po__j_add(&w, copy, keys[i], cJSON_Duplicate(v, 1));
  }
  if (w.err) {
    cJSON_Delete(copy);
    return w.err;
  }
  cJSON_DeleteItemFromObjectCaseSensitive(root, "flight");
  if (!cJSON_AddItemToObject(root, "flight", copy)) {
    cJSON_Delete(copy);
    return PO_ENOMEM;
  }
  return 0;
}

/* ---- text -------------------------------------------------------------------------------------
 */

static double tnum(const cJSON *o, const char *key) {
  const cJSON *v = po__j_get(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static const char *tstr(const cJSON *o, const char *key) {
  const char *v = po__j_getstr(o, key);
  return v ? v : "?";
}

/* One line: memory in use against the effective limit (the whole machine's or the cgroup's use,
 * as the limit counts it), the trend and when it meets the limit, the grade in force. Before the
 * forecast has its samples only the grade is told (a level of -1 is "not measured"). */
static void text_forecast(FILE *out, const char *in, const cJSON *f, const char *source) {
  double lim = tnum(f, "limit_bytes"), level = tnum(f, "level_bytes");
  double ttl = tnum(f, "time_to_limit_seconds");
  const char *trend = tstr(f, "trend");
  if (!(level >= 0) || !(lim > 0) || !strcmp(trend, "unknown")) {
    fprintf(out, "%smemory forecast: not enough samples for a trend; autopilot grade %s\n", in,
            tstr(f, "grade"));
    return;
  }
  fprintf(out, "%smemory in use: %.1f MiB of a %.1f MiB limit (%s); trend %s", in,
          level / 1048576.0, lim / 1048576.0, source, trend);
  if (ttl >= 0)
    fprintf(out, ", %.1f MiB/s: the limit in %.*f s", tnum(f, "slope_bytes_per_second") / 1048576.0,
            ttl < 10 ? 1 : 0, ttl);
  fprintf(out, "; autopilot grade %s\n", tstr(f, "grade"));
}

static void text_actions(FILE *out, const char *in, const cJSON *ap) {
  const cJSON *a;
  int n = 0, helped = 0;
  double freed = 0;
  cJSON_ArrayForEach(a, po__j_get(ap, "actions")) {
    n++;
    if (tnum(a, "freed_bytes") > 0) freed += tnum(a, "freed_bytes");
    helped += cJSON_IsTrue(po__j_get(a, "helped"));
  }
  if (n)
    fprintf(out,
            "%sautopilot: %d actions (%d moved the limit out of the %.0f s horizon), %.1f MiB "
            "freed\n",
            in, n, helped, tnum(ap, "horizon_seconds"), freed / 1048576.0);
}

void po__report_text_forecast(const cJSON *root, FILE *out, const char *in) {
  const cJSON *mem = po__j_get(root, "memory"), *f = po__j_get(mem, "forecast");
  const cJSON *ap = po__j_get(mem, "autopilot"), *fl = po__j_get(root, "flight");
  if (f) {
    text_forecast(out, in, f, tstr(mem, "limit_source"));
    text_actions(out, in, ap);
    const cJSON *fr = po__j_get(ap, "flight_record");
    if (tnum(fr, "writes") > 0) fprintf(out, "%sflight record: %s\n", in, tstr(fr, "path"));
    if (fl) fprintf(out, "%sthis is the flight record: %s\n", in, tstr(fl, "reason"));
    return;
  }
  if (!fl) return;
  /* a run's report: the flight record of a process that was killed after writing it */
  fprintf(out,
          "%sflight record, written %.1f s into the process that was then killed: %s (%.0f "
          "samples)\n",
          in, tnum(fl, "t_seconds"), tstr(fl, "reason"), tnum(fl, "sample_count"));
  if (po__j_get(fl, "forecast"))
    text_forecast(out, in, po__j_get(fl, "forecast"), tstr(fl, "limit_source"));
  text_actions(out, in, po__j_get(fl, "autopilot"));
}
