/* Memory management: the cleanup registry (the seed's optimize_memory and clear_cache(type)),
 * pressure listeners, the memory guard, batch-size advice and phases.
 *
 * Locks: `action_mu` serializes everything that calls user code (cleanup handlers, listeners), so
 * that unregistering waits for a running handler; `mu` protects the registry and the records and
 * is never held while user code runs. Order: action_mu before mu.
 */
#include "base/base.h"
#include "monitor/monitor.h"
#include "optimizer.h"
#include "platform.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HANDLERS 256
#define MAX_LISTENERS 64
#define MAX_CLEANUP_RECORDS 512
#define MAX_GUARD_RECORDS 256
#define MAX_PHASES 1024
#define TEST_DEVICES (PO_SAMPLE_MAX_GPUS + 1)

typedef struct handler {
  int id;
  char name[64];
  po_resource_type type;
  int priority;
  po_cleanup_level min_level;
  po_cleanup_fn fn;
  void *user;
} handler;

typedef struct listener {
  int id;
  char name[32];
  po_pressure_fn fn;
  void *user;
} listener;

typedef struct cleanup_record {
  double t;
  po_cleanup_level level;
  int type;
  char handler[64];
  int64_t freed;
} cleanup_record;

typedef struct guard_record {
  double t;
  char name[64];
  int64_t required, available;
  int ran;
  int result;
} guard_record;

typedef struct phase {
  char name[64];
  double start, end; /* end < 0 while open */
} phase;

/* A bounded ring that keeps the newest `cap` records and counts the ones it overwrote. */
typedef struct ring {
  size_t head, len;
  uint64_t dropped;
} ring;

static size_t ring_push(ring *r, size_t cap) {
  size_t slot = (r->head + r->len) % cap;
  if (r->len == cap) {
    r->head = (r->head + 1) % cap;
    r->dropped++;
  } else {
    r->len++;
  }
  return slot;
}

struct po_memory_state {
  pthread_mutex_t action_mu;
  pthread_mutex_t mu;
  int next_id;
  size_t nhandlers;
  handler handlers[MAX_HANDLERS];
  size_t nlisteners;
  listener listeners[MAX_LISTENERS];
  ring cleanups_ring;
  cleanup_record cleanups[MAX_CLEANUP_RECORDS];
  ring guards_ring;
  guard_record guards[MAX_GUARD_RECORDS];
  size_t nphases;
  uint64_t phases_dropped;
  int phase_open; /* index of the open phase + 1, or 0 */
  int phase_cleanup_level;
  int has_test_available[TEST_DEVICES];
  int64_t test_available[TEST_DEVICES];
  phase phases[MAX_PHASES];
};

/* Set while this thread runs cleanup handlers or listeners: catches reentrant calls, which would
 * otherwise deadlock on action_mu. */
static __thread int in_action;

static const char *const type_names[] = {"model", "data", "visualization", "gpu", "other"};

const char *po_resource_type_name(int type) {
  if (type == PO_RESOURCE_ALL) return "all";
  if (type < 0 || type >= (int)PO__ARRAY_LEN(type_names)) return "unknown";
  return type_names[type];
}

static const char *level_name(po_cleanup_level level) {
  return level == PO_CLEANUP_AGGRESSIVE ? "aggressive" : "normal";
}

int po__memory_init(po_optimizer *opt) {
  struct po_memory_state *m = calloc(1, sizeof(*m));
  if (!m) return PO_ENOMEM;
  pthread_mutex_init(&m->action_mu, NULL);
  pthread_mutex_init(&m->mu, NULL);
  m->next_id = 1;
  m->phase_cleanup_level = -1;
  opt->memory = m;
  return 0;
}

void po__memory_fini(po_optimizer *opt) {
  struct po_memory_state *m = opt->memory;
  if (!m) return;
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->action_mu);
  free(m);
  opt->memory = NULL;
}

void po__memory_atfork_prepare(po_optimizer *opt) {
  pthread_mutex_lock(&opt->memory->action_mu);
  pthread_mutex_lock(&opt->memory->mu);
}

