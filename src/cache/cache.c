/* The byte-budgeted cache: SIEVE (default), S3-FIFO and LRU over one lock-free-read hash table.
 *
 * Concurrency. Writers (put, remove, eviction, pin, shrink, get-or-load bookkeeping) serialize on
 * the cache's mutex; this keeps one global eviction queue, so the policies behave exactly like
 * their textbook (and libCacheSim) versions. Readers (po_cache_get) take no lock: the table is an
 * open-addressing array of 64-bit slots (16-bit hash tag | 48-bit entry pointer) read with
 * acquire loads, and entries are immutable once published except their policy byte (SIEVE's
 * visited bit, S3-FIFO's frequency), which readers set with a relaxed store only when it
 * changes. Memory a reader might still see (unlinked entries, replaced tables) is freed through
 * epoch-based reclamation (src/cache_ebr.c): a reader announces the global epoch in its own
 * cache line; a writer frees an object only when every announced epoch is newer than the
 * object's retirement. Value pointers are not protected by the epochs: an entry's free callback
 * runs as soon as it leaves, so callers that race with evictions pin (po_cache_acquire).
 *
 * Memory. Entries live in per-cache slabs (size classes of 8 bytes, no malloc header) with the
 * key inline: 40 bytes of header, then the key. The fields a hit reads (value, key length,
 * policy byte, type, expiry, key) sit together at the end of the header, next to the key.
 */
#include "cache/cache_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Large metadata blocks (slabs, tables) come in 2 MiB-aligned pieces advised for transparent
 * huge pages: a hit on a big cache then costs cache misses but rarely a TLB miss. */
#define HUGE_BYTES ((size_t)2 << 20)
static size_t big_size(size_t bytes) {
  return bytes < HUGE_BYTES ? bytes : (bytes + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
}
/* Zeroed memory; blocks of 2 MiB or more are mapped 2 MiB-aligned. */
static void *big_alloc(size_t bytes) {
  if (bytes < HUGE_BYTES) return po__calloc(1, bytes);
  size_t sz = big_size(bytes);
  if (po__fault_point()) return NULL;
  unsigned char *p =
      mmap(NULL, sz + HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  size_t lead = (HUGE_BYTES - ((uintptr_t)p & (HUGE_BYTES - 1))) & (HUGE_BYTES - 1);
  if (lead) munmap(p, lead);
  if (HUGE_BYTES - lead) munmap(p + lead + sz, HUGE_BYTES - lead);
#ifdef MADV_HUGEPAGE
  madvise(p + lead, sz, MADV_HUGEPAGE);
#endif
  return p + lead;
}
static void big_free(void *p, size_t bytes) {
  if (!p) return;
  if (bytes < HUGE_BYTES)
    free(p);
  else
    munmap(p, big_size(bytes));
}

static inline int pinned(const po__cache_entry *e) {
  return e->pins != 0;
}
static inline void set_flag(po__cache_entry *e, unsigned f) {
  e->flags = (e->flags | f) & 7u;
}
static inline void clr_flag(po__cache_entry *e, unsigned f) {
  e->flags = (e->flags & ~(uint64_t)f) & 7u;
}
/* Pin count changes keep the cache's pinned totals (entries in the cache only). */
static inline void pins_add(po_cache *c, po__cache_entry *e, int d) {
  uint64_t before = e->pins;
  e->pins = (uint64_t)((int64_t)e->pins + d) & PO__MAX_PINS;
  if ((e->flags & PO__E_LINKED) && !before != !e->pins) {
    if (e->pins) {
      c->pinned_entries++;
      c->pinned_bytes += e->size;
    } else {
      c->pinned_entries--;
      c->pinned_bytes -= e->size;
    }
  }
}

/* ---- hashing ----------------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

uint64_t po__cache_hash(const void *key, size_t len) {
  const unsigned char *p = key;
  if (len == 8) { /* the common fixed-width key (cache_internal.h) */
    uint64_t w;
    memcpy(&w, p, 8);
    return po__cache_hash8(w);
  }
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ mix64(w)) * 0x9fb21c651e98df25ULL;
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ mix64(w ^ 0xa5a5a5a5a5a5a5a5ULL)) * 0x9fb21c651e98df25ULL;
  }
  return mix64(h);
}

/* ---- clock and TTL ----------------------------------------------------------------------- */

static uint64_t cache_now_ns(const po_cache *c) {
  return c->now_ns ? c->now_ns(c->clock_arg) : po__now_ns();
}

