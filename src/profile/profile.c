/* profile: zones recorded into per-thread calling-context trees.
 *
 * Each thread owns a tree of nodes (one per distinct call path) and a table of per-site records
 * (min, max, sum of squares, histogram) indexed by site id. The hot path (po_zone_begin /
 * po_zone_end once a path has been seen) touches only the calling thread's memory: no lock, no
 * allocation, no system call, no shared cache line. Counters are relaxed atomics written with a
 * plain load and store (never a locked read-modify-write), so a report can read them from another
 * thread while the owner keeps running.
 *
 * Structure changes (a new node, a new site slot) are the cold path: the owner takes its own
 * thread lock, which a report takes too while it merges. When a thread exits, its tree is merged
 * into a process-wide "retired" tree and freed, so memory stays bounded however many threads
 * come and go, and the thread's data outlives it.
 */
#include "profile/profile.h"

#include "base/atfork.h"
#include "base/clock.h"
#include "base/histogram.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_DEPTH 256
#define MAX_SITES (1u << 20)
#define MAX_NAME 255
#define NODES_PER_CHUNK 102 /* a chunk is 4 KiB */

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define BUMP(x, d) ST(x, LD(x) + (d))

typedef struct po__node po__node;

typedef struct po__sitestat {
  _Atomic uint64_t min, max;
  /* Sum of squared durations as a 128-bit integer: an integer multiply-add has a much shorter
   * dependency chain than int-to-double, multiply and add, and the chain is on the hot path. */
  _Atomic uint64_t sumsq_lo, sumsq_hi;
  po__node *last_node; /* lookup cache: the node last used under last_parent (owner only) */
  po__node *last_parent;
  _Atomic uint32_t hist[]; /* PO__HIST_BUCKETS, in the same allocation: no pointer to chase */
} po__sitestat;
_Static_assert(sizeof(po__sitestat) <= 64,
               "a (thread, site) record is 64 bytes plus its histogram");

struct po__node {
  _Atomic uint64_t calls, total; /* total: inclusive ticks; self is derived from the children */
  po__node *_Atomic first_child;
  po__node *next_sibling;
  uint32_t site;
  uint32_t flags; /* NODE_OPEN_AT_EXIT */
};
_Static_assert(sizeof(po__node) <= 40, "a call-tree node is 40 bytes");
#define NODE_OPEN_AT_EXIT 1u
#define END_SKIP_MASK 0xffffffffull
#define END_RING (1ull << 32)

typedef struct po__frame {
  po__node *n;
  po__sitestat *ss; /* the site's record, so the end path does not look it up again */
  uint64_t start;
} po__frame;

typedef struct po__event { /* fields are relaxed atomics: a report may read a slot being rewritten
                            */
  _Atomic uint64_t start;
  _Atomic uint64_t dur;
  _Atomic uint32_t site;
  _Atomic uint32_t depth;
} po__event;

typedef struct po__chunk {
  struct po__chunk *next;
  uint32_t used;
  po__node nodes[NODES_PER_CHUNK];
} po__chunk;

typedef struct po__tstate {
  /* hot: the owner's stack */
  po__frame *top;
  po__frame *limit;
  /* What po_zone_end must check, in one word so the common case costs one load and one branch:
   * the low 32 bits count begins that pushed nothing (disabled, overflow) whose ends are eaten;
   * END_RING is set once the thread has a timeline ring. Other threads set END_RING, so the
   * owner changes the count with atomic read-modify-writes (cold paths only). */
  _Atomic uint64_t end_flags;
  uint32_t sites_cap;
  po__sitestat **sites;
  po__event *_Atomic ring; /* set once (NULL -> ring) by whoever enables the timeline */
  uint64_t ring_mask;      /* capacity - 1 (a power of two) */
  _Atomic uint64_t ring_w; /* events ever written; slot = ring_w & ring_mask (overwrites oldest) */
  uint64_t ring_base;      /* ring_w at the last reset (reader side only, under lock) */
  _Atomic uint64_t dropped;
  /* cold */
  po__frame *stack;
  po__node root;
  po__chunk *chunks;
  pthread_mutex_t lock;
  struct po__tstate *next;
  long tid;
  char name[32];
} po__tstate;

/* Adds one call of d ticks to the frame's node and site record. */
__attribute__((always_inline)) static inline void record_call(po__frame *f, uint64_t d) {
  po__node *n = f->n;
  po__sitestat *ss = f->ss;
  /* Probe-cost compensation happens at report time, from the call tree: nothing here. */
  BUMP(n->calls, 1);
  BUMP(n->total, d);
  if (d < LD(ss->min)) ST(ss->min, d);
  if (d > LD(ss->max)) ST(ss->max, d);
  unsigned __int128 sq = (unsigned __int128)d * d;
  uint64_t lo = LD(ss->sumsq_lo), add_lo = (uint64_t)sq;
  ST(ss->sumsq_lo, lo + add_lo);
  ST(ss->sumsq_hi, LD(ss->sumsq_hi) + (uint64_t)(sq >> 64) + (lo + add_lo < lo));
  BUMP(ss->hist[po__hist_bucket(d)], 1);
}

/* ---- process-wide state ---------------------------------------------------------------- */

typedef struct {
  const char *name; /* borrowed from the site, or owned_name */
  char *owned_name;
  const char *file;
  int line;
  void *addr;
  int resolved;
} po__siteinfo;

typedef struct {
  long tid;
  char name[32];
  uint64_t calls, total_ticks;
} po__retired_summary;
#define MAX_RETIRED_SUMMARIES 1024

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static po__siteinfo *reg;
static uint32_t reg_len = 1, reg_cap; /* id 0 is the root */
static po__symbolizer_fn symbolizer;

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static po__tstate *threads;
static po__tstate *retired; /* merged data of exited threads (no stack) */
static po__retired_summary retired_summaries[MAX_RETIRED_SUMMARIES];
static uint32_t retired_summary_len;
static uint64_t retired_summary_dropped;

static pthread_key_t tls_key;
/* The calling thread's state lives in TLS itself (one pointer fewer to chase on the hot path);
 * it is attached (stack != NULL) on first use and released by the thread-exit destructor. */
static __thread po__tstate tls_state __attribute__((tls_model("initial-exec")));
static __thread int tls_private; /* calibrating: never listed, never merged */

PO_API int po__profiling_enabled = 1;
static int timeline_on;
static uint32_t timeline_cap = 65536;
static uint64_t origin_ticks; /* timeline and wall-time origin (first use or reset) */

/* Probe-cost calibration, one per kind of zone: manual zones (po_zone_begin, the macros,
 * po_profile_call) and auto-instrumentation (registered by libperfopt-auto). Pending kinds are
 * measured once, lazily: at the first zone of a thread that has no state yet, on that thread
 * (see tstate_attach), or failing that when a report is built. Guarded by calib_lock. */
enum { PROBE_MANUAL, PROBE_AUTO, PROBE_KINDS };
typedef struct {
  void (*begin)(void *);
  void (*end)(void *);
  void *arg;
  int registered, done;
  double bias, full; /* ticks */
} probe_kind;
static probe_kind probes[PROBE_KINDS] = {{.registered = 1}};
static _Atomic int calib_pending = 1; /* a registered kind is not measured yet */
static void calibrate_pending(void);

