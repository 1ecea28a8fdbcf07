/* Building a report from typed snapshots: the interface between the layer that owns the live
 * objects (the optimizer, `perfopt sysinfo`) and the report module, which owns every JSON key
 * (docs/formats.md documents each one; tests/test_report_keys.c checks that the two agree) and
 * never reads live state itself. Not installed. */
#ifndef PO__REPORT_BUILD_H
#define PO__REPORT_BUILD_H

#include "base/base.h"
#include "cache/cache.h"
#include "monitor/memory.h"
#include "monitor/sampler.h"
#include "profile/profile.h"
#include "report/json.h"

/* What a report is made of. Every pointer may be NULL: that section is then written in its
 * empty state (the profile, memory, resources, gpu and cache sections are always present). */
typedef struct po__report_sources {
  const po_hardware *hw;   /* host facts, read once */
  const po_config *cfg;    /* run.config */
  double start_unix_seconds;
  double wall_seconds;
  int pid;
  const char *const *argv; /* the command line (argc entries) */
  size_t argc;
  const po__profile_snapshot *profile;
  const po__sampler_snapshot *sampler;
  const po__memory_snapshot *memory;
  const po__cache_snapshot *caches;
  size_t ncaches;
} po__report_sources;

/* Builds a report. Returns 0, or PO_ENOMEM when any allocation failed (nothing is returned). */
int po__report_create_from(const po__report_sources *src, po_report **out);

/* The sections, each writing its object into root (report_host.c, report_profile.c,
 * report_monitor.c, report_cache.c). */
void po__report_host(po__jw *w, cJSON *root, const po_hardware *hw);
void po__report_run(po__jw *w, cJSON *root, const po__report_sources *src);
void po__report_profile(po__jw *w, cJSON *root, const po__profile_snapshot *p);
void po__report_memory(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                       const po__memory_snapshot *m);
void po__report_resources(po__jw *w, cJSON *root, const po__sampler_snapshot *s,
                          const po__memory_snapshot *m);
/* thresholds[]: one entry per metric; with gpu_threshold (per device, from the sampler or the
 * GPU targets) gpu_memory has one entry per device instead. */
void po__report_thresholds(po__jw *w, cJSON *parent, const po_thresholds *th,
                           const po_gpu_info *gpus, size_t ngpus, const double *gpu_threshold,
                           int gpu_from_config);
/* The `system` section of `perfopt sysinfo`: one system sample (CPU by mode and core, memory,
 * swap, the effective limit, load, pressure, disks). */
void po__report_system(po__jw *w, cJSON *root, const po_system_sample *s);
void po__report_gpu(po__jw *w, cJSON *root, const po_gpu_info *devs, size_t count,
                    size_t dropped, const char *reason);
void po__report_cache(po__jw *w, cJSON *root, const po__cache_snapshot *caches, size_t n);

/* Replaces rep's profile section with p, and the run's wall and report times with src's. */
int po__report_set_profile(po_report *rep, const po__profile_snapshot *p,
                           const po__report_sources *src);

/* Parses a report from memory (`what` names it in errors). The fuzz target's entry point. */
int po__report_parse(const char *text, size_t len, const char *what, po_report **out, char *errbuf,
                     size_t errlen);

/* Prints s in exactly `cols` columns of a text table (UTF-8 aware): padded with spaces, or cut
 * with a trailing "…" when longer (report_text.c). */
void po__text_cell(FILE *out, const char *s, size_t cols);

/* A report wrapping a tree built elsewhere in this module (takes ownership). NULL on ENOMEM. */
po_report *po__report_wrap(cJSON *root);

#endif
