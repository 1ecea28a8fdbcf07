/* Configuration: one table of keys, parsed from text (environment), JSON (config files), or set
 * directly in the struct. Every key is validated against its type and range; errors name the key
 * and what it accepts. */
#include "base/base.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { T_BOOL, T_DOUBLE, T_INT, T_ENUM, T_STRING } key_type;

typedef struct {
  const char *name;
  key_type type;
  size_t offset;
  size_t size; /* for strings: capacity */
  double min, max;
  const char *const *enum_names;
  const char *help;
} key_def;

static const char *const cache_policies[] = {"sieve", "s3fifo", "lru", NULL};

#define OFF(f) offsetof(po_config, f)
#define SZ(f) sizeof(((po_config *)0)->f)
static const key_def keys[] = {
    {"ENABLE_PROFILING", T_BOOL, OFF(enable_profiling), 0, 0, 1, NULL,
     "record zones (false: one predictable branch per zone)"},
    {"BACKGROUND_MONITORING", T_BOOL, OFF(background_monitoring), 0, 0, 1, NULL,
     "sample CPU, memory, disks and GPUs in a background thread"},
    {"CPU_THRESHOLD", T_DOUBLE, OFF(cpu_threshold), 0, 0, 1, NULL,
     "system CPU utilization ratio that triggers actions (0 = hardware default)"},
    {"ENABLE_CACHING", T_BOOL, OFF(enable_caching), 0, 0, 1, NULL,
     "caches store entries (false: every get misses, loaders always run)"},
    {"PROFILE_TIMELINE", T_BOOL, OFF(profile_timeline), 0, 0, 1, NULL,
     "also keep every zone as a timeline event in a bounded per-thread ring"},
    {"TIMELINE_EVENTS", T_INT, OFF(timeline_events), 0, 16, 67108864, NULL,
     "timeline ring capacity per thread, in events"},
    {"MEMORY_THRESHOLD", T_DOUBLE, OFF(memory_threshold), 0, 0, 1, NULL,
     "memory used ratio of the effective limit (cgroup or system) that triggers cleanup (0 = "
     "hardware default)"},
    {"GPU_MEMORY_THRESHOLD", T_DOUBLE, OFF(gpu_memory_threshold), 0, 0, 1, NULL,
     "GPU memory used ratio that triggers gpu cleanup (0 = hardware default)"},
    {"DISK_BUSY_THRESHOLD", T_DOUBLE, OFF(disk_busy_threshold), 0, 0, 1, NULL,
     "disk busy ratio that is reported as a firing (0 = hardware default)"},
    {"MONITOR_INTERVAL_MS", T_INT, OFF(monitor_interval_ms), 0, 10, 3600000, NULL,
     "sampling interval in milliseconds"},
    {"LIMIT_MONITOR_OVERHEAD", T_BOOL, OFF(limit_monitor_overhead), 0, 0, 1, NULL,
     "stretch the interval to keep the sampler under MONITOR_CPU_BUDGET"},
    {"MONITOR_CPU_BUDGET", T_DOUBLE, OFF(monitor_cpu_budget), 0, 1e-6, 1, NULL,
     "sampler CPU budget as a ratio of one core"},
    {"THRESHOLD_HYSTERESIS", T_DOUBLE, OFF(threshold_hysteresis), 0, 0, 0.5, NULL,
     "a fired threshold re-arms once the value falls this far below it"},
    {"THRESHOLD_COOLDOWN_MS", T_INT, OFF(threshold_cooldown_ms), 0, 0, 86400000, NULL,
     "minimum time between two firings of one threshold"},
    {"SERIES_CAPACITY", T_INT, OFF(series_capacity), 0, 64, 1048576, NULL,
     "points kept per time series (older data is coarsened, never dropped)"},
    {"MEMORY_LIMIT_BYTES", T_INT, OFF(memory_limit_bytes), 0, 0, 9.0e18, NULL,
     "memory budget that becomes the effective limit when below the machine's or the cgroup's "
     "(0 = none)"},
    {"AUTOPILOT", T_BOOL, OFF(autopilot), 0, 0, 1, NULL,
     "graded memory actions (warn, cleanup, aggressive, emergency) on the forecast, not only the "
     "level"},
    {"AUTOPILOT_HORIZON_SECONDS", T_DOUBLE, OFF(autopilot_horizon_seconds), 0, 1, 86400, NULL,
     "the autopilot acts when the forecast reaches the memory limit sooner than this"},
    {"FORECAST_WINDOW_SECONDS", T_DOUBLE, OFF(forecast_window_seconds), 0, 1, 3600, NULL,
     "recent samples the memory trend is fitted to"},
    {"FLIGHT_RECORD_PATH", T_STRING, OFF(flight_record_path), SZ(flight_record_path), 0, 0, NULL,
     "report written at the emergency grade (empty: next to PERFOPT_OUT, else "
     "perfopt-flight.json)"},
    {"CACHE_BUDGET_BYTES", T_INT, OFF(cache_budget_bytes), 0, 0, 9.0e18, NULL,
     "default byte budget of a cache"},
    {"CACHE_POLICY", T_ENUM, OFF(cache_policy), 0, 0, 2, cache_policies,
     "default eviction policy: sieve, s3fifo or lru"},
    {"CACHE_SHRINK_FRACTION", T_DOUBLE, OFF(cache_shrink_fraction), 0, 0, 1, NULL,
     "an attached cache shrinks to this share of its budget under memory pressure"},
    {"PROC_ROOT", T_STRING, OFF(proc_root), SZ(proc_root), 0, 0, NULL,
     "root for /proc and /sys probes (empty: the real ones; tests use a fake root)"},
    {"NVML_LIBRARY", T_STRING, OFF(nvml_library), SZ(nvml_library), 0, 0, NULL,
     "path of the NVML library (empty: libnvidia-ml.so.1, then libnvidia-ml.so)"},
    {"SERVER_ENABLE", T_BOOL, OFF(server_enable), 0, 0, 1, NULL,
     "the optimizer serves /metrics, /report.json and the live dashboard over HTTP"},
    {"SERVER_ADDRESS", T_STRING, OFF(server_address), SZ(server_address), 0, 0, NULL,
     "numeric address the endpoint listens on (non-loopback needs SERVER_ALLOW_REMOTE)"},
    {"SERVER_PORT", T_INT, OFF(server_port), 0, 0, 65535, NULL,
     "TCP port of the endpoint (0: any free port)"},
    {"SERVER_ALLOW_REMOTE", T_BOOL, OFF(server_allow_remote), 0, 0, 1, NULL,
     "allow a non-loopback SERVER_ADDRESS (set PERFOPT_TOKEN too)"},
};
#undef OFF
#undef SZ

