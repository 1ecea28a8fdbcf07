/* The process-tree reader (po_proc_tree_*, perfopt.h): a process and its descendants, read at the
 * caller's pace.
 *
 * Cost model: the reader runs next to the job it measures, so a read must cost microseconds per
 * process of the tree and next to nothing per other process of the machine. A read lists /proc
 * (getdents on a directory kept open) only when the kernel handed out a pid since the last listing
 * (/proc/loadavg's last field), and reads the stat file only of pids it has not classified yet; a pid keeps its classification while it stays listed (a process outside the
 * tree cannot move into it: only a fork creates a descendant, and a fork is a new pid). The tree's
 * own processes are re-read with pread through their stat, status, io and fd files, opened once
 * for the first KEEP_OPEN_MAX of them (the rest are opened per read, so a large tree never runs
 * the caller out of descriptors). */
#include "base/base.h"
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KEEP_OPEN_MAX 128
#define BUF_INITIAL 16384
#define BUF_MAX (1u << 20)
#define SCAN_CHUNK 32768

typedef struct member {
  int pid;
  uint64_t starttime; /* ticks after boot: with the pid, the process's identity */
  int fd_stat, fd_status, fd_io, fd_fd;
  int kept; /* the four files stay open */
  int have_prev;
  double prev_cpu;
  uint64_t prev_t_ns;
  int live_last; /* read as live (not a zombie) last time */
  char comm[PO_PROC_COMM_LEN];
} member;

struct po_proc_tree {
  char root[256]; /* "" = the real /proc */
  int root_pid;
  unsigned flags;
  int proc_fd;    /* the /proc directory, listed once per read */
  int loadavg_fd; /* /proc/loadavg: its last field is the newest pid */
  long last_pid;  /* at the last listing; -1 unknown */
  long clk_tck, page_size;
  member *members; /* sorted by pid */
  size_t nmembers, cap_members;
  size_t kept_open;
  /* every pid of the last listing, sorted, with its classification */
  int *known;
  uint8_t *known_member;
  size_t nknown, cap_known;
  /* scratch: this listing */
  int *cur;
  uint8_t *cur_member;
  size_t ncur, cap_cur;
  uint32_t untracked;
  char *buf;
  size_t cap;
  char dents[SCAN_CHUNK];
};

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double boot_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_pid_file(const po_proc_tree *t, int pid, const char *what, int flags) {
  char path[400];
  int n = snprintf(path, sizeof path, "%s/proc/%d/%s", t->root, pid, what);
  if (n < 0 || (size_t)n >= sizeof path) return -1;
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC | flags);
  while (fd < 0 && errno == EINTR);
  return fd;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Reads a whole file from offset 0 into t->buf (NUL-terminated), growing the buffer when the file
 * fills it. Returns the length, or -1. */
