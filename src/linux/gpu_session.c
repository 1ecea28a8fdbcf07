/* A GPU session shared by everything in one optimizer (the sampler's ticks, the memory guard's
 * free-memory checks): one NVML load and nvmlInit, opened lazily on the first query because
 * nvmlInit may take seconds, and tried once (a machine without NVML does not retry every tick). */
#include "base/atfork.h"
#include "base/base.h"
#include "platform.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

struct po_gpu_session {
  pthread_mutex_t lock;
  char library[256];
  po__nvml *nvml;
  int tried;
  int pid; /* the process that opened nvml */
  char reason[160];
  po_gpu_session *next; /* live sessions, for the fork handlers */
};

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static po_gpu_session *live;

static void fork_prepare(void) {
  pthread_mutex_lock(&live_lock);
  for (po_gpu_session *s = live; s; s = s->next) pthread_mutex_lock(&s->lock);
}

static void fork_parent(void) {
  for (po_gpu_session *s = live; s; s = s->next) pthread_mutex_unlock(&s->lock);
  pthread_mutex_unlock(&live_lock);
}

/* The child has only the forking thread, and the parent's NVML state is not its own: forget it
 * (closing it would shut the parent's driver state down too) and open a new one if asked. */
static void fork_child(void) {
  for (po_gpu_session *s = live; s; s = s->next) {
    s->nvml = NULL;
    s->tried = 0;
    pthread_mutex_unlock(&s->lock); /* taken by this thread in fork_prepare */
  }
  pthread_mutex_unlock(&live_lock);
}

__attribute__((constructor)) static void register_fork_hooks(void) {
  po__atfork_add(PO__FORK_RANK_GPU, fork_prepare, fork_parent, fork_child);
}

int po_gpu_session_create(const po_config *cfg, po_gpu_session **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  po_config c;
  po__probe_config(cfg, &c);
  po_gpu_session *s = po__calloc(1, sizeof *s);
  if (!s) return PO_ENOMEM;
  pthread_mutex_init(&s->lock, NULL);
  po__strlcpy(s->library, c.nvml_library, sizeof s->library);
  pthread_mutex_lock(&live_lock);
  s->next = live;
  live = s;
  pthread_mutex_unlock(&live_lock);
  *out = s;
  return 0;
}

void po_gpu_session_destroy(po_gpu_session *s) {
  if (!s) return;
  pthread_mutex_lock(&live_lock);
  for (po_gpu_session **pp = &live; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  pthread_mutex_unlock(&live_lock);
  if (s->nvml && s->pid == (int)getpid()) po__nvml_destroy(s->nvml);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

/* Lock held. Tried once, except after a failed allocation, which the next query retries. */
static int ensure_open(po_gpu_session *s) {
  if (s->nvml || s->tried) return 0;
  s->pid = (int)getpid();
  int rc = po__nvml_create(s->library, &s->nvml, s->reason, sizeof s->reason);
  s->tried = rc != PO_ENOMEM;
  if (rc != 0) {
    s->nvml = NULL;
    /* glibc keeps the failed dlopen's message in a per-thread buffer that a thread exit does not
     * free; reading the (now empty) error state releases it. */
    (void)dlerror();
  }
  return rc == PO_ENOMEM ? rc : 0;
}

int po_gpu_session_query(po_gpu_session *s, po_gpu_info *devs, size_t max, size_t *count,
                         size_t *dropped, char *reason, size_t reason_len) {
  if (!s || !count || (max && !devs)) return PO_EINVAL;
  *count = 0;
  if (dropped) *dropped = 0;
  if (reason && reason_len) reason[0] = '\0';
  pthread_mutex_lock(&s->lock);
  int rc = ensure_open(s);
  if (!s->nvml) {
    if (reason && reason_len) po__strlcpy(reason, s->reason, reason_len);
  } else if (po__nvml_query(s->nvml, devs, max, count, dropped, reason, reason_len) != 0) {
    *count = 0;
  }
  pthread_mutex_unlock(&s->lock);
  return rc;
}
