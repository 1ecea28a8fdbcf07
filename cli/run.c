/* perfopt run: runs any command as a child in its own process group and profiles it without
 * changing it: the library samples the child and all its descendants (po_run_*), and merges the
 * in-process reports that processes linked with libperfopt write into a private directory
 * (PERFOPT_OUT=DIR/). perfopt attach: the same sampling and report for a tree already running.
 *
 * This file owns the child's lifecycle: the spawn (posix_spawnp: its own process group, the
 * terminal handed over when perfopt has it, exec failures reported as 127), the signals (one
 * signalfd: SIGCHLD reaps, SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 are passed on to the
 * child's group), job control (a stopped child stops perfopt, and `fg` resumes both), the time
 * limit, and the exit status (the child's; 128+signal when killed; 124 at --timeout; 127 for a
 * command that cannot run; 2 for perfopt's own errors before it starts). */
#include "cli.h"
#include "perfopt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_INTERVAL_MS 250
#define KILL_GRACE_SECONDS 5.0 /* SIGTERM at --timeout, SIGKILL this much later */
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 124
#define EXIT_CANNOT_RUN 127

typedef struct opts {
  const char *name; /* "run" or "attach" */
  const char *out;
  const char *html; /* NULL: no HTML; "" : next to the JSON */
  long interval_ms;
  double timeout_s;  /* run: 0 none */
  double duration_s; /* attach: 0 none */
  const char *heap;  /* NULL: off */
  int quiet, no_progress;
  long top;
  int pid; /* attach */
  char **cmd;
  char out_abs[PATH_MAX], html_abs[PATH_MAX];
} opts;

/* ---- options --------------------------------------------------------------------------------- */

static void usage(FILE *f, const char *name) {
  if (!strcmp(name, "attach")) {
    fprintf(f,
            "usage: perfopt attach PID [-o REPORT.json] [--html[=FILE]] [--duration S]\n"
            "                      [--interval MS] [--top N] [--quiet] [--no-progress]\n"
            "Samples PID and all its descendants until PID exits, the duration ends or\n"
            "Ctrl-C, then writes the report (default perfopt-report.json) and a summary.\n");
    return;
  }
  fprintf(f,
          "usage: perfopt run [-o REPORT.json] [--html[=FILE]] [--interval MS]\n"
          "                   [--heap[=exact|sampled|full]] [--timeout S] [--top N]\n"
          "                   [--quiet] [--no-progress] [--] CMD [ARGS...]\n"
          "Runs CMD and samples it and all its descendants (CPU, memory, I/O, threads, files,\n"
          "GPU memory), merges the reports of processes linked with libperfopt, writes the\n"
          "report (default perfopt-report.json) and prints a summary on stderr.\n"
          "Exit status: CMD's (128+N when killed by signal N), 124 at --timeout, 127 when CMD\n"
          "cannot be run, 2 for perfopt's own errors.\n");
}

static int bad(const opts *o, const char *fmt, const char *arg) {
  fprintf(stderr, "perfopt %s: ", o->name);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  return EXIT_USAGE;
}

static int parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v > 0) || v > 1e9) return -1;
  *out = v;
  return 0;
}

/* The value of --opt=VALUE or --opt VALUE (advancing *i); NULL when missing. */
static const char *value_of(int argc, char **argv, int *i, const char *opt) {
  size_t n = strlen(opt);
  if (!strncmp(argv[*i], opt, n) && argv[*i][n] == '=') return argv[*i] + n + 1;
  if (!strcmp(argv[*i], opt) && *i + 1 < argc) return argv[++*i];
  return NULL;
}

static int is_opt(const char *arg, const char *opt) {
  size_t n = strlen(opt);
  return !strncmp(arg, opt, n) && (arg[n] == '\0' || arg[n] == '=');
}

