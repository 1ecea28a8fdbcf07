/* A deterministic, realistic report model: a long training run with a deep call tree, resource
 * series with phases (epochs), thresholds that fired, GPUs, caches and suggestions. */
#include "report_fixture.h"

#include "perfopt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define GIB 1073741824.0
#define MIB 1048576.0

static uint64_t rng_state;
static double rnd(void) { /* xorshift64*: uniform in [0, 1) */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double clamp01(double v) {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

typedef double (*shape_fn)(double t, double run, void *ctx);

static double shape_cpu(double t, double run, void *ctx) {
  (void)ctx;
  double epoch = fmod(t, run / 12) / (run / 12);
  double v = 0.62 + 0.18 * sin(t / 600.0) + 0.08 * (rnd() - 0.5);
  if (epoch < 0.04) v = 0.25 + 0.1 * rnd();                 /* evaluation at each epoch boundary */
  if (epoch > 0.55 && epoch < 0.58) v = 0.9 + 0.08 * rnd(); /* augmentation burst */
  return clamp01(v);
}
static double shape_proc_cpu(double t, double run, void *ctx) {
  return 0.85 * shape_cpu(t, run, ctx);
}
static double shape_mem_used(double t, double run, void *ctx) {
  (void)ctx;
  double epoch = fmod(t, run / 12) / (run / 12);
  return 38 * GIB + 10 * GIB * (t / run) + 6 * GIB * epoch + 0.2 * GIB * rnd();
}
static double shape_mem_avail(double t, double run, void *ctx) {
  return 64 * GIB - shape_mem_used(t, run, ctx);
}
static double shape_rss(double t, double run, void *ctx) {
  (void)ctx;
  double epoch = fmod(t, run / 12) / (run / 12);
  double v = 6 * GIB + 9 * GIB * epoch + 3 * GIB * (t / run) + 0.05 * GIB * rnd();
  if (fabs(t - run * 0.71) < run * 0.004) v += 6 * GIB; /* the peak: a leaky eval batch */
  return v;
}
static double shape_disk_read(double t, double run, void *ctx) {
  (void)ctx;
  double epoch = fmod(t, run / 12) / (run / 12);
  return (epoch < 0.08 ? 700 * MIB : 40 * MIB) * (0.6 + 0.4 * rnd());
}
static double shape_disk_write(double t, double run, void *ctx) {
  (void)ctx;
  double ck = fmod(t, run / 6) / (run / 6);
  return ck > 0.98 ? 1.1 * GIB * (0.7 + 0.3 * rnd()) : 2 * MIB * rnd();
}
static double shape_disk_busy(double t, double run, void *ctx) {
  double r = shape_disk_read(t, run, ctx) + shape_disk_write(t, run, ctx);
  return clamp01(r / (1.2 * GIB));
}
static double shape_gpu_mem(double t, double run, void *ctx) {
  int g = *(int *)ctx;
  double epoch = fmod(t, run / 12) / (run / 12);
  return (58 + 2 * g) * GIB + 14 * GIB * epoch + 0.3 * GIB * rnd();
}
static double shape_gpu_util(double t, double run, void *ctx) {
  (void)ctx;
  double epoch = fmod(t, run / 12) / (run / 12);
  if (t > run * 0.33 && t < run * 0.335) return NAN; /* the driver did not answer: a gap */
  return clamp01(epoch < 0.04 ? 0.2 * rnd() : 0.88 + 0.1 * (rnd() - 0.5));
}

static int add_series(cJSON *arr, const char *name, const char *unit, double run, double dt,
                      shape_fn fn, void *ctx) {
  size_t n = (size_t)(run / dt);
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(arr, o)) return -1;
  cJSON_AddStringToObject(o, "name", name);
  cJSON_AddStringToObject(o, "unit", unit);
  cJSON *t = cJSON_AddArrayToObject(o, "t_seconds");
  cJSON *mn = cJSON_AddArrayToObject(o, "min");
  cJSON *mx = cJSON_AddArrayToObject(o, "max");
  cJSON *last = cJSON_AddArrayToObject(o, "last");
  if (!t || !mn || !mx || !last) return -1;
  for (size_t i = 0; i < n; i++) {
    double ts = (double)i * dt;
    double v = fn(ts, run, ctx);
    double spread = isnan(v) ? 0 : fabs(v) * 0.03 * rnd();
    cJSON *a = cJSON_CreateNumber(ts);
    cJSON *b = isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v - spread);
    cJSON *c = isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v + spread);
    cJSON *d = isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
    if (!a || !b || !c || !d) {
      cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(c), cJSON_Delete(d);
      return -1;
    }
    cJSON_AddItemToArray(t, a);
    cJSON_AddItemToArray(mn, b);
    cJSON_AddItemToArray(mx, c);
    cJSON_AddItemToArray(last, d);
  }
  return 0;
}

