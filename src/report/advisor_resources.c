/* Advisor rules over the resource timelines: GPUs, I/O-bound phases and caches. */
#include "report/advisor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GPU --------------------------------------------------------------------------------- */

/* Whether this run's process uses the device: it is listed among the device's processes, or
 * (when NVML gave no list) the device holds some memory. */
static int uses_device(const po__adv *a, const cJSON *dev, double peak_ratio) {
  const cJSON *procs = po__j_get(dev, "processes");
  int ok;
  double pid = po__adv_num(po__j_get(a->root, "run"), "pid", &ok);
  if (cJSON_IsArray(procs) && ok) {
    const cJSON *p;
    cJSON_ArrayForEach(p, procs) {
      if (po__adv_num(p, "pid", NULL) == pid) return 1;
    }
    return 0;
  }
  return peak_ratio >= 0.05;
}

/* The system is CPU-bound: the machine's mean utilization, or this process's cores over the
 * cores it may use. */
static double cpu_busy(const po__adv *a, double *cores_used) {
  po__adv_col sys, proc;
  po__adv_column(a, "cpu_utilization_ratio", "last", &sys);
  po__adv_column(a, "process_cpu_ratio", "last", &proc);
  const cJSON *host = po__j_get(a->root, "host");
  double cores = po__adv_num(host, "cores_allowed", NULL);
  double limit = po__adv_num(host, "cgroup_cpu_limit", NULL);
  if (limit > 0 && (cores <= 0 || limit < cores)) cores = limit;
  *cores_used = proc.n ? proc.mean : NAN;
  double busy = sys.n ? sys.mean : 0;
  if (proc.n && cores > 0 && proc.mean / cores > busy) busy = proc.mean / cores;
  return busy;
}

static void gpu_memory_full(po__adv *a, int g, const char *target, double peak, double total) {
  char b1[48];
  cJSON *s = po__adv_suggest(a, "gpu-memory-full", "warning", target,
                             "GPU %d memory peaked at %s of its capacity", g,
                             po__adv_fmt(b1, sizeof b1, peak / total, "ratio"));
  po__adv_evidence(a, s, "peak device memory used", peak, "bytes");
  po__adv_evidence(a, s, "device memory", total, "bytes");
  po__adv_evidence(a, s, "peak over capacity", peak / total, "ratio");
  po__adv_action(a, s, "One larger batch or a fragmented allocator away from an out-of-memory "
                       "error: accumulate gradients over smaller micro-batches, use a smaller "
                       "batch or mixed precision, and free cached blocks between phases "
                       "(a gpu cleanup handler).");
}

static void gpu_input_bound(po__adv *a, int g, const char *target, double util, double busy,
                            double cores_used) {
  char b1[48], b2[48];
  cJSON *s = po__adv_suggest(a, "gpu-input-bound", "warning", target,
                             "GPU %d was busy only %s of the time while the CPU was %s busy: the "
                             "input pipeline is the bottleneck",
                             g, po__adv_fmt(b1, sizeof b1, util, "ratio"),
                             po__adv_fmt(b2, sizeof b2, busy, "ratio"));
  po__adv_evidence(a, s, "mean GPU utilization", util, "ratio");
  po__adv_evidence(a, s, "mean CPU utilization", busy, "ratio");
  if (isfinite(cores_used)) po__adv_evidence(a, s, "this process's CPU", cores_used, "cores");
  po__adv_action(a, s, "Feed the GPU faster: more data-loader workers, decode and augment once "
                       "and cache the result (a po_cache or on disk), pinned memory with "
                       "prefetching, or move augmentation to the GPU.");
}

static void gpu_underused(po__adv *a, int g, const char *target, double util, double mem) {
  char b1[48], b2[48];
  cJSON *s = po__adv_suggest(a, "gpu-underused", "info", target,
                             "GPU %d was busy %s of the time and used at most %s of its memory",
                             g, po__adv_fmt(b1, sizeof b1, util, "ratio"),
                             po__adv_fmt(b2, sizeof b2, mem, "ratio"));
  po__adv_evidence(a, s, "mean GPU utilization", util, "ratio");
  po__adv_evidence(a, s, "peak memory over capacity", mem, "ratio");
  po__adv_action(a, s,
                 "Raise the batch size: up to about %.1fx keeps the peak under %s of the device "
                 "if memory grows with the batch (po_batch_advise with device set computes it). "
                 "Larger batches keep the GPU busier per launch.",
                 floor(PO__ADV_MEM_TARGET / fmax(mem, 0.01) * 10) / 10,
                 po__adv_fmt(b2, sizeof b2, PO__ADV_MEM_TARGET, "ratio"));
}