void po_config_defaults(po_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->enable_profiling = 1;
  cfg->background_monitoring = 1;
  cfg->cpu_threshold = 0.8;
  cfg->enable_caching = 1;
  cfg->profile_timeline = 0;
  cfg->timeline_events = 65536;
  cfg->memory_threshold = 0;
  cfg->gpu_memory_threshold = 0;
  cfg->disk_busy_threshold = 0.9;
  cfg->monitor_interval_ms = 1000;
  cfg->limit_monitor_overhead = 0;
  cfg->monitor_cpu_budget = 0.005;
  cfg->threshold_hysteresis = 0.05;
  cfg->threshold_cooldown_ms = 5000;
  cfg->series_capacity = 4096;
  cfg->autopilot = 1;
  cfg->autopilot_horizon_seconds = 60;
  cfg->forecast_window_seconds = 60;
  cfg->cache_budget_bytes = 268435456;
  cfg->cache_policy = PO_CACHE_SIEVE;
  cfg->cache_shrink_fraction = 0.5;
  po__strlcpy(cfg->server_address, "127.0.0.1", sizeof cfg->server_address);
  cfg->server_port = 9473;
}

size_t po_config_key_count(void) {
  return PO__ARRAY_LEN(keys);
}
const char *po_config_key_name(size_t i) {
  return i < PO__ARRAY_LEN(keys) ? keys[i].name : NULL;
}
const char *po_config_key_help(size_t i) {
  return i < PO__ARRAY_LEN(keys) ? keys[i].help : NULL;
}

