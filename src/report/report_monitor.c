/* The report's `memory`, `resources` and `gpu` sections, from the sampler's and the memory
 * module's snapshots (the last sample: nothing is probed here). */
#include "report/report_build.h"

#include <math.h>
#include <stdio.h>

static const char *level_name(po_cleanup_level l) {
  return l == PO_CLEANUP_AGGRESSIVE ? "aggressive" : "normal";
}

static const char *limit_source_name(const po__sampler_snapshot *s) {
  if (!s || !s->has_latest || s->latest.memory_limit_bytes < 0) return "unknown";
  return po_limit_source_name(s->latest.memory_limit_source);
}

static const char *record_type_name(int type) {
  if (type == PO__RESOURCE_LISTENER) return "listener";
  if (type == PO__RESOURCE_ALLOCATOR) return "allocator";
  if (type == PO__RESOURCE_CHECKPOINT) return "checkpoint";
  return po_resource_type_name(type);
}

static void cleanups_json(po__jw *w, cJSON *mem, const po__memory_snapshot *m) {
  cJSON *cl = po__j_arr(w, mem, "cleanups");
  for (size_t i = 0; m && i < m->ncleanups && !w->err; i++) {
    const po__cleanup_record *r = &m->cleanups[i];
    cJSON *o = po__j_obj(w, cl, NULL);
    po__j_num(w, o, "t_seconds", r->t_seconds);
    po__j_str(w, o, "level", level_name(r->level));
    po__j_str(w, o, "type", record_type_name(r->type));
    po__j_str(w, o, "handler", r->handler);
    po__j_num(w, o, "freed_bytes", (double)r->freed_bytes);
  }
}

static void guards_json(po__jw *w, cJSON *mem, const po__memory_snapshot *m) {
  static const char *const ran[] = {"none", "primary", "fallback"};
  cJSON *gu = po__j_arr(w, mem, "guards");
  for (size_t i = 0; m && i < m->nguards && !w->err; i++) {
    const po__guard_record *g = &m->guards[i];
    cJSON *o = po__j_obj(w, gu, NULL);
    po__j_num(w, o, "t_seconds", g->t_seconds);
    po__j_str(w, o, "name", g->name);
    po__j_num(w, o, "required_bytes", (double)g->required_bytes);
    po__j_num(w, o, "available_bytes", (double)g->available_bytes);
    po__j_str(w, o, "ran", ran[g->ran >= 0 && g->ran <= 2 ? g->ran : 0]);
    po__j_str(w, o, "result", g->result == 0 ? "ok" : po_err_name(g->result));
    if (g->retried_batch) po__j_num(w, o, "retried_batch", (double)g->retried_batch);
  }
}

static void batch_probes_json(po__jw *w, cJSON *mem, const po__memory_snapshot *m) {
  cJSON *arr = po__j_arr(w, mem, "batch_probes");
  for (size_t i = 0; m && i < m->nprobes && !w->err; i++) {
    const po__probe_record *p = &m->probes[i];
    const po_batch_probe_result *r = &p->r;
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_num(w, o, "t_seconds", p->t_seconds);
    po__j_num(w, o, "device", p->device);
    po__j_str(w, o, "result", p->result == 0 ? "ok" : po_err_name(p->result));
    po__j_num(w, o, "batch", (double)r->batch);
    po__j_num(w, o, "proposed_batch", (double)r->proposed_batch);
    po__j_num(w, o, "fixed_bytes", r->model.fixed_bytes);
    po__j_num(w, o, "bytes_per_sample", r->model.bytes_per_sample);
    po__j_num(w, o, "available_bytes", (double)r->available_bytes);
    po__j_num(w, o, "steps", r->steps);
    po__j_num(w, o, "fallbacks", r->fallbacks);
    cJSON *ms = po__j_arr(w, o, "measured");
    for (int k = 0; k < r->nmeasured && k < 3; k++) {
      cJSON *x = po__j_obj(w, ms, NULL);
      po__j_num(w, x, "batch", (double)r->measured_batch[k]);
      po__j_num(w, x, "peak_increment_bytes", (double)r->measured_bytes[k]);
    }
  }
  po__j_num(w, mem, "dropped_batch_probes", m ? (double)m->probes_dropped : 0);
}