static ssize_t read_whole(po_proc_tree *t, int fd) {
  if (fd < 0) return -1;
  for (;;) {
    size_t got = 0;
    for (;;) {
      ssize_t r = pread(fd, t->buf + got, t->cap - 1 - got, (off_t)got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return -1;
      if (r == 0) break;
      got += (size_t)r;
      if (got == t->cap - 1) break;
    }
    if (got < t->cap - 1 || t->cap >= BUF_MAX) {
      t->buf[got] = '\0';
      return (ssize_t)got;
    }
    char *nb = po__realloc(t->buf, t->cap * 2);
    if (!nb) {
      t->buf[got] = '\0';
      return (ssize_t)got;
    }
    t->buf = nb;
    t->cap *= 2;
  }
}

/* Reads pid's stat through fd, or by opening it when fd < 0. */
static int read_stat(po_proc_tree *t, int pid, int fd, po__pidstat_parsed *ps) {
  int own = fd < 0;
  if (own) fd = open_pid_file(t, pid, "stat", 0);
  ssize_t n = read_whole(t, fd);
  if (own && fd >= 0) close(fd);
  if (n <= 0) return PO_ENOENT;
  return po__parse_pidstat(t->buf, (size_t)n, ps) == 0 ? 0 : PO_EPARSE;
}

/* ---- members -------------------------------------------------------------------------------- */

static size_t member_lower_bound(const po_proc_tree *t, int pid) {
  size_t lo = 0, hi = t->nmembers;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->members[mid].pid < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static member *find_member(po_proc_tree *t, int pid) {
  size_t i = member_lower_bound(t, pid);
  return i < t->nmembers && t->members[i].pid == pid ? &t->members[i] : NULL;
}

static void open_member_files(po_proc_tree *t, member *m) {
  m->fd_stat = m->fd_status = m->fd_io = m->fd_fd = -1;
  m->kept = 0;
  if (t->kept_open >= KEEP_OPEN_MAX) return;
  m->fd_stat = open_pid_file(t, m->pid, "stat", 0);
  if (m->fd_stat < 0) return; /* gone already, or out of descriptors: read by opening */
  m->fd_status = open_pid_file(t, m->pid, "status", 0);
  m->fd_io = open_pid_file(t, m->pid, "io", 0);
  m->fd_fd = open_pid_file(t, m->pid, "fd", O_DIRECTORY);
  m->kept = 1;
  t->kept_open++;
}

static void close_member_files(po_proc_tree *t, member *m) {
  if (m->kept) t->kept_open--;
  m->kept = 0;
  close_fd(&m->fd_stat);
  close_fd(&m->fd_status);
  close_fd(&m->fd_io);
  close_fd(&m->fd_fd);
}

/* Adds pid (its stat already read) to the members. PO_EFULL past PO_PROC_TREE_MAX. */
static int add_member(po_proc_tree *t, int pid, uint64_t starttime) {
  if (t->nmembers >= PO_PROC_TREE_MAX) return PO_EFULL;
  if (t->nmembers == t->cap_members) {
    size_t nc = t->cap_members ? t->cap_members * 2 : 16;
    member *nm = po__realloc(t->members, nc * sizeof *nm);
    if (!nm) return PO_ENOMEM;
    t->members = nm;
    t->cap_members = nc;
  }
  size_t i = member_lower_bound(t, pid);
  memmove(&t->members[i + 1], &t->members[i], (t->nmembers - i) * sizeof *t->members);
  t->nmembers++;
  member *m = &t->members[i];
  memset(m, 0, sizeof *m);
  m->pid = pid;
  m->starttime = starttime;
  open_member_files(t, m);
  return 0;
}

static void remove_member(po_proc_tree *t, size_t i) {
  close_member_files(t, &t->members[i]);
  memmove(&t->members[i], &t->members[i + 1], (t->nmembers - i - 1) * sizeof *t->members);
  t->nmembers--;
}

/* ---- the /proc listing ---------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static int push_cur(po_proc_tree *t, int pid) {
  if (t->ncur == t->cap_cur) {
    size_t nc = t->cap_cur ? t->cap_cur * 2 : 512;
    int *np = po__realloc(t->cur, nc * sizeof *np);
    if (!np) return PO_ENOMEM;
    t->cur = np;
    uint8_t *nm = po__realloc(t->cur_member, nc);
    if (!nm) return PO_ENOMEM;
    t->cur_member = nm;
    t->cap_cur = nc;
  }
  t->cur[t->ncur++] = pid;
  return 0;
}

/* The pids /proc lists now, sorted, into t->cur. */
static int list_pids(po_proc_tree *t) {
  t->ncur = 0;
  if (lseek(t->proc_fd, 0, SEEK_SET) < 0) return PO_EIO;
  int sorted = 1, last = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, t->proc_fd, t->dents, sizeof t->dents);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PO_EIO;
    if (n == 0) break;
    for (long off = 0; off + 19 < n;) {
      unsigned short reclen;
      memcpy(&reclen, t->dents + off + 16, sizeof reclen); /* linux_dirent64: ino off reclen */
      const char *name = t->dents + off + 19;               /* type, then the name */
      if (reclen == 0) break;
      if (name[0] >= '1' && name[0] <= '9') {
        long v = 0;
        const char *q = name;
        while (*q >= '0' && *q <= '9' && v < (1L << 31)) v = v * 10 + (*q++ - '0');
        if (!*q && v < (1L << 31)) {
          if (push_cur(t, (int)v)) return PO_ENOMEM;
          if ((int)v < last) sorted = 0;
          last = (int)v;
        }
      }
      off += reclen;
    }
  }
  if (!sorted) qsort(t->cur, t->ncur, sizeof *t->cur, cmp_int);
  return 0;
}

static int is_member_or_root(po_proc_tree *t, int pid) {
  return pid == t->root_pid || find_member(t, pid) != NULL;
}

/* Classifies the pids of this listing that the previous one did not have (or whose process
 * changed): a new pid whose parent is in the tree joins it. Parents may come before or after
 * their children in pid order (pids wrap), so the pass repeats until nothing changes. */
enum { OUTSIDE = 0, MEMBER = 1, PENDING = 2 };

