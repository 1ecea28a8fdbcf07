/* The cleanup registry and pressure listeners, the cleanup passes that run them, the records of
 * what they freed, and the memory state's lifecycle and fork handling. See monitor/memory.h. */
#include "base/atfork.h"
#include "monitor/memory.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Set while this thread runs cleanup handlers or listeners: catches reentrant calls, which would
 * otherwise deadlock on action_mu. */
static __thread int in_action;

static const char *level_name(po_cleanup_level level) {
  return level == PO_CLEANUP_AGGRESSIVE ? "aggressive" : "normal";
}

/* ---- lifecycle and fork --------------------------------------------------------------------- */

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static po__memory *live;

/* Two ranks: the action locks are the outermost in the library (user code runs under them), the
 * registry locks come after the sampler's and the GPU sessions'. */
static void prepare_actions(void) {
  pthread_mutex_lock(&live_mu);
  for (po__memory *m = live; m; m = m->next) pthread_mutex_lock(&m->action_mu);
}

static void parent_actions(void) {
  for (po__memory *m = live; m; m = m->next) pthread_mutex_unlock(&m->action_mu);
  pthread_mutex_unlock(&live_mu);
}

static void prepare_registry(void) {
  for (po__memory *m = live; m; m = m->next) pthread_mutex_lock(&m->mu);
}

static void parent_registry(void) {
  for (po__memory *m = live; m; m = m->next) pthread_mutex_unlock(&m->mu);
}

/* Only the forking thread exists in the child, and it took these locks in the prepare handlers:
 * it releases them (re-initializing a held lock would hide the release from ThreadSanitizer). */
static void child_registry(void) {
  for (po__memory *m = live; m; m = m->next) pthread_mutex_unlock(&m->mu);
}

static void child_actions(void) {
  for (po__memory *m = live; m; m = m->next) pthread_mutex_unlock(&m->action_mu);
  pthread_mutex_unlock(&live_mu);
}

__attribute__((constructor)) static void register_fork_hooks(void) {
  po__atfork_add(PO__FORK_RANK_ACTIONS, prepare_actions, parent_actions, child_actions);
  po__atfork_add(PO__FORK_RANK_MEMORY, prepare_registry, parent_registry, child_registry);
}

int po__memory_create(const po_config *cfg, po_gpu_session *gpu, po__memory **out) {
  *out = NULL;
  po__memory *m = po__calloc(1, sizeof *m);
  if (!m) return PO_ENOMEM;
  pthread_mutex_init(&m->action_mu, NULL);
  pthread_mutex_init(&m->mu, NULL);
  po__strlcpy(m->proc_root, cfg ? cfg->proc_root : "", sizeof m->proc_root);
  m->budget_bytes = cfg ? cfg->memory_limit_bytes : 0;
  m->gpu = gpu;
  m->statm = (po__statm)PO__STATM_INIT;
  m->next_id = 1;
  m->phase_cleanup_level = -1;
  pthread_mutex_lock(&live_mu);
  m->next = live;
  live = m;
  pthread_mutex_unlock(&live_mu);
  *out = m;
  return 0;
}

void po__memory_destroy(po__memory *m) {
  if (!m) return;
  pthread_mutex_lock(&live_mu);
  for (po__memory **pp = &live; *pp; pp = &(*pp)->next)
    if (*pp == m) {
      *pp = m->next;
      break;
    }
  pthread_mutex_unlock(&live_mu);
  po__statm_close(&m->statm);
  pthread_mutex_destroy(&m->mu);
  pthread_mutex_destroy(&m->action_mu);
  free(m);
}

/* ---- registry ------------------------------------------------------------------------------- */

int po__memory_register(po__memory *m, const char *name, po_resource_type type, int priority,
                        po_cleanup_level min_level, po_cleanup_fn fn, void *user, int *id_out) {
  if (!m || !fn || (int)type < 0 || (int)type >= PO_CACHE_TYPE_COUNT ||
      (min_level != PO_CLEANUP_NORMAL && min_level != PO_CLEANUP_AGGRESSIVE))
    return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->nhandlers >= PO__MAX_HANDLERS) {
    pthread_mutex_unlock(&m->mu);
    return PO_EFULL;
  }
  /* Sorted by priority; equal priorities keep registration order. */
  size_t at = m->nhandlers;
  while (at > 0 && m->handlers[at - 1].priority > priority) at--;
  memmove(&m->handlers[at + 1], &m->handlers[at], (m->nhandlers - at) * sizeof(po__handler));
  po__handler *h = &m->handlers[at];
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

