/* libperfopt-heap: connecting a process to the session's segment. Attach (map the segment, claim
 * a process slot), thread slots, fork (the child claims a slot of its own and copies what it
 * inherited), exec (the new image marks its predecessor's slot), dlopen (the module map), exit.
 *
 * Everything here runs at most once per process, thread, fork, dlopen or exit: system calls are
 * fine, allocation through malloc is not (the shim uses only the segment and static memory).
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define API __attribute__((visibility("default")))

extern char **environ;
extern const ElfW(Ehdr) __ehdr_start; /* this library's ELF header (defined by the linker) */

static pthread_key_t thread_key;
static int thread_key_ok;
static int modules_lock;
static int late_done;

uint64_t shim_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  uint64_t t0 = shim_g.hdr ? shim_g.hdr->t0_ns : 0;
  return now > t0 ? now - t0 : 0;
}

static void lock_modules(void) {
  while (__atomic_exchange_n(&modules_lock, 1, __ATOMIC_ACQUIRE)) sched_yield();
}
static void unlock_modules(void) {
  __atomic_store_n(&modules_lock, 0, __ATOMIC_RELEASE);
}

/* Copies src into a fixed field; returns 1 when it had to truncate. */
static int copy_path(char *dst, const char *src) {
  size_t n = strnlen(src, PO_HEAP_PATH_BYTES);
  int cut = n == PO_HEAP_PATH_BYTES;
  if (cut) n = PO_HEAP_PATH_BYTES - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return cut;
}

/* The shim's own executable range, from its program headers (no libdl needed this early). */
static void find_self(void) {
  const ElfW(Ehdr) *eh = &__ehdr_start;
  const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
  uintptr_t bias = (uintptr_t)eh, lo = UINTPTR_MAX, hi = 0;
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) bias = (uintptr_t)eh - ph[i].p_vaddr;
  }
  for (unsigned i = 0; i < eh->e_phnum; i++) {
    if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X)) continue;
    uintptr_t a = bias + ph[i].p_vaddr;
    if (a < lo) lo = a;
    if (a + ph[i].p_memsz > hi) hi = a + ph[i].p_memsz;
  }
  shim_g.self_lo = lo;
  shim_g.self_hi = hi;
}

/* "<fd>:<16 hex digits>" */
static int parse_fd_env(const char *s, int *fd, uint64_t *nonce) {
  long f = 0;
  int digits = 0;
  for (; *s >= '0' && *s <= '9' && f < 1000000; s++, digits++) f = f * 10 + (*s - '0');
  if (!digits || *s++ != ':') return -1;
  uint64_t v = 0;
  for (digits = 0; *s && digits < 16; s++, digits++) {
    int d = *s >= '0' && *s <= '9'   ? *s - '0'
            : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
            : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                     : -1;
    if (d < 0) return -1;
    v = v << 4 | (uint64_t)d;
  }
  if (digits != 16 || *s) return -1;
  *fd = (int)f;
  *nonce = v;
  return 0;
}

/* Maps the segment named by the environment after checking it is the session's (an fd number
 * that was closed and reused for another file is never written). NULL when unusable. */
static po_heap_header *map_segment(void) {
  const char *env = getenv(PO_HEAP_ENV_FD);
  int fd;
  uint64_t nonce;
  if (!env || parse_fd_env(env, &fd, &nonce) != 0) return NULL;
  struct stat st;
  po_heap_header h;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != PO_HEAP_SEGMENT_BYTES)
    return NULL;
  if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) return NULL;
  if (h.magic != PO_HEAP_MAGIC || h.version != PO_HEAP_VERSION || h.nonce != nonce ||
      h.total_bytes != PO_HEAP_SEGMENT_BYTES || h.proc_bytes != sizeof(po_heap_proc) ||
      h.max_procs != PO_HEAP_MAX_PROCS || h.mode > PO_HEAP_MODE_FULL)
    return NULL;
  long m = syscall(SYS_mmap, NULL, (size_t)PO_HEAP_SEGMENT_BYTES, PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
  return m == -1 ? NULL : (po_heap_header *)m;
}

static po_heap_proc *slot_at(po_heap_header *h, uint32_t i) {
  return (po_heap_proc *)((char *)h + PO_HEAP_HEADER_BYTES + (size_t)i * sizeof(po_heap_proc));
}

