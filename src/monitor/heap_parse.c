/* Heap tracking: turning a copy of the shared segment into a po_heap_snapshot.
 *
 * The segment is written by code running inside another program, which may be buggy, killed
 * half-way through an update or hostile. So this reads only a private copy (no value can change
 * between its check and its use), bounds every count and index by the format's constants,
 * terminates every string itself and rejects a slot whose fields contradict each other (counted
 * in slots_invalid). fuzz/fuzz_heap_segment.c feeds it arbitrary bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "monitor/heap_session.h"

#define DEFAULT_TOP 20u

/* ---- arena ------------------------------------------------------------------------------ */

struct po__heap_arena {
  struct po__heap_arena *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
};

void *po__heap_arena_alloc(po__heap_arena **a, size_t n) {
  n = (n + 15u) & ~(size_t)15u;
  if (!n) n = 16;
  if (!*a || (*a)->cap - (*a)->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    po__heap_arena *c = po__malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->next = *a;
    c->used = 0;
    c->cap = cap;
    *a = c;
  }
  void *p = (*a)->data + (*a)->used;
  (*a)->used += n;
  memset(p, 0, n);
  return p;
}

char *po__heap_arena_strndup(po__heap_arena **a, const char *s, size_t max) {
  size_t n = strnlen(s, max);
  char *d = po__heap_arena_alloc(a, n + 1);
  if (d) memcpy(d, s, n);
  return d;
}

void po__heap_arena_free(po__heap_arena *a) {
  while (a) {
    po__heap_arena *n = a->next;
    free(a);
    a = n;
  }
}

/* The snapshot and everything it points to. */
typedef struct snap_box {
  po_heap_snapshot pub;
  po__heap_arena *arena;
} snap_box;

void po_heap_snapshot_destroy(po_heap_snapshot *snap) {
  if (!snap) return;
  snap_box *b = (snap_box *)snap;
  po__heap_arena_free(b->arena);
  free(b);
}

/* ---- validation ------------------------------------------------------------------------- */

static int header_ok(const po_heap_header *h) {
  return h->magic == PO_HEAP_MAGIC && h->version == PO_HEAP_VERSION &&
         h->header_bytes == PO_HEAP_HEADER_BYTES && h->total_bytes == PO_HEAP_SEGMENT_BYTES &&
         h->max_procs == PO_HEAP_MAX_PROCS && h->max_threads == PO_HEAP_MAX_THREADS &&
         h->max_sites == PO_HEAP_MAX_SITES && h->max_frames == PO_HEAP_MAX_FRAMES &&
         h->max_modules == PO_HEAP_MAX_MODULES && h->proc_bytes == sizeof(po_heap_proc) &&
         h->hist_buckets == PO_HEAP_HIST_BUCKETS && h->mode <= PO_HEAP_MODE_FULL;
}

static int slot_ok(const po_heap_proc *p) {
  return (p->state == PO_HEAP_SLOT_ACTIVE || p->state == PO_HEAP_SLOT_EXITED ||
          p->state == PO_HEAP_SLOT_EXECED) &&
         p->mode <= PO_HEAP_MODE_FULL && p->pid > 0 && p->origin <= 2;
}

static double ns_to_s(uint64_t ns) {
  return (double)ns * 1e-9;
}

/* Fills the counters of one process from its slot. */
static void read_counters(const po_heap_proc *p, po_heap_process *o) {
  o->live_bytes = p->live_bytes;
  o->peak_bytes = p->peak_bytes;
  o->peak_seconds = ns_to_s(p->peak_ns);
  o->inherited_bytes = p->inherited_bytes;
  for (uint32_t t = 0; t <= PO_HEAP_MAX_THREADS; t++) {
    const po_heap_thread *th = t < PO_HEAP_MAX_THREADS ? &p->threads[t] : &p->shared;
    o->allocations += th->alloc_count;
    o->allocated_bytes += th->alloc_bytes;
    o->frees += th->free_count;
    o->freed_bytes += th->free_bytes;
    for (uint32_t b = 0; b < PO_HEAP_HIST_BUCKETS; b++) o->size_histogram[b] += th->hist[b];
  }
  o->mmap_calls = p->mmap_count;
  o->munmap_calls = p->munmap_count;
  o->mmap_bytes = p->mmap_bytes;
  o->munmap_bytes = p->munmap_bytes;
  o->mmap_live_bytes = p->mmap_live_bytes;
  o->mmap_peak_bytes = p->mmap_peak_bytes;
  o->sites_dropped = p->sites_dropped;
  o->stacks_truncated = p->stacks_truncated;
  o->threads_shared = p->threads_shared;
  o->modules_dropped = p->modules_dropped;
  o->paths_truncated = p->paths_truncated;
  o->foreign_frees = p->foreign_frees;
  o->untracked_allocations = p->untracked_allocs;
  o->sampled_allocations = p->sampled_allocs;
  o->unwind_fallbacks = p->unwind_fallbacks;
  o->refused_allocations = p->too_large;
}