static int parse_one(opts *o, int argc, char **argv, int *i) {
  const char *a = argv[*i], *v;
  if (!strcmp(a, "-o") || is_opt(a, "--output")) {
    if (!(v = value_of(argc, argv, i, a[1] == 'o' ? "-o" : "--output")) || !*v)
      return bad(o, "%s needs a file name", a);
    o->out = v;
  } else if (!strcmp(a, "--html")) {
    o->html = "";
  } else if (!strncmp(a, "--html=", 7)) {
    if (!a[7]) return bad(o, "%s needs a file name", a);
    o->html = a + 7;
  } else if (is_opt(a, "--interval")) {
    if (!(v = value_of(argc, argv, i, "--interval")) || parse_long(v, 10, 3600000, &o->interval_ms))
      return bad(o, "--interval must be a whole number of milliseconds, 10..3600000, not '%s'",
                 v ? v : "");
  } else if (is_opt(a, "--top")) {
    if (!(v = value_of(argc, argv, i, "--top")) || parse_long(v, 0, 1000, &o->top))
      return bad(o, "--top must be 0..1000, not '%s'", v ? v : "");
  } else if (!strcmp(o->name, "run") && is_opt(a, "--timeout")) {
    if (!(v = value_of(argc, argv, i, "--timeout")) || parse_seconds(v, &o->timeout_s))
      return bad(o, "--timeout must be a positive number of seconds, not '%s'", v ? v : "");
  } else if (!strcmp(o->name, "attach") && is_opt(a, "--duration")) {
    if (!(v = value_of(argc, argv, i, "--duration")) || parse_seconds(v, &o->duration_s))
      return bad(o, "--duration must be a positive number of seconds, not '%s'", v ? v : "");
  } else if (!strcmp(o->name, "run") && is_opt(a, "--heap")) {
    o->heap = a[6] == '=' ? a + 7 : "sampled";
    if (strcmp(o->heap, "exact") && strcmp(o->heap, "sampled") && strcmp(o->heap, "full"))
      return bad(o, "--heap=%s: the mode must be exact, sampled or full", o->heap);
  } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
    o->quiet = 1;
  } else if (!strcmp(a, "--no-progress")) {
    o->no_progress = 1;
  } else {
    fprintf(stderr, "perfopt %s: unknown option '%s'\n", o->name, a);
    usage(stderr, o->name);
    return EXIT_USAGE;
  }
  return 0;
}

/* Returns -1 to go on, else the exit status (0 after --help). */
static int parse(opts *o, int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--")) {
      i++;
      break;
    }
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout, o->name);
      return 0;
    }
    if (argv[i][0] != '-' || !argv[i][1]) {
      if (!strcmp(o->name, "run")) break;
      long pid;
      if (o->pid || parse_long(argv[i], 1, INT_MAX, &pid))
        return bad(o, "expected one process id, not '%s'", argv[i]);
      o->pid = (int)pid;
      continue;
    }
    int rc = parse_one(o, argc, argv, &i);
    if (rc) return rc;
  }
  if (!strcmp(o->name, "run")) {
    if (i >= argc) {
      fprintf(stderr, "perfopt run: no command given\n");
      usage(stderr, o->name);
      return EXIT_USAGE;
    }
    o->cmd = argv + i;
  } else if (i < argc || !o->pid) {
    if (i < argc) return bad(o, "unexpected argument '%s'", argv[i]);
    fprintf(stderr, "perfopt attach: no process id given\n");
    usage(stderr, o->name);
    return EXIT_USAGE;
  }
  if (o->heap)
    return bad(o, "--heap: %s", "the heap tracker is not built into this perfopt yet");
  return -1;
}

/* ---- the report paths ------------------------------------------------------------------------ */

/* Makes path absolute (the command may chdir; perfopt does not) and checks that a report can be
 * written there: the directory accepts a new file, and the path is not something other than a
 * regular file (a report is never written over /dev/null or a directory). */