/* ---- profile ------------------------------------------------------------------------------- */

static const char *const VOCAB[] = {
    "forward",          "backward",   "matmul",          "conv2d",      "relu",
    "batch_norm",       "softmax",    "attention",       "layer_norm",  "dropout",
    "embedding_lookup", "all_reduce", "decode_jpeg",     "random_crop", "color_jitter",
    "collate",          "pin_memory", "optimizer_step",  "adam_update", "grad_clip",
    "serialize_tensor", "fsync",      "compute_metrics", "log_scalars", "tokenize",
    "pad_batch"};
#define NVOCAB (sizeof(VOCAB) / sizeof(VOCAB[0]))

typedef struct tree_ctx {
  cJSON *tree;
  int next_id;
  int limit;
} tree_ctx;

static int add_node(tree_ctx *tc, int parent, const char *name, double calls, double total,
                    double self) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return -1;
  int id = tc->next_id++;
  cJSON_AddNumberToObject(o, "id", id);
  cJSON_AddNumberToObject(o, "parent", parent);
  cJSON_AddStringToObject(o, "name", name);
  cJSON_AddNumberToObject(o, "calls", floor(calls));
  cJSON_AddNumberToObject(o, "total_seconds", total);
  cJSON_AddNumberToObject(o, "self_seconds", self);
  cJSON_AddItemToArray(tc->tree, o);
  return id;
}

/* Children take 50..95% of the parent's time, split unevenly (a few heavy, many light); the node
 * budget is shared out by time, so heavy subtrees are deep and bushy like real profiles. */
static void grow_tree(tree_ctx *tc, int parent, double total, double calls, int depth,
                      cJSON *self_node, double budget) {
  if (depth > 14 || budget < 1 || tc->next_id >= tc->limit || total < 1e-4) return;
  int kids = 1 + (int)(rnd() * (depth < 3 ? 7 : 4));
  if (kids > (int)budget) kids = (int)budget;
  double share = 0.5 + 0.45 * rnd(), used = 0;
  double w[8], wsum = 0;
  for (int k = 0; k < kids; k++) wsum += (w[k] = pow(rnd(), 2) + 0.05);
  for (int k = 0; k < kids && tc->next_id < tc->limit; k++) {
    double t = total * share * w[k] / wsum;
    char name[96];
    snprintf(name, sizeof(name), "%s%s", VOCAB[(size_t)(rnd() * NVOCAB)],
             depth > 6 ? "_inner" : "");
    double c = calls * (1 + floor(rnd() * 8));
    int id = add_node(tc, parent, name, c, t, t);
    if (id < 0) return;
    used += t;
    cJSON *node = cJSON_GetArrayItem(tc->tree, cJSON_GetArraySize(tc->tree) - 1);
    grow_tree(tc, id, t, c, depth + 1, node, (budget - kids) * w[k] / wsum);
  }
  if (self_node)
    cJSON_ReplaceItemInObject(self_node, "self_seconds", cJSON_CreateNumber(total - used));
}

