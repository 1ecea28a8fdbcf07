/* The report's `profile` section, from the profiler's snapshot. */
#include "report/report_build.h"

static void function_json(po__jw *w, cJSON *arr, const po__prof_function *f) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_str(w, o, "name", f->name);
  po__j_str(w, o, "file", f->file);
  po__j_num(w, o, "line", f->line);
  po__j_num(w, o, "calls", (double)f->calls);
  po__j_num(w, o, "total_seconds", f->total_seconds);
  po__j_num(w, o, "self_seconds", f->self_seconds);
  po__j_num(w, o, "avg_seconds", f->avg_seconds);
  po__j_num(w, o, "min_seconds", f->min_seconds);
  po__j_num(w, o, "max_seconds", f->max_seconds);
  po__j_num(w, o, "stddev_seconds", f->stddev_seconds);
  po__j_num(w, o, "p50_seconds", f->p50_seconds);
  po__j_num(w, o, "p90_seconds", f->p90_seconds);
  po__j_num(w, o, "p95_seconds", f->p95_seconds);
  po__j_num(w, o, "p99_seconds", f->p99_seconds);
  po__j_num(w, o, "percent_total", f->percent_total);
}

static void node_json(po__jw *w, cJSON *arr, const po__prof_node *n) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_num(w, o, "id", n->id);
  po__j_num(w, o, "parent", n->parent);
  po__j_str(w, o, "name", n->name);
  po__j_num(w, o, "calls", (double)n->calls);
  po__j_num(w, o, "total_seconds", n->total_seconds);
  po__j_num(w, o, "self_seconds", n->self_seconds);
  if (n->open_at_exit) po__j_bool(w, o, "open_at_exit", 1);
}

static void thread_json(po__jw *w, cJSON *arr, const po__prof_thread *t) {
  cJSON *o = po__j_obj(w, arr, NULL);
  po__j_num(w, o, "tid", (double)t->tid);
  po__j_str(w, o, "name", t->name);
  po__j_bool(w, o, "exited", t->exited);
  po__j_num(w, o, "calls", (double)t->calls);
  po__j_num(w, o, "total_seconds", t->total_seconds);
  if (!t->exited) po__j_num(w, o, "dropped_events", (double)t->dropped_events);
}

static void counters_json(po__jw *w, cJSON *prof, const po_profile_counters *c) {
  cJSON *o = po__j_obj(w, prof, "counters");
  po__j_num(w, o, "truncated_names", (double)c->truncated_names);
  po__j_num(w, o, "null_names", (double)c->null_names);
  po__j_num(w, o, "unmatched_ends", (double)c->unmatched_ends);
  po__j_num(w, o, "open_at_exit", (double)c->open_at_exit);
  po__j_num(w, o, "depth_overflows", (double)c->depth_overflows);
  po__j_num(w, o, "site_overflows", (double)c->site_overflows);
}

static void timeline_json(po__jw *w, cJSON *prof, const po__profile_snapshot *p) {
  cJSON *tl = po__j_obj(w, prof, "timeline");
  po__j_bool(w, tl, "enabled", p->timeline_enabled);
  cJSON *ev = po__j_arr(w, tl, "events");
  for (size_t i = 0; i < p->nevents && !w->err; i++) {
    const po__prof_event *e = &p->events[i];
    cJSON *o = po__j_obj(w, ev, NULL);
    po__j_num(w, o, "tid", (double)e->tid);
    po__j_str(w, o, "name", e->name);
    po__j_num(w, o, "start_seconds", e->start_seconds);
    po__j_num(w, o, "dur_seconds", e->dur_seconds);
    po__j_num(w, o, "depth", e->depth);
  }
  po__j_num(w, tl, "not_exported_events", (double)p->not_exported_events);
}

void po__report_profile(po__jw *w, cJSON *root, const po__profile_snapshot *p) {
  cJSON *prof = po__j_obj(w, root, "profile");
  if (!p) return;
  po__j_num(w, prof, "wall_seconds", p->wall_seconds);
  po__j_num(w, prof, "profiled_seconds", p->profiled_seconds);
  po__j_num(w, prof, "dropped_events", (double)p->dropped_events);
  po__j_num(w, prof, "probe_cost_ns", p->probe_cost_ns);
  po__j_num(w, prof, "ns_per_tick", p->ns_per_tick);
  cJSON *funcs = po__j_arr(w, prof, "functions");
  for (size_t i = 0; i < p->nfunctions && !w->err; i++) function_json(w, funcs, &p->functions[i]);
  cJSON *tree = po__j_arr(w, prof, "call_tree");
  for (size_t i = 0; i < p->nnodes && !w->err; i++) node_json(w, tree, &p->nodes[i]);
  po__j_num(w, prof, "call_tree_truncated", (double)p->call_tree_truncated);
  cJSON *threads = po__j_arr(w, prof, "threads");
  for (size_t i = 0; i < p->nthreads && !w->err; i++) thread_json(w, threads, &p->threads[i]);
  po__j_num(w, prof, "threads_not_listed", (double)p->threads_not_listed);
  counters_json(w, prof, &p->counters);
  timeline_json(w, prof, p);
}
