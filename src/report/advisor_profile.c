/* Advisor rules over the profile: hot functions, many tiny calls, latency tails. */
#include "report/advisor.h"

#include <math.h>
#include <stdlib.h>

typedef struct fn {
  const cJSON *f;
  const char *name;
  double self, total, calls, avg, p50, p99, max;
} fn;

static int cmp_self_desc(const void *x, const void *y) {
  double a = ((const fn *)x)->self, b = ((const fn *)y)->self;
  return (a < b) - (a > b);
}

static void hot_function(po__adv *a, const fn *f, double share, size_t rank) {
  const char *when = rank == 0 ? "first" : "next";
  char b1[48], b2[48];
  cJSON *s = po__adv_suggest(a, "hot-function", "info", f->name,
                             "%s takes %s of the profiled time in its own code", f->name,
                             po__adv_fmt(b1, sizeof b1, share, "ratio"));
  po__adv_evidence(a, s, "self time share", share, "ratio");
  po__adv_evidence(a, s, "self time", f->self, "seconds");
  po__adv_evidence(a, s, "calls", f->calls, "count");
  po__adv_evidence(a, s, "average call", f->avg, "seconds");
  /* Many cheap calls: the count is the lever; few expensive ones: the body is. */
  if (f->calls >= 10000 && f->avg < 100e-6)
    po__adv_action(a, s,
                   "Optimize %s %s. It is called %.0f times at %s each: call it less often "
                   "(hoist it out of loops, cache its results, batch the work) rather than "
                   "shaving each call.",
                   f->name, when, f->calls, po__adv_fmt(b2, sizeof b2, f->avg, "seconds"));
  else
    po__adv_action(a, s,
                   "Optimize %s %s. Each of its %.0f calls takes %s on average: make the body "
                   "faster (a better algorithm, vectorized or compiled code, fewer allocations).",
                   f->name, when, f->calls, po__adv_fmt(b2, sizeof b2, f->avg, "seconds"));
}

static void tiny_calls(po__adv *a, const fn *f, double share) {
  char b1[48], b2[48];
  cJSON *s = po__adv_suggest(a, "tiny-calls", "info", f->name,
                             "%s is called %.0f times for %s each", f->name, f->calls,
                             po__adv_fmt(b1, sizeof b1, f->avg, "seconds"));
  po__adv_evidence(a, s, "calls", f->calls, "count");
  po__adv_evidence(a, s, "average call", f->avg, "seconds");
  po__adv_evidence(a, s, "total time", f->total, "seconds");
  po__adv_evidence(a, s, "total time share", share, "ratio");
  po__adv_action(a, s,
                 "Batch or inline %s: process many items per call (vectorize, pass arrays) or "
                 "let the compiler inline it. Calls this short are dominated by call and "
                 "profiling overhead (%s of the run in this function).",
                 f->name, po__adv_fmt(b2, sizeof b2, share, "ratio"));
}

/* The machine's mean CPU utilization when it was busy enough to preempt the job, else NaN. */
static double machine_busy(const po__adv *a) {
  po__adv_col cpu;
  po__adv_column(a, "cpu_utilization_ratio", "last", &cpu);
  return cpu.n >= PO__ADV_MIN_SAMPLES && cpu.mean >= PO__ADV_CPU_BUSY ? cpu.mean : NAN;
}

/* `others`: further functions with a tail, folded into this one when the machine was busy. */
static void latency_tail(po__adv *a, const fn *f, double busy_ratio, size_t others) {
  char b1[48], b2[48];
  int busy = isfinite(busy_ratio);
  cJSON *s = po__adv_suggest(a, "latency-tail", "info", f->name,
                             "%s has a slow tail: p99 %s against a median of %s", f->name,
                             po__adv_fmt(b1, sizeof b1, f->p99, "seconds"),
                             po__adv_fmt(b2, sizeof b2, f->p50, "seconds"));
  po__adv_evidence(a, s, "median call", f->p50, "seconds");
  po__adv_evidence(a, s, "p99 call", f->p99, "seconds");
  po__adv_evidence(a, s, "slowest call", f->max, "seconds");
  po__adv_evidence(a, s, "calls", f->calls, "count");
  if (busy) po__adv_evidence(a, s, "machine CPU utilization (mean)", busy_ratio, "ratio");
  if (others) po__adv_evidence(a, s, "other functions with such a tail", (double)others, "count");
  po__adv_action(a, s,
                 "Investigate the slowest 1%% of %s's calls: %sfirst-call warm-up, garbage or "
                 "allocator work, I/O, lock waits or an input-dependent path. Record a timeline "
                 "(PERFOPT_PROFILE_TIMELINE=1, then perfopt report --format trace) to see when "
                 "they happen.",
                 f->name,
                 busy ? "the machine was busy, so preemption by other processes is likely; else "
                      : "");
}

static int load(const cJSON *o, fn *f) {
  f->f = o;
  f->name = po__j_getstr(o, "name");
  f->self = po__adv_num(o, "self_seconds", NULL);
  f->total = po__adv_num(o, "total_seconds", NULL);
  f->calls = po__adv_num(o, "calls", NULL);
  f->avg = po__adv_num(o, "avg_seconds", NULL);
  f->p50 = po__adv_num(o, "p50_seconds", NULL);
  f->p99 = po__adv_num(o, "p99_seconds", NULL);
  f->max = po__adv_num(o, "max_seconds", NULL);
  return f->name != NULL;
}

void po__adv_rules_profile(po__adv *a) {
  double prof = a->profiled_seconds;
  const cJSON *funcs = po__j_get(a->profile, "functions");
  int n = cJSON_GetArraySize(funcs);
  if (prof < PO__ADV_MIN_PROFILED_S || n <= 0) return;
  fn *v = po__malloc((size_t)n * sizeof *v);
  if (!v) {
    a->w.err = PO_ENOMEM;
    return;
  }
  size_t k = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, funcs) {
    if (k < (size_t)n && load(o, &v[k])) k++;
  }
  qsort(v, k, sizeof *v, cmp_self_desc);
  for (size_t i = 0, named = 0; i < k && named < PO__ADV_HOT_MAX; i++) {
    double share = v[i].self / prof;
    if (share < PO__ADV_HOT_SHARE) break;
    hot_function(a, &v[i], share, named);
    named++;
  }
  for (size_t i = 0; i < k; i++) {
    double share = v[i].total / prof;
    if (v[i].calls >= PO__ADV_TINY_CALLS && v[i].avg > 0 && v[i].avg < PO__ADV_TINY_AVG_S &&
        share >= PO__ADV_TINY_SHARE)
      tiny_calls(a, &v[i], share);
  }
  /* A caller inherits its callees' tails: only functions with their own time qualify. On a
   * busy machine the likely common cause is preemption: one suggestion names the largest. */
  double busy = machine_busy(a);
  size_t tails[PO__ADV_HOT_MAX], nt = 0, more = 0;
  for (size_t i = 0; i < k && v[i].self / prof >= PO__ADV_TAIL_SHARE; i++) {
    if (v[i].calls < PO__ADV_TAIL_CALLS || !(v[i].p50 > 0) ||
        v[i].p99 < PO__ADV_TAIL_FACTOR * v[i].p50)
      continue;
    if (nt < PO__ADV_HOT_MAX && (nt == 0 || !isfinite(busy)))
      tails[nt++] = i;
    else
      more++;
  }
  for (size_t i = 0; i < nt; i++) latency_tail(a, &v[tails[i]], busy, isfinite(busy) ? more : 0);
  free(v);
}