/* Copies the valid module entries (terminated paths, non-empty ranges) into mods. */
static uint32_t read_modules(const po_heap_proc *p, po_heap_module *mods) {
  uint32_t n = p->module_count < PO_HEAP_MAX_MODULES ? p->module_count : PO_HEAP_MAX_MODULES, k = 0;
  for (uint32_t i = 0; i < n; i++) {
    const po_heap_module *m = &p->modules[i];
    if (m->ready != 1 || m->lo >= m->hi) continue;
    mods[k] = *m;
    mods[k].path[PO_HEAP_PATH_BYTES - 1] = '\0';
    if (mods[k].build_id_len > PO_HEAP_BUILD_ID_BYTES) mods[k].build_id_len = 0;
    k++;
  }
  return k;
}

static int64_t at_peak(const po_heap_proc *p, const po_heap_site *s) {
  return s->epoch == p->peak_epoch ? s->bytes_at_peak : s->live_bytes;
}

/* Copies the sites; frames get their module fields here, names later. */
static int read_sites(const po_heap_proc *p, const po_heap_module *mods, uint32_t nmods,
                      po_heap_process *o, po__heap_arena **a) {
  size_t n = 0;
  for (uint32_t i = 0; i < PO_HEAP_MAX_SITES; i++) n += p->sites[i].key != 0;
  o->sites = n ? po__heap_arena_alloc(a, n * sizeof *o->sites) : NULL;
  if (n && !o->sites) return PO_ENOMEM;
  for (uint32_t i = 0; i < PO_HEAP_MAX_SITES; i++) {
    const po_heap_site *s = &p->sites[i];
    if (!s->key) continue;
    po_heap_site_info *d = &o->sites[o->site_count++];
    d->allocations = s->alloc_count;
    d->allocated_bytes = s->alloc_bytes;
    d->live_allocations = s->live_count;
    d->live_bytes = s->live_bytes;
    d->bytes_at_peak = at_peak(p, s);
    d->complete = s->ready == 1 && s->depth <= PO_HEAP_MAX_FRAMES;
    if (!d->complete) {
      o->incomplete_sites++;
      continue;
    }
    d->frame_count = s->depth;
    d->frames = s->depth ? po__heap_arena_alloc(a, s->depth * sizeof *d->frames) : NULL;
    if (s->depth && !d->frames) return PO_ENOMEM;
    for (uint32_t f = 0; f < s->depth; f++) {
      po_heap_frame *fr = &d->frames[f];
      fr->address = s->frames[f];
      for (uint32_t m = 0; m < nmods; m++) {
        if (fr->address - 1 >= mods[m].lo && fr->address - 1 < mods[m].hi) {
          fr->module_offset = fr->address - mods[m].bias;
          if (!(fr->module = po__heap_arena_strndup(a, mods[m].path, PO_HEAP_PATH_BYTES)))
            return PO_ENOMEM;
          break;
        }
      }
    }
  }
  return 0;
}

/* ---- top lists -------------------------------------------------------------------------- */

typedef enum { BY_PEAK, BY_TOTAL, BY_LIVE } sort_key;

static int64_t key_of(const po_heap_site_info *s, sort_key k) {
  if (k == BY_PEAK) return s->bytes_at_peak;
  if (k == BY_LIVE) return s->live_bytes;
  return s->allocated_bytes > INT64_MAX ? INT64_MAX : (int64_t)s->allocated_bytes;
}

