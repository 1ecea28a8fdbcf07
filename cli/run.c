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
  int heap;          /* -1: off, else a po_heap_mode */
  int quiet, no_progress;
  long top;
  int pid; /* attach */
  char **cmd;
  /* --serve (the command serves the live endpoint) and --push (a Pushgateway at the end) */
  const char *serve;
  int allow_remote;
  char serve_addr[64];
  int serve_port;
  const char *push, *push_job, *push_instance;
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
          "                   [--quiet] [--no-progress] [--serve ADDR:PORT [--allow-remote]]\n"
          "                   [--push URL [--push-job NAME] [--push-instance NAME]]\n"
          "                   [--] CMD [ARGS...]\n"
          "Runs CMD and samples it and all its descendants (CPU, memory, I/O, threads, files,\n"
          "GPU memory), merges the reports of processes linked with libperfopt, writes the\n"
          "report (default perfopt-report.json) and prints a summary on stderr.\n"
          "--heap: trace every allocation of the tree (exact totals and peak; sampled or full:\n"
          "call sites too). --serve: the command serves /metrics, /report.json and the live\n"
          "dashboard while it runs. --push: PUT the report's metrics to a Pushgateway at the end.\n"
          "Exit status: CMD's (128+N when killed by signal N), 124 at --timeout, 127 when CMD\n"
          "cannot be run, 2 for perfopt's own errors.\n");
}

static int parse_seconds(const opts *o, const char *opt, const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v > 0) || v > 1e9) {
    po_cli_error(o->name, "%s must be a positive number of seconds, not '%s'", opt, s);
    return -1;
  }
  *out = v;
  return 0;
}

/* The value of "OPT=VALUE" in argv[*i], or of the next argument (advancing *i); NULL, with the
 * error said, when it is missing. */
static const char *value_of(const opts *o, int argc, char **argv, int *i) {
  const char *eq = strchr(argv[*i], '=');
  if (eq && argv[*i][0] == '-' && argv[*i][1] == '-') return eq + 1;
  return po_cli_value(o->name, argc, argv, i);
}

/* The option's name without "=VALUE" matches opt. */
static int is_opt(const char *arg, const char *opt) {
  size_t n = strlen(opt);
  return !strncmp(arg, opt, n) && (arg[n] == '\0' || arg[n] == '=');
}

static int parse_heap(opts *o, const char *a) {
  static const char *const modes[] = {"exact", "sampled", "full"};
  const char *m = a[6] == '=' ? a + 7 : "sampled";
  for (int k = 0; k < 3; k++)
    if (!strcmp(m, modes[k])) {
      o->heap = k; /* PO_HEAP_EXACT, PO_HEAP_SAMPLED, PO_HEAP_FULL */
      return 0;
    }
  po_cli_error(o->name, "--heap=%s: the mode must be exact, sampled or full", m);
  return -1;
}

