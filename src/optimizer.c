/* optimizer: create, wire and destroy the engines; the process-wide default instance; the
 * PERFOPT_OUT report written at exit. */
#include "optimizer.h"

#include "platform.h"
#include "profile/profile.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static po_optimizer *live; /* newest first */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static po_optimizer *default_opt;
static int default_failed;

/* The autopilot's emergency, once per episode: the flight record first (it must exist if the
 * kill follows), then the user's checkpoint handlers, then the record again with what they did. */
static void emergency(po_optimizer *opt, const po_pressure_event *ev, po__actions *acts) {
  char reason[160];
  if (ev->time_to_limit_seconds >= 0)
    snprintf(reason, sizeof reason, "%s limit forecast in %.1f s; cleanup did not move it out",
             po_metric_name(ev->metric), ev->time_to_limit_seconds);
  else
    snprintf(reason, sizeof reason, "%s at %.1f%% of its limit", po_metric_name(ev->metric),
             100 * ev->value);
  po__log(0, "perfopt: memory emergency: %s; writing the flight record", reason);
  int rc = po__optimizer_flight_record(opt, ev, reason);
  po__actions_add(acts, rc ? "flight_record:failed" : "flight_record");
  if (po__memory_checkpoint(opt->memory, ev, acts) > 0)
    po__optimizer_flight_record(opt, ev, reason);
}

/* A threshold firing: memory pressure runs the whole registry, GPU memory pressure the GPU
 * handlers; CPU and disk pressure cannot be relieved by freeing memory, so only the listeners
 * hear about them. The autopilot's warn grade only tells the listeners. */
static int64_t on_firing(const po_pressure_event *ev, unsigned flags, po__actions *acts,
                         void *user) {
  po_optimizer *opt = user;
  int type = ev->metric == PO_METRIC_MEMORY       ? PO_RESOURCE_ALL
             : ev->metric == PO_METRIC_GPU_MEMORY ? PO_RESOURCE_GPU
                                                  : PO__RESOURCE_NONE;
  if (ev->grade == PO_GRADE_WARN) {
    type = PO__RESOURCE_NONE;
    po__log(1, "perfopt: %s limit forecast in %.0f s at the current trend",
            po_metric_name(ev->metric), ev->time_to_limit_seconds);
  }
  po_cleanup_result res = {0, 0, 0, 0};
  po__memory_cleanup(opt->memory, ev->level, type, 0, ev, &res, acts);
  if (flags & PO__FIRING_FIRST_EMERGENCY) emergency(opt, ev, acts);
  return res.freed_bytes;
}

static int is_dir_value(const char *v);

/* FLIGHT_RECORD_PATH, else next to PERFOPT_OUT: DIR/perfopt-<pid>.flight.json for a directory
 * (where `perfopt run` finds it: a killed command's run report takes it in), else the value with
 * ".flight.json" for its ".json" and each %p replaced by the pid, else perfopt-flight.json in the
 * working directory. */
static void flight_path(const po_config *cfg, char *out, size_t len) {
  const char *env = getenv("PERFOPT_OUT");
  int pid = (int)getpid();
  if (cfg->flight_record_path[0]) {
    po__strlcpy(out, cfg->flight_record_path, len);
  } else if (env && *env && is_dir_value(env)) {
    snprintf(out, len, "%s%sperfopt-%d.flight.json", env, env[strlen(env) - 1] == '/' ? "" : "/",
             pid);
  } else if (env && *env) {
    size_t n = strlen(env), o = 0;
    if (n > 5 && !strcmp(env + n - 5, ".json")) n -= 5;
    for (size_t i = 0; i < n && o + 16 < len; i++) {
      if (env[i] == '%' && i + 1 < n && env[i + 1] == 'p') {
        o += (size_t)snprintf(out + o, len - o, "%d", pid);
        i++;
      } else {
        out[o++] = env[i];
      }
    }
    snprintf(out + o, len - o, ".flight.json");
  } else {
    po__strlcpy(out, "perfopt-flight.json", len);
  }
}