void po__memory_atfork_parent(po_optimizer *opt) {
  pthread_mutex_unlock(&opt->memory->mu);
  pthread_mutex_unlock(&opt->memory->action_mu);
}

void po__memory_atfork_child(po_optimizer *opt) {
  /* Only the forking thread exists in the child: fresh locks are the safe state. */
  pthread_mutex_init(&opt->memory->mu, NULL);
  pthread_mutex_init(&opt->memory->action_mu, NULL);
}

static struct po_memory_state *state_of(po_optimizer *opt) {
  return opt ? opt->memory : NULL;
}

/* ---- RSS -------------------------------------------------------------------------------- */

int64_t po__self_rss_bytes(void) {
  /* Opened per call: a descriptor kept open would still point at the parent after fork. */
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  ssize_t n;
  do {
    n = pread(fd, buf, sizeof(buf) - 1, 0);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  char *p = buf;
  strtoull(p, &p, 10); /* size */
  char *end;
  unsigned long long resident = strtoull(p, &end, 10);
  if (end == p) return -1;
  return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE);
}

/* ---- registry --------------------------------------------------------------------------- */

int po_cleanup_register(po_optimizer *opt, const char *name, po_resource_type type, int priority,
                        po_cleanup_level min_level, po_cleanup_fn fn, void *user, int *id_out) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  if (!m || !fn || (int)type < 0 || (int)type >= (int)PO__ARRAY_LEN(type_names) ||
      (min_level != PO_CLEANUP_NORMAL && min_level != PO_CLEANUP_AGGRESSIVE))
    return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->nhandlers >= MAX_HANDLERS) {
    pthread_mutex_unlock(&m->mu);
    return PO_ENOMEM;
  }
  /* Sorted by priority; equal priorities keep registration order. */
  size_t at = m->nhandlers;
  while (at > 0 && m->handlers[at - 1].priority > priority) at--;
  memmove(&m->handlers[at + 1], &m->handlers[at], (m->nhandlers - at) * sizeof(handler));
  handler *h = &m->handlers[at];
  memset(h, 0, sizeof(*h));
  h->id = m->next_id++;
  po__strlcpy(h->name, name && *name ? name : "(unnamed)", sizeof(h->name));
  h->type = type;
  h->priority = priority;
  h->min_level = min_level;
  h->fn = fn;
  h->user = user;
  m->nhandlers++;
  if (id_out) *id_out = h->id;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

/* Removes id from a sorted array of records with an `id` field. */
#define REMOVE_BY_ID(arr, count, id_)                                             \
  ({                                                                              \
    int found_ = 0;                                                               \
    for (size_t i_ = 0; i_ < (count); i_++) {                                     \
      if ((arr)[i_].id == (id_)) {                                                \
        memmove(&(arr)[i_], &(arr)[i_ + 1], ((count)-i_ - 1) * sizeof((arr)[0])); \
        (count)--;                                                                \
        found_ = 1;                                                               \
        break;                                                                    \
      }                                                                           \
    }                                                                             \
    found_;                                                                       \
  })

/* Unregistering waits for a cleanup in progress on another thread (action_mu), so that the
 * handler's `user` can be freed as soon as this returns. From inside a handler, the registry is
 * edited directly; the running pass re-checks each id before calling it. */
static int remove_entry(struct po_memory_state *m, int id, int listener_list) {
  int locked_action = !in_action;
  if (locked_action) pthread_mutex_lock(&m->action_mu);
  pthread_mutex_lock(&m->mu);
  int found = listener_list ? REMOVE_BY_ID(m->listeners, m->nlisteners, id)
                            : REMOVE_BY_ID(m->handlers, m->nhandlers, id);
  pthread_mutex_unlock(&m->mu);
  if (locked_action) pthread_mutex_unlock(&m->action_mu);
  return found ? 0 : PO_ENOENT;
}

int po_cleanup_unregister(po_optimizer *opt, int id) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  return m ? remove_entry(m, id, 0) : PO_EINVAL;
}