/* One option at argv[*i]; 0, or -1 after saying what is wrong. */
static int parse_one(opts *o, int argc, char **argv, int *i) {
  const char *a = argv[*i], *v;
  int run = !strcmp(o->name, "run");
  if (!strcmp(a, "-o") || is_opt(a, "--output")) {
    if (!(v = value_of(o, argc, argv, i))) return -1;
    if (!*v || po_cli_is_stdout(v)) {
      po_cli_error(o->name, "-o needs a file name (standard output is the command's)");
      return -1;
    }
    o->out = v;
  } else if (!strcmp(a, "--html")) {
    o->html = "";
  } else if (!strncmp(a, "--html=", 7)) {
    if (!a[7] || po_cli_is_stdout(a + 7)) {
      po_cli_error(o->name, "--html= needs a file name");
      return -1;
    }
    o->html = a + 7;
  } else if (is_opt(a, "--interval")) {
    if (!(v = value_of(o, argc, argv, i)) ||
        po_cli_parse_long(o->name, "--interval", v, 10, 3600000, "ms", &o->interval_ms))
      return -1;
  } else if (is_opt(a, "--top")) {
    if (!(v = value_of(o, argc, argv, i)) ||
        po_cli_parse_long(o->name, "--top", v, 0, 1000, NULL, &o->top))
      return -1;
  } else if (run && is_opt(a, "--timeout")) {
    if (!(v = value_of(o, argc, argv, i)) || parse_seconds(o, "--timeout", v, &o->timeout_s))
      return -1;
  } else if (!run && is_opt(a, "--duration")) {
    if (!(v = value_of(o, argc, argv, i)) || parse_seconds(o, "--duration", v, &o->duration_s))
      return -1;
  } else if (run && is_opt(a, "--heap")) {
    return parse_heap(o, a);
  } else if (run && is_opt(a, "--serve")) {
    if (!(v = value_of(o, argc, argv, i))) return -1;
    o->serve = v;
  } else if (run && !strcmp(a, "--allow-remote")) {
    o->allow_remote = 1;
  } else if (run && is_opt(a, "--push")) {
    if (!(v = value_of(o, argc, argv, i))) return -1;
    o->push = v;
  } else if (run && is_opt(a, "--push-job")) {
    if (!(v = value_of(o, argc, argv, i))) return -1;
    o->push_job = v;
  } else if (run && is_opt(a, "--push-instance")) {
    if (!(v = value_of(o, argc, argv, i))) return -1;
    o->push_instance = v;
  } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
    o->quiet = 1;
  } else if (!strcmp(a, "--no-progress")) {
    o->no_progress = 1;
  } else {
    po_cli_error(o->name, "unknown option '%s'", a);
    usage(stderr, o->name);
    return -1;
  }
  return 0;
}

/* Checks --serve before anything runs: a bad address or a missing --allow-remote is a usage
 * error, and a non-loopback address is announced. */
static int check_serve(opts *o) {
  if (!o->serve) return 0;
  if (po_cli_parse_listen("run", o->serve, o->serve_addr, sizeof o->serve_addr, &o->serve_port))
    return -1;
  int loopback = !strncmp(o->serve_addr, "127.", 4) || !strcmp(o->serve_addr, "::1");
  if (!loopback && !o->allow_remote) {
    po_cli_error("run", "--serve %s is not a loopback address: add --allow-remote", o->serve);
    return -1;
  }
  if (!loopback) {
    const char *token = getenv("PERFOPT_TOKEN");
    po_cli_error("run", "warning: the live endpoint on %s is reachable from other machines%s",
                 o->serve_addr,
                 token && *token ? "" : " by anyone (set PERFOPT_TOKEN to require a token)");
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
      if (o->pid) {
        po_cli_error(o->name, "expected one process id, not '%s'", argv[i]);
        return EXIT_USAGE;
      }
      if (po_cli_parse_long(o->name, "PID", argv[i], 1, INT_MAX, NULL, &pid)) return EXIT_USAGE;
      o->pid = (int)pid;
      continue;
    }
    if (parse_one(o, argc, argv, &i)) return EXIT_USAGE;
  }
  if (!strcmp(o->name, "run")) {
    if (i >= argc) {
      po_cli_error(o->name, "no command given");
      usage(stderr, o->name);
      return EXIT_USAGE;
    }
    o->cmd = argv + i;
  } else if (i < argc || !o->pid) {
    if (i < argc) {
      po_cli_error(o->name, "expected one process id, not '%s'", argv[i]);
      return EXIT_USAGE;
    }
    po_cli_error(o->name, "no process id given");
    usage(stderr, o->name);
    return EXIT_USAGE;
  }
  if (check_serve(o)) return EXIT_USAGE;
  return -1;
}

/* Says "perfopt CMD: <fmt with arg>" (escaped) and returns the usage exit status. */
static int said(const opts *o, const char *fmt, const char *arg) {
  po_cli_error(o->name, fmt, arg);
  return EXIT_USAGE;
}

/* ---- the report paths ------------------------------------------------------------------------ */