static int cmp_sites(const void *a, const void *b, void *ctx) {
  const po_heap_process *o = ((const void **)ctx)[0];
  sort_key k = *(const sort_key *)((const void **)ctx)[1];
  int64_t x = key_of(&o->sites[*(const size_t *)a], k),
          y = key_of(&o->sites[*(const size_t *)b], k);
  if (x != y) return x > y ? -1 : 1;
  return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* The indices of the `top` sites with the largest positive key, largest first. */
static int top_list(po_heap_process *o, sort_key k, size_t top, size_t **out, size_t *count,
                    po__heap_arena **a) {
  size_t n = 0;
  for (size_t i = 0; i < o->site_count; i++) n += key_of(&o->sites[i], k) > 0;
  *count = 0;
  if (!n) return 0;
  size_t *idx = po__heap_arena_alloc(a, n * sizeof *idx);
  if (!idx) return PO_ENOMEM;
  for (size_t i = 0, j = 0; i < o->site_count; i++) {
    if (key_of(&o->sites[i], k) > 0) idx[j++] = i;
  }
  const void *ctx[2] = {o, &k};
  qsort_r(idx, n, sizeof *idx, cmp_sites, ctx);
  *out = idx;
  *count = n < top ? n : top;
  return 0;
}

/* ---- processes -------------------------------------------------------------------------- */

static int symbolize_process(po_heap_process *o, const po_heap_module *mods, uint32_t nmods,
                             po__heap_arena **a) {
  size_t n = 0;
  for (size_t i = 0; i < o->site_count; i++) n += o->sites[i].frame_count;
  if (!n) return 0;
  po_heap_frame **all = po__malloc(n * sizeof *all);
  if (!all) return PO_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < o->site_count; i++) {
    for (size_t f = 0; f < o->sites[i].frame_count; f++) all[k++] = &o->sites[i].frames[f];
  }
  int rc = po__heap_symbolize(mods, nmods, all, n, a);
  free(all);
  return rc;
}

static const char *state_name(const po_heap_proc *p, const po__heap_parse_opts *opts) {
  if (p->state == PO_HEAP_SLOT_EXITED) return "exited";
  if (p->state == PO_HEAP_SLOT_EXECED) return "exec";
  return !opts->alive || opts->alive(p->pid) ? "running" : "died";
}

static int read_process(const po_heap_proc *p, const po__heap_parse_opts *opts, size_t top,
                        po_heap_module *mods, po_heap_process *o, po__heap_arena **a) {
  static const char *const origins[] = {"start", "fork", "exec"};
  o->pid = p->pid;
  o->ppid = p->ppid;
  o->origin = origins[p->origin];
  o->state = state_name(p, opts);
  o->mode = (po_heap_mode)p->mode;
  o->start_seconds = ns_to_s(p->start_ns);
  o->end_seconds = p->state == PO_HEAP_SLOT_ACTIVE ? -1 : ns_to_s(p->end_ns);
  if (!(o->exe = po__heap_arena_strndup(a, p->exe, PO_HEAP_PATH_BYTES - 1))) return PO_ENOMEM;
  read_counters(p, o);
  uint32_t nmods = read_modules(p, mods);
  int rc = read_sites(p, mods, nmods, o, a);
  if (!rc && opts->symbolize) rc = symbolize_process(o, mods, nmods, a);
  int ended = !strcmp(o->state, "exited") || !strcmp(o->state, "died");
  if (ended) {
    o->leaked_bytes = o->live_bytes;
    o->leaked_allocations = (int64_t)(o->allocations - o->frees);
  }
  if (!rc) rc = top_list(o, BY_PEAK, top, &o->top_at_peak, &o->top_at_peak_count, a);
  if (!rc) rc = top_list(o, BY_TOTAL, top, &o->top_by_total, &o->top_by_total_count, a);
  if (!rc && ended) rc = top_list(o, BY_LIVE, top, &o->leak_sites, &o->leak_site_count, a);
  return rc;
}

/* The slot index each valid slot became in processes[] (-1: skipped). */
static void link_parents(po_heap_snapshot *s, const po_heap_proc *const *slots, const int *index_of,
                         uint32_t nslots) {
  for (uint32_t i = 0, k = 0; i < nslots; i++) {
    if (index_of[i] < 0) continue;
    int32_t ps = slots[i]->parent_slot;
    /* A parent claimed its slot before its child: a later index is corrupt. */
    s->processes[k].parent_index = ps >= 0 && (uint32_t)ps < i ? index_of[ps] : -1;
    k++;
  }
}

