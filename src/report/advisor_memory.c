/* Advisor rules over memory: headroom against the effective limit, a leak suspect across
 * phases, swap activity and memory-pressure stalls. */
#include "report/advisor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int has_gpus(const po__adv *a) {
  return cJSON_GetArraySize(po__j_get(a->gpu, "devices")) > 0;
}

static void near_limit(po__adv *a, double peak, double limit, const char *source) {
  double ratio = peak / limit;
  char b1[48], b2[48], b3[48];
  cJSON *s = po__adv_suggest(a, "memory-near-limit",
                             ratio >= PO__ADV_MEM_CRIT ? "critical" : "warning", NULL,
                             "Peak memory reached %s of the %s limit: risk of an OOM kill",
                             po__adv_fmt(b1, sizeof b1, ratio, "ratio"), source);
  po__adv_evidence(a, s, "peak RSS", peak, "bytes");
  po__adv_evidence(a, s, "effective memory limit", limit, "bytes");
  po__adv_evidence(a, s, "peak over limit", ratio, "ratio");
  int cleanups = cJSON_GetArraySize(po__j_get(a->memory, "cleanups"));
  po__adv_evidence(a, s, "cleanups run", cleanups, "count");
  /* If memory grows with the batch, the batch that brings the peak to the target is this share
   * of the current one (po_batch_advise refines it from two measurements). */
  double scale = PO__ADV_MEM_TARGET / ratio;
  po__adv_action(a, s,
                 "Lower the batch size to about %.0f%% of the current one (the peak would be near "
                 "%s of the limit; po_batch_advise computes the exact size from two "
                 "measurements)%s, and keep %s of headroom.",
                 floor(scale * 100), po__adv_fmt(b2, sizeof b2, PO__ADV_MEM_TARGET, "ratio"),
                 cleanups ? ""
                          : "; register cleanup handlers (po_register_cleanup) so the monitor can "
                            "free caches before the kernel kills the job",
                 po__adv_fmt(b3, sizeof b3, limit - PO__ADV_MEM_TARGET * limit, "bytes"));
}

static void roomy(po__adv *a, double peak, double limit, const char *source) {
  double ratio = peak / limit;
  double factor = PO__ADV_MEM_TARGET / ratio;
  char b1[48], b2[48];
  cJSON *s = po__adv_suggest(a, "memory-headroom", "info", NULL,
                             "Peak memory used only %s of the %s limit",
                             po__adv_fmt(b1, sizeof b1, ratio, "ratio"), source);
  po__adv_evidence(a, s, "peak RSS", peak, "bytes");
  po__adv_evidence(a, s, "effective memory limit", limit, "bytes");
  po__adv_evidence(a, s, "peak over limit", ratio, "ratio");
  po__adv_action(a, s,
                 "There is room to raise the batch size (or the cache budget): up to about %.1fx "
                 "before the peak reaches %s of the limit, if memory grows with the batch. Measure "
                 "two sizes and let po_batch_advise pick the largest that fits.",
                 floor(factor * 10) / 10, po__adv_fmt(b2, sizeof b2, PO__ADV_MEM_TARGET, "ratio"));
}

static void headroom(po__adv *a) {
  int ok_peak, ok_limit;
  double peak = po__adv_num(a->memory, "peak_rss_bytes", &ok_peak);
  double limit = po__adv_num(a->memory, "limit_bytes", &ok_limit);
  if (!ok_peak || !ok_limit || peak <= 0 || limit <= 0) return;
  const char *src = po__j_getstr(a->memory, "limit_source");
  const char *source = src && strcmp(src, "cgroup") == 0 ? "cgroup" : "system";
  double ratio = peak / limit;
  if (ratio >= PO__ADV_MEM_WARN)
    near_limit(a, peak, limit, source);
  else if (ratio < PO__ADV_MEM_ROOMY && peak >= PO__ADV_MEM_ROOMY_MIN && !has_gpus(a))
    roomy(a, peak, limit, source); /* with GPUs, device memory bounds the batch (gpu rules) */
}

/* ---- leak suspect -------------------------------------------------------------------------- */

/* The heap tracker's top site (memory.heap, docs/formats.md): the largest leak of an ended
 * process, else the site holding the most at the peak. NULL without heap data. Its live bytes
 * per phase would be the better series than RSS, but the heap timeline counts from the heap
 * session's start, not the run's, so it cannot be cut by phase here. */