int po_monitor_add_pressure_listener(po_optimizer *opt, const char *name, po_pressure_fn fn,
                                     void *user, int *id_out) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  if (!m || !fn) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->nlisteners >= MAX_LISTENERS) {
    pthread_mutex_unlock(&m->mu);
    return PO_ENOMEM;
  }
  listener *l = &m->listeners[m->nlisteners++];
  memset(l, 0, sizeof(*l));
  l->id = m->next_id++;
  po__strlcpy(l->name, name && *name ? name : "(unnamed)", sizeof(l->name));
  l->fn = fn;
  l->user = user;
  if (id_out) *id_out = l->id;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po_monitor_remove_pressure_listener(po_optimizer *opt, int id) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  return m ? remove_entry(m, id, 1) : PO_EINVAL;
}

/* Ids of the entries a pass will visit, in order, taken under mu. The pass then looks each id
 * up again before calling it, so a handler may unregister itself or others while it runs. */
static size_t snapshot_ids(struct po_memory_state *m, int listeners, po_cleanup_level level,
                           int type, int all_levels, int *ids) {
  size_t n = 0;
  pthread_mutex_lock(&m->mu);
  if (listeners) {
    for (size_t i = 0; i < m->nlisteners; i++) ids[n++] = m->listeners[i].id;
  } else {
    for (size_t i = 0; i < m->nhandlers; i++) {
      const handler *h = &m->handlers[i];
      if (!all_levels && h->min_level > level) continue;
      if (type != PO_RESOURCE_ALL && (int)h->type != type) continue;
      ids[n++] = h->id;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return n;
}

static int find_handler(struct po_memory_state *m, int id, handler *out) {
  int found = 0;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->nhandlers && !found; i++)
    if (m->handlers[i].id == id) {
      *out = m->handlers[i];
      found = 1;
    }
  pthread_mutex_unlock(&m->mu);
  return found;
}

static int find_listener(struct po_memory_state *m, int id, listener *out) {
  int found = 0;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->nlisteners && !found; i++)
    if (m->listeners[i].id == id) {
      *out = m->listeners[i];
      found = 1;
    }
  pthread_mutex_unlock(&m->mu);
  return found;
}

static void record_cleanup(struct po_memory_state *m, po_cleanup_level level, int type,
                           const char *name, int64_t freed) {
  pthread_mutex_lock(&m->mu);
  cleanup_record *r = &m->cleanups[ring_push(&m->cleanups_ring, MAX_CLEANUP_RECORDS)];
  r->t = po__run_seconds();
  r->level = level;
  r->type = type;
  po__strlcpy(r->handler, name, sizeof(r->handler));
  r->freed = freed;
  pthread_mutex_unlock(&m->mu);
}

static int64_t freed_between(int64_t before, int64_t after) {
  return before >= 0 && after >= 0 && before > after ? before - after : 0;
}