/* Makes path absolute (the command may chdir; perfopt does not) and checks that a report can be
 * written there: the directory accepts a new file, and the path is not something other than a
 * regular file (a report is never written over /dev/null or a directory). */
static int resolve_path(const opts *o, const char *path, char *abs, size_t len) {
  char dir[PATH_MAX], tmp[PATH_MAX + 64], copy[PATH_MAX];
  if (strlen(path) >= sizeof copy) return said(o, "%s: path too long", path);
  snprintf(copy, sizeof copy, "%s", path);
  char *base = basename(copy);
  if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/"))
    return said(o, "%s: not a file name", path);
  char dcopy[PATH_MAX];
  snprintf(dcopy, sizeof dcopy, "%s", path);
  if (!realpath(dirname(dcopy), dir)) {
    po_cli_error(o->name, "cannot write %s: %s", path, strerror(errno));
    return EXIT_USAGE;
  }
  if ((size_t)snprintf(abs, len, "%s/%s", strcmp(dir, "/") ? dir : "", basename(copy)) >= len)
    return said(o, "%s: path too long", path);
  struct stat st;
  if (lstat(abs, &st) == 0 && !S_ISREG(st.st_mode))
    return said(o, "%s: exists and is not a regular file", abs);
  snprintf(tmp, sizeof tmp, "%s/.perfopt-check-XXXXXX", dir);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    po_cli_error(o->name, "cannot write %s: %s", abs, strerror(errno));
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
  char rss[32], peak[32], gpu[48] = "", heap[48] = "", line[300];
  po_format_value((double)p->rss_bytes, PO_UNIT_BYTES, rss, sizeof rss);
  po_format_value((double)p->peak_rss_bytes, PO_UNIT_BYTES, peak, sizeof peak);
  if (p->gpu_memory_bytes >= 0) {
    char g[32];
    po_format_value((double)p->gpu_memory_bytes, PO_UNIT_BYTES, g, sizeof g);
    snprintf(gpu, sizeof gpu, " | GPU %s", g);
  }
  if (p->heap_live_bytes >= 0) {
    char h[32];
    po_format_value((double)p->heap_live_bytes, PO_UNIT_BYTES, h, sizeof h);
    snprintf(heap, sizeof heap, " | heap %s", h);
  }
  snprintf(line, sizeof line, " perfopt %s | %.1f s | CPU %.2f cores | RSS %s (peak %s)%s%s | %u process%s ",
           s->o->name, p->elapsed_seconds, p->cpu_ratio, rss, peak, heap, gpu, p->processes,
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

/* The summary, escaped: it quotes the command line and names from in-process reports. */
static void write_summary(const po_report *rep, size_t top) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) return;
  int rc = po_report_write_summary(rep, mem, top);
  if (fclose(mem) == 0 && rc == 0) po_cli_write_escaped(stderr, text, len, 1);
  free(text);
}

/* --push: the finished run's metrics to a Pushgateway. 0, or 1 (said on stderr). */
static int push(const opts *o, const po_report *rep) {
  char host[256] = "";
  const char *job = o->push_job;
  if (!job) {
    const char *slash = strrchr(o->cmd[0], '/');
    job = slash ? slash + 1 : o->cmd[0];
  }
  const char *instance = o->push_instance;
  if (!instance && gethostname(host, sizeof host - 1) == 0) instance = host;
  char err[512];
  if (po_report_push(rep, o->push, job, instance, getenv("PERFOPT_PUSH_TOKEN"), err, sizeof err)) {
    po_cli_error("run", "--push: %s", err);
    return 1;
  }
  po_cli_error("run", "metrics pushed to %s (job %s, instance %s)", o->push, job,
               instance ? instance : "(none)");
  return 0;
}

/* Writes the report (and the HTML page), the summary, and pushes the metrics. Returns 0 or 1 (a
 * write or the push failed). */
