/* perfopt: find and fix performance and memory problems in long-running compute jobs.
 *
 * The one public header. Sections, in order: conventions and errors, configuration, the optimizer,
 * the function-level profiler, the report model, then one section per module (monitor and memory,
 * cache, downsampling and charts, heap tracking). Public names are po_*, macros PO_*.
 *
 * Functions that can fail return int: 0 on success or a negative PO_E* code; po_strerror() names
 * it. The library never prints and never exits on bad input. It is thread-safe unless a comment
 * says otherwise.
 */
#ifndef PERFOPT_H
#define PERFOPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PERFOPT_BUILDING) && defined(__GNUC__)
#define PO_API __attribute__((visibility("default")))
#else
#define PO_API
#endif

#define PO_VERSION_MAJOR 0
#define PO_VERSION_MINOR 1
#define PO_VERSION_PATCH 0
#define PO_VERSION_STRING "0.1.0"

/* ======================================================================================
 * Errors
 * ====================================================================================== */

/* X(name, value, message) */
#define PO_ERRNO_MAP(X)                               \
  X(EINVAL, -1, "invalid argument")                   \
  X(ENOMEM, -2, "out of memory")                      \
  X(EIO, -3, "input/output error")                    \
  X(ENOENT, -4, "no such file, key or entry")         \
  X(ECONFIG, -5, "invalid configuration")             \
  X(ERANGE, -6, "value out of range")                 \
  X(EBUSY, -7, "resource busy")                       \
  X(ENOTSUP, -8, "not supported on this system")      \
  X(ETOOBIG, -9, "object larger than the budget")     \
  X(EFULL, -10, "table full: limit reached")          \
  X(EPARSE, -11, "parse error")                       \
  X(ENODEV, -12, "no such device")                    \
  X(ESTATE, -13, "operation not valid in this state") \
  X(EOOM, -14, "the operation ran out of memory")

typedef enum {
#define PO__ERR_ENUM(name, value, msg) PO_##name = (value),
  PO_ERRNO_MAP(PO__ERR_ENUM)
#undef PO__ERR_ENUM
} po_errno_t;

/* A short message for a PO_E* code (or "success" for 0). Never NULL. */
PO_API const char *po_strerror(int err);
/* The code's name without the PO_ prefix, e.g. "EINVAL". Never NULL. */
PO_API const char *po_err_name(int err);
/* The calling thread's last detailed error message from a function that has no errbuf (e.g.
 * po_optimizer_create naming the PERFOPT_* variable, its value and what is allowed); "" when
 * none. Valid until the thread's next failing call. Never NULL. */
PO_API const char *po_last_error(void);

/* Optional log sink: the library reports what it cannot return (a failed report write at exit,
 * a probe that stopped working) through this callback. Levels: 0 error, 1 warning, 2 info. */
typedef void (*po_log_fn)(int level, const char *message, void *user);
PO_API void po_set_log_callback(po_log_fn fn, void *user);

/* Frees memory the library returned to the caller (strings, arrays). */
PO_API void po_free(void *p);

/* ======================================================================================
 * Configuration
 *
 * Every setting in one table (docs/api.md lists keys, types, defaults and ranges). Precedence:
 * po_config_defaults() < JSON config file < PERFOPT_<KEY> environment variables.
 * A value of 0 for a threshold means "hardware-aware default".
 * ====================================================================================== */

typedef enum { PO_CACHE_SIEVE = 0, PO_CACHE_S3FIFO = 1, PO_CACHE_LRU = 2 } po_cache_policy;

typedef struct po_config {
  /* the seed's keys */
  int enable_profiling;      /* ENABLE_PROFILING (bool, true) */
  int background_monitoring; /* BACKGROUND_MONITORING (bool, true) */
  double cpu_threshold;      /* CPU_THRESHOLD (ratio 0..1, 0.8; 0 = hardware default) */
  int enable_caching;        /* ENABLE_CACHING (bool, true) */
  /* profiler */
  int profile_timeline;    /* PROFILE_TIMELINE (bool, false): keep begin/end events too */
  int64_t timeline_events; /* TIMELINE_EVENTS (per-thread ring capacity, 65536) */
  /* monitor and memory */
  double memory_threshold;       /* MEMORY_THRESHOLD (ratio of the effective limit, 0 = auto) */
  double gpu_memory_threshold;   /* GPU_MEMORY_THRESHOLD (ratio, 0 = auto) */
  double disk_busy_threshold;    /* DISK_BUSY_THRESHOLD (ratio, 0.9) */
  int64_t monitor_interval_ms;   /* MONITOR_INTERVAL_MS (10 .. 3600000, 1000) */
  int limit_monitor_overhead;    /* LIMIT_MONITOR_OVERHEAD (bool, false) */
  double monitor_cpu_budget;     /* MONITOR_CPU_BUDGET (ratio of one core, 0.005) */
  double threshold_hysteresis;   /* THRESHOLD_HYSTERESIS (ratio, 0.05) */
  int64_t threshold_cooldown_ms; /* THRESHOLD_COOLDOWN_MS (0 .. 86400000, 5000) */
  int64_t series_capacity;       /* SERIES_CAPACITY (points kept per series, 4096) */
  int64_t memory_limit_bytes;    /* MEMORY_LIMIT_BYTES (a budget below the machine's or the
                                  * cgroup's limit that becomes the effective limit; 0 = none) */
  int autopilot;                 /* AUTOPILOT (bool, true): graded memory actions on the forecast */
  double autopilot_horizon_seconds; /* AUTOPILOT_HORIZON_SECONDS (act when the limit is nearer
                                     * than this, 60) */
  double forecast_window_seconds;   /* FORECAST_WINDOW_SECONDS (samples the trend uses, 60) */
  char flight_record_path[256];     /* FLIGHT_RECORD_PATH ("" = next to PERFOPT_OUT, else
                                     * perfopt-flight.json in the working directory) */
  /* cache */
  int64_t cache_budget_bytes; /* CACHE_BUDGET_BYTES (default budget, 268435456) */
  int cache_policy;           /* CACHE_POLICY ("sieve" | "s3fifo" | "lru") */
  double
      cache_shrink_fraction; /* CACHE_SHRINK_FRACTION (shrink to this share under pressure, 0.5) */
  /* probes */
  char proc_root[256];    /* PROC_ROOT ("" = real /proc and /sys; a fake root for tests) */
  char nvml_library[256]; /* NVML_LIBRARY ("" = libnvidia-ml.so.1, then libnvidia-ml.so) */
  /* live endpoint (see "Live endpoint" below) */
  int server_enable;       /* SERVER_ENABLE (bool, false): the optimizer starts its endpoint */
  char server_address[64]; /* SERVER_ADDRESS (numeric IPv4/IPv6, "127.0.0.1") */
  int64_t server_port;     /* SERVER_PORT (0 .. 65535, 9473; 0 = any free port) */
  int server_allow_remote; /* SERVER_ALLOW_REMOTE (bool, false): for a non-loopback address */
  /* Where each key's value came from, kept by the loaders (read with po_config_key_source). */
  unsigned char key_origin[64];
} po_config;

/* Fills *cfg with the built-in defaults (no environment, no file). */
PO_API void po_config_defaults(po_config *cfg);

/* Sets one key from its text form ("true", "0.75", "sieve"...). Keys are case-insensitive;
 * numbers are decimal, the whole string (no spaces, hex, inf or nan; integers have no fraction or
 * exponent). Returns PO_ECONFIG with a message in errbuf naming the key and what is allowed when
 * the key is unknown (with the closest key), the type is wrong or the value is out of range; *cfg
 * is then unchanged. */
PO_API int po_config_set(po_config *cfg, const char *key, const char *value, char *errbuf,
                         size_t errlen);

/* Applies a JSON object {"KEY": value, ...} from a string or a file. All-or-nothing: on any
 * error *cfg is unchanged and errbuf names the key (or the line of a syntax error). An unknown key
 * is skipped with a warning to the log callback (level 1) naming it and the closest key. */
PO_API int po_config_load_json(po_config *cfg, const char *json, char *errbuf, size_t errlen);
PO_API int po_config_load_file(po_config *cfg, const char *path, char *errbuf, size_t errlen);

/* Applies PERFOPT_<KEY> environment variables (and PERFOPT_PROFILING=0|1 as a shorthand for
 * ENABLE_PROFILING). All-or-nothing, like po_config_load_json; errbuf names the variable, its
 * value and what is allowed. A PERFOPT_* variable that is neither a key nor one perfopt reads
 * otherwise (PERFOPT_CONFIG, PERFOPT_OUT, PERFOPT_PROFILING, PERFOPT_HEAP_*...) is ignored with a
 * warning to the log callback (level 1) naming it and the closest valid variable. */
PO_API int po_config_from_env(po_config *cfg, char *errbuf, size_t errlen);

/* Defaults, then the file named by PERFOPT_CONFIG (if set), then the environment. */
PO_API int po_config_load(po_config *cfg, char *errbuf, size_t errlen);

/* Writes the configuration as a JSON object string (free with po_free). NULL on ENOMEM. */
PO_API char *po_config_to_json(const po_config *cfg);

/* Number of keys, and key i's name / description (NULL past the end). */
/* Where the value of KEY in cfg came from: "default" (the built-in value), "config file",
 * "environment" (PERFOPT_<KEY>) or "program" (po_config_set, po_config_load_json, or a field
 * the program assigned: a value that differs from the default without a recorded origin).
 * NULL for an unknown key. Static strings. */
PO_API const char *po_config_key_source(const po_config *cfg, const char *key);
PO_API size_t po_config_key_count(void);
PO_API const char *po_config_key_name(size_t i);
PO_API const char *po_config_key_help(size_t i);

/* ======================================================================================
 * The optimizer
 * ====================================================================================== */

typedef struct po_optimizer po_optimizer;
typedef struct po_cache po_cache; /* see the cache section */

/* Creates an optimizer with a copy of *cfg (NULL: po_config_load()). Applies the profiling
 * switch and starts background monitoring when the config asks for it. */
PO_API int po_optimizer_create(const po_config *cfg, po_optimizer **out);
/* Stops monitoring, runs nothing else, frees everything (the seed's cleanup()). NULL is a no-op. */
PO_API void po_optimizer_destroy(po_optimizer *opt);
/* The process-wide default optimizer, created on first use from po_config_load(). NULL only when
 * the configuration is invalid or memory ran out (the reason goes to the log callback). */
PO_API po_optimizer *po_get_optimizer(void);
/* The optimizer's configuration (read-only). */
PO_API const po_config *po_optimizer_config(const po_optimizer *opt);
/* The optimizer's own cache (opt NULL: the default optimizer's), created on first use with
 * CACHE_BUDGET_BYTES and CACHE_POLICY and attached (it follows ENABLE_CACHING, shrinks under
 * memory pressure, appears in the report as "default"). Destroyed with the optimizer. NULL when it
 * cannot be created (see po_last_error / the log). */
PO_API po_cache *po_optimizer_cache(po_optimizer *opt);

/* ======================================================================================
 * Function-level profiler
 *
 * Hot path: po_zone_begin/po_zone_end take no lock, allocate nothing and make no system call
 * once a (thread, site) pair has been seen. Sites are static: one per call site.
 * ====================================================================================== */

typedef struct po_site {
  const char *name;
  const char *file;
  int line;
  uint32_t id; /* assigned on first use; 0 = not yet */
} po_site;

#define PO_SITE_INIT(name_, file_, line_) \
  { (name_), (file_), (line_), 0 }

PO_API void po_zone_begin(po_site *site);
PO_API void po_zone_end(void);

/* Runtime switch (one predictable branch when off). Zones already open still end. */
PO_API void po_profile_set_enabled(int on);
PO_API int po_profile_enabled(void);
/* Timeline mode: also record every zone as an event in a bounded per-thread ring of
 * `events_per_thread` entries (rounded up to a power of two, 16..2^26, else PO_ERANGE); when a ring
 * is full each new event overwrites the oldest, which is counted as dropped. */
PO_API int po_profile_set_timeline(int on, size_t events_per_thread);

/* Calls fn(arg) inside a zone named `name` and returns its result. The name is copied. */
PO_API void *po_profile_call(const char *name, void *(*fn)(void *), void *arg);

/* Optional: names the calling thread in reports (copied, truncated to 31 bytes). */
PO_API void po_profile_thread_name(const char *name);

typedef enum { PO_SORT_TOTAL = 0, PO_SORT_SELF = 1, PO_SORT_CALLS = 2 } po_sort;

/* Forgets everything recorded so far (all threads, exited ones too). Open zones stay open. */
PO_API void po_profile_reset(void);

/* Counters of what the profiler could not record exactly. */
typedef struct po_profile_counters {
  uint64_t dropped_events;  /* timeline events overwritten in a full ring */
  uint64_t truncated_names; /* names over 255 bytes, truncated */
  uint64_t null_names;      /* NULL or empty names, recorded as "(null)" */
  uint64_t unmatched_ends;  /* po_zone_end() without an open zone: ignored */
  uint64_t open_at_exit;    /* zones still open when their thread exited: closed and flagged */
  uint64_t depth_overflows; /* zones deeper than the stack limit: counted, not timed */
  uint64_t site_overflows;  /* sites beyond the table limit: counted, not timed */
} po_profile_counters;
PO_API void po_profile_get_counters(po_profile_counters *out);

/* What one manual zone (po_zone_begin/po_zone_end, the macros) adds to the zone around it, in
 * nanoseconds. Measured once, lazily (the process's first zone; called before any, this measures
 * it), and subtracted from every zone when a report is built, as auto-instrumentation's own cost is
 * from its zones. 0 while profiling is off and nothing was measured. */