static int resolve_path(const opts *o, const char *path, char *abs, size_t len) {
  char dir[PATH_MAX], tmp[PATH_MAX + 64], copy[PATH_MAX];
  if (strlen(path) >= sizeof copy) return bad(o, "%s: path too long", path);
  snprintf(copy, sizeof copy, "%s", path);
  char *base = basename(copy);
  if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/"))
    return bad(o, "%s: not a file name", path);
  char dcopy[PATH_MAX];
  snprintf(dcopy, sizeof dcopy, "%s", path);
  if (!realpath(dirname(dcopy), dir)) {
    fprintf(stderr, "perfopt %s: cannot write %s: %s\n", o->name, path, strerror(errno));
    return EXIT_USAGE;
  }
  if ((size_t)snprintf(abs, len, "%s/%s", strcmp(dir, "/") ? dir : "", basename(copy)) >= len)
    return bad(o, "%s: path too long", path);
  struct stat st;
  if (lstat(abs, &st) == 0 && !S_ISREG(st.st_mode))
    return bad(o, "%s: exists and is not a regular file", abs);
  snprintf(tmp, sizeof tmp, "%s/.perfopt-check-XXXXXX", dir);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fprintf(stderr, "perfopt %s: cannot write %s: %s\n", o->name, abs, strerror(errno));
    return EXIT_USAGE;
  }
  close(fd);
  unlink(tmp);
  return 0;
}

static int resolve_outputs(opts *o) {
  int rc = resolve_path(o, o->out, o->out_abs, sizeof o->out_abs);
  if (rc || !o->html) return rc;
  char html[PATH_MAX];
  if (o->html[0]) {
    snprintf(html, sizeof html, "%s", o->html);
  } else {
    size_t l = strlen(o->out_abs);
    int json = l > 5 && !strcmp(o->out_abs + l - 5, ".json");
    snprintf(html, sizeof html, "%.*s.html", (int)(json ? l - 5 : l), o->out_abs);
  }
  return resolve_path(o, html, o->html_abs, sizeof o->html_abs);
}

/* ---- the private report directory ------------------------------------------------------------ */

static int make_report_dir(char *dir, size_t len) {
  const char *t = getenv("TMPDIR");
  snprintf(dir, len, "%s/perfopt-run-XXXXXX", t && *t ? t : "/tmp");
  if (mkdtemp(dir)) return 0; /* 0700 */
  snprintf(dir, len, "/tmp/perfopt-run-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

/* Removes the directory and the regular files in it (what the command's processes wrote). */
static void remove_report_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dfd, e->d_name, 0);
    closedir(d);
  }
  rmdir(dir);
}

/* ---- the child's environment and spawn -------------------------------------------------------- */

/* environ without PERFOPT_OUT, plus PERFOPT_OUT=DIR/ and the `extra` NAME=VALUE strings (a
 * NULL-terminated list, may be NULL: the heap tracker's variables go there); a variable in
 * `extra` replaces the inherited one. NULL on ENOMEM. */
static int env_name_in(const char *var, const char *const *list) {
  size_t l = strcspn(var, "=");
  for (; list && *list; list++)
    if (!strncmp(var, *list, l) && (*list)[l] == '=') return 1;
  return 0;
}

static char **child_env(const char *dir, const char *const *extra, char **slot) {
  size_t n = 0, nx = 0;
  while (environ[n]) n++;
  while (extra && extra[nx]) nx++;
  char **env = calloc(n + nx + 2, sizeof *env);
  size_t k = 0;
  if (!env || asprintf(slot, "PERFOPT_OUT=%s/", dir) < 0) {
    free(env);
    *slot = NULL;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "PERFOPT_OUT=", 12) && !env_name_in(environ[i], extra))
      env[k++] = environ[i];
  for (size_t i = 0; i < nx; i++) env[k++] = (char *)(uintptr_t)extra[i];
  env[k++] = *slot;
  env[k] = NULL;
  return env;
}

/* The signals perfopt handles itself (through the signalfd); the child gets them back at their
 * defaults and unblocked. */