static int load_config(const po_config *cfg, po_config *out) {
  if (cfg) {
    *out = *cfg;
    return 0;
  }
  char err[512];
  int rc = po_config_load(out, err, sizeof err);
  if (rc) {
    po__log(0, "perfopt: %s", err);
    po__set_last_error(rc, err);
  }
  return rc;
}

/* Creates the engines in dependency order; on failure the caller destroys what exists. */
static int wire(po_optimizer *opt) {
  int rc = po_hardware_probe(&opt->cfg, 0, &opt->hw);
  flight_path(&opt->cfg, opt->flight.path, sizeof opt->flight.path);
  opt->flight.last_t_seconds = -1;
  if (!rc) rc = po_thresholds_resolve(&opt->cfg, &opt->hw, &opt->th);
  if (!rc) rc = po_gpu_session_create(&opt->cfg, &opt->gpu);
  if (!rc) rc = po__memory_create(&opt->cfg, opt->gpu, &opt->memory);
  if (!rc) rc = po__sampler_create(&opt->cfg, &opt->th, opt->gpu, on_firing, opt, &opt->sampler);
  if (!rc) rc = po__cache_registry_create(opt);
  return rc;
}

static void unwire(po_optimizer *opt) {
  po__sampler_destroy(opt->sampler); /* first: no firing may reach the others */
  po_cache_destroy(opt->default_cache);
  po__cache_registry_destroy(opt);
  po__memory_destroy(opt->memory);
  po_gpu_session_destroy(opt->gpu);
}

int po_optimizer_create(const po_config *cfg, po_optimizer **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  po_optimizer *opt = po__calloc(1, sizeof *opt);
  if (!opt) return po__set_last_error(PO_ENOMEM, "out of memory creating the optimizer");
  int rc = load_config(cfg, &opt->cfg);
  if (rc) {
    free(opt);
    return rc;
  }
  pthread_mutex_init(&opt->lock, NULL);
  pthread_mutex_init(&opt->flight_mu, NULL);
  opt->created_unix_seconds = po__unix_seconds();
  rc = wire(opt);
  if (rc) {
    po__set_last_error(rc, rc == PO_ENOMEM ? "out of memory creating the optimizer"
                                           : "the optimizer's engines could not start");
    unwire(opt);
    pthread_mutex_destroy(&opt->flight_mu);
    pthread_mutex_destroy(&opt->lock);
    free(opt);
    return rc;
  }
  po_profile_set_enabled(opt->cfg.enable_profiling);
  if (opt->cfg.profile_timeline) po_profile_set_timeline(1, (size_t)opt->cfg.timeline_events);
  if (opt->cfg.background_monitoring) {
    rc = po__sampler_start(opt->sampler);
    /* A machine without /proc still gets an optimizer; the report says no samples were taken. */
    if (rc) po__log(1, "perfopt: background monitoring not started: %s", po_strerror(rc));
  }
  if (opt->cfg.server_enable) po__optimizer_serve(opt);
  pthread_mutex_lock(&live_lock);
  opt->next = live;
  live = opt;
  pthread_mutex_unlock(&live_lock);
  *out = opt;
  return 0;
}

const po_config *po_optimizer_config(const po_optimizer *opt) {
  return opt ? &opt->cfg : NULL;
}

po_cache *po_optimizer_cache(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  if (!opt) return NULL;
  pthread_mutex_lock(&opt->lock);
  if (!opt->default_cache) {
    po_cache_options o = {.name = "default", .policy = (po_cache_policy)opt->cfg.cache_policy};
    po_cache *c = NULL;
    int rc = po_cache_create_ex((uint64_t)opt->cfg.cache_budget_bytes, &o, &c);
    if (rc == 0 && (rc = po_cache_attach(opt, c)) != 0) {
      po_cache_destroy(c);
      c = NULL;
    }
    if (rc) { /* no return code to give: the log and po_last_error say why (retried next call) */
      char msg[160];
      snprintf(msg, sizeof msg, "the default cache could not be created: %s", po_strerror(rc));
      po__log(0, "perfopt: %s", msg);
      po__set_last_error(rc, msg);
    }
    opt->default_cache = c;
  }
  po_cache *c = opt->default_cache;
  pthread_mutex_unlock(&opt->lock);
  return c;
}

