/* The heap tracker's shared-memory segment: the one format both sides include (the LD_PRELOAD
 * shim heap/heap_shim.c writes it, src/monitor/heap_session.c reads it). Definitions only, no code.
 *
 * The parent (po_heap_session_create) makes a memfd of PO_HEAP_SEGMENT_BYTES, writes the header
 * and passes the fd to the child as PERFOPT_HEAP_FD=<fd>:<nonce>. Every process that loads the
 * shim with that environment (the child, its forks, the images it execs) maps the fd and claims
 * one process slot. Everything a process records lives in its slot, so the parent reads it while
 * the process runs and after it died by any signal: nothing is written at exit that matters.
 *
 * Layout (all sizes fixed by this version; the header repeats them so a reader can reject a
 * segment that does not match):
 *
 *   [0, 4096)                         po_heap_header
 *   [4096 + i * sizeof(po_heap_proc)) po_heap_proc slot i, i < PO_HEAP_MAX_PROCS
 *
 * Concurrency: counters are written by their owner with relaxed atomics (plain loads and stores
 * for per-thread counters, atomic read-modify-write for process-wide ones) and read with relaxed
 * loads; a value read while the process runs is a consistent snapshot of each counter, not of the
 * set. Sites and modules are published by writing the entry first and its `ready`/count word last
 * (release). A writer killed half-way leaves an entry whose ready word is 0: the reader skips it
 * and counts it. A reader must treat every field as hostile (indices, counts, strings without NUL).
 *
 * Units: bytes are requested bytes (what the program asked malloc for), times are nanoseconds of
 * CLOCK_MONOTONIC since the header's t0_ns.
 */
#ifndef PO_HEAP_FORMAT_H
#define PO_HEAP_FORMAT_H

#include <stdint.h>

#define PO_HEAP_MAGIC 0x3150414548504f50ull /* "POPHEAP1" read as little-endian bytes */
#define PO_HEAP_VERSION 1u

#define PO_HEAP_HEADER_BYTES 4096u
#define PO_HEAP_MAX_PROCS 64u    /* process slots (fork and exec each take one) */
#define PO_HEAP_MAX_THREADS 128u /* per-thread counter slots per process (then shared) */
#define PO_HEAP_MAX_SITES 4096u  /* call sites per process (open addressing, power of two) */
#define PO_HEAP_MAX_FRAMES 32u   /* frames kept per site (deeper stacks are truncated) */
#define PO_HEAP_MAX_MODULES 256u /* loaded objects per process */
#define PO_HEAP_PATH_BYTES 256u
#define PO_HEAP_BUILD_ID_BYTES 20u
#define PO_HEAP_HIST_BUCKETS 48u /* bucket 0: size 0; bucket b: [2^(b-1), 2^b) bytes */

/* Process slot states (po_heap_proc.state). */
enum {
  PO_HEAP_SLOT_FREE = 0,    /* never used */
  PO_HEAP_SLOT_CLAIMED = 1, /* being initialized by its process */
  PO_HEAP_SLOT_ACTIVE = 2,  /* the process runs (or died without exiting normally) */
  PO_HEAP_SLOT_EXITED = 3,  /* the process ran its exit path (exit, return from main) */
  PO_HEAP_SLOT_EXECED = 4   /* the process replaced its image: a later slot has the same pid */
};

/* Modes (po_heap_header.mode), the values of po_heap_mode. */
enum { PO_HEAP_MODE_EXACT = 0, PO_HEAP_MODE_SAMPLED = 1, PO_HEAP_MODE_FULL = 2 };

typedef struct po_heap_header {
  uint64_t magic;   /* PO_HEAP_MAGIC */
  uint32_t version; /* PO_HEAP_VERSION */
  uint32_t header_bytes;
  uint64_t total_bytes; /* the whole segment */
  uint64_t nonce;       /* also in PERFOPT_HEAP_FD: proves the fd is this segment */
  uint32_t mode;        /* PO_HEAP_MODE_* */
  uint32_t max_procs, max_threads, max_sites, max_frames, max_modules;
  uint32_t proc_bytes;            /* sizeof(po_heap_proc) */
  uint32_t hist_buckets;          /* PO_HEAP_HIST_BUCKETS */
  uint64_t sample_interval_bytes; /* sampled mode: mean bytes between samples */
  uint64_t t0_ns;                 /* CLOCK_MONOTONIC at session creation */
  uint32_t procs_claimed;         /* slots handed out (atomic; may exceed max_procs) */
  uint32_t pad0;
  uint64_t procs_dropped; /* processes that found no free slot (atomic) */
} po_heap_header;

/* Per-thread counters: written by the owning thread only (plain relaxed stores), never reset. A
 * slot whose thread exited keeps its sums and is adopted by the next new thread, so the process
 * totals are the sums over all slots plus `shared`. */
typedef struct po_heap_thread {
  uint32_t owner_tid; /* 0 = free for adoption */
  uint32_t pad0;
  uint64_t alloc_count, alloc_bytes, free_count, free_bytes;
  uint64_t hist[PO_HEAP_HIST_BUCKETS];
  uint64_t pad1[2];
} po_heap_thread;