static const int handled[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
#define NHANDLED (sizeof handled / sizeof handled[0])

static int spawn(char **cmd, char **env, const sigset_t *orig_mask, int tty_fd, pid_t *pid) {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t fa;
  sigset_t defaults;
  sigemptyset(&defaults);
  for (size_t i = 0; i < NHANDLED; i++) sigaddset(&defaults, handled[i]);
  sigaddset(&defaults, SIGTTOU);
  sigaddset(&defaults, SIGTTIN);
  sigaddset(&defaults, SIGTSTP);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, orig_mask);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
  /* The child takes the terminal before it execs: it may read it at once. */
  if (tty_fd >= 0) posix_spawn_file_actions_addtcsetpgrp_np(&fa, tty_fd);
#endif
  int rc = posix_spawnp(pid, cmd[0], &fa, &attr, cmd, env);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (!rc && tty_fd >= 0) tcsetpgrp(tty_fd, *pid); /* older C libraries; harmless otherwise */
  return rc;
}

/* The terminal perfopt may hand to the child: one of stdin, stdout, stderr that is a terminal
 * whose foreground process group is perfopt's. -1 when there is none (a script, a pipe, or
 * perfopt itself in the background). */
static int foreground_tty(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (isatty(fd) && tcgetpgrp(fd) == getpgrp()) return fd;
  return -1;
}

/* ---- the loop -------------------------------------------------------------------------------- */

struct state;
static int progress_wanted(const struct state *s);

typedef struct state {
  opts *o;
  po_run *run;
  pid_t child; /* run: the child, also its process group; attach: the process */
  int pidfd;   /* attach: becomes readable when the process exits; -1 without pidfd_open */
  int sfd;
  int tty_fd; /* the terminal handed to the child, -1 none */
  int done;
  int gone; /* attach: the process exited */
  int status;
  po_child_usage child_usage;
  int forwarded;
  int timed_out;
  double t0;
  double kill_at;
  po_cli_progress progress;
} state;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage_of(const struct rusage *ru, po_child_usage *u) {
  u->user_seconds = (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6;
  u->system_seconds = (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
  u->max_rss_bytes = (uint64_t)ru->ru_maxrss * 1024;
  u->minor_faults = (uint64_t)ru->ru_minflt;
  u->major_faults = (uint64_t)ru->ru_majflt;
  u->read_bytes = (uint64_t)ru->ru_inblock * 512;
  u->write_bytes = (uint64_t)ru->ru_oublock * 512;
  u->voluntary_ctxt_switches = (uint64_t)ru->ru_nvcsw;
  u->involuntary_ctxt_switches = (uint64_t)ru->ru_nivcsw;
}

static void signal_group(state *s, int sig) {
  if (kill(-s->child, sig) != 0 && errno == ESRCH) kill(s->child, sig);
}

/* The child stopped for job control (Ctrl-Z, or it read the terminal from the background):
 * perfopt stops too, so the shell sees the job stopped; when continued, it gives the terminal
 * back to the child if it is in the foreground again, and continues the child. */
static void follow_stop(state *s) {
  int tty = s->tty_fd >= 0 ? s->tty_fd : foreground_tty();
  if (tty < 0 && !isatty(STDIN_FILENO)) return; /* no job control: nothing to follow */
  po_cli_progress_stop(&s->progress);
  if (s->tty_fd >= 0) tcsetpgrp(s->tty_fd, getpgrp());
  kill(getpid(), SIGTSTP); /* default action: stop, as the shell expects of a job */
  s->tty_fd = foreground_tty();
  if (s->tty_fd >= 0) tcsetpgrp(s->tty_fd, s->child);
  po_cli_progress_start(&s->progress, progress_wanted(s));
  signal_group(s, SIGCONT);
}

/* A progress line only on a terminal that is in the foreground: perfopt's, or its command's once
 * handed over (a job in the background draws nothing over the shell). */
static int progress_wanted(const state *s) {
  if (s->o->quiet || s->o->no_progress || !isatty(STDERR_FILENO)) return 0;
  pid_t fg = tcgetpgrp(STDERR_FILENO);
  return fg == getpgrp() || (s->child > 0 && fg == s->child && !s->o->pid);
}

static void reap(state *s) {
  for (;;) {
    int st;
    struct rusage ru;
    pid_t p = wait4(-1, &st, WNOHANG | WUNTRACED, &ru);
    if (p <= 0) return;
    if (WIFSTOPPED(st)) {
      int sig = WSTOPSIG(st);
      if (p == s->child && (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)) follow_stop(s);
      continue;
    }
    po_child_usage u;
    usage_of(&ru, &u);
    po_run_reaped(s->run, (int)p, st, &u);
    if (p == s->child) {
      s->done = 1;
      s->status = st;
      s->child_usage = u;
    }
  }
}

static void on_signal(state *s, int sig) {
  if (sig == SIGCHLD) {
    if (!s->o->pid) reap(s);
  } else if (sig == SIGWINCH) {
    po_cli_progress_resize(&s->progress);
  } else if (s->o->pid) { /* attach: a signal ends the watching, never the process */
    s->forwarded = sig;
    s->done = 1;
  } else {
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) s->forwarded = sig;
    signal_group(s, sig);
  }
}

static void drain_signals(state *s) {
  struct signalfd_siginfo si;
  while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si) on_signal(s, (int)si.ssi_signo);
}

