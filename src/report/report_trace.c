/* The report as Chrome Trace Event JSON (Perfetto, chrome://tracing): zones as complete events
 * per thread, resource and memory series as counters, phases as async spans, threshold firings,
 * cleanups and guards as instant events. Written straight from the model with a streaming
 * buffer: a million zones must not build a second tree. Times are microseconds on the run's
 * clock (the profile's timeline starts when profiling did: it is shifted by the difference of
 * the run's and the profile's wall times, both taken when the report was built). */
#include "report/outbuf.h"
#include "report/report_build.h"

#include <math.h>
#include <string.h>

typedef struct trace_ctx {
  const cJSON *root;
  double pid;
  int64_t pid_i;
  double zone_offset; /* seconds from the run's start to the profile's */
} trace_ctx;

/* The common tail of an event: ,"ts":..,"pid":..,"tid":.. */
static void ts_pid_tid(po__ob *o, double seconds, double pid, double tid) {
  po__ob_puts(o, ",\"ts\":");
  po__ob_fixed3(o, seconds * 1e6);
  po__ob_puts(o, ",\"pid\":");
  po__ob_num(o, pid, "0");
  po__ob_puts(o, ",\"tid\":");
  po__ob_num(o, tid, "0");
}

static void metadata(po__ob *o, const char *what, double pid, double tid, const char *name) {
  po__ob_puts(o, "{\"name\":\"");
  po__ob_puts(o, what);
  po__ob_puts(o, "\",\"ph\":\"M\",\"pid\":");
  po__ob_num(o, pid, "0");
  po__ob_puts(o, ",\"tid\":");
  po__ob_num(o, tid, "0");
  po__ob_puts(o, ",\"args\":{\"name\":");
  po__ob_json_str(o, name);
  po__ob_puts(o, "}},\n");
}

static void names(po__ob *o, const trace_ctx *c) {
  const cJSON *a0 = cJSON_GetArrayItem(po__j_get(po__j_get(c->root, "run"), "argv"), 0);
  metadata(o, "process_name", c->pid, 0, cJSON_IsString(a0) ? a0->valuestring : "perfopt run");
  const cJSON *t;
  cJSON_ArrayForEach(t, po__j_get(po__j_get(c->root, "profile"), "threads")) {
    const char *name = po__j_getstr(t, "name");
    const cJSON *tid = po__j_get(t, "tid");
    if (cJSON_IsNumber(tid) && name && *name) metadata(o, "thread_name", c->pid, tid->valuedouble, name);
  }
}

/* One zone: the event's members are read in one pass (this runs a million times). */
static void zone(po__ob *o, const cJSON *e, const trace_ctx *c) {
  const char *name = "?";
  double tid = 0, start = 0, dur = 0;
  for (const cJSON *m = e->child; m; m = m->next) {
    const char *k = m->string;
    if (!k) continue;
    if (k[0] == 'n' && cJSON_IsString(m) && !strcmp(k, "name"))
      name = m->valuestring;
    else if (k[0] == 't' && cJSON_IsNumber(m) && !strcmp(k, "tid"))
      tid = m->valuedouble;
    else if (k[0] == 's' && cJSON_IsNumber(m) && !strcmp(k, "start_seconds"))
      start = m->valuedouble;
    else if (k[0] == 'd' && cJSON_IsNumber(m) && !strcmp(k, "dur_seconds"))
      dur = m->valuedouble;
  }
  /* one claim per event: this loop is the trace's cost */
  size_t nlen = strlen(name);
  char *p = po__ob_claim(o, 6 * nlen + 160);
  if (!p) return;
  char *q = p;
  memcpy(q, "{\"name\":", 8);
  q = po__fmt_json_str(q + 8, name);
  static const char mid[] = ",\"cat\":\"zone\",\"ph\":\"X\",\"dur\":";
  memcpy(q, mid, sizeof mid - 1);
  q = po__fmt_fixed3(q + sizeof mid - 1, dur * 1e6);
  memcpy(q, ",\"ts\":", 6);
  q = po__fmt_fixed3(q + 6, (c->zone_offset + start) * 1e6);
  memcpy(q, ",\"pid\":", 7);
  q = po__fmt_i64(q + 7, c->pid_i);
  memcpy(q, ",\"tid\":", 7);
  q = po__fmt_i64(q + 7, isfinite(tid) && fabs(tid) < 9e15 ? (int64_t)tid : 0);
  memcpy(q, "},\n", 3);
  po__ob_advance(o, (size_t)(q + 3 - p));
}

/* Counter events of one series (its `last` column), on the process's track. */
static void counter(po__ob *o, const cJSON *series, const trace_ctx *c) {
  const char *name = po__j_getstr(series, "name");
  const cJSON *t = po__j_get(series, "t_seconds"), *v = po__j_get(series, "last");
  if (!name || !cJSON_IsArray(t) || !cJSON_IsArray(v)) return;
  const char *unit = po__j_getstr(series, "unit");
  for (const cJSON *ti = t->child, *vi = v->child; ti && vi; ti = ti->next, vi = vi->next) {
    if (!cJSON_IsNumber(ti) || !cJSON_IsNumber(vi) || !isfinite(vi->valuedouble)) continue;
    po__ob_puts(o, "{\"name\":");
    po__ob_json_str(o, name);
    po__ob_puts(o, ",\"cat\":\"resource\",\"ph\":\"C\"");
    ts_pid_tid(o, ti->valuedouble, c->pid, 0);
    po__ob_puts(o, ",\"args\":{");
    po__ob_json_str(o, unit ? unit : "value");
    po__ob_puts(o, ":");
    po__ob_num(o, vi->valuedouble, "0");
    po__ob_puts(o, "}},\n");
  }
}

