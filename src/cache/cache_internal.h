/* Private layout of the cache (cache/cache.c, cache/cache_ebr.c). */
#ifndef PO__CACHE_INTERNAL_H
#define PO__CACHE_INTERNAL_H

#include "base/base.h"
#include "cache/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- epoch-based reclamation (process-wide reader records) ---- */

#define PO__EBR_RECORDS 256
typedef struct {
  _Alignas(64) _Atomic uint64_t active; /* 0 = not reading, else the announced epoch */
  _Atomic int used;
} po__ebr_record;
/* Hidden: the hot path reaches them directly, not through the GOT (-fPIC). */
#define PO__HIDDEN __attribute__((visibility("hidden")))
extern PO__HIDDEN po__ebr_record po__ebr_records[PO__EBR_RECORDS];
extern PO__HIDDEN _Atomic uint64_t po__ebr_epoch;
/* -1: no record yet; -2: none was free (reads fall back to the lock) */
extern PO__HIDDEN __thread int po__ebr_my_record __attribute__((tls_model("initial-exec")));
int po__ebr_enter_slow(void);

/* 1 when the writers fence every reader with membarrier(2) before they scan the records, so a
 * reader's announcement needs no fence of its own (set once, before main: see cache_ebr.c). */
extern PO__HIDDEN int po__ebr_asymmetric;

/* Announces the global epoch in record i, visible before any table read that follows: either
 * the writers' membarrier orders it (a plain store and a compiler barrier here), or a seq_cst
 * store does (a locked instruction, on every read). */
static inline void po__ebr_announce(int i) {
  uint64_t e = atomic_load_explicit(&po__ebr_epoch, memory_order_acquire);
  if (PO__LIKELY(po__ebr_asymmetric)) {
    atomic_store_explicit(&po__ebr_records[i].active, e, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
  } else {
    atomic_store_explicit(&po__ebr_records[i].active, e, memory_order_seq_cst);
  }
}

/* Enters a read section: returns this thread's record index, or -1 when every record is taken
 * (the caller then reads under the cache lock). Hot path: one store to the thread's own line. */
static inline int po__ebr_enter(void) {
  int i = po__ebr_my_record;
  if (PO__UNLIKELY(i < 0)) return po__ebr_enter_slow();
  po__ebr_announce(i);
  return i;
}
static inline void po__ebr_exit(int rec) {
  if (rec >= 0) atomic_store_explicit(&po__ebr_records[rec].active, 0, memory_order_release);
}
/* Advances the global epoch; returns the epoch objects retired now are tagged with. */
uint64_t po__ebr_advance(void);
/* Smallest epoch a reader currently announces (UINT64_MAX when none reads). */
uint64_t po__ebr_min_active(void);

/* ---- entries ---- */

enum { PO__E_LINKED = 1, PO__E_MAIN = 2, PO__E_DETACHED = 4 };

typedef struct po__cache_entry po__cache_entry;
/* 40 bytes + key. Writer-only fields first; the fields a hit reads last, next to the key. */
struct po__cache_entry {
  union {
    struct {
      po__cache_entry *newer, *older; /* queue links (head = newest) */
    } q;
    struct {
      po__cache_entry *next; /* retirement list */
      uint64_t epoch;
    } r;
  } link;
  /* writer-only word (under the lock) */
  uint64_t size : 40;    /* declared bytes (immutable; at most 1 TiB) */
  uint64_t fn_index : 8; /* free callback slot (immutable) */
  uint64_t pins : 13;    /* pin count */
  uint64_t flags : 3;    /* PO__E_* */
  /* what a hit reads */
  void *value;         /* immutable */
  uint16_t keylen;     /* immutable */
  _Atomic uint8_t ref; /* SIEVE visited bit / S3-FIFO frequency (relaxed) */
  uint8_t type;        /* immutable */
  uint32_t expire_ms;  /* ms since cache creation + 1; 0 = never (immutable) */
  unsigned char key[];
};

/* ---- table ---- */

typedef struct po__table {
  size_t cap, live, tombs;
  struct po__table *limbo_next;
  uint64_t retire_epoch;
  _Atomic uint64_t slots[]; /* 0 empty, 1 tombstone, else tag16 | ptr48 */
} po__table;

typedef struct po__queue {
  po__cache_entry *head, *tail;
  uint64_t bytes;
  size_t count;
} po__queue;

typedef struct po__ghost_rec {
  uint64_t hash;
  uint64_t size : 63;
  uint64_t live : 1;
} po__ghost_rec;

#define PO__MAX_SIZE ((1ULL << 40) - 1)
#define PO__MAX_PINS 8191u

#define PO__STRIPES 64
typedef struct po__stripe {
  _Alignas(64) _Atomic uint64_t n[16]; /* hits[5], misses[5], untyped misses */
} po__stripe;

struct po__pending;
struct po__slab;

#define PO__CACHE_HLL_REGISTERS 256

struct po_cache {
  /* read-mostly, shared with readers */
  _Alignas(64) _Atomic(po__table *) table_pub;
  _Atomic int enabled;
  po_cache_policy policy;
  uint64_t (*now_ns)(void *);
  void *clock_arg;
  uint64_t clock_origin;
  po_cache_free_fn free_fns[256];

  /* writers, under lock */
  _Alignas(64) pthread_mutex_t lock;
  pthread_cond_t load_cv;
  po__table *table;
  uint64_t budget, bytes, entries, insertions;
  uint64_t pinned_entries, pinned_bytes;
  uint64_t small_budget, main_budget, ghost_budget;
  po__queue q[2]; /* SIEVE/LRU: q[0]; S3-FIFO: q[0] small, q[1] main */
  po__cache_entry *hand;
  struct {
    uint64_t *map;
    size_t map_cap, map_count;
    po__ghost_rec *ring;
    size_t ring_cap, ring_head, ring_len;
    uint64_t bytes;
  } ghost;
  unsigned nfree_fns;
  po__cache_entry *pending_retire, *limbo, *limbo_tail;
  size_t limbo_count;
  po__table *table_limbo, *table_limbo_tail;
  struct po__slab *slabs;
  size_t nslabs;
  void *free_objs[512 / 8 + 1];
  uint64_t meta_bytes, meta_live_bytes;
  uint64_t evictions, removals, expirations, loads, load_failures, coalesced;
  uint64_t type_bytes[PO_CACHE_TYPE_COUNT], type_entries[PO_CACHE_TYPE_COUNT];
  uint64_t type_evictions[PO_CACHE_TYPE_COUNT];
  uint64_t load_hits[PO_CACHE_TYPE_COUNT], load_misses[PO_CACHE_TYPE_COUNT];
  struct po__pending *pending;
  uint64_t shrinks, shrinks_dropped;
  po__shrink_rec shrink_ring[PO__SHRINKS];
  /* the trace of insertions, for a working-set estimate: bytes, and a HyperLogLog of the keys */
  uint64_t inserted_bytes;
  uint8_t inserted_hll[PO__CACHE_HLL_REGISTERS];
  int user_enabled, owner_enabled;
  char name[64];

  /* the owner (the optimizer's attachment), under lock */
  void *owner;
  po__cache_release_fn release;
  double shrink_fraction;

  po__stripe stripes[PO__STRIPES];
};

uint64_t po__cache_hash(const void *key, size_t len);

/* The 8-byte key's hash (the common fixed-width key), inline for the hit path: one round of the
 * finalizer is a full avalanche. po__cache_hash gives the same value. */
static inline uint64_t po__cache_hash8(uint64_t w) {
  uint64_t x = w ^ 0x9e3779b97f4a7c15ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

#endif