void po__report_memory(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                       const po__memory_snapshot *m) {
  cJSON *mem = po__j_obj(w, root, "memory");
  const po_sample *l = s && s->has_latest ? &s->latest : NULL;
  po__j_num(w, mem, "rss_bytes", l ? (double)l->process_rss_bytes : -1);
  po__j_num(w, mem, "peak_rss_bytes", l ? (double)l->process_peak_rss_bytes : -1);
  po__j_num(w, mem, "limit_bytes", l ? (double)l->memory_limit_bytes : -1);
  po__j_str(w, mem, "limit_source", limit_source_name(s));
  po__j_num(w, mem, "available_bytes", l ? (double)l->memory_available_bytes : -1);
  cleanups_json(w, mem, m);
  guards_json(w, mem, m);
  batch_probes_json(w, mem, m);
  po__j_num(w, mem, "dropped_cleanups", m ? (double)m->cleanups_dropped : 0);
  po__j_num(w, mem, "dropped_guards", m ? (double)m->guards_dropped : 0);
}

/* ---- resources ------------------------------------------------------------------------------ */

void po__report_series(po__jw *w, cJSON *arr, const po__series_set *set) {
  for (size_t c = 0; set && c < po__series_columns(set) && !w->err; c++) {
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_str(w, o, "name", po__series_name(set, c));
    po__j_str(w, o, "unit", po__series_unit(set, c));
    cJSON *t = po__j_arr(w, o, "t_seconds"), *mn = po__j_arr(w, o, "min");
    cJSON *mx = po__j_arr(w, o, "max"), *la = po__j_arr(w, o, "last");
    for (size_t i = 0; i < po__series_len(set) && !w->err; i++) {
      po__series_point p;
      po__series_get(set, c, i, &p);
      po__j_num(w, t, NULL, p.t);
      po__j_num(w, mn, NULL, p.min);
      po__j_num(w, mx, NULL, p.max);
      po__j_num(w, la, NULL, p.last);
    }
  }
}

static void threshold_json(po__jw *w, cJSON *arr, const char *metric, int device, double value,
                           const char *source, const char *why) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "metric", metric);
  if (device >= 0) po__j_num(w, o, "device", device);
  po__j_num(w, o, "value", value);
  po__j_str(w, o, "source", source);
  po__j_str(w, o, "why", why);
}

void po__report_thresholds(po__jw *w, cJSON *parent, const po_thresholds *th,
                           const po_gpu_info *gpus, size_t ngpus, const double *gpu_threshold,
                           int gpu_from_config) {
  cJSON *arr = po__j_arr(w, parent, "thresholds");
  int per_device = gpu_threshold && ngpus > 0;
  for (int k = 0; k < PO_THRESHOLD_COUNT; k++) {
    const po_threshold *t = &th->t[k];
    if (k == PO_METRIC_GPU_MEMORY && per_device) continue;
    threshold_json(w, arr, po_metric_name((po_metric)k), -1, t->value,
                   t->source ? t->source : "program", t->why);
  }
  for (size_t g = 0; per_device && g < ngpus; g++) {
    char why[200];
    snprintf(why, sizeof why, "%s for GPU %zu (%s, %.1f GiB)",
             gpu_from_config ? "GPU_MEMORY_THRESHOLD" : "hardware default", g, gpus[g].name,
             (double)gpus[g].memory_total_bytes / (1024.0 * 1024 * 1024));
    const char *src = th->t[PO_METRIC_GPU_MEMORY].source;
    threshold_json(w, arr, "gpu_memory", (int)g, gpu_threshold[g],
                   gpu_from_config ? (src ? src : "program") : "hardware default", why);
  }
}

static void events_json(po__jw *w, cJSON *r, const po__sampler_snapshot *s) {
  cJSON *arr = po__j_arr(w, r, "events");
  for (size_t i = 0; i < s->nevents && !w->err; i++) {
    const po__sampler_event *e = &s->events[i];
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_num(w, o, "t_seconds", e->t_seconds);
    po__j_str(w, o, "metric", po_metric_name(e->metric));
    if (e->device >= 0) po__j_num(w, o, "device", e->device);
    po__j_num(w, o, "value", e->value);
    po__j_num(w, o, "threshold", e->threshold);
    po__j_str(w, o, "level", level_name(e->level));
    cJSON *acts = po__j_arr(w, o, "actions");
    for (int k = 0; k < e->actions.n; k++) po__j_str(w, acts, NULL, e->actions.item[k]);
    po__j_num(w, o, "freed_bytes", (double)e->freed_bytes);
    if (e->actions.dropped) po__j_num(w, o, "dropped_actions", e->actions.dropped);
    if (e->grade != PO_GRADE_NONE) {
      po__j_str(w, o, "grade", po_grade_name(e->grade));
      po__j_num(w, o, "time_to_limit_seconds", e->time_to_limit_seconds);
    }
  }
  po__j_num(w, r, "dropped_events", (double)s->events_dropped);
}

