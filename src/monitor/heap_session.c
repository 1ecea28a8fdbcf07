/* Heap tracking: the session (the parent's side of the shared segment).
 *
 * The segment is a memfd: it exists only as long as someone holds the fd or a mapping, needs no
 * path (nothing to clean up, nothing another user can open) and survives the child's death, so the
 * parent reads what a SIGKILLed process had recorded up to its last instruction.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "monitor/heap_session.h"

#define TIMELINE_CAP 2048u

struct po_heap_session {
  int fd;
  po_heap_header *hdr; /* the whole segment, shared with the processes */
  po_heap_mode mode;
  pthread_mutex_t mu; /* guards the timeline */
  size_t timeline_count;
  double timeline_seconds[TIMELINE_CAP];
  int64_t timeline_live_bytes[TIMELINE_CAP];
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *po_heap_mode_name(po_heap_mode mode) {
  switch (mode) {
    case PO_HEAP_EXACT:
      return "exact";
    case PO_HEAP_SAMPLED:
      return "sampled";
    case PO_HEAP_FULL:
      return "full";
  }
  return "unknown";
}

static void init_header(po_heap_header *h, po_heap_mode mode, uint64_t nonce) {
  h->magic = PO_HEAP_MAGIC;
  h->version = PO_HEAP_VERSION;
  h->header_bytes = PO_HEAP_HEADER_BYTES;
  h->total_bytes = PO_HEAP_SEGMENT_BYTES;
  h->nonce = nonce;
  h->mode = (uint32_t)mode;
  h->max_procs = PO_HEAP_MAX_PROCS;
  h->max_threads = PO_HEAP_MAX_THREADS;
  h->max_sites = PO_HEAP_MAX_SITES;
  h->max_frames = PO_HEAP_MAX_FRAMES;
  h->max_modules = PO_HEAP_MAX_MODULES;
  h->proc_bytes = (uint32_t)sizeof(po_heap_proc);
  h->hist_buckets = PO_HEAP_HIST_BUCKETS;
  h->sample_interval_bytes = PO_HEAP_DEFAULT_SAMPLE_INTERVAL_BYTES;
  h->t0_ns = mono_ns();
}

