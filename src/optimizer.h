/* The optimizer: the composition root. It creates, wires and destroys every engine (profiler
 * switches, sampler, memory management, attached caches, the GPU session), holds the default
 * instance and the seed-compatible wrappers, and writes the PERFOPT_OUT report at exit. Nothing
 * below this layer knows it exists. Not installed. */
#ifndef PO__OPTIMIZER_H
#define PO__OPTIMIZER_H

#include "base/base.h"
#include "cache/cache.h"
#include "monitor/memory.h"
#include "monitor/sampler.h"
#include "report/report_build.h"

#include <pthread.h>

struct po__cache_registry;

struct po_optimizer {
  po_config cfg;
  double created_unix_seconds;
  po_hardware hw;    /* facts read once at creation (without GPUs) */
  po_thresholds th;  /* resolved once at creation */
  po_gpu_session *gpu;
  po__sampler *sampler;
  po__memory *memory;
  struct po__cache_registry *caches; /* cache_attach.c */
  pthread_mutex_t lock;              /* default_cache */
  po_cache *default_cache;           /* CACHE_BUDGET_BYTES / CACHE_POLICY, created on first use */
  struct po_optimizer *next;         /* live optimizers (optimizer.c) */
  po_server *server;                 /* SERVER_ENABLE's endpoint (optimizer_server.c) */
  pthread_mutex_t flight_mu;         /* flight */
  po__flight flight;                 /* the flight record's path and what became of it */
};

/* The optimizer a public function acts on: opt, or the default one when opt is NULL. */
po_optimizer *po__opt_or_default(po_optimizer *opt);

/* cache_attach.c: the registry of attached caches. */
int po__cache_registry_create(po_optimizer *opt);
void po__cache_registry_destroy(po_optimizer *opt);
/* Snapshots of the attached caches (allocated; *n entries). Returns 0 or PO_ENOMEM. */
int po__cache_registry_snapshot(po_optimizer *opt, po__cache_snapshot **out, size_t *n);

/* optimizer_server.c: starts the endpoint SERVER_ENABLE asks for (a failure is logged, and said
 * on stderr when no log callback is set: the optimizer is created all the same). */
void po__optimizer_serve(po_optimizer *opt);

/* optimizer_report.c: a report from the optimizer's engines. final: taken at exit (no sample is
 * taken when none exists, so nothing is opened during exit). */
int po__optimizer_report(po_optimizer *opt, int final, po_report **out);
/* Writes the flight record (the report with the recent samples at full resolution and why) to
 * opt->flight.path, atomically, and records the outcome in opt->flight. ev: the firing that
 * asked for it. Returns 0 or the error. */
int po__optimizer_flight_record(po_optimizer *opt, const po_pressure_event *ev, const char *reason);
/* Replaces rep's profile section with the profile as it is now (and the run's times). */
int po__optimizer_refresh_profile(po_report *rep);

#ifdef PERFOPT_TESTING
/* Test build only: writes the PERFOPT_OUT report now, as the at-exit handler does. */
void po__test_write_out_report(void);
#endif

#endif