static int finish(state *s) {
  po_run_end end;
  fill_end(s, &end);
  po_run_finish(s->run, &end);
  po_report *rep = NULL;
  int rc = po_run_report_create(s->run, &rep);
  if (rc) {
    po_cli_error(s->o->name, "the report could not be built: %s", po_strerror(rc));
    return 1;
  }
  char err[600];
  int failed = 0;
  if (po_report_save_json(rep, s->o->out_abs, err, sizeof err) != 0) {
    po_cli_error(s->o->name, "%s", err);
    failed = 1;
  }
  if (s->o->html && po_report_save_html(rep, s->o->html_abs, err, sizeof err) != 0) {
    po_cli_error(s->o->name, "%s", err);
    failed = 1;
  }
  if (!s->o->quiet) {
    write_summary(rep, (size_t)s->o->top);
    if (!failed) {
      char line[2 * PATH_MAX + 32];
      int n = snprintf(line, sizeof line, "  report     %s%s%s\n", s->o->out_abs,
                       s->o->html ? " and " : "", s->o->html ? s->o->html_abs : "");
      if (n > 0) po_cli_write_escaped(stderr, line, strlen(line), 1);
    }
  }
  if (s->o->push && push(s->o, rep)) failed = 1;
  po_report_destroy(rep);
  return failed;
}

static int exit_status(const state *s, int write_failed) {
  int rc = s->timed_out              ? EXIT_TIMEOUT
           : WIFSIGNALED(s->status) ? 128 + WTERMSIG(s->status)
                                    : WEXITSTATUS(s->status);
  return write_failed && rc == 0 ? 1 : rc;
}

/* The command's extra environment: the heap tracker's variables (--heap) and the live endpoint's
 * (--serve). Strings live in *x. */
typedef struct extras {
  po_heap_session *heap;
  po_heap_env henv;
  char serve[4][96];
  const char *list[8];
} extras;

static int make_extras(const opts *o, extras *x) {
  size_t n = 0;
  memset(x, 0, sizeof *x);
  if (o->heap >= 0) {
    int rc = po_heap_session_create((po_heap_mode)o->heap, &x->heap);
    if (!rc) rc = po_heap_session_env(x->heap, NULL, &x->henv);
    if (rc) {
      po_cli_error("run", "--heap: %s",
                   rc == PO_ENOENT ? "libperfopt-heap.so not found (PERFOPT_HEAP_LIBRARY names it)"
                                   : po_strerror(rc));
      po_heap_session_destroy(x->heap);
      x->heap = NULL;
      return -1;
    }
    x->list[n++] = x->henv.ld_preload;
    x->list[n++] = x->henv.fd;
    x->list[n++] = x->henv.mode;
  }
  if (o->serve) { /* the library's default optimizer serves from load (SERVER_ENABLE) */
    snprintf(x->serve[0], sizeof x->serve[0], "PERFOPT_SERVER_ENABLE=1");
    snprintf(x->serve[1], sizeof x->serve[1], "PERFOPT_SERVER_ADDRESS=%s", o->serve_addr);
    snprintf(x->serve[2], sizeof x->serve[2], "PERFOPT_SERVER_PORT=%d", o->serve_port);
    snprintf(x->serve[3], sizeof x->serve[3], "PERFOPT_SERVER_ALLOW_REMOTE=%d", o->allow_remote);
    for (int k = 0; k < 4; k++) x->list[n++] = x->serve[k];
  }
  x->list[n] = NULL;
  return 0;
}

