/* libperfopt-heap: private interface between the shim's files. Only libc, libdl, pthread and
 * libunwind: the shim runs inside someone else's process, before main, and must not allocate
 * through malloc for itself. */
#ifndef PO_HEAP_SHIM_H
#define PO_HEAP_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "base/heap_format.h"

#define SHIM_HIDDEN __attribute__((visibility("hidden")))
#define SHIM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHIM_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define RELAXED __ATOMIC_RELAXED
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* A counter only its owner writes: a plain load and store, never a locked instruction. */
#define OWNED_ADD(p, v) STORE((p), LOAD(p) + (v))
#define SHARED_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)

/* Per-thread state (initial-exec TLS: the shim is loaded at start-up by LD_PRELOAD). */
typedef struct shim_thread {
  po_heap_thread *slot; /* its counters: a slot of its own, or &proc->shared */
  int fast;             /* 1: attached, slot claimed, not inside the tracker: the hot path */
  int in_hook;          /* depth inside the tracker (its allocations are not counted) */
  int shared;           /* slot is the process's shared slot: atomic read-modify-write */
  int exiting;          /* its slot was released at thread exit */
  int64_t until_sample; /* sampled mode: bytes left before the next sample */
  uint64_t rng;
} shim_thread;

extern __thread shim_thread shim_ts __attribute__((tls_model("initial-exec")));

/* Process-wide state, fixed after attach (the fork child rewrites it before any other thread). */
typedef struct shim_global {
  int state; /* 0 not started, 1 starting, 2 attached, 3 pass-through (no usable segment) */
  int mode;  /* PO_HEAP_MODE_* */
  int unwind_libunwind_only;
  uint64_t interval; /* sampled mode: mean bytes between samples */
  po_heap_header *hdr;
  po_heap_proc *proc;
  int proc_index;
  uintptr_t self_lo, self_hi;         /* the shim's own code: skipped in stacks */
  uint64_t cookie;                    /* allocation header tag key */
  size_t (*real_usable_size)(void *); /* glibc's, for blocks allocated before the shim */
} shim_global;

extern shim_global shim_g SHIM_HIDDEN;

/* attach.c */
void shim_start(void) SHIM_HIDDEN;           /* attaches once (safe to call from any hook) */
void shim_thread_claim(void) SHIM_HIDDEN;    /* gives this thread its counters */
void shim_modules_refresh(void) SHIM_HIDDEN; /* appends newly loaded objects to the module map */
uint64_t shim_now_ns(void) SHIM_HIDDEN;      /* CLOCK_MONOTONIC since the segment's t0 */

/* stack.c: the return addresses of the current stack above the shim, innermost first. Sets
 * *truncated when there were more than max. Counts a libunwind fallback in the proc. */
uint32_t shim_stack(uint64_t *frames, uint32_t max, int *truncated) SHIM_HIDDEN;
void shim_stack_forget(void) SHIM_HIDDEN; /* after dlclose: cached frame verdicts are stale */

/* sites.c */
uint32_t shim_site_for_stack(void) SHIM_HIDDEN; /* site index + 1, or 0 when not recorded */
void shim_site_alloc(uint32_t site, int64_t bytes, int64_t count) SHIM_HIDDEN;
void shim_site_free(uint32_t site, int64_t bytes, int64_t count) SHIM_HIDDEN;
/* Sampled mode: bytes until the next sample (exponential with mean interval). */
int64_t shim_sample_draw(void) SHIM_HIDDEN;
/* Sampled mode: an allocation of n bytes stands for this many bytes (n / (1 - exp(-n/T))). */
uint64_t shim_sample_weight(uint64_t n) SHIM_HIDDEN;

#endif
