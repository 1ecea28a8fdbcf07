/* libperfopt-heap: call stacks. Frame pointers where they exist, libunwind otherwise.
 *
 * Following saved frame pointers is only correct through functions that keep one: in a function
 * built without, rbp is an ordinary register and the chain silently skips callers or points at
 * data. So each return address gets a verdict, computed once and cached: the function that
 * contains it is found in its object's .eh_frame_hdr search table (sorted function starts, the
 * table the C++ unwinder itself uses) and its first instructions are checked for
 * `[endbr64] push %rbp; mov %rsp,%rbp`. The walk follows frame pointers while the verdict says the
 * function keeps one. At one that does not, libunwind (DWARF CFI: exact, slower) takes the whole
 * stack, unless the function is known to be a start-up frame (V_BOTTOM: libc's frame below main
 * or below a thread's function), where the walk simply ends.
 *
 * Why hand-written: no library offers "frame pointers when valid, else DWARF" with a per-address
 * verdict cache; libunwind alone is several times slower on every allocation in full mode.
 */
#define UNW_LOCAL_ONLY
#include <elf.h>
#include <libunwind.h>
#include <link.h>
#include <string.h>

#include "shim.h"

/* V_BOTTOM: a function without frame pointer that only start-up frames follow (libc's
 * __libc_start_call_main below main, start_thread below a thread's function): the walk ends
 * there instead of asking libunwind for the last two or three frames each time. */
enum { V_UNKNOWN = 0, V_FP = 1, V_NOFP = 2, V_BOTTOM = 3 };
#define BOTTOM_TAIL 3 /* at most this many frames below a V_BOTTOM function */

#define VCACHE_BITS 13u
static uint64_t vcache[1u << VCACHE_BITS]; /* (return address << 2) | verdict, 0 = empty */

typedef struct find_ctx {
  uintptr_t pc;
  const uint8_t *eh_hdr; /* the module's .eh_frame_hdr, NULL when it has none */
  int found;
} find_ctx;

static int find_module(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  find_ctx *c = data;
  const uint8_t *eh = NULL;
  int inside = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && c->pc >= a && c->pc - a < ph->p_memsz) inside = 1;
    if (ph->p_type == PT_GNU_EH_FRAME) eh = (const uint8_t *)a;
  }
  if (!inside) return 0;
  c->found = 1;
  c->eh_hdr = eh;
  return 1;
}

static int32_t rd32(const uint8_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* The start of the function containing pc, from .eh_frame_hdr's binary-search table (only the
 * encodings every GNU toolchain emits are accepted: datarel sdata4 entries). 0 when unknown. */
static uintptr_t function_start(const uint8_t *h, uintptr_t pc) {
  if (!h || h[0] != 1 || h[3] != 0x3b) return 0;
  unsigned ptr_size = (h[1] & 0x0f) == 0x03 || (h[1] & 0x0f) == 0x0b ? 4u : 0u;
  if (!ptr_size || ((h[2] & 0x0f) != 0x03 && (h[2] & 0x0f) != 0x0b)) return 0;
  int32_t count = rd32(h + 4 + ptr_size);
  const uint8_t *table = h + 8 + ptr_size;
  if (count <= 0) return 0;
  intptr_t rel = (intptr_t)(pc - (uintptr_t)h);
  int32_t lo = 0, hi = count - 1, best = -1;
  while (lo <= hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if ((intptr_t)rd32(table + 8 * (size_t)mid) <= rel) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best < 0 ? 0 : (uintptr_t)h + (uintptr_t)(intptr_t)rd32(table + 8 * (size_t)best);
}

static int keeps_frame_pointer(const uint8_t *c) {
  if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) c += 4; /* endbr64 */
  return c[0] == 0x55 && c[1] == 0x48 && (c[2] == 0x89 && c[3] == 0xe5);
}