_Static_assert(offsetof(po__handler, id) == 0 && offsetof(po__listener, id) == 0 &&
                   offsetof(po__checkpoint, id) == 0,
               "remove_by_id and find_entry read the id at the start of an entry");

/* Removes the entry `id` from arr (count entries of `size` bytes, each starting with an int id). */
static int remove_by_id(void *arr, size_t *count, size_t size, int id) {
  char *base = arr;
  for (size_t i = 0; i < *count; i++) {
    if (*(const int *)(const void *)(base + i * size) != id) continue;
    memmove(base + i * size, base + (i + 1) * size, (*count - i - 1) * size);
    (*count)--;
    return 1;
  }
  return 0;
}

/* Unregistering waits for a cleanup in progress on another thread (action_mu), so that the
 * handler's `user` can be freed as soon as this returns. From inside a handler, the registry is
 * edited directly; the running pass re-checks each id before calling it. */
enum { LIST_HANDLERS, LIST_LISTENERS, LIST_CHECKPOINTS };

static int remove_entry(po__memory *m, int id, int list) {
  if (!m) return PO_EINVAL;
  int locked_action = !in_action;
  if (locked_action) pthread_mutex_lock(&m->action_mu);
  pthread_mutex_lock(&m->mu);
  int found =
      list == LIST_LISTENERS ? remove_by_id(m->listeners, &m->nlisteners, sizeof(po__listener), id)
      : list == LIST_CHECKPOINTS
          ? remove_by_id(m->checkpoints, &m->ncheckpoints, sizeof(po__checkpoint), id)
          : remove_by_id(m->handlers, &m->nhandlers, sizeof(po__handler), id);
  pthread_mutex_unlock(&m->mu);
  if (locked_action) pthread_mutex_unlock(&m->action_mu);
  return found ? 0 : PO_ENOENT;
}

int po__memory_unregister(po__memory *m, int id) {
  return remove_entry(m, id, LIST_HANDLERS);
}

int po__memory_add_listener(po__memory *m, const char *name, po_pressure_fn fn, void *user,
                            int *id_out) {
  if (!m || !fn) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->nlisteners >= PO__MAX_LISTENERS) {
    pthread_mutex_unlock(&m->mu);
    return PO_EFULL;
  }
  po__listener *l = &m->listeners[m->nlisteners++];
  memset(l, 0, sizeof(*l));
  l->id = m->next_id++;
  po__strlcpy(l->name, name && *name ? name : "(unnamed)", sizeof(l->name));
  l->fn = fn;
  l->user = user;
  if (id_out) *id_out = l->id;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po__memory_remove_listener(po__memory *m, int id) {
  return remove_entry(m, id, LIST_LISTENERS);
}

int po__memory_add_checkpoint(po__memory *m, const char *name, po_checkpoint_fn fn, void *user,
                              int *id_out) {
  if (!m || !fn) return PO_EINVAL;
  pthread_mutex_lock(&m->mu);
  if (m->ncheckpoints >= PO__MAX_CHECKPOINTS) {
    pthread_mutex_unlock(&m->mu);
    return PO_EFULL;
  }
  po__checkpoint *c = &m->checkpoints[m->ncheckpoints++];
  memset(c, 0, sizeof(*c));
  c->id = m->next_id++;
  po__strlcpy(c->name, name && *name ? name : "(unnamed)", sizeof(c->name));
  c->fn = fn;
  c->user = user;
  if (id_out) *id_out = c->id;
  pthread_mutex_unlock(&m->mu);
  return 0;
}

int po__memory_remove_checkpoint(po__memory *m, int id) {
  return remove_entry(m, id, LIST_CHECKPOINTS);
}

/* ---- cleanup passes ------------------------------------------------------------------------- */

/* Ids of the entries a pass will visit, in order, taken under mu. The pass then looks each id
 * up again before calling it, so a handler may unregister itself or others while it runs. */