static void phases_json(po__jw *w, cJSON *r, const po__memory_snapshot *m) {
  cJSON *arr = po__j_arr(w, r, "phases");
  for (size_t i = 0; m && i < m->nphases && !w->err; i++) {
    const po__phase *p = &m->phases[i];
    cJSON *o = po__j_obj(w, arr, NULL);
    po__j_str(w, o, "name", p->name);
    po__j_num(w, o, "start_seconds", p->start_seconds);
    po__j_num(w, o, "end_seconds", p->end_seconds < 0 ? m->now_seconds : p->end_seconds);
    po__j_bool(w, o, "open", p->end_seconds < 0);
  }
  po__j_num(w, r, "dropped_phases", m ? (double)m->phases_dropped : 0);
}

void po__report_resources(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                          const po__memory_snapshot *m) {
  cJSON *r = po__j_obj(w, root, "resources");
  if (s) {
    po__j_num(w, r, "interval_seconds", s->interval_seconds);
    po__j_num(w, r, "effective_interval_seconds", s->effective_interval_seconds);
    po__j_bool(w, r, "running", s->running);
    po__j_num(w, r, "sample_count", (double)s->samples);
    po__j_num(w, r, "overhead_core_ratio", s->overhead_core_ratio);
    po__j_num(w, r, "series_bytes", (double)s->series_bytes);
    po__j_num(w, r, "samples_per_bucket", (double)po__series_samples_per_bucket(s->series));
    po__report_series(w, po__j_arr(w, r, "series"), s->series);
    po__report_thresholds(w, r, &s->thresholds, s->gpus, s->gpu_count,
                          s->gpu_thresholds_resolved ? s->gpu_threshold : NULL,
                          s->gpu_threshold_from_config);
    events_json(w, r, s);
  }
  phases_json(w, r, m);
}

/* ---- gpu ------------------------------------------------------------------------------------ */

static void device_json(po__jw *w, cJSON *arr, const po_gpu_info *d) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_num(w, o, "index", d->index);
  po__j_str(w, o, "name", d->name);
  po__j_str(w, o, "uuid", d->uuid);
  po__j_num(w, o, "memory_total_bytes", (double)d->memory_total_bytes);
  po__j_num(w, o, "memory_used_bytes", (double)d->memory_used_bytes);
  po__j_num(w, o, "memory_free_bytes", (double)d->memory_free_bytes);
  po__j_num(w, o, "memory_reserved_bytes", (double)d->memory_reserved_bytes);
  po__j_str(w, o, "memory_api", d->memory_v2 ? "v2" : "v1");
  po__j_num(w, o, "utilization_gpu_ratio", d->utilization_gpu_ratio);
  po__j_num(w, o, "utilization_memory_ratio", d->utilization_memory_ratio);
  po__j_num(w, o, "temperature_celsius", d->temperature_celsius);
  po__j_num(w, o, "power_watts", d->power_watts);
  if (d->processes_known) {
    cJSON *ps = po__j_arr(w, o, "processes");
    for (size_t i = 0; i < d->process_count; i++) {
      cJSON *p = po__j_obj(w, ps, NULL);
      po__j_num(w, p, "pid", d->processes[i].pid);
      uint64_t used = d->processes[i].used_memory_bytes;
      po__j_num(w, p, "used_memory_bytes", used == UINT64_MAX ? -1.0 : (double)used);
    }
    po__j_num(w, o, "processes_dropped", (double)d->processes_dropped);
  }
  if (d->error[0]) po__j_str(w, o, "error", d->error);
}