PO_API double po_profile_probe_cost_ns(void);

/* The run-time switch, read inline by the macros (use po_profile_set_enabled to change it). */
PO_API extern int po__profiling_enabled;
/* po_zone_begin without the switch check (the macros have just checked it). */
PO_API void po__zone_begin_on(po_site *site);

#if defined(__GNUC__) && !defined(PERFOPT_DISABLE)
/* Begins the zone when profiling is on; the scope's end runs only for a zone that began, so a
 * disabled zone costs one load and one predictable branch. */
static inline int po__scope_begin(po_site *site) {
  if (__builtin_expect(!__atomic_load_n(&po__profiling_enabled, __ATOMIC_RELAXED), 0)) return 0;
  po__zone_begin_on(site);
  return 1;
}
static inline void po__scope_end(int *began) {
  if (*began) po_zone_end();
}
#define PO__CAT2(a, b) a##b
#define PO__CAT(a, b) PO__CAT2(a, b)
/* Times the enclosing scope under `name` (a string literal or a string that outlives the run). */
#define PO_SCOPE(name_)                                                                  \
  static po_site PO__CAT(po__site_, __LINE__) = PO_SITE_INIT(name_, __FILE__, __LINE__); \
  int PO__CAT(po__scope_, __LINE__) __attribute__((cleanup(po__scope_end), unused)) =    \
      po__scope_begin(&PO__CAT(po__site_, __LINE__))
/* First statement of a function: times the function, named by __func__. */
#define PO_PROFILE_FUNCTION()                                              \
  static po_site po__fn_site = PO_SITE_INIT(__func__, __FILE__, __LINE__); \
  int po__fn_scope __attribute__((cleanup(po__scope_end), unused)) = po__scope_begin(&po__fn_site)
/* PO_ZONE("name") { ... } times the block; leaving it by break, goto or return ends the zone. */
#define PO_ZONE(name_)                                                                \
  for (int PO__CAT(po__zone_began_, __LINE__)                                         \
           __attribute__((cleanup(po__scope_end), unused)) = po__scope_begin(__extension__({ \
             static po_site po__zone_site_ = PO_SITE_INIT(name_, __FILE__, __LINE__); \
             &po__zone_site_;                                                         \
           })),                                                                       \
           PO__CAT(po__zone_once_, __LINE__) = 1;                                     \
       PO__CAT(po__zone_once_, __LINE__); PO__CAT(po__zone_once_, __LINE__) = 0)
#elif defined(PERFOPT_DISABLE)
#define PO_SCOPE(name_) ((void)0)
#define PO_PROFILE_FUNCTION() ((void)0)
#define PO_ZONE(name_) if (1)
#else
#error "PO_SCOPE and PO_PROFILE_FUNCTION need GCC or Clang (cleanup attribute)"
#endif

/* ======================================================================================
 * The report model
 *
 * One model feeds every output (JSON, text, HTML, Chrome trace). Its JSON schema is in
 * docs/formats.md: perfopt_version, host, run, profile, memory, resources, gpu, cache,
 * suggestions.
 * ====================================================================================== */

typedef struct po_report po_report;
struct cJSON;

/* Lifecycle: po_report_create (from an optimizer) or po_report_load (from a file), then
 * po_report_destroy. Saving: po_<object>_save_<format>(object, path, ...), atomic; writing to an
 * open stream: po_<object>_write_<format>(object, FILE *, ...). */

/* A snapshot of everything the optimizer knows, from its engines' last readings (opt NULL:
 * profile, host and run only). When no sample was ever taken, one is taken first. */
PO_API int po_report_create(po_optimizer *opt, po_report **out);
/* The system resource report (`perfopt sysinfo`): host facts, one system sample whose rates cover
 * window_ms, the thresholds in force and the GPUs (with the seed's GPU targets), in the report's
 * keys: perfopt_version, host, system, thresholds, gpu, suggestions. cfg NULL: the defaults.
 * Loads NVML. */
PO_API int po_report_create_sysinfo(const po_config *cfg, int window_ms, po_report **out);
/* Reads a saved report back (for `perfopt report`). errbuf names the path or the problem. */
PO_API int po_report_load(const char *path, po_report **out, char *errbuf, size_t errlen);
PO_API void po_report_destroy(po_report *rep);
/* The model as a cJSON tree owned by the report (read-only for the caller). */
PO_API const struct cJSON *po_report_json(const po_report *rep);
/* Serialized JSON (free with po_free); NULL on ENOMEM. */
PO_API char *po_report_to_string(const po_report *rep, int pretty);
/* Atomic write: temporary file in the same directory, fsync, rename. On failure the previous file
 * is intact and errbuf (if given) names the path. */
PO_API int po_report_save_json(const po_report *rep, const char *path, char *errbuf, size_t errlen);
/* The text table of the profile section (and a summary of the other sections). */
PO_API int po_report_write_text(const po_report *rep, FILE *out, po_sort sort, size_t top_n);
/* The timeline as Chrome Trace Event JSON (Perfetto, chrome://tracing), atomically. */
PO_API int po_report_save_trace(const po_report *rep, const char *path, char *errbuf,
                                size_t errlen);

/* ---- advisor and exports ---------------------------------------------------------------- */

/* Runs the advisor's rules over the model and replaces its `suggestions` (docs/formats.md lists
 * the rules). po_report_create already does; this re-runs them on a loaded report, e.g. one an
 * older version wrote. Returns 0, PO_EINVAL or PO_ENOMEM (the report is then unchanged). */
PO_API int po_report_advise(po_report *rep);
/* Chrome Trace Event JSON to a stream: zones as complete events per thread, resource and memory
 * series as counters, phases as async events, threshold firings as instant events. */
PO_API int po_report_write_trace(const po_report *rep, FILE *out);

/* Folded stacks ("main;train;forward 1234" per line) for flamegraph.pl and speedscope. */
typedef enum {
  PO_FOLDED_TIME = 0,      /* self time per calling context, in microseconds */
  PO_FOLDED_HEAP_BYTES = 1 /* bytes allocated per allocating stack (memory.heap.call_tree) */
} po_folded_value;
/* Returns PO_ENOENT when the report has nothing of that kind (no call tree, no heap data). */
PO_API int po_report_write_folded(const po_report *rep, FILE *out, po_folded_value what);
PO_API int po_report_save_folded(const po_report *rep, const char *path, po_folded_value what,
                                 char *errbuf, size_t errlen);

/* Prometheus text exposition (format 0.0.4), the same text the live endpoint's /metrics serves:
 * node_exporter's and the client libraries' names where they exist
 * (process_resident_memory_bytes, node_memory_MemAvailable_bytes, ...), perfopt_* otherwise; base
 * units; HELP and TYPE for every family (docs/formats.md, "Prometheus metrics"). */
PO_API int po_report_write_prom(const po_report *rep, FILE *out);
PO_API int po_report_save_prom(const po_report *rep, const char *path, char *errbuf,
                               size_t errlen);
/* The same exposition as a string (free with po_free); NULL on ENOMEM. */
PO_API char *po_report_to_prom(const po_report *rep, size_t *len);

/* Compares two reports (a: before, b: after) into a diff report whose model is
 * {perfopt_version, diff: {...}} (docs/formats.md): functions slower or faster by self time and
 * by p95, memory and peak up or down, suggestions new and vanished. */
PO_API int po_report_diff(const po_report *a, const po_report *b, po_report **out);
/* The diff as a table for people. */
PO_API int po_report_write_diff_text(const po_report *diff, FILE *out);
/* Evaluates a gate on a diff: "slower:10%" (a function's self time or p95 rose more than 10%),
 * "wall:5%", "peak:10%" (peak RSS), "rss:10%", "suggestions:warning" (a new suggestion of at
 * least that severity). Returns 1 when the condition holds (a regression; `why` says which), 0
 * when not, PO_EINVAL for a malformed spec (`why` says what is allowed). */
PO_API int po_diff_check(const po_report *diff, const char *spec, char *why, size_t whylen);

/* Merges the reports of a distributed job's ranks (or of several runs), in rank order, into one:
 * an aggregate profile (calls and times summed, the slowest rank per function), the
 * memory-heaviest rank's memory, every rank's caches and GPUs, and a `ranks` section side by
 * side. Returns 0, PO_EINVAL (n == 0) or PO_ENOMEM. */
PO_API int po_report_merge(const po_report *const *reps, size_t n, po_report **out);

/* Conveniences: build opt's report (NULL: the default optimizer) and save or print it. A failed
 * write is logged and its message kept for po_last_error. */
PO_API int po_optimizer_save_json(po_optimizer *opt, const char *path);
PO_API int po_optimizer_save_html(po_optimizer *opt, const char *path);
/* The profile table (total, self, avg, p95, calls, % of wall time), 25 rows. */
PO_API int po_optimizer_write_text(po_optimizer *opt, FILE *out, po_sort sort);

/* The seed's get_profiling_report() / save_profiling_report(path), under the seed's names, on the
 * default optimizer. */
PO_API int po_get_profiling_report(po_report **out);
PO_API int po_save_profiling_report(const char *path);

/* ======================================================================================
 * Monitor, memory management and GPUs
 * ====================================================================================== */
/* Probes, hardware facts, GPUs, default thresholds. */

#define PO_GPU_MAX_DEVICES 64
#define PO_GPU_MAX_PROCESSES 32

/* GPU memory one process holds on one device. */
typedef struct po_gpu_process {
  uint32_t pid;
  uint64_t used_memory_bytes; /* UINT64_MAX when the driver does not say (e.g. under MIG) */
} po_gpu_process;

/* One GPU as NVML reports it. Values NVML could not give are -1 (ratios, temperature, power)
 * and the reason of the first failure is in error. */
typedef struct po_gpu_info {
  uint32_t index;
  char name[96];
  char uuid[96];
  uint64_t memory_total_bytes;
  uint64_t memory_used_bytes;
  uint64_t memory_free_bytes;
  uint64_t memory_reserved_bytes; /* driver-reserved memory (v2 call only; else 0) */
  int memory_v2;                  /* 1: nvmlDeviceGetMemoryInfo_v2 (used excludes reserved);
                                   * 0: the v1 call, whose "used" includes reserved memory */
  double utilization_gpu_ratio;   /* 0..1, -1 unknown */
  double utilization_memory_ratio;
  double temperature_celsius;
  double power_watts;
  int processes_known;      /* 1 when the process list could be read */
  size_t process_count;     /* entries in processes[] */
  size_t processes_dropped; /* processes beyond PO_GPU_MAX_PROCESSES */
  po_gpu_process processes[PO_GPU_MAX_PROCESSES];
  char error[128]; /* "" when every call succeeded */
} po_gpu_info;

/* The seed's measure_gpu_usage(), for every device: loads NVML (cfg->nvml_library, or
 * libnvidia-ml.so.1 then libnvidia-ml.so; cfg NULL = po_config_defaults plus PERFOPT_NVML_LIBRARY
 * from the environment), reads up to max devices into devs and unloads it. No NVML, or an NVML
 * error, is the normal state "no GPU": returns 0 with *count = 0 and the reason in reason.
 * Returns PO_EINVAL only for bad arguments (devs NULL with max > 0, count NULL). Slow (nvmlInit):
 * the sampler keeps its own session instead. */
PO_API int po_gpu_usage(const po_config *cfg, po_gpu_info *devs, size_t max, size_t *count,
                        char *reason, size_t reason_len);

/* Where the effective memory limit comes from: the machine (MemTotal), a cgroup's hard limit (v2
 * memory.max, v1 limit_in_bytes or a parent's hierarchical_memory_limit), a cgroup v2 soft limit
 * (memory.high: the kernel throttles and reclaims above it), or the configured budget
 * MEMORY_LIMIT_BYTES. The lowest one is in force. */
typedef enum {
  PO_LIMIT_SYSTEM = 0,
  PO_LIMIT_CGROUP = 1,
  PO_LIMIT_CGROUP_HIGH = 2,
  PO_LIMIT_CONFIG = 3
} po_limit_source;
/* "system", "cgroup", "cgroup_high", "config" (the report's strings). */
PO_API const char *po_limit_source_name(po_limit_source s);

/* What this machine is: for reports and for hardware-aware defaults. */
typedef struct po_hardware {
  char hostname[256];
  char os[64];      /* uname: sysname */
  char kernel[128]; /* uname: release */
  char machine[64]; /* uname: machine */
  char cpu_model[128];
  int cores_online;            /* /sys/devices/system/cpu/online, else cpuN lines in /proc/stat */
  int cores_allowed;           /* Cpus_allowed_list of this process (affinity, cpuset) */
  double cgroup_cpu_limit;     /* cgroup cpu.max quota / period in cores; 0 = no limit */
  uint64_t memory_total_bytes; /* MemTotal */
  uint64_t cgroup_memory_max_bytes; /* 0 = no limit */
  uint64_t memory_limit_bytes;      /* the lowest limit in force (po_limit_source) */
  int limit_from_cgroup;            /* 1 when memory_limit_bytes is a cgroup's (hard or soft) */
  int cgroup_version;               /* 2, 1, or 0 when no memory cgroup was found */
  po_limit_source memory_limit_source;
  uint64_t cgroup_memory_high_bytes; /* v2 memory.high, 0 = none */
  uint64_t cgroup_swap_max_bytes;    /* v2 memory.swap.max; v1 memsw (memory + swap); 0 = none */
  uint64_t memory_budget_bytes;      /* MEMORY_LIMIT_BYTES, 0 = none */
  /* where each limit was read ("cgroup v2 /sys/fs/cgroup/a/memory.max"; "" = none) */
  char memory_max_from[192];
  char memory_high_from[192];
  char swap_max_from[192];
  char cpu_limit_from[192];
  size_t gpu_count;
  size_t gpus_dropped;  /* devices beyond PO_GPU_MAX_DEVICES */
  po_gpu_info gpus[8];  /* the first 8 devices (gpu_count may be larger) */
  char gpu_reason[160]; /* why there is no GPU ("" when gpu_count > 0) */
} po_hardware;

