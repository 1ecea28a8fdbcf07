/* Advisor rules over the monitor itself: thresholds that fire over and over, and monitoring
 * that costs more than its budget. */
#include "report/advisor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_KEYS 24

typedef struct firing_key {
  const char *metric;
  int device; /* -1: none */
  size_t n;
  double t_first, t_last, value_sum, threshold, freed;
} firing_key;

static const char *config_key(const char *metric) {
  if (!strcmp(metric, "cpu")) return "CPU_THRESHOLD";
  if (!strcmp(metric, "memory")) return "MEMORY_THRESHOLD";
  if (!strcmp(metric, "gpu_memory")) return "GPU_MEMORY_THRESHOLD";
  if (!strcmp(metric, "disk_busy")) return "DISK_BUSY_THRESHOLD";
  return NULL;
}

static size_t collect_firings(const po__adv *a, firing_key *k) {
  size_t nk = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, po__j_get(a->resources, "events")) {
    const char *metric = po__j_getstr(e, "metric");
    int ok_t, ok_d;
    double t = po__adv_num(e, "t_seconds", &ok_t);
    double d = po__adv_num(e, "device", &ok_d);
    if (!metric || !ok_t || !config_key(metric)) continue;
    int dev = ok_d && d >= 0 && d < 1024 ? (int)d : -1;
    size_t i = 0;
    while (i < nk && !(strcmp(k[i].metric, metric) == 0 && k[i].device == dev)) i++;
    if (i == nk) {
      if (nk == MAX_KEYS) continue;
      memset(&k[nk], 0, sizeof k[nk]);
      k[nk].metric = metric;
      k[nk].device = dev;
      k[nk].t_first = t;
      nk++;
    }
    k[i].n++;
    k[i].t_last = t;
    k[i].value_sum += po__adv_num(e, "value", NULL);
    k[i].threshold = po__adv_num(e, "threshold", NULL);
    k[i].freed += po__adv_num(e, "freed_bytes", NULL);
  }
  return nk;
}

static void flapping(po__adv *a, const firing_key *k, double cooldown_s, double hysteresis) {
  char target[48], b1[48], b2[48], b3[48], b4[48];
  if (k->device >= 0)
    snprintf(target, sizeof target, "%s (GPU %d)", k->metric, k->device);
  else
    snprintf(target, sizeof target, "%s", k->metric);
  double span = k->t_last - k->t_first, mean_value = k->value_sum / (double)k->n;
  double mean_gap = span / (double)(k->n - 1);
  cJSON *s = po__adv_suggest(a, "threshold-flapping", "warning", target,
                             "The %s threshold fired %zu times, every %s on average", target, k->n,
                             po__adv_fmt(b1, sizeof b1, mean_gap, "seconds"));
  po__adv_evidence(a, s, "firings", (double)k->n, "count");
  po__adv_evidence(a, s, "over", span, "seconds");
  po__adv_evidence(a, s, "threshold", k->threshold, "ratio");
  po__adv_evidence(a, s, "mean value when firing", mean_value, "ratio");
  po__adv_evidence(a, s, "bytes freed by the actions", k->freed, "bytes");
  double raise = fmin(0.99, fmax(mean_value, k->threshold) + hysteresis);
  po__adv_action(a, s,
                 "The job runs at the threshold, so it fires again after each %s cool-down. If "
                 "%s is the job's normal level, raise %s to about %s (or THRESHOLD_COOLDOWN_MS); "
                 "if not, the actions do not bring it down (%s freed in all): register cleanup "
                 "that frees more, or lower the load.",
                 po__adv_fmt(b2, sizeof b2, cooldown_s, "seconds"),
                 po__adv_fmt(b3, sizeof b3, mean_value, "ratio"), config_key(k->metric),
                 po__adv_fmt(b4, sizeof b4, raise, "ratio"),
                 po__adv_fmt(b1, sizeof b1, k->freed, "bytes"));
}

static void threshold_rules(po__adv *a) {
  firing_key k[MAX_KEYS];
  size_t nk = collect_firings(a, k);
  double cooldown_s = po__adv_config(a, "THRESHOLD_COOLDOWN_MS", 5000) / 1000;
  double hysteresis = po__adv_config(a, "THRESHOLD_HYSTERESIS", 0.05);
  if (cooldown_s <= 0) cooldown_s = 1;
  for (size_t i = 0; i < nk; i++) {
    if (k[i].n < PO__ADV_FLAP_FIRINGS) continue;
    double mean_gap = (k[i].t_last - k[i].t_first) / (double)(k[i].n - 1);
    if (mean_gap <= PO__ADV_FLAP_COOLDOWNS * cooldown_s) flapping(a, &k[i], cooldown_s, hysteresis);
  }
}

static void overhead(po__adv *a) {
  int ok_o, ok_n;
  double cost = po__adv_num(a->resources, "overhead_core_ratio", &ok_o);
  double samples = po__adv_num(a->resources, "sample_count", &ok_n);
  double budget = po__adv_config(a, "MONITOR_CPU_BUDGET", 0.005);
  if (!ok_o || !ok_n || samples < PO__ADV_MIN_SAMPLES || budget <= 0 ||
      cost < PO__ADV_OVERHEAD_FACTOR * budget)
    return;
  int ok_i;
  double interval = po__adv_num(a->resources, "effective_interval_seconds", &ok_i);
  if (!ok_i || interval <= 0) interval = po__adv_config(a, "MONITOR_INTERVAL_MS", 1000) / 1000;
  double to_ms = ceil(interval * cost / budget * 10) * 100; /* rounded up to 100 ms */
  char b1[48], b2[48];
  cJSON *s = po__adv_suggest(a, "monitor-overhead", "warning", NULL,
                             "Monitoring used %s of a core, over its budget of %s",
                             po__adv_fmt(b1, sizeof b1, cost, "ratio"),
                             po__adv_fmt(b2, sizeof b2, budget, "ratio"));
  po__adv_evidence(a, s, "monitor CPU (share of one core)", cost, "ratio");
  po__adv_evidence(a, s, "budget (MONITOR_CPU_BUDGET)", budget, "ratio");
  po__adv_evidence(a, s, "sampling interval", interval, "seconds");
  int limited = po__adv_config(a, "LIMIT_MONITOR_OVERHEAD", 0) != 0 ||
                cJSON_IsTrue(po__j_get(a->config, "LIMIT_MONITOR_OVERHEAD"));
  po__adv_action(a, s, "Raise MONITOR_INTERVAL_MS from %.0f to about %.0f%s.", interval * 1000,
                 to_ms,
                 limited ? "" : ", or set LIMIT_MONITOR_OVERHEAD=true to stretch it automatically");
}

void po__adv_rules_monitor(po__adv *a) {
  threshold_rules(a);
  overhead(a);
}
