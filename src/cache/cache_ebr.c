/* Epoch-based reclamation for the cache's lock-free readers.
 *
 * Each reading thread owns one record (its own cache line) in a process-wide array. A reader
 * announces the global epoch in its record before it touches the table and clears it after.
 * Writers tag what they unlink with the epoch they advance to, and free it once every announced
 * epoch is newer: no reader that could still hold a pointer to it remains. Records are claimed
 * on a thread's first read and released when the thread exits. */
#include "cache/cache_internal.h"

#include "base/atfork.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define records po__ebr_records
#define global_epoch po__ebr_epoch
#define my_record po__ebr_my_record

po__ebr_record records[PO__EBR_RECORDS];
static _Atomic unsigned records_hi; /* records ever claimed: the scan bound */
_Alignas(64) _Atomic uint64_t global_epoch = 1;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
__thread int my_record __attribute__((tls_model("initial-exec"))) = -1;
int po__ebr_asymmetric;

/* Registers for expedited private membarrier, before main: from then on readers announce with a
 * plain store. Without it (kernels before 4.14, a seccomp filter, valgrind) or under
 * ThreadSanitizer, which cannot see a membarrier's ordering, readers keep their seq_cst store.
 * The registration belongs to the address space: a forked child registers again (only the
 * forking thread runs there, outside any read section, so falling back is safe). Once
 * registered, the kernel guarantees the barrier succeeds. */
static void ebr_register_membarrier(void) {
#if !defined(__SANITIZE_THREAD__)
  po__ebr_asymmetric =
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

__attribute__((constructor)) static void ebr_init(void) {
  ebr_register_membarrier();
  po__atfork_add(PO__FORK_RANK_CACHE, NULL, NULL, ebr_register_membarrier);
}

static void record_release(void *arg) {
  int i = (int)((intptr_t)arg - 1);
  atomic_store_explicit(&records[i].active, 0, memory_order_release);
  atomic_store_explicit(&records[i].used, 0, memory_order_release);
}

static void make_key(void) {
  if (pthread_key_create(&exit_key, record_release)) exit_key = 0;
}

static int record_claim(void) {
  pthread_once(&exit_once, make_key);
  for (int i = 0; i < PO__EBR_RECORDS; i++) {
    int expect = 0;
    if (atomic_load_explicit(&records[i].used, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_strong(&records[i].used, &expect, 1)) {
      unsigned hi = atomic_load(&records_hi);
      while (hi < (unsigned)i + 1 &&
             !atomic_compare_exchange_weak(&records_hi, &hi, (unsigned)i + 1)) {
      }
      pthread_setspecific(exit_key, (void *)(intptr_t)(i + 1));
      return i;
    }
  }
  return -2;
}

int po__ebr_enter_slow(void) {
  if (my_record == -2) return -1;
  int i = my_record = record_claim();
  if (i < 0) return -1;
  return po__ebr_enter();
}

uint64_t po__ebr_advance(void) {
  return atomic_fetch_add_explicit(&global_epoch, 1, memory_order_seq_cst);
}

uint64_t po__ebr_min_active(void) {
  atomic_thread_fence(memory_order_seq_cst);
  /* Readers announce with a plain store: a barrier on every CPU running one of this process's
   * threads makes each announcement made so far visible before the scan below (the classic
   * asymmetric fence of userspace RCU). */
  if (po__ebr_asymmetric && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
    return 0; /* cannot happen once registered; if it did, free nothing */
  unsigned hi = atomic_load_explicit(&records_hi, memory_order_acquire);
  uint64_t m = UINT64_MAX;
  for (unsigned i = 0; i < hi; i++) {
    uint64_t a = atomic_load_explicit(&records[i].active, memory_order_acquire);
    if (a && a < m) m = a;
  }
  return m;
}