static const char *heap_top_site(const po__adv *a, double *bytes) {
  const cJSON *heap = po__j_get(a->memory, "heap");
  const cJSON *s = cJSON_GetArrayItem(po__j_get(heap, "leaks"), 0);
  const char *key = "live_bytes";
  if (!po__j_getstr(s, "name")) {
    s = cJSON_GetArrayItem(po__j_get(heap, "top_sites_at_peak"), 0);
    key = "bytes_at_peak";
  }
  *bytes = po__adv_num(s, key, NULL);
  return po__j_getstr(s, "name");
}

/* The process's RSS at the end of each phase: the last sample inside it (its max column when
 * recorded). Returns how many phases have a sample. */
static size_t rss_per_phase(po__adv *a, const cJSON *phases, double *out, size_t nphases) {
  size_t nt, nv;
  double *t = po__adv_values(a, "process_rss_bytes", "t_seconds", &nt);
  double *v = po__adv_values(a, "process_rss_bytes", "max", &nv);
  if (!v) v = po__adv_values(a, "process_rss_bytes", "last", &nv);
  size_t n = nt < nv ? nt : nv, k = 0;
  const cJSON *p;
  cJSON_ArrayForEach(p, phases) {
    if (k == nphases) break;
    double start = po__adv_num(p, "start_seconds", NULL), end = po__adv_num(p, "end_seconds", NULL);
    double last = NAN;
    for (size_t i = 0; t && v && i < n; i++)
      if (t[i] >= start && t[i] <= end && isfinite(v[i])) last = v[i];
    if (!isfinite(last)) break;
    out[k++] = last;
  }
  free(t);
  free(v);
  return k;
}

static void leak_suspect(po__adv *a) {
  const cJSON *phases = po__j_get(a->resources, "phases");
  int np = cJSON_GetArraySize(phases);
  if (np < PO__ADV_LEAK_PHASES) return;
  double *live = po__malloc((size_t)np * sizeof *live);
  if (!live) {
    a->w.err = PO_ENOMEM;
    return;
  }
  double site_bytes = 0;
  const char *site = heap_top_site(a, &site_bytes);
  size_t k = rss_per_phase(a, phases, live, (size_t)np);
  int growing = k >= PO__ADV_LEAK_PHASES;
  for (size_t i = 1; growing && i < k; i++)
    if (!(live[i] > live[i - 1])) growing = 0;
  double growth = k ? live[k - 1] - live[0] : 0;
  if (growing && growth >= PO__ADV_LEAK_MIN_BYTES && growth >= PO__ADV_LEAK_MIN_SHARE * live[0]) {
    char b1[48], b2[48];
    double per = growth / (double)(k - 1);
    cJSON *s = po__adv_suggest(a, "leak-suspect", "warning", site,
                               "RSS grew in each of %zu phases, by %s per phase", k,
                               po__adv_fmt(b1, sizeof b1, per, "bytes"));
    po__adv_evidence(a, s, "phases", (double)k, "count");
    po__adv_evidence(a, s, "at the end of the first phase", live[0], "bytes");
    po__adv_evidence(a, s, "at the end of the last phase", live[k - 1], "bytes");
    po__adv_evidence(a, s, "growth per phase", per, "bytes");
    if (site) po__adv_evidence(a, s, "bytes held by the top heap site", site_bytes, "bytes");
    po__adv_action(a, s,
                   "Something keeps memory from one phase to the next (%s more after each). Look "
                   "for data kept across phases: lists that only grow, caches without a budget, "
                   "references held by closures or a history of losses kept as tensors%s%s.%s",
                   po__adv_fmt(b2, sizeof b2, per, "bytes"), site ? "; start at " : "",
                   site ? site : "",
                   site ? ""
                        : " perfopt's heap tracker (docs/heap.md) names the allocating site.");
  }
  free(live);
}