/* Probes the hardware (cfg->proc_root, cfg->nvml_library; cfg NULL = defaults). GPUs are queried
 * only when with_gpus is set (it loads NVML: slow). Never fails on a missing source; PO_ENOMEM
 * when an allocation failed. */
PO_API int po_hardware_probe(const po_config *cfg, int with_gpus, po_hardware *out);

/* The seed's get_optimal_gpu_targets(): for each device, the memory ratio to stay under and the
 * bytes that leaves for a job. Smaller devices get more headroom (table in docs/api.md). */
typedef struct po_gpu_target {
  uint32_t index;
  double memory_threshold_ratio;
  uint64_t target_bytes;   /* memory_total_bytes * ratio */
  uint64_t headroom_bytes; /* memory_total_bytes - target_bytes */
  char why[128];
} po_gpu_target;
/* Fills out[i] for each of the n devices. Returns 0 or PO_EINVAL. */
PO_API int po_gpu_optimal_targets(const po_gpu_info *devs, size_t n, po_gpu_target *out);

/* Thresholds in force: the config's value, or a hardware default when the config leaves it 0.
 * Indexed by po_metric (PO_METRIC_CPU .. PO_METRIC_DISK_BUSY, declared in the monitor section). */
#define PO_THRESHOLD_COUNT 4

typedef struct po_threshold {
  const char *metric; /* po_metric_name(): "cpu", "memory", "gpu_memory", "disk_busy" (static) */
  double value;       /* ratio 0..1 */
  const char *source; /* "default", "config file", "environment", "program" (po_config_key_source)
                         or "hardware default" (the key is 0) (static strings) */
  char why[160]; /* e.g. "hardware default: 16 GiB effective memory limit (< 64 GiB) -> 0.85" */
} po_threshold;

typedef struct po_thresholds {
  po_threshold t[PO_THRESHOLD_COUNT]; /* t[PO_METRIC_CPU] ... t[PO_METRIC_DISK_BUSY] */
} po_thresholds;

/* Resolves the four thresholds from cfg and hw (hw NULL: probed here without GPUs). */
PO_API int po_thresholds_resolve(const po_config *cfg, const po_hardware *hw, po_thresholds *out);

/* ======================================================================================
 * System probes
 *
 * What perfopt reads from /proc, /sys, the cgroup and NVML, for programs that want the raw
 * readings (`perfopt top` and `perfopt run` use them). Samples are fixed-size structs: bounded
 * arrays with counters for what did not fit.
 * ====================================================================================== */

#define PO_PROBE_MAX_CPUS 256
#define PO_PROBE_MAX_DISKS 64
#define PO_PROBE_DISK_NAME_LEN 32

/* ---- system sample ---------------------------------------------------------------------- */

/* Share of elapsed CPU time spent in each mode since the previous sample, each 0..1. busy is
 * 1 - idle - iowait (what "CPU utilization" means in reports). All 0 on the first sample. */
typedef struct po_cpu_usage {
  double user;   /* user + nice */
  double system; /* system + irq + softirq */
  double iowait;
  double steal;
  double idle;
  double busy;
} po_cpu_usage;

/* One whole disk (partitions are not counted: their I/O is already in their disk's line).
 * Counters are cumulative since boot; the rates are since the previous sample and are 0 on the
 * first sample and for a disk that appeared since the previous one (new = 1). */
typedef struct po_disk_usage {
  char name[PO_PROBE_DISK_NAME_LEN];
  int new_disk;
  uint64_t read_bytes;
  uint64_t write_bytes;
  uint64_t read_ops;
  uint64_t write_ops;
  uint64_t busy_ms; /* time the disk had I/O in flight */
  double read_bytes_per_second;
  double write_bytes_per_second;
  double busy_ratio; /* 0..1 */
} po_disk_usage;


/* Sources a sample could not read (bit set = missing this time). */
enum {
  PO_PROBE_MISSING_STAT = 1u << 0,
  PO_PROBE_MISSING_MEMINFO = 1u << 1,
  PO_PROBE_MISSING_DISKSTATS = 1u << 2,
  PO_PROBE_MISSING_PRESSURE = 1u << 3, /* normal on kernels without PSI */
  PO_PROBE_MISSING_LOADAVG = 1u << 4,
  PO_PROBE_MISSING_CGROUP = 1u << 5 /* normal outside a container */
};

typedef struct po_system_sample {
  uint64_t t_ns;           /* CLOCK_MONOTONIC when taken */
  double interval_seconds; /* since the previous sample of this probe; 0 on the first */
  int has_rates;           /* 1 when the ratios and rates are relative to a previous sample */
  unsigned missing;        /* PO_PROBE_MISSING_* bits */

  /* CPU (/proc/stat) */
  po_cpu_usage cpu;       /* all cores together */
  uint32_t cpu_count;    /* cores listed in /proc/stat (entries in cpus[] that are valid) */
  uint32_t cpus_dropped; /* cores beyond PO_PROBE_MAX_CPUS, not in cpus[] (still in cpu) */
  po_cpu_usage cpus[PO_PROBE_MAX_CPUS];
  int cpu_ids[PO_PROBE_MAX_CPUS]; /* N of the cpuN line behind cpus[i] (gaps when cores are offline) */
  uint64_t ctxt;            /* context switches since boot */
  uint32_t procs_running;
  uint32_t procs_blocked;

  /* memory (/proc/meminfo), bytes */
  uint64_t mem_total_bytes;
  uint64_t mem_available_bytes; /* MemAvailable (estimate from MemFree+cache on old kernels) */
  uint64_t mem_used_bytes;      /* total - available, what `free` calls used on current procps */
  uint64_t mem_free_bytes;
  uint64_t mem_buffers_bytes;
  uint64_t mem_cached_bytes; /* Cached + SReclaimable (the page cache part that can be freed) */
  uint64_t mem_shared_bytes; /* Shmem */
  uint64_t swap_total_bytes;
  uint64_t swap_free_bytes;
  uint64_t swap_used_bytes;

  /* cgroup (v2 memory.max / memory.current; v1 memory.limit_in_bytes / usage_in_bytes), the
   * tightest limit from the process's cgroup up to the root */
  int in_cgroup_limit;              /* 1 when a memory limit (hard or soft) is set */
  uint64_t cgroup_memory_max_bytes; /* 0 = no limit */
  uint64_t cgroup_memory_high_bytes; /* v2 memory.high (soft); 0 = none */
  uint64_t cgroup_swap_max_bytes;   /* v2 memory.swap.max; v1 memsw (memory + swap); 0 = none */
  uint64_t cgroup_memory_current_bytes;
  /* The limit a job judges its memory against: the lowest of the system total, the cgroup's hard
   * and soft limits and MEMORY_LIMIT_BYTES (po_probe_create's config). effective_available is
   * limit - the job's usage (the cgroup's working set in a cgroup, this process's RSS under a
   * budget outside one), capped by the system's MemAvailable; else MemAvailable. */
  po_limit_source limit_source;
  uint64_t memory_limit_bytes;
  uint64_t effective_available_bytes;

  /* memory pressure (/proc/pressure/memory), percent of time stalled 0..100 */
  int has_pressure;
  double pressure_some_avg10;
  double pressure_full_avg10;
  uint64_t pressure_some_total_us;

  /* load average (/proc/loadavg) */
  double loadavg[3];

  /* disks (/proc/diskstats) */
  uint32_t disk_count;
  uint32_t disks_dropped; /* whole disks beyond PO_PROBE_MAX_DISKS */
  po_disk_usage disks[PO_PROBE_MAX_DISKS];
  /* sums over disks[] */
  double disk_read_bytes_per_second;
  double disk_write_bytes_per_second;
  double disk_busy_ratio; /* the busiest disk's ratio */

  uint32_t parse_errors; /* malformed or truncated lines skipped (cumulative for this probe) */
} po_system_sample;

/* ---- process sample --------------------------------------------------------------------- */

typedef struct po_process_sample {
  int pid; /* the pid asked for (resolved: 0 becomes getpid()) */
  int with_children;
  uint32_t process_count; /* 1, or 1 + live descendants when with_children */
  double user_seconds;    /* CPU time, cumulative (children: live descendants' times added) */
  double system_seconds;
  double cpu_ratio; /* (user+system) delta / wall delta since this probe's previous sample of
                     * the same pid; in cores (2.0 = two cores busy); 0 on the first */
  uint64_t rss_bytes;
  uint64_t peak_rss_bytes; /* VmHWM (the main process only) */
  uint64_t vsz_bytes;
  uint64_t swap_bytes;
  uint32_t threads;
  int has_io;          /* /proc/PID/io readable (not for other users' processes) */
  uint64_t read_bytes; /* storage bytes (read_bytes/write_bytes lines) */
  uint64_t write_bytes;
  uint64_t rchar; /* bytes through read()/write(), cache hits included */
  uint64_t wchar;
  int open_fds; /* -1 when /proc/PID/fd is not readable */
} po_process_sample;

/* The probe: files opened once and re-read with pread (a full system sample costs about as much
 * as opening, reading and closing the same files once). A probe is used by one thread at a time;
 * two threads each create their own. */
typedef struct po_probe po_probe;

/* Creates a probe on cfg->proc_root ("" = the real /proc and /sys; cfg NULL = the defaults with
 * PERFOPT_PROC_ROOT from the environment). Returns 0, PO_EINVAL (root too long), PO_ENOMEM, or
 * PO_ENOENT when root/proc/stat cannot be opened (nothing useful could be sampled). */
PO_API int po_probe_create(const po_config *cfg, po_probe **out);
/* Closes the files and frees the probe. NULL is a no-op. */
PO_API void po_probe_destroy(po_probe *p);

/* One system sample. Rates are relative to this probe's previous po_probe_system call.
 * A source that cannot be read sets its PO_PROBE_MISSING_* bit and leaves its fields 0; this is
 * not an error. Returns 0, PO_EIO when /proc/stat could not be read, or PO_ENOMEM when a file
 * outgrew the read buffer and it could not grow (that file's source is then marked missing). */
PO_API int po_probe_system(po_probe *p, po_system_sample *out);

/* One process sample: pid 0 = this process (through files kept open). with_children adds the
 * live descendants (a /proc scan: slower). Returns 0, PO_ENOENT when the process does not exist,
 * PO_EINVAL on a negative pid, PO_ENOMEM when the sample is incomplete for want of memory. */
PO_API int po_probe_process(po_probe *p, int pid, int with_children, po_process_sample *out);

/* Resets the rate baselines, so the next sample is a "first" sample. */
PO_API void po_probe_reset(po_probe *p);

/* A GPU session: NVML loaded and initialized once (nvmlInit costs milliseconds to seconds on a
 * real driver), on the first query. Thread-safe; a forked child reopens its own. No NVML is the
 * normal state "no GPU": a query then returns 0 devices and the reason. */
typedef struct po_gpu_session po_gpu_session;
/* cfg->nvml_library ("" = libnvidia-ml.so.1, then libnvidia-ml.so; cfg NULL = defaults plus
 * PERFOPT_NVML_LIBRARY). Loads nothing yet. PO_ENOMEM or PO_EINVAL only. */
PO_API int po_gpu_session_create(const po_config *cfg, po_gpu_session **out);
/* nvmlShutdown (when it was initialized) and dlclose. NULL is a no-op. */
PO_API void po_gpu_session_destroy(po_gpu_session *s);
/* Reads up to max devices into devs (*count written; devices beyond max counted in *dropped when
 * dropped is non-NULL). Returns 0; with no NVML or an NVML error *count is 0 and reason says why.
 * PO_EINVAL for bad arguments; PO_ENOMEM (*count 0) when NVML could not be opened for want of
 * memory (the next query tries again). */
PO_API int po_gpu_session_query(po_gpu_session *s, po_gpu_info *devs, size_t max, size_t *count,
                                size_t *dropped, char *reason, size_t reason_len);

/* Sampler, thresholds, cleanup registry, guard, batch advice, phases. */
/* Every function below that takes a po_optimizer accepts NULL for the default optimizer
 * (po_get_optimizer()), except po_batch_advise, where NULL means "no optimizer". */

/* --- Samples and the background sampler ---------------------------------------------- */

#define PO_SAMPLE_MAX_GPUS 16