int po__memory_cleanup(po_optimizer *opt, po_cleanup_level level, int type, int all_levels,
                       const po_pressure_event *ev, po_cleanup_result *out, po_actions *acts) {
  struct po_memory_state *m = state_of(opt);
  if (!m || (level != PO_CLEANUP_NORMAL && level != PO_CLEANUP_AGGRESSIVE)) return PO_EINVAL;
  if (in_action) return PO_EBUSY;
  pthread_mutex_lock(&m->action_mu);
  in_action = 1;
  po_cleanup_result res = {0, po__self_rss_bytes(), -1, 0};
  int ran_any = 0;
  int64_t sum_freed = 0;

  int ids[MAX_HANDLERS > MAX_LISTENERS ? MAX_HANDLERS : MAX_LISTENERS];
  size_t n = type == PO__RESOURCE_NONE ? 0 : snapshot_ids(m, 0, level, type, all_levels, ids);
  for (size_t k = 0; k < n; k++) {
    handler h;
    if (!find_handler(m, ids[k], &h)) continue;
    int64_t before = po__self_rss_bytes();
    h.fn(level, h.user);
    malloc_trim(0); /* per handler, so that each one's freed bytes show in RSS */
    int64_t freed = freed_between(before, po__self_rss_bytes());
    record_cleanup(m, level, (int)h.type, h.name, freed);
    po__actions_add(acts, "cleanup:%s:%s", level_name(level), h.name);
    res.handlers_run++;
    sum_freed += freed;
    ran_any = 1;
  }

  if (ev) {
    n = snapshot_ids(m, 1, level, type, 0, ids);
    for (size_t k = 0; k < n; k++) {
      listener l;
      if (!find_listener(m, ids[k], &l)) continue;
      /* CPU and disk firings only notify: no trim, and no RSS difference (which would credit
       * the listener with whatever other threads freed meanwhile). */
      int notify_only = type == PO__RESOURCE_NONE;
      int64_t before = notify_only ? 0 : po__self_rss_bytes();
      int64_t reported = l.fn(ev, l.user);
      int64_t freed = reported > 0 ? reported : 0;
      if (!notify_only) {
        malloc_trim(0);
        int64_t measured = freed_between(before, po__self_rss_bytes());
        /* A cache knows what it released even when the allocator keeps the pages. */
        if (measured > freed) freed = measured;
      }
      if (!notify_only || freed > 0) record_cleanup(m, level, PO_RESOURCE_ALL, l.name, freed);
      po__actions_add(acts, "listener:%s", l.name);
      sum_freed += freed;
      ran_any = 1;
    }
  }
  if (!ran_any && type != PO__RESOURCE_NONE) malloc_trim(0);
  res.rss_after_bytes = po__self_rss_bytes();
  /* Whole-pass RSS drop, or the sum of what each entry released when that is larger (RSS can
   * rise meanwhile on other threads, and listeners may report bytes the allocator keeps). */
  res.freed_bytes =
      type == PO__RESOURCE_NONE ? 0 : freed_between(res.rss_before_bytes, res.rss_after_bytes);
  if (sum_freed > res.freed_bytes) res.freed_bytes = sum_freed;
  in_action = 0;
  pthread_mutex_unlock(&m->action_mu);
  if (out) *out = res;
  return 0;
}

int po_optimize_memory(po_optimizer *opt, po_cleanup_level level, po_cleanup_result *out) {
  opt = po__opt_or_default(opt);
  po_pressure_event ev = {po__run_seconds(), PO_METRIC_MANUAL, -1, 0, 0, level, NULL};
  return po__memory_cleanup(opt, level, PO_RESOURCE_ALL, 0, &ev, out, NULL);
}

int po_clear_resource(po_optimizer *opt, po_resource_type type, po_cleanup_level level,
                      po_cleanup_result *out) {
  opt = po__opt_or_default(opt);
  if ((int)type < 0 || (int)type >= (int)PO__ARRAY_LEN(type_names)) return PO_EINVAL;
  /* An explicit request for one type: all its handlers run, whatever their min_level. */
  return po__memory_cleanup(opt, level, (int)type, 1, NULL, out, NULL);
}

/* ---- available memory --------------------------------------------------------------------- */

void po__memory_test_set_available(po_optimizer *opt, int device, int64_t bytes) {
  struct po_memory_state *m = state_of(opt);
  if (!m || device < -1 || device + 1 >= TEST_DEVICES) return;
  pthread_mutex_lock(&m->mu);
  m->has_test_available[device + 1] = bytes >= 0;
  m->test_available[device + 1] = bytes;
  pthread_mutex_unlock(&m->mu);
}