/* Expiry is stored as milliseconds since the cache's creation, plus one (0 = never). */
static uint32_t expiry_of(const po_cache *c, uint64_t ttl_ns) {
  if (!ttl_ns) return 0;
  uint64_t now = cache_now_ns(c);
  uint64_t rel = now > c->clock_origin ? now - c->clock_origin : 0;
  uint64_t ms = (rel + ttl_ns + 999999) / 1000000 + 1;
  return ms >= UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static int is_expired(const po_cache *c, const po__cache_entry *e) {
  if (!e->expire_ms) return 0;
  uint64_t now = cache_now_ns(c);
  uint64_t rel = now > c->clock_origin ? now - c->clock_origin : 0;
  return rel / 1000000 + 1 >= e->expire_ms;
}

/* ---- slab allocator for entries ---------------------------------------------------------- */

#define SLAB_SMALL (64 * 1024)
#define SLAB_MAX_OBJ 512 /* entries with 40 + key > this use malloc */

struct po__slab {
  struct po__slab *next;
  size_t used, size;
  _Alignas(16) unsigned char mem[];
};

static size_t obj_class_size(size_t keylen) {
  size_t n = sizeof(po__cache_entry) + keylen;
  return (n + 7) & ~(size_t)7;
}

static po__cache_entry *entry_alloc(po_cache *c, size_t keylen) {
  size_t sz = obj_class_size(keylen);
  void *p;
  if (sz > SLAB_MAX_OBJ) {
    p = po__malloc(sz);
    if (!p) return NULL;
    c->meta_bytes += sz;
  } else {
    size_t cls = sz / 8;
    if (c->free_objs[cls]) {
      p = c->free_objs[cls];
      c->free_objs[cls] = *(void **)p;
    } else {
      if (!c->slabs || c->slabs->used + sz > c->slabs->size) {
        /* small caches stay small; big ones get huge-page slabs */
        size_t bytes = c->nslabs < 32 ? SLAB_SMALL : HUGE_BYTES;
        struct po__slab *s = big_alloc(bytes);
        if (!s) return NULL;
        s->next = c->slabs;
        s->used = 0;
        s->size = bytes - sizeof(struct po__slab);
        c->slabs = s;
        c->nslabs++;
        c->meta_bytes += bytes;
      }
      p = c->slabs->mem + c->slabs->used;
      c->slabs->used += sz;
    }
    c->meta_live_bytes += sz;
  }
  if ((uintptr_t)p >> 48) { /* the slot format keeps 48 pointer bits */
    c->meta_bytes -= sz > SLAB_MAX_OBJ ? sz : 0;
    if (sz > SLAB_MAX_OBJ) free(p);
    return NULL;
  }
  memset(p, 0, sizeof(po__cache_entry));
  return p;
}

/* Returns an entry's memory to its size class (callers guarantee no reader can see it). */
static void entry_dealloc(po_cache *c, po__cache_entry *e) {
  size_t sz = obj_class_size(e->keylen);
  if (sz > SLAB_MAX_OBJ) {
    c->meta_bytes -= sz;
    free(e);
  } else {
    c->meta_live_bytes -= sz;
    *(void **)e = c->free_objs[sz / 8];
    c->free_objs[sz / 8] = e;
  }
}

/* ---- the table --------------------------------------------------------------------------- */

#define SLOT_EMPTY 0ULL
#define SLOT_TOMB 1ULL
#define SLOT_PTR_MASK ((1ULL << 48) - 1)

static inline uint64_t slot_make(uint64_t h, const po__cache_entry *e) {
  return (h & ~SLOT_PTR_MASK) | (uint64_t)(uintptr_t)e;
}
static inline size_t slot_home(const po__table *t, uint64_t h) {
  return (size_t)(((h & 0xffffffffULL) * t->cap) >> 32);
}

static size_t table_bytes(size_t cap) {
  return sizeof(po__table) + cap * sizeof(uint64_t);
}

static po__table *table_new(po_cache *c, size_t cap) {
  size_t bytes = sizeof(po__table) + cap * sizeof(_Atomic uint64_t);
  po__table *t = big_alloc(bytes);
  if (!t) return NULL;
  t->cap = cap;
  c->meta_bytes += big_size(bytes);
  return t;
}

static inline int entry_key_eq(const po__cache_entry *e, const void *key, size_t keylen) {
  if (e->keylen != keylen) return 0;
  if (keylen == 8) {
    uint64_t a, b;
    memcpy(&a, e->key, 8);
    memcpy(&b, key, 8);
    return a == b;
  }
  return memcmp(e->key, key, keylen) == 0;
}

/* Lock-free lookup: safe inside an epoch section or under the lock. */
static inline po__cache_entry *table_find(const po__table *t, uint64_t h, const void *key,
                                          size_t keylen) {
  size_t cap = t->cap, i = slot_home(t, h);
  uint64_t tag = h & ~SLOT_PTR_MASK;
  for (size_t n = 0; n < cap; n++) {
    uint64_t s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
    if (s == SLOT_EMPTY) return NULL;
    if (s != SLOT_TOMB && (s & ~SLOT_PTR_MASK) == tag) {
      po__cache_entry *e = (po__cache_entry *)(uintptr_t)(s & SLOT_PTR_MASK);
      if (entry_key_eq(e, key, keylen)) return e;
    }
    if (++i == cap) i = 0;
  }
  return NULL;
}

/* table_find for an 8-byte key (w): the hit path's common case, with no length dispatch and the
 * key in a register. */
static inline po__cache_entry *table_find8(const po__table *t, uint64_t h, uint64_t w) {
  size_t cap = t->cap, i = slot_home(t, h);
  uint64_t tag = h & ~SLOT_PTR_MASK;
  for (size_t n = 0; n < cap; n++) {
    uint64_t s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
    if (s == SLOT_EMPTY) return NULL;
    if (s != SLOT_TOMB && (s & ~SLOT_PTR_MASK) == tag) {
      po__cache_entry *e = (po__cache_entry *)(uintptr_t)(s & SLOT_PTR_MASK);
      uint64_t k;
      memcpy(&k, e->key, 8);
      if (e->keylen == 8 && k == w) return e;
    }
    if (++i == cap) i = 0;
  }
  return NULL;
}

/* Index of e's slot (writers only). */
static size_t table_slot_of(const po__table *t, const po__cache_entry *e) {
  uint64_t h = po__cache_hash(e->key, e->keylen);
  size_t i = slot_home(t, h);
  for (size_t n = 0; n < t->cap; n++) {
    uint64_t s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
    if (s == SLOT_EMPTY) break;
    if ((s & SLOT_PTR_MASK) == (uint64_t)(uintptr_t)e) return i;
    if (++i == t->cap) i = 0;
  }
  return SIZE_MAX;
}

static void table_put_slot(po__table *t, uint64_t h, po__cache_entry *e) {
  size_t i = slot_home(t, h);
  for (;;) {
    uint64_t s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
    if (s == SLOT_EMPTY || s == SLOT_TOMB) {
      if (s == SLOT_TOMB) t->tombs--;
      t->live++;
      atomic_store_explicit(&t->slots[i], slot_make(h, e), memory_order_release);
      return;
    }
    if (++i == t->cap) i = 0;
  }
}

/* Rebuilds into a table at load 0.5 for live+1 entries; the old one goes to the epoch limbo. */
static int table_rebuild(po_cache *c, size_t want_live) {
  po__table *old = c->table;
  size_t cap = want_live * 2;
  if (cap < 64) cap = 64;
  po__table *t = table_new(c, cap);
  if (!t) return PO_ENOMEM;
  for (size_t i = 0; i < old->cap; i++) {
    uint64_t s = atomic_load_explicit(&old->slots[i], memory_order_relaxed);
    if (s == SLOT_EMPTY || s == SLOT_TOMB) continue;
    po__cache_entry *e = (po__cache_entry *)(uintptr_t)(s & SLOT_PTR_MASK);
    table_put_slot(t, po__cache_hash(e->key, e->keylen), e);
  }
  atomic_store_explicit(&c->table_pub, t, memory_order_release);
  c->table = t;
  old->limbo_next = NULL;
  old->retire_epoch = po__ebr_advance();
  if (c->table_limbo_tail)
    c->table_limbo_tail->limbo_next = old;
  else
    c->table_limbo = old;
  c->table_limbo_tail = old;
  return 0;
}

static int table_reserve_one(po_cache *c) {
  po__table *t = c->table;
  if ((t->live + t->tombs + 1) * 4 <= t->cap * 3) return 0;
  return table_rebuild(c, t->live + 1);
}

static void table_remove(po_cache *c, po__cache_entry *e) {
  po__table *t = c->table;
  size_t i = table_slot_of(t, e);
  if (i == SIZE_MAX) return;
  size_t next = i + 1 == t->cap ? 0 : i + 1;
  /* A tombstone is needed only when the probe chain continues past this slot. */
  if (atomic_load_explicit(&t->slots[next], memory_order_relaxed) == SLOT_EMPTY) {
    atomic_store_explicit(&t->slots[i], SLOT_EMPTY, memory_order_release);
  } else {
    atomic_store_explicit(&t->slots[i], SLOT_TOMB, memory_order_release);
    t->tombs++;
  }
  t->live--;
}

/* ---- reclamation ------------------------------------------------------------------------- */

static void reclaim(po_cache *c, int force) {
  uint64_t min_active = force ? UINT64_MAX : po__ebr_min_active();
  while (c->limbo && c->limbo->link.r.epoch < min_active) {
    po__cache_entry *e = c->limbo;
    c->limbo = e->link.r.next;
    c->limbo_count--;
    entry_dealloc(c, e);
  }
  if (!c->limbo) c->limbo_tail = NULL;
  while (c->table_limbo && c->table_limbo->retire_epoch < min_active) {
    po__table *t = c->table_limbo;
    c->table_limbo = t->limbo_next;
    c->meta_bytes -= big_size(table_bytes(t->cap));
    big_free(t, table_bytes(t->cap));
  }
  if (!c->table_limbo) c->table_limbo_tail = NULL;
}

/* Entries unlinked by the current operation wait in `pending_retire` until the operation ends:
 * one epoch advance covers them all. */
static void retire_flush(po_cache *c) {
  if (!c->pending_retire) {
    if (c->table_limbo) reclaim(c, 0);
    return;
  }
  uint64_t ep = po__ebr_advance();
  po__cache_entry *e = c->pending_retire;
  while (e) {
    po__cache_entry *next = e->link.r.next;
    e->link.r.epoch = ep;
    e->link.r.next = NULL;
    if (c->limbo_tail)
      c->limbo_tail->link.r.next = e;
    else
      c->limbo = e;
    c->limbo_tail = e;
    c->limbo_count++;
    e = next;
  }
  c->pending_retire = NULL;
  if (c->limbo_count >= 64 || c->table_limbo) reclaim(c, 0);
}

/* ---- queues ------------------------------------------------------------------------------ */

static void q_push_head(po__queue *q, po__cache_entry *e) {
  e->link.q.older = q->head;
  e->link.q.newer = NULL;
  if (q->head)
    q->head->link.q.newer = e;
  else
    q->tail = e;
  q->head = e;
  q->bytes += e->size;
  q->count++;
}

static void q_unlink(po__queue *q, po__cache_entry *e) {
  if (e->link.q.newer)
    e->link.q.newer->link.q.older = e->link.q.older;
  else
    q->head = e->link.q.older;
  if (e->link.q.older)
    e->link.q.older->link.q.newer = e->link.q.newer;
  else
    q->tail = e->link.q.newer;
  q->bytes -= e->size;
  q->count--;
}

static po__queue *queue_of(po_cache *c, const po__cache_entry *e) {
  return &c->q[(e->flags & PO__E_MAIN) ? 1 : 0];
}

/* ---- the S3-FIFO ghost: key hashes of objects recently evicted from the small queue -------- */

static int ghost_grow_map(po_cache *c) {
  size_t cap = c->ghost.map_cap ? c->ghost.map_cap * 2 : 1024;
  uint64_t *m = po__calloc(cap, sizeof(uint64_t));
  if (!m) return PO_ENOMEM;
  for (size_t i = 0; i < c->ghost.map_cap; i++) {
    uint64_t h = c->ghost.map[i];
    if (!h) continue;
    size_t j = (size_t)(h & (cap - 1));
    while (m[j]) j = (j + 1) & (cap - 1);
    m[j] = h;
  }
  c->meta_bytes += cap * sizeof(uint64_t);
  c->meta_bytes -= c->ghost.map_cap * sizeof(uint64_t);
  free(c->ghost.map);
  c->ghost.map = m;
  c->ghost.map_cap = cap;
  return 0;
}

static size_t ghost_find(const po_cache *c, uint64_t h) {
  if (!c->ghost.map_cap) return SIZE_MAX;
  size_t mask = c->ghost.map_cap - 1, j = (size_t)(h & mask);
  while (c->ghost.map[j]) {
    if (c->ghost.map[j] == h) return j;
    j = (j + 1) & mask;
  }
  return SIZE_MAX;
}

/* Backward-shift deletion keeps linear probing free of tombstones. */
static void ghost_map_delete(po_cache *c, size_t j) {
  size_t mask = c->ghost.map_cap - 1;
  uint64_t *m = c->ghost.map;
  m[j] = 0;
  size_t k = (j + 1) & mask;
  while (m[k]) {
    size_t home = (size_t)(m[k] & mask);
    /* move m[k] to j when j lies cyclically in [home, k) */
    if (((k - home) & mask) >= ((k - j) & mask)) {
      m[j] = m[k];
      m[k] = 0;
      j = k;
    }
    k = (k + 1) & mask;
  }
  c->ghost.map_count--;
}

/* Ring entries are (hash, size); a hash removed from the map (found again) leaves its ring
 * record behind, recognized later because the map no longer holds it. */
static void ghost_evict_to(po_cache *c, uint64_t limit) {
  while (c->ghost.bytes > limit && c->ghost.ring_len) {
    po__ghost_rec *r = &c->ghost.ring[c->ghost.ring_head];
    c->ghost.ring_head = (c->ghost.ring_head + 1) % c->ghost.ring_cap;
    c->ghost.ring_len--;
    if (r->live) {
      size_t j = ghost_find(c, r->hash);
      if (j != SIZE_MAX) ghost_map_delete(c, j);
      c->ghost.bytes -= r->size;
    }
  }
}

static void ghost_add(po_cache *c, uint64_t h, uint64_t size) {
  if (!h) h = 1;
  if (!c->ghost_budget || size > c->ghost_budget) return;
  if (ghost_find(c, h) != SIZE_MAX) return; /* already remembered */
  ghost_evict_to(c, c->ghost_budget - size);
  if ((c->ghost.map_count + 1) * 2 > c->ghost.map_cap && ghost_grow_map(c)) return;
  if (c->ghost.ring_len == c->ghost.ring_cap) {
    size_t cap = c->ghost.ring_cap ? c->ghost.ring_cap * 2 : 1024;
    po__ghost_rec *r = po__malloc(cap * sizeof(*r));
    if (!r) return;
    for (size_t i = 0; i < c->ghost.ring_len; i++)
      r[i] = c->ghost.ring[(c->ghost.ring_head + i) % c->ghost.ring_cap];
    c->meta_bytes += (cap - c->ghost.ring_cap) * sizeof(*r);
    free(c->ghost.ring);
    c->ghost.ring = r;
    c->ghost.ring_cap = cap;
    c->ghost.ring_head = 0;
  }
  size_t mask = c->ghost.map_cap - 1, j = (size_t)(h & mask);
  while (c->ghost.map[j]) j = (j + 1) & mask;
  c->ghost.map[j] = h;
  c->ghost.map_count++;
  size_t pos = (c->ghost.ring_head + c->ghost.ring_len) % c->ghost.ring_cap;
  c->ghost.ring[pos] = (po__ghost_rec){h, size & (UINT64_MAX >> 1), 1};
  c->ghost.ring_len++;
  c->ghost.bytes += size;
}

/* Removes h from the ghost; returns 1 when it was there. */
static int ghost_take(po_cache *c, uint64_t h) {
  if (!h) h = 1;
  size_t j = ghost_find(c, h);
  if (j == SIZE_MAX) return 0;
  ghost_map_delete(c, j);
  /* find its ring record (newest first: recent evictions come back soonest) */
  for (size_t i = c->ghost.ring_len; i-- > 0;) {
    po__ghost_rec *r = &c->ghost.ring[(c->ghost.ring_head + i) % c->ghost.ring_cap];
    if (r->live && r->hash == h) {
      r->live = 0;
      c->ghost.bytes -= r->size;
      break;
    }
  }
  return 1;
}

/* ---- leaving the cache ------------------------------------------------------------------- */

static void stats_on_leave(po_cache *c, const po__cache_entry *e) {
  c->bytes -= e->size;
  c->entries--;
  c->type_bytes[e->type] -= e->size;
  c->type_entries[e->type]--;
}

/* Unlinks e from table and queue, runs its free callback, and queues its memory for retirement.
 * why: 0 eviction, 1 removal, 2 expiration. */
static void entry_leave(po_cache *c, po__cache_entry *e, int why) {
  po__queue *q = queue_of(c, e);
  if (c->hand == e) c->hand = e->link.q.newer;
  q_unlink(q, e);
  table_remove(c, e);
  stats_on_leave(c, e);
  clr_flag(e, PO__E_LINKED);
  if (why == 0) {
    c->evictions++;
    c->type_evictions[e->type]++;
  } else {
    c->removals++;
    if (why == 2) c->expirations++;
  }
  po_cache_free_fn fn = c->free_fns[e->fn_index];
  if (fn) fn(e->value);
  e->link.r.next = c->pending_retire;
  c->pending_retire = e;
}

/* ---- policies: one eviction each; return 0, or PO_EBUSY when nothing is evictable --------- */

static int evict_sieve(po_cache *c) {
  po__queue *q = &c->q[0];
  po__cache_entry *e = c->hand ? c->hand : q->tail;
  /* every entry is seen at most twice: once to clear its bit, once to evict it */
  for (size_t steps = 0; e && steps <= 2 * q->count + 1; steps++) {
    if (pinned(e)) {
      /* in use: keep, and leave its bit for when it is unpinned */
    } else if (atomic_load_explicit(&e->ref, memory_order_relaxed)) {
      atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
    } else {
      c->hand = e->link.q.newer;
      entry_leave(c, e, 0);
      return 0;
    }
    e = e->link.q.newer ? e->link.q.newer : q->tail;
  }
  return PO_EBUSY;
}

static int evict_lru(po_cache *c) {
  for (po__cache_entry *e = c->q[0].tail; e; e = e->link.q.newer) {
    if (!pinned(e)) {
      entry_leave(c, e, 0);
      return 0;
    }
  }
  return PO_EBUSY;
}

static void move_to_main(po_cache *c, po__cache_entry *e, uint8_t freq) {
  q_unlink(&c->q[0], e);
  set_flag(e, PO__E_MAIN);
  q_push_head(&c->q[1], e);
  atomic_store_explicit(&e->ref, freq, memory_order_relaxed);
}

/* S3-FIFO: the small queue's tail goes to main when it was hit twice or more (else to the
 * ghost); main's tail is reinserted with frequency - 1 while it has any (2-bit counter). */
static int evict_s3fifo(po_cache *c) {
  po__queue *small = &c->q[0], *main_q = &c->q[1];
  size_t guard = 4 * (small->count + main_q->count) + 4;
  int from_main = main_q->bytes > c->main_budget || small->count == 0;
  while (guard-- > 0) {
    if (from_main) {
      po__cache_entry *e = main_q->tail;
      if (!e) {
        from_main = 0;
        if (!small->count) return PO_EBUSY;
        continue;
      }
      uint8_t f = atomic_load_explicit(&e->ref, memory_order_relaxed);
      if (pinned(e) || f >= 1) {
        q_unlink(main_q, e);
        q_push_head(main_q, e);
        if (!pinned(e))
          atomic_store_explicit(&e->ref, (uint8_t)((f > 3 ? 3 : f) - 1), memory_order_relaxed);
        continue;
      }
      entry_leave(c, e, 0);
      return 0;
    }
    po__cache_entry *e = small->tail;
    if (!e) {
      from_main = 1;
      continue;
    }
    uint8_t f = atomic_load_explicit(&e->ref, memory_order_relaxed);
    if (pinned(e) || f >= 2) {
      move_to_main(c, e, 0);
      continue;
    }
    ghost_add(c, po__cache_hash(e->key, e->keylen), e->size);
    entry_leave(c, e, 0);
    return 0;
  }
  return PO_EBUSY;
}

static int evict_one(po_cache *c) {
  switch (c->policy) {
    case PO_CACHE_LRU:
      return evict_lru(c);
    case PO_CACHE_S3FIFO:
      return evict_s3fifo(c);
    default:
      return evict_sieve(c);
  }
}

static void insert_into_queue(po_cache *c, po__cache_entry *e, uint64_t h) {
  atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
  if (c->policy == PO_CACHE_S3FIFO) {
    /* back from the ghost: straight to main. Objects as large as the small queue also go to
     * main (libCacheSim refuses them; a library cache should not). */
    if (ghost_take(c, h) || e->size >= c->small_budget) {
      set_flag(e, PO__E_MAIN);
      q_push_head(&c->q[1], e);
      return;
    }
  }
  q_push_head(&c->q[0], e);
}

/* ---- free-callback table ----------------------------------------------------------------- */

static int fn_index_of(po_cache *c, po_cache_free_fn fn, uint8_t *out) {
  if (!fn) {
    *out = 0;
    return 0;
  }
  for (unsigned i = 1; i < c->nfree_fns; i++) {
    if (c->free_fns[i] == fn) {
      *out = (uint8_t)i;
      return 0;
    }
  }
  if (c->nfree_fns >= 256) return PO_ERANGE;
  c->free_fns[c->nfree_fns] = fn;
  *out = (uint8_t)c->nfree_fns++;
  return 0;
}

/* ---- stats stripes ----------------------------------------------------------------------- */

static inline void stripe_add(po_cache *c, int rec, size_t idx) {
  po__stripe *s = &c->stripes[(unsigned)rec & (PO__STRIPES - 1)];
  if (rec >= 0 && rec < PO__STRIPES) {
    /* this thread owns the stripe: no read-modify-write needed */
    uint64_t v = atomic_load_explicit(&s->n[idx], memory_order_relaxed);
    atomic_store_explicit(&s->n[idx], v + 1, memory_order_relaxed);
  } else {
    atomic_fetch_add_explicit(&s->n[idx], 1, memory_order_relaxed);
  }
}
#define STRIPE_HIT(t) ((size_t)(t))
#define STRIPE_MISS(t) ((size_t)PO_CACHE_TYPE_COUNT + (size_t)(t))
#define STRIPE_MISS_UNTYPED ((size_t)(2 * PO_CACHE_TYPE_COUNT))

/* ---- create / destroy -------------------------------------------------------------------- */

const char *po_cache_policy_name(po_cache_policy p) {
  switch (p) {
    case PO_CACHE_SIEVE:
      return "sieve";
    case PO_CACHE_S3FIFO:
      return "s3fifo";
    case PO_CACHE_LRU:
      return "lru";
  }
  return "?";
}

static void set_budget_parts(po_cache *c) {
  c->small_budget = c->budget / 10;
  c->main_budget = c->budget - c->small_budget;
  c->ghost_budget = c->budget - c->small_budget; /* libCacheSim's default ghost ratio 0.9 */
}

int po_cache_create_ex(uint64_t budget_bytes, const po_cache_options *opts, po_cache **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  po_cache_options o;
  if (opts)
    o = *opts;
  else
    memset(&o, 0, sizeof(o));
  if (!budget_bytes || (unsigned)o.policy > PO_CACHE_LRU) return PO_EINVAL;
  po_cache *c = po__aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
  if (!c) return PO_ENOMEM;
  memset(c, 0, sizeof(*c));
  if (pthread_mutex_init(&c->lock, NULL)) {
    free(c);
    return PO_ENOMEM;
  }
  pthread_cond_init(&c->load_cv, NULL);
  c->budget = budget_bytes;
  c->policy = o.policy;
  c->now_ns = o.now_ns;
  c->clock_arg = o.clock_arg;
  c->clock_origin = cache_now_ns(c);
  c->user_enabled = !o.disabled;
  c->owner_enabled = 1;
  c->shrink_fraction = 0.5;
  atomic_store(&c->enabled, c->user_enabled);
  po__strlcpy(c->name, o.name && *o.name ? o.name : "cache", sizeof(c->name));
  c->nfree_fns = 1;
  set_budget_parts(c);
  c->meta_bytes = sizeof(*c);
  c->table = table_new(c, 64);
  if (!c->table) {
    pthread_mutex_destroy(&c->lock);
    free(c);
    return PO_ENOMEM;
  }
  atomic_store(&c->table_pub, c->table);
  *out = c;
  return 0;
}

int po_cache_create(uint64_t budget_bytes, po_cache_policy policy, po_cache **out) {
  po_cache_options o;
  memset(&o, 0, sizeof(o));
  o.policy = policy;
  return po_cache_create_ex(budget_bytes, &o, out);
}

void po_cache_destroy(po_cache *c) {
  if (!c) return;
  pthread_mutex_lock(&c->lock);
  po__cache_release_fn release = c->release;
  void *owner = c->owner;
  pthread_mutex_unlock(&c->lock);
  if (release) release(c, owner);
  pthread_mutex_lock(&c->lock);
  for (int qi = 0; qi < 2; qi++) {
    po__cache_entry *e = c->q[qi].head;
    while (e) {
      po__cache_entry *next = e->link.q.older;
      po_cache_free_fn fn = c->free_fns[e->fn_index];
      if (fn) fn(e->value);
      if (obj_class_size(e->keylen) > SLAB_MAX_OBJ) free(e);
      e = next;
    }
  }
  for (po__cache_entry *e = c->pending_retire; e;) {
    po__cache_entry *next = e->link.r.next;
    if (obj_class_size(e->keylen) > SLAB_MAX_OBJ) free(e);
    e = next;
  }
  for (po__cache_entry *e = c->limbo; e;) {
    po__cache_entry *next = e->link.r.next;
    if (obj_class_size(e->keylen) > SLAB_MAX_OBJ) free(e);
    e = next;
  }
  while (c->table_limbo) {
    po__table *t = c->table_limbo;
    c->table_limbo = t->limbo_next;
    big_free(t, table_bytes(t->cap));
  }
  while (c->slabs) {
    struct po__slab *s = c->slabs;
    c->slabs = s->next;
    big_free(s, s->size + sizeof(struct po__slab));
  }
  big_free(c->table, table_bytes(c->table->cap));
  free(c->ghost.map);
  free(c->ghost.ring);
  pthread_mutex_unlock(&c->lock);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->load_cv);
  free(c);
}