/* ---- where each value came from ---------------------------------------------------------------- */

enum { ORIGIN_DEFAULT = 0, ORIGIN_FILE = 1, ORIGIN_ENV = 2, ORIGIN_PROGRAM = 3 };
_Static_assert(PO__ARRAY_LEN(keys) <= sizeof(((po_config *)0)->key_origin), "key_origin too small");

static void mark(po_config *cfg, const key_def *k, int origin) {
  cfg->key_origin[k - keys] = (unsigned char)origin;
}

static int is_default(const po_config *cfg, const key_def *k) {
  po_config d;
  po_config_defaults(&d);
  const char *a = (const char *)cfg + k->offset, *b = (const char *)&d + k->offset;
  switch (k->type) {
    case T_DOUBLE:
      return *(const double *)(const void *)a == *(const double *)(const void *)b;
    case T_INT:
      return *(const int64_t *)(const void *)a == *(const int64_t *)(const void *)b;
    case T_STRING:
      return strncmp(a, b, k->size) == 0;
    default:
      return *(const int *)(const void *)a == *(const int *)(const void *)b;
  }
}

static const key_def *find_key(const char *name);

const char *po_config_key_source(const po_config *cfg, const char *key) {
  static const char *const names[] = {"default", "config file", "environment", "program"};
  const key_def *k = cfg && key ? find_key(key) : NULL;
  if (!k) return NULL;
  unsigned o = cfg->key_origin[k - keys];
  if (o == ORIGIN_DEFAULT && !is_default(cfg, k)) o = ORIGIN_PROGRAM;
  return names[o < 4 ? o : 0];
}

static const key_def *find_key(const char *name) {
  for (size_t i = 0; i < PO__ARRAY_LEN(keys); i++)
    if (!strcasecmp(keys[i].name, name)) return &keys[i];
  return NULL;
}

/* Case-insensitive Levenshtein distance, capped at 63 (names are short). */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63) la = 63;
  if (lb > 63) lb = 63;
  size_t row[64];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      size_t best = diag + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Environment variables of ours that are not configuration keys: the documented ones first (they
 * are suggested for misspellings too), then those other tools read (never warned about). A module
 * that reads a PERFOPT_* variable of its own lists it here. */
static const char *const env_documented[] = {"CONFIG", "OUT", "PROFILING"};
static const char *const env_other[] = {"FAKE_NVML", "TRACE", "NO_BROWSER", "TSAN"};
static const char *const env_other_prefixes[] = {"HEAP_"};

/* The valid name closest to `name`: a key, or with env set also a documented variable. */
static const char *closest_name(const char *name, int env) {
  const char *best = keys[0].name;
  size_t best_d = SIZE_MAX;
  for (size_t i = 0; i < PO__ARRAY_LEN(keys); i++) {
    size_t d = edit_distance(name, keys[i].name);
    if (d < best_d) best_d = d, best = keys[i].name;
  }
  for (size_t i = 0; env && i < PO__ARRAY_LEN(env_documented); i++) {
    size_t d = edit_distance(name, env_documented[i]);
    if (d < best_d) best_d = d, best = env_documented[i];
  }
  return best;
}

static int unknown_key(const char *name, char *errbuf, size_t errlen) {
  return po__errf(PO_ECONFIG, errbuf, errlen,
                  "unknown configuration key '%s' (closest: %s; perfopt config --keys lists them)",
                  name, closest_name(name, 0));
}

