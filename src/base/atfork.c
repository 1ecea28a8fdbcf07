/* The library's fork handlers, run in rank order (see base/atfork.h). */
#include "base/atfork.h"

#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_HOOKS 16

typedef struct hook {
  int rank;
  void (*prepare)(void), (*parent)(void), (*child)(void);
} hook;

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static hook hooks[MAX_HOOKS]; /* sorted by rank */
static int nhooks;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static _Atomic int cached_pid; /* 0: not read yet */

static void run_prepare(void) {
  pthread_mutex_lock(&hooks_lock); /* held across fork: no registration races it */
  for (int i = 0; i < nhooks; i++)
    if (hooks[i].prepare) hooks[i].prepare();
}

static void run_parent(void) {
  for (int i = nhooks - 1; i >= 0; i--)
    if (hooks[i].parent) hooks[i].parent();
  pthread_mutex_unlock(&hooks_lock);
}

static void run_child(void) {
  atomic_store_explicit(&cached_pid, (int)getpid(), memory_order_relaxed);
  for (int i = nhooks - 1; i >= 0; i--)
    if (hooks[i].child) hooks[i].child();
  pthread_mutex_unlock(&hooks_lock);
}

static void install(void) {
  pthread_atfork(run_prepare, run_parent, run_child);
}

int po__pid(void) {
  int pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
  if (PO__LIKELY(pid)) return pid;
  pthread_once(&installed, install); /* so that a forked child refreshes it */
  pid = (int)getpid();
  atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
  return pid;
}

int po__atfork_add(int rank, void (*prepare)(void), void (*parent)(void), void (*child)(void)) {
  pthread_once(&installed, install);
  pthread_mutex_lock(&hooks_lock);
  if (nhooks == MAX_HOOKS) {
    pthread_mutex_unlock(&hooks_lock);
    return PO_EFULL;
  }
  int at = nhooks;
  while (at > 0 && hooks[at - 1].rank > rank) {
    hooks[at] = hooks[at - 1];
    at--;
  }
  hooks[at] = (hook){rank, prepare, parent, child};
  nhooks++;
  pthread_mutex_unlock(&hooks_lock);
  return 0;
}