void po__report_gpu(po__jw *w, cJSON *root, const po_gpu_info *devs, size_t count,
                    size_t dropped, const char *reason) {
  cJSON *g = po__j_obj(w, root, "gpu");
  po__j_bool(w, g, "available", count > 0);
  po__j_str(w, g, "reason", count > 0 || !reason ? "" : reason);
  cJSON *arr = po__j_arr(w, g, "devices");
  for (size_t i = 0; i < count && !w->err; i++) device_json(w, arr, &devs[i]);
  po__j_num(w, g, "dropped_devices", (double)dropped);
}

/* ---- system (perfopt sysinfo) ---------------------------------------------------------------- */

static void cpu_json(po__jw *w, cJSON *sys, const po_system_sample *s) {
  int r = s->has_rates && !(s->missing & PO_PROBE_MISSING_STAT);
  po__j_num(w, sys, "cpu_utilization_ratio", r ? s->cpu.busy : -1);
  po__j_num(w, sys, "cpu_user_ratio", r ? s->cpu.user : -1);
  po__j_num(w, sys, "cpu_system_ratio", r ? s->cpu.system : -1);
  po__j_num(w, sys, "cpu_iowait_ratio", r ? s->cpu.iowait : -1);
  po__j_num(w, sys, "cpu_steal_ratio", r ? s->cpu.steal : -1);
  cJSON *cores = po__j_arr(w, sys, "cpu_per_core_ratio");
  for (uint32_t i = 0; r && i < s->cpu_count; i++) po__j_num(w, cores, NULL, s->cpus[i].busy);
}

static void memory_json(po__jw *w, cJSON *sys, const po_system_sample *s) {
  po__j_num(w, sys, "memory_total_bytes", (double)s->mem_total_bytes);
  po__j_num(w, sys, "memory_available_bytes", (double)s->mem_available_bytes);
  po__j_num(w, sys, "memory_used_bytes", (double)s->mem_used_bytes);
  po__j_num(w, sys, "memory_cached_bytes", (double)s->mem_cached_bytes);
  po__j_num(w, sys, "swap_total_bytes", (double)s->swap_total_bytes);
  po__j_num(w, sys, "swap_used_bytes", (double)s->swap_used_bytes);
  po__j_num(w, sys, "memory_limit_bytes", (double)s->memory_limit_bytes);
  po__j_str(w, sys, "memory_limit_source", po_limit_source_name(s->limit_source));
  po__j_num(w, sys, "effective_available_bytes", (double)s->effective_available_bytes);
  po__j_num(w, sys, "cgroup_memory_current_bytes", (double)s->cgroup_memory_current_bytes);
  po__j_num(w, sys, "cgroup_memory_max_bytes", (double)s->cgroup_memory_max_bytes);
  po__j_num(w, sys, "cgroup_memory_high_bytes", (double)s->cgroup_memory_high_bytes);
  po__j_num(w, sys, "cgroup_swap_max_bytes", (double)s->cgroup_swap_max_bytes);
  cJSON *la = po__j_arr(w, sys, "load_average");
  for (int i = 0; i < 3; i++) po__j_num(w, la, NULL, s->loadavg[i]);
  po__j_num(w, sys, "memory_pressure_some_avg10_ratio",
            s->has_pressure ? s->pressure_some_avg10 / 100.0 : NAN);
  po__j_num(w, sys, "memory_pressure_full_avg10_ratio",
            s->has_pressure ? s->pressure_full_avg10 / 100.0 : NAN);
}

void po__report_system(po__jw *w, cJSON *root, const po_system_sample *s) {
  cJSON *sys = po__j_obj(w, root, "system");
  cpu_json(w, sys, s);
  memory_json(w, sys, s);
  cJSON *disks = po__j_arr(w, sys, "disks");
  for (uint32_t i = 0; i < s->disk_count && !w->err; i++) {
    const po_disk_usage *d = &s->disks[i];
    cJSON *o = po__j_obj(w, disks, NULL);
    po__j_str(w, o, "name", d->name);
    po__j_num(w, o, "read_bytes", (double)d->read_bytes);
    po__j_num(w, o, "write_bytes", (double)d->write_bytes);
    po__j_num(w, o, "read_bytes_per_second", d->read_bytes_per_second);
    po__j_num(w, o, "write_bytes_per_second", d->write_bytes_per_second);
    po__j_num(w, o, "busy_ratio", d->busy_ratio);
  }
}