static int classify_new(po_proc_tree *t) {
  size_t k = 0, npending = 0;
  for (size_t i = 0; i < t->ncur; i++) {
    int pid = t->cur[i];
    while (k < t->nknown && t->known[k] < pid) k++;
    int was_known = k < t->nknown && t->known[k] == pid;
    if (find_member(t, pid))
      t->cur_member[i] = MEMBER;
    else if (was_known && !t->known_member[k])
      t->cur_member[i] = OUTSIDE;
    else
      t->cur_member[i] = PENDING; /* new, or a member that left while its pid stayed listed */
    npending += t->cur_member[i] == PENDING;
  }
  if (npending == 0) return 0;
  int *ppid = po__malloc(t->ncur * sizeof *ppid);
  uint64_t *start = po__malloc(t->ncur * sizeof *start);
  int rc = ppid && start ? 0 : PO_ENOMEM;
  for (size_t i = 0; i < t->ncur && !rc; i++) {
    po__pidstat_parsed ps;
    if (t->cur_member[i] != PENDING) continue;
    if (read_stat(t, t->cur[i], -1, &ps) != 0) {
      t->cur_member[i] = OUTSIDE; /* gone already */
      continue;
    }
    ppid[i] = ps.ppid;
    start[i] = ps.starttime;
  }
  for (int changed = 1; changed && !rc;) {
    changed = 0;
    for (size_t i = 0; i < t->ncur && !rc; i++) {
      if (t->cur_member[i] != PENDING || !is_member_or_root(t, ppid[i])) continue;
      int a = add_member(t, t->cur[i], start[i]);
      if (a == PO_EFULL) {
        t->untracked++;
        t->cur_member[i] = OUTSIDE;
      } else if (a) {
        rc = a;
      } else {
        t->cur_member[i] = MEMBER;
        changed = 1;
      }
    }
  }
  for (size_t i = 0; i < t->ncur; i++)
    if (t->cur_member[i] == PENDING) t->cur_member[i] = OUTSIDE;
  free(ppid);
  free(start);
  return rc;
}

/* The newest pid the kernel handed out (processes and threads), from /proc/loadavg's last field;
 * -1 when unknown. */
static long newest_pid(po_proc_tree *t) {
  char text[128];
  if (t->loadavg_fd < 0) return -1;
  ssize_t n = pread(t->loadavg_fd, text, sizeof text - 1, 0);
  if (n <= 0) return -1;
  text[n] = '\0';
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) text[--n] = '\0';
  const char *sp = strrchr(text, ' ');
  return sp ? strtol(sp + 1, NULL, 10) : -1;
}

/* Lists /proc and brings the classification up to date; the listing becomes the known set. When
 * no pid was handed out since the last listing, no process can have joined the tree and the
 * listing is skipped (the known set may then hold pids that exited: they are never reused before
 * a new pid is handed out, which brings the next listing). */
static int scan(po_proc_tree *t) {
  long newest = newest_pid(t);
  if (newest >= 0 && newest == t->last_pid) return 0;
  int rc = list_pids(t);
  if (!rc) rc = classify_new(t);
  if (rc) return rc;
  int *ti = t->known;
  t->known = t->cur;
  t->cur = ti;
  uint8_t *tm = t->known_member;
  t->known_member = t->cur_member;
  t->cur_member = tm;
  size_t tc = t->cap_known;
  t->cap_known = t->cap_cur;
  t->cap_cur = tc;
  t->nknown = t->ncur;
  t->ncur = 0;
  t->last_pid = newest;
  return 0;
}

/* ---- reading one process -------------------------------------------------------------------- */

static void read_status(po_proc_tree *t, member *m, po_proc_info *r) {
  int fd = m->kept ? m->fd_status : open_pid_file(t, m->pid, "status", 0);
  ssize_t n = read_whole(t, fd);
  if (!m->kept && fd >= 0) close(fd);
  po__status_parsed st;
  if (n <= 0 || po__parse_status(t->buf, (size_t)n, &st) != 0) return;
  if (st.rss) r->rss_bytes = st.rss;
  r->peak_rss_bytes = st.hwm;
  r->swap_bytes = st.swap;
  r->voluntary_ctxt_switches = st.voluntary_ctxt;
  r->involuntary_ctxt_switches = st.nonvoluntary_ctxt;
}