/* One sample of the system and this process. A field the system could not provide is -1. */
typedef struct po_sample {
  double t_seconds;               /* seconds since run start */
  double cpu_utilization_ratio;   /* system, all cores, 0..1 */
  double process_cpu_ratio;       /* this process, ratio of ONE core (may exceed 1) */
  int64_t memory_used_bytes;      /* against the effective limit (cgroup or system) */
  int64_t memory_available_bytes; /* effective: min(system available, cgroup headroom) */
  int64_t memory_limit_bytes;     /* effective limit: cgroup limit or MemTotal */
  po_limit_source memory_limit_source; /* where memory_limit_bytes comes from */
  int64_t process_rss_bytes;
  int64_t process_peak_rss_bytes; /* the kernel's high-water mark (or the highest sampled) */
  double disk_read_bytes_per_second; /* whole disks only */
  double disk_write_bytes_per_second;
  double disk_busy_ratio; /* busiest disk, 0..1 */
  int gpu_count;          /* devices sampled (0: none or no NVML) */
  struct {
    int64_t memory_used_bytes;
    int64_t memory_total_bytes;
    double utilization_ratio;
    double time_to_limit_seconds;    /* forecast against memory_total_bytes; -1 none */
    double growth_bytes_per_second;  /* the forecast's trend; 0 unknown */
    int grade;                       /* po_grade in force for this device */
  } gpus[PO_SAMPLE_MAX_GPUS];
  /* memory pressure (PSI avg10 of /proc/pressure/memory) as ratios 0..1; -1 unknown */
  double memory_pressure_some_ratio;
  double memory_pressure_full_ratio;
  /* The forecast (docs/api.md, "Memory autopilot"): when memory_used_bytes reaches
   * memory_limit_bytes at the robust trend of the recent samples; -1 when usage is flat or
   * falling or too few samples were taken; 0 at or over the limit. */
  double memory_time_to_limit_seconds;
  double memory_growth_bytes_per_second; /* the trend (Theil-Sen over the window); 0 unknown */
  int memory_grade;                      /* po_grade in force for host memory */
} po_sample;

/* Starts the background sampler (the seed's _start_monitoring); 0 when already running. The
 * interval is cfg.monitor_interval_ms (minimum 10 ms). Returns PO_ENOENT when cfg.proc_root
 * cannot be opened. A forked child has no running sampler (it may start one). */
PO_API int po_monitor_start(po_optimizer *opt);
/* Stops the sampler and joins its thread. The thread waits on a condition variable, not in
 * sleep, so this returns as soon as a tick in progress (a sample and its actions) ends, never an
 * interval later. Idempotent; PO_EBUSY from a listener on the sampler thread. Recorded series,
 * events and stats are kept. */
PO_API int po_monitor_stop(po_optimizer *opt);
/* 1 while the sampler thread runs, else 0. */
PO_API int po_monitor_running(po_optimizer *opt);
/* Takes one sample now on the calling thread (also feeds the series and thresholds, like a
 * background tick). *out may be NULL. */
PO_API int po_monitor_sample_now(po_optimizer *opt, po_sample *out);
/* The most recent sample. PO_ENOENT before the first one. */
PO_API int po_monitor_latest(po_optimizer *opt, po_sample *out);

typedef struct po_monitor_stats {
  uint64_t samples;                  /* samples taken (background and po_monitor_sample_now) */
  double interval_seconds;           /* configured interval */
  double effective_interval_seconds; /* after overhead limiting (== interval when not limited) */
  double overhead_core_ratio;        /* sampler thread CPU time / wall time while running */
  double sample_cpu_seconds_avg;     /* sampler thread CPU time per tick, its wake-up included */
  uint64_t events;                   /* threshold firings recorded */
  uint64_t dropped_events; /* firings that did not fit the event ring (counted, not kept) */
  size_t series_bytes;     /* memory held by all series together (constant for a run) */
} po_monitor_stats;
PO_API int po_monitor_get_stats(po_optimizer *opt, po_monitor_stats *out);

/* --- Thresholds and pressure ----------------------------------------------------------- */

typedef enum {
  PO_METRIC_CPU = 0,        /* system cpu_utilization_ratio vs CPU_THRESHOLD */
  PO_METRIC_MEMORY = 1,     /* memory used / effective limit vs MEMORY_THRESHOLD */
  PO_METRIC_GPU_MEMORY = 2, /* per device: used / total vs GPU_MEMORY_THRESHOLD */
  PO_METRIC_DISK_BUSY = 3,  /* busiest disk's busy ratio vs DISK_BUSY_THRESHOLD */
  PO_METRIC_MANUAL = 4      /* po_optimize_memory() called by the program (no threshold) */
} po_metric;
/* "cpu", "memory", "gpu_memory", "disk_busy", "manual" (the report's "metric" strings). */
PO_API const char *po_metric_name(po_metric m);

typedef enum { PO_CLEANUP_NORMAL = 0, PO_CLEANUP_AGGRESSIVE = 1 } po_cleanup_level;

/* The memory autopilot's grades, in escalation order (docs/api.md, "Memory autopilot"): warn
 * (listeners are told, nothing is freed), normal cleanup, aggressive cleanup, emergency
 * (aggressive cleanup, the flight record, the checkpoint handlers). */
typedef enum {
  PO_GRADE_NONE = 0,
  PO_GRADE_WARN = 1,
  PO_GRADE_NORMAL = 2,
  PO_GRADE_AGGRESSIVE = 3,
  PO_GRADE_EMERGENCY = 4
} po_grade;
/* "none", "warn", "normal", "aggressive", "emergency". */
PO_API const char *po_grade_name(po_grade g);

/* What a pressure listener or threshold callback receives. Valid only during the call. */
typedef struct po_pressure_event {
  double t_seconds;
  po_metric metric;
  int device;              /* GPU index for PO_METRIC_GPU_MEMORY, else -1 */
  double value;            /* ratio that crossed (0 for PO_METRIC_MANUAL) */
  double threshold;        /* ratio in force (0 for PO_METRIC_MANUAL) */
  po_cleanup_level level;  /* how hard to clean: aggressive when far over the threshold */
  const po_sample *sample; /* the sample that fired (NULL for PO_METRIC_MANUAL) */
  po_grade grade;          /* memory firings: the autopilot's grade (NONE for cpu, disk, manual) */
  double time_to_limit_seconds; /* the forecast when it fired; -1 none */
} po_pressure_event;

/* A pressure listener: caches register one to shrink themselves, and a program registers one as
 * its threshold callback (it receives the sample that fired). Returns the bytes it released
 * (0 if unknown); they are added to the event's freed_bytes. Called on the sampler thread for
 * threshold firings and on the caller's thread for po_optimize_memory(); must not call
 * po_monitor_stop() nor add/remove listeners. */
typedef int64_t (*po_pressure_fn)(const po_pressure_event *ev, void *user);

/* Registers fn; `name` (copied, 31 bytes kept) appears in the event's actions as
 * "listener:<name>". *id_out (may be NULL) identifies it for removal. At most 64 listeners:
 * PO_EFULL beyond. Order of calls: registration order. */
PO_API int po_monitor_add_pressure_listener(po_optimizer *opt, const char *name, po_pressure_fn fn,
                                            void *user, int *id_out);
/* Removes a listener; after it returns the listener is not running and will not be called.
 * PO_ENOENT for an unknown id. */
PO_API int po_monitor_remove_pressure_listener(po_optimizer *opt, int id);

/* --- Cleanup registry (the seed's optimize_memory) -------------------------------------- */

typedef enum {
  PO_RESOURCE_MODEL = 0,
  PO_RESOURCE_DATA = 1,
  PO_RESOURCE_VISUALIZATION = 2,
  PO_RESOURCE_GPU = 3, /* e.g. a user's "CUDA cache clear" */
  PO_RESOURCE_OTHER = 4
} po_resource_type;
#define PO_RESOURCE_ALL (-1)
/* "model", "data", "visualization", "gpu", "other". */
PO_API const char *po_resource_type_name(int type);

/* A cleanup handler: releases what it can. `level` is the level being run. */
typedef void (*po_cleanup_fn)(po_cleanup_level level, void *user);

/* Registers a handler. po_optimize_memory() runs it at `min_level` or higher (a
 * PO_CLEANUP_AGGRESSIVE handler runs only in aggressive cleanups); po_clear_resource() of its
 * type always runs it. Lower `priority` runs first;
 * equal priorities run in registration order. `name` is copied (63 bytes kept). At most 256. */
PO_API int po_cleanup_register(po_optimizer *opt, const char *name, po_resource_type type,
                               int priority, po_cleanup_level min_level, po_cleanup_fn fn,
                               void *user, int *id_out);
PO_API int po_cleanup_unregister(po_optimizer *opt, int id);

typedef struct po_cleanup_result {
  int handlers_run;
  int64_t rss_before_bytes;
  int64_t rss_after_bytes; /* after malloc_trim(0) */
  int64_t freed_bytes;     /* RSS drop over the pass, or the sum of what each handler's RSS
                            * drop and each listener reported, when larger; never negative */
} po_cleanup_result;

/* Runs every handler of `level` (see po_cleanup_register), then the pressure listeners (metric
 * PO_METRIC_MANUAL), then malloc_trim(0); measures RSS before/after each handler and records the
 * run for the report. *out may be NULL. Not reentrant from inside a handler (PO_EBUSY). */
PO_API int po_optimize_memory(po_optimizer *opt, po_cleanup_level level, po_cleanup_result *out);
/* Targeted clearing (the seed's clear_cache(type)): runs every handler of `type`, whatever its
 * min_level (`level` is passed to them); no listeners. */
PO_API int po_clear_resource(po_optimizer *opt, po_resource_type type, po_cleanup_level level,
                             po_cleanup_result *out);

/* --- Memory autopilot: the emergency handler -------------------------------------------- */

/* A "checkpoint now" handler: called when the memory autopilot reaches its emergency grade (the
 * limit is a few seconds away, or cleanup did not move it out of the horizon), once per episode,
 * on the sampler thread, after an aggressive cleanup and after the flight record was written.
 * ev->grade is PO_GRADE_EMERGENCY and ev->time_to_limit_seconds the forecast. It should save
 * what the job cannot afford to lose, quickly. It must not call po_monitor_stop() nor register
 * or unregister handlers. */
typedef void (*po_checkpoint_fn)(const po_pressure_event *ev, void *user);
/* Registers fn (`name` copied, 63 bytes kept); at most 16: PO_EFULL beyond. Handlers run in
 * registration order. */
PO_API int po_checkpoint_register(po_optimizer *opt, const char *name, po_checkpoint_fn fn,
                                  void *user, int *id_out);
/* After it returns the handler is not running and will not be called. PO_ENOENT for an unknown
 * id. */
PO_API int po_checkpoint_unregister(po_optimizer *opt, int id);

/* --- Memory guard ----------------------------------------------------------------------- */

/* Contract for guarded operations: return 0 on success, PO_EOOM when they ran out of memory
 * (or any other PO_E* code). On failure an operation MUST leave ctx as it found it (it may not
 * free, move or consume what ctx points to); that is what lets the guard run the fallback on the
 * same ctx and what guarantees the caller's data survives an out-of-memory. */
typedef int (*po_guard_fn)(void *ctx);

/* A step's memory as a function of its batch size (po_batch_probe measures it): memory =
 * fixed_bytes + bytes_per_sample * batch, above what was in use before the step. */
typedef struct po_batch_model {
  double fixed_bytes;
  double bytes_per_sample;
} po_batch_model;

typedef struct po_guard_options {
  const char *name;      /* for the report (NULL: "guard") */
  int device;            /* -1: system/cgroup memory; >= 0: that GPU's free memory */
  double headroom_ratio; /* extra share of required_bytes kept free (0: none) */
  int cleanup_after;     /* cleanup level run after the operation, -1 none (default NORMAL) */
  /* Batched operations: with both set, required_bytes 0 means the model's memory at *batch, and
   * an out-of-memory from primary lowers *batch (which primary reads through its ctx) to what the
   * model says fits after the aggressive cleanup and runs primary once more before the
   * fallback. */
  const po_batch_model *batch_model;
  int64_t *batch;
} po_guard_options;
/* Defaults: name "guard", device -1, headroom 0, cleanup_after PO_CLEANUP_NORMAL. */
PO_API void po_guard_options_init(po_guard_options *o);

typedef struct po_guard_result {
  int ran;        /* 0 none, 1 primary, 2 fallback */
  int primary_rc; /* primary's return code (0 when it did not run) */
  int64_t required_bytes;
  int64_t available_bytes; /* measured before the decision (-1 unknown) */
  int64_t retried_batch;   /* the batch primary was run at again after an out-of-memory (0: none) */
} po_guard_result;

/* The seed's knowledge-transfer safeguard. Checks available memory (after cleanup if short);
 * runs `primary` when required_bytes (+ headroom) fits, else `fallback`; runs `fallback` too
 * when primary returns PO_EOOM (after an aggressive cleanup); cleans up after either; records
 * the run in the report's memory.guards. Returns what ran's result: 0, or PO_EOOM when it did
 * not fit and there is no fallback (nothing ran), or the operation's error. o and out may be
 * NULL; fallback may be NULL. */
PO_API int po_guard_run(po_optimizer *opt, int64_t required_bytes, po_guard_fn primary,
                        po_guard_fn fallback, void *ctx, const po_guard_options *o,
                        po_guard_result *out);

/* --- Batch-size advice ------------------------------------------------------------------ */

typedef enum { PO_BATCH_MULTIPLE_OF_8 = 0, PO_BATCH_POWER_OF_TWO = 1 } po_batch_rounding;

typedef struct po_batch_request {
  int64_t bytes_per_sample; /* > 0: given; 0: measured from the two points below */
  int64_t fixed_bytes;      /* memory independent of the batch (model, buffers) */
  int64_t batch_a, bytes_a; /* measurement points: memory used at batch size a ... */
  int64_t batch_b, bytes_b; /* ... and at batch size b (b != a) */
  int64_t available_bytes;  /* 0: probe (system/cgroup, or GPU `device`) */
  int device;               /* -1 host memory, >= 0 GPU index (when probing) */
  double headroom_ratio;    /* share of available kept free (0: default 0.1) */
  po_batch_rounding rounding;
  int64_t max_batch; /* upper bound (0: none) */
} po_batch_request;