int po_heap_session_create(po_heap_mode mode, po_heap_session **out) {
  if (!out || (unsigned)mode > PO_HEAP_FULL) return PO_EINVAL;
  *out = NULL;
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
    nonce = mono_ns() ^ (uint64_t)getpid();
  po_heap_session *s = po__calloc(1, sizeof *s);
  if (!s) return PO_ENOMEM;
  s->fd = memfd_create("perfopt-heap", MFD_CLOEXEC);
  if (s->fd < 0 || ftruncate(s->fd, (off_t)PO_HEAP_SEGMENT_BYTES) != 0) {
    int rc = errno == ENOMEM || errno == ENOSPC ? PO_ENOMEM : PO_EIO;
    if (s->fd >= 0) close(s->fd);
    free(s);
    return rc;
  }
  void *m = mmap(NULL, PO_HEAP_SEGMENT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
  if (m == MAP_FAILED) {
    close(s->fd);
    free(s);
    return PO_ENOMEM;
  }
  s->hdr = m;
  s->mode = mode;
  init_header(s->hdr, mode, nonce);
  pthread_mutex_init(&s->mu, NULL);
  *out = s;
  return 0;
}

void po_heap_session_destroy(po_heap_session *s) {
  if (!s) return;
  munmap(s->hdr, PO_HEAP_SEGMENT_BYTES);
  close(s->fd);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int po_heap_session_set_sample_interval(po_heap_session *s, uint64_t bytes) {
  if (!s || bytes == 0 || bytes > PO_HEAP_SIZE_MAX) return PO_EINVAL;
  __atomic_store_n(&s->hdr->sample_interval_bytes, bytes, __ATOMIC_RELAXED);
  return 0;
}

/* ---- environment ------------------------------------------------------------------------ */

static int usable_file(const char *path) {
  return path && path[0] && access(path, R_OK) == 0;
}

/* dir of `file` + "/" + rel into buf, when it fits. */
static int beside(const char *file, const char *rel, char *buf, size_t len) {
  const char *slash = file ? strrchr(file, '/') : NULL;
  if (!slash) return -1;
  int n = snprintf(buf, len, "%.*s/%s", (int)(slash - file), file, rel);
  return n > 0 && (size_t)n < len ? 0 : -1;
}

static int find_shim(const char *given, char *out, size_t len) {
  char cand[PATH_MAX];
  const char *env = getenv("PERFOPT_HEAP_LIBRARY");
  Dl_info info;
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  const char *found = NULL;
  if (given) {
    found = usable_file(given) ? given : NULL;
    if (!found) return PO_ENOENT;
  } else if (usable_file(env)) {
    found = env;
  } else if (dladdr((void *)po_heap_session_create, &info) && info.dli_fname &&
             beside(info.dli_fname, "libperfopt-heap.so", cand, sizeof cand) == 0 &&
             usable_file(cand)) {
    found = cand;
  } else if (beside(exe, "libperfopt-heap.so", cand, sizeof cand) == 0 && usable_file(cand)) {
    found = cand;
  } else if (beside(exe, "../lib/libperfopt-heap.so", cand, sizeof cand) == 0 &&
             usable_file(cand)) {
    found = cand;
  }
  if (!found) return PO_ENOENT;
  /* The child may change directory: an absolute path. LD_PRELOAD splits on ':' and spaces. */
  char *abs = realpath(found, NULL);
  if (!abs) return PO_ENOENT;
  int rc = strpbrk(abs, ": \t") ? PO_EINVAL : po__strlcpy(out, abs, len) ? PO_ERANGE : 0;
  free(abs);
  return rc;
}

int po_heap_session_env(po_heap_session *s, const char *shim_path, po_heap_env *env) {
  if (!s || !env) return PO_EINVAL;
  char shim[PATH_MAX];
  int rc = find_shim(shim_path, shim, sizeof shim);
  if (rc) return rc;
  const char *old = getenv("LD_PRELOAD");
  int n = old && old[0]
              ? snprintf(env->ld_preload, sizeof env->ld_preload, "LD_PRELOAD=%s:%s", shim, old)
              : snprintf(env->ld_preload, sizeof env->ld_preload, "LD_PRELOAD=%s", shim);
  if (n < 0 || (size_t)n >= sizeof env->ld_preload) return PO_ERANGE;
  snprintf(env->fd, sizeof env->fd, "%s=%d:%016llx", PO_HEAP_ENV_FD, s->fd,
           (unsigned long long)s->hdr->nonce);
  snprintf(env->mode, sizeof env->mode, "%s=%s", PO_HEAP_ENV_MODE, po_heap_mode_name(s->mode));
  int fl = fcntl(s->fd, F_GETFD);
  if (fl < 0 || fcntl(s->fd, F_SETFD, fl & ~FD_CLOEXEC) != 0) return PO_EIO;
  return 0;
}

static int put_env(const char *assignment) {
  const char *eq = strchr(assignment, '=');
  char name[64];
  if (!eq || (size_t)(eq - assignment) >= sizeof name) return PO_EINVAL;
  memcpy(name, assignment, (size_t)(eq - assignment));
  name[eq - assignment] = '\0';
  return setenv(name, eq + 1, 1) == 0 ? 0 : PO_ENOMEM;
}

int po_heap_session_apply_env(po_heap_session *s, const char *shim_path) {
  po_heap_env *env = po__malloc(sizeof *env);
  if (!env) return PO_ENOMEM;
  int rc = po_heap_session_env(s, shim_path, env);
  if (!rc) rc = put_env(env->ld_preload);
  if (!rc) rc = put_env(env->fd);
  if (!rc) rc = put_env(env->mode);
  free(env);
  return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int pid_alive(int32_t pid) {
  if (pid <= 0) return 0;
  if (kill(pid, 0) != 0 && errno != EPERM) return 0;
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  const char *rp = strrchr(buf, ')'); /* the state follows the command's closing parenthesis */
  return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static uint32_t slots_in_use(const po_heap_header *h) {
  uint32_t n = __atomic_load_n(&h->procs_claimed, __ATOMIC_ACQUIRE);
  return n < PO_HEAP_MAX_PROCS ? n : PO_HEAP_MAX_PROCS;
}

static const po_heap_proc *slot(const po_heap_session *s, uint32_t i) {
  return (const po_heap_proc *)((const char *)s->hdr + PO_HEAP_HEADER_BYTES +
                                (size_t)i * sizeof(po_heap_proc));
}

#define RD(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)

static void add_slot_totals(const po_heap_proc *p, po_heap_totals *t) {
  uint32_t state = __atomic_load_n(&p->state, __ATOMIC_ACQUIRE);
  if (state < PO_HEAP_SLOT_ACTIVE) return;
  t->processes++;
  for (uint32_t k = 0; k <= PO_HEAP_MAX_THREADS; k++) {
    const po_heap_thread *th = k < PO_HEAP_MAX_THREADS ? &p->threads[k] : &p->shared;
    t->allocations += RD(th->alloc_count);
    t->frees += RD(th->free_count);
  }
  int64_t peak = RD(p->peak_bytes);
  if (peak > t->peak_bytes) {
    t->peak_bytes = peak;
    t->peak_seconds = (double)RD(p->peak_ns) * 1e-9;
  }
  if (state == PO_HEAP_SLOT_ACTIVE && pid_alive(RD(p->pid))) {
    t->processes_running++;
    t->live_bytes += RD(p->live_bytes);
    t->mmap_live_bytes += RD(p->mmap_live_bytes);
  }
}

/* Appends a point; when full, merges adjacent pairs (keeping the larger live value, so a peak is
 * never averaged away) and halves the resolution. */
static void timeline_add(po_heap_session *s, double t, int64_t live) {
  pthread_mutex_lock(&s->mu);
  if (s->timeline_count == TIMELINE_CAP) {
    for (size_t i = 0; i < TIMELINE_CAP / 2; i++) {
      int64_t a = s->timeline_live_bytes[2 * i], b = s->timeline_live_bytes[2 * i + 1];
      s->timeline_seconds[i] = s->timeline_seconds[a >= b ? 2 * i : 2 * i + 1];
      s->timeline_live_bytes[i] = a >= b ? a : b;
    }
    s->timeline_count = TIMELINE_CAP / 2;
  }
  s->timeline_seconds[s->timeline_count] = t;
  s->timeline_live_bytes[s->timeline_count++] = live;
  pthread_mutex_unlock(&s->mu);
}

int po_heap_session_totals(po_heap_session *s, po_heap_totals *out) {
  if (!s || !out) return PO_EINVAL;
  memset(out, 0, sizeof *out);
  out->t_seconds = (double)(mono_ns() - s->hdr->t0_ns) * 1e-9;
  uint32_t n = slots_in_use(s->hdr);
  for (uint32_t i = 0; i < n; i++) add_slot_totals(slot(s, i), out);
  timeline_add(s, out->t_seconds, out->live_bytes);
  return 0;
}

int po_heap_session_snapshot(po_heap_session *s, size_t top_sites, po_heap_snapshot **out) {
  if (!s || !out) return PO_EINVAL;
  *out = NULL;
  /* A private copy: the processes may still write, and nothing read may change once checked. */
  size_t len = PO_HEAP_HEADER_BYTES + (size_t)slots_in_use(s->hdr) * sizeof(po_heap_proc);
  void *copy = po__malloc(len);
  if (!copy) return PO_ENOMEM;
  memcpy(copy, s->hdr, len);
  po__heap_parse_opts opts = {.top_sites = top_sites,
                              .symbolize = 1,
                              .alive = pid_alive,
                              .t_seconds = (double)(mono_ns() - s->hdr->t0_ns) * 1e-9};
  double *ts = po__malloc(TIMELINE_CAP * sizeof *ts);
  int64_t *live = po__malloc(TIMELINE_CAP * sizeof *live);
  int rc = ts && live ? 0 : PO_ENOMEM;
  if (!rc) {
    pthread_mutex_lock(&s->mu);
    opts.timeline_count = s->timeline_count;
    memcpy(ts, s->timeline_seconds, s->timeline_count * sizeof *ts);
    memcpy(live, s->timeline_live_bytes, s->timeline_count * sizeof *live);
    pthread_mutex_unlock(&s->mu);
    opts.timeline_seconds = ts;
    opts.timeline_live_bytes = live;
    rc = po__heap_parse(copy, len, &opts, out);
  }
  free(ts);
  free(live);
  free(copy);
  return rc;
}