static void add_profile(cJSON *root, double run, int tree_nodes) {
  cJSON *p = cJSON_AddObjectToObject(root, "profile");
  cJSON_AddNumberToObject(p, "wall_seconds", run);
  cJSON_AddNumberToObject(p, "profiled_seconds", run * 0.97);
  cJSON_AddNumberToObject(p, "dropped_events", 0);
  cJSON_AddNumberToObject(p, "probe_cost_ns", 18.5);
  cJSON *fns = cJSON_AddArrayToObject(p, "functions");
  static const char *const special[] = {
      "operator<<(std::ostream&, const Tensor&)",
      "load \"config\".json & 'defaults'",
      "std::vector<std::pair<std::string, std::unordered_map<int, float>>>::emplace_back",
      "train_epoch",
      "data_loader_next",
      "checkpoint_save",
      "evaluate"};
  int nf = 80;
  for (int i = 0; i < nf; i++) {
    cJSON *f = cJSON_CreateObject();
    char name[160];
    if (i < (int)(sizeof(special) / sizeof(special[0])))
      snprintf(name, sizeof(name), "%s", special[i]);
    else
      snprintf(name, sizeof(name), "%s_%d", VOCAB[(size_t)i % NVOCAB], i);
    double total = run * 0.9 / pow(1.35, i);
    double calls = floor(10 + 1e6 * rnd() / (1 + i));
    cJSON_AddStringToObject(f, "name", name);
    cJSON_AddStringToObject(f, "file", i % 3 ? "src/model.c" : "src/data/loader.c");
    cJSON_AddNumberToObject(f, "line", 10 + i * 7);
    cJSON_AddNumberToObject(f, "calls", calls);
    cJSON_AddNumberToObject(f, "total_seconds", total);
    cJSON_AddNumberToObject(f, "self_seconds", total * (0.2 + 0.6 * rnd()));
    cJSON_AddNumberToObject(f, "avg_seconds", total / calls);
    cJSON_AddNumberToObject(f, "min_seconds", total / calls * 0.3);
    cJSON_AddNumberToObject(f, "max_seconds", total / calls * 12);
    cJSON_AddNumberToObject(f, "stddev_seconds", total / calls * 0.8);
    cJSON_AddNumberToObject(f, "p50_seconds", total / calls * 0.9);
    cJSON_AddNumberToObject(f, "p90_seconds", total / calls * 1.8);
    cJSON_AddNumberToObject(f, "p95_seconds", total / calls * 2.4);
    cJSON_AddNumberToObject(f, "p99_seconds", total / calls * 5.1);
    cJSON_AddNumberToObject(f, "percent_total", 100 * total / run);
    cJSON_AddItemToArray(fns, f);
  }
  tree_ctx tc = {cJSON_AddArrayToObject(p, "call_tree"), 0, tree_nodes};
  int main_id = add_node(&tc, -1, "main", 1, run * 0.97, run * 0.01);
  int train = add_node(&tc, main_id, "train_epoch", 12, run * 0.85, run * 0.02);
  grow_tree(&tc, train, run * 0.8, 12, 1, NULL, tree_nodes * 0.8);
  int eval = add_node(&tc, main_id, "evaluate", 12, run * 0.07, run * 0.01);
  grow_tree(&tc, eval, run * 0.06, 12, 2, NULL, tree_nodes * 0.18);
  add_node(&tc, main_id, "load \"config\".json & 'defaults'", 1, run * 0.002, run * 0.002);
  add_node(&tc, -1, "checkpoint_writer (thread)", 6, run * 0.05, run * 0.05);
  cJSON *th = cJSON_AddArrayToObject(p, "threads");
  for (int i = 0; i < 4; i++) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "tid", 4100 + i);
    cJSON_AddStringToObject(t, "name", i == 0 ? "main" : i == 3 ? "checkpoint" : "loader");
    cJSON_AddBoolToObject(t, "exited", i == 3);
    cJSON_AddNumberToObject(t, "calls", 1e6 / (i + 1));
    cJSON_AddNumberToObject(t, "total_seconds", run * 0.9 / (i + 1));
    cJSON_AddItemToArray(th, t);
  }
  cJSON *cnt = cJSON_AddObjectToObject(p, "counters");
  cJSON_AddNumberToObject(cnt, "truncated_names", 0);
  cJSON *tl = cJSON_AddObjectToObject(p, "timeline");
  cJSON_AddBoolToObject(tl, "enabled", 0);
  cJSON_AddArrayToObject(tl, "events");
}

static void add_event(cJSON *events, double t, const char *metric, int device, double value,
                      double thr, const char *action, double freed) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddNumberToObject(e, "t_seconds", t);
  cJSON_AddStringToObject(e, "metric", metric);
  if (device >= 0) cJSON_AddNumberToObject(e, "device", device);
  cJSON_AddStringToObject(e, "level", "normal");
  cJSON_AddNumberToObject(e, "value", value);
  cJSON_AddNumberToObject(e, "threshold", thr);
  cJSON *a = cJSON_AddArrayToObject(e, "actions");
  cJSON_AddItemToArray(a, cJSON_CreateString(action));
  cJSON_AddNumberToObject(e, "freed_bytes", freed);
  cJSON_AddItemToArray(events, e);
}

static void add_threshold(cJSON *arr, const char *metric, int device, double v, const char *source,
                          const char *why) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "metric", metric);
  if (device >= 0) cJSON_AddNumberToObject(o, "device", device);
  cJSON_AddNumberToObject(o, "value", v);
  cJSON_AddStringToObject(o, "source", source);
  cJSON_AddStringToObject(o, "why", why);
  cJSON_AddItemToArray(arr, o);
}

