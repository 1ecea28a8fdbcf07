/* Heap tracking: symbolizing a (possibly dead) process's return addresses in the parent.
 *
 * The shim saved each loaded object's path, load bias and GNU build-id. Here each object that a
 * frame points into is opened without following a symlink in its last component, checked to be
 * a regular file with the same build-id (so a library replaced since the run is not trusted), and
 * reported to libdw at its bias; libdw then gives the symbol (ELF .symtab or .dynsym: what dladdr
 * would say, plus static functions) and file:line from DWARF, including separate debug files.
 * Addresses are looked up at address - 1: inside the call instruction, not after it.
 */
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "monitor/heap_session.h"

static int same_build_id(int fd, const po_heap_module *m) {
  if (m->build_id_len == 0) return 1; /* nothing recorded to compare */
  Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (!e) return 0;
  const void *id = NULL;
  ssize_t n = dwelf_elf_gnu_build_id(e, &id);
  uint32_t want =
      m->build_id_len > PO_HEAP_BUILD_ID_BYTES ? PO_HEAP_BUILD_ID_BYTES : m->build_id_len;
  int ok = n >= (ssize_t)want && id && memcmp(id, m->build_id, want) == 0;
  elf_end(e);
  return ok;
}

/* Opens a path without following a symlink in its last component, except one owned by root (a
 * library's soname link, /lib64/ld-linux-x86-64.so.2): an unprivileged user cannot plant those. */
static int open_nofollow(const char *path) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0 || errno != ELOOP) return fd;
  struct stat ls;
  if (lstat(path, &ls) != 0 || !S_ISLNK(ls.st_mode) || ls.st_uid != 0) return -1;
  char *real = realpath(path, NULL);
  if (!real) return -1;
  fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  free(real);
  return fd;
}

/* Opens a recorded object for reading: an absolute path (see open_nofollow), a regular file, the
 * recorded build-id. -1 otherwise. */
static int open_module(const po_heap_module *m) {
  if (m->path[0] != '/') return -1;
  int fd = open_nofollow(m->path);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !same_build_id(fd, m)) {
    close(fd);
    return -1;
  }
  return fd;
}

static const po_heap_module *module_of(const po_heap_module *mods, uint32_t n, uint64_t pc) {
  for (uint32_t i = 0; i < n; i++) {
    if (pc >= mods[i].lo && pc < mods[i].hi) return &mods[i];
  }
  return NULL;
}

/* Reports to libdw the objects that some frame points into. */
static Dwfl *open_dwfl(const po_heap_module *mods, uint32_t nmods, po_heap_frame **frames,
                       size_t n) {
  static const Dwfl_Callbacks cb = {.find_elf = NULL,
                                    .find_debuginfo = dwfl_standard_find_debuginfo};
  elf_version(EV_CURRENT);
  uint8_t *want = po__calloc(nmods ? nmods : 1, 1);
  Dwfl *d = want ? dwfl_begin(&cb) : NULL;
  if (!d) {
    free(want);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const po_heap_module *m = module_of(mods, nmods, frames[i]->address - 1);
    if (m) want[m - mods] = 1;
  }
  dwfl_report_begin(d);
  for (uint32_t i = 0; i < nmods; i++) {
    if (!want[i]) continue;
    int fd = open_module(&mods[i]);
    if (fd < 0) continue;
    const char *base = strrchr(mods[i].path, '/');
    if (!dwfl_report_elf(d, base ? base + 1 : mods[i].path, mods[i].path, fd, mods[i].bias, false))
      close(fd);
  }
  dwfl_report_end(d, NULL, NULL);
  free(want);
  return d;
}

static int by_address(const void *a, const void *b) {
  uint64_t x = (*(po_heap_frame *const *)a)->address, y = (*(po_heap_frame *const *)b)->address;
  return x < y ? -1 : x > y;
}

/* file:line by walking the compilation units: for objects without .debug_aranges (clang does not
 * emit them by default), where libdw's address lookup finds no unit. */
static const char *src_by_units(Dwfl_Module *mod, Dwarf_Addr pc, int *line) {
  Dwarf_Addr bias = 0;
  Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
  if (!dw) return NULL;
  Dwarf_CU *cu = NULL;
  Dwarf_Die cudie;
  while (dwarf_get_units(dw, cu, &cu, NULL, NULL, &cudie, NULL) == 0) {
    if (dwarf_haspc(&cudie, pc - bias) <= 0) continue;
    Dwarf_Line *l = dwarf_getsrc_die(&cudie, pc - bias);
    const char *src = l ? dwarf_linesrc(l, NULL, NULL) : NULL;
    if (src && dwarf_lineno(l, line) == 0) return src;
  }
  return NULL;
}

/* Resolves one address; the strings are copied into the arena. */
static int resolve(Dwfl *d, po_heap_frame *f, po__heap_arena **arena) {
  Dwarf_Addr pc = (Dwarf_Addr)(f->address - 1);
  Dwfl_Module *mod = dwfl_addrmodule(d, pc);
  if (!mod) return 0;
  const char *name = dwfl_module_addrname(mod, pc);
  if (name && !(f->function = po__heap_arena_strndup(arena, name, 1024))) return PO_ENOMEM;
  Dwfl_Line *ln = dwfl_module_getsrc(mod, pc);
  int line = 0;
  const char *src = ln ? dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL) : NULL;
  if (!src) src = src_by_units(mod, pc, &line);
  if (src) {
    if (!(f->file = po__heap_arena_strndup(arena, src, 4096))) return PO_ENOMEM;
    f->line = line;
  }
  return 0;
}

int po__heap_symbolize(const po_heap_module *mods, uint32_t nmods, po_heap_frame **frames, size_t n,
                       po__heap_arena **arena) {
  if (n == 0) return 0;
  Dwfl *d = open_dwfl(mods, nmods, frames, n);
  if (!d) return PO_ENOMEM;
  /* Each distinct address is resolved once; equal addresses share the strings. */
  qsort(frames, n, sizeof frames[0], by_address);
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    if (i > 0 && frames[i]->address == frames[i - 1]->address) {
      frames[i]->function = frames[i - 1]->function;
      frames[i]->file = frames[i - 1]->file;
      frames[i]->line = frames[i - 1]->line;
      continue;
    }
    rc = resolve(d, frames[i], arena);
  }
  dwfl_end(d);
  return rc;
}