static void read_io(po_proc_tree *t, member *m, po_proc_info *r) {
  int fd = m->kept ? m->fd_io : open_pid_file(t, m->pid, "io", 0);
  ssize_t n = read_whole(t, fd);
  if (!m->kept && fd >= 0) close(fd);
  if (n <= 0) return;
  for (const char *line = t->buf; line && *line;) {
    const char *val = strchr(line, ':');
    if (!val) break;
    uint64_t v = strtoull(val + 1, NULL, 10);
    if (!strncmp(line, "read_bytes:", 11))
      r->read_bytes = v;
    else if (!strncmp(line, "write_bytes:", 12))
      r->write_bytes = v;
    line = strchr(val, '\n');
    if (line) line++;
  }
  r->has_io = 1;
}

static int count_open_fds(po_proc_tree *t, member *m) {
  int fd = m->kept ? m->fd_fd : open_pid_file(t, m->pid, "fd", O_DIRECTORY);
  int n = po__count_fds(fd, 0);
  if (!m->kept && fd >= 0) close(fd);
  return n;
}

/* Reads member m into r. Returns 1 live, 0 zombie, -1 gone (or a different process now). */
static int read_member(po_proc_tree *t, member *m, uint64_t now_ns, double now_boot,
                       po_proc_info *r) {
  po__pidstat_parsed ps;
  if (read_stat(t, m->pid, m->kept ? m->fd_stat : -1, &ps) != 0 || ps.starttime != m->starttime)
    return -1;
  if (ps.state == 'Z' || ps.state == 'X') return 0;
  memset(r, 0, sizeof *r);
  r->pid = m->pid;
  r->ppid = ps.ppid;
  r->state = ps.state;
  memcpy(r->comm, ps.comm, sizeof r->comm);
  r->first_read = !m->have_prev;
  r->renamed = m->have_prev && strcmp(m->comm, ps.comm) != 0;
  memcpy(m->comm, ps.comm, sizeof m->comm);
  double tck = (double)t->clk_tck;
  r->start_seconds = (double)ps.starttime / tck;
  r->user_seconds = (double)ps.utime / tck;
  r->system_seconds = (double)ps.stime / tck;
  r->minor_faults = ps.minflt;
  r->major_faults = ps.majflt;
  r->threads = ps.threads;
  r->rss_bytes = ps.rss_pages * (uint64_t)t->page_size;
  double cpu = r->user_seconds + r->system_seconds;
  if (m->have_prev && now_ns > m->prev_t_ns) {
    double d = cpu - m->prev_cpu;
    r->cpu_ratio = d > 0 ? d / ((double)(now_ns - m->prev_t_ns) / 1e9) : 0;
  } else if (now_boot > r->start_seconds + 0.001) {
    r->cpu_ratio = cpu / (now_boot - r->start_seconds);
  }
  m->have_prev = 1;
  m->prev_cpu = cpu;
  m->prev_t_ns = now_ns;
  read_status(t, m, r);
  read_io(t, m, r);
  r->open_fds = count_open_fds(t, m);
  return 1;
}

static void add_to_totals(po_proc_tree_totals *s, const po_proc_info *r) {
  s->processes++;
  s->user_seconds += r->user_seconds;
  s->system_seconds += r->system_seconds;
  s->cpu_ratio += r->cpu_ratio;
  s->rss_bytes += r->rss_bytes;
  s->swap_bytes += r->swap_bytes;
  s->minor_faults += r->minor_faults;
  s->major_faults += r->major_faults;
  s->read_bytes += r->read_bytes;
  s->write_bytes += r->write_bytes;
  s->threads += r->threads;
  if (r->open_fds > 0) s->open_fds += r->open_fds;
  s->voluntary_ctxt_switches += r->voluntary_ctxt_switches;
  s->involuntary_ctxt_switches += r->involuntary_ctxt_switches;
}

/* ---- the public reader ---------------------------------------------------------------------- */