int64_t po__memory_available(po_optimizer *opt, int device) {
  struct po_memory_state *m = state_of(opt);
  if (!m || device < -1) return -1;
  if (device + 1 < TEST_DEVICES) {
    pthread_mutex_lock(&m->mu);
    int has = m->has_test_available[device + 1];
    int64_t v = m->test_available[device + 1];
    pthread_mutex_unlock(&m->mu);
    if (has) return v;
  }
  if (device >= 0) {
    int64_t free_bytes;
    return po__monitor_gpu_free(opt, device, &free_bytes) == 0 ? free_bytes : -1;
  }
  /* A probe of its own: a probe serves one thread at a time, and the sampler owns its own. */
  po_probe *p;
  if (po__probe_open(opt->cfg.proc_root, &p) != 0) return -1;
  po_sys_sample *s = malloc(sizeof(*s));
  int64_t avail = -1;
  if (s && po__probe_system(p, s) == 0 && !(s->missing & PO_MISSING_MEMINFO))
    avail = (int64_t)s->effective_available_bytes;
  free(s);
  po__probe_close(p);
  return avail;
}

/* ---- the guard ---------------------------------------------------------------------------- */

void po_guard_options_init(po_guard_options *o) {
  if (!o) return;
  memset(o, 0, sizeof(*o));
  o->name = "guard";
  o->device = -1;
  o->headroom_ratio = 0;
  o->cleanup_after = PO_CLEANUP_NORMAL;
}

static void record_guard(struct po_memory_state *m, const char *name, const po_guard_result *r,
                         int rc) {
  pthread_mutex_lock(&m->mu);
  guard_record *g = &m->guards[ring_push(&m->guards_ring, MAX_GUARD_RECORDS)];
  g->t = po__run_seconds();
  po__strlcpy(g->name, name, sizeof(g->name));
  g->required = r->required_bytes;
  g->available = r->available_bytes;
  g->ran = r->ran;
  g->result = rc;
  pthread_mutex_unlock(&m->mu);
}

/* Cleanup for a guard: a GPU guard clears GPU resources only; a host guard clears everything. */
static void guard_cleanup(po_optimizer *opt, int device, po_cleanup_level level) {
  po__memory_cleanup(opt, level, device >= 0 ? PO_RESOURCE_GPU : PO_RESOURCE_ALL, 0, NULL, NULL,
                     NULL);
}

int po_guard_run(po_optimizer *opt, int64_t required_bytes, po_guard_fn primary,
                 po_guard_fn fallback, void *ctx, const po_guard_options *o, po_guard_result *out) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  po_guard_options def;
  if (!o) {
    po_guard_options_init(&def);
    o = &def;
  }
  if (!m || !primary || required_bytes < 0 || o->device < -1 || o->headroom_ratio < 0 ||
      isnan(o->headroom_ratio))
    return PO_EINVAL;
  const char *name = o->name && *o->name ? o->name : "guard";
  po_guard_result r = {0, 0, required_bytes, -1};
  double need = (double)required_bytes * (1.0 + o->headroom_ratio);

  r.available_bytes = po__memory_available(opt, o->device);
  if (r.available_bytes >= 0 && (double)r.available_bytes < need) {
    /* Short: free what can be freed, then look again before giving up on the primary. */
    guard_cleanup(opt, o->device, PO_CLEANUP_NORMAL);
    r.available_bytes = po__memory_available(opt, o->device);
  }
  int fits = r.available_bytes < 0 || (double)r.available_bytes >= need;
  int rc;
  if (fits) {
    r.ran = 1;
    rc = r.primary_rc = primary(ctx);
    if (rc == PO_EOOM) {
      guard_cleanup(opt, o->device, PO_CLEANUP_AGGRESSIVE);
      if (fallback) {
        r.ran = 2;
        rc = fallback(ctx);
      }
    }
  } else if (fallback) {
    r.ran = 2;
    rc = fallback(ctx);
  } else {
    rc = PO_EOOM;
  }
  if (r.ran != 0 &&
      (o->cleanup_after == PO_CLEANUP_NORMAL || o->cleanup_after == PO_CLEANUP_AGGRESSIVE))
    guard_cleanup(opt, o->device, (po_cleanup_level)o->cleanup_after);
  record_guard(m, name, &r, rc);
  if (out) *out = r;
  return rc;
}

/* ---- batch-size advice -------------------------------------------------------------------- */