static void show_progress(state *s, const po_run_progress *p) {
  if (!s->progress.on) return;
  char rss[32], peak[32], gpu[48] = "", line[256];
  po_format_value((double)p->rss_bytes, PO_UNIT_BYTES, rss, sizeof rss);
  po_format_value((double)p->peak_rss_bytes, PO_UNIT_BYTES, peak, sizeof peak);
  if (p->gpu_memory_bytes >= 0) {
    char g[32];
    po_format_value((double)p->gpu_memory_bytes, PO_UNIT_BYTES, g, sizeof g);
    snprintf(gpu, sizeof gpu, " | GPU %s", g);
  }
  snprintf(line, sizeof line, " perfopt %s | %.1f s | CPU %.2f cores | RSS %s (peak %s)%s | %u process%s ",
           s->o->name, p->elapsed_seconds, p->cpu_ratio, rss, peak, gpu, p->processes,
           p->processes == 1 ? "" : "es");
  po_cli_progress_show(&s->progress, line);
}

/* Waits for the next event (a signal, the attached process's exit) or the deadline. */
static void wait_until(state *s, double deadline) {
  struct pollfd fds[2] = {{s->sfd, POLLIN, 0}, {s->pidfd, POLLIN, 0}};
  double left = deadline - now_s();
  int ms = left <= 0 ? 0 : (int)ceil(left * 1000.0);
  int n = poll(fds, s->pidfd >= 0 ? 2 : 1, ms);
  if (n <= 0) return;
  if (fds[0].revents & POLLIN) drain_signals(s);
  if (s->pidfd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) s->done = s->gone = 1;
}

/* 1 when pid has exited: gone, or a zombie its parent has not reaped yet. */
static int process_gone(int pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 1;
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')');
  return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static void loop(state *s) {
  double interval = (double)s->o->interval_ms / 1000.0;
  double next = now_s();
  double limit = s->o->timeout_s > 0   ? s->t0 + s->o->timeout_s
                 : s->o->duration_s > 0 ? s->t0 + s->o->duration_s
                                        : INFINITY;
  while (!s->done) {
    double now = now_s();
    if (now >= next) {
      po_run_progress p;
      if (po_run_sample(s->run, &p) == 0) show_progress(s, &p);
      next += interval;
      if (next < now) next = now + interval; /* after a stall: one interval from now, no burst */
      if (s->o->pid && s->pidfd < 0 && process_gone(s->o->pid)) s->done = s->gone = 1;
    }
    if (now >= limit) {
      if (s->o->pid) break; /* --duration */
      if (!s->timed_out) {
        s->timed_out = 1;
        signal_group(s, SIGTERM);
        s->kill_at = now + KILL_GRACE_SECONDS;
      } else if (now >= s->kill_at) {
        signal_group(s, SIGKILL);
        s->kill_at = INFINITY;
      }
      limit = s->kill_at;
    }
    wait_until(s, fmin(next, limit));
  }
}