static struct {
  _Atomic uint64_t truncated_names, null_names, unmatched_ends, open_at_exit, depth_overflows,
      site_overflows;
} counters;

/* ---- site registry ---------------------------------------------------------------------- */

static uint32_t reg_add_locked(const char *name, const char *file, int line, void *addr) {
  if (reg_len >= MAX_SITES) {
    atomic_fetch_add(&counters.site_overflows, 1);
    return 0;
  }
  if (reg_len >= reg_cap) {
    uint32_t ncap = reg_cap ? reg_cap * 2 : 256;
    po__siteinfo *n = realloc(reg, ncap * sizeof *n);
    if (!n) return 0;
    if (!reg_cap) memset(&n[0], 0, sizeof n[0]); /* slot 0: the root */
    reg = n;
    reg_cap = ncap;
  }
  po__siteinfo *si = &reg[reg_len];
  memset(si, 0, sizeof *si);
  si->file = file ? file : "";
  si->line = line;
  si->addr = addr;
  if (addr) {
    si->name = NULL; /* resolved at report time */
  } else if (!name || !*name) {
    atomic_fetch_add(&counters.null_names, 1);
    si->name = "(null)";
    si->resolved = 1;
  } else {
    size_t len = strnlen(name, MAX_NAME + 1);
    if (len > MAX_NAME) {
      atomic_fetch_add(&counters.truncated_names, 1);
      si->owned_name = strndup(name, MAX_NAME);
      si->name = si->owned_name ? si->owned_name : "(truncated)";
    } else {
      si->name = name;
    }
    si->resolved = 1;
  }
  return reg_len++;
}