static void describe_allowed(const key_def *k, char *buf, size_t len) {
  switch (k->type) {
    case T_BOOL:
      snprintf(buf, len, "true or false (also 1/0, yes/no, on/off)");
      break;
    case T_DOUBLE:
      snprintf(buf, len, "a number from %g to %g", k->min, k->max);
      break;
    case T_INT:
      snprintf(buf, len, "an integer from %.0f to %.0f", k->min, k->max);
      break;
    case T_ENUM: {
      size_t used = (size_t)snprintf(buf, len, "one of");
      for (size_t i = 0; k->enum_names[i] && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s %s", i ? "," : "", k->enum_names[i]);
      break;
    }
    case T_STRING:
      snprintf(buf, len, "a string of at most %zu bytes", k->size - 1);
      break;
  }
}

static int bad_value(const key_def *k, const char *shown, char *errbuf, size_t errlen) {
  char allowed[160];
  describe_allowed(k, allowed, sizeof allowed);
  return po__errf(PO_ECONFIG, errbuf, errlen, "%s: invalid value '%s': expected %s", k->name, shown,
                  allowed);
}

static int parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (!strcasecmp(s, yes[i])) return *out = 1, 0;
    if (!strcasecmp(s, no[i])) return *out = 0, 0;
  }
  return -1;
}

/* Decimal only, the whole string: [+-]digits[.digits][e[+-]digits] (integer: [+-]digits, read
 * exactly). No spaces, hex, inf or nan: strtod and strtoll would accept some of those. */
static int parse_number(const char *s, int integer, double *out, int64_t *iout) {
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  size_t digits = 0;
  while (isdigit((unsigned char)*p)) p++, digits++;
  if (!integer) {
    if (*p == '.') {
      p++;
      while (isdigit((unsigned char)*p)) p++, digits++;
    }
    if (digits && (*p == 'e' || *p == 'E')) {
      p++;
      if (*p == '+' || *p == '-') p++;
      if (!isdigit((unsigned char)*p)) return -1;
      while (isdigit((unsigned char)*p)) p++;
    }
  }
  if (!digits || *p) return -1;
  errno = 0;
  if (integer) {
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE) return -1;
    *iout = v;
    *out = (double)v;
    return 0;
  }
  double v = strtod(s, NULL);
  if (errno == ERANGE || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

/* Stores an already-typed value after the range check. */
static int store_number(po_config *cfg, const key_def *k, double v, const char *shown, char *errbuf,
                        size_t errlen) {
  if (v < k->min || v > k->max) return bad_value(k, shown, errbuf, errlen);
  char *base = (char *)cfg + k->offset;
  if (k->type == T_DOUBLE) {
    *(double *)(void *)base = v;
  } else if (k->type == T_INT) {
    if (v != floor(v)) return bad_value(k, shown, errbuf, errlen);
    *(int64_t *)(void *)base = (int64_t)v;
  } else {
    *(int *)(void *)base = (int)v;
  }
  return 0;
}

static int set_text(po_config *cfg, const key_def *k, const char *value, char *errbuf,
                    size_t errlen) {
  char *base = (char *)cfg + k->offset;
  switch (k->type) {
    case T_BOOL: {
      int b;
      if (parse_bool(value, &b) != 0) return bad_value(k, value, errbuf, errlen);
      *(int *)(void *)base = b;
      return 0;
    }
    case T_DOUBLE: {
      double v;
      int64_t unused;
      if (parse_number(value, 0, &v, &unused) != 0) return bad_value(k, value, errbuf, errlen);
      return store_number(cfg, k, v, value, errbuf, errlen);
    }
    case T_INT: {
      double v;
      int64_t iv;
      if (parse_number(value, 1, &v, &iv) == 0) { /* digits: exact, past 2^53 too */
        if (v < k->min || v > k->max) return bad_value(k, value, errbuf, errlen);
        *(int64_t *)(void *)base = iv;
        return 0;
      }
      if (parse_number(value, 0, &v, &iv) != 0) return bad_value(k, value, errbuf, errlen);
      return store_number(cfg, k, v, value, errbuf, errlen); /* 1e9: integral values only */
    }
    case T_ENUM:
      for (int i = 0; k->enum_names[i]; i++)
        if (!strcasecmp(value, k->enum_names[i])) return *(int *)(void *)base = i, 0;
      return bad_value(k, value, errbuf, errlen);
    case T_STRING:
      if (strlen(value) >= k->size) return bad_value(k, value, errbuf, errlen);
      po__strlcpy(base, value, k->size);
      return 0;
  }
  return PO_EINVAL;
}

int po_config_set(po_config *cfg, const char *key, const char *value, char *errbuf, size_t errlen) {
  if (!cfg || !key || !value) return po__errf(PO_EINVAL, errbuf, errlen, "NULL argument");
  const key_def *k = find_key(key);
  if (!k) return unknown_key(key, errbuf, errlen);
  po_config tmp = *cfg;
  int rc = set_text(&tmp, k, value, errbuf, errlen);
  if (rc == 0) {
    mark(&tmp, k, ORIGIN_PROGRAM);
    *cfg = tmp;
  }
  return rc;
}

static int set_json(po_config *cfg, const key_def *k, const cJSON *item, char *errbuf,
                    size_t errlen) {
  char shown[64];
  switch (k->type) {
    case T_BOOL:
      if (!cJSON_IsBool(item)) return bad_value(k, "(not a boolean)", errbuf, errlen);
      *(int *)(void *)((char *)cfg + k->offset) = cJSON_IsTrue(item) ? 1 : 0;
      return 0;
    case T_DOUBLE:
    case T_INT:
      if (!cJSON_IsNumber(item)) return bad_value(k, "(not a number)", errbuf, errlen);
      snprintf(shown, sizeof shown, "%.17g", item->valuedouble);
      return store_number(cfg, k, item->valuedouble, shown, errbuf, errlen);
    case T_ENUM:
    case T_STRING:
      if (!cJSON_IsString(item)) return bad_value(k, "(not a string)", errbuf, errlen);
      return set_text(cfg, k, item->valuestring, errbuf, errlen);
  }
  return PO_EINVAL;
}

/* Line number of a byte offset, for syntax errors. */
static int line_of(const char *text, const char *at) {
  int line = 1;
  for (const char *p = text; p < at && *p; p++)
    if (*p == '\n') line++;
  return line;
}

/* `what` names the source in warnings (a path, or "configuration"); `origin` is recorded for
 * each key set (po_config_key_source). */
static int load_json(po_config *cfg, const char *json, const char *what, int origin,
                     char *errbuf, size_t errlen) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
  if (!root) {
    return po__errf(PO_ECONFIG, errbuf, errlen, "configuration is not valid JSON (line %d)",
                    line_of(json, end ? end : json));
  }
  int rc = 0;
  po_config tmp = *cfg;
  if (!cJSON_IsObject(root)) {
    rc = po__errf(PO_ECONFIG, errbuf, errlen, "configuration must be a JSON object of KEY: value");
  } else {
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
      const char *name = item->string ? item->string : "";
      const key_def *k = find_key(name);
      if (!k) { /* warned and skipped, like a misspelled PERFOPT_* variable */
        po__log(1, "%s: unknown configuration key '%s' ignored (closest: %s)", what, name,
                closest_name(name, 0));
        continue;
      }
      rc = set_json(&tmp, k, item, errbuf, errlen);
      if (rc) break;
      mark(&tmp, k, origin);
    }
  }
  cJSON_Delete(root);
  if (rc == 0) *cfg = tmp;
  return rc;
}