/* Claims the next process slot; -1 when all are taken (counted in the header). */
static int claim_proc(po_heap_header *h) {
  uint32_t i = __atomic_fetch_add(&h->procs_claimed, 1, __ATOMIC_RELAXED);
  if (i >= PO_HEAP_MAX_PROCS) {
    __atomic_fetch_add(&h->procs_dropped, 1, __ATOMIC_RELAXED);
    return -1;
  }
  po_heap_proc *p = slot_at(h, i);
  STORE(&p->state, PO_HEAP_SLOT_CLAIMED);
  p->pid = (int32_t)getpid();
  p->ppid = (int32_t)getppid();
  p->parent_slot = -1;
  p->start_ns = 0;
  return (int)i;
}

static void publish_proc(po_heap_proc *p) {
  __atomic_store_n(&p->state, PO_HEAP_SLOT_ACTIVE, __ATOMIC_RELEASE);
}

/* A new image: the slot of the same pid that is still active is its predecessor (exec). Else the
 * parent is the active slot of the parent pid. */
static void link_new_image(po_heap_header *h, int self) {
  po_heap_proc *p = slot_at(h, (uint32_t)self);
  uint32_t n = LOAD(&h->procs_claimed);
  if (n > PO_HEAP_MAX_PROCS) n = PO_HEAP_MAX_PROCS;
  int parent = -1;
  for (uint32_t i = 0; i < n; i++) {
    po_heap_proc *q = slot_at(h, i);
    if ((int)i == self || LOAD(&q->state) != PO_HEAP_SLOT_ACTIVE) continue;
    if (q->pid == p->pid) {
      STORE(&q->end_ns, shim_now_ns());
      __atomic_store_n(&q->state, PO_HEAP_SLOT_EXECED, __ATOMIC_RELEASE);
      p->parent_slot = (int32_t)i;
      p->origin = 2;
      return;
    }
    if (q->pid == p->ppid) parent = (int)i;
  }
  p->parent_slot = parent;
}

static int64_t env_interval(void) {
  const char *s = getenv(PO_HEAP_ENV_INTERVAL);
  long long v = 0;
  for (; s && *s >= '0' && *s <= '9' && v < (1ll << 40); s++) v = v * 10 + (*s - '0');
  return v;
}

static int env_mode(int fallback) {
  const char *s = getenv(PO_HEAP_ENV_MODE);
  if (!s) return fallback;
  if (!strcmp(s, "exact")) return PO_HEAP_MODE_EXACT;
  if (!strcmp(s, "sampled")) return PO_HEAP_MODE_SAMPLED;
  if (!strcmp(s, "full")) return PO_HEAP_MODE_FULL;
  return fallback;
}

static void init_cookie(void) {
  const uint64_t *r = (const uint64_t *)getauxval(AT_RANDOM);
  uint64_t c = r ? r[1] : (uint64_t)(uintptr_t)&shim_g * 0x9E3779B97F4A7C15ull;
  shim_g.cookie = (c | 0x8000000000000000ull) & ~15ull;
}

/* Attaches the process: called by the first hook (possibly before constructors run) and by the
 * constructor. The environment may not be readable yet at the very first allocations; those are
 * untracked (counted) and attach happens at the next hook. */