/* Largest batch size that fits the available memory minus headroom, rounded down to a multiple
 * of 8 or a power of two. Returns PO_EINVAL for a bad request, PO_ETOOBIG when not even the
 * smallest step (8 or 1) fits; *batch_out is then 0. opt may be NULL. */
PO_API int po_batch_advise(po_optimizer *opt, const po_batch_request *req, int64_t *batch_out);

/* Batch size from measured memory, not from crashes (docs/api.md, "Batch probe"). The caller's
 * step runs at two or three small batch sizes; perfopt measures the peak memory increment of
 * each, fits memory = fixed + per_sample * batch, proposes the largest batch that fits the
 * effective available memory minus a margin, and validates it with one step, halving only if
 * that step still runs out of memory. */

/* One step (forward and backward) at `batch`: 0, PO_EOOM when it ran out of memory (leaving the
 * job able to continue, e.g. after catching a CUDA OOM), or another PO_E* code (stops the probe). */
typedef int (*po_batch_step_fn)(int64_t batch, void *user);
/* The caller's memory measure, e.g. a framework's peak allocated bytes: called before and after
 * each step; the step's increment is after - before. */
typedef int64_t (*po_batch_measure_fn)(void *user);
/* Distributed jobs: combines one rank's proposal with the others' (their minimum, e.g. through
 * an all-reduce the caller already has) and returns it. No MPI dependency. */
typedef int64_t (*po_batch_reduce_fn)(int64_t batch, void *user);

typedef struct po_batch_probe_options {
  int64_t sizes[3];        /* batch sizes measured (ascending; 0 ends the list; {0}: 1, 4, 16;
                            * the third is skipped when the first two say it needs more than half
                            * of the usable memory) */
  int device;              /* -1 host memory, >= 0 that GPU (NVML used memory) */
  po_batch_measure_fn measure; /* NULL: peak RSS (host) or NVML used memory (GPU) */
  void *measure_user;
  int64_t available_bytes; /* 0: the effective available memory (cgroup-aware), or the GPU's free */
  double headroom_ratio;   /* share of available kept free (0: 0.05) */
  int64_t max_batch;       /* cap (0: none) */
  int64_t multiple;        /* round down to a multiple of this (0 or 1: any) */
  po_batch_reduce_fn reduce; /* NULL: single process */
  void *reduce_user;
} po_batch_probe_options;
/* Zeroes *o and sets device -1. */
PO_API void po_batch_probe_options_init(po_batch_probe_options *o);

typedef struct po_batch_probe_result {
  int64_t batch;           /* validated: one step ran at this size */
  int64_t proposed_batch;  /* what the model proposed before validation */
  po_batch_model model;
  int64_t available_bytes; /* what the proposal was sized against */
  int steps;               /* step calls: measurements + validation + fallbacks */
  int fallbacks;           /* halvings after an out-of-memory validation */
  int nmeasured;
  int64_t measured_batch[3];
  int64_t measured_bytes[3]; /* peak increment of each measured step */
} po_batch_probe_result;

/* Runs the probe. Returns 0 with out->batch; PO_EOOM when a measuring step runs out of memory or
 * even the smallest batch fails validation; PO_ERANGE when memory does not grow with the batch
 * (nothing to size: set max_batch); PO_ETOOBIG when no batch fits; the step's own error; PO_EINVAL
 * for bad options. out is filled as far as the probe got. opt NULL: no optimizer (the machine is
 * probed directly). Recorded in the report's memory.batch_probes when opt is given. */
PO_API int po_batch_probe(po_optimizer *opt, po_batch_step_fn step, void *user,
                          const po_batch_probe_options *o, po_batch_probe_result *out);

/* --- Phases ----------------------------------------------------------------------------- */

/* Marks the start of a phase (e.g. "bucket 3") in the report's resources.phases; a phase still
 * open ends here first. When cleanup between phases is on, ending a phase runs
 * po_optimize_memory at that level. At most 1024 phases are kept; more are counted. */
PO_API int po_phase_begin(po_optimizer *opt, const char *name);
PO_API int po_phase_end(po_optimizer *opt);
/* -1 (default): no cleanup between phases; else the cleanup level run at each po_phase_end. */
PO_API int po_phase_set_cleanup(po_optimizer *opt, int level);

/* ======================================================================================
 * Process trees and runs (`perfopt run`, `perfopt attach`)
 *
 * A process-tree reader lists a process and all its descendants with their resource use. A run
 * samples such a tree at its caller's pace and builds the run report: the `processes` section
 * (per process, the tree's totals and timeline), how the run ended, and the in-process reports
 * the tree's processes wrote (merged). The caller owns the processes' lifecycle (fork or spawn,
 * signals, wait): `perfopt run` and `perfopt attach` are such callers.
 * ====================================================================================== */

#define PO_PROC_COMM_LEN 32
#define PO_PROC_TREE_MAX 4096 /* processes one reader follows; further descendants are counted */

/* One process of a tree as the reader last read it. Counters are cumulative for the process. */
typedef struct po_proc_info {
  int pid;
  int ppid;
  char comm[PO_PROC_COMM_LEN]; /* the kernel's name for it (at most 15 bytes for most) */
  char state;                  /* R running, S sleeping, D disk wait, T stopped, Z zombie, ... */
  int first_read;              /* 1 on this reader's first read of the process */
  int renamed;                 /* 1 when comm changed since the previous read (usually an exec) */
  double start_seconds;        /* when it started, seconds since boot */
  double user_seconds;
  double system_seconds;
  double cpu_ratio; /* cores busy since this reader's previous read of it (first read: since it
                     * started) */
  uint64_t rss_bytes;
  uint64_t peak_rss_bytes; /* VmHWM: the kernel's high-water mark of its RSS */
  uint64_t swap_bytes;
  uint64_t minor_faults;
  uint64_t major_faults;
  int has_io;           /* /proc/PID/io readable (only the owner's or root's processes) */
  uint64_t read_bytes;  /* storage bytes read and written */
  uint64_t write_bytes;
  uint32_t threads;
  int open_fds; /* -1 when /proc/PID/fd is not readable */
  uint64_t voluntary_ctxt_switches;
  uint64_t involuntary_ctxt_switches;
} po_proc_info;

/* The tree at one read: sums over its live processes, listed in rows or not. Zombies (exited,
 * not yet reaped) are counted in `zombies` only. */
typedef struct po_proc_tree_totals {
  uint64_t t_ns;       /* CLOCK_MONOTONIC of the read */
  uint32_t processes;  /* live processes read */
  uint32_t not_listed; /* of those, beyond the caller's row capacity */
  uint32_t zombies;
  uint32_t exited;    /* processes of the previous read that are gone (or zombies) now */
  uint32_t untracked; /* descendants found beyond PO_PROC_TREE_MAX so far: not read, not counted */
  double user_seconds;
  double system_seconds;
  double cpu_ratio; /* cores */
  uint64_t rss_bytes;
  uint64_t swap_bytes;
  uint64_t minor_faults;
  uint64_t major_faults;
  uint64_t read_bytes;
  uint64_t write_bytes;
  uint32_t threads;
  int64_t open_fds; /* over the processes whose fd table is readable */
  uint64_t voluntary_ctxt_switches;
  uint64_t involuntary_ctxt_switches;
} po_proc_tree_totals;

/* The tree does not include its root: it is the root's descendants (perfopt run reads its own
 * descendants, orphans it adopted as a child subreaper included). */
#define PO_PROC_TREE_EXCLUDE_ROOT 1u

typedef struct po_proc_tree po_proc_tree;

/* A reader of the tree of root_pid (0 = this process) on cfg->proc_root (cfg NULL: the defaults
 * with PERFOPT_PROC_ROOT). Each read scans /proc once for processes it has not classified yet
 * and re-reads the tree's processes through files it keeps open (pread), so its cost grows with
 * the tree, not with the machine. A descendant stays in the tree when its parent exits and it is
 * reparented. Returns 0, PO_EINVAL, PO_ENOMEM, or PO_ENOENT when the root does not exist. A
 * reader is used by one thread at a time. */
PO_API int po_proc_tree_create(const po_config *cfg, int root_pid, unsigned flags,
                               po_proc_tree **out);
/* Closes the kept files and frees the reader. NULL is a no-op. */
PO_API void po_proc_tree_destroy(po_proc_tree *t);
/* Reads the tree: up to cap processes into rows (rows may be NULL with cap 0; the root first,
 * then by pid), *nrows (may be NULL) the number written, *totals (may be NULL) the sums. Returns
 * 0 (an empty tree is not an error: totals.processes is then 0) or PO_EINVAL. */
PO_API int po_proc_tree_read(po_proc_tree *t, po_proc_info *rows, size_t cap, size_t *nrows,
                             po_proc_tree_totals *totals);
/* The command line of a process (arguments joined by spaces, truncated to len - 1 bytes); ""
 * when it cannot be read (a kernel thread, an exited process). Returns the length written. */
PO_API size_t po_proc_tree_cmdline(po_proc_tree *t, int pid, char *buf, size_t len);

/* Resource use of reaped processes, as wait4() or getrusage(RUSAGE_CHILDREN) give it. */
typedef struct po_child_usage {
  double user_seconds;
  double system_seconds;
  uint64_t max_rss_bytes; /* the largest peak RSS of a single process */
  uint64_t minor_faults;
  uint64_t major_faults;
  uint64_t read_bytes; /* block input and output, in bytes (512 per block) */
  uint64_t write_bytes;
  uint64_t voluntary_ctxt_switches;
  uint64_t involuntary_ctxt_switches;
} po_child_usage;

typedef struct po_run po_run;

typedef struct po_run_options {
  /* 0: a run; the tree is the calling process's descendants (make the caller a child subreaper,
   * prctl(PR_SET_CHILD_SUBREAPER), so that orphans stay in it). > 0: attach to that process's
   * tree. */
  int attach_pid;
  /* The command, NULL-terminated (copied for the report). NULL: read from /proc (attach). */
  const char *const *argv;
  /* A directory where the tree's processes write their in-process reports (PERFOPT_OUT=DIR/, see
   * docs/formats.md), merged by po_run_report_create. NULL: none. */
  const char *report_dir;
  double interval_seconds; /* the caller's sampling interval (for the report) */
} po_run_options;

/* What one sample saw, for a progress line. */
typedef struct po_run_progress {
  double elapsed_seconds;
  double cpu_ratio;   /* cores over the last interval, the whole tree */
  double cpu_seconds; /* the tree so far: live processes, and exited ones as last seen */
  uint64_t rss_bytes; /* the tree's RSS now */
  uint64_t peak_rss_bytes;  /* the largest tree RSS sampled so far */
  int64_t gpu_memory_bytes; /* the tree's GPU memory now; -1 when no GPU is monitored */
  int64_t heap_live_bytes;  /* the tree's live heap (po_run_set_heap); -1 when not traced */
  uint32_t processes;
} po_run_progress;

typedef enum {
  PO_RUN_EXITED = 0,   /* the child exited with exit_code */
  PO_RUN_KILLED = 1,   /* the child was killed by `signal` */
  PO_RUN_DETACHED = 2, /* attach: watching stopped (duration, signal); the tree still runs */
  PO_RUN_GONE = 3      /* attach: the root exited; how it ended is not known */
} po_run_how;

/* How a run ended, as the caller saw it. */
typedef struct po_run_end {
  po_run_how how;
  int exit_code; /* PO_RUN_EXITED */
  int signal;    /* PO_RUN_KILLED */
  int core_dumped;
  int timed_out;        /* the caller ended it at its time limit */
  int forwarded_signal; /* a signal the caller received and passed on to the tree, 0 none */
  int has_usage;        /* children is valid */
  po_child_usage children; /* getrusage(RUSAGE_CHILDREN) at the end: every reaped process */
} po_run_end;

/* Starts a run (or an attach): reads the host, the out-of-memory kill counters of the cgroup
 * (memory.events, or memory.oom_control under cgroup v1) and of the system (/proc/vmstat), and
 * opens the tree reader. Samples nothing yet. Returns 0, PO_EINVAL, PO_ENOMEM, or PO_ENOENT when
 * the process to attach to does not exist. */
PO_API int po_run_create(const po_config *cfg, const po_run_options *opt, po_run **out);
/* The run's direct child, whose end is the run's end. */
PO_API int po_run_set_child(po_run *r, int pid);
/* The heap tracker session the run's processes were started under (see "Heap tracking" below;
 * borrowed: it must outlive the run). Each sample reads its totals (the progress's
 * heap_live_bytes) and the run report gets memory.heap from a snapshot. */
struct po_heap_session;
PO_API int po_run_set_heap(po_run *r, struct po_heap_session *s);
/* Takes one sample of the tree (and of the GPUs, at most once a second): per-process records,
 * the tree's totals, peaks and timeline. *out may be NULL. Not thread-safe per run. */
PO_API int po_run_sample(po_run *r, po_run_progress *out);
/* A process the caller reaped (the child, or an orphan it adopted): its wait status and usage
 * (may be NULL) complete its record with the kernel's exact figures. */
PO_API int po_run_reaped(po_run *r, int pid, int wait_status, const po_child_usage *usage);
/* Records how the run ended, takes a last sample and reads the OOM counters again. */
PO_API int po_run_finish(po_run *r, const po_run_end *end);
/* The run report: perfopt_version, host, run (with `exit`), processes, and the merged in-process
 * reports' profile (and the first process's memory, resources and cache sections); the keys are
 * in docs/formats.md. Reads and merges the report directory's files. */
PO_API int po_run_report_create(po_run *r, po_report **out);
/* Frees the run (the report directory is the caller's). NULL is a no-op. */
PO_API void po_run_destroy(po_run *r);