/* ---- setup and the end -------------------------------------------------------------------------- */

static int block_signals(state *s, sigset_t *orig) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < NHANDLED; i++) sigaddset(&set, handled[i]);
  if (sigprocmask(SIG_BLOCK, &set, orig) != 0) return -1;
  s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  /* perfopt writes to the terminal and hands it over while in the background */
  signal(SIGTTOU, SIG_IGN);
  return s->sfd < 0 ? -1 : 0;
}

static void fill_end(const state *s, po_run_end *e) {
  memset(e, 0, sizeof *e);
  if (s->o->pid) {
    e->how = s->gone || process_gone(s->o->pid) ? PO_RUN_GONE : PO_RUN_DETACHED;
    e->forwarded_signal = 0;
    return;
  }
  if (WIFSIGNALED(s->status)) {
    e->how = PO_RUN_KILLED;
    e->signal = WTERMSIG(s->status);
    e->core_dumped = WCOREDUMP(s->status) != 0;
  } else {
    e->how = PO_RUN_EXITED;
    e->exit_code = WEXITSTATUS(s->status);
  }
  e->timed_out = s->timed_out;
  e->forwarded_signal = s->forwarded;
  struct rusage ru;
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
    usage_of(&ru, &e->children);
    e->has_usage = 1;
  }
}