/* A call site: the stack (innermost first: return addresses) and its counters. Identified by a
 * 64-bit hash of the frames; key 0 = empty. In sampled mode the counters are unbiased estimates:
 * a sampled allocation of n bytes counts n / p bytes and 1 / p allocations, p = 1 - exp(-n / T).
 *
 * Bytes at the process peak without copying the table at each peak: every change to a site first
 * compares its epoch with the process's peak_epoch (incremented at each new peak, after the
 * change that made it); when they differ the site has not changed since the last peak, so its
 * live_bytes is its value at that peak and is saved in bytes_at_peak. A reader takes
 * (epoch == proc.peak_epoch) ? bytes_at_peak : live_bytes. */
typedef struct po_heap_site {
  uint64_t key;   /* stack hash, 0 = empty slot */
  uint32_t ready; /* 1 once frames[] and depth are written */
  uint32_t depth; /* frames used (<= PO_HEAP_MAX_FRAMES) */
  uint64_t frames[PO_HEAP_MAX_FRAMES];
  uint64_t alloc_count, alloc_bytes;
  int64_t live_count, live_bytes;
  int64_t bytes_at_peak; /* live_bytes when the process last reached its peak (see below) */
  uint64_t epoch;        /* the process peak_epoch when bytes_at_peak was last written */
  uint64_t pad[2];
} po_heap_site;

/* A loaded object, as dl_iterate_phdr saw it: enough to symbolize after the process is gone. */
typedef struct po_heap_module {
  uint64_t bias;   /* dlpi_addr: run-time address = bias + ELF p_vaddr */
  uint64_t lo, hi; /* run-time range of its PT_LOAD segments */
  uint32_t ready;  /* 1 once written */
  uint32_t build_id_len;
  uint8_t build_id[PO_HEAP_BUILD_ID_BYTES];
  uint32_t pad0;
  char path[PO_HEAP_PATH_BYTES]; /* NUL-terminated (truncated paths counted in the proc) */
} po_heap_module;

/* One process (one image: exec starts a new slot). */
typedef struct po_heap_proc {
  uint32_t state; /* PO_HEAP_SLOT_* */
  uint32_t mode;
  int32_t pid, ppid;
  int32_t parent_slot; /* the slot it forked or exec'd from; -1 none */
  uint32_t origin;     /* 0 = started, 1 = fork, 2 = exec */
  uint64_t start_ns;   /* since t0 */
  uint64_t end_ns;     /* exit or exec time; 0 while running or after a crash */
  char exe[PO_HEAP_PATH_BYTES];
  /* process-wide counters (atomic read-modify-write) */
  int64_t live_bytes;      /* allocated - freed, requested bytes */
  int64_t peak_bytes;      /* highest live_bytes */
  uint64_t peak_ns;        /* when peak_bytes was reached (since t0) */
  uint64_t peak_epoch;     /* incremented at each new peak (see po_heap_site.epoch) */
  int64_t inherited_bytes; /* live bytes it started with (a fork child's copy of its parent's) */
  uint64_t mmap_count, munmap_count, mmap_bytes, munmap_bytes;
  int64_t mmap_live_bytes, mmap_peak_bytes;
  /* what could not be recorded exactly: every drop is counted */
  uint64_t sites_dropped;    /* sampled/recorded allocations whose site table was full */
  uint64_t stacks_truncated; /* stacks deeper than PO_HEAP_MAX_FRAMES */
  uint64_t threads_shared;   /* threads that used the shared counters (no free thread slot) */
  uint64_t modules_dropped;  /* loaded objects beyond PO_HEAP_MAX_MODULES */
  uint64_t paths_truncated;  /* module or exe paths longer than PO_HEAP_PATH_BYTES - 1 */
  uint64_t foreign_frees;    /* free/realloc of a pointer the shim did not allocate */
  uint64_t untracked_allocs; /* allocations made inside the tracker itself (not counted) */
  uint64_t sampled_allocs;   /* sampled mode: allocations that were sampled */
  uint64_t unwind_fallbacks; /* stacks taken with libunwind (no frame pointers) */
  uint64_t too_large;        /* requests above PO_HEAP_SIZE_MAX, refused with ENOMEM */
  uint32_t threads_used;     /* thread slots ever claimed (atomic) */
  uint32_t sites_used;       /* site slots claimed (atomic) */
  uint32_t module_count;     /* modules[0..module_count) are claimed (atomic) */
  uint32_t pad0;
  uint64_t pad1[8];
  po_heap_thread shared; /* threads without a slot: atomic read-modify-write */
  po_heap_thread threads[PO_HEAP_MAX_THREADS];
  po_heap_module modules[PO_HEAP_MAX_MODULES];
  po_heap_site sites[PO_HEAP_MAX_SITES];
} po_heap_proc;

/* The largest request the shim tracks: the header packs the size in 44 bits. */
#define PO_HEAP_SIZE_BITS 44u
#define PO_HEAP_SIZE_MAX ((1ull << PO_HEAP_SIZE_BITS) - 1)

#define PO_HEAP_SEGMENT_BYTES \
  ((uint64_t)PO_HEAP_HEADER_BYTES + (uint64_t)PO_HEAP_MAX_PROCS * sizeof(po_heap_proc))

/* The environment that connects the shim to a session. */
#define PO_HEAP_ENV_FD "PERFOPT_HEAP_FD"           /* "<fd>:<nonce as 16 hex digits>" */
#define PO_HEAP_ENV_MODE "PERFOPT_HEAP_MODE"       /* exact | sampled | full */
#define PO_HEAP_ENV_INTERVAL "PERFOPT_HEAP_SAMPLE" /* sampled mode's mean interval in bytes */
#define PO_HEAP_ENV_UNWIND "PERFOPT_HEAP_UNWIND"   /* auto (default) | fp | libunwind */

#endif