int po_config_load_json(po_config *cfg, const char *json, char *errbuf, size_t errlen) {
  if (!cfg || !json) return po__errf(PO_EINVAL, errbuf, errlen, "NULL argument");
  return load_json(cfg, json, "configuration", ORIGIN_PROGRAM, errbuf, errlen);
}

int po_config_load_file(po_config *cfg, const char *path, char *errbuf, size_t errlen) {
  if (!cfg || !path) return po__errf(PO_EINVAL, errbuf, errlen, "NULL argument");
  char *text;
  int rc = po__read_file(path, 1 << 20, &text, NULL, errbuf, errlen);
  if (rc) return rc == PO_ENOENT ? PO_ECONFIG : rc;
  char inner[256];
  rc = load_json(cfg, text, path, ORIGIN_FILE, inner, sizeof inner);
  free(text);
  if (rc) return po__errf(rc, errbuf, errlen, "%s: %s", path, inner);
  return 0;
}

/* Warns (log level 1) about each PERFOPT_* variable that is neither a key nor one of ours. */
static void warn_unknown_env(void) {
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "PERFOPT_", 8) != 0) continue;
    const char *eq = strchr(*e, '=');
    size_t len = eq ? (size_t)(eq - *e) - 8 : strlen(*e) - 8;
    char name[64];
    if (len >= sizeof name) len = sizeof name - 1;
    memcpy(name, *e + 8, len);
    name[len] = '\0';
    int known = find_key(name) != NULL;
    for (size_t i = 0; !known && i < PO__ARRAY_LEN(env_documented); i++)
      known = !strcmp(name, env_documented[i]);
    for (size_t i = 0; !known && i < PO__ARRAY_LEN(env_other); i++)
      known = !strcmp(name, env_other[i]);
    for (size_t i = 0; !known && i < PO__ARRAY_LEN(env_other_prefixes); i++)
      known = !strncmp(name, env_other_prefixes[i], strlen(env_other_prefixes[i]));
    if (!known)
      po__log(1, "unknown environment variable PERFOPT_%s ignored (closest: PERFOPT_%s)", name,
              closest_name(name, 1));
  }
}