/* Processes that ended still holding heap blocks (the heap tracker's leaks at exit). */
static void heap_leak(po__adv *a) {
  const cJSON *heap = po__j_get(a->memory, "heap");
  int ok;
  double leaked = po__adv_num(heap, "leaked_bytes", &ok);
  if (!ok || leaked < PO__ADV_LEAK_MIN_BYTES) return;
  const cJSON *top = cJSON_GetArrayItem(po__j_get(heap, "leaks"), 0);
  const char *site = po__j_getstr(top, "name");
  char b1[48];
  cJSON *s = po__adv_suggest(a, "heap-leak", "warning", site,
                             "%s of heap was never freed by processes that ended",
                             po__adv_fmt(b1, sizeof b1, leaked, "bytes"));
  po__adv_evidence(a, s, "leaked bytes", leaked, "bytes");
  po__adv_evidence(a, s, "leaked allocations", po__adv_num(heap, "leaked_allocations", NULL),
                   "count");
  if (site) po__adv_evidence(a, s, "at the top site", po__adv_num(top, "live_bytes", NULL), "bytes");
  po__adv_action(a, s,
                 "Free what %s allocates once it is no longer needed (or keep it in a budgeted "
                 "cache): a worker process that leaks this much per task runs out of memory in a "
                 "long job.",
                 site ? site : "the top leak site (the HTML report's heap section lists them)");
}

/* ---- swap and pressure --------------------------------------------------------------------- */

static void swap_activity(po__adv *a) {
  po__adv_col c;
  po__adv_column(a, "swap_used_bytes", "max", &c); /* TODO(sampler): not sampled yet */
  char b1[48];
  if (c.n >= 2 && c.max - c.first >= PO__ADV_SWAP_GROWTH) {
    cJSON *s = po__adv_suggest(a, "swap-activity", "warning", NULL,
                               "The system swapped out %s during the run",
                               po__adv_fmt(b1, sizeof b1, c.max - c.first, "bytes"));
    po__adv_evidence(a, s, "swap used at the start", c.first, "bytes");
    po__adv_evidence(a, s, "swap used at most", c.max, "bytes");
    po__adv_action(a, s, "Memory ran short and pages went to swap, which slows everything that "
                         "touches them. Lower the batch size or cache budgets, or run where more "
                         "memory is free.");
    return;
  }
  int ok_used, ok_total;
  double used = po__adv_num(a->system, "swap_used_bytes", &ok_used);
  double total = po__adv_num(a->system, "swap_total_bytes", &ok_total);
  if (ok_used && ok_total && total > 0 && used >= PO__ADV_SWAP_USED &&
      used >= PO__ADV_SWAP_SHARE * total) {
    cJSON *s = po__adv_suggest(a, "swap-activity", "warning", NULL, "%s of swap is in use",
                               po__adv_fmt(b1, sizeof b1, used, "bytes"));
    po__adv_evidence(a, s, "swap used", used, "bytes");
    po__adv_evidence(a, s, "swap total", total, "bytes");
    po__adv_action(a, s, "Memory has run short on this machine: jobs started now may page. Check "
                         "what holds memory (perfopt top) before a long run.");
  }
}

static void pressure(po__adv *a) {
  po__adv_col some, full;
  /* TODO(sampler): the pressure series are not sampled yet; a sysinfo report has avg10. */
  po__adv_column(a, "memory_pressure_some_ratio", "last", &some);
  po__adv_column(a, "memory_pressure_full_ratio", "last", &full);
  int ok_some = some.n > 0, ok_full = full.n > 0;
  double vs = some.mean, vf = full.mean;
  const char *over = "during the run (mean)";
  if (!ok_some) {
    vs = po__adv_num(a->system, "memory_pressure_some_avg10_ratio", &ok_some);
    vf = po__adv_num(a->system, "memory_pressure_full_avg10_ratio", &ok_full);
    over = "over the last 10 s";
  }
  if (!ok_some || vs < PO__ADV_PSI_SOME) return;
  char b1[48];
  int crit = ok_full && vf >= PO__ADV_PSI_FULL;
  cJSON *s = po__adv_suggest(a, "memory-pressure", crit ? "critical" : "warning", NULL,
                             "Tasks stalled on memory %s of the time %s",
                             po__adv_fmt(b1, sizeof b1, vs, "ratio"), over);
  po__adv_evidence(a, s, "some tasks stalled (PSI some)", vs, "ratio");
  if (ok_full) po__adv_evidence(a, s, "all tasks stalled (PSI full)", vf, "ratio");
  po__adv_action(a, s, "The kernel is reclaiming memory and the job waits for it. Lower the "
                       "batch size or cache budgets, free what a phase no longer needs, or set a "
                       "lower MEMORY_THRESHOLD so cleanup starts earlier.");
}

void po__adv_rules_memory(po__adv *a) {
  headroom(a);
  leak_suspect(a);
  heap_leak(a);
  swap_activity(a);
  pressure(a);
}