static void gpu_device_rules(po__adv *a, const cJSON *dev) {
  int ok;
  double idx = po__adv_num(dev, "index", &ok);
  double total = po__adv_num(dev, "memory_total_bytes", NULL);
  if (!ok || idx < 0 || idx > 63 || total <= 0) return;
  int g = (int)idx;
  char nmem[48], nutil[48], target[32];
  snprintf(nmem, sizeof nmem, "gpu%d_memory_used_bytes", g);
  snprintf(nutil, sizeof nutil, "gpu%d_utilization_ratio", g);
  snprintf(target, sizeof target, "gpu%d", g);
  po__adv_col mem, util;
  po__adv_column(a, nmem, "max", &mem);
  if (!mem.n) po__adv_column(a, nmem, "last", &mem);
  po__adv_column(a, nutil, "last", &util);
  if (mem.n < PO__ADV_MIN_SAMPLES || util.n < PO__ADV_MIN_SAMPLES) return;
  double peak_ratio = mem.max / total;
  if (!uses_device(a, dev, peak_ratio)) return;
  if (peak_ratio >= PO__ADV_GPU_FULL) {
    gpu_memory_full(a, g, target, mem.max, total);
    return;
  }
  double cores_used;
  double busy = cpu_busy(a, &cores_used);
  if (util.mean < PO__ADV_GPU_INPUT_UTIL && busy >= PO__ADV_CPU_BUSY)
    gpu_input_bound(a, g, target, util.mean, busy, cores_used);
  else if (util.mean < PO__ADV_GPU_LOW_UTIL && peak_ratio < PO__ADV_GPU_LOW_MEM)
    gpu_underused(a, g, target, util.mean, peak_ratio);
}

void po__adv_rules_gpu(po__adv *a) {
  const cJSON *dev;
  cJSON_ArrayForEach(dev, po__j_get(a->gpu, "devices")) {
    gpu_device_rules(a, dev);
  }
}

/* ---- I/O-bound phases and caches ------------------------------------------------------------ */

/* Hits over lookups of every cache together; NaN when there were none. */
static double overall_hit_ratio(const po__adv *a) {
  double h = 0, m = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, po__j_get(a->cache, "caches")) {
    h += po__adv_num(c, "hits", NULL);
    m += po__adv_num(c, "misses", NULL);
  }
  return h + m > 0 ? h / (h + m) : NAN;
}

static void io_bound(po__adv *a) {
  size_t nr, nc;
  double *rd = po__adv_values(a, "disk_read_bytes_per_second", "last", &nr);
  double *cpu = po__adv_values(a, "cpu_utilization_ratio", "last", &nc);
  size_t n = nr < nc ? nr : nc, valid = 0, hits = 0;
  double read_sum = 0, cpu_sum = 0;
  for (size_t i = 0; rd && cpu && i < n; i++) {
    if (!isfinite(rd[i]) || !isfinite(cpu[i])) continue;
    valid++;
    if (rd[i] >= PO__ADV_IO_READ_BPS && cpu[i] < PO__ADV_IO_CPU_IDLE) {
      hits++;
      read_sum += rd[i];
      cpu_sum += cpu[i];
    }
  }
  free(rd);
  free(cpu);
  if (valid < PO__ADV_MIN_SAMPLES || (double)hits < PO__ADV_IO_SHARE * (double)valid) return;
  double share = (double)hits / (double)valid, hr = overall_hit_ratio(a);
  char b1[48], b2[48], b3[48];
  cJSON *s = po__adv_suggest(a, "io-bound", "warning", NULL,
                             "I/O-bound for %s of the run: reading %s while the CPU was %s busy",
                             po__adv_fmt(b1, sizeof b1, share, "ratio"),
                             po__adv_fmt(b2, sizeof b2, read_sum / (double)hits, "bytes_per_second"),
                             po__adv_fmt(b3, sizeof b3, cpu_sum / (double)hits, "ratio"));
  po__adv_evidence(a, s, "share of samples I/O-bound", share, "ratio");
  po__adv_evidence(a, s, "mean read rate then", read_sum / (double)hits, "bytes_per_second");
  po__adv_evidence(a, s, "mean CPU utilization then", cpu_sum / (double)hits, "ratio");
  if (isfinite(hr)) po__adv_evidence(a, s, "cache hit ratio", hr, "ratio");
  if (isfinite(hr))
    po__adv_action(a, s,
                   "Cache the data you read again: the caches hit only %s, so raise their budget "
                   "or cache earlier in the pipeline (decoded, not raw). Also read in larger "
                   "blocks and prefetch in the background.",
                   po__adv_fmt(b1, sizeof b1, hr, "ratio"));
  else
    po__adv_action(a, s, "Cache the data you read again in memory (a po_cache with a byte budget "
                         "and a loader), keep decoded data instead of re-parsing files, read in "
                         "larger blocks and prefetch in the background.");
}

/* The working set from the trace of insertions (every miss that loaded inserted an entry):
 * distinct keys inserted times the mean inserted size. Returns 0 when the report lacks the trace;
 * *reuse is the share of insertions that re-inserted a key seen before. */
static int working_set(const cJSON *c, double *est, double *reuse) {
  int ok_n, ok_b, ok_d;
  double n = po__adv_num(c, "insertions", &ok_n), bytes = po__adv_num(c, "inserted_bytes", &ok_b);
  double distinct = po__adv_num(c, "distinct_keys_inserted", &ok_d);
  if (!ok_n || !ok_b || !ok_d || n <= 0 || distinct <= 0) return 0;
  if (distinct > n) distinct = n; /* the estimate's error */
  *est = distinct * bytes / n;
  *reuse = (n - distinct) / n;
  return 1;
}