static int start_run(opts *o, state *s, const sigset_t *orig) {
  char dir[PATH_MAX], *slot = NULL;
  if (make_report_dir(dir, sizeof dir) != 0) {
    po_cli_error("run", "cannot create a private directory: %s", strerror(errno));
    return EXIT_USAGE;
  }
  po_config cfg;
  char err[300];
  extras x;
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    po_cli_error("run", "%s", err);
    remove_report_dir(dir);
    return EXIT_USAGE;
  }
  if (make_extras(o, &x) != 0) {
    remove_report_dir(dir);
    return EXIT_USAGE;
  }
  po_run_options ro = {0, (const char *const *)o->cmd, dir, (double)o->interval_ms / 1000.0};
  int rc = po_run_create(&cfg, &ro, &s->run);
  if (!rc) rc = po_run_set_heap(s->run, x.heap);
  char **env = rc ? NULL : child_env(dir, x.list, &slot);
  if (rc || !env) {
    po_cli_error("run", "cannot start: %s", po_strerror(rc ? rc : PO_ENOMEM));
    po_run_destroy(s->run);
    po_heap_session_destroy(x.heap);
    remove_report_dir(dir);
    return EXIT_USAGE;
  }
  s->tty_fd = foreground_tty();
  s->t0 = now_s();
  rc = spawn(o->cmd, env, orig, s->tty_fd, &s->child);
  free(env);
  free(slot);
  if (rc) {
    po_cli_error("run", "cannot run '%s': %s", o->cmd[0], strerror(rc));
    po_run_destroy(s->run);
    po_heap_session_destroy(x.heap);
    remove_report_dir(dir);
    return EXIT_CANNOT_RUN;
  }
  if (o->serve) {
    int v6 = strchr(o->serve_addr, ':') != NULL;
    po_cli_error("run", "live endpoint at http://%s%s%s:%d/ while the command runs", v6 ? "[" : "",
                 o->serve_addr, v6 ? "]" : "", o->serve_port);
  }
  po_run_set_child(s->run, (int)s->child);
  po_cli_progress_start(&s->progress, progress_wanted(s));
  loop(s);
  po_cli_progress_stop(&s->progress);
  if (s->tty_fd >= 0) tcsetpgrp(s->tty_fd, getpgrp());
  reap(s); /* orphans that ended with the child */
  int failed = finish(s);
  po_run_destroy(s->run);
  po_heap_session_destroy(x.heap);
  remove_report_dir(dir);
  return exit_status(s, failed);
}

int po_cli_run(int argc, char **argv) {
  opts o = {.name = "run", .out = "perfopt-report.json", .interval_ms = DEFAULT_INTERVAL_MS,
            .top = 5, .heap = -1};
  int rc = parse(&o, argc, argv);
  if (rc >= 0) return rc;
  if ((rc = resolve_outputs(&o))) return rc;
  state s = {.o = &o, .pidfd = -1, .sfd = -1, .tty_fd = -1};
  sigset_t orig;
  /* Orphaned descendants are re-parented to perfopt, not init: they stay in the tree, and
   * perfopt reaps them (with their exact usage). */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (block_signals(&s, &orig) != 0) {
    po_cli_error("run", "cannot set up signals: %s", strerror(errno));
    return EXIT_USAGE;
  }
  rc = start_run(&o, &s, &orig);
  close(s.sfd);
  return rc;
}

/* ---- attach ---------------------------------------------------------------------------------- */

int po_cli_attach(int argc, char **argv) {
  opts o = {.name = "attach", .out = "perfopt-report.json", .interval_ms = DEFAULT_INTERVAL_MS,
            .top = 5, .heap = -1};
  int rc = parse(&o, argc, argv);
  if (rc >= 0) return rc;
  if ((rc = resolve_outputs(&o))) return rc;
  state s = {.o = &o, .pidfd = -1, .sfd = -1, .tty_fd = -1, .child = o.pid};
  sigset_t orig;
  if (block_signals(&s, &orig) != 0) {
    po_cli_error("attach", "cannot set up signals: %s", strerror(errno));
    return EXIT_USAGE;
  }
  po_config cfg;
  char err[300];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    po_cli_error("attach", "%s", err);
    close(s.sfd);
    return EXIT_USAGE;
  }
  po_run_options ro = {o.pid, NULL, NULL, (double)o.interval_ms / 1000.0};
  rc = po_run_create(&cfg, &ro, &s.run);
  if (rc) {
    if (rc == PO_ENOENT)
      po_cli_error("attach", "no process %d", o.pid);
    else
      po_cli_error("attach", "cannot start: %s", po_strerror(rc));
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