/* ---- put --------------------------------------------------------------------------------- */

/* Makes room for `size` bytes. Returns 0 or PO_EBUSY (pinned entries leave no room). */
static int make_room(po_cache *c, uint64_t size) {
  while (c->bytes + size > c->budget) {
    if (evict_one(c)) return PO_EBUSY;
  }
  return 0;
}

/* Inserts a prepared entry (key copied, fields set) under the lock. On error nothing changed. */
/* ---- distinct keys inserted: HyperLogLog (Flajolet et al. 2007) ------------------------------
 * 256 one-byte registers (standard error 1.04 / sqrt(256), about 6.5%): the trace of misses
 * (every load inserts) sized from counters alone could not tell 5,000 evictions of 40 keys from
 * 5,000 distinct keys. Updated under the lock, on insertion only (never on a hit). */
static void hll_add(uint8_t *reg, uint64_t h) {
  uint64_t x = mix64(h ^ 0x6a09e667f3bcc909ULL);
  size_t j = (size_t)(x >> 56);
  uint64_t rest = x << 8;
  uint8_t rank = (uint8_t)(rest ? __builtin_clzll(rest) + 1 : 57);
  if (rank > reg[j]) reg[j] = rank;
}

static uint64_t hll_estimate(const uint8_t *reg) {
  const double m = PO__CACHE_HLL_REGISTERS;
  double sum = 0;
  int zeros = 0;
  for (size_t j = 0; j < PO__CACHE_HLL_REGISTERS; j++) {
    sum += ldexp(1.0, -reg[j]);
    zeros += reg[j] == 0;
  }
  double e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
  if (e <= 2.5 * m && zeros) e = m * log(m / zeros); /* small range: linear counting */
  return (uint64_t)llround(e);
}

