/* The memory autopilot on a job that grows towards its limit: each training step caches a new
 * batch of features (a byte-budgeted cache, typed "data", bigger than the memory the job may
 * use), so memory climbs steadily. With the cache attached to the optimizer, the autopilot sees
 * the limit coming, shrinks the cache in time and the job finishes; with --no-handler nothing
 * makes room and the limit stops the job.
 *
 * The limit is the configured budget PERFOPT_MEMORY_LIMIT_BYTES, or a cgroup's. Nothing enforces
 * a budget, so --enforce stands in for the kernel: the job kills itself (SIGKILL) when its RSS
 * passes the budget, as the OOM killer would. Under a real cgroup memory limit, leave it off.
 *
 * usage: memory_autopilot [--no-handler] [--enforce] [--sync] [--steps N] [--step-mb M]
 *                         [--step-ms MS] [--cache-mb C]
 *   --sync   takes a sample after every step (po_monitor_sample_now) instead of relying on the
 *            background sampler alone: growth and sampling then advance together, whatever the
 *            machine's load (the tests use it).
 */
#include "perfopt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
  int handler, enforce, sync;
  long steps, step_mb, step_ms, cache_mb;
} options;

static int parse(int argc, char **argv, options *o) {
  *o = (options){1, 0, 0, 150, 2, 20, 1024};
  for (int i = 1; i < argc; i++) {
    long *v = NULL;
    if (!strcmp(argv[i], "--no-handler"))
      o->handler = 0;
    else if (!strcmp(argv[i], "--enforce"))
      o->enforce = 1;
    else if (!strcmp(argv[i], "--sync"))
      o->sync = 1;
    else if (!strcmp(argv[i], "--steps"))
      v = &o->steps;
    else if (!strcmp(argv[i], "--step-mb"))
      v = &o->step_mb;
    else if (!strcmp(argv[i], "--step-ms"))
      v = &o->step_ms;
    else if (!strcmp(argv[i], "--cache-mb"))
      v = &o->cache_mb;
    else
      return -1;
    if (v) {
      if (i + 1 >= argc) return -1;
      char *end;
      *v = strtol(argv[++i], &end, 10);
      if (*end || *v < 0) return -1;
    }
  }
  return 0;
}

static void free_batch(void *value) {
  free(value);
}

static void checkpoint_now(const po_pressure_event *ev, void *user) {
  (void)user;
  fprintf(stderr, "memory_autopilot: checkpoint (limit forecast in %.1f s)\n",
          ev->time_to_limit_seconds);
}

/* The stand-in for the OOM killer under a budget (see the header comment). */
static void enforce_budget(void) {
  po_sample s;
  const po_config *cfg = po_optimizer_config(po_get_optimizer());
  if (!cfg || cfg->memory_limit_bytes <= 0 || po_monitor_latest(NULL, &s) != 0) return;
  if (s.process_rss_bytes > cfg->memory_limit_bytes) {
    fprintf(stderr, "memory_autopilot: RSS %.0f MB over the %.0f MB budget: killed\n",
            (double)s.process_rss_bytes / 1e6, (double)cfg->memory_limit_bytes / 1e6);
    raise(SIGKILL);
  }
}

int main(int argc, char **argv) {
  options o;
  if (parse(argc, argv, &o) != 0) {
    fprintf(stderr, "usage: memory_autopilot [--no-handler] [--enforce] [--sync] [--steps N] "
                    "[--step-mb M] [--step-ms MS] [--cache-mb C]\n");
    return 2;
  }
  po_optimizer *opt = po_get_optimizer();
  if (!opt) return 1;
  po_cache_options co = {"features", PO_CACHE_SIEVE, 0, NULL, NULL};
  po_cache *cache;
  if (po_cache_create_ex((uint64_t)o.cache_mb << 20, &co, &cache) != 0) return 1;
  if (o.handler) {
    po_cache_attach(opt, cache); /* the autopilot may now shrink it */
    po_checkpoint_register(opt, "checkpoint", checkpoint_now, NULL, NULL);
  }
  size_t bytes = (size_t)o.step_mb << 20;
  struct timespec pause = {o.step_ms / 1000, (o.step_ms % 1000) * 1000000};
  for (long step = 0; step < o.steps; step++) {
    char *batch = malloc(bytes);
    if (!batch) return 1;
    memset(batch, (int)(step & 0x7f) + 1, bytes); /* touched: resident */
    po_cache_entry_opts eo = {PO_RESOURCE_DATA, free_batch, 0, 0};
    if (po_cache_put(cache, &step, sizeof step, batch, bytes, &eo) != 0) free(batch);
    if (o.sync) po_monitor_sample_now(NULL, NULL);
    if (o.enforce) enforce_budget();
    nanosleep(&pause, NULL);
  }
  po_cache_stats st;
  po_cache_get_stats(cache, &st);
  printf("memory_autopilot: %ld steps done, cache holds %.0f MB after %llu shrinks\n", o.steps,
         (double)st.bytes / 1e6, (unsigned long long)st.shrinks);
  po_cache_destroy(cache);
  return 0;
}
