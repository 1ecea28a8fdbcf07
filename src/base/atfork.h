/* One ordered set of fork handlers for the whole library.
 *
 * pthread_atfork runs prepare handlers in the reverse order of registration, and modules register
 * in whatever order they are first used; locks that nest at run time (user cleanup code runs under
 * the memory module's action lock and may call the sampler or the profiler) must be taken around
 * fork in their nesting order, or a fork racing a cleanup deadlocks. Here each module registers
 * with a rank: prepare runs by ascending rank (outermost locks first), parent and child by
 * descending rank. Modules register from a constructor, so the handlers exist before any lock can
 * be held. */
#ifndef PO__ATFORK_H
#define PO__ATFORK_H

/* Ranks, outermost first. */
enum {
  PO__FORK_RANK_ACTIONS = 10, /* memory: the action lock (user code runs under it) */
  PO__FORK_RANK_SAMPLER = 20, /* sampler: probe lock, then state lock */
  PO__FORK_RANK_GPU = 30,     /* GPU sessions */
  PO__FORK_RANK_MEMORY = 40,  /* memory: the registry lock */
  PO__FORK_RANK_PROFILE = 50, /* profiler: thread list and site registry */
  PO__FORK_RANK_SERVER = 60,  /* live endpoint: its registry (a child closes inherited sockets) */
  PO__FORK_RANK_CACHE = 70    /* cache: the child registers for membarrier again */
};

/* Registers one module's handlers (any may be NULL). At most 16 registrations; returns 0 or
 * PO_EFULL. */
int po__atfork_add(int rank, void (*prepare)(void), void (*parent)(void), void (*child)(void));

#endif
