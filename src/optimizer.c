/* optimizer: the object that owns the configuration and the modules' state, the process-wide
 * default instance, and the PERFOPT_OUT report written at exit. */
#include "optimizer.h"

#include "base/base.h"

#include <stdlib.h>
#include <string.h>

int po_optimizer_create(const po_config *cfg, po_optimizer **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  po_optimizer *opt = calloc(1, sizeof *opt);
  if (!opt) return PO_ENOMEM;
  if (cfg) {
    opt->cfg = *cfg;
  } else {
    char err[256];
    int rc = po_config_load(&opt->cfg, err, sizeof err);
    if (rc) {
      po__log(0, "perfopt: %s", err);
      free(opt);
      return rc;
    }
  }
  pthread_mutex_init(&opt->lock, NULL);
  opt->created_unix_seconds = po__unix_seconds();
  po_profile_set_enabled(opt->cfg.enable_profiling);
  if (opt->cfg.profile_timeline) po_profile_set_timeline(1, (size_t)opt->cfg.timeline_events);
  int rc = po__cache_optimizer_init(opt);
  if (!rc) rc = po__monitor_optimizer_init(opt);
  if (rc) {
    po__cache_optimizer_fini(opt);
    pthread_mutex_destroy(&opt->lock);
    free(opt);
    return rc;
  }
  *out = opt;
  return 0;
}

void po_optimizer_destroy(po_optimizer *opt) {
  if (!opt) return;
  po__monitor_optimizer_fini(opt);
  po__cache_optimizer_fini(opt);
  pthread_mutex_destroy(&opt->lock);
  free(opt);
}

const po_config *po_optimizer_config(const po_optimizer *opt) {
  return opt ? &opt->cfg : NULL;
}

/* ---- the process-wide default ----------------------------------------------------------- */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static po_optimizer *default_opt;
static int default_failed;

po_optimizer *po_get_optimizer(void) {
  pthread_mutex_lock(&default_lock);
  if (!default_opt && !default_failed) {
    int rc = po_optimizer_create(NULL, &default_opt);
    if (rc) {
      default_failed = 1;
      po__log(0, "perfopt: the default optimizer could not be created: %s", po_strerror(rc));
    }
  }
  po_optimizer *opt = default_opt;
  pthread_mutex_unlock(&default_lock);
  return opt;
}

/* PERFOPT_OUT=path: write the report there when the process exits (this is how `perfopt run`
 * collects in-process profiles). The environment's profiling switch applies from the start. */
static void write_out_report(void) {
  const char *path = getenv("PERFOPT_OUT");
  if (!path || !*path) return;
  pthread_mutex_lock(&default_lock);
  po_optimizer *opt = default_opt;
  pthread_mutex_unlock(&default_lock);
  po_report *rep;
  if (po_report_build(opt, &rep) != 0) return;
  char err[512];
  if (po_report_save_json(rep, path, err, sizeof err) != 0) po__log(0, "perfopt: %s", err);
  po_report_free(rep);
}

__attribute__((constructor)) static void optimizer_ctor(void) {
  const char *p = getenv("PERFOPT_PROFILING");
  if (p &&
      (!strcmp(p, "0") || !strcasecmp(p, "false") || !strcasecmp(p, "off") || !strcasecmp(p, "no")))
    po_profile_set_enabled(0);
  const char *tl = getenv("PERFOPT_PROFILE_TIMELINE");
  if (tl && (!strcmp(tl, "1") || !strcasecmp(tl, "true"))) po_profile_set_timeline(1, 65536);
  const char *out = getenv("PERFOPT_OUT");
  if (out && *out) atexit(write_out_report);
}