static int compute_verdict(uintptr_t ra) {
  find_ctx c = {ra - 1, NULL, 0}; /* ra - 1: inside the call, even for a noreturn callee */
  dl_iterate_phdr(find_module, &c);
  uintptr_t start = c.found ? function_start(c.eh_hdr, c.pc) : 0;
  return start && start < c.pc && keeps_frame_pointer((const uint8_t *)start) ? V_FP : V_NOFP;
}

static size_t vslot(uintptr_t ra) {
  return (size_t)((ra * 0x9E3779B97F4A7C15ull) >> (64 - VCACHE_BITS));
}

static int verdict(uintptr_t ra) {
  uint64_t e = LOAD(&vcache[vslot(ra)]);
  if (SHIM_LIKELY(e >> 2 == ra)) return (int)(e & 3);
  int v = compute_verdict(ra);
  STORE(&vcache[vslot(ra)], (uint64_t)ra << 2 | (uint64_t)v);
  return v;
}

void shim_stack_forget(void) {
  for (size_t i = 0; i < sizeof vcache / sizeof vcache[0]; i++) STORE(&vcache[i], 0);
}

static int in_self(uintptr_t a) {
  return a >= shim_g.self_lo && a < shim_g.self_hi;
}

static uint32_t libunwind_stack(uint64_t *frames, uint32_t max, int *truncated) {
  void *buf[PO_HEAP_MAX_FRAMES + 16];
  int n = unw_backtrace(buf, (int)(sizeof buf / sizeof buf[0]));
  uint32_t d = 0;
  for (int i = 0; i < n; i++) {
    uintptr_t a = (uintptr_t)buf[i];
    if (in_self(a) && d == 0) continue;
    if (d == max) {
      *truncated = 1;
      break;
    }
    frames[d++] = a;
  }
  if (n == (int)(sizeof buf / sizeof buf[0])) *truncated = 1;
  if (shim_g.proc) SHARED_ADD(&shim_g.proc->unwind_fallbacks, 1);
  return d;
}

/* A function without frame pointer met below the first frame: libunwind continues the walk. When
 * only start-up frames follow it, it is remembered as V_BOTTOM and the stack is cut right after it,
 * exactly as the frame-pointer walk will cut it next time (so one call path is one site). */
static uint32_t continue_with_libunwind(uintptr_t ra, uint64_t *frames, uint32_t max,
                                        int *truncated) {
  uint32_t n = libunwind_stack(frames, max, truncated);
  for (uint32_t k = 0; k < n; k++) {
    if (frames[k] != ra) continue;
    if (!*truncated && n - 1 - k <= BOTTOM_TAIL) {
      STORE(&vcache[vslot(ra)], (uint64_t)ra << 2 | (uint64_t)V_BOTTOM);
      return k + 1;
    }
    break;
  }
  return n;
}

/* The shim itself is built with frame pointers, so its own frames are always followed. */
uint32_t shim_stack(uint64_t *frames, uint32_t max, int *truncated) {
  *truncated = 0;
  if (shim_g.unwind_libunwind_only) return libunwind_stack(frames, max, truncated);
  uintptr_t *fp = __builtin_frame_address(0);
  uint32_t d = 0;
  for (int guard = 0; fp && guard < 4096; guard++) {
    uintptr_t ra = fp[1];
    if (!in_self(ra) || d > 0) {
      if (d == max) {
        *truncated = 1;
        break;
      }
      frames[d++] = ra;
      int v = verdict(ra);
      if (v == V_BOTTOM) break;
      if (v != V_FP) {
        return d == 1 ? libunwind_stack(frames, max, truncated)
                      : continue_with_libunwind(ra, frames, max, truncated);
      }
    }
    uintptr_t *next = (uintptr_t *)fp[0];
    /* A frame record lies above the previous one on the same stack. */
    if (next <= fp || (uintptr_t)next - (uintptr_t)fp > ((uintptr_t)64 << 20) ||
        ((uintptr_t)next & 7u))
      break;
    fp = next;
  }
  return d;
}