static int read_all(const uint8_t *seg, size_t len, const po__heap_parse_opts *opts,
                    const po_heap_header *h, snap_box *b) {
  po_heap_snapshot *s = &b->pub;
  uint32_t nslots = h->procs_claimed < PO_HEAP_MAX_PROCS ? h->procs_claimed : PO_HEAP_MAX_PROCS;
  while (nslots && PO_HEAP_HEADER_BYTES + (size_t)nslots * sizeof(po_heap_proc) > len) nslots--;
  const po_heap_proc *slots[PO_HEAP_MAX_PROCS];
  int index_of[PO_HEAP_MAX_PROCS];
  size_t valid = 0;
  for (uint32_t i = 0; i < nslots; i++) {
    slots[i] =
        (const po_heap_proc *)(seg + PO_HEAP_HEADER_BYTES + (size_t)i * sizeof(po_heap_proc));
    index_of[i] = slot_ok(slots[i]) ? (int)valid++ : -1;
    s->slots_invalid += index_of[i] < 0;
  }
  s->processes = valid ? po__heap_arena_alloc(&b->arena, valid * sizeof *s->processes) : NULL;
  if (valid && !s->processes) return PO_ENOMEM;
  po_heap_module *mods = po__malloc(PO_HEAP_MAX_MODULES * sizeof *mods);
  if (!mods) return PO_ENOMEM;
  int rc = 0;
  for (uint32_t i = 0; i < nslots && !rc; i++) {
    if (index_of[i] < 0) continue;
    po_heap_process *o = &s->processes[s->process_count++];
    rc = read_process(slots[i], opts, s->top_sites, mods, o, &b->arena);
    if (!rc && (s->peak_process < 0 || o->peak_bytes > s->peak_bytes)) {
      s->peak_process = (int)(s->process_count - 1);
      s->peak_bytes = o->peak_bytes;
      s->peak_seconds = o->peak_seconds;
    }
  }
  free(mods);
  if (!rc) link_parents(s, slots, index_of, nslots);
  return rc;
}

static int copy_timeline(const po__heap_parse_opts *opts, snap_box *b) {
  size_t n = opts->timeline_count;
  if (!n || !opts->timeline_seconds || !opts->timeline_live_bytes) return 0;
  b->pub.timeline_seconds = po__heap_arena_alloc(&b->arena, n * sizeof(double));
  b->pub.timeline_live_bytes = po__heap_arena_alloc(&b->arena, n * sizeof(int64_t));
  if (!b->pub.timeline_seconds || !b->pub.timeline_live_bytes) return PO_ENOMEM;
  memcpy(b->pub.timeline_seconds, opts->timeline_seconds, n * sizeof(double));
  memcpy(b->pub.timeline_live_bytes, opts->timeline_live_bytes, n * sizeof(int64_t));
  b->pub.timeline_count = n;
  return 0;
}

int po__heap_parse(const void *seg, size_t len, const po__heap_parse_opts *opts,
                   po_heap_snapshot **out) {
  if (!seg || !opts || !out) return PO_EINVAL;
  *out = NULL;
  po_heap_header h;
  if (len < sizeof h) return PO_EPARSE;
  memcpy(&h, seg, sizeof h);
  if (!header_ok(&h)) return PO_EPARSE;
  snap_box *b = po__calloc(1, sizeof *b);
  if (!b) return PO_ENOMEM;
  po_heap_snapshot *s = &b->pub;
  s->mode = (po_heap_mode)h.mode;
  s->sample_interval_bytes = h.sample_interval_bytes;
  s->t_seconds = opts->t_seconds;
  s->processes_dropped = h.procs_dropped;
  s->peak_process = -1;
  s->top_sites = opts->top_sites ? opts->top_sites : DEFAULT_TOP;
  int rc = read_all(seg, len, opts, &h, b);
  if (!rc) rc = copy_timeline(opts, b);
  if (rc) {
    po_heap_snapshot_destroy(s);
    return rc;
  }
  *out = s;
  return 0;
}
