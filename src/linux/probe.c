/* Linux system and process probes behind src/platform.h.
 *
 * Cost model: one sample must cost a few microseconds, so every file is opened once in
 * po__probe_create_at and re-read with pread(fd, buf, cap, 0) (procfs, sysfs and cgroupfs
 * regenerate the text at offset 0), parsed in place by the hand scanner in proc_parse.c, and the
 * read buffer belongs to the probe (it only grows when a file outgrows it). */
#include "platform.h"
#include "base/base.h"
#include "linux/cgroup.h"
#include "linux/scan.h"

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PO__DEV_CACHE 256
#define PO__BUF_INITIAL 65536
#define PO__BUF_MAX (16u << 20)
/* procfs, sysfs and cgroupfs generate a file's text when it is read. A read that returns less
 * than asked and less than this ended the file: seq_file fills a buffer of at least a page and
 * stops early only when the next record (well under a kilobyte) would not fit, sysfs attributes
 * come whole, and a regular file (a fake root) is short only at its end. Not asking again for
 * the 0 that ends the file saves one system call per file per tick (a few microseconds each). */
#define PO__SHORT_READ_EOF 2048

/* DEV_EMPTY: a whole disk with no capacity that never did I/O (an unconfigured zram device, an
 * empty drive): not listed, and classified again once it does I/O. */
enum { DEV_WHOLE = 1, DEV_PART = 2, DEV_SKIP = 3, DEV_EMPTY = 4 };

typedef struct po__prev_disk {
  char name[PO_PROBE_DISK_NAME_LEN];
  uint64_t read_bytes, write_bytes, busy_ms;
} po__prev_disk;