/* Writes the report (and the HTML page) and the summary. Returns 0 or 1 (a write failed). */
static int finish(state *s) {
  po_run_end end;
  fill_end(s, &end);
  po_run_finish(s->run, &end);
  po_report *rep = NULL;
  int rc = po_run_report_create(s->run, &rep);
  if (rc) {
    fprintf(stderr, "perfopt %s: the report could not be built: %s\n", s->o->name, po_strerror(rc));
    return 1;
  }
  char err[600];
  int failed = 0;
  if (po_report_save_json(rep, s->o->out_abs, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt %s: %s\n", s->o->name, err);
    failed = 1;
  }
  if (s->o->html && po_report_save_html(rep, s->o->html_abs, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt %s: %s\n", s->o->name, err);
    failed = 1;
  }
  if (!s->o->quiet) {
    po_report_write_summary(rep, stderr, (size_t)s->o->top);
    if (!failed)
      fprintf(stderr, "  report     %s%s%s\n", s->o->out_abs, s->o->html ? " and " : "",
              s->o->html ? s->o->html_abs : "");
  }
  po_report_destroy(rep);
  return failed;
}

static int exit_status(const state *s, int write_failed) {
  int rc = s->timed_out              ? EXIT_TIMEOUT
           : WIFSIGNALED(s->status) ? 128 + WTERMSIG(s->status)
                                    : WEXITSTATUS(s->status);
  return write_failed && rc == 0 ? 1 : rc;
}

static int start_run(opts *o, state *s, const sigset_t *orig) {
  char dir[PATH_MAX], *slot = NULL;
  if (make_report_dir(dir, sizeof dir) != 0) {
    fprintf(stderr, "perfopt run: cannot create a private directory: %s\n", strerror(errno));
    return EXIT_USAGE;
  }
  po_config cfg;
  char err[300];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt run: %s\n", err);
    remove_report_dir(dir);
    return EXIT_USAGE;
  }
  po_run_options ro = {0, (const char *const *)o->cmd, dir, (double)o->interval_ms / 1000.0};
  int rc = po_run_create(&cfg, &ro, &s->run);
  /* --heap adds the heap tracker's variables here (LD_PRELOAD, its segment's fd, the mode). */
  const char *const *extra = NULL;
  char **env = rc ? NULL : child_env(dir, extra, &slot);
  if (rc || !env) {
    fprintf(stderr, "perfopt run: cannot start: %s\n", po_strerror(rc ? rc : PO_ENOMEM));
    po_run_destroy(s->run);
    remove_report_dir(dir);
    return EXIT_USAGE;
  }
  s->tty_fd = foreground_tty();
  s->t0 = now_s();
  rc = spawn(o->cmd, env, orig, s->tty_fd, &s->child);
  free(env);
  free(slot);
  if (rc) {
    fprintf(stderr, "perfopt run: cannot run '%s': %s\n", o->cmd[0], strerror(rc));
    po_run_destroy(s->run);
    remove_report_dir(dir);
    return EXIT_CANNOT_RUN;
  }
  po_run_set_child(s->run, (int)s->child);
  po_cli_progress_start(&s->progress, progress_wanted(s));
  loop(s);
  po_cli_progress_stop(&s->progress);
  if (s->tty_fd >= 0) tcsetpgrp(s->tty_fd, getpgrp());
  reap(s); /* orphans that ended with the child */
  int failed = finish(s);
  po_run_destroy(s->run);
  remove_report_dir(dir);
  return exit_status(s, failed);
}

int po_cli_run(int argc, char **argv) {
  opts o = {.name = "run", .out = "perfopt-report.json", .interval_ms = DEFAULT_INTERVAL_MS, .top = 5};
  int rc = parse(&o, argc, argv);
  if (rc >= 0) return rc;
  if ((rc = resolve_outputs(&o))) return rc;
  state s = {.o = &o, .pidfd = -1, .sfd = -1, .tty_fd = -1};
  sigset_t orig;
  /* Orphaned descendants are re-parented to perfopt, not init: they stay in the tree, and
   * perfopt reaps them (with their exact usage). */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (block_signals(&s, &orig) != 0) {
    fprintf(stderr, "perfopt run: cannot set up signals: %s\n", strerror(errno));
    return EXIT_USAGE;
  }
  rc = start_run(&o, &s, &orig);
  close(s.sfd);
  return rc;
}

/* ---- attach ---------------------------------------------------------------------------------- */

int po_cli_attach(int argc, char **argv) {
  opts o = {.name = "attach", .out = "perfopt-report.json", .interval_ms = DEFAULT_INTERVAL_MS, .top = 5};
  int rc = parse(&o, argc, argv);
  if (rc >= 0) return rc;
  if ((rc = resolve_outputs(&o))) return rc;
  state s = {.o = &o, .pidfd = -1, .sfd = -1, .tty_fd = -1, .child = o.pid};
  sigset_t orig;
  if (block_signals(&s, &orig) != 0) {
    fprintf(stderr, "perfopt attach: cannot set up signals: %s\n", strerror(errno));
    return EXIT_USAGE;
  }
  po_config cfg;
  char err[300];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt attach: %s\n", err);
    close(s.sfd);
    return EXIT_USAGE;
  }
  po_run_options ro = {o.pid, NULL, NULL, (double)o.interval_ms / 1000.0};
  rc = po_run_create(&cfg, &ro, &s.run);
  if (rc) {
    if (rc == PO_ENOENT)
      fprintf(stderr, "perfopt attach: no process %d\n", o.pid);
    else
      fprintf(stderr, "perfopt attach: cannot start: %s\n", po_strerror(rc));
    close(s.sfd);
    return 1;
  }
#ifdef SYS_pidfd_open
  s.pidfd = (int)syscall(SYS_pidfd_open, o.pid, 0);
#endif
  s.t0 = now_s();
  po_cli_progress_start(&s.progress, progress_wanted(&s));
  loop(&s);
  po_cli_progress_stop(&s.progress);
  int failed = finish(&s);
  po_run_destroy(s.run);
  if (s.pidfd >= 0) close(s.pidfd);
  close(s.sfd);
  return failed;
}