/* ---- the report PERFOPT_OUT asks for ----------------------------------------------------------
 */

/* Written at exit from the optimizer the program used: the default one when it exists, else the
 * newest live one, else the report kept when the program destroyed its last optimizer (with the
 * profile brought up to date at exit, since zones may still run after the destroy). */
static pthread_mutex_t exit_lock = PTHREAD_MUTEX_INITIALIZER;
static po_report *kept_report;

static int ctor_pid; /* the process that read PERFOPT_OUT at start */

static const char *out_path(void) {
  const char *p = getenv("PERFOPT_OUT");
  return p && *p ? p : NULL;
}

static int is_dir_value(const char *v) {
  struct stat st;
  size_t l = strlen(v);
  return (l && v[l - 1] == '/') || (stat(v, &st) == 0 && S_ISDIR(st.st_mode));
}

/* Where this process writes its report: DIR/perfopt-<pid>.json for a directory (another name when
 * a process that had the same pid already wrote there), the value with each %p replaced by the
 * pid, or the path itself, which only the process that started with it writes (a forked child
 * would overwrite its parent's report). *dir gets 1 for a directory. Returns 0, or -1 when this
 * process writes nothing. */
static int resolve_out(const char *v, char *buf, size_t len, int *dir) {
  int pid = (int)getpid();
  *dir = is_dir_value(v);
  if (*dir) {
    const char *sep = v[strlen(v) - 1] == '/' ? "" : "/";
    struct stat st;
    for (int k = 1; k < 1000; k++) {
      int n = k == 1 ? snprintf(buf, len, "%s%sperfopt-%d.json", v, sep, pid)
                     : snprintf(buf, len, "%s%sperfopt-%d-%d.json", v, sep, pid, k);
      if (n < 0 || (size_t)n >= len) return -1;
      if (lstat(buf, &st) != 0) return 0;
    }
    return -1;
  }
  if (!strstr(v, "%p")) {
    if (pid != ctor_pid) return -1;
    return po__strlcpy(buf, v, len) ? -1 : 0;
  }
  size_t o = 0;
  for (const char *q = v; *q && o + 16 < len; q++) {
    if (q[0] == '%' && q[1] == 'p') {
      o += (size_t)snprintf(buf + o, len - o, "%d", pid);
      q++;
    } else {
      buf[o++] = *q;
    }
  }
  buf[o] = '\0';
  return 0;
}

/* A failed write into a report directory leaves DIR/perfopt-<pid>.err with the reason, so that
 * `perfopt run` can say why a process's report is missing (a small file: it may still fit when
 * the report did not). */