uint32_t po__site_register(po_site *site) {
  uint32_t id = __atomic_load_n(&site->id, __ATOMIC_ACQUIRE);
  if (id) return id;
  pthread_mutex_lock(&reg_lock);
  id = __atomic_load_n(&site->id, __ATOMIC_ACQUIRE);
  if (!id) {
    id = reg_add_locked(site->name, site->file, site->line, NULL);
    if (id) __atomic_store_n(&site->id, id, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&reg_lock);
  return id;
}

/* Address and name lookups: a small open-addressing index over the registry. */
static uint32_t *idx_slots;
static uint32_t idx_cap;

static uint64_t hash_addr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* Names are keyed by their first MAX_NAME bytes, the part a site keeps: a longer name maps to the
 * site of its truncation. */
static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < MAX_NAME && s[i]; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

static int name_matches(const char *site_name, const char *name) {
  return strncmp(site_name, name, MAX_NAME) == 0;
}

static int idx_match(uint32_t id, const void *addr, const char *name) {
  const po__siteinfo *si = &reg[id];
  if (addr) return si->addr == addr;
  return !si->addr && si->owned_name && name_matches(si->owned_name, name);
}

static int idx_grow_locked(void) {
  uint32_t ncap = idx_cap ? idx_cap * 2 : 1024;
  uint32_t *n = calloc(ncap, sizeof *n);
  if (!n) return -1;
  for (uint32_t i = 0; i < idx_cap; i++) {
    uint32_t id = idx_slots[i];
    if (!id) continue;
    const char *nm = reg[id].owned_name ? reg[id].owned_name : "";
    uint64_t h = reg[id].addr ? hash_addr(reg[id].addr) : hash_str(nm);
    uint32_t j = (uint32_t)h & (ncap - 1);
    while (n[j]) j = (j + 1) & (ncap - 1);
    n[j] = id;
  }
  free(idx_slots);
  idx_slots = n;
  idx_cap = ncap;
  return 0;
}

/* Finds or adds a site keyed by address or by dynamic name. */
static uint32_t site_lookup(void *addr, const char *name) {
  if (!addr && !name) return 0;
  pthread_mutex_lock(&reg_lock);
  uint32_t id = 0;
  if ((reg_len + 1) * 2 > idx_cap && idx_grow_locked() != 0) goto out;
  uint64_t h = addr ? hash_addr(addr) : hash_str(name);
  uint32_t j = (uint32_t)h & (idx_cap - 1);
  while (idx_slots[j]) {
    if (idx_match(idx_slots[j], addr, name)) {
      id = idx_slots[j];
      goto out;
    }
    j = (j + 1) & (idx_cap - 1);
  }
  if (addr) {
    id = reg_add_locked(NULL, NULL, 0, addr);
  } else {
    /* Dynamic names are always owned so the index can compare them. */
    size_t len = strnlen(name, MAX_NAME + 1);
    if (len > MAX_NAME) atomic_fetch_add(&counters.truncated_names, 1);
    char *copy = strndup(name, MAX_NAME);
    if (!copy) goto out;
    id = reg_add_locked(copy, NULL, 0, NULL);
    if (id) {
      reg[id].owned_name = copy;
      reg[id].name = copy;
    } else {
      free(copy);
    }
  }
  if (id) idx_slots[j] = id;
out:
  pthread_mutex_unlock(&reg_lock);
  return id;
}

uint32_t po__site_for_addr(void *addr) {
  return site_lookup(addr, NULL);
}

uint32_t po__site_for_name(const char *name) {
  if (!name || !*name) {
    static po_site null_site = PO_SITE_INIT(NULL, "", 0);
    return po__site_register(&null_site);
  }
  return site_lookup(NULL, name);
}

void po__set_symbolizer(po__symbolizer_fn fn) {
  pthread_mutex_lock(&reg_lock);
  symbolizer = fn;
  pthread_mutex_unlock(&reg_lock);
}

/* Name, file, line of a site; resolves address sites on first use. */
static void site_describe(uint32_t id, const char **name, const char **file, int *line) {
  pthread_mutex_lock(&reg_lock);
  po__siteinfo *si = &reg[id];
  if (!si->resolved) {
    si->resolved = 1;
    const char *n = NULL, *f = NULL;
    int l = 0;
    if (symbolizer && symbolizer(si->addr, &n, &f, &l) == 0 && n) {
      si->name = n;
      si->file = f ? f : "";
      si->line = l;
    } else {
      char buf[32];
      snprintf(buf, sizeof buf, "%p", si->addr);
      si->owned_name = strdup(buf);
      si->name = si->owned_name ? si->owned_name : "(unknown)";
    }
  }
  *name = si->name;
  *file = si->file;
  *line = si->line;
  pthread_mutex_unlock(&reg_lock);
}

/* ---- per-thread state ------------------------------------------------------------------- */

static po__tstate *tstate_new(int with_stack);
static void tstate_free(po__tstate *ts);
static void merge_tree(po__tstate *dst, po__tstate *src);

static void tstate_release(po__tstate *ts);
static uint64_t ring_dropped(po__tstate *ts);

static void thread_exit(void *arg) {
  po__tstate *ts = arg;
  /* Close zones still open: they count up to now and are flagged. */
  uint64_t now = po__ticks();
  pthread_mutex_lock(&ts->lock);
  while (ts->top > ts->stack) {
    po__frame *f = ts->top;
    record_call(f, now - f->start); /* the site record too: min, max, percentiles */
    f->n->flags |= NODE_OPEN_AT_EXIT;
    atomic_fetch_add(&counters.open_at_exit, 1);
    ts->top = f - 1;
  }
  pthread_mutex_unlock(&ts->lock);
  pthread_mutex_lock(&threads_lock);
  for (po__tstate **p = &threads; *p; p = &(*p)->next) {
    if (*p == ts) {
      *p = ts->next;
      break;
    }
  }
  if (!retired) retired = tstate_new(0);
  if (retired) {
    pthread_mutex_lock(&ts->lock);
    BUMP(ts->dropped, ring_dropped(ts));
    merge_tree(retired, ts);
    pthread_mutex_unlock(&ts->lock);
    /* The per-thread summary survives too (bounded; beyond the bound only counted). */
    if (retired_summary_len < MAX_RETIRED_SUMMARIES) {
      po__retired_summary *s = &retired_summaries[retired_summary_len++];
      s->tid = ts->tid;
      memcpy(s->name, ts->name, sizeof s->name);
      s->calls = 0;
      s->total_ticks = 0;
      for (po__node *c = atomic_load(&ts->root.first_child); c; c = c->next_sibling) {
        s->total_ticks += LD(c->total);
      }
      for (po__chunk *ch = ts->chunks; ch; ch = ch->next)
        for (uint32_t i = 0; i < ch->used; i++) s->calls += LD(ch->nodes[i].calls);
    } else {
      retired_summary_dropped++;
    }
  }
  pthread_mutex_unlock(&threads_lock);
  tstate_release(ts);
}

/* fork: the child has only the forking thread. The others' states are kept (their data was
 * recorded before the fork) but folded into the retired tree so they are released like exited
 * threads. Every profiler lock is taken around fork, outermost first (calibration, the thread
 * list, each live thread's own lock, the site registry), so the child never inherits a lock held
 * by a thread that no longer exists, nor a tree or table caught half-changed. */
static pthread_mutex_t calib_lock = PTHREAD_MUTEX_INITIALIZER;

static void fork_prepare(void) {
  /* Calibrated now, the tick ratio never waits for its lock again (which the child may inherit
   * held): a child's reports must not depend on it. */
  po__ns_per_tick();
  pthread_mutex_lock(&calib_lock);
  pthread_mutex_lock(&threads_lock);
  for (po__tstate *ts = threads; ts; ts = ts->next) pthread_mutex_lock(&ts->lock);
  pthread_mutex_lock(&reg_lock);
}

static void fork_parent(void) {
  pthread_mutex_unlock(&reg_lock);
  for (po__tstate *ts = threads; ts; ts = ts->next) pthread_mutex_unlock(&ts->lock);
  pthread_mutex_unlock(&threads_lock);
  pthread_mutex_unlock(&calib_lock);
}

static int forget_on_fork; /* po__profile_forget_on_fork */
static void reset_locked(int lock_threads);

void po__profile_forget_on_fork(int on) {
  forget_on_fork = on;
}

static void fork_child(void) {
  /* The forking thread took every one of these locks in fork_prepare and is the child's only
   * thread, so it releases them (an init over a held lock would hide the release from
   * ThreadSanitizer, which then sees the child hold them forever). */
  pthread_mutex_unlock(&reg_lock);
  for (po__tstate *ts = threads; ts; ts = ts->next) pthread_mutex_unlock(&ts->lock);
  po__tstate *self = tls_state.stack ? &tls_state : NULL;
  po__tstate *others = threads;
  threads = self;
  if (self) {
    for (po__tstate **p = &others; *p; p = &(*p)->next) {
      if (*p == self) {
        *p = self->next;
        break;
      }
    }
    self->next = NULL;
  }
  if (others && !retired) retired = tstate_new(0);
  for (po__tstate *ts = others, *next; ts; ts = next) {
    next = ts->next;
    if (retired) {
      BUMP(ts->dropped, ring_dropped(ts));
      merge_tree(retired, ts);
    }
    /* The state lives in the dead thread's TLS block, which this process also inherited and
     * never frees; releasing what it owns is all that can be done. */
    tstate_release(ts);
  }
  if (forget_on_fork) reset_locked(0); /* the parent's data is the parent's report */
  pthread_mutex_unlock(&threads_lock);
  pthread_mutex_unlock(&calib_lock);
}

static int tls_key_ok;

/* Before main and before any profiler lock can be held: the fork handlers (in the library's
 * ordered registry) and the key whose destructor merges an exiting thread's data. */
__attribute__((constructor)) static void profile_init(void) {
  tls_key_ok = pthread_key_create(&tls_key, thread_exit) == 0;
  if (po__atfork_add(PO__FORK_RANK_PROFILE, fork_prepare, fork_parent, fork_child) != 0)
    po__log(0, "profiler: no room for fork handlers; a forked child may deadlock");
}

/* Initializes a zeroed state in place. Returns 0, or -1 when the stack cannot be allocated. */
static int tstate_init(po__tstate *ts, int with_stack) {
  if (with_stack) {
    ts->stack = calloc(MAX_DEPTH, sizeof *ts->stack);
    if (!ts->stack) return -1;
    ts->top = ts->stack;
    ts->limit = ts->stack + MAX_DEPTH - 1;
    ts->stack[0].n = &ts->root;
  }
  ts->root.site = 0;
  pthread_mutex_init(&ts->lock, NULL);
  return 0;
}

static po__tstate *tstate_new(int with_stack) {
  po__tstate *ts = calloc(1, sizeof *ts);
  if (ts && tstate_init(ts, with_stack) != 0) {
    free(ts);
    ts = NULL;
  }
  return ts;
}

/* Frees what a state owns and leaves it zeroed (detached), without freeing the state itself. */
static void tstate_release(po__tstate *ts) {
  for (uint32_t i = 0; i < ts->sites_cap; i++) {
    free(ts->sites[i]);
  }
  free(ts->sites);
  for (po__chunk *c = ts->chunks, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(atomic_load(&ts->ring));
  free(ts->stack);
  pthread_mutex_destroy(&ts->lock);
  memset(ts, 0, sizeof *ts);
}

static void tstate_free(po__tstate *ts) {
  tstate_release(ts);
  free(ts);
}

/* Gives a thread its timeline ring. The capacity is written before the pointer is published;
 * the owner reads the pointer with acquire semantics. Caller holds threads_lock. */
static void ring_alloc(po__tstate *ts) {
  if (atomic_load(&ts->ring)) return;
  po__event *r = malloc((size_t)timeline_cap * sizeof *r);
  if (!r) return;
  /* Touch every page now: a page fault on the hot path would cost more than the event. */
  memset(r, 0, (size_t)timeline_cap * sizeof *r);
  ts->ring_mask = timeline_cap - 1;
  atomic_store_explicit(&ts->ring, r, memory_order_release);
  atomic_fetch_or(&ts->end_flags, END_RING);
}

static po__tstate *tstate_attach(void) {
  po__tstate *ts = &tls_state;
  if (tls_private) return tstate_init(ts, 1) == 0 ? ts : NULL; /* calibration: never listed */
  if (!tls_key_ok) return NULL; /* its data could not be merged at exit */
  /* The first zone of the process (while this thread has no state yet) measures the probe. */
  if (PO__UNLIKELY(atomic_load_explicit(&calib_pending, memory_order_acquire))) calibrate_pending();
  if (tstate_init(ts, 1) != 0) return NULL;
  ts->tid = syscall(SYS_gettid);
  pthread_setspecific(tls_key, ts);
  pthread_mutex_lock(&threads_lock);
  if (!origin_ticks) origin_ticks = po__ticks();
  if (timeline_on) ring_alloc(ts);
  ts->next = threads;
  threads = ts;
  pthread_mutex_unlock(&threads_lock);
  return ts;
}

/* Cold path: the site's slot in this thread's table. Takes the owner's lock. */
static po__sitestat *sitestat_slow(po__tstate *ts, uint32_t id) {
  pthread_mutex_lock(&ts->lock);
  po__sitestat *ss = NULL;
  if (id >= ts->sites_cap) {
    uint32_t ncap = ts->sites_cap ? ts->sites_cap : 64;
    while (ncap <= id) ncap *= 2;
    po__sitestat **n = realloc(ts->sites, ncap * sizeof *n);
    if (!n) goto out;
    memset(n + ts->sites_cap, 0, (ncap - ts->sites_cap) * sizeof *n);
    ts->sites = n;
    ts->sites_cap = ncap;
  }
  ss = ts->sites[id];
  if (!ss) {
    ss = calloc(1, sizeof *ss + PO__HIST_BUCKETS * sizeof ss->hist[0]);
    if (!ss) goto out;
    ST(ss->min, UINT64_MAX);
    ts->sites[id] = ss;
  }
out:
  pthread_mutex_unlock(&ts->lock);
  return ss;
}

/* Cold path: the child of `parent` for site `id`, created if needed. Caller holds ts->lock. */
static po__node *child_locked(po__tstate *ts, po__node *parent, uint32_t id) {
  for (po__node *c = atomic_load_explicit(&parent->first_child, memory_order_relaxed); c;
       c = c->next_sibling)
    if (c->site == id) return c;
  if (!ts->chunks || ts->chunks->used == NODES_PER_CHUNK) {
    po__chunk *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->next = ts->chunks;
    ts->chunks = ch;
  }
  po__node *n = &ts->chunks->nodes[ts->chunks->used++];
  n->site = id;
  n->next_sibling = atomic_load_explicit(&parent->first_child, memory_order_relaxed);
  atomic_store_explicit(&parent->first_child, n, memory_order_release);
  return n;
}

static po__node *node_slow(po__tstate *ts, po__node *parent, uint32_t id, po__sitestat *ss) {
  pthread_mutex_lock(&ts->lock);
  po__node *n = child_locked(ts, parent, id);
  pthread_mutex_unlock(&ts->lock);
  if (n) {
    ss->last_parent = parent;
    ss->last_node = n;
  }
  return n;
}

/* ---- the hot path ------------------------------------------------------------------------ */

__attribute__((noinline)) static void begin_slow(po__tstate *ts, uint32_t id);

static inline void zone_begin(po__tstate *ts, uint32_t id) {
  po__sitestat *ss;
  if (PO__UNLIKELY(id >= ts->sites_cap || !(ss = ts->sites[id]) || ts->top == ts->limit ||
                   ss->last_parent != ts->top->n)) {
    begin_slow(ts, id);
    return;
  }
  po__frame *f = ++ts->top;
  f->ss = ss;
  /* Two 8-byte stores, not one: GCC otherwise merges them into a 16-byte vector store (movq,
   * punpcklqdq, movups) whose halves the end path loads back as 8-byte words. Kept apart, the
   * zone pair went from 1.24 to 1.19 x the rdtsc pair (bench_profile A/B, medians of 7 runs). */
  __asm__("" ::: "memory");
  f->n = ss->last_node;
  f->start = po__ticks();
}

static void begin_slow(po__tstate *ts, uint32_t id) {
  if (PO__UNLIKELY(!ts->stack) && !tstate_attach()) return;
  if (ts->top == ts->limit || id == 0) {
    if (id) atomic_fetch_add(&counters.depth_overflows, 1);
    atomic_fetch_add(&ts->end_flags, 1);
    return;
  }
  po__sitestat *ss = id < ts->sites_cap ? ts->sites[id] : NULL;
  if (!ss && !(ss = sitestat_slow(ts, id))) {
    atomic_fetch_add(&ts->end_flags, 1);
    return;
  }
  po__node *n = ss->last_parent == ts->top->n ? ss->last_node : node_slow(ts, ts->top->n, id, ss);
  if (!n) {
    atomic_fetch_add(&ts->end_flags, 1);
    return;
  }
  po__frame *f = ++ts->top;
  f->n = n;
  f->ss = ss;
  f->start = po__ticks();
}

void po__zone_begin_id(uint32_t id) {
  po__tstate *ts = &tls_state;
  if (PO__UNLIKELY(!ts->stack) && !tstate_attach()) return;
  if (PO__UNLIKELY(!__atomic_load_n(&po__profiling_enabled, __ATOMIC_RELAXED))) {
    atomic_fetch_add(&ts->end_flags, 1);
    return;
  }
  zone_begin(ts, id);
}

void po__zone_begin_on(po_site *site) {
  /* A detached thread state has sites_cap 0, so zone_begin's slow path attaches it. */
  po__tstate *ts = &tls_state;
  uint32_t id = __atomic_load_n(&site->id, __ATOMIC_RELAXED);
  if (PO__UNLIKELY(!id)) id = po__site_register(site);
  zone_begin(ts, id);
}

void po_zone_begin(po_site *site) {
  po__tstate *ts = &tls_state;
  if (PO__UNLIKELY(!ts->stack) && !tstate_attach()) return;
  if (PO__UNLIKELY(!__atomic_load_n(&po__profiling_enabled, __ATOMIC_RELAXED))) {
    atomic_fetch_add(&ts->end_flags, 1);
    return;
  }
  uint32_t id = __atomic_load_n(&site->id, __ATOMIC_RELAXED);
  if (PO__UNLIKELY(!id)) id = po__site_register(site);
  zone_begin(ts, id);
}

static inline void record_event(po__tstate *ts, po__event *ring, po__frame *f, uint64_t d) {
  if (!__atomic_load_n(&timeline_on, __ATOMIC_RELAXED)) return;
  uint64_t w = LD(ts->ring_w);
  po__event *e = &ring[w & ts->ring_mask];
  ST(e->start, f->start);
  ST(e->dur, d);
  ST(e->site, f->n->site);
  ST(e->depth, (uint32_t)(f - ts->stack));
  atomic_store_explicit(&ts->ring_w, w + 1, memory_order_release);
}

/* The end of a zone when the flag word is not zero: a skipped begin, or the timeline. */
__attribute__((noinline)) static void end_flagged(po__tstate *ts, uint64_t flags, uint64_t now) {
  if (flags & END_SKIP_MASK) {
    atomic_fetch_sub(&ts->end_flags, 1);
    return;
  }
  po__frame *f = ts->top;
  if (f == ts->stack) {
    atomic_fetch_add(&counters.unmatched_ends, 1);
    return;
  }
  uint64_t d = now - f->start;
  record_call(f, d);
  record_event(ts, atomic_load_explicit(&ts->ring, memory_order_acquire), f, d);
  ts->top = f - 1;
}

void po_zone_end(void) {
  uint64_t now = po__ticks();
  /* A detached thread state has top == stack == NULL: the end is counted as unmatched. */
  po__tstate *ts = &tls_state;
  uint64_t flags = LD(ts->end_flags);
  if (PO__UNLIKELY(flags)) {
    end_flagged(ts, flags, now);
    return;
  }
  po__frame *f = ts->top;
  if (PO__UNLIKELY(f == ts->stack)) {
    atomic_fetch_add(&counters.unmatched_ends, 1);
    return;
  }
  record_call(f, now - f->start);
  ts->top = f - 1;
}

/* ---- switches ------------------------------------------------------------------------------ */

void po_profile_set_enabled(int on) {
  __atomic_store_n(&po__profiling_enabled, on ? 1 : 0, __ATOMIC_RELAXED);
}
int po_profile_enabled(void) {
  return __atomic_load_n(&po__profiling_enabled, __ATOMIC_RELAXED);
}

int po_profile_set_timeline(int on, size_t events_per_thread) {
  if (on && (events_per_thread < 16 || events_per_thread > (1u << 26))) return PO_ERANGE;
  pthread_mutex_lock(&threads_lock);
  __atomic_store_n(&timeline_on, on ? 1 : 0, __ATOMIC_RELAXED);
  if (on) {
    uint32_t cap = 16;
    while (cap < events_per_thread) cap *= 2; /* a power of two: slot = count & mask */
    timeline_cap = cap;
  }
  /* Threads already running get their ring now (kept until they exit; capacity is fixed once a
   * ring exists). */
  for (po__tstate *ts = threads; ts && on; ts = ts->next) ring_alloc(ts);
  pthread_mutex_unlock(&threads_lock);
  return 0;
}

/* po_profile_call's per-thread site cache: direct-mapped on the name's address, each hit checked
 * against the site's own copy of the name (a caller may reuse one buffer for several names). The
 * registry never frees a name, so the copy a slot points to stays valid. */
#define CALL_CACHE_SLOTS 16u
typedef struct {
  const char *key;       /* the caller's pointer */
  const char *site_name; /* the registry's copy */
  uint32_t id;
} call_slot;
static __thread call_slot call_cache[CALL_CACHE_SLOTS] __attribute__((tls_model("initial-exec")));

static uint32_t call_site_slow(call_slot *slot, const char *name) {
  uint32_t id = po__site_for_name(name);
  if (!id || !name || !*name) return id;
  pthread_mutex_lock(&reg_lock);
  const char *site_name = reg[id].name;
  pthread_mutex_unlock(&reg_lock);
  slot->key = name;
  slot->site_name = site_name;
  slot->id = id;
  return id;
}

static inline uint32_t call_site(const char *name) {
  uint64_t h = (uint64_t)(uintptr_t)name * 0x9e3779b97f4a7c15ULL;
  call_slot *slot = &call_cache[h >> 60];
  _Static_assert(CALL_CACHE_SLOTS == 16, "the slot is the hash's top 4 bits");
  if (PO__LIKELY(slot->key == name && name && name_matches(slot->site_name, name))) return slot->id;
  return call_site_slow(slot, name);
}

void *po_profile_call(const char *name, void *(*fn)(void *), void *arg) {
  if (!fn) return NULL;
  po__tstate *ts = &tls_state;
  if (PO__UNLIKELY(!__atomic_load_n(&po__profiling_enabled, __ATOMIC_RELAXED))) return fn(arg);
  zone_begin(ts, call_site(name)); /* a detached state takes zone_begin's slow path */
  void *r = fn(arg);
  po_zone_end();
  return r;
}

void po_profile_thread_name(const char *name) {
  po__tstate *ts = &tls_state;
  if (!ts->stack && !tstate_attach()) return;
  pthread_mutex_lock(&ts->lock);
  po__strlcpy(ts->name, name ? name : "", sizeof ts->name);
  pthread_mutex_unlock(&ts->lock);
}

double po_profile_probe_cost_ns(void) {
  calibrate_pending();
  pthread_mutex_lock(&calib_lock);
  double full = probes[PROBE_MANUAL].done ? probes[PROBE_MANUAL].full : 0;
  pthread_mutex_unlock(&calib_lock);
  return full * po__ns_per_tick();
}

/* Events a live thread's ring has overwritten since the last reset. */
static uint64_t ring_dropped(po__tstate *ts) {
  if (!atomic_load(&ts->ring)) return 0;
  uint64_t n = atomic_load_explicit(&ts->ring_w, memory_order_acquire) - ts->ring_base;
  return n > ts->ring_mask + 1 ? n - (ts->ring_mask + 1) : 0;
}

void po_profile_get_counters(po_profile_counters *out) {
  memset(out, 0, sizeof *out);
  out->truncated_names = atomic_load(&counters.truncated_names);
  out->null_names = atomic_load(&counters.null_names);
  out->unmatched_ends = atomic_load(&counters.unmatched_ends);
  out->open_at_exit = atomic_load(&counters.open_at_exit);
  out->depth_overflows = atomic_load(&counters.depth_overflows);
  out->site_overflows = atomic_load(&counters.site_overflows);
  pthread_mutex_lock(&threads_lock);
  for (po__tstate *ts = threads; ts; ts = ts->next) out->dropped_events += ring_dropped(ts);
  if (retired) out->dropped_events += LD(retired->dropped);
  pthread_mutex_unlock(&threads_lock);
}

/* ---- calibration ------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* One probed zone: the kind's own entry points, or the manual ones a PO_SCOPE compiles to. */
static inline void probe_begin(const probe_kind *k, po_site *site) {
  if (k->begin)
    k->begin(k->arg);
  else
    po__zone_begin_on(site);
}
static inline void probe_end(const probe_kind *k) {
  if (k->end)
    k->end(k->arg);
  else
    po_zone_end();
}

/* Measures one kind on the calling thread, whose state must be detached; nothing is listed or
 * kept. bias = what a zone around nothing measures; full = what one begin/end pair adds to the
 * zone around it. Medians of ROUNDS rounds. Returns 0, or -1 when a probed zone was not recorded
 * (profiling switched off meanwhile, or no memory): the kind then stays pending. */
static int calibrate_kind_here(probe_kind *k) {
  static po_site outer_site = PO_SITE_INIT("po.calibrate.outer", "", 0);
  static po_site inner_site = PO_SITE_INIT("po.calibrate.inner", "", 0);
  enum { ROUNDS = 15, PAIRS = 2000 };
  double bias[ROUNDS], full[ROUNDS];
  po__tstate *ts = &tls_state;
  uint32_t outer = po__site_register(&outer_site);
  po__site_register(&inner_site);
  int rc = 0;
  tls_private = 1;
  for (int r = 0; r < ROUNDS && rc == 0; r++) {
    po__zone_begin_id(outer);
    if (!ts->stack) { /* could not attach: there is no zone to end */
      rc = -1;
      break;
    }
    po__frame *f = ts->top;
    if (f == ts->stack) { /* the begin was skipped: its end consumes the skip */
      rc = -1;
      po_zone_end();
      break;
    }
    for (int i = 0; i < PAIRS; i++) {
      probe_begin(k, &inner_site);
      probe_end(k);
    }
    uint64_t t1 = po__ticks();
    uint64_t child = 0, calls = 0;
    for (po__node *in = atomic_load(&f->n->first_child); in; in = in->next_sibling) {
      child += LD(in->total);
      calls += LD(in->calls);
      ST(in->total, 0);
      ST(in->calls, 0);
    }
    if (calls != PAIRS) rc = -1;
    bias[r] = (double)child / PAIRS;
    full[r] = (double)(t1 - f->start) / PAIRS;
    po_zone_end();
  }
  if (ts->stack) tstate_release(ts);
  tls_private = 0;
  if (rc) return rc;
  qsort(bias, ROUNDS, sizeof bias[0], cmp_double);
  qsort(full, ROUNDS, sizeof full[0], cmp_double);
  k->bias = bias[ROUNDS / 2];
  k->full = full[ROUNDS / 2];
  return 0;
}

/* calib_lock held. */
static void calibrate_kinds_here(void) {
  int pending = 0;
  for (int i = 0; i < PROBE_KINDS; i++) {
    probe_kind *k = &probes[i];
    if (k->registered && !k->done) k->done = calibrate_kind_here(k) == 0;
    pending |= k->registered && !k->done;
  }
  atomic_store_explicit(&calib_pending, pending, memory_order_release);
}

static void *calibrate_thread(void *arg) {
  (void)arg;
  calibrate_kinds_here();
  return NULL;
}

/* Measures every pending kind: on this thread when it has no state yet (the first zone of the
 * process lands here), else on a private thread (a report built by a thread that has zones).
 * Nothing to do once every kind is measured, or while profiling is off. */
static void calibrate_pending(void) {
  if (!atomic_load_explicit(&calib_pending, memory_order_acquire) ||
      !__atomic_load_n(&po__profiling_enabled, __ATOMIC_RELAXED) || tls_private)
    return;
  pthread_mutex_lock(&calib_lock);
  if (atomic_load_explicit(&calib_pending, memory_order_relaxed)) {
    pthread_t t;
    if (!tls_state.stack)
      calibrate_kinds_here();
    else if (pthread_create(&t, NULL, calibrate_thread, NULL) == 0)
      pthread_join(t, NULL);
  }
  pthread_mutex_unlock(&calib_lock);
}

void po__set_auto_probe(void (*begin)(void *), void (*end)(void *), void *arg) {
  pthread_mutex_lock(&calib_lock);
  probe_kind *k = &probes[PROBE_AUTO];
  *k = (probe_kind){begin, end, arg, 1, 0, 0, 0};
  atomic_store_explicit(&calib_pending, 1, memory_order_release);
  pthread_mutex_unlock(&calib_lock);
}

/* ---- merge and reset ------------------------------------------------------------------------ */

static po__sitestat *merged_sitestat(po__tstate *dst, uint32_t id) {
  if (id >= dst->sites_cap || !dst->sites[id]) return sitestat_slow(dst, id);
  return dst->sites[id];
}

static void merge_sitestat(po__sitestat *d, po__sitestat *s) {
  if (LD(s->min) < LD(d->min)) ST(d->min, LD(s->min));
  if (LD(s->max) > LD(d->max)) ST(d->max, LD(s->max));
  uint64_t lo = LD(d->sumsq_lo), add = LD(s->sumsq_lo);
  ST(d->sumsq_lo, lo + add);
  ST(d->sumsq_hi, LD(d->sumsq_hi) + LD(s->sumsq_hi) + (lo + add < lo));
  for (uint32_t b = 0; b < PO__HIST_BUCKETS; b++) {
    uint32_t v = LD(s->hist[b]);
    if (v) BUMP(d->hist[b], v);
  }
}

static void merge_children(po__tstate *dst, po__node *dn, po__node *sn) {
  for (po__node *c = atomic_load_explicit(&sn->first_child, memory_order_acquire); c;
       c = c->next_sibling) {
    pthread_mutex_lock(&dst->lock);
    po__node *d = child_locked(dst, dn, c->site);
    pthread_mutex_unlock(&dst->lock);
    if (!d) continue;
    BUMP(d->calls, LD(c->calls));
    BUMP(d->total, LD(c->total));
    d->flags |= c->flags;
    merge_children(dst, d, c);
  }
}

/* Adds src's tree and site records into dst. Caller holds src->lock (dst is private or held). */
static void merge_tree(po__tstate *dst, po__tstate *src) {
  for (uint32_t id = 1; id < src->sites_cap; id++) {
    po__sitestat *s = src->sites[id];
    if (!s) continue;
    po__sitestat *d = merged_sitestat(dst, id);
    if (d) merge_sitestat(d, s);
  }
  merge_children(dst, &dst->root, &src->root);
  BUMP(dst->dropped, LD(src->dropped));
}

static void zero_tree(po__tstate *ts) {
  for (uint32_t id = 0; id < ts->sites_cap; id++) {
    po__sitestat *s = ts->sites[id];
    if (!s) continue;
    ST(s->min, UINT64_MAX);
    ST(s->max, 0);
    ST(s->sumsq_lo, 0);
    ST(s->sumsq_hi, 0);
    for (uint32_t b = 0; b < PO__HIST_BUCKETS; b++) ST(s->hist[b], 0);
  }
  for (po__chunk *c = ts->chunks; c; c = c->next) {
    for (uint32_t i = 0; i < c->used; i++) {
      ST(c->nodes[i].calls, 0);
      ST(c->nodes[i].total, 0);
      c->nodes[i].flags = 0;
    }
  }
  ST(ts->dropped, 0);
  ts->ring_base = atomic_load(&ts->ring_w);
}

/* Zeroes every thread's data, the retired tree and the counters; threads_lock held. In a forked
 * child (lock_threads 0) no other thread exists to hold a state's lock. */
static void reset_locked(int lock_threads) {
  for (po__tstate *ts = threads; ts; ts = ts->next) {
    if (lock_threads) pthread_mutex_lock(&ts->lock);
    zero_tree(ts);
    if (lock_threads) pthread_mutex_unlock(&ts->lock);
  }
  if (retired) {
    tstate_free(retired);
    retired = NULL;
  }
  retired_summary_len = 0;
  retired_summary_dropped = 0;
  origin_ticks = po__ticks();
  atomic_store(&counters.truncated_names, 0);
  atomic_store(&counters.null_names, 0);
  atomic_store(&counters.unmatched_ends, 0);
  atomic_store(&counters.open_at_exit, 0);
  atomic_store(&counters.depth_overflows, 0);
  atomic_store(&counters.site_overflows, 0);
}

void po_profile_reset(void) {
  pthread_mutex_lock(&threads_lock);
  reset_locked(1);
  pthread_mutex_unlock(&threads_lock);
}

/* ---- snapshots for the report ------------------------------------------------------------- */

#include <math.h>

#define MAX_TREE_NODES 20000
#define MAX_TIMELINE_EVENTS 200000

typedef struct {
  uint64_t calls;
  double raw_total;      /* sum of measured inclusive ticks of every call (for the mean) */
  double total;          /* compensated inclusive ticks, outermost recursion level only */
  double self;           /* compensated self ticks */
  double desc_cost;      /* probe ticks of the zones that ran inside this site's calls */
  double bias, full;     /* this site's calibrated probe cost in ticks (by its kind of zone) */
  uint32_t depth_active; /* how many ancestors of the current DFS node have this site */
} site_acc;

typedef struct {
  po__tstate *m;
  site_acc *acc;
  double tick_s;
  po__profile_snapshot *snap;
  size_t nodes_cap;
  int oom;
} walk_ctx;

static double nonneg(double x) {
  return x > 0 ? x : 0;
}

/* Appends one element to a growable array; 0 or -1 on ENOMEM (the array is unchanged). */
static int push_slot(void **arr, size_t *n, size_t *cap, size_t size) {
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 64;
    void *na = po__realloc(*arr, ncap * size);
    if (!na) return -1;
    *arr = na;
    *cap = ncap;
  }
  memset((char *)*arr + *n * size, 0, size);
  (*n)++;
  return 0;
}

/* The tree node of child c, or NULL past the cap (then counted as truncated). */
static po__prof_node *tree_node(walk_ctx *w, po__node *c, int parent_id) {
  po__profile_snapshot *s = w->snap;
  if (s->nnodes >= MAX_TREE_NODES) {
    s->call_tree_truncated++;
    return NULL;
  }
  if (push_slot((void **)&s->nodes, &s->nnodes, &w->nodes_cap, sizeof *s->nodes) != 0) {
    w->oom = 1;
    return NULL;
  }
  po__prof_node *o = &s->nodes[s->nnodes - 1];
  const char *file;
  int line;
  site_describe(c->site, &o->name, &file, &line);
  o->id = (int)(s->nnodes - 1);
  o->parent = parent_id;
  o->calls = LD(c->calls);
  o->open_at_exit = (c->flags & NODE_OPEN_AT_EXIT) != 0;
  return o;
}

/* Depth-first over the merged tree. Probe-cost compensation: a zone's measured time holds its own
 * probe's bias (what a zone around nothing measures) once per call, and the full cost of every
 * begin/end pair that ran inside it (bias and full are per kind of zone, see site_costs):
 *   total = measured - calls * bias - sum over descendants of calls_d * full_d
 *   self  = measured self - calls * bias - sum over children of calls_c * (full_c - bias_c)
 * Returns the probe ticks of the subtree below `n` (sum over its zones of calls * full). */
static double walk(walk_ctx *w, po__node *n, int parent_id) {
  double below = 0;
  for (po__node *c = atomic_load(&n->first_child); c; c = c->next_sibling) {
    site_acc *a = &w->acc[c->site];
    double calls = (double)LD(c->calls), total = (double)LD(c->total);
    po__prof_node *o = tree_node(w, c, parent_id);
    int my_id = o ? o->id : -1;
    a->depth_active++;
    double desc = walk(w, c, my_id);
    a->depth_active--;
    double child_total = 0, child_probe = 0;
    for (po__node *g = atomic_load(&c->first_child); g; g = g->next_sibling) {
      const site_acc *ga = &w->acc[g->site];
      child_total += (double)LD(g->total);
      child_probe += (double)LD(g->calls) * (ga->full - ga->bias);
    }
    double self = total - child_total;
    double total_adj = nonneg(total - calls * a->bias - desc);
    double self_adj = nonneg(self - calls * a->bias - child_probe);
    a->calls += (uint64_t)calls;
    a->raw_total += total;
    a->self += self_adj;
    a->desc_cost += desc;
    if (a->depth_active == 0) a->total += total_adj; /* recursion: count the outermost only */
    if (my_id >= 0) { /* the array may have moved during the recursion: index again */
      w->snap->nodes[my_id].total_seconds = total_adj * w->tick_s;
      w->snap->nodes[my_id].self_seconds = self_adj * w->tick_s;
    }
    below += calls * a->full + desc;
  }
  return below;
}

/* Each site's probe cost, by the kind of zone that records it: an address site is
 * auto-instrumentation, any other a manual zone. Kinds not calibrated cost 0. */
static void site_costs(walk_ctx *w, uint32_t nsites, po__profile_snapshot *s) {
  calibrate_pending();
  pthread_mutex_lock(&calib_lock);
  probe_kind k[PROBE_KINDS];
  memcpy(k, probes, sizeof k);
  pthread_mutex_unlock(&calib_lock);
  for (int i = 0; i < PROBE_KINDS; i++)
    if (!k[i].done) k[i].bias = k[i].full = 0;
  double ns = po__ns_per_tick();
  s->probe_cost_ns = k[PROBE_MANUAL].full * ns;
  s->probe_bias_ns = k[PROBE_MANUAL].bias * ns;
  s->auto_probe_cost_ns = k[PROBE_AUTO].full * ns;
  s->auto_probe_bias_ns = k[PROBE_AUTO].bias * ns;
  pthread_mutex_lock(&reg_lock);
  for (uint32_t id = 1; id < nsites; id++) {
    const probe_kind *p = &k[reg[id].addr ? PROBE_AUTO : PROBE_MANUAL];
    w->acc[id].bias = p->bias;
    w->acc[id].full = p->full;
  }
  pthread_mutex_unlock(&reg_lock);
}

static void function_stats(walk_ctx *w, uint32_t id, double wall_s, po__prof_function *o) {
  site_acc *a = &w->acc[id];
  po__sitestat *ss = w->m->sites[id];
  site_describe(id, &o->name, &o->file, &o->line);
  if (!o->file) o->file = "";
  double ts = w->tick_s;
  double n = (double)a->calls;
  double mean_raw = n > 0 ? a->raw_total / n : 0;
  double sumsq = ldexp((double)LD(ss->sumsq_hi), 64) + (double)LD(ss->sumsq_lo);
  double var = n > 0 ? sumsq / n - mean_raw * mean_raw : 0;
  /* Per-call values (min, max, percentiles) are shifted by this site's mean probe cost. */
  double shift = n > 0 ? a->bias + a->desc_cost / n : 0;
  double mn = LD(ss->min) == UINT64_MAX ? 0 : (double)LD(ss->min);
  double mx = (double)LD(ss->max);
  o->calls = a->calls;
  o->total_seconds = a->total * ts;
  o->self_seconds = a->self * ts;
  o->avg_seconds = nonneg(mean_raw - shift) * ts;
  o->min_seconds = nonneg(mn - shift) * ts;
  o->max_seconds = nonneg(mx - shift) * ts;
  o->stddev_seconds = var > 0 ? sqrt(var) * ts : 0;
  o->percent_total = wall_s > 0 ? 100.0 * a->total * ts / wall_s : 0;
  uint64_t htotal = 0;
  for (uint32_t b = 0; b < PO__HIST_BUCKETS; b++) htotal += LD(ss->hist[b]);
  const double qs[4] = {0.50, 0.90, 0.95, 0.99};
  double *out[4] = {&o->p50_seconds, &o->p90_seconds, &o->p95_seconds, &o->p99_seconds};
  for (size_t i = 0; i < 4; i++) {
    double v = po__hist_quantile_atomic(ss->hist, htotal, qs[i]);
    if (v < mn) v = mn; /* a bucket midpoint never lies outside the observed range */
    if (v > mx) v = mx;
    *out[i] = nonneg(v - shift) * ts;
  }
}

/* Thread summaries: live threads, then exited ones. threads_lock held. */
static int snapshot_threads(po__profile_snapshot *s, double tick_s) {
  size_t cap = 0;
  for (po__tstate *ts = threads; ts; ts = ts->next) {
    if (push_slot((void **)&s->threads, &s->nthreads, &cap, sizeof *s->threads)) return PO_ENOMEM;
    po__prof_thread *o = &s->threads[s->nthreads - 1];
    uint64_t calls = 0, total = 0;
    pthread_mutex_lock(&ts->lock);
    for (po__node *c = atomic_load(&ts->root.first_child); c; c = c->next_sibling)
      total += LD(c->total);
    for (po__chunk *ch = ts->chunks; ch; ch = ch->next)
      for (uint32_t i = 0; i < ch->used; i++) calls += LD(ch->nodes[i].calls);
    o->tid = (uint64_t)ts->tid;
    memcpy(o->name, ts->name, sizeof o->name);
    o->calls = calls;
    o->total_seconds = (double)total * tick_s;
    o->dropped_events = ring_dropped(ts);
    pthread_mutex_unlock(&ts->lock);
  }
  for (uint32_t i = 0; i < retired_summary_len; i++) {
    if (push_slot((void **)&s->threads, &s->nthreads, &cap, sizeof *s->threads)) return PO_ENOMEM;
    po__prof_thread *o = &s->threads[s->nthreads - 1];
    const po__retired_summary *r = &retired_summaries[i];
    o->tid = (uint64_t)r->tid;
    memcpy(o->name, r->name, sizeof o->name);
    o->exited = 1;
    o->calls = r->calls;
    o->total_seconds = (double)r->total_ticks * tick_s;
  }
  s->threads_not_listed = retired_summary_dropped;
  return 0;
}

/* The timeline events of one thread's ring. threads_lock held. */
static int snapshot_ring(po__profile_snapshot *s, po__tstate *ts, double tick_s, size_t *cap) {
  po__event *ring = atomic_load_explicit(&ts->ring, memory_order_acquire);
  if (!ring) return 0;
  uint64_t rcap = ts->ring_mask + 1;
  s->dropped_events += ring_dropped(ts);
  uint64_t w = atomic_load_explicit(&ts->ring_w, memory_order_acquire);
  uint64_t from = w - ts->ring_base > rcap ? w - rcap : ts->ring_base;
  for (uint64_t i = from; i < w; i++) {
    po__event *e = &ring[i & ts->ring_mask];
    uint64_t start = LD(e->start), dur = LD(e->dur);
    uint32_t site = LD(e->site), depth = LD(e->depth);
    /* The owner keeps writing: a slot it has lapped since we began may be torn; skip it. */
    uint64_t now_w = atomic_load_explicit(&ts->ring_w, memory_order_acquire);
    if (now_w - i > rcap || s->nevents >= MAX_TIMELINE_EVENTS) {
      s->not_exported_events++;
      continue;
    }
    if (push_slot((void **)&s->events, &s->nevents, cap, sizeof *s->events)) return PO_ENOMEM;
    po__prof_event *o = &s->events[s->nevents - 1];
    const char *file;
    int line;
    site_describe(site, &o->name, &file, &line);
    o->tid = (uint64_t)ts->tid;
    o->start_seconds = start >= origin_ticks ? (double)(start - origin_ticks) * tick_s : 0;
    o->dur_seconds = (double)dur * tick_s;
    o->depth = depth;
  }
  return 0;
}

static int snapshot_timeline(po__profile_snapshot *s, double tick_s) {
  s->timeline_enabled = __atomic_load_n(&timeline_on, __ATOMIC_RELAXED);
  size_t cap = 0;
  for (po__tstate *ts = threads; ts; ts = ts->next)
    if (snapshot_ring(s, ts, tick_s, &cap)) return PO_ENOMEM;
  s->dropped_events += s->not_exported_events;
  return 0;
}

/* Merges every thread's tree into m and takes the thread list and timeline. */
static int snapshot_merge(po__profile_snapshot *s, po__tstate *m, double tick_s) {
  pthread_mutex_lock(&threads_lock);
  if (!origin_ticks) origin_ticks = po__ticks();
  s->wall_seconds = (double)(po__ticks() - origin_ticks) * tick_s;
  for (po__tstate *ts = threads; ts; ts = ts->next) {
    pthread_mutex_lock(&ts->lock);
    merge_tree(m, ts);
    pthread_mutex_unlock(&ts->lock);
  }
  if (retired) merge_tree(m, retired);
  int rc = snapshot_threads(s, tick_s);
  s->dropped_events = LD(m->dropped);
  if (!rc) rc = snapshot_timeline(s, tick_s);
  pthread_mutex_unlock(&threads_lock);
  return rc;
}

static int snapshot_functions(walk_ctx *w, uint32_t nsites) {
  po__profile_snapshot *s = w->snap;
  size_t cap = 0;
  for (uint32_t id = 1; id < nsites && id < w->m->sites_cap; id++) {
    if (!w->m->sites[id] || w->acc[id].calls == 0) continue;
    if (push_slot((void **)&s->functions, &s->nfunctions, &cap, sizeof *s->functions))
      return PO_ENOMEM;
    function_stats(w, id, s->wall_seconds, &s->functions[s->nfunctions - 1]);
  }
  return 0;
}

int po__profile_snapshot_create(po__profile_snapshot **out) {
  *out = NULL;
  po__profile_snapshot *s = po__calloc(1, sizeof *s);
  po__tstate *m = tstate_new(0);
  double tick_s = po__ns_per_tick() * 1e-9;
  int rc = s && m ? snapshot_merge(s, m, tick_s) : PO_ENOMEM;
  pthread_mutex_lock(&reg_lock);
  uint32_t nsites = reg_len;
  pthread_mutex_unlock(&reg_lock);
  walk_ctx w = {m, rc ? NULL : po__calloc(nsites + 1, sizeof(site_acc)), tick_s, s, 0, 0};
  if (!rc && !w.acc) rc = PO_ENOMEM;
  if (!rc) {
    site_costs(&w, nsites, s);
    walk(&w, &m->root, -1);
    if (w.oom) rc = PO_ENOMEM;
  }
  if (!rc) rc = snapshot_functions(&w, nsites);
  if (!rc) {
    for (po__node *c = atomic_load(&m->root.first_child); c; c = c->next_sibling)
      s->profiled_seconds += (double)LD(c->total) * tick_s;
    s->ns_per_tick = tick_s * 1e9;
    po_profile_get_counters(&s->counters);
  }
  free(w.acc);
  if (m) tstate_free(m);
  if (rc) {
    po__profile_snapshot_destroy(s);
    return rc;
  }
  *out = s;
  return 0;
}

void po__profile_snapshot_destroy(po__profile_snapshot *s) {
  if (!s) return;
  free(s->functions);
  free(s->nodes);
  free(s->threads);
  free(s->events);
  free(s);
}