int po_batch_advise(po_optimizer *opt, const po_batch_request *req, int64_t *batch_out) {
  if (batch_out) *batch_out = 0;
  if (!req || !batch_out || req->fixed_bytes < 0 || req->available_bytes < 0 ||
      req->max_batch < 0 || req->headroom_ratio < 0 || !(req->headroom_ratio < 1) ||
      (req->rounding != PO_BATCH_MULTIPLE_OF_8 && req->rounding != PO_BATCH_POWER_OF_TWO))
    return PO_EINVAL;
  double per = (double)req->bytes_per_sample;
  double fixed = (double)req->fixed_bytes;
  if (req->bytes_per_sample < 0) return PO_EINVAL;
  if (req->bytes_per_sample == 0) {
    /* Two measurements: memory grows linearly with the batch; the intercept is the fixed part. */
    if (req->batch_a <= 0 || req->batch_b <= 0 || req->batch_a == req->batch_b ||
        req->bytes_a < 0 || req->bytes_b < 0)
      return PO_EINVAL;
    per = (double)(req->bytes_b - req->bytes_a) / (double)(req->batch_b - req->batch_a);
    if (!(per > 0)) return PO_EINVAL;
    fixed = (double)req->bytes_a - per * (double)req->batch_a;
    if (fixed < 0) fixed = 0;
  }
  double avail = (double)req->available_bytes;
  if (req->available_bytes == 0) {
    int64_t a = opt ? po__memory_available(opt, req->device) : -1;
    if (a < 0 && !opt && req->device < 0) {
      po_probe *p;
      if (po__probe_open("", &p) == 0) {
        po_sys_sample *s = malloc(sizeof(*s));
        if (s && po__probe_system(p, s) == 0) a = (int64_t)s->effective_available_bytes;
        free(s);
        po__probe_close(p);
      }
    }
    if (a < 0) return PO_ENOTSUP;
    avail = (double)a;
  }
  double headroom = req->headroom_ratio > 0 ? req->headroom_ratio : 0.1;
  double usable = avail * (1.0 - headroom) - fixed;
  if (usable < per) return PO_ETOOBIG;
  double n = floor(usable / per);
  if (req->max_batch > 0 && n > (double)req->max_batch) n = (double)req->max_batch;
  if (n > (double)INT64_MAX / 2) n = (double)INT64_MAX / 2;
  int64_t b = (int64_t)n;
  if (req->rounding == PO_BATCH_MULTIPLE_OF_8) {
    b -= b % 8;
  } else {
    int64_t p2 = 1;
    while (p2 <= b / 2) p2 *= 2;
    b = b >= 1 ? p2 : 0;
  }
  if (b <= 0) return PO_ETOOBIG;
  *batch_out = b;
  return 0;
}

/* ---- phases ------------------------------------------------------------------------------- */

static void end_open_phase(struct po_memory_state *m) {
  if (m->phase_open) {
    m->phases[m->phase_open - 1].end = po__run_seconds();
    m->phase_open = 0;
  }
}

int po_phase_begin(po_optimizer *opt, const char *name) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  if (!m || !name) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  int open = m->phase_open;
  pthread_mutex_unlock(&m->mu);
  if (open) po_phase_end(opt); /* with its cleanup between phases, when asked */
  pthread_mutex_lock(&m->mu);
  end_open_phase(m);
  if (m->nphases >= MAX_PHASES) {
    m->phases_dropped++;
  } else {
    phase *p = &m->phases[m->nphases++];
    po__strlcpy(p->name, name, sizeof(p->name));
    p->start = po__run_seconds();
    p->end = -1;
    m->phase_open = (int)m->nphases;
  }
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po_phase_end(po_optimizer *opt) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  if (!m) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  end_open_phase(m);
  int level = m->phase_cleanup_level;
  pthread_mutex_unlock(&m->mu);
  if (level == PO_CLEANUP_NORMAL || level == PO_CLEANUP_AGGRESSIVE)
    return po_optimize_memory(opt, (po_cleanup_level)level, NULL);
  return 0;
}

