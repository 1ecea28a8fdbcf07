/* The report of an optimizer: snapshots of its engines handed to the report module; the seed's
 * get_profiling_report / save_profiling_report; the JSON, HTML and text conveniences. */
#include "optimizer.h"

#include "platform.h"
#include "report/report_build.h"

#include <stdlib.h>
#include <unistd.h>

#define MAX_ARGV 64

typedef struct taken {
  po__profile_snapshot *profile;
  po__sampler_snapshot *sampler;
  po__memory_snapshot *memory;
  po__cache_snapshot *caches;
  size_t ncaches;
  char *argv_buf;
  const char *argv[MAX_ARGV];
  po__flight flight;
  po__report_sources src;
} taken;

static void release(taken *t) {
  po__profile_snapshot_destroy(t->profile);
  po__sampler_snapshot_destroy(t->sampler);
  po__memory_snapshot_destroy(t->memory);
  free(t->caches);
  free(t->argv_buf);
}

/* The machine's facts for a report without an optimizer: read once per process (again after an
 * attempt that failed, so that one failed allocation does not leave them incomplete for good). */
static po_hardware process_hw_facts;
static pthread_mutex_t process_hw_lock = PTHREAD_MUTEX_INITIALIZER;
static int process_hw_read;
static int process_hw(const po_hardware **out) {
  pthread_mutex_lock(&process_hw_lock);
  int rc = process_hw_read ? 0 : po_hardware_probe(NULL, 0, &process_hw_facts);
  if (!rc) process_hw_read = 1;
  pthread_mutex_unlock(&process_hw_lock);
  *out = &process_hw_facts;
  return rc;
}

/* The run's origin: the library's start (po__run_seconds counts from it). */
static void run_times(po__report_sources *src) {
  src->wall_seconds = po__run_seconds();
  src->start_unix_seconds = po__unix_seconds() - src->wall_seconds;
  src->pid = (int)getpid();
}

/* Takes every snapshot a report of opt needs (opt NULL: profile, host and run only); with_recent
 * adds the recent samples (the flight record). */
static int take(po_optimizer *opt, int final, int with_recent, taken *t) {
  po__report_sources *src = &t->src;
  size_t argc = 0;
  int rc = po__self_argv(&t->argv_buf, t->argv, MAX_ARGV, &argc);
  src->argv = t->argv;
  src->argc = argc;
  run_times(src);
  if (!rc) rc = po__profile_snapshot_create(&t->profile);
  src->profile = t->profile;
  if (!opt) {
    if (!rc) rc = process_hw(&src->hw);
    return rc;
  }
  src->hw = &opt->hw;
  src->cfg = &opt->cfg;
  po_sample ignored;
  /* A report reads the last sample; take one first only if there is none (and never at exit,
   * which must not open files or load NVML). */
  if (!rc && !final && po__sampler_latest(opt->sampler, &ignored) == PO_ENOENT)
    po__sampler_sample_now(opt->sampler, NULL);
  if (!rc) rc = po__sampler_snapshot_create(opt->sampler, with_recent, &t->sampler);
  if (!rc) rc = po__memory_snapshot_create(opt->memory, &t->memory);
  if (!rc) rc = po__cache_registry_snapshot(opt, &t->caches, &t->ncaches);
  src->sampler = t->sampler;
  src->memory = t->memory;
  src->caches = t->caches;
  src->ncaches = t->ncaches;
  pthread_mutex_lock(&opt->flight_mu);
  t->flight = opt->flight;
  pthread_mutex_unlock(&opt->flight_mu);
  src->flight = &t->flight;
  return rc;
}

int po__optimizer_report(po_optimizer *opt, int final, po_report **out) {
  *out = NULL;
  taken t = {0};
  int rc = take(opt, final, 0, &t);
  if (!rc) rc = po__report_create_from(&t.src, out);
  release(&t);
  return rc;
}

int po__optimizer_flight_record(po_optimizer *opt, const po_pressure_event *ev,
                                const char *reason) {
  taken *t = po__calloc(1, sizeof *t); /* off the sampler thread's stack */
  int rc = t ? take(opt, 1, 1, t) : PO_ENOMEM;
  po_report *rep = NULL;
  char err[256] = "";
  double now = po__run_seconds();
  if (t && !rc) {
    po__flight *f = &t->flight;
    f->writes++;
    f->last_t_seconds = now;
    f->error[0] = '\0';
    f->is_record = 1;
    f->t_seconds = ev->t_seconds;
    f->metric = ev->metric;
    f->device = ev->device;
    f->grade = ev->grade;
    f->value = ev->value;
    f->time_to_limit_seconds = ev->time_to_limit_seconds;
    po__strlcpy(f->reason, reason, sizeof f->reason);
    rc = po__report_create_from(&t->src, &rep);
  }
  if (!rc) rc = po_report_save_json(rep, opt->flight.path, err, sizeof err);
  if (rc && !err[0]) snprintf(err, sizeof err, "%s", po_strerror(rc));
  po_report_destroy(rep);
  if (t) release(t);
  free(t);
  pthread_mutex_lock(&opt->flight_mu);
  if (!rc) {
    opt->flight.writes++;
    opt->flight.last_t_seconds = now;
  }
  po__strlcpy(opt->flight.error, err, sizeof opt->flight.error);
  pthread_mutex_unlock(&opt->flight_mu);
  if (rc) po__log(0, "perfopt: flight record not written: %s", err);
  return rc;
}

int po__optimizer_refresh_profile(po_report *rep) {
  po__profile_snapshot *p = NULL;
  int rc = po__profile_snapshot_create(&p);
  po__report_sources src = {0};
  run_times(&src);
  if (!rc) rc = po__report_set_profile(rep, p, &src);
  po__profile_snapshot_destroy(p);
  return rc;
}

int po_report_create(po_optimizer *opt, po_report **out) {
  if (!out) return PO_EINVAL;
  return po__optimizer_report(opt, 0, out);
}

/* ---- conveniences ------------------------------------------------------------------------------
 */

int po_get_profiling_report(po_report **out) {
  return po_report_create(po_get_optimizer(), out);
}

int po_save_profiling_report(const char *path) {
  return po_optimizer_save_json(NULL, path);
}

/* Builds opt's report (NULL: the default optimizer) and saves it with `save`. */
static int save_with(po_optimizer *opt, const char *path,
                     int (*save)(const po_report *, const char *, char *, size_t)) {
  if (!path) return PO_EINVAL;
  po_report *rep;
  int rc = po_report_create(po__opt_or_default(opt), &rep);
  if (rc) return rc;
  char err[512];
  rc = save(rep, path, err, sizeof err);
  if (rc) {
    po__log(0, "perfopt: %s", err);
    po__set_last_error(rc, err);
  }
  po_report_destroy(rep);
  return rc;
}

int po_optimizer_save_json(po_optimizer *opt, const char *path) {
  return save_with(opt, path, po_report_save_json);
}

int po_optimizer_save_html(po_optimizer *opt, const char *path) {
  return save_with(opt, path, po_report_save_html);
}

int po_optimizer_write_text(po_optimizer *opt, FILE *out, po_sort sort) {
  if (!out) return PO_EINVAL;
  po_report *rep;
  int rc = po_report_create(po__opt_or_default(opt), &rep);
  if (rc) return rc;
  rc = po_report_write_text(rep, out, sort, 25);
  po_report_destroy(rep);
  return rc;
}