static void write_failure_marker(const char *dir, const char *msg) {
  char path[4200];
  const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
  snprintf(path, sizeof path, "%s%sperfopt-%d.err", dir, sep, (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t len = strlen(msg);
  ssize_t n = write(fd, msg, len);
  (void)n;
  close(fd);
}

/* Called by po_optimizer_destroy for the last live optimizer when PERFOPT_OUT is set. */
static void keep_report(po_optimizer *opt) {
  po_report *rep = NULL;
  if (po__optimizer_report(opt, 1, &rep) != 0) return;
  pthread_mutex_lock(&exit_lock);
  po_report_destroy(kept_report);
  kept_report = rep;
  pthread_mutex_unlock(&exit_lock);
}

void po_optimizer_destroy(po_optimizer *opt) {
  if (!opt) return;
  pthread_mutex_lock(&live_lock);
  for (po_optimizer **pp = &live; *pp; pp = &(*pp)->next)
    if (*pp == opt) {
      *pp = opt->next;
      break;
    }
  int last = live == NULL;
  pthread_mutex_unlock(&live_lock);
  pthread_mutex_lock(&default_lock);
  if (default_opt == opt) default_opt = NULL;
  pthread_mutex_unlock(&default_lock);
  po_server_destroy(opt->server); /* first: its threads build reports of opt */
  opt->server = NULL;
  if (last && out_path()) keep_report(opt);
  unwire(opt);
  pthread_mutex_destroy(&opt->flight_mu);
  pthread_mutex_destroy(&opt->lock);
  free(opt);
}

static void say_exit_error(const char *dir, const char *msg) {
  po__log(0, "perfopt: %s", msg);
  if (dir) write_failure_marker(dir, msg);
  /* PERFOPT_OUT has no caller to return an error to: without a log callback, say it on stderr
   * rather than lose it. */
  if (!po__log_has_callback()) fprintf(stderr, "perfopt: PERFOPT_OUT: %s\n", msg);
}

static void write_out_report(void) {
  const char *value = out_path();
  char path[4200];
  int dir = 0;
  if (!value || resolve_out(value, path, sizeof path, &dir) != 0) return;
  pthread_mutex_lock(&default_lock);
  pthread_mutex_lock(&live_lock);
  po_optimizer *opt = default_opt ? default_opt : live;
  pthread_mutex_unlock(&live_lock);
  pthread_mutex_unlock(&default_lock);
  po_report *rep = NULL;
  int rc = opt ? po__optimizer_report(opt, 1, &rep) : 0;
  pthread_mutex_lock(&exit_lock);
  if (!opt && kept_report) {
    rep = kept_report;
    kept_report = NULL;
    rc = po__optimizer_refresh_profile(rep);
  } else if (!opt) {
    rc = po_report_create(NULL, &rep);
  }
  pthread_mutex_unlock(&exit_lock);
  char err[4400];
  if (rc) {
    snprintf(err, sizeof err, "%s: the report could not be built: %s", path, po_strerror(rc));
    say_exit_error(dir ? value : NULL, err);
  } else if (po_report_save_json(rep, path, err, sizeof err) != 0) {
    say_exit_error(dir ? value : NULL, err);
  }
  po_report_destroy(rep);
}

#ifdef PERFOPT_TESTING
void po__test_write_out_report(void) {
  write_out_report();
}
#endif

/* ---- the process-wide default -----------------------------------------------------------------
 */

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

po_optimizer *po__opt_or_default(po_optimizer *opt) {
  return opt ? opt : po_get_optimizer();
}

/* Defined by programs that must not serve at load time (the perfopt command). */
extern const int po__no_load_time_server __attribute__((weak));

static int env_false(const char *v) {
  return v && (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
               !strcasecmp(v, "no"));
}

/* The library is linked as one object (see the Makefile), so this constructor runs in every
 * program that uses any part of it, static or shared: PERFOPT_OUT then always works. */
__attribute__((constructor)) static void optimizer_ctor(void) {
  if (env_false(getenv("PERFOPT_PROFILING"))) po_profile_set_enabled(0);
  const char *tl = getenv("PERFOPT_PROFILE_TIMELINE");
  if (tl && (!strcmp(tl, "1") || !strcasecmp(tl, "true"))) po_profile_set_timeline(1, 65536);
  ctor_pid = (int)getpid();
  const char *out = out_path();
  if (out) {
    atexit(write_out_report);
    /* With a report per process, a forked child's report holds only what the child did. */
    if (strstr(out, "%p") || is_dir_value(out)) po__profile_forget_on_fork(1);
  }
  /* PERFOPT_SERVER_ENABLE (set by `perfopt run --serve` for its command): serve the default
   * optimizer from the start, even in a program that never asks for one. Not in the perfopt
   * command itself (it defines po__no_load_time_server), which would take the command's port. */
  const char *serve = getenv("PERFOPT_SERVER_ENABLE");
  if (serve && *serve && !env_false(serve) && !&po__no_load_time_server) po_get_optimizer();
}