int po_config_from_env(po_config *cfg, char *errbuf, size_t errlen) {
  if (!cfg) return po__errf(PO_EINVAL, errbuf, errlen, "NULL argument");
  warn_unknown_env();
  po_config tmp = *cfg;
  const char *shorthand = getenv("PERFOPT_PROFILING");
  if (shorthand) {
    int b;
    if (parse_bool(shorthand, &b) != 0)
      return po__errf(PO_ECONFIG, errbuf, errlen,
                      "PERFOPT_PROFILING: invalid value '%s': expected 1 or 0 (also true/false, "
                      "yes/no, on/off)",
                      shorthand);
    tmp.enable_profiling = b;
    mark(&tmp, find_key("ENABLE_PROFILING"), ORIGIN_ENV);
  }
  for (size_t i = 0; i < PO__ARRAY_LEN(keys); i++) {
    char var[64];
    snprintf(var, sizeof var, "PERFOPT_%s", keys[i].name);
    const char *v = getenv(var);
    if (!v) continue;
    char inner[256];
    int rc = set_text(&tmp, &keys[i], v, inner, sizeof inner);
    if (rc) return po__errf(rc, errbuf, errlen, "PERFOPT_%s", inner); /* inner starts KEY: */
    mark(&tmp, &keys[i], ORIGIN_ENV);
  }
  *cfg = tmp;
  return 0;
}

int po_config_load(po_config *cfg, char *errbuf, size_t errlen) {
  if (!cfg) return po__errf(PO_EINVAL, errbuf, errlen, "NULL argument");
  po_config tmp;
  po_config_defaults(&tmp);
  const char *file = getenv("PERFOPT_CONFIG");
  if (file && *file) {
    int rc = po_config_load_file(&tmp, file, errbuf, errlen);
    if (rc) return rc;
  }
  int rc = po_config_from_env(&tmp, errbuf, errlen);
  if (rc) return rc;
  *cfg = tmp;
  return 0;
}

char *po_config_to_json(const po_config *cfg) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  for (size_t i = 0; i < PO__ARRAY_LEN(keys); i++) {
    const key_def *k = &keys[i];
    const char *base = (const char *)cfg + k->offset;
    cJSON *v = NULL;
    switch (k->type) {
      case T_BOOL:
        v = cJSON_CreateBool(*(const int *)(const void *)base);
        break;
      case T_DOUBLE:
        v = cJSON_CreateNumber(*(const double *)(const void *)base);
        break;
      case T_INT:
        v = cJSON_CreateNumber((double)*(const int64_t *)(const void *)base);
        break;
      case T_ENUM: {
        int e = *(const int *)(const void *)base;
        v = cJSON_CreateString(e >= 0 && e <= (int)k->max ? k->enum_names[e] : "?");
        break;
      }
      case T_STRING:
        v = cJSON_CreateString(base);
        break;
    }
    if (!v || !cJSON_AddItemToObject(o, k->name, v)) {
      cJSON_Delete(v);
      cJSON_Delete(o);
      return NULL;
    }
  }
  char *s = cJSON_Print(o);
  cJSON_Delete(o);
  return s;
}