int po_proc_tree_create(const po_config *cfg, int root_pid, unsigned flags, po_proc_tree **out) {
  if (!out || root_pid < 0 || (flags & ~PO_PROC_TREE_EXCLUDE_ROOT)) return PO_EINVAL;
  *out = NULL;
  po_config c;
  po__probe_config(cfg, &c);
  po_proc_tree *t = po__calloc(1, sizeof *t);
  if (!t) return PO_ENOMEM;
  t->proc_fd = t->loadavg_fd = -1;
  t->last_pid = -1;
  if (po__strlcpy(t->root, c.proc_root, sizeof t->root)) {
    free(t);
    return PO_EINVAL;
  }
  size_t rl = strlen(t->root);
  while (rl > 0 && t->root[rl - 1] == '/') t->root[--rl] = '\0';
  t->root_pid = root_pid ? root_pid : (int)getpid();
  t->flags = flags;
  t->clk_tck = sysconf(_SC_CLK_TCK);
  if (t->clk_tck <= 0) t->clk_tck = 100;
  t->page_size = sysconf(_SC_PAGESIZE);
  if (t->page_size <= 0) t->page_size = 4096;
  t->cap = BUF_INITIAL;
  t->buf = po__malloc(t->cap);
  char path[300];
  snprintf(path, sizeof path, "%s/proc", t->root);
  int rc = t->buf ? 0 : PO_ENOMEM;
  if (!rc) {
    t->proc_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->proc_fd < 0) rc = PO_ENOENT;
    snprintf(path, sizeof path, "%s/proc/loadavg", t->root);
    t->loadavg_fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  po__pidstat_parsed ps;
  memset(&ps, 0, sizeof ps);
  if (!rc) rc = read_stat(t, t->root_pid, -1, &ps) == 0 ? 0 : PO_ENOENT;
  if (!rc && !(flags & PO_PROC_TREE_EXCLUDE_ROOT)) rc = add_member(t, t->root_pid, ps.starttime);
  if (!rc) rc = scan(t);
  if (rc) {
    po_proc_tree_destroy(t);
    return rc;
  }
  *out = t;
  return 0;
}

void po_proc_tree_destroy(po_proc_tree *t) {
  if (!t) return;
  for (size_t i = 0; i < t->nmembers; i++) close_member_files(t, &t->members[i]);
  if (t->proc_fd >= 0) close(t->proc_fd);
  if (t->loadavg_fd >= 0) close(t->loadavg_fd);
  free(t->members);
  free(t->known);
  free(t->known_member);
  free(t->cur);
  free(t->cur_member);
  free(t->buf);
  free(t);
}

/* Adds r to the totals and writes it at rows[*n] when there is room (else counts it). */
static void emit(po_proc_info *rows, size_t cap, size_t *n, po_proc_tree_totals *tot,
                 const po_proc_info *r) {
  add_to_totals(tot, r);
  if (*n < cap)
    rows[(*n)++] = *r;
  else
    tot->not_listed++;
}

int po_proc_tree_read(po_proc_tree *t, po_proc_info *rows, size_t cap, size_t *nrows,
                      po_proc_tree_totals *totals) {
  if (!t || (cap && !rows)) return PO_EINVAL;
  po_proc_tree_totals tot;
  memset(&tot, 0, sizeof tot);
  size_t n = 0;
  int rc = scan(t);
  uint64_t now = mono_ns();
  double boot = boot_seconds();
  tot.t_ns = now;
  po_proc_info r;
  /* The root first (it is the smallest pid only by chance). */
  int root_pid = (t->flags & PO_PROC_TREE_EXCLUDE_ROOT) ? -1 : t->root_pid;
  member *root = root_pid > 0 ? find_member(t, root_pid) : NULL;
  int root_state = root ? read_member(t, root, now, boot, &r) : -1;
  if (root_state == 1) emit(rows, cap, &n, &tot, &r);
  for (size_t i = 0; i < t->nmembers;) {
    member *m = &t->members[i];
    int is_root = m->pid == root_pid;
    int state = is_root ? root_state : read_member(t, m, now, boot, &r);
    if (state == 1 && !is_root) emit(rows, cap, &n, &tot, &r);
    if (state == 0) tot.zombies++;
    if (state < 1 && m->live_last) tot.exited++;
    m->live_last = state == 1;
    if (state < 0)
      remove_member(t, i);
    else
      i++;
  }
  tot.untracked = t->untracked;
  if (nrows) *nrows = n;
  if (totals) *totals = tot;
  return rc == PO_ENOMEM ? rc : 0;
}

size_t po_proc_tree_cmdline(po_proc_tree *t, int pid, char *buf, size_t len) {
  if (!buf || len == 0) return 0;
  buf[0] = '\0';
  if (!t || pid <= 0) return 0;
  int fd = open_pid_file(t, pid, "cmdline", 0);
  if (fd < 0) return 0;
  ssize_t n = po__read_fd_text(fd, buf, len);
  close(fd);
  if (n <= 0) {
    buf[0] = '\0';
    return 0;
  }
  size_t end = (size_t)n;
  while (end > 0 && buf[end - 1] == '\0') end--;
  for (size_t i = 0; i < end; i++)
    if (buf[i] == '\0' || buf[i] == '\n') buf[i] = ' ';
  buf[end] = '\0';
  return end;
}