int po_phase_set_cleanup(po_optimizer *opt, int level) {
  opt = po__opt_or_default(opt);
  struct po_memory_state *m = state_of(opt);
  if (!m || level < -1 || level > PO_CLEANUP_AGGRESSIVE) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  m->phase_cleanup_level = level;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

/* ---- report pieces ------------------------------------------------------------------------ */

int po__memory_report_records(po_optimizer *opt, cJSON *memory) {
  struct po_memory_state *m = state_of(opt);
  cJSON *cl = cJSON_AddArrayToObject(memory, "cleanups");
  cJSON *gu = cJSON_AddArrayToObject(memory, "guards");
  if (!cl || !gu) return PO_ENOMEM;
  if (!m) return 0;
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->cleanups_ring.len && rc == 0; i++) {
    const cleanup_record *r = &m->cleanups[(m->cleanups_ring.head + i) % MAX_CLEANUP_RECORDS];
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(cl, o) || !cJSON_AddNumberToObject(o, "t_seconds", r->t) ||
        !cJSON_AddStringToObject(o, "level", level_name(r->level)) ||
        !cJSON_AddStringToObject(
            o, "type", r->type == PO_RESOURCE_ALL ? "listener" : po_resource_type_name(r->type)) ||
        !cJSON_AddStringToObject(o, "handler", r->handler) ||
        !cJSON_AddNumberToObject(o, "freed_bytes", (double)r->freed))
      rc = PO_ENOMEM;
  }
  for (size_t i = 0; i < m->guards_ring.len && rc == 0; i++) {
    const guard_record *g = &m->guards[(m->guards_ring.head + i) % MAX_GUARD_RECORDS];
    static const char *const ran[] = {"none", "primary", "fallback"};
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(gu, o) || !cJSON_AddNumberToObject(o, "t_seconds", g->t) ||
        !cJSON_AddStringToObject(o, "name", g->name) ||
        !cJSON_AddNumberToObject(o, "required_bytes", (double)g->required) ||
        !cJSON_AddNumberToObject(o, "available_bytes", (double)g->available) ||
        !cJSON_AddStringToObject(o, "ran", ran[g->ran]) ||
        !cJSON_AddStringToObject(o, "result", g->result == 0 ? "ok" : po_err_name(g->result)))
      rc = PO_ENOMEM;
  }
  if (rc == 0 &&
      (!cJSON_AddNumberToObject(memory, "dropped_cleanups", (double)m->cleanups_ring.dropped) ||
       !cJSON_AddNumberToObject(memory, "dropped_guards", (double)m->guards_ring.dropped)))
    rc = PO_ENOMEM;
  pthread_mutex_unlock(&m->mu);
  return rc;
}

int po__memory_report_phases(po_optimizer *opt, cJSON *resources) {
  struct po_memory_state *m = state_of(opt);
  cJSON *arr = cJSON_AddArrayToObject(resources, "phases");
  if (!arr) return PO_ENOMEM;
  if (!m) return 0;
  int rc = 0;
  pthread_mutex_lock(&m->mu);
  double now = po__run_seconds();
  for (size_t i = 0; i < m->nphases && rc == 0; i++) {
    const phase *p = &m->phases[i];
    cJSON *o = cJSON_CreateObject();
    /* An open phase ends "now" in the snapshot; "open" says it is still running. */
    if (!o || !cJSON_AddItemToArray(arr, o) || !cJSON_AddStringToObject(o, "name", p->name) ||
        !cJSON_AddNumberToObject(o, "start_seconds", p->start) ||
        !cJSON_AddNumberToObject(o, "end_seconds", p->end < 0 ? now : p->end) ||
        !cJSON_AddBoolToObject(o, "open", p->end < 0))
      rc = PO_ENOMEM;
  }
  if (rc == 0 && !cJSON_AddNumberToObject(resources, "dropped_phases", (double)m->phases_dropped))
    rc = PO_ENOMEM;
  pthread_mutex_unlock(&m->mu);
  return rc;
}
