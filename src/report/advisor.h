/* The advisor: rules over the report model (never live state) that write the report's
 * `suggestions` array. Each suggestion is {id, severity, title, evidence[{name, value, unit}],
 * action, target?}; docs/formats.md lists every rule, what fires it and what it says.
 *
 * A rule reads only keys that exist (a missing section means "not measured", never zero) and
 * fires only on evidence strong enough to act on: a healthy run gets no suggestion. The numbers
 * that decide are the constants below, so tests and docs name them. Not installed. */
#ifndef PO__REPORT_ADVISOR_H
#define PO__REPORT_ADVISOR_H

#include "report/json.h"

#include <stddef.h>

/* ---- what fires a rule ------------------------------------------------------------------- */
#define PO__ADV_HOT_SHARE 0.20          /* self time of one function over profiled time */
#define PO__ADV_HOT_MAX 3               /* hot functions named at most */
#define PO__ADV_MIN_PROFILED_S 0.05     /* profiles shorter than this get no profile advice */
#define PO__ADV_TINY_AVG_S 1e-6         /* average call below this ... */
#define PO__ADV_TINY_CALLS 1000000.0    /* ... with at least this many calls ... */
#define PO__ADV_TINY_SHARE 0.01         /* ... and at least this share of profiled time */
#define PO__ADV_TAIL_FACTOR 10.0        /* p99 at least this many times the median ... */
#define PO__ADV_TAIL_CALLS 100.0        /* ... over at least this many calls ... */
#define PO__ADV_TAIL_SHARE 0.05         /* ... of a function with this self share (3 at most) */
#define PO__ADV_MEM_WARN 0.85           /* peak memory over the effective limit: warning */
#define PO__ADV_MEM_CRIT 0.95           /* ... critical */
#define PO__ADV_MEM_TARGET 0.75         /* the share a lowered batch aims for */
#define PO__ADV_MEM_ROOMY 0.30          /* peak under this share: room to raise the batch ... */
#define PO__ADV_MEM_ROOMY_MIN (1 << 30) /* ... for a process of at least 1 GiB (a batch job) */
#define PO__ADV_MIN_SAMPLES 10          /* resource rules need this many samples */
#define PO__ADV_GPU_LOW_UTIL 0.30       /* mean GPU utilization under this is low ... */
#define PO__ADV_GPU_LOW_MEM 0.40        /* ... with peak device memory under this share */
#define PO__ADV_GPU_INPUT_UTIL 0.50     /* GPU under this while ... */
#define PO__ADV_CPU_BUSY 0.80           /* ... the CPU is this busy: input-bound */
#define PO__ADV_GPU_FULL 0.95           /* peak device memory at this share: near full */
#define PO__ADV_IO_READ_BPS (20.0 * 1048576) /* a sample reads at least this fast ... */
#define PO__ADV_IO_CPU_IDLE 0.30             /* ... while the CPU is under this ... */
#define PO__ADV_IO_SHARE 0.25                /* ... in this share of the samples */
#define PO__ADV_CACHE_MIN_LOOKUPS 100.0
#define PO__ADV_CACHE_LOW_HIT 0.50   /* hit ratio under this with the budget ... */
#define PO__ADV_CACHE_FULL 0.90      /* ... this full: too small */
#define PO__ADV_CACHE_HIGH_HIT 0.95  /* hit ratio at least this with ... */
#define PO__ADV_CACHE_ROOMY 0.50     /* ... at most this share of the budget used ... */
#define PO__ADV_CACHE_ROOMY_MIN (64.0 * 1048576) /* ... of a budget of at least 64 MiB */
#define PO__ADV_LEAK_PHASES 3        /* phases needed to call growth a trend */
#define PO__ADV_LEAK_MIN_BYTES (64.0 * 1048576) /* growth first to last phase at least ... */
#define PO__ADV_LEAK_MIN_SHARE 0.10             /* ... and this share of the first phase */
#define PO__ADV_SWAP_GROWTH (64.0 * 1048576)    /* swap used grew this much during the run */
#define PO__ADV_SWAP_USED (256.0 * 1048576)     /* swap in use at a sysinfo reading ... */
#define PO__ADV_SWAP_SHARE 0.10                 /* ... and this share of the swap */
#define PO__ADV_PSI_SOME 0.10 /* memory pressure stall ratios (avg10): some tasks waiting ... */
#define PO__ADV_PSI_FULL 0.05 /* ... all tasks waiting: critical */
#define PO__ADV_FLAP_FIRINGS 10  /* firings of one threshold ... */
#define PO__ADV_FLAP_COOLDOWNS 4 /* ... at most this many cool-downs apart on average */
#define PO__ADV_OVERHEAD_FACTOR 1.5 /* monitoring above budget by this factor */

/* Builds the suggestions of `root` and replaces its `suggestions` array (added when absent).
 * Returns 0, or PO_ENOMEM (root is then unchanged). */
int po__advise(cJSON *root);
/* Reorders a suggestions array stably: critical, then warning, then info (allocates nothing). */
void po__adv_order(cJSON *arr);

/* ---- for the rules (src/report/advisor_*.c) ---------------------------------------------- */

typedef struct po__adv {
  const cJSON *root, *profile, *memory, *resources, *gpu, *cache, *config, *system;
  po__jw w;    /* sticky error of the suggestions being built */
  cJSON *out;  /* the suggestions array being built */
  double profiled_seconds; /* profile.profiled_seconds, else the sum of self times */
} po__adv;

/* Statistics of one column ("min", "max" or "last") of one resources series; n counts the finite
 * values (0: the series is absent or empty). */
typedef struct po__adv_col {
  size_t n;
  double mean, min, max, first, last;
  double t_first, t_last; /* times of the first and the last finite value */
} po__adv_col;

int po__adv_column(const po__adv *a, const char *series, const char *col, po__adv_col *out);
/* The values of a column as doubles (NaN where not finite), *n of them; NULL when the series is
 * absent (*n = 0) or on ENOMEM (a->w.err set). Free with free(). */
double *po__adv_values(po__adv *a, const char *series, const char *col, size_t *n);
/* run.config's value of KEY, or `fallback` when the report has no config or no such number. */
double po__adv_config(const po__adv *a, const char *key, double fallback);
/* A number member that exists and is finite (0 when not); *ok tells which (NULL allowed). */
double po__adv_num(const cJSON *o, const char *key, int *ok);

/* Starts a suggestion (id and severity are static strings; target NULL when none) with a printf
 * title; evidence and the action follow. NULL after an error. */
cJSON *po__adv_suggest(po__adv *a, const char *id, const char *severity, const char *target,
                       const char *title_fmt, ...) __attribute__((format(printf, 5, 6)));
void po__adv_evidence(po__adv *a, cJSON *s, const char *name, double value, const char *unit);
void po__adv_action(po__adv *a, cJSON *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A value formatted for a title or an action ("1.5 GiB", "43%", "2.1 ms"); unit as in evidence. */
const char *po__adv_fmt(char *buf, size_t len, double v, const char *unit);

/* The rule groups, in the order their suggestions are listed within a severity. */
void po__adv_rules_profile(po__adv *a);
void po__adv_rules_memory(po__adv *a);
void po__adv_rules_gpu(po__adv *a);
void po__adv_rules_io(po__adv *a);
void po__adv_rules_monitor(po__adv *a);

#endif