/* The end-of-run summary (`perfopt run`): how it ended, wall, CPU (user, system, cores used),
 * the tree's peak RSS and when, peak GPU memory, I/O, the top_n functions of the profile when
 * there is one, and the suggestions when there are any. Returns 0, PO_EINVAL or PO_EIO. */
PO_API int po_report_write_summary(const po_report *rep, FILE *out, size_t top_n);

/* ======================================================================================
 * Cache (byte-budgeted, typed, SIEVE / S3-FIFO / LRU)
 * ====================================================================================== */

/* A byte-budgeted, typed, thread-safe cache for models, data sets and rendered figures.
 *
 * Every entry has a key (bytes, at most 65535), a value pointer, a size in bytes that the caller
 * declares (the budget counts only these sizes, never the cache's own metadata), a resource type
 * (po_resource_type: model, data, visualization, gpu, other), a free callback, an optional TTL and
 * an optional pin. The cache never holds more than its budget: a put evicts until the new object
 * fits; an object larger than the budget is refused with PO_ETOOBIG.
 *
 * Ownership: a successful put (or a loader that returns 0) hands the value to the cache, which
 * calls the entry's free callback exactly once when the entry leaves (eviction, removal,
 * replacement, clear, shrink, destroy). On an error the caller keeps the value.
 *
 * Lifetime of a returned value: po_cache_get returns a borrowed pointer that stays valid while
 * the entry is in the cache. When other threads may evict it, use po_cache_acquire or
 * po_cache_get_or_load, which pin the entry until po_cache_release.
 *
 * Free callbacks run with the cache's internal lock held: they must not call into the same cache.
 * Hot path: po_cache_get on a SIEVE or S3-FIFO cache takes no lock and writes no shared line. */

typedef struct po_cache po_cache;
typedef struct po_cache_handle po_cache_handle;

#define PO_CACHE_TYPE_COUNT 5 /* po_resource_type values 0 .. 4 */
#define PO_CACHE_MAX_KEY 65535

/* Called once per value when its entry leaves the cache (NULL: nothing to free). */
typedef void (*po_cache_free_fn)(void *value);

/* Per-entry options for po_cache_put (NULL: type other, no free callback, no TTL, not pinned). */
typedef struct po_cache_entry_opts {
  po_resource_type type;
  po_cache_free_fn free_fn; /* a cache accepts at most 255 distinct free callbacks (PO_ERANGE) */
  uint64_t ttl_ns;          /* 0 = never expires; millisecond resolution, at most ~49 days */
  int pinned;               /* 1: inserted pinned (never evicted) until po_cache_unpin */
} po_cache_entry_opts;

/* Options for po_cache_create_ex (zeroed = SIEVE, enabled, name "cache", real clock). */
typedef struct po_cache_options {
  const char *name;       /* copied (63 bytes kept); the report's "name" */
  po_cache_policy policy; /* PO_CACHE_SIEVE (default), PO_CACHE_S3FIFO, PO_CACHE_LRU */
  int disabled;           /* 1: start with caching off (see po_cache_set_enabled) */
  /* Clock for TTLs (tests inject one); NULL = CLOCK_MONOTONIC. Must be monotonic. */
  uint64_t (*now_ns)(void *clock_arg);
  void *clock_arg;
} po_cache_options;

/* Creates a cache holding at most budget_bytes of declared sizes. PO_EINVAL for a zero budget,
 * an unknown policy or out == NULL; PO_ENOMEM. */
PO_API int po_cache_create(uint64_t budget_bytes, po_cache_policy policy, po_cache **out);
PO_API int po_cache_create_ex(uint64_t budget_bytes, const po_cache_options *opts, po_cache **out);
/* Detaches from the optimizer, frees every entry (free callbacks run, pinned entries too) and the
 * cache. No other thread may use the cache during or after the call. NULL is a no-op. */
PO_API void po_cache_destroy(po_cache *c);

/* Inserts or replaces key. Evicts unpinned entries (by policy) until size_bytes fits. Errors
 * (the cache is unchanged and the caller keeps value): PO_ETOOBIG when size_bytes > budget,
 * PO_EBUSY when pinned entries leave no room or key exists and is pinned, PO_EINVAL (key over
 * PO_CACHE_MAX_KEY bytes, size over 1 TiB, bad type), PO_ERANGE (too many distinct free
 * callbacks), PO_ENOMEM. With caching off the value is taken
 * and freed at once (as if evicted immediately) and 0 is returned. */
PO_API int po_cache_put(po_cache *c, const void *key, size_t keylen, void *value,
                        uint64_t size_bytes, const po_cache_entry_opts *opts);
/* Looks key up: 0 and *value on a hit, PO_ENOENT on a miss (or an expired entry, or caching
 * off). Marks the entry recently used (SIEVE: visited bit; S3-FIFO: frequency; LRU: moves it,
 * under the lock). Hot path: no lock, no allocation, no system call (except the clock for an
 * entry that has a TTL). */
PO_API int po_cache_get(po_cache *c, const void *key, size_t keylen, void **value);
/* Like po_cache_get, and pins the entry until po_cache_release(c, *handle). */
PO_API int po_cache_acquire(po_cache *c, const void *key, size_t keylen, void **value,
                            po_cache_handle **handle);
/* Releases a handle from po_cache_acquire or po_cache_get_or_load. NULL is a no-op. */
PO_API void po_cache_release(po_cache *c, po_cache_handle *handle);

/* What a loader hands back: the value and how to store it. */
typedef struct po_cache_loaded {
  void *value;
  uint64_t size_bytes;
  po_resource_type type;
  po_cache_free_fn free_fn;
  uint64_t ttl_ns;
} po_cache_loaded;
/* Produces the value of a missing key into *out; returns 0 or a negative error code (which
 * every caller waiting for this key receives). Runs without any cache lock held. */
typedef int (*po_cache_loader_fn)(const void *key, size_t keylen, void *ctx, po_cache_loaded *out);

/* Returns key's value, loading it with loader(key, keylen, ctx, ...) when missing. Concurrent
 * callers for the same missing key share one load: one thread calls the loader, the others wait
 * and all receive its value, or its error (then nothing is cached). The entry is pinned for the
 * caller until po_cache_release(c, *handle); a loaded value that cannot be cached (caching off,
 * PO_ETOOBIG, all pinned) is still returned and is freed when the last handle is released. */
PO_API int po_cache_get_or_load(po_cache *c, const void *key, size_t keylen,
                                po_cache_loader_fn loader, void *ctx, void **value,
                                po_cache_handle **handle);

/* Removes key (its free callback runs). PO_ENOENT if absent, PO_EBUSY if pinned. */
PO_API int po_cache_remove(po_cache *c, const void *key, size_t keylen);
/* Pins / unpins a cached entry (pins nest). PO_ENOENT if absent; unpin: PO_ESTATE if not pinned. */
PO_API int po_cache_pin(po_cache *c, const void *key, size_t keylen);
PO_API int po_cache_unpin(po_cache *c, const void *key, size_t keylen);
/* Removes every unpinned entry (all types, or one type). Returns the number removed. */
PO_API size_t po_cache_clear(po_cache *c);
PO_API size_t po_cache_clear_type(po_cache *c, po_resource_type type);
/* Removes expired entries now (they are otherwise removed when found). Returns the count. */
PO_API size_t po_cache_purge_expired(po_cache *c);
/* Evicts unpinned entries in policy order until at most target_bytes are held; records the
 * shrink (reason "manual"). *freed_bytes (may be NULL) receives the bytes released. Returns 0,
 * or PO_EBUSY when pinned entries alone exceed the target (it still evicts what it can). */
PO_API int po_cache_shrink(po_cache *c, uint64_t target_bytes, uint64_t *freed_bytes);
/* Memory-pressure cleanup: shrinks to the optimizer's CACHE_SHRINK_FRACTION of the budget (0.5
 * when not attached), evicting lower-priority types first (other, visualization, data, model,
 * gpu; gpu entries first when reason is "gpu_memory"), and records the shrink with `reason`.
 * Returns the bytes released. Called by the monitor's pressure listener for attached caches. */
PO_API uint64_t po_cache_on_pressure(po_cache *c, const char *reason);

/* Caching switch of this cache (the optimizer's ENABLE_CACHING also applies to attached caches).
 * Off: every get misses, get_or_load calls the loader each time, put frees the value at once. */
PO_API void po_cache_set_enabled(po_cache *c, int on);
PO_API int po_cache_enabled(const po_cache *c);

/* Attaches the cache to an optimizer: it then appears in the report's cache section, follows
 * ENABLE_CACHING, shrinks on memory pressure (monitor listener) and takes part in
 * po_clear_resource(type). At most 64 caches per optimizer (PO_EFULL). PO_EBUSY when already
 * attached. po_cache_destroy detaches. */
PO_API int po_cache_attach(po_optimizer *opt, po_cache *c);
PO_API void po_cache_detach(po_cache *c);

typedef struct po_cache_type_stats {
  uint64_t hits, misses, evictions, bytes, entries;
} po_cache_type_stats;

typedef struct po_cache_stats {
  uint64_t budget_bytes;
  uint64_t bytes; /* declared sizes of the entries held */
  uint64_t entries;
  uint64_t pinned_entries;
  uint64_t hits;
  uint64_t misses;    /* per-type misses only count misses whose type is known (loads,
                         expired entries); a get of an absent key has no type */
  uint64_t evictions; /* removed to make room or by a shrink */
  uint64_t removals;  /* po_cache_remove, clears, replacements, expirations */
  uint64_t expirations;
  uint64_t loads, load_failures, coalesced_loads;
  uint64_t shrinks, shrinks_dropped; /* shrink records kept / overwritten (ring of 32) */
  uint64_t metadata_bytes;           /* the cache's own memory: entries, key copies, table, ghost */
  double hit_ratio;                  /* hits / (hits + misses), 0 when no lookups */
  po_cache_type_stats per_type[PO_CACHE_TYPE_COUNT];
  /* the trace of insertions (each put, and each load after a miss): a working-set estimate is
   * distinct_keys_inserted x inserted_bytes / insertions */
  uint64_t insertions;
  uint64_t inserted_bytes;         /* declared sizes of the inserted entries, summed */
  uint64_t distinct_keys_inserted; /* a HyperLogLog estimate (standard error about 6.5%) */
} po_cache_stats;
/* A consistent snapshot of the counters (counters from concurrent gets may lag by a few). */
PO_API void po_cache_get_stats(const po_cache *c, po_cache_stats *out);
/* "sieve", "s3fifo", "lru" ("?" otherwise). */
PO_API const char *po_cache_policy_name(po_cache_policy p);

/* ======================================================================================
 * Downsampling and the streaming CSV reader
 * ====================================================================================== */

/* Methods. M4 keeps, per pixel column, the first, last, minimum and maximum point (pixel-exact
 * for a line chart when x maps to whole columns, see po_ds_column); MinMax keeps minimum and
 * maximum per column; LTTB (Steinarsson's Largest-Triangle-Three-Buckets) keeps n_out points that
 * preserve the shape; MinMaxLTTB preselects with MinMax (ratio * n_out points) and runs LTTB on
 * those, which is much faster on large inputs and visually equivalent. */
typedef enum { PO_DS_M4 = 0, PO_DS_MINMAX = 1, PO_DS_LTTB = 2, PO_DS_MINMAXLTTB = 3 } po_ds_method;

typedef enum { PO_DS_F64 = 0, PO_DS_F32 = 1 } po_ds_type;

/* One series to reduce. Zero-initialise it, then set y and n (and x when x is explicit).
 * x must be non-decreasing (NaN is not allowed in x); y may hold NaN: a run of NaN is a gap, and
 * the output keeps the index of the first NaN of each gap (at most one per column or bucket), so
 * a renderer that breaks the line at NaN draws the same gaps. */
typedef struct po_ds_input {
  const void *x; /* NULL: implicit x = 0, 1, ..., n-1 */
  const void *y; /* n values */
  size_t n;
  po_ds_type x_type; /* PO_DS_F64 (default) or PO_DS_F32 */
  po_ds_type y_type;
  /* M4/MinMax only: the x domain the chart maps onto [0, width). Equal (e.g. both 0): the
   * data's own range x[0] .. x[n-1]. Points outside the domain go to the first/last column. */
  double x_lo, x_hi;
} po_ds_input;

/* Worst-case number of indices `method` writes for n_out (the width in pixel columns for M4
 * and MinMax, the number of points for LTTB and MinMaxLTTB). Size the output buffer with it. */
PO_API size_t po_ds_capacity(po_ds_method method, size_t n_out);

/* Reduces `in` and writes the kept indices, ascending, into out[0..cap). Nothing is copied: the
 * caller reads x/y (or any other column) at those indices.
 * Returns the number of indices written (>= 0) or a negative PO_E* code:
 *   PO_EINVAL: width/n_out 0 (or < 3 for LTTB with n > n_out), NULL arguments, NaN/unsorted x
 *              (errbuf names the first out-of-order index); PO_ERANGE: cap too small.
 * n <= n_out (LTTB) or n <= 2 returns all indices. Single-threaded; thread-safe (no state). */
PO_API int64_t po_downsample(po_ds_method method, const po_ds_input *in, size_t n_out, size_t *out,
                             size_t cap, char *errbuf, size_t errlen);
PO_API int64_t po_ds_m4(const po_ds_input *in, size_t width, size_t *out, size_t cap, char *errbuf,
                        size_t errlen);
PO_API int64_t po_ds_minmax(const po_ds_input *in, size_t width, size_t *out, size_t cap,
                            char *errbuf, size_t errlen);