static void cache_too_small(po__adv *a, const cJSON *c, const char *name, double hr) {
  double bytes = po__adv_num(c, "bytes", NULL), budget = po__adv_num(c, "budget_bytes", NULL);
  double est = 0, reuse = 0;
  int traced = working_set(c, &est, &reuse);
  /* Data read once (a scan) misses whatever the budget: that is no budget problem. */
  if (traced && reuse < 0.2) return;
  char b1[48], b2[48], b3[48];
  cJSON *s = po__adv_suggest(a, "cache-too-small", "warning", name,
                             "Cache %s hits only %s with its %s budget full", name,
                             po__adv_fmt(b1, sizeof b1, hr, "ratio"),
                             po__adv_fmt(b2, sizeof b2, budget, "bytes"));
  po__adv_evidence(a, s, "hit ratio", hr, "ratio");
  po__adv_evidence(a, s, "bytes cached", bytes, "bytes");
  po__adv_evidence(a, s, "budget", budget, "bytes");
  po__adv_evidence(a, s, "evictions", po__adv_num(c, "evictions", NULL), "count");
  po__adv_evidence(a, s, "misses", po__adv_num(c, "misses", NULL), "count");
  if (traced) {
    po__adv_evidence(a, s, "distinct keys inserted", po__adv_num(c, "distinct_keys_inserted", NULL),
                     "count");
    po__adv_evidence(a, s, "estimated working set", est, "bytes");
  }
  if (traced && est > budget)
    po__adv_action(a, s,
                   "The working set (about %s: the distinct keys that went through the cache "
                   "times their mean size) does not fit in %s, so entries are evicted before they "
                   "are used again. Raise the budget to about %s if memory allows, or cache "
                   "smaller entries.",
                   po__adv_fmt(b1, sizeof b1, est, "bytes"),
                   po__adv_fmt(b2, sizeof b2, budget, "bytes"),
                   po__adv_fmt(b3, sizeof b3, ceil(est * 1.1 / 1048576) * 1048576, "bytes"));
  else
    po__adv_action(a, s, "Entries are evicted before they are used again: raise the budget if "
                         "memory allows, or cache smaller entries; an access pattern that cycles "
                         "over more data than the budget defeats LRU (s3fifo resists it).");
}

static void cache_oversized(po__adv *a, const cJSON *c, const char *name, double hr) {
  double bytes = po__adv_num(c, "bytes", NULL), budget = po__adv_num(c, "budget_bytes", NULL);
  double to = ceil(bytes * 1.25 / 1048576) * 1048576;
  char b1[48], b2[48], b3[48];
  cJSON *s = po__adv_suggest(a, "cache-oversized", "info", name,
                             "Cache %s hits %s using only %s of its %s budget", name,
                             po__adv_fmt(b1, sizeof b1, hr, "ratio"),
                             po__adv_fmt(b2, sizeof b2, bytes, "bytes"),
                             po__adv_fmt(b3, sizeof b3, budget, "bytes"));
  po__adv_evidence(a, s, "hit ratio", hr, "ratio");
  po__adv_evidence(a, s, "bytes cached", bytes, "bytes");
  po__adv_evidence(a, s, "budget", budget, "bytes");
  po__adv_action(a, s,
                 "The budget can shrink to about %s (the data plus a quarter), leaving %s for "
                 "the rest of the job.",
                 po__adv_fmt(b1, sizeof b1, to, "bytes"),
                 po__adv_fmt(b2, sizeof b2, budget - to, "bytes"));
}

static void cache_rules(po__adv *a) {
  const cJSON *c;
  cJSON_ArrayForEach(c, po__j_get(a->cache, "caches")) {
    const char *name = po__j_getstr(c, "name");
    double hits = po__adv_num(c, "hits", NULL), misses = po__adv_num(c, "misses", NULL);
    double bytes = po__adv_num(c, "bytes", NULL), budget = po__adv_num(c, "budget_bytes", NULL);
    if (!name || cJSON_IsFalse(po__j_get(c, "enabled")) || budget <= 0 ||
        hits + misses < PO__ADV_CACHE_MIN_LOOKUPS)
      continue;
    double hr = hits / (hits + misses);
    if (hr < PO__ADV_CACHE_LOW_HIT && bytes >= PO__ADV_CACHE_FULL * budget &&
        po__adv_num(c, "evictions", NULL) > 0)
      cache_too_small(a, c, name, hr);
    else if (hr >= PO__ADV_CACHE_HIGH_HIT && bytes <= PO__ADV_CACHE_ROOMY * budget &&
             budget >= PO__ADV_CACHE_ROOMY_MIN)
      cache_oversized(a, c, name, hr);
  }
}

void po__adv_rules_io(po__adv *a) {
  io_bound(a);
  cache_rules(a);
}