struct po_probe {
  char root[256]; /* "" = real */
  int real;
  int fd_stat, fd_meminfo, fd_diskstats, fd_pressure, fd_loadavg;
  int cg_version; /* 2, 1, 0 none */
  int fd_cg_max, fd_cg_high, fd_cg_current, fd_cg_stat;
  po__cgroup cg;         /* the limits found when the probe was opened */
  uint64_t budget_bytes; /* MEMORY_LIMIT_BYTES (0: none) */
  int fd_self_statm;     /* opened with a budget and no cgroup limit: the job is this process */
  int statm_pid;         /* the process fd_self_statm describes (a forked child reopens it) */
  int has_sys_block;
  /* this process, opened once (reopened after fork) */
  int self_pid;
  int fd_self_stat, fd_self_status, fd_self_io, fd_self_fddir;
  long clk_tck;
  long page_size;
  /* rate baselines */
  int have_prev;
  uint64_t prev_t_ns;
  po__cpu_times prev_total;
  uint32_t prev_cpu_count;
  int prev_cpu_ids[PO_PROBE_MAX_CPUS];
  po__cpu_times prev_cpus[PO_PROBE_MAX_CPUS];
  uint32_t prev_disk_count;
  po__prev_disk prev_disks[PO_PROBE_MAX_DISKS];
  int proc_prev_pid, proc_prev_children;
  double proc_prev_cpu_s;
  uint64_t proc_prev_t_ns;
  /* whole disk / partition classification, by name */
  uint32_t dev_count;
  struct {
    char name[PO_PROBE_DISK_NAME_LEN];
    uint8_t kind;
  } devs[PO__DEV_CACHE];
  uint32_t parse_errors;
  int nomem; /* an allocation failed during this call: its result is incomplete */
  po__stat_parsed stat_scratch; /* 20 KB: kept off the caller's stack */
  /* read buffer */
  char *buf;
  size_t cap;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int path_of(const po_probe *p, char *out, size_t len, const char *rel) {
  int n = snprintf(out, len, "%s%s", p->root, rel);
  return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static int open_rel(const po_probe *p, const char *rel) {
  char path[512];
  if (path_of(p, path, sizeof path, rel) != 0) return -1;
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Reads a whole file from offset 0 into p->buf (NUL-terminated). Grows the buffer when the file
 * fills it. Returns the length, or -1 (when the buffer could not grow, with p->nomem set). */
static ssize_t read_fd(po_probe *p, int fd) {
  if (fd < 0) return -1;
  for (;;) {
    size_t got = 0;
    for (;;) {
      size_t want = p->cap - 1 - got;
      ssize_t r = pread(fd, p->buf + got, want, (off_t)got);
      if (r < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (r == 0) break;
      got += (size_t)r;
      if (got == p->cap - 1 || ((size_t)r < want && (size_t)r < PO__SHORT_READ_EOF)) break;
    }
    if (got < p->cap - 1 || p->cap >= PO__BUF_MAX) {
      p->buf[got] = '\0';
      return (ssize_t)got;
    }
    char *nb = po__realloc(p->buf, p->cap * 2);
    if (!nb) {
      p->nomem = 1;
      return -1;
    }
    p->buf = nb;
    p->cap *= 2;
  }
}

ssize_t po__read_fd_text(int fd, char *dst, size_t len) {
  ssize_t r, got = 0;
  while ((size_t)got < len - 1) {
    r = read(fd, dst + got, len - 1 - (size_t)got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  dst[got] = '\0';
  return got;
}

ssize_t po__read_rel_text(const char *root, const char *rel, char *dst, size_t len) {
  char path[1400];
  int n = snprintf(path, sizeof path, "%s%s", root, rel);
  if (n < 0 || (size_t)n >= sizeof path) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t got = po__read_fd_text(fd, dst, len);
  close(fd);
  return got;
}

static int exists_rel(const po_probe *p, const char *rel) {
  char path[512];
  if (path_of(p, path, sizeof path, rel) != 0) return 0;
  return access(path, F_OK) == 0;
}

static uint64_t parse_u64_text(const char *s, int *ok) {
  uint64_t v = 0;
  const char *q = s;
  while (*q == ' ' || *q == '\t') q++;
  if (!(*q >= '0' && *q <= '9')) {
    *ok = 0;
    return 0;
  }
  while (*q >= '0' && *q <= '9') {
    uint64_t d = (uint64_t)(*q - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    q++;
  }
  *ok = 1;
  return v;
}

/* Opens the memory files of the cgroup directory cgroup.c chose (the tightest limit's, else the
 * process's own): v2 memory.max, memory.high (when set there), memory.current, memory.stat; v1
 * memory.limit_in_bytes, memory.usage_in_bytes, memory.stat. */
static void open_cgroup(po_probe *p) {
  p->fd_cg_max = p->fd_cg_high = p->fd_cg_current = p->fd_cg_stat = -1;
  po__cgroup_discover(p->root, &p->cg);
  p->cg_version = p->cg.version;
  if (!p->cg_version) return;
  char rel[PO__CG_PATH + 64];
  const char *d = p->cg.mem_dir;
  int v2 = p->cg_version == 2;
  snprintf(rel, sizeof rel, "%s/%s", d, v2 ? "memory.max" : "memory.limit_in_bytes");
  p->fd_cg_max = open_rel(p, rel);
  snprintf(rel, sizeof rel, "%s/%s", d, v2 ? "memory.current" : "memory.usage_in_bytes");
  p->fd_cg_current = open_rel(p, rel);
  snprintf(rel, sizeof rel, "%s/memory.stat", d);
  p->fd_cg_stat = open_rel(p, rel);
  if (v2 && p->cg.mem_dir_has_high) {
    snprintf(rel, sizeof rel, "%s/memory.high", d);
    p->fd_cg_high = open_rel(p, rel);
  }
  if (p->fd_cg_max < 0 || p->fd_cg_current < 0) p->cg_version = 0;
}

static void open_self(po_probe *p) {
  p->self_pid = po__pid();
  p->fd_self_stat = open_rel(p, "/proc/self/stat");
  p->fd_self_status = open_rel(p, "/proc/self/status");
  p->fd_self_io = open_rel(p, "/proc/self/io");
  char path[512];
  p->fd_self_fddir = -1;
  if (path_of(p, path, sizeof path, "/proc/self/fd") == 0)
    p->fd_self_fddir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void close_self(po_probe *p) {
  close_fd(&p->fd_self_stat);
  close_fd(&p->fd_self_status);
  close_fd(&p->fd_self_io);
  close_fd(&p->fd_self_fddir);
}

int po__probe_create_at(const char *root, po_probe **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  if (!root) root = "";
  po_probe *p = po__calloc(1, sizeof *p);
  if (!p) return PO_ENOMEM;
  if (po__strlcpy(p->root, root, sizeof p->root)) {
    free(p);
    return PO_EINVAL;
  }
  size_t rl = strlen(p->root);
  while (rl > 1 && p->root[rl - 1] == '/') p->root[--rl] = '\0';
  p->real = p->root[0] == '\0' || !strcmp(p->root, "/");
  if (!strcmp(p->root, "/")) p->root[0] = '\0';
  p->cap = PO__BUF_INITIAL;
  p->buf = po__malloc(p->cap);
  if (!p->buf) {
    free(p);
    return PO_ENOMEM;
  }
  p->fd_stat = open_rel(p, "/proc/stat");
  if (p->fd_stat < 0) {
    free(p->buf);
    free(p);
    return PO_ENOENT;
  }
  p->fd_meminfo = open_rel(p, "/proc/meminfo");
  p->fd_diskstats = open_rel(p, "/proc/diskstats");
  p->fd_pressure = open_rel(p, "/proc/pressure/memory");
  p->fd_loadavg = open_rel(p, "/proc/loadavg");
  p->has_sys_block = exists_rel(p, "/sys/block");
  open_cgroup(p);
  p->fd_self_statm = -1;
  open_self(p);
  p->clk_tck = sysconf(_SC_CLK_TCK);
  if (p->clk_tck <= 0) p->clk_tck = 100;
  p->page_size = sysconf(_SC_PAGESIZE);
  if (p->page_size <= 0) p->page_size = 4096;
  p->proc_prev_pid = -1;
  *out = p;
  return 0;
}

int po_probe_create(const po_config *cfg, po_probe **out) {
  po_config c;
  po__probe_config(cfg, &c);
  int rc = po__probe_create_at(c.proc_root, out);
  if (!rc) po__probe_set_memory_budget(*out, c.memory_limit_bytes);
  return rc;
}

void po__probe_set_memory_budget(po_probe *p, int64_t bytes) {
  if (p) p->budget_bytes = bytes > 0 ? (uint64_t)bytes : 0;
}

void po_probe_destroy(po_probe *p) {
  if (!p) return;
  close_fd(&p->fd_stat);
  close_fd(&p->fd_meminfo);
  close_fd(&p->fd_diskstats);
  close_fd(&p->fd_pressure);
  close_fd(&p->fd_loadavg);
  close_fd(&p->fd_cg_max);
  close_fd(&p->fd_cg_high);
  close_fd(&p->fd_self_statm);
  close_fd(&p->fd_cg_current);
  close_fd(&p->fd_cg_stat);
  close_self(p);
  free(p->buf);
  free(p);
}

void po_probe_reset(po_probe *p) {
  if (!p) return;
  p->have_prev = 0;
  p->prev_cpu_count = 0;
  p->prev_disk_count = 0;
  p->proc_prev_pid = -1;
}

/* ---- CPU ---------------------------------------------------------------------------------- */

static uint64_t dsub(uint64_t a, uint64_t b) {
  return a > b ? a - b : 0;
}

static void cpu_util(const po__cpu_times *cur, const po__cpu_times *prev, po_cpu_usage *u) {
  uint64_t user = dsub(cur->user, prev->user) + dsub(cur->nice, prev->nice);
  uint64_t sys = dsub(cur->system, prev->system) + dsub(cur->irq, prev->irq) +
                 dsub(cur->softirq, prev->softirq);
  uint64_t iow = dsub(cur->iowait, prev->iowait);
  uint64_t steal = dsub(cur->steal, prev->steal);
  uint64_t idle = dsub(cur->idle, prev->idle);
  uint64_t total = user + sys + iow + steal + idle;
  memset(u, 0, sizeof *u);
  if (total == 0) return;
  double t = (double)total;
  u->user = (double)user / t;
  u->system = (double)sys / t;
  u->iowait = (double)iow / t;
  u->steal = (double)steal / t;
  u->idle = (double)idle / t;
  u->busy = (double)(user + sys + steal) / t;
}

static int sample_cpu(po_probe *p, po_system_sample *out) {
  po__stat_parsed *stp = &p->stat_scratch;
  ssize_t n = read_fd(p, p->fd_stat);
  if (n <= 0) {
    out->missing |= PO_PROBE_MISSING_STAT;
    return PO_EIO;
  }
  if (po__parse_stat(p->buf, (size_t)n, stp) != 0) {
    p->parse_errors++;
    out->missing |= PO_PROBE_MISSING_STAT;
    return PO_EIO;
  }
  p->parse_errors += stp->bad_lines;
  out->cpu_count = stp->cpu_count;
  out->cpus_dropped = stp->cpus_dropped;
  out->ctxt = stp->ctxt;
  out->procs_running = stp->procs_running;
  out->procs_blocked = stp->procs_blocked;
  for (uint32_t i = 0; i < stp->cpu_count; i++) out->cpu_ids[i] = stp->cpu_ids[i];
  if (p->have_prev) {
    cpu_util(&stp->total, &p->prev_total, &out->cpu);
    for (uint32_t i = 0; i < stp->cpu_count; i++) {
      uint32_t j = i;
      if (j >= p->prev_cpu_count || p->prev_cpu_ids[j] != stp->cpu_ids[i]) {
        for (j = 0; j < p->prev_cpu_count && p->prev_cpu_ids[j] != stp->cpu_ids[i]; j++) {
        }
      }
      if (j < p->prev_cpu_count)
        cpu_util(&stp->cpus[i], &p->prev_cpus[j], &out->cpus[i]);
      else
        memset(&out->cpus[i], 0, sizeof out->cpus[i]); /* a core that came online */
    }
  }
  p->prev_total = stp->total;
  p->prev_cpu_count = stp->cpu_count;
  memcpy(p->prev_cpu_ids, stp->cpu_ids, stp->cpu_count * sizeof stp->cpu_ids[0]);
  memcpy(p->prev_cpus, stp->cpus, stp->cpu_count * sizeof stp->cpus[0]);
  return 0;
}

/* ---- memory ------------------------------------------------------------------------------- */

/* A limit file: "max" (and v1's huge "no limit") is 0. */
static uint64_t cg_read_limit(po_probe *p, int fd) {
  uint64_t v = 0;
  if (read_fd(p, fd) > 0) po__cgroup_parse_limit(p->buf, &v);
  return v;
}

static uint64_t cg_read_u64(po_probe *p, int fd) {
  int ok;
  return read_fd(p, fd) > 0 ? parse_u64_text(p->buf, &ok) : 0;
}

/* memory.stat: inactive_file (page cache the kernel drops first) and, for v1 when the limiting
 * parent is out of view, hierarchical_memory_limit. */
static uint64_t cg_read_stat(po_probe *p, uint64_t *hier_limit) {
  *hier_limit = 0;
  ssize_t n = read_fd(p, p->fd_cg_stat);
  if (n <= 0) return 0;
  if (p->cg.v1_limit_in_stat)
    *hier_limit = po__cgroup_stat_value(p->buf, (size_t)n, "hierarchical_memory_limit");
  return po__cgroup_stat_value(p->buf, (size_t)n,
                               p->cg_version == 2 ? "inactive_file" : "total_inactive_file");
}

static void sample_meminfo(po_probe *p, po_system_sample *out) {
  po__meminfo_parsed mi;
  ssize_t n = read_fd(p, p->fd_meminfo);
  if (n <= 0 || po__parse_meminfo(p->buf, (size_t)n, &mi) != 0) {
    out->missing |= PO_PROBE_MISSING_MEMINFO;
    return;
  }
  p->parse_errors += mi.bad_lines;
  out->mem_total_bytes = mi.total;
  out->mem_free_bytes = mi.free;
  out->mem_buffers_bytes = mi.buffers;
  out->mem_cached_bytes = mi.cached + mi.sreclaimable;
  out->mem_shared_bytes = mi.shmem;
  out->mem_available_bytes =
      mi.has_available ? mi.available : mi.free + mi.buffers + mi.cached; /* pre-3.14 kernels */
  if (out->mem_available_bytes > mi.total) out->mem_available_bytes = mi.total;
  out->mem_used_bytes = mi.total - out->mem_available_bytes;
  out->swap_total_bytes = mi.swap_total;
  out->swap_free_bytes = mi.swap_free;
  out->swap_used_bytes = dsub(mi.swap_total, mi.swap_free);
}

/* The cgroup's limits and usage; when its limit (hard or soft, whichever is lower) is below the
 * machine's memory, the effective limit becomes it. Returns the cgroup's working set when a
 * cgroup limit applies, else 0. */
static uint64_t sample_cgroup(po_probe *p, po_system_sample *out) {
  if (!p->cg_version) {
    out->missing |= PO_PROBE_MISSING_CGROUP;
    return 0;
  }
  uint64_t hier;
  uint64_t inactive = cg_read_stat(p, &hier);
  uint64_t max = p->cg.v1_limit_in_stat ? hier : cg_read_limit(p, p->fd_cg_max);
  uint64_t high = p->fd_cg_high >= 0 ? cg_read_limit(p, p->fd_cg_high) : 0;
  out->cgroup_memory_current_bytes = cg_read_u64(p, p->fd_cg_current);
  out->cgroup_memory_max_bytes = max;
  out->cgroup_memory_high_bytes = high;
  out->cgroup_swap_max_bytes = p->cg.swap_max;
  uint64_t lim = max && (!high || max <= high) ? max : high;
  if (!lim) return 0;
  out->in_cgroup_limit = 1;
  if (out->mem_total_bytes && lim >= out->mem_total_bytes) return 0; /* the host is tighter */
  /* Page cache the kernel can drop does not count against the job, as in docker stats and the
   * kubelet: used = current - inactive_file. */
  uint64_t used = dsub(out->cgroup_memory_current_bytes, inactive);
  uint64_t avail = dsub(lim, used);
  out->limit_source = lim == max ? PO_LIMIT_CGROUP : PO_LIMIT_CGROUP_HIGH;
  out->memory_limit_bytes = lim;
  if (out->mem_total_bytes && avail > out->mem_available_bytes) avail = out->mem_available_bytes;
  out->effective_available_bytes = avail;
  return used;
}

/* This process's RSS from /proc/self/statm (the job, when a budget is set outside a cgroup
 * limit), or 0. */
static uint64_t self_rss(po_probe *p) {
  if (p->fd_self_statm >= 0 && p->statm_pid != (int)getpid()) close_fd(&p->fd_self_statm);
  if (p->fd_self_statm < 0) {
    p->fd_self_statm = open_rel(p, "/proc/self/statm");
    p->statm_pid = (int)getpid();
  }
  ssize_t n = read_fd(p, p->fd_self_statm);
  if (n <= 0) return 0;
  po__scan s;
  uint64_t size, resident;
  po__scan_init(&s, p->buf, (size_t)n);
  if (!po__scan_u64(&s, &size) || !po__scan_u64(&s, &resident)) return 0;
  return resident * (uint64_t)p->page_size;
}

static void sample_memory(po_probe *p, po_system_sample *out) {
  sample_meminfo(p, out);
  out->limit_source = PO_LIMIT_SYSTEM;
  out->memory_limit_bytes = out->mem_total_bytes;
  out->effective_available_bytes = out->mem_available_bytes;
  uint64_t job = sample_cgroup(p, out);
  /* A configured budget below the limit in force becomes the limit; the job's usage is then the
   * cgroup's working set under a cgroup limit, else this process's RSS. */
  uint64_t b = p->budget_bytes;
  if (!b || (out->memory_limit_bytes && b >= out->memory_limit_bytes)) return;
  if (!job) job = self_rss(p);
  uint64_t avail = dsub(b, job);
  out->limit_source = PO_LIMIT_CONFIG;
  out->memory_limit_bytes = b;
  if (avail < out->effective_available_bytes || !out->mem_total_bytes)
    out->effective_available_bytes = avail;
}

/* ---- pressure, load ----------------------------------------------------------------------- */

static void sample_pressure(po_probe *p, po_system_sample *out) {
  ssize_t n = read_fd(p, p->fd_pressure);
  if (n <= 0) {
    out->missing |= PO_PROBE_MISSING_PRESSURE;
    return;
  }
  po__scan s;
  po__scan_init(&s, p->buf, (size_t)n);
  while (!po__scan_eof(&s)) {
    const char *w;
    size_t wn;
    if (po__scan_word(&s, &w, &wn)) {
      int some = wn == 4 && !memcmp(w, "some", 4);
      int full = wn == 4 && !memcmp(w, "full", 4);
      while ((some || full) && po__scan_word(&s, &w, &wn)) {
        po__scan f;
        double d;
        uint64_t u;
        po__scan_init(&f, w, wn);
        if (po__scan_lit(&f, "avg10=", 6) && po__scan_double(&f, &d)) {
          if (some)
            out->pressure_some_avg10 = d;
          else
            out->pressure_full_avg10 = d;
        } else if (some && po__scan_lit(&f, "total=", 6) && po__scan_u64(&f, &u)) {
          out->pressure_some_total_us = u;
        }
      }
    }
    po__scan_next_line(&s);
  }
  out->has_pressure = 1;
}

static void sample_loadavg(po_probe *p, po_system_sample *out) {
  ssize_t n = read_fd(p, p->fd_loadavg);
  po__scan s;
  if (n <= 0) {
    out->missing |= PO_PROBE_MISSING_LOADAVG;
    return;
  }
  po__scan_init(&s, p->buf, (size_t)n);
  for (int i = 0; i < 3; i++)
    if (!po__scan_double(&s, &out->loadavg[i])) {
      out->missing |= PO_PROBE_MISSING_LOADAVG;
      p->parse_errors++;
      return;
    }
}

/* ---- disks -------------------------------------------------------------------------------- */

static int slaves_nonempty(const po_probe *p, const char *name) {
  char rel[128], path[600];
  snprintf(rel, sizeof rel, "/sys/block/%s/slaves", name);
  if (path_of(p, path, sizeof path, rel) != 0) return 0;
  DIR *d = opendir(path);
  if (!d) return 0;
  int any = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') {
      any = 1;
      break;
    }
  closedir(d);
  return any;
}

typedef struct {
  po_probe *p;
  po_system_sample *out;
  char last_whole[PO_PROBE_DISK_NAME_LEN];
} disk_ctx;

/* Whole disk, partition, or a device not counted (loop, ram, and stacked devices such as dm-*
 * and md* whose I/O is already counted on the disks below them). /sys/block lists whole disks;
 * without /sys, a name that extends the previous disk's name by digits (sda1, nvme0n1p2) is a
 * partition. */
/* Reads a small file by relative path into dst (NUL-terminated). Returns length or -1. */
static ssize_t read_small(const po_probe *p, const char *rel, char *dst, size_t len) {
  int fd = open_rel(p, rel);
  if (fd < 0) return -1;
  ssize_t got = po__read_fd_text(fd, dst, len);
  close(fd);
  return got;
}

/* /sys/block/<name>/size reads 0 (sectors): a device without capacity. */
static int zero_size(const po_probe *p, const char *name) {
  char rel[128], val[32];
  snprintf(rel, sizeof rel, "/sys/block/%s/size", name);
  ssize_t n = read_small(p, rel, val, sizeof val);
  return n > 0 && val[0] == '0' && (n == 1 || val[1] == '\n' || val[1] == '\0');
}

static int classify(disk_ctx *c, const po__diskstat_line *d) {
  po_probe *p = c->p;
  uint32_t cached = p->dev_count;
  for (uint32_t i = 0; i < p->dev_count; i++)
    if (!strcmp(p->devs[i].name, d->name)) {
      if (p->devs[i].kind != DEV_EMPTY || (!d->reads && !d->writes)) return p->devs[i].kind;
      cached = i; /* it started doing I/O: look again */
      break;
    }
  int kind;
  if (!strncmp(d->name, "loop", 4) || !strncmp(d->name, "ram", 3) || d->major == 7 ||
      d->major == 1) {
    kind = DEV_SKIP;
  } else if (p->has_sys_block) {
    char rel[128];
    snprintf(rel, sizeof rel, "/sys/block/%s", d->name);
    kind = exists_rel(p, rel) ? (slaves_nonempty(p, d->name) ? DEV_SKIP : DEV_WHOLE) : DEV_PART;
    if (kind == DEV_WHOLE && !d->reads && !d->writes && zero_size(p, d->name)) kind = DEV_EMPTY;
  } else {
    size_t l = strlen(c->last_whole);
    const char *rest = d->name + l;
    kind = DEV_WHOLE;
    if (l && !strncmp(d->name, c->last_whole, l) && *rest) {
      if (*rest == 'p') rest++;
      if (*rest) {
        while (*rest >= '0' && *rest <= '9') rest++;
        if (!*rest) kind = DEV_PART;
      }
    }
  }
  if (cached < p->dev_count) {
    p->devs[cached].kind = (uint8_t)kind;
  } else if (p->dev_count < PO__DEV_CACHE) {
    memcpy(p->devs[p->dev_count].name, d->name, sizeof d->name);
    p->devs[p->dev_count].kind = (uint8_t)kind;
    p->dev_count++;
  }
  return kind;
}

static void on_disk(const po__diskstat_line *d, void *vctx) {
  disk_ctx *c = vctx;
  po_system_sample *out = c->out;
  int kind = classify(c, d);
  if (kind == DEV_WHOLE) po__strlcpy(c->last_whole, d->name, sizeof c->last_whole);
  if (kind != DEV_WHOLE) return;
  if (out->disk_count >= PO_PROBE_MAX_DISKS) {
    out->disks_dropped++;
    return;
  }
  po_disk_usage *ds = &out->disks[out->disk_count++];
  memset(ds, 0, sizeof *ds);
  memcpy(ds->name, d->name, sizeof ds->name);
  /* diskstats counts 512-byte sectors whatever the device's sector size. */
  ds->read_bytes = d->sectors_read > UINT64_MAX / 512 ? UINT64_MAX : d->sectors_read * 512;
  ds->write_bytes = d->sectors_written > UINT64_MAX / 512 ? UINT64_MAX : d->sectors_written * 512;
  ds->read_ops = d->reads;
  ds->write_ops = d->writes;
  ds->busy_ms = d->busy_ms;
}

static void sample_disks(po_probe *p, po_system_sample *out, double dt) {
  ssize_t n = read_fd(p, p->fd_diskstats);
  if (n < 0) {
    out->missing |= PO_PROBE_MISSING_DISKSTATS;
    return;
  }
  disk_ctx c = {p, out, ""};
  p->parse_errors += po__parse_diskstats(p->buf, (size_t)n, on_disk, &c);
  for (uint32_t i = 0; i < out->disk_count; i++) {
    po_disk_usage *d = &out->disks[i];
    uint32_t j = i;
    if (j >= p->prev_disk_count || strcmp(p->prev_disks[j].name, d->name)) {
      for (j = 0; j < p->prev_disk_count && strcmp(p->prev_disks[j].name, d->name); j++) {
      }
    }
    if (j >= p->prev_disk_count) {
      d->new_disk = p->have_prev; /* not "new" on the very first sample */
    } else if (p->have_prev && dt > 0) {
      const po__prev_disk *q = &p->prev_disks[j];
      d->read_bytes_per_second = (double)dsub(d->read_bytes, q->read_bytes) / dt;
      d->write_bytes_per_second = (double)dsub(d->write_bytes, q->write_bytes) / dt;
      d->busy_ratio = (double)dsub(d->busy_ms, q->busy_ms) / (dt * 1000.0);
      if (d->busy_ratio > 1.0) d->busy_ratio = 1.0;
    }
    out->disk_read_bytes_per_second += d->read_bytes_per_second;
    out->disk_write_bytes_per_second += d->write_bytes_per_second;
    if (d->busy_ratio > out->disk_busy_ratio) out->disk_busy_ratio = d->busy_ratio;
  }
  p->prev_disk_count = out->disk_count;
  for (uint32_t i = 0; i < out->disk_count; i++) {
    memcpy(p->prev_disks[i].name, out->disks[i].name, PO_PROBE_DISK_NAME_LEN);
    p->prev_disks[i].read_bytes = out->disks[i].read_bytes;
    p->prev_disks[i].write_bytes = out->disks[i].write_bytes;
    p->prev_disks[i].busy_ms = out->disks[i].busy_ms;
  }
}

int po_probe_system(po_probe *p, po_system_sample *out) {
  if (!p || !out) return PO_EINVAL;
  /* Only the header fields: the arrays are filled up to their counts. */
  /* Not the whole 30 KB struct: the arrays are cleared up to what the sample fills. */
  memset(out, 0, offsetof(po_system_sample, cpus));
  memset(&out->ctxt, 0, offsetof(po_system_sample, disks) - offsetof(po_system_sample, ctxt));
  memset(&out->disk_read_bytes_per_second, 0,
         sizeof *out - offsetof(po_system_sample, disk_read_bytes_per_second));
  uint64_t t = now_ns();
  out->t_ns = t;
  double dt = p->have_prev ? (double)(t - p->prev_t_ns) / 1e9 : 0.0;
  p->nomem = 0;
  int rc = sample_cpu(p, out);
  if (!p->have_prev) memset(out->cpus, 0, out->cpu_count * sizeof out->cpus[0]);
  sample_memory(p, out);
  sample_pressure(p, out);
  sample_loadavg(p, out);
  sample_disks(p, out, dt);
  out->interval_seconds = dt;
  out->has_rates = p->have_prev;
  out->parse_errors = p->parse_errors;
  p->have_prev = 1;
  p->prev_t_ns = t;
  return p->nomem ? PO_ENOMEM : rc;
}

/* ---- processes ---------------------------------------------------------------------------- */

typedef struct proc_files {
  int stat, status, io, fddir;
  int owned; /* close after use */
} proc_files;

int po__count_fds(int dirfd, int exclude_self_dir) {
  char dbuf[4096];
  int count = 0;
  if (dirfd < 0) return -1;
  if (lseek(dirfd, 0, SEEK_SET) < 0) return -1;
  for (;;) {
    long n = syscall(SYS_getdents64, dirfd, dbuf, sizeof dbuf);
    if (n < 0) return -1;
    if (n == 0) break;
    for (long off = 0; off < n;) {
      /* struct linux_dirent64: ino(8) off(8) reclen(2) type(1) name[] */
      unsigned short reclen;
      memcpy(&reclen, dbuf + off + 16, sizeof reclen);
      const char *name = dbuf + off + 19;
      if (name[0] != '.') count++;
      if (reclen == 0) break;
      off += reclen;
    }
  }
  /* The directory fd itself is one of this process's fds. */
  if (exclude_self_dir && count > 0) count--;
  return count;
}

static void read_io(po_probe *p, int fd, po_process_sample *out) {
  ssize_t n = read_fd(p, fd);
  if (n <= 0) return;
  po__scan s;
  po__scan_init(&s, p->buf, (size_t)n);
  while (!po__scan_eof(&s)) {
    const char *w;
    size_t wn;
    uint64_t v;
    if (po__scan_word(&s, &w, &wn) && po__scan_u64(&s, &v)) {
      if (wn == 6 && !memcmp(w, "rchar:", 6))
        out->rchar += v;
      else if (wn == 6 && !memcmp(w, "wchar:", 6))
        out->wchar += v;
      else if (wn == 11 && !memcmp(w, "read_bytes:", 11))
        out->read_bytes += v;
      else if (wn == 12 && !memcmp(w, "write_bytes:", 12))
        out->write_bytes += v;
    }
    po__scan_next_line(&s);
  }
  out->has_io = 1;
}

static int open_pid_file(const po_probe *p, int pid, const char *what) {
  char rel[64];
  snprintf(rel, sizeof rel, "/proc/%d/%s", pid, what);
  return open_rel(p, rel);
}

/* Adds one process's numbers to out. main = 1 for the process asked for (its status gives peak
 * RSS, swap and the RSS `ps` shows). */
static int add_process(po_probe *p, const proc_files *f, int main_proc, po_process_sample *out) {
  po__pidstat_parsed ps;
  ssize_t n = read_fd(p, f->stat);
  if (n <= 0 || po__parse_pidstat(p->buf, (size_t)n, &ps) != 0) return PO_ENOENT;
  out->user_seconds += (double)ps.utime / (double)p->clk_tck;
  out->system_seconds += (double)ps.stime / (double)p->clk_tck;
  out->threads += ps.threads;
  out->vsz_bytes += ps.vsize;
  uint64_t rss = ps.rss_pages * (uint64_t)p->page_size;
  if (main_proc && f->status >= 0) {
    po__status_parsed st;
    n = read_fd(p, f->status);
    if (n > 0 && po__parse_status(p->buf, (size_t)n, &st) == 0) {
      if (st.rss) rss = st.rss;
      out->peak_rss_bytes = st.hwm;
      out->swap_bytes += st.swap;
    }
  }
  out->rss_bytes += rss;
  if (f->io >= 0) read_io(p, f->io, out);
  out->process_count++;
  return 0;
}

static void close_files(proc_files *f) {
  if (!f->owned) return;
  close_fd(&f->stat);
  close_fd(&f->status);
  close_fd(&f->io);
  close_fd(&f->fddir);
}

static void open_files(const po_probe *p, int pid, proc_files *f) {
  f->owned = 1;
  f->stat = open_pid_file(p, pid, "stat");
  f->status = open_pid_file(p, pid, "status");
  f->io = open_pid_file(p, pid, "io");
  char rel[64], path[600];
  snprintf(rel, sizeof rel, "/proc/%d/fd", pid);
  f->fddir =
      path_of(p, path, sizeof path, rel) == 0 ? open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
}

typedef struct {
  int pid, ppid;
} pid_pair;

/* Descendants of root_pid through a /proc scan (bounded to 65536 processes; more are ignored). */
static void add_descendants(po_probe *p, int root_pid, po_process_sample *out) {
  char path[600];
  if (path_of(p, path, sizeof path, "/proc") != 0) return;
  DIR *d = opendir(path);
  if (!d) return;
  size_t cap = 1024, n = 0;
  pid_pair *pairs = po__malloc(cap * sizeof *pairs);
  if (!pairs) p->nomem = 1;
  struct dirent *e;
  while (pairs && (e = readdir(d))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    int pid = atoi(e->d_name);
    int fd = open_pid_file(p, pid, "stat");
    if (fd < 0) continue;
    po__pidstat_parsed ps;
    ssize_t len = read_fd(p, fd);
    close(fd);
    if (len <= 0 || po__parse_pidstat(p->buf, (size_t)len, &ps) != 0) continue;
    if (n == cap) {
      if (cap >= 65536) break;
      pid_pair *np = po__realloc(pairs, cap * 2 * sizeof *pairs);
      if (!np) {
        p->nomem = 1;
        break;
      }
      pairs = np;
      cap *= 2;
    }
    pairs[n].pid = pid;
    pairs[n].ppid = ps.ppid;
    n++;
  }
  closedir(d);
  if (!pairs) return;
  /* Breadth-first: a queue of found pids, reusing a marks array. */
  int *queue = po__malloc((n + 1) * sizeof *queue);
  if (!queue) {
    p->nomem = 1;
    free(pairs);
    return;
  }
  size_t head = 0, tail = 0;
  queue[tail++] = root_pid;
  while (head < tail) {
    int parent = queue[head++];
    for (size_t i = 0; i < n; i++) {
      if (pairs[i].ppid != parent || pairs[i].pid == root_pid) continue;
      queue[tail++] = pairs[i].pid;
      pairs[i].ppid = -2; /* visited: never queued twice even with a bogus cycle */
      proc_files f;
      open_files(p, pairs[i].pid, &f);
      (void)add_process(p, &f, 0, out);
      close_files(&f);
      if (tail > n) break;
    }
    if (tail > n) break;
  }
  free(queue);
  free(pairs);
}

int po_probe_process(po_probe *p, int pid, int with_children, po_process_sample *out) {
  if (!p || !out || pid < 0) return PO_EINVAL;
  memset(out, 0, sizeof *out);
  p->nomem = 0;
  int self = pid == 0 || pid == po__pid();
  proc_files f;
  if (self) {
    if (p->self_pid != po__pid()) { /* forked: /proc/self fds still name the parent */
      close_self(p);
      open_self(p);
    }
    f.stat = p->fd_self_stat;
    f.status = p->fd_self_status;
    f.io = p->fd_self_io;
    f.fddir = p->fd_self_fddir;
    f.owned = 0;
    pid = po__pid();
  } else {
    open_files(p, pid, &f);
  }
  out->pid = pid;
  out->with_children = with_children ? 1 : 0;
  int rc = add_process(p, &f, 1, out);
  if (rc == 0) {
    /* The probe's own directory fd is open in this process only when reading ourselves. */
    out->open_fds = po__count_fds(f.fddir, self && p->real);
    if (with_children) add_descendants(p, pid, out);
  }
  close_files(&f);
  if (rc == 0 && p->nomem) rc = PO_ENOMEM;
  if (rc != 0) return rc;
  uint64_t t = now_ns();
  double cpu_s = out->user_seconds + out->system_seconds;
  if (p->proc_prev_pid == pid && p->proc_prev_children == out->with_children &&
      t > p->proc_prev_t_ns) {
    double d = cpu_s - p->proc_prev_cpu_s;
    out->cpu_ratio = d > 0 ? d / ((double)(t - p->proc_prev_t_ns) / 1e9) : 0.0;
  }
  p->proc_prev_pid = pid;
  p->proc_prev_children = out->with_children;
  p->proc_prev_cpu_s = cpu_s;
  p->proc_prev_t_ns = t;
  return 0;
}