void shim_start(void) {
  if (!shim_g.cookie) init_cookie();
  if (LOAD(&shim_g.state) != 0 || !environ) return;
  int zero = 0;
  if (!__atomic_compare_exchange_n(&shim_g.state, &zero, 1, 0, __ATOMIC_ACQUIRE, RELAXED)) return;
  shim_ts.in_hook++;
  find_self();
  po_heap_header *h = map_segment();
  int idx = h ? claim_proc(h) : -1;
  if (idx < 0) {
    if (h) syscall(SYS_munmap, h, (size_t)PO_HEAP_SEGMENT_BYTES);
    shim_ts.in_hook--;
    __atomic_store_n(&shim_g.state, 3, __ATOMIC_RELEASE);
    return;
  }
  po_heap_proc *p = slot_at(h, (uint32_t)idx);
  shim_g.hdr = h;
  shim_g.proc = p;
  shim_g.proc_index = idx;
  shim_g.mode = env_mode((int)h->mode);
  int64_t iv = env_interval();
  shim_g.interval = iv > 0                     ? (uint64_t)iv
                    : h->sample_interval_bytes ? h->sample_interval_bytes
                                               : 524288;
  const char *uw = getenv(PO_HEAP_ENV_UNWIND);
  shim_g.unwind_libunwind_only = uw && !strcmp(uw, "libunwind");
  p->mode = (uint32_t)shim_g.mode;
  p->start_ns = shim_now_ns();
  char exe[PO_HEAP_PATH_BYTES];
  long n = syscall(SYS_readlink, "/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  if (n >= (long)sizeof exe - 1) SHARED_ADD(&p->paths_truncated, 1);
  copy_path(p->exe, exe);
  link_new_image(h, idx);
  publish_proc(p);
  shim_ts.in_hook--;
  __atomic_store_n(&shim_g.state, 2, __ATOMIC_RELEASE);
}

/* ---- threads ---------------------------------------------------------------------------- */

static void thread_gone(void *unused) {
  (void)unused;
  shim_thread *t = &shim_ts;
  t->fast = 0;
  if (t->slot && !t->shared) __atomic_store_n(&t->slot->owner_tid, 0, __ATOMIC_RELEASE);
  t->slot = NULL;
  t->exiting = 1; /* later frees in this thread use the shared counters */
}

void shim_thread_claim(void) {
  shim_thread *t = &shim_ts;
  po_heap_proc *p = shim_g.proc;
  uint32_t tid = (uint32_t)syscall(SYS_gettid);
  t->slot = NULL;
  for (uint32_t i = 0; i < PO_HEAP_MAX_THREADS && !t->slot; i++) {
    uint32_t free_tid = 0;
    if (LOAD(&p->threads[i].owner_tid) == 0 &&
        __atomic_compare_exchange_n(&p->threads[i].owner_tid, &free_tid, tid, 0, __ATOMIC_ACQUIRE,
                                    RELAXED)) {
      t->slot = &p->threads[i];
      uint32_t used = LOAD(&p->threads_used);
      while (i + 1 > used &&
             !__atomic_compare_exchange_n(&p->threads_used, &used, i + 1, 1, RELAXED, RELAXED)) {
      }
    }
  }
  t->shared = !t->slot;
  if (!t->slot) {
    t->slot = &p->shared;
    SHARED_ADD(&p->threads_shared, 1);
  }
  if (thread_key_ok) pthread_setspecific(thread_key, (void *)1);
  t->rng = (tid * 0x9E3779B97F4A7C15ull) ^ shim_g.cookie ^ shim_now_ns();
  if (!t->rng) t->rng = 1;
  t->until_sample = shim_sample_draw();
  t->fast = !t->in_hook && !t->shared;
}

/* ---- module map ------------------------------------------------------------------------- */

static void read_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) * ph,
                          po_heap_module *m) {
  const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
  while (p + sizeof(ElfW(Nhdr)) <= end) {
    const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
    const char *name = p + sizeof *nh;
    const char *desc = name + ((nh->n_namesz + 3u) & ~3u);
    if (desc + nh->n_descsz > end) return;
    if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
      uint32_t len = nh->n_descsz < PO_HEAP_BUILD_ID_BYTES ? nh->n_descsz : PO_HEAP_BUILD_ID_BYTES;
      memcpy(m->build_id, desc, len);
      m->build_id_len = len;
      return;
    }
    p = desc + ((nh->n_descsz + 3u) & ~3u);
  }
}

static int add_module(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  po_heap_proc *p = data;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo) lo = a;
    if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
  }
  if (lo >= hi) return 0;
  uint32_t n = LOAD(&p->module_count);
  for (uint32_t i = 0; i < n && i < PO_HEAP_MAX_MODULES; i++) {
    if (p->modules[i].lo == lo && p->modules[i].bias == info->dlpi_addr) return 0;
  }
  if (n >= PO_HEAP_MAX_MODULES) {
    SHARED_ADD(&p->modules_dropped, 1);
    return 0;
  }
  po_heap_module *m = &p->modules[n];
  memset(m, 0, sizeof *m);
  m->bias = info->dlpi_addr;
  m->lo = lo;
  m->hi = hi;
  const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : n == 0 ? p->exe : "";
  if (copy_path(m->path, name)) SHARED_ADD(&p->paths_truncated, 1);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    if (info->dlpi_phdr[i].p_type == PT_NOTE) read_build_id(info, &info->dlpi_phdr[i], m);
  }
  __atomic_store_n(&m->ready, 1, __ATOMIC_RELEASE);
  __atomic_store_n(&p->module_count, n + 1, __ATOMIC_RELEASE);
  return 0;
}