static size_t snapshot_ids(po__memory *m, int listeners, po_cleanup_level level, int type,
                           int all_levels, int *ids) {
  size_t n = 0;
  pthread_mutex_lock(&m->mu);
  if (listeners) {
    for (size_t i = 0; i < m->nlisteners; i++) ids[n++] = m->listeners[i].id;
  } else {
    for (size_t i = 0; i < m->nhandlers; i++) {
      const po__handler *h = &m->handlers[i];
      if (!all_levels && h->min_level > level) continue;
      if (type != PO_RESOURCE_ALL && (int)h->type != type) continue;
      ids[n++] = h->id;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return n;
}

/* Copies the entry `id` (arr of count entries of `size` bytes, int id first) under mu. */
static int find_entry(po__memory *m, const void *arr, const size_t *count, size_t size, int id,
                      void *out) {
  int found = 0;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < *count && !found; i++) {
    const char *e = (const char *)arr + i * size;
    if (*(const int *)(const void *)e == id) {
      memcpy(out, e, size);
      found = 1;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return found;
}

static void record_cleanup(po__memory *m, po_cleanup_level level, int type, const char *name,
                           int64_t freed) {
  pthread_mutex_lock(&m->mu);
  po__cleanup_record *r = &m->cleanups[po__ring_push(&m->cleanups_ring, PO__MAX_CLEANUP_RECORDS)];
  r->t_seconds = po__run_seconds();
  r->level = level;
  r->type = type;
  po__strlcpy(r->handler, name, sizeof(r->handler));
  r->freed_bytes = freed;
  pthread_mutex_unlock(&m->mu);
}

static int64_t freed_between(int64_t before, int64_t after) {
  return before >= 0 && after >= 0 && before > after ? before - after : 0;
}

/* One pass's running state: the RSS after the last step (one statm read per step, each step's
 * "before" being the previous step's "after"). */
typedef struct pass {
  po__memory *m;
  po_cleanup_level level;
  int64_t rss;
  int64_t sum_freed;
  int ran_any;
  po__actions *acts;
  po_cleanup_result res;
} pass;

/* Runs handlers without trimming: a handler's freed bytes are what RSS shows right after it (the
 * allocator may keep small freed blocks until the pass's one malloc_trim, recorded on its own). */
static void run_handlers(pass *p, int type, int all_levels) {
  int ids[PO__MAX_HANDLERS];
  size_t n = snapshot_ids(p->m, 0, p->level, type, all_levels, ids);
  for (size_t k = 0; k < n; k++) {
    po__handler h;
    if (!find_entry(p->m, p->m->handlers, &p->m->nhandlers, sizeof h, ids[k], &h)) continue;
    h.fn(p->level, h.user);
    int64_t after = po__statm_rss_bytes(&p->m->statm);
    int64_t freed = freed_between(p->rss, after);
    p->rss = after;
    record_cleanup(p->m, p->level, (int)h.type, h.name, freed);
    po__actions_add(p->acts, "cleanup:%s:%s", level_name(p->level), h.name);
    p->res.handlers_run++;
    p->sum_freed += freed;
    p->ran_any = 1;
  }
}

/* CPU and disk firings only notify (notify_only): no RSS difference, which would credit the
 * listener with whatever other threads freed meanwhile. */
static void run_listeners(pass *p, const po_pressure_event *ev, int notify_only) {
  int ids[PO__MAX_LISTENERS];
  size_t n = snapshot_ids(p->m, 1, p->level, PO_RESOURCE_ALL, 0, ids);
  for (size_t k = 0; k < n; k++) {
    po__listener l;
    if (!find_entry(p->m, p->m->listeners, &p->m->nlisteners, sizeof l, ids[k], &l)) continue;
    int64_t reported = l.fn(ev, l.user);
    int64_t freed = reported > 0 ? reported : 0;
    if (!notify_only) {
      int64_t after = po__statm_rss_bytes(&p->m->statm);
      int64_t measured = freed_between(p->rss, after);
      p->rss = after;
      /* A cache knows what it released even when the allocator keeps the pages. */
      if (measured > freed) freed = measured;
    }
    if (!notify_only || freed > 0)
      record_cleanup(p->m, p->level, PO__RESOURCE_LISTENER, l.name, freed);
    po__actions_add(p->acts, "listener:%s", l.name);
    p->sum_freed += freed;
    p->ran_any = 1;
  }
}

#ifdef PERFOPT_TESTING
static _Atomic uint64_t trims;
uint64_t po__memory_test_trims(void) {
  return trims;
}
#endif

/* One malloc_trim for the whole pass: it returns freed arena memory to the system. */
static void trim(pass *p) {
  malloc_trim(0);
#ifdef PERFOPT_TESTING
  trims++;
#endif
  int64_t after = po__statm_rss_bytes(&p->m->statm);
  int64_t freed = freed_between(p->rss, after);
  p->rss = after;
  if (freed > 0) record_cleanup(p->m, p->level, PO__RESOURCE_ALLOCATOR, "malloc_trim", freed);
  p->sum_freed += freed;
}

int po__memory_cleanup(po__memory *m, po_cleanup_level level, int type, int all_levels,
                       const po_pressure_event *ev, po_cleanup_result *out, po__actions *acts) {
  if (!m || (level != PO_CLEANUP_NORMAL && level != PO_CLEANUP_AGGRESSIVE)) return PO_EINVAL;
  if (in_action) return PO_EBUSY;
  pthread_mutex_lock(&m->action_mu);
  in_action = 1;
  int notify_only = type == PO__RESOURCE_NONE;
  pass p = {m, level, notify_only ? -1 : po__statm_rss_bytes(&m->statm), 0, 0, acts, {0}};
  p.res.rss_before_bytes = p.rss;
  if (!notify_only) run_handlers(&p, type, all_levels);
  if (ev) run_listeners(&p, ev, notify_only);
  if (!notify_only) trim(&p);
  p.res.rss_after_bytes = p.rss;
  /* Whole-pass RSS drop, or the sum of what each step released when that is larger (RSS can
   * rise meanwhile on other threads, and listeners may report bytes the allocator keeps). */
  p.res.freed_bytes = freed_between(p.res.rss_before_bytes, p.res.rss_after_bytes);
  if (p.sum_freed > p.res.freed_bytes) p.res.freed_bytes = p.sum_freed;
  in_action = 0;
  pthread_mutex_unlock(&m->action_mu);
  if (out) *out = p.res;
  return 0;
}

int po__memory_checkpoint(po__memory *m, const po_pressure_event *ev, po__actions *acts) {
  if (!m || !ev) return PO_EINVAL;
  if (in_action) return PO_EBUSY;
  pthread_mutex_lock(&m->action_mu);
  in_action = 1;
  int ids[PO__MAX_CHECKPOINTS];
  size_t n = 0;
  pthread_mutex_lock(&m->mu);
  for (size_t i = 0; i < m->ncheckpoints; i++) ids[n++] = m->checkpoints[i].id;
  pthread_mutex_unlock(&m->mu);
  int ran = 0;
  for (size_t k = 0; k < n; k++) {
    po__checkpoint c;
    if (!find_entry(m, m->checkpoints, &m->ncheckpoints, sizeof c, ids[k], &c)) continue;
    c.fn(ev, c.user);
    record_cleanup(m, ev->level, PO__RESOURCE_CHECKPOINT, c.name, 0);
    po__actions_add(acts, "checkpoint:%s", c.name);
    ran++;
  }
  in_action = 0;
  pthread_mutex_unlock(&m->action_mu);
  return ran;
}

/* ---- snapshot ------------------------------------------------------------------------------- */

int po__memory_snapshot_create(po__memory *m, po__memory_snapshot **out) {
  *out = NULL;
  po__memory_snapshot *s = po__malloc(sizeof *s);
  if (!s) return PO_ENOMEM;
  pthread_mutex_lock(&m->mu);
  s->ncleanups = m->cleanups_ring.len;
  s->cleanups_dropped = m->cleanups_ring.dropped;
  for (size_t i = 0; i < s->ncleanups; i++)
    s->cleanups[i] = m->cleanups[po__ring_at(&m->cleanups_ring, i, PO__MAX_CLEANUP_RECORDS)];
  s->nguards = m->guards_ring.len;
  s->guards_dropped = m->guards_ring.dropped;
  for (size_t i = 0; i < s->nguards; i++)
    s->guards[i] = m->guards[po__ring_at(&m->guards_ring, i, PO__MAX_GUARD_RECORDS)];
  s->nprobes = m->probes_ring.len;
  s->probes_dropped = m->probes_ring.dropped;
  for (size_t i = 0; i < s->nprobes; i++)
    s->probes[i] = m->probes[po__ring_at(&m->probes_ring, i, PO__MAX_PROBE_RECORDS)];
  s->nphases = m->nphases;
  s->phases_dropped = m->phases_dropped;
  s->now_seconds = po__run_seconds();
  memcpy(s->phases, m->phases, m->nphases * sizeof *s->phases);
  pthread_mutex_unlock(&m->mu);
  *out = s;
  return 0;
}

void po__memory_snapshot_destroy(po__memory_snapshot *snap) {
  free(snap);
}