static int insert_locked(po_cache *c, po__cache_entry *e, uint64_t h) {
  if (e->size > c->budget) return PO_ETOOBIG;
  po__cache_entry *old = table_find(c->table, h, e->key, e->keylen);
  if (old && pinned(old)) return PO_EBUSY;
  if (c->budget - c->pinned_bytes < e->size) return PO_EBUSY; /* nothing changed yet */
  if (table_reserve_one(c)) return PO_ENOMEM;
  if (old) entry_leave(c, old, 1);
  if (make_room(c, e->size)) return PO_EBUSY;
  insert_into_queue(c, e, h);
  set_flag(e, PO__E_LINKED);
  c->bytes += e->size;
  c->entries++;
  c->type_bytes[e->type] += e->size;
  c->type_entries[e->type]++;
  c->insertions++;
  c->inserted_bytes += e->size;
  hll_add(c->inserted_hll, h);
  if (e->pins) {
    c->pinned_entries++;
    c->pinned_bytes += e->size;
  }
  table_put_slot(c->table, h, e);
  return 0;
}

static po__cache_entry *entry_prepare(po_cache *c, const void *key, size_t keylen, void *value,
                                      uint64_t size, po_resource_type type, uint8_t fn_index,
                                      uint64_t ttl_ns) {
  po__cache_entry *e = entry_alloc(c, keylen);
  if (!e) return NULL;
  e->value = value;
  e->size = size & PO__MAX_SIZE;
  e->keylen = (uint16_t)keylen;
  e->type = (uint8_t)type;
  e->fn_index = fn_index & 0xffu;
  e->expire_ms = expiry_of(c, ttl_ns);
  memcpy(e->key, key, keylen);
  return e;
}