static void add_evidence(cJSON *arr, const char *name, double value, const char *unit) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddStringToObject(e, "name", name);
  cJSON_AddNumberToObject(e, "value", value);
  cJSON_AddStringToObject(e, "unit", unit);
  cJSON_AddItemToArray(arr, e);
}

cJSON *fixture_report(double run, double dt, int gpus, int tree_nodes) {
  rng_state = 0x9E3779B97F4A7C15ULL;
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  cJSON_AddStringToObject(root, "perfopt_version", PO_VERSION_STRING);
  cJSON *host = cJSON_AddObjectToObject(root, "host");
  cJSON_AddStringToObject(host, "hostname", "train-node-07");
  cJSON_AddStringToObject(host, "os", "Linux");
  cJSON_AddStringToObject(host, "kernel", "6.1.0-18-amd64");
  cJSON_AddStringToObject(host, "machine", "x86_64");
  cJSON_AddStringToObject(host, "cpu_model", "AMD EPYC 7543 32-Core Processor");
  cJSON_AddNumberToObject(host, "cpus_online", 32);
  cJSON_AddNumberToObject(host, "memory_total_bytes", 64 * GIB);
  cJSON *r = cJSON_AddObjectToObject(root, "run");
  cJSON *argv = cJSON_AddArrayToObject(r, "argv");
  cJSON_AddItemToArray(argv, cJSON_CreateString("python3"));
  cJSON_AddItemToArray(argv, cJSON_CreateString("train.py"));
  cJSON_AddItemToArray(argv, cJSON_CreateString("--epochs=12"));
  cJSON_AddNumberToObject(r, "pid", 31337);
  cJSON_AddNumberToObject(r, "start_unix_seconds", 1764000000);
  cJSON_AddNumberToObject(r, "report_unix_seconds", 1764000000 + run);
  cJSON_AddNumberToObject(r, "wall_seconds", run);

  add_profile(root, run, tree_nodes);

  cJSON *mem = cJSON_AddObjectToObject(root, "memory");
  cJSON_AddNumberToObject(mem, "rss_bytes", 9.5 * GIB);
  cJSON_AddNumberToObject(mem, "peak_rss_bytes", 20.9 * GIB);
  cJSON_AddNumberToObject(mem, "limit_bytes", 64 * GIB);
  cJSON_AddStringToObject(mem, "limit_source", "cgroup");
  cJSON_AddNumberToObject(mem, "available_bytes", 14 * GIB);
  cJSON *cl = cJSON_AddArrayToObject(mem, "cleanups");
  for (int i = 0; i < 5; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "t_seconds", run * (0.15 + 0.17 * i));
    cJSON_AddStringToObject(o, "level", i == 3 ? "critical" : "warning");
    cJSON_AddStringToObject(o, "type", i % 2 ? "cache" : "tensors");
    cJSON_AddStringToObject(o, "handler", i % 2 ? "cache_shrink" : "free_activation_buffers");
    cJSON_AddNumberToObject(o, "freed_bytes", (1.5 + i) * GIB);
    cJSON_AddItemToArray(cl, o);
  }
  cJSON *gd = cJSON_AddArrayToObject(mem, "guards");
  cJSON *g = cJSON_CreateObject();
  cJSON_AddNumberToObject(g, "t_seconds", run * 0.71);
  cJSON_AddStringToObject(g, "name", "eval_batch <large>");
  cJSON_AddNumberToObject(g, "required_bytes", 8 * GIB);
  cJSON_AddNumberToObject(g, "available_bytes", 5 * GIB);
  cJSON_AddStringToObject(g, "ran", "fallback");
  cJSON_AddStringToObject(g, "result", "ok");
  cJSON_AddItemToArray(gd, g);

  cJSON *res = cJSON_AddObjectToObject(root, "resources");
  cJSON_AddNumberToObject(res, "interval_seconds", dt);
  cJSON_AddNumberToObject(res, "sample_count", floor(run / dt));
  cJSON_AddNumberToObject(res, "overhead_core_ratio", 0.0012);
  cJSON *ser = cJSON_AddArrayToObject(res, "series");
  int rc = 0;
  rc |= add_series(ser, "cpu_utilization_ratio", "ratio", run, dt, shape_cpu, NULL);
  rc |= add_series(ser, "process_cpu_ratio", "ratio", run, dt, shape_proc_cpu, NULL);
  rc |= add_series(ser, "memory_used_bytes", "bytes", run, dt, shape_mem_used, NULL);
  rc |= add_series(ser, "memory_available_bytes", "bytes", run, dt, shape_mem_avail, NULL);
  rc |= add_series(ser, "process_rss_bytes", "bytes", run, dt, shape_rss, NULL);
  rc |= add_series(ser, "disk_read_bytes_per_second", "bytes_per_second", run, dt, shape_disk_read,
                   NULL);
  rc |= add_series(ser, "disk_write_bytes_per_second", "bytes_per_second", run, dt,
                   shape_disk_write, NULL);
  rc |= add_series(ser, "disk_busy_ratio", "ratio", run, dt, shape_disk_busy, NULL);
  static int gpu_ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  for (int i = 0; i < gpus && i < 8; i++) {
    char name[64];
    snprintf(name, sizeof(name), "gpu%d_memory_used_bytes", i);
    rc |= add_series(ser, name, "bytes", run, dt, shape_gpu_mem, &gpu_ids[i]);
    snprintf(name, sizeof(name), "gpu%d_utilization_ratio", i);
    rc |= add_series(ser, name, "ratio", run, dt, shape_gpu_util, &gpu_ids[i]);
  }
  if (rc) {
    cJSON_Delete(root);
    return NULL;
  }
  cJSON *thr = cJSON_AddArrayToObject(res, "thresholds");
  /* the monitor's metric names (src/sampler.c): values are ratios */
  add_threshold(thr, "cpu", -1, 0.8, "config", "CPU_THRESHOLD");
  add_threshold(thr, "memory", -1, 0.85, "hardware default",
                "hardware default: cgroup memory limit 64.0 GiB (>= 32 GiB) -> 0.85");
  add_threshold(thr, "disk_busy", -1, 0.9, "config", "DISK_BUSY_THRESHOLD");
  for (int d = 0; d < gpus; d++)
    add_threshold(thr, "gpu_memory", d, 0.92 - 0.02 * d, "hardware default",
                  "hardware default for GPU (NVIDIA A100-SXM4-80GB, 80.0 GiB)");
  cJSON *ev = cJSON_AddArrayToObject(res, "events");
  for (int e = 0; e < 12; e++) {
    double t = run / 12 * (e + 0.565);
    add_event(ev, t, "cpu", -1, 0.95, 0.8, "log", 0);
  }
  add_event(ev, run * 0.71, "memory", -1, 0.88, 0.85, "cleanup:tensors", 6 * GIB);
  add_event(ev, run * 0.9, "memory", -1, 0.86, 0.85, "cache_shrink", 2 * GIB);
  add_event(ev, run * 0.5, "manual", -1, 0.7, 0, "optimize_memory", 1 * GIB);
  if (gpus > 0) add_event(ev, run * 0.95, "gpu_memory", 0, 0.93, 0.92, "log", 0);
  if (gpus > 1) add_event(ev, run * 0.45, "gpu_memory", 1, 0.91, 0.90, "log", 0);
  cJSON *ph = cJSON_AddArrayToObject(res, "phases");
  for (int e = 0; e < 12; e++) {
    cJSON *o = cJSON_CreateObject();
    char name[32];
    snprintf(name, sizeof(name), "epoch %d", e + 1);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "start_seconds", run / 12 * e);
    cJSON_AddNumberToObject(o, "end_seconds", run / 12 * (e + 1));
    cJSON_AddItemToArray(ph, o);
  }

  cJSON *gpu = cJSON_AddObjectToObject(root, "gpu");
  cJSON_AddBoolToObject(gpu, "available", gpus > 0);
  cJSON_AddStringToObject(gpu, "reason", gpus > 0 ? "" : "libnvidia-ml.so.1 not found");
  cJSON *devs = cJSON_AddArrayToObject(gpu, "devices");
  for (int i = 0; i < gpus; i++) {
    cJSON *d = cJSON_CreateObject();
    char uuid[64];
    snprintf(uuid, sizeof(uuid), "GPU-3f1c%04d-8a7e-4b1d-9c2a-5e6f7a8b9c0d", i);
    cJSON_AddNumberToObject(d, "index", i);
    cJSON_AddStringToObject(d, "name", "NVIDIA A100-SXM4-80GB");
    cJSON_AddStringToObject(d, "uuid", uuid);
    cJSON_AddNumberToObject(d, "memory_total_bytes", 80 * GIB);
    cJSON_AddNumberToObject(d, "memory_used_bytes", 61 * GIB);
    cJSON_AddNumberToObject(d, "memory_free_bytes", 19 * GIB);
    cJSON_AddNumberToObject(d, "utilization_gpu_ratio", 0.91);
    cJSON_AddNumberToObject(d, "utilization_memory_ratio", 0.47);
    cJSON_AddNumberToObject(d, "temperature_celsius", 67);
    cJSON_AddNumberToObject(d, "power_watts", 312.5);
    cJSON_AddItemToArray(devs, d);
  }

  cJSON *cache = cJSON_AddObjectToObject(root, "cache");
  cJSON *caches = cJSON_AddArrayToObject(cache, "caches");
  static const char *const cnames[] = {"models", "datasets", "tokenizer <vocab>"};
  for (int i = 0; i < 3; i++) {
    cJSON *c = cJSON_CreateObject();
    double hits = 90000.0 / (i + 1), misses = 4000.0 * (i + 1);
    cJSON_AddStringToObject(c, "name", cnames[i]);
    cJSON_AddStringToObject(c, "policy", i == 1 ? "s3fifo" : "sieve");
    cJSON_AddNumberToObject(c, "budget_bytes", (i == 0 ? 8 : 2) * GIB);
    cJSON_AddNumberToObject(c, "bytes", (i == 0 ? 7.2 : 1.1) * GIB);
    cJSON_AddNumberToObject(c, "entries", 40 + 300 * i);
    cJSON_AddNumberToObject(c, "hits", hits);
    cJSON_AddNumberToObject(c, "misses", misses);
    cJSON_AddNumberToObject(c, "evictions", 120 * i);
    cJSON_AddNumberToObject(c, "hit_ratio", hits / (hits + misses));
    cJSON *pt = cJSON_AddArrayToObject(c, "per_type");
    for (int k = 0; k < 2; k++) {
      cJSON *t = cJSON_CreateObject();
      cJSON_AddStringToObject(t, "type", k ? "tensor" : "checkpoint");
      cJSON_AddNumberToObject(t, "hits", hits / 2);
      cJSON_AddNumberToObject(t, "misses", misses / 2);
      cJSON_AddNumberToObject(t, "evictions", 60 * i);
      cJSON_AddNumberToObject(t, "bytes", 0.5 * GIB);
      cJSON_AddNumberToObject(t, "entries", 20 + 150 * i);
      cJSON_AddItemToArray(pt, t);
    }
    cJSON *sh = cJSON_AddArrayToObject(c, "shrinks");
    if (i == 0) {
      cJSON *s = cJSON_CreateObject();
      cJSON_AddNumberToObject(s, "t_seconds", run * 0.9);
      cJSON_AddNumberToObject(s, "from_bytes", 8 * GIB);
      cJSON_AddNumberToObject(s, "to_bytes", 4 * GIB);
      cJSON_AddStringToObject(s, "reason", "memory pressure");
      cJSON_AddItemToArray(sh, s);
    }
    cJSON_AddItemToArray(caches, c);
  }

  cJSON *sug = cJSON_AddArrayToObject(root, "suggestions");
  cJSON *s1 = cJSON_CreateObject();
  cJSON_AddStringToObject(s1, "id", "leak-suspect");
  cJSON_AddStringToObject(s1, "severity", "warning");
  cJSON_AddStringToObject(s1, "title", "RSS grew in each of 12 phases, by 256 MiB per phase");
  cJSON *sev = cJSON_AddArrayToObject(s1, "evidence");
  add_evidence(sev, "at the end of the first phase", 6.0 * GIB, "bytes");
  add_evidence(sev, "at the end of the last phase", 9.5 * GIB, "bytes");
  add_evidence(sev, "growth per phase", 256 * MIB, "bytes");
  cJSON_AddStringToObject(s1, "action", "Free evaluation buffers after each epoch (<eval_batch>)");
  cJSON_AddItemToArray(sug, s1);
  cJSON *s2 = cJSON_CreateObject();
  cJSON_AddStringToObject(s2, "id", "gpu-underused");
  cJSON_AddStringToObject(s2, "severity", "info");
  cJSON_AddStringToObject(s2, "title", "GPU idle during evaluation");
  cJSON_AddStringToObject(s2, "target", "gpu0");
  sev = cJSON_AddArrayToObject(s2, "evidence");
  add_evidence(sev, "mean GPU utilization", 0.18, "ratio");
  cJSON_AddStringToObject(s2, "action", "Overlap evaluation with the next epoch's data loading");
  cJSON_AddItemToArray(sug, s2);
  return root;
}