static void phase_edge(po__ob *o, const char *ph, const char *name, int id, double t,
                       const trace_ctx *c) {
  po__ob_puts(o, "{\"name\":");
  po__ob_json_str(o, name);
  po__ob_printf(o, ",\"cat\":\"phase\",\"ph\":\"%s\",\"id\":%d", ph, id);
  ts_pid_tid(o, t, c->pid, 0);
  po__ob_puts(o, "},\n");
}

static void phases(po__ob *o, const trace_ctx *c) {
  int id = 1;
  const cJSON *p;
  cJSON_ArrayForEach(p, po__j_get(po__j_get(c->root, "resources"), "phases")) {
    const char *name = po__j_getstr(p, "name");
    double a = po__j_getnum(p, "start_seconds"), e = po__j_getnum(p, "end_seconds");
    if (!(e >= a)) continue;
    phase_edge(o, "b", name ? name : "phase", id, a, c);
    phase_edge(o, "e", name ? name : "phase", id, e, c);
    id++;
  }
}

/* Instant events ("ph":"i", process scope) for one record list; `label` names the event from a
 * member of the record, `args` lists the members copied as arguments. */
static void instants(po__ob *o, const cJSON *list, const char *cat, const char *prefix,
                     const char *label, const char *const *args, const trace_ctx *c) {
  const cJSON *r;
  cJSON_ArrayForEach(r, list) {
    const cJSON *t = po__j_get(r, "t_seconds");
    if (!cJSON_IsNumber(t)) continue;
    char name[200];
    const char *l = po__j_getstr(r, label);
    snprintf(name, sizeof name, "%s%s", prefix, l ? l : "");
    po__ob_puts(o, "{\"name\":");
    po__ob_json_str(o, name);
    po__ob_printf(o, ",\"cat\":\"%s\",\"ph\":\"i\",\"s\":\"p\"", cat);
    ts_pid_tid(o, t->valuedouble, c->pid, 0);
    po__ob_puts(o, ",\"args\":{");
    int first = 1;
    for (size_t i = 0; args[i]; i++) {
      const cJSON *v = po__j_get(r, args[i]);
      if (!cJSON_IsNumber(v) && !cJSON_IsString(v)) continue;
      if (!first) po__ob_puts(o, ",");
      first = 0;
      po__ob_json_str(o, args[i]);
      po__ob_puts(o, ":");
      if (cJSON_IsNumber(v))
        po__ob_num(o, v->valuedouble, "null");
      else
        po__ob_json_str(o, v->valuestring);
    }
    po__ob_puts(o, "}},\n");
  }
}

static int render(po__ob *o, const void *arg) {
  const trace_ctx *c = arg;
  const cJSON *res = po__j_get(c->root, "resources"), *mem = po__j_get(c->root, "memory");
  po__ob_puts(o, "{\"traceEvents\":[\n");
  names(o, c);
  const cJSON *e;
  const cJSON *zones = po__j_get(po__j_get(po__j_get(c->root, "profile"), "timeline"), "events");
  cJSON_ArrayForEach(e, zones) {
    zone(o, e, c);
  }
  cJSON_ArrayForEach(e, po__j_get(res, "series")) {
    counter(o, e, c);
  }
  phases(o, c);
  static const char *const ev_args[] = {"metric", "value", "threshold", "level", "freed_bytes",
                                        NULL};
  static const char *const cl_args[] = {"level", "type", "handler", "freed_bytes", NULL};
  static const char *const gd_args[] = {"required_bytes", "available_bytes", "ran", "result",
                                        NULL};
  instants(o, po__j_get(res, "events"), "threshold", "threshold: ", "metric", ev_args, c);
  instants(o, po__j_get(mem, "cleanups"), "cleanup", "cleanup: ", "handler", cl_args, c);
  instants(o, po__j_get(mem, "guards"), "guard", "guard: ", "name", gd_args, c);
  /* the last element: no trailing comma problem, and it names the writer */
  po__ob_puts(o, "{\"name\":\"perfopt\",\"ph\":\"M\",\"pid\":");
  po__ob_num(o, c->pid, "0");
  po__ob_puts(o, ",\"tid\":0,\"args\":{\"perfopt_version\":");
  const char *ver = po__j_getstr(c->root, "perfopt_version");
  po__ob_json_str(o, ver ? ver : "");
  po__ob_puts(o, "}}\n],\"displayTimeUnit\":\"ms\"}\n");
  return o->err;
}

static void ctx_of(const po_report *rep, trace_ctx *c) {
  c->root = po_report_json(rep);
  const cJSON *run = po__j_get(c->root, "run"), *prof = po__j_get(c->root, "profile");
  c->pid = po__j_getnum(run, "pid");
  c->pid_i = isfinite(c->pid) && fabs(c->pid) < 9e15 ? (int64_t)c->pid : 0;
  double off = po__j_getnum(run, "wall_seconds") - po__j_getnum(prof, "wall_seconds");
  c->zone_offset = isfinite(off) && off > 0 ? off : 0;
}

int po_report_write_trace(const po_report *rep, FILE *out) {
  if (!rep || !out) return PO_EINVAL;
  trace_ctx c;
  ctx_of(rep, &c);
  return po__ob_write(out, render, &c);
}

int po_report_save_trace(const po_report *rep, const char *path, char *errbuf, size_t errlen) {
  if (!rep) return po__errf(PO_EINVAL, errbuf, errlen, "no report or path given");
  trace_ctx c;
  ctx_of(rep, &c);
  return po__ob_save(path, render, &c, errbuf, errlen);
}