void shim_modules_refresh(void) {
  if (shim_g.state != 2) return;
  shim_ts.in_hook++;
  shim_ts.fast = 0;
  lock_modules();
  dl_iterate_phdr(add_module, shim_g.proc);
  unlock_modules();
  shim_ts.in_hook--;
  shim_ts.fast = shim_ts.slot && !shim_ts.shared && !shim_ts.in_hook;
}

/* ---- fork ------------------------------------------------------------------------------- */

/* The child gets a slot of its own: a copy of its parent's sites (the blocks it inherited keep
 * their site), its modules and its live bytes, with the cumulative counts starting at zero. */
static void inherit(po_heap_proc *c, const po_heap_proc *p) {
  memcpy(c->exe, p->exe, sizeof c->exe);
  c->mode = p->mode;
  uint32_t mods = LOAD(&p->module_count);
  if (mods > PO_HEAP_MAX_MODULES) mods = PO_HEAP_MAX_MODULES;
  memcpy(c->modules, p->modules, mods * sizeof c->modules[0]);
  c->module_count = mods;
  for (uint32_t i = 0; i < PO_HEAP_MAX_SITES; i++) {
    const po_heap_site *s = &p->sites[i];
    if (!LOAD(&s->key)) continue;
    po_heap_site *d = &c->sites[i];
    memcpy(d, s, sizeof *d);
    d->alloc_count = 0;
    d->alloc_bytes = 0;
    d->bytes_at_peak = d->live_bytes;
    d->epoch = 0;
  }
  c->sites_used = LOAD(&p->sites_used);
  int64_t live = LOAD(&p->live_bytes);
  c->live_bytes = live;
  c->inherited_bytes = live;
  c->peak_bytes = live;
  c->peak_ns = shim_now_ns();
  c->peak_epoch = 1;
}

static void atfork_child(void) {
  if (shim_g.state != 2) return;
  shim_thread *t = &shim_ts;
  t->in_hook++;
  t->fast = 0;
  modules_lock = 0; /* a thread of the parent may have held it */
  int idx = claim_proc(shim_g.hdr);
  if (idx < 0) {
    /* No slot: pass-through; inherited blocks are released untracked, and nothing of the
     * parent's slot is touched. */
    shim_g.state = 3;
    shim_g.proc = NULL;
    t->slot = NULL;
    t->in_hook--;
    return;
  }
  po_heap_proc *c = slot_at(shim_g.hdr, (uint32_t)idx);
  inherit(c, shim_g.proc);
  c->parent_slot = shim_g.proc_index;
  c->origin = 1;
  c->start_ns = shim_now_ns();
  shim_g.proc = c;
  shim_g.proc_index = idx;
  publish_proc(c);
  t->slot = NULL;
  t->shared = 0;
  t->exiting = 0;
  t->in_hook--;
  shim_thread_claim();
}

/* ---- exit, exec, dlopen ------------------------------------------------------------------ */

static void mark_exited(void) {
  po_heap_proc *p = shim_g.proc;
  if (shim_g.state != 2 || p->pid != (int32_t)getpid()) return;
  STORE(&p->end_ns, shim_now_ns());
  __atomic_store_n(&p->state, PO_HEAP_SLOT_EXITED, __ATOMIC_RELEASE);
}

/* What needs libdl and pthread: after libc is initialized (the constructor). */
static void late_init(void) {
  if (late_done || shim_g.state != 2) return;
  late_done = 1;
  shim_ts.in_hook++;
  shim_ts.fast = 0;
  thread_key_ok = pthread_key_create(&thread_key, thread_gone) == 0;
  pthread_atfork(NULL, NULL, atfork_child);
  shim_g.real_usable_size = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
  shim_ts.in_hook--;
  shim_modules_refresh();
  if (!shim_ts.slot) shim_thread_claim();
  if (thread_key_ok) pthread_setspecific(thread_key, (void *)1);
}

__attribute__((constructor(101))) static void shim_constructor(void) {
  shim_start();
  late_init();
}

__attribute__((destructor(101))) static void shim_destructor(void) {
  mark_exited();
}

API void _exit(int status) {
  mark_exited();
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

API void _Exit(int status) {
  _exit(status);
}

API void *dlopen(const char *file, int flags) {
  static void *(*real)(const char *, int);
  if (!real) real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
  void *h = real ? real(file, flags) : NULL;
  if (h) shim_modules_refresh();
  return h;
}

API int dlclose(void *handle) {
  static int (*real)(void *);
  if (!real) real = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
  int r = real ? real(handle) : -1;
  shim_stack_forget();
  return r;
}