static int valid_key(const void *key, size_t keylen) {
  return (key || !keylen) && keylen <= PO_CACHE_MAX_KEY;
}

int po_cache_put(po_cache *c, const void *key, size_t keylen, void *value, uint64_t size_bytes,
                 const po_cache_entry_opts *opts) {
  po_cache_entry_opts o;
  if (opts)
    o = *opts;
  else
    memset(&o, 0, sizeof(o));
  if (!c || !valid_key(key, keylen) || (unsigned)o.type >= PO_CACHE_TYPE_COUNT ||
      size_bytes > PO__MAX_SIZE)
    return PO_EINVAL;
  if (size_bytes > c->budget) return PO_ETOOBIG;
  pthread_mutex_lock(&c->lock);
  int rc;
  if (!atomic_load_explicit(&c->enabled, memory_order_relaxed)) {
    /* caching off: the value is taken and released at once, as if evicted immediately */
    pthread_mutex_unlock(&c->lock);
    if (o.free_fn) o.free_fn(value);
    return 0;
  }
  uint8_t fi;
  rc = fn_index_of(c, o.free_fn, &fi);
  if (!rc) {
    po__cache_entry *e = entry_prepare(c, key, keylen, value, size_bytes, o.type, fi, o.ttl_ns);
    if (!e) {
      rc = PO_ENOMEM;
    } else {
      if (o.pinned) e->pins = 1u;
      rc = insert_locked(c, e, po__cache_hash(key, keylen));
      if (rc) entry_dealloc(c, e);
    }
  }
  retire_flush(c);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

/* ---- get --------------------------------------------------------------------------------- */

/* Locked slow part of a hit or miss: LRU promotion and removal of an expired entry. */
static void get_slow(po_cache *c, po__cache_entry *e, int expired) {
  pthread_mutex_lock(&c->lock);
  if (e->flags & PO__E_LINKED) {
    if (expired) {
      if (!pinned(e)) entry_leave(c, e, 2);
    } else if (c->policy == PO_CACHE_LRU) {
      q_unlink(&c->q[0], e);
      q_push_head(&c->q[0], e);
    }
  }
  retire_flush(c);
  pthread_mutex_unlock(&c->lock);
}

static inline void mark_used(const po_cache *c, po__cache_entry *e) {
  uint8_t f = atomic_load_explicit(&e->ref, memory_order_relaxed);
  if (c->policy == PO_CACHE_S3FIFO) {
    if (f < 3) atomic_store_explicit(&e->ref, (uint8_t)(f + 1), memory_order_relaxed);
  } else if (!f) {
    atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
  }
}

/* po_cache_get in every case (arguments checked): claims the thread's epoch record on its first
 * read, reads under the lock when none is free, handles caching off, expired entries, LRU's move
 * to the front and keys of any length. */
static __attribute__((noinline)) int get_general(po_cache *c, const void *key, size_t keylen,
                                                 void **value) {
  int rec = po__ebr_enter();
  if (PO__UNLIKELY(!atomic_load_explicit(&c->enabled, memory_order_relaxed))) {
    po__ebr_exit(rec);
    stripe_add(c, rec, STRIPE_MISS_UNTYPED);
    return PO_ENOENT;
  }
  if (PO__UNLIKELY(rec < 0)) pthread_mutex_lock(&c->lock); /* no epoch slot: read under lock */
  const po__table *t = atomic_load_explicit(&c->table_pub, memory_order_acquire);
  po__cache_entry *e;
  if (keylen == 8) {
    uint64_t w;
    memcpy(&w, key, 8);
    e = table_find8(t, po__cache_hash8(w), w);
  } else {
    e = table_find(t, po__cache_hash(key, keylen), key, keylen);
  }
  int rc = PO_ENOENT;
  size_t stat = STRIPE_MISS_UNTYPED;
  if (e) {
    int expired = is_expired(c, e);
    if (PO__LIKELY(!expired)) {
      mark_used(c, e);
      *value = e->value;
      rc = 0;
      stat = STRIPE_HIT(e->type);
    } else {
      stat = STRIPE_MISS(e->type);
    }
    if (PO__UNLIKELY(expired || c->policy == PO_CACHE_LRU)) {
      if (rec < 0) pthread_mutex_unlock(&c->lock);
      get_slow(c, e, expired);
      if (rec < 0) pthread_mutex_lock(&c->lock);
    }
  }
  if (PO__UNLIKELY(rec < 0)) pthread_mutex_unlock(&c->lock);
  po__ebr_exit(rec);
  stripe_add(c, rec, stat);
  return rc;
}

/* Hot path. The common case is handled here with nothing else in the way, so that it compiles
 * to a short function (few registers to save, no call) and the processor overlaps the memory
 * accesses of consecutive gets: a thread that already has its epoch record and a stripe of its
 * own, an 8-byte key, a lock-free policy (SIEVE or S3-FIFO), caching on, and a hit on an entry
 * without a TTL, or a miss. Anything else is get_general's. */
int po_cache_get(po_cache *c, const void *key, size_t keylen, void **value) {
  if (PO__UNLIKELY(!c || !value || !valid_key(key, keylen))) return PO_EINVAL;
  int rec = po__ebr_my_record;
  if (PO__LIKELY(keylen == 8 && rec >= 0 && rec < PO__STRIPES && c->policy != PO_CACHE_LRU)) {
    uint64_t w;
    memcpy(&w, key, 8);
    uint64_t h = po__cache_hash8(w);
    po__ebr_announce(rec);
    if (PO__LIKELY(atomic_load_explicit(&c->enabled, memory_order_relaxed))) {
      const po__table *t = atomic_load_explicit(&c->table_pub, memory_order_acquire);
      po__cache_entry *e = table_find8(t, h, w);
      if (!e) {
        po__ebr_exit(rec);
        stripe_add(c, rec, STRIPE_MISS_UNTYPED);
        return PO_ENOENT;
      }
      if (PO__LIKELY(!e->expire_ms)) {
        mark_used(c, e);
        *value = e->value;
        size_t stat = STRIPE_HIT(e->type);
        po__ebr_exit(rec);
        stripe_add(c, rec, stat);
        return 0;
      }
    }
    po__ebr_exit(rec);
  }
  return get_general(c, key, keylen, value);
}

int po_cache_acquire(po_cache *c, const void *key, size_t keylen, void **value,
                     po_cache_handle **handle) {
  if (!c || !value || !handle || !valid_key(key, keylen)) return PO_EINVAL;
  *handle = NULL;
  int rec = po__ebr_enter();
  pthread_mutex_lock(&c->lock);
  int rc = PO_ENOENT;
  size_t stat = STRIPE_MISS_UNTYPED;
  if (atomic_load_explicit(&c->enabled, memory_order_relaxed)) {
    po__cache_entry *e = table_find(c->table, po__cache_hash(key, keylen), key, keylen);
    if (e && is_expired(c, e)) {
      stat = STRIPE_MISS(e->type);
      if (!pinned(e)) entry_leave(c, e, 2);
    } else if (e && e->pins < PO__MAX_PINS) {
      mark_used(c, e);
      if (c->policy == PO_CACHE_LRU) {
        q_unlink(&c->q[0], e);
        q_push_head(&c->q[0], e);
      }
      pins_add(c, e, 1);
      *value = e->value;
      *handle = (po_cache_handle *)e;
      stat = STRIPE_HIT(e->type);
      rc = 0;
    } else if (e) {
      rc = PO_EBUSY;
    }
  }
  retire_flush(c);
  pthread_mutex_unlock(&c->lock);
  po__ebr_exit(rec);
  stripe_add(c, rec, stat);
  return rc;
}

void po_cache_release(po_cache *c, po_cache_handle *handle) {
  if (!c || !handle) return;
  po__cache_entry *e = (po__cache_entry *)handle;
  pthread_mutex_lock(&c->lock);
  if (e->pins) pins_add(c, e, -1);
  if (!e->pins && (e->flags & PO__E_DETACHED)) {
    po_cache_free_fn fn = c->free_fns[e->fn_index];
    if (fn) fn(e->value);
    entry_dealloc(c, e); /* never published: no reader can hold it */
  }
  pthread_mutex_unlock(&c->lock);
}

/* ---- get or load ------------------------------------------------------------------------- */

struct po__pending {
  struct po__pending *next;
  uint64_t hash;
  const void *key; /* the loading caller's key (valid until done) */
  size_t keylen;
  int done, rc, waiters;
  po__cache_entry *e;
};

int po_cache_get_or_load(po_cache *c, const void *key, size_t keylen, po_cache_loader_fn loader,
                         void *ctx, void **value, po_cache_handle **handle) {
  if (!c || !loader || !value || !handle || !valid_key(key, keylen)) return PO_EINVAL;
  *handle = NULL;
  uint64_t h = po__cache_hash(key, keylen);
  pthread_mutex_lock(&c->lock);
  int enabled = atomic_load_explicit(&c->enabled, memory_order_relaxed);
  if (enabled) {
    po__cache_entry *e = table_find(c->table, h, key, keylen);
    if (e && is_expired(c, e) && !pinned(e)) {
      entry_leave(c, e, 2);
      retire_flush(c);
      e = NULL;
    }
    if (e && e->pins < PO__MAX_PINS) {
      mark_used(c, e);
      pins_add(c, e, 1);
      c->load_hits[e->type]++;
      *value = e->value;
      *handle = (po_cache_handle *)e;
      pthread_mutex_unlock(&c->lock);
      return 0;
    }
    for (struct po__pending *p = c->pending; p; p = p->next) {
      if (p->hash != h || p->keylen != keylen || memcmp(p->key, key, keylen)) continue;
      p->waiters++;
      c->coalesced++;
      while (!p->done) pthread_cond_wait(&c->load_cv, &c->lock);
      int rc = p->rc;
      if (!rc) {
        *value = p->e->value;
        *handle = (po_cache_handle *)p->e; /* the loader pinned it once per waiter */
      }
      if (--p->waiters == 0) free(p);
      pthread_mutex_unlock(&c->lock);
      return rc;
    }
  }
  struct po__pending *p = po__calloc(1, sizeof(*p));
  if (!p) {
    pthread_mutex_unlock(&c->lock);
    return PO_ENOMEM;
  }
  p->hash = h;
  p->key = key;
  p->keylen = keylen;
  if (enabled) {
    p->next = c->pending;
    c->pending = p;
  }
  pthread_mutex_unlock(&c->lock);

  po_cache_loaded ld;
  memset(&ld, 0, sizeof(ld));
  int rc = loader(key, keylen, ctx, &ld);
  int loaded = rc == 0;

  pthread_mutex_lock(&c->lock);
  c->loads++;
  if (enabled) {
    for (struct po__pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
      if (*pp == p) {
        *pp = p->next;
        break;
      }
    }
  }
  po__cache_entry *e = NULL;
  uint8_t fi = 0;
  if (loaded && ((unsigned)ld.type >= PO_CACHE_TYPE_COUNT || ld.size_bytes > PO__MAX_SIZE ||
                 p->waiters + 1 > (int)PO__MAX_PINS))
    rc = PO_EINVAL;
  if (!rc) rc = fn_index_of(c, ld.free_fn, &fi);
  if (!rc) {
    e = entry_prepare(c, key, keylen, ld.value, ld.size_bytes, ld.type, fi, ld.ttl_ns);
    if (!e) rc = PO_ENOMEM;
  }
  if (rc) {
    c->load_failures++;
    if (loaded && ld.free_fn) ld.free_fn(ld.value); /* loaded but not deliverable */
  } else {
    c->load_misses[ld.type] += 1 + (uint64_t)p->waiters;
    e->pins = (uint64_t)(1 + p->waiters) & PO__MAX_PINS;
    if (!enabled || insert_locked(c, e, h)) set_flag(e, PO__E_DETACHED);
    *value = e->value;
    *handle = (po_cache_handle *)e;
  }
  p->done = 1;
  p->rc = rc;
  p->e = e;
  retire_flush(c);
  if (p->waiters)
    pthread_cond_broadcast(&c->load_cv);
  else
    free(p);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

/* ---- remove, pin, clear, shrink ---------------------------------------------------------- */

int po_cache_remove(po_cache *c, const void *key, size_t keylen) {
  if (!c || !valid_key(key, keylen)) return PO_EINVAL;
  pthread_mutex_lock(&c->lock);
  po__cache_entry *e = table_find(c->table, po__cache_hash(key, keylen), key, keylen);
  int rc = !e ? PO_ENOENT : pinned(e) ? PO_EBUSY : 0;
  if (!rc) entry_leave(c, e, 1);
  retire_flush(c);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int po_cache_pin(po_cache *c, const void *key, size_t keylen) {
  if (!c || !valid_key(key, keylen)) return PO_EINVAL;
  pthread_mutex_lock(&c->lock);
  po__cache_entry *e = table_find(c->table, po__cache_hash(key, keylen), key, keylen);
  int rc = !e ? PO_ENOENT : e->pins == PO__MAX_PINS ? PO_ERANGE : 0;
  if (!rc) pins_add(c, e, 1);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int po_cache_unpin(po_cache *c, const void *key, size_t keylen) {
  if (!c || !valid_key(key, keylen)) return PO_EINVAL;
  pthread_mutex_lock(&c->lock);
  po__cache_entry *e = table_find(c->table, po__cache_hash(key, keylen), key, keylen);
  int rc = !e ? PO_ENOENT : !e->pins ? PO_ESTATE : 0;
  if (!rc) pins_add(c, e, -1);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

/* Removes unpinned entries matching type (-1 all) and, when only_expired, expired ones only. */
static size_t clear_locked(po_cache *c, int type, int only_expired) {
  size_t n = 0;
  for (int qi = 0; qi < 2; qi++) {
    po__cache_entry *e = c->q[qi].head;
    while (e) {
      po__cache_entry *next = e->link.q.older;
      if (!pinned(e) && (type < 0 || e->type == type) && (!only_expired || is_expired(c, e))) {
        entry_leave(c, e, only_expired ? 2 : 1);
        n++;
      }
      e = next;
    }
  }
  if (c->table->tombs > c->table->cap / 4) table_rebuild(c, c->table->live + 1);
  retire_flush(c);
  return n;
}

size_t po_cache_clear(po_cache *c) {
  if (!c) return 0;
  pthread_mutex_lock(&c->lock);
  size_t n = clear_locked(c, -1, 0);
  pthread_mutex_unlock(&c->lock);
  return n;
}

size_t po_cache_clear_type(po_cache *c, po_resource_type type) {
  if (!c || (unsigned)type >= PO_CACHE_TYPE_COUNT) return 0;
  pthread_mutex_lock(&c->lock);
  size_t n = clear_locked(c, (int)type, 0);
  pthread_mutex_unlock(&c->lock);
  return n;
}

size_t po_cache_purge_expired(po_cache *c) {
  if (!c) return 0;
  pthread_mutex_lock(&c->lock);
  size_t n = clear_locked(c, -1, 1);
  pthread_mutex_unlock(&c->lock);
  return n;
}

static void record_shrink(po_cache *c, uint64_t from, uint64_t to, const char *reason) {
  po__shrink_rec *r = &c->shrink_ring[c->shrinks % PO__SHRINKS];
  if (c->shrinks >= PO__SHRINKS) c->shrinks_dropped++;
  r->t_seconds = po__run_seconds();
  r->from_bytes = from;
  r->to_bytes = to;
  po__strlcpy(r->reason, reason && *reason ? reason : "unknown", sizeof(r->reason));
  c->shrinks++;
}

int po_cache_shrink(po_cache *c, uint64_t target_bytes, uint64_t *freed_bytes) {
  if (!c) return PO_EINVAL;
  pthread_mutex_lock(&c->lock);
  uint64_t from = c->bytes;
  int rc = 0;
  while (c->bytes > target_bytes) {
    if (evict_one(c)) {
      rc = PO_EBUSY;
      break;
    }
  }
  record_shrink(c, from, c->bytes, "manual");
  if (freed_bytes) *freed_bytes = from - c->bytes;
  retire_flush(c);
  pthread_mutex_unlock(&c->lock);
  return rc;
}

/* Pressure order: cheapest to rebuild first. */
static const po_resource_type host_order[PO_CACHE_TYPE_COUNT] = {
    PO_RESOURCE_OTHER, PO_RESOURCE_VISUALIZATION, PO_RESOURCE_DATA, PO_RESOURCE_MODEL,
    PO_RESOURCE_GPU};
static const po_resource_type gpu_order[PO_CACHE_TYPE_COUNT] = {
    PO_RESOURCE_GPU, PO_RESOURCE_OTHER, PO_RESOURCE_VISUALIZATION, PO_RESOURCE_DATA,
    PO_RESOURCE_MODEL};

/* Evicts entries of one type, oldest first, not recently used before recently used. */
static void shrink_type(po_cache *c, int type, uint64_t target) {
  for (int pass = 0; pass < 2 && c->bytes > target; pass++) {
    for (int qi = 0; qi < 2 && c->bytes > target; qi++) {
      po__cache_entry *e = c->q[qi].tail;
      while (e && c->bytes > target) {
        po__cache_entry *newer = e->link.q.newer;
        if (!pinned(e) && e->type == type &&
            (pass || !atomic_load_explicit(&e->ref, memory_order_relaxed)))
          entry_leave(c, e, 0);
        e = newer;
      }
    }
  }
}

uint64_t po__cache_shrink_typed(po_cache *c, uint64_t target, const char *reason) {
  pthread_mutex_lock(&c->lock);
  uint64_t from = c->bytes;
  if (c->bytes > target) {
    const po_resource_type *order =
        reason && strcmp(reason, "gpu_memory") == 0 ? gpu_order : host_order;
    for (int i = 0; i < PO_CACHE_TYPE_COUNT && c->bytes > target; i++)
      shrink_type(c, (int)order[i], target);
  }
  record_shrink(c, from, c->bytes, reason);
  retire_flush(c);
  uint64_t freed = from - c->bytes;
  pthread_mutex_unlock(&c->lock);
  return freed;
}

uint64_t po_cache_on_pressure(po_cache *c, const char *reason) {
  if (!c) return 0;
  pthread_mutex_lock(&c->lock);
  double frac = c->shrink_fraction;
  pthread_mutex_unlock(&c->lock);
  uint64_t target = (uint64_t)((double)c->budget * frac);
  return po__cache_shrink_typed(c, target, reason);
}

/* ---- switches, owner and stats ----------------------------------------------------------- */

/* Lock held. */
static void apply_enabled(po_cache *c) {
  atomic_store(&c->enabled, c->user_enabled && c->owner_enabled);
}

void po_cache_set_enabled(po_cache *c, int on) {
  if (!c) return;
  pthread_mutex_lock(&c->lock);
  c->user_enabled = on != 0;
  apply_enabled(c);
  pthread_mutex_unlock(&c->lock);
}

int po__cache_set_owner(po_cache *c, void *owner, po__cache_release_fn release, int enabled,
                        double shrink_fraction) {
  pthread_mutex_lock(&c->lock);
  int rc = 0;
  if (owner && c->owner && c->owner != owner) {
    rc = PO_EBUSY;
  } else {
    c->owner = owner;
    c->release = owner ? release : NULL;
    c->owner_enabled = owner ? enabled != 0 : 1;
    c->shrink_fraction =
        owner && shrink_fraction >= 0.0 && shrink_fraction <= 1.0 ? shrink_fraction : 0.5;
    apply_enabled(c);
  }
  pthread_mutex_unlock(&c->lock);
  return rc;
}

void *po__cache_owner(po_cache *c) {
  pthread_mutex_lock(&c->lock);
  void *o = c->owner;
  pthread_mutex_unlock(&c->lock);
  return o;
}

int po_cache_enabled(const po_cache *c) {
  return c ? atomic_load(&((po_cache *)c)->enabled) : 0;
}

void po_cache_get_stats(const po_cache *cc, po_cache_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof(*out));
  if (!cc) return;
  po_cache *c = (po_cache *)cc;
  pthread_mutex_lock(&c->lock);
  out->budget_bytes = c->budget;
  out->bytes = c->bytes;
  out->entries = c->entries;
  out->pinned_entries = c->pinned_entries;
  out->evictions = c->evictions;
  out->removals = c->removals;
  out->expirations = c->expirations;
  out->loads = c->loads;
  out->load_failures = c->load_failures;
  out->coalesced_loads = c->coalesced;
  out->shrinks = c->shrinks;
  out->shrinks_dropped = c->shrinks_dropped;
  out->metadata_bytes = c->meta_bytes;
  out->insertions = c->insertions;
  out->inserted_bytes = c->inserted_bytes;
  out->distinct_keys_inserted = hll_estimate(c->inserted_hll);
  for (int t = 0; t < PO_CACHE_TYPE_COUNT; t++) {
    po_cache_type_stats *ts = &out->per_type[t];
    ts->hits = c->load_hits[t];
    ts->misses = c->load_misses[t];
    for (int s = 0; s < PO__STRIPES; s++) {
      ts->hits += atomic_load_explicit(&c->stripes[s].n[STRIPE_HIT(t)], memory_order_relaxed);
      ts->misses += atomic_load_explicit(&c->stripes[s].n[STRIPE_MISS(t)], memory_order_relaxed);
    }
    ts->evictions = c->type_evictions[t];
    ts->bytes = c->type_bytes[t];
    ts->entries = c->type_entries[t];
    out->hits += ts->hits;
    out->misses += ts->misses;
  }
  for (int s = 0; s < PO__STRIPES; s++)
    out->misses +=
        atomic_load_explicit(&c->stripes[s].n[STRIPE_MISS_UNTYPED], memory_order_relaxed);
  pthread_mutex_unlock(&c->lock);
  uint64_t lookups = out->hits + out->misses;
  out->hit_ratio = lookups ? (double)out->hits / (double)lookups : 0.0;
}

void po__cache_snapshot_take(po_cache *c, po__cache_snapshot *out) {
  memset(out, 0, sizeof *out);
  po_cache_get_stats(c, &out->stats);
  pthread_mutex_lock(&c->lock);
  memcpy(out->name, c->name, sizeof out->name);
  out->policy = c->policy;
  out->enabled = atomic_load(&c->enabled);
  size_t n = c->shrinks < PO__SHRINKS ? (size_t)c->shrinks : PO__SHRINKS;
  size_t first = c->shrinks < PO__SHRINKS ? 0 : (size_t)(c->shrinks % PO__SHRINKS);
  for (size_t i = 0; i < n; i++) out->shrinks[i] = c->shrink_ring[(first + i) % PO__SHRINKS];
  out->nshrinks = n;
  pthread_mutex_unlock(&c->lock);
}