PO_API int64_t po_ds_lttb(const po_ds_input *in, size_t n_out, size_t *out, size_t cap,
                          char *errbuf, size_t errlen);
/* ratio 0 means the default preselection ratio (4). */
PO_API int64_t po_ds_minmaxlttb(const po_ds_input *in, size_t n_out, size_t ratio, size_t *out,
                                size_t cap, char *errbuf, size_t errlen);

/* The pixel column of x in a chart whose domain [lo, hi] spans `width` columns:
 * floor((x - lo) * (width / (hi - lo))), clamped to [0, width-1]. M4 and MinMax bucket with exactly
 * this expression. For a pixel-identical picture of the raw and the M4-reduced series, draw each
 * point at the centre of its column (plot_left + po_ds_column(x, ...) + 0.5, integer plot_left)
 * with round line joins and caps: then the raw line and M4's line cover the same pixels (measured
 * by bench_downsample's ds_m4_pixel_diff_ratio with rsvg-convert). */
PO_API size_t po_ds_column(double x, double lo, double hi, size_t width);

/* Streaming M4 with fixed memory, for series that grow during a run. The x axis is cut into
 * `buckets` equal buckets; each keeps its first and last point (by x), its minimum and maximum y,
 * and its first NaN (a gap). When a point falls outside the buckets, the bucket width doubles and
 * neighbours merge (exactly: M4 of a union is M4 of the parts), so memory never grows. The width
 * stays a finite power of two in [2^-1022, 2^1023], so any finite x (near +-1e308, or differing by
 * denormals) is placed in bounded time. Points may arrive in any x order (ascending is the fast
 * path). Not thread-safe: one writer per stream. */
typedef struct po_ds_stream po_ds_stream;

typedef struct po_ds_stream_stats {
  uint64_t pushed;     /* points accepted */
  uint64_t dropped;    /* points with a non-finite x, ignored and counted */
  uint64_t halvings;   /* times the resolution halved */
  double bucket_width; /* current bucket width in x units (0 before the first halving) */
  size_t buckets_used; /* non-empty buckets */
} po_ds_stream_stats;

/* buckets >= 2 (even numbers are best; 2 * the chart width keeps full resolution).
 * Memory: about 100 bytes per bucket, allocated here once. */
PO_API int po_ds_stream_create(size_t buckets, po_ds_stream **out);
PO_API void po_ds_stream_destroy(po_ds_stream *s);
/* One point. A non-finite x is dropped and counted. Returns 0 or PO_EINVAL (NULL stream). */
PO_API int po_ds_stream_push(po_ds_stream *s, double x, double y);
/* n points with explicit x; or with implicit x = the number of points pushed before each one. */
PO_API int po_ds_stream_push_xy(po_ds_stream *s, const double *x, const double *y, size_t n);
PO_API int po_ds_stream_push_y(po_ds_stream *s, const double *y, size_t n);
/* Upper bound of the points po_ds_stream_read can return (5 per bucket). */
PO_API size_t po_ds_stream_max_points(const po_ds_stream *s);
/* Writes the kept points sorted by x (a NaN y marks a gap) into x/y/seq (any may be NULL; seq
 * is the 0-based arrival number of the point). Returns the count, or PO_ERANGE when cap is too
 * small (use po_ds_stream_max_points). The stream is unchanged and can keep growing. */
PO_API int64_t po_ds_stream_read(const po_ds_stream *s, double *x, double *y, uint64_t *seq,
                                 size_t cap);
PO_API void po_ds_stream_get_stats(const po_ds_stream *s, po_ds_stream_stats *out);
/* Forgets every point; keeps the memory. */
PO_API void po_ds_stream_reset(po_ds_stream *s);

/* Streaming CSV reader for large files (bounded memory: one fixed read buffer, never the whole
 * file). RFC 4180 quotes ("" inside quotes), LF or CRLF, a header row. Selected columns are
 * parsed as numbers; a row whose selected cell is missing, empty or not a number is skipped and
 * counted (the first such line number is kept for a message). Not thread-safe per reader. */
typedef struct po_csv po_csv;

typedef struct po_csv_options {
  char delimiter;      /* 0: ',' */
  int no_header;       /* 1: the first row is data; columns are then named by index only */
  size_t buffer_bytes; /* 0: 1 MiB; a single row longer than the buffer is skipped as bad */
} po_csv_options;

typedef struct po_csv_stats {
  uint64_t rows;             /* data rows returned */
  uint64_t bad_rows;         /* rows skipped: missing or non-numeric selected cell */
  uint64_t first_bad_line;   /* 1-based physical line of the first skipped row (0: none) */
  char first_bad_reason[96]; /* e.g. "column 'close': not a number: \"abc\"" */
  uint64_t bytes;            /* bytes consumed */
} po_csv_stats;

/* Opens `path` (or reads from memory: data must outlive the reader) and reads the header.
 * PO_ENOENT/PO_EIO with errbuf naming the path on failure. opt may be NULL. */
PO_API int po_csv_create(const char *path, const po_csv_options *opt, po_csv **out, char *errbuf,
                       size_t errlen);
PO_API int po_csv_create_mem(const char *data, size_t len, const po_csv_options *opt, po_csv **out,
                           char *errbuf, size_t errlen);
PO_API void po_csv_destroy(po_csv *c);
PO_API size_t po_csv_column_count(const po_csv *c);
/* The header name of column i ("" without a header; NULL past the end). */
PO_API const char *po_csv_column_name(const po_csv *c, size_t i);
/* Resolves a column given by header name (exact, then case-insensitive) or by 0-based index
 * ("3"). Returns the index (>= 0) or PO_ENOENT with errbuf naming the column and listing the
 * available ones. */
PO_API int po_csv_find_column(const po_csv *c, const char *name_or_index, char *errbuf,
                              size_t errlen);
/* Chooses the columns po_csv_next returns (at most 64; repeats allowed). */
PO_API int po_csv_select(po_csv *c, const size_t *cols, size_t ncols);
/* Per selected column: a fallback parser for cells that are not plain numbers (dates...).
 * It returns 0 and sets *out, or non-zero for a bad cell. NULL: numbers only. */
typedef int (*po_csv_parse_fn)(const char *cell, size_t len, double *out, void *user);
PO_API int po_csv_set_parser(po_csv *c, size_t selected_pos, po_csv_parse_fn fn, void *user);
/* Reads the next good row into values[0..ncols). Returns 1 (a row), 0 (end of input) or a
 * negative PO_E* code (PO_EIO: read error). Bad rows are skipped and counted, not returned. */
PO_API int po_csv_next(po_csv *c, double *values);
PO_API void po_csv_get_stats(const po_csv *c, po_csv_stats *out);
/* Parses a decimal number (optional sign, digits, '.', exponent; also nan/inf) spanning exactly
 * s[0..len). Returns 0 and *out, or -1. Fast path for up to 19 significant digits. */
PO_API int po_parse_double(const char *s, size_t len, double *out);

/* ======================================================================================
 * Charts and the HTML report
 * ====================================================================================== */
/* Standalone SVG charts written by perfopt itself (no plotting dependency): lines, areas, stacked
 * areas, horizontal bars and flame graphs (icicles), with "nice" ticks, unit-aware labels that
 * never overlap and the Okabe-Ito colour-blind-safe palette. A po_chart is used by one thread at a
 * time; different charts may be used from different threads. */

typedef enum {
  PO_CHART_LINES = 0,   /* one line per series (x ascending) */
  PO_CHART_AREAS = 1,   /* one translucent filled area per series, drawn over each other */
  PO_CHART_STACKED = 2, /* areas stacked in insertion order (memory by category) */
  PO_CHART_BARS = 3,    /* horizontal bars, one per po_chart_add_bar, in insertion order */
  PO_CHART_FLAME = 4    /* icicle of a call tree given with po_chart_add_frame */
} po_chart_kind;

/* Units drive the axis and tooltip labels (po_format_value). */
typedef enum {
  PO_UNIT_NONE = 0,             /* plain number with SI prefixes: 1.5k, 2M */
  PO_UNIT_BYTES = 1,            /* binary prefixes: 1.5 KiB, 3 GiB */
  PO_UNIT_BYTES_PER_SECOND = 2, /* 12 MiB/s */
  PO_UNIT_SECONDS = 3,          /* a duration: 2.1 ms, 850 µs, 3.2 s, 5 min */
  PO_UNIT_ELAPSED = 4,          /* time since start on a time axis: 30 s, 15 min, 6 h */
  PO_UNIT_RATIO = 5,            /* 0..1 shown as a percentage: 85% */
  PO_UNIT_CELSIUS = 6,          /* 71 °C */
  PO_UNIT_WATTS = 7,            /* 250 W, 1.2 kW */
  PO_UNIT_COUNT = 8,            /* an integer count: 1,234 calls -> 1.23k */
  PO_UNIT_DATE = 9              /* Unix seconds on a calendar axis (UTC): 2021, 2021-06, 06-09 12:00 */
} po_unit;

/* The unit named by a report "unit" string ("bytes", "ratio", "bytes_per_second", "seconds",
 * "celsius", "watts") or by a key suffix ("_bytes", "_ratio", ...). PO_UNIT_NONE when unknown. */
PO_API po_unit po_unit_from_name(const char *name);

/* Formats v in `unit` with at most 3 significant digits and a prefix ("1.5 KiB", "2.1 ms", "85%").
 * Always terminates buf (when len > 0). Returns the length it wanted (like snprintf), or PO_EINVAL.
 */
PO_API int po_format_value(double v, po_unit unit, char *buf, size_t len);

#define PO_TICKS_MAX 24
/* Axis ticks picked by a scored search in the spirit of Talbot, Lin and Hanrahan's extended
 * Wilkinson algorithm (simplicity, coverage, density, legibility) over Q = 1, 5, 2, 2.5, 4, 3. */
typedef struct po_ticks {
  double min, max; /* the axis range: the first and last tick (covers the data range) */
  double step;
  size_t count;
  double values[PO_TICKS_MAX];
} po_ticks;

/* Picks about `target` (2..PO_TICKS_MAX, typically 5) nice ticks covering [dmin, dmax]. A constant
 * or non-finite range gets a sensible range around the value. Returns 0 or PO_EINVAL. */
PO_API int po_chart_nice_ticks(double dmin, double dmax, int target, po_ticks *out);
/* The same for a time axis in seconds: steps of 1/2/5/10/15/30 s, min, h, days. */
PO_API int po_chart_time_ticks(double dmin, double dmax, int target, po_ticks *out);

typedef struct po_chart po_chart;

/* A new empty chart of `kind` with a title (copied; may be NULL). NULL on ENOMEM. */
PO_API po_chart *po_chart_create(po_chart_kind kind, const char *title);
/* Frees the chart and every copy it holds. NULL is a no-op. */
PO_API void po_chart_destroy(po_chart *chart);

/* Fixes the size in pixels; 0 keeps (or lets po_chart_optimize pick) that dimension.
 * Defaults: 800 x 300. Bounds: 120..10000 x 60..20000 (PO_ERANGE outside). */
PO_API int po_chart_set_size(po_chart *chart, int width_px, int height_px);
/* Axis label and unit; axis is 'x' or 'y'. For PO_CHART_BARS the value axis is 'x'. */
PO_API int po_chart_set_axis(po_chart *chart, char axis, const char *label, po_unit unit);

/* Adds a series, copying n points (x NULL: x = 0, 1, 2, ...). NaN y values are gaps. x must be
 * non-decreasing (PO_EINVAL naming nothing else). The y unit defaults to the first series' unit. */
PO_API int po_chart_add_series(po_chart *chart, const char *name, po_unit unit, const double *x,
                               const double *y, size_t n);
/* Adds a series made of the points idx[0..n_idx) of x/y (e.g. the indices a downsampler returned);
 * only the selected points are copied. */
PO_API int po_chart_add_series_subset(po_chart *chart, const char *name, po_unit unit,
                                      const double *x, const double *y, const size_t *idx,
                                      size_t n_idx);
/* Adds a min..max envelope (drawn as a light band under the series of the same name, or alone). */
PO_API int po_chart_add_range(po_chart *chart, const char *name, po_unit unit, const double *x,
                              const double *lo, const double *hi, size_t n);

/* Decorations on time-series charts: a horizontal threshold line at y, a shaded phase band over
 * [x_from, x_to] (training buckets) and a marker (a threshold fired) at (x, y); y NaN = top edge.
 * Labels are copied; at most 256 of each (further ones are counted in po_chart_dropped). */
PO_API int po_chart_add_threshold(po_chart *chart, double y, const char *label);
PO_API int po_chart_add_band(po_chart *chart, double x_from, double x_to, const char *label);
PO_API int po_chart_add_marker(po_chart *chart, double x, double y, const char *label);

/* PO_CHART_BARS: one bar; tooltip may be NULL. */
PO_API int po_chart_add_bar(po_chart *chart, const char *label, double value, const char *tooltip);
/* PO_CHART_FLAME: one call-tree node (the report's profile.call_tree entries). parent -1 = root.
 * Frame widths are proportional to total_seconds; frames narrower than a pixel are not drawn and
 * are counted in po_chart_dropped. */
PO_API int po_chart_add_frame(po_chart *chart, int64_t id, int64_t parent, const char *name,
                              uint64_t calls, double total_seconds, double self_seconds);

/* The seed's optimize_visualization: reduces every series to what width_px can show (M4: first,
 * last, min and max per pixel column, so the drawn picture is unchanged), picks the height (and the
 * width when width_px is 0) from the data (series count, legend and label lengths, bar or frame
 * count), and frees the full-resolution copies. Idempotent. */
PO_API int po_chart_optimize(po_chart *chart, int width_px);
/* on 0: po_chart_optimize (and the render) still size the chart but keep every point: the
 * unoptimized picture, to compare the optimized one with (a 10M-point line is a ~100 MB SVG).
 * on 1 is the default. PO_ESTATE when turning reduction off after a reduction already ran. */
PO_API int po_chart_set_reduction(po_chart *chart, int on);

/* Items not drawn: decorations over their cap, bars over the cap, frames under a pixel. */
PO_API size_t po_chart_dropped(const po_chart *chart);

/* Writes the chart as a standalone SVG 1.1 document (xmlns, no external references). Calls
 * po_chart_optimize(chart, 0) first when it has not run. */
PO_API int po_chart_write_svg(po_chart *chart, FILE *out);
/* The same into a malloc'd NUL-terminated string (free with po_free); *len (may be NULL) gets its
 * length. NULL on ENOMEM. `standalone` 0 omits the XML declaration (to inline it in HTML). */
PO_API char *po_chart_svg_string(po_chart *chart, int standalone, size_t *len);
/* Atomic file write; errbuf names the path on failure. */
PO_API int po_chart_save_svg(po_chart *chart, const char *path, char *errbuf, size_t errlen);

/* The HTML report: one self-contained file (inline SVG charts, inline style and a small script for
 * table sorting; no network) with the run summary, suggestions, top functions, flame graph,
 * resource timelines with thresholds, phases and events, memory, GPU and cache sections. Series are
 * reduced to the chart width and tables capped, so a 24-hour run stays well under 2 MB. */
PO_API int po_report_write_html(const po_report *rep, FILE *out);
/* Atomic write of the HTML report; errbuf names the path or the problem. */
PO_API int po_report_save_html(const po_report *rep, const char *path, char *errbuf, size_t errlen);

/* ======================================================================================
 * Live endpoint
 *
 * An HTTP server (libmicrohttpd, its own threads) for a running job or a saved report:
 *   /metrics      Prometheus text exposition 0.0.4 (node_exporter names where they exist)
 *   /report.json  the report model as JSON (a current snapshot)
 *   /             the live dashboard: the HTML report plus a small inline script that reloads its
 *                 sections every few seconds (no external scripts, fonts or files)
 * Off unless asked (po_server_start, or SERVER_ENABLE for an optimizer). GET and HEAD only (405
 * otherwise), 404 for any other path; nothing on the file system is reachable. Loopback by
 * default: any other address needs allow_remote and logs a warning. With a token (or PERFOPT_TOKEN
 * in the environment) every request needs "Authorization: Bearer TOKEN" (401 otherwise).
 * Requests are bounded in header size (431), connection count and time.
 * ====================================================================================== */

typedef struct po_server po_server;

/* Zero-initialized options are the defaults. */
typedef struct po_server_options {
  const char *address;     /* numeric IPv4 or IPv6 address; NULL or "": "127.0.0.1" */
  int port;                /* 0: any free port (po_server_port says which) */
  int allow_remote;        /* required to listen on a non-loopback address */
  const char *token;       /* bearer token; NULL: PERFOPT_TOKEN from the environment; "": none */
  int snapshot_ms;         /* a live snapshot is reused this long (0: 500 ms) */
  int dashboard_refresh_s; /* the dashboard reloads this often (0: 5 s) */
  int max_connections;     /* concurrent connections (0: 64) */
  int timeout_s;           /* an idle connection is closed after this (0: 10 s) */
} po_server_options;

/* Serves opt (NULL: the default optimizer) live: each snapshot is a po_report_create of opt,
 * reused for snapshot_ms so a scrape storm does not rebuild it. Stop it with po_server_destroy
 * before destroying opt. PO_EINVAL (bad address, non-loopback without allow_remote, bad option),
 * PO_EIO (cannot listen: errbuf says why, e.g. the port is in use), PO_ENOMEM. */
PO_API int po_server_start(po_optimizer *opt, const po_server_options *o, po_server **out,
                           char *errbuf, size_t errlen);
/* Serves a fixed report (`perfopt serve`); rep must outlive the server. */
PO_API int po_server_start_report(const po_report *rep, const po_server_options *o, po_server **out,
                                  char *errbuf, size_t errlen);
/* The port the server listens on (the one picked when options.port was 0). */
PO_API int po_server_port(const po_server *srv);
/* Stops listening, waits for requests in progress and frees the server. NULL is a no-op. */
PO_API void po_server_destroy(po_server *srv);

/* Pushes the report's metrics to a Prometheus Pushgateway (for jobs that end before a scrape):
 * HTTP PUT of the /metrics text to URL/metrics/job/JOB[/instance/INSTANCE], replacing that group.
 * url: "http://host[:port][/prefix]" (plain HTTP; numeric or resolvable host). instance NULL or ""
 * leaves the label out (set it per node when several push to one gateway). token: a bearer token
 * for the gateway (NULL or "": none). Bounded: 10 s in all. PO_EINVAL (bad URL or job), PO_EIO
 * (connection failed or a non-2xx answer; errbuf has the status line), PO_ENOMEM. */
PO_API int po_report_push(const po_report *rep, const char *url, const char *job,
                          const char *instance, const char *token, char *errbuf, size_t errlen);

/* ======================================================================================
 * Heap tracking
 *
 * A session owns a shared-memory segment (a memfd) that the LD_PRELOAD shim libperfopt-heap.so
 * fills from inside the traced program and its descendants: each process (each fork, each exec'd
 * image) gets a slot of its own. The parent reads the segment while they run and after they
 * ended, whatever the cause (exit, SIGKILL, SIGSEGV): nothing depends on the child's exit path.
 *
 * Modes: EXACT counts live and peak bytes (and when), allocations and a size histogram, exactly.
 * SAMPLED adds call sites, sampled on average every sample_interval_bytes allocated (Poisson:
 * per-site values are unbiased estimates). FULL records the site of every allocation. Bytes are
 * the sizes the program requested; times are seconds since the session was created.
 * ====================================================================================== */

typedef enum { PO_HEAP_EXACT = 0, PO_HEAP_SAMPLED = 1, PO_HEAP_FULL = 2 } po_heap_mode;

#define PO_HEAP_HISTOGRAM_BUCKETS 48 /* bucket 0: size 0; bucket b: [2^(b-1), 2^b) bytes */
#define PO_HEAP_DEFAULT_SAMPLE_INTERVAL_BYTES 524288

typedef struct po_heap_session po_heap_session;

/* Creates the segment (about 100 MB of address space, memory only for what is written). The
 * sample interval is PO_HEAP_DEFAULT_SAMPLE_INTERVAL_BYTES. Returns 0, PO_ENOMEM, PO_EIO or
 * PO_EINVAL (unknown mode). */
PO_API int po_heap_session_create(po_heap_mode mode, po_heap_session **out);
/* Unmaps and closes the segment; snapshots taken before stay valid. NULL is a no-op. */
PO_API void po_heap_session_destroy(po_heap_session *s);
/* Sampled mode's mean interval (>= 1 byte); only processes that attach afterwards use it. */
PO_API int po_heap_session_set_sample_interval(po_heap_session *s, uint64_t bytes);
/* The name of a mode ("exact", "sampled", "full"), "unknown" otherwise. */
PO_API const char *po_heap_mode_name(po_heap_mode mode);

/* The environment a traced child needs, as "NAME=VALUE" strings for execve: LD_PRELOAD (the shim
 * prepended to any LD_PRELOAD already set), PERFOPT_HEAP_FD and PERFOPT_HEAP_MODE. */
typedef struct po_heap_env {
  char ld_preload[4096];
  char fd[64];
  char mode[32];
} po_heap_env;

/* Finds the shim: shim_path when given, else $PERFOPT_HEAP_LIBRARY, else libperfopt-heap.so next
 * to libperfopt (the shared library), next to the running program or in ../lib from it. Fills
 * *env and makes the segment's fd inheritable across exec (it is close-on-exec until then).
 * PO_ENOENT when no shim file exists, PO_ERANGE when a value does not fit. */
PO_API int po_heap_session_env(po_heap_session *s, const char *shim_path, po_heap_env *env);
/* The same, then setenv()s the three variables in this process: call it in the child between
 * fork and exec (or before spawning, knowing every later child inherits them). */
PO_API int po_heap_session_apply_env(po_heap_session *s, const char *shim_path);

/* Cheap totals over all processes of the session (no symbolization, no allocation): for a
 * timeline sampled by the parent. Each call also adds a point to the session's timeline
 * (bounded: when full, pairs of points merge keeping the larger live value). */
typedef struct po_heap_totals {
  double t_seconds;           /* when read, since the session was created */
  int64_t live_bytes;         /* summed over the processes still running */
  int64_t peak_bytes;         /* the largest process peak so far */
  double peak_seconds;        /* when that process reached it */
  uint64_t allocations;       /* summed over every process, ended ones included */
  uint64_t frees;
  int64_t mmap_live_bytes;    /* mapped minus unmapped through mmap/munmap/mremap, running ones */
  uint32_t processes;         /* slots used */
  uint32_t processes_running; /* slots whose process has neither exited nor exec'd */
} po_heap_totals;
PO_API int po_heap_session_totals(po_heap_session *s, po_heap_totals *out);

/* One frame of a call site, symbolized in the parent from the process's saved module map (ELF
 * symbol tables and DWARF line tables through libdw). Strings belong to the snapshot. */
typedef struct po_heap_frame {
  uint64_t address;       /* return address in the traced process */
  const char *function;   /* NULL when unknown */
  const char *file;       /* source file, NULL when unknown */
  int line;               /* 0 when unknown */
  const char *module;     /* path of the loaded object, NULL when outside every known one */
  uint64_t module_offset; /* address minus the object's load bias */
} po_heap_frame;

/* A call site. In sampled mode every value is an unbiased estimate. */
typedef struct po_heap_site_info {
  uint64_t allocations;
  uint64_t allocated_bytes;
  int64_t live_allocations; /* at the snapshot (for an ended process: at its end) */
  int64_t live_bytes;
  int64_t bytes_at_peak; /* live bytes of this site when its process reached its peak */
  int complete;          /* 0: the process died while recording the stack (no frames) */
  size_t frame_count;    /* innermost first */
  po_heap_frame *frames;
} po_heap_site_info;

/* One process image. "running": attached and neither exited nor exec'd; "exited": ran its exit
 * path; "exec": replaced its image (the next process with the same pid); "died": gone without
 * exiting (killed by a signal, or _exit from a raw system call). */
typedef struct po_heap_process {
  int32_t pid, ppid;
  int parent_index;          /* index in processes[] of its fork parent or exec predecessor, -1 */
  const char *origin;        /* "start", "fork" or "exec" */
  const char *state;         /* "running", "exited", "exec", "died" */
  const char *exe;           /* the executable's path */
  po_heap_mode mode;
  double start_seconds, end_seconds; /* end -1 while running or when it died */
  int64_t live_bytes;        /* now, or at its end */
  int64_t peak_bytes;        /* exact in every mode */
  double peak_seconds;
  int64_t inherited_bytes;   /* live bytes a fork child started with */
  uint64_t allocations, frees, allocated_bytes, freed_bytes;
  uint64_t size_histogram[PO_HEAP_HISTOGRAM_BUCKETS]; /* allocations per size bucket */
  uint64_t mmap_calls, munmap_calls, mmap_bytes, munmap_bytes;
  int64_t mmap_live_bytes, mmap_peak_bytes;
  /* leaks: for a process that ended (exited or died); exact totals in every mode */
  int64_t leaked_bytes;
  int64_t leaked_allocations;
  /* sites (sampled and full modes): all recorded sites, and lists of indices into them */
  size_t site_count;
  po_heap_site_info *sites;
  size_t top_at_peak_count, top_by_total_count, leak_site_count;
  size_t *top_at_peak;  /* by bytes_at_peak, largest first */
  size_t *top_by_total; /* by allocated_bytes */
  size_t *leak_sites;   /* by live_bytes at the end (ended processes only) */
  /* what was not recorded exactly */
  uint64_t sites_dropped, stacks_truncated, threads_shared, modules_dropped, paths_truncated;
  uint64_t foreign_frees, untracked_allocations, sampled_allocations, unwind_fallbacks;
  uint64_t incomplete_sites; /* sites without frames (see complete) */
  uint64_t refused_allocations; /* requests too large to track (16 TiB and above) */
} po_heap_process;

typedef struct po_heap_snapshot {
  po_heap_mode mode;
  uint64_t sample_interval_bytes;
  double t_seconds;            /* when taken */
  size_t process_count;
  po_heap_process *processes;
  uint64_t processes_dropped;  /* processes that found no free slot */
  uint64_t slots_invalid;      /* slots rejected as corrupt */
  int64_t peak_bytes;          /* the largest process peak */
  double peak_seconds;
  int peak_process;            /* its index, -1 when no process attached */
  size_t timeline_count;       /* the session's timeline (po_heap_session_totals calls) */
  double *timeline_seconds;
  int64_t *timeline_live_bytes;
  size_t top_sites;            /* the length limit of each top list */
} po_heap_snapshot;

/* Reads every process and symbolizes its sites (slow: libdw). top_sites 0 = 20. A corrupt slot is
 * skipped and counted, never trusted. Returns 0, PO_ENOMEM or PO_EINVAL. */
PO_API int po_heap_session_snapshot(po_heap_session *s, size_t top_sites,
                                    po_heap_snapshot **out);
PO_API void po_heap_snapshot_destroy(po_heap_snapshot *snap);

#ifdef __cplusplus
}
#endif
#endif /* PERFOPT_H */
