/* perfopt run: runs a command with PERFOPT_OUT set, waits, then prints (and keeps) the report the
 * process wrote at exit. Works for programs that link libperfopt (annotated or auto-instrumented).
 */
#include "cli.h"
#include "perfopt.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt run [-o REPORT.json] [--sort total|self|calls] [--top N] [--quiet]\n"
          "                   [--serve ADDR:PORT [--allow-remote]] [--push URL [--push-job NAME]\n"
          "                   [--push-instance NAME]] -- COMMAND [ARGS...]\n"
          "Runs COMMAND with PERFOPT_OUT=REPORT.json (default perfopt-report.json), then prints\n"
          "the profile table from the report the program wrote at exit.\n"
          "--serve: the command serves /metrics, /report.json and the live dashboard while it\n"
          "runs (a non-loopback ADDR needs --allow-remote; PERFOPT_TOKEN requires a token).\n"
          "--push: at the end, PUT the report's metrics to a Prometheus Pushgateway (job: the\n"
          "command's name, instance: this host; PERFOPT_PUSH_TOKEN is sent as a bearer token).\n");
}

/* --serve and --push. */
typedef struct live_opts {
  const char *serve; /* ADDR:PORT */
  int allow_remote;
  const char *push; /* URL */
  const char *job, *instance;
  char addr[64];
  int port;
} live_opts;

/* Checks --serve before anything runs: a bad address or a missing --allow-remote is a usage
 * error, and a non-loopback address is announced. */
static int check_serve(live_opts *lo) {
  if (!lo->serve) return 0;
  if (po_cli_parse_listen("run", lo->serve, lo->addr, sizeof lo->addr, &lo->port) != 0) return 2;
  int loopback = !strncmp(lo->addr, "127.", 4) || !strcmp(lo->addr, "::1");
  if (!loopback && !lo->allow_remote) {
    fprintf(stderr, "perfopt run: --serve %s is not a loopback address: add --allow-remote\n",
            lo->serve);
    return 2;
  }
  if (!loopback) {
    const char *token = getenv("PERFOPT_TOKEN");
    fprintf(stderr,
            "perfopt run: warning: the live endpoint on %s is reachable from other machines%s\n",
            lo->addr, token && *token ? "" : " by anyone (set PERFOPT_TOKEN to require a token)");
  }
  return 0;
}

/* In the child: the library's default optimizer serves from load (SERVER_ENABLE). */
static void serve_env(const live_opts *lo) {
  if (!lo->serve) return;
  char port[16];
  snprintf(port, sizeof port, "%d", lo->port);
  setenv("PERFOPT_SERVER_ENABLE", "1", 1);
  setenv("PERFOPT_SERVER_ADDRESS", lo->addr, 1);
  setenv("PERFOPT_SERVER_PORT", port, 1);
  setenv("PERFOPT_SERVER_ALLOW_REMOTE", lo->allow_remote ? "1" : "0", 1);
}

/* Pushes the finished run's metrics; 0 or 1 (said on stderr). */
static int push(const live_opts *lo, const po_report *rep, const char *command) {
  char host[256] = "";
  const char *job = lo->job;
  if (!job) {
    const char *slash = strrchr(command, '/');
    job = slash ? slash + 1 : command;
  }
  const char *instance = lo->instance;
  if (!instance && gethostname(host, sizeof host - 1) == 0) instance = host;
  char err[512];
  if (po_report_push(rep, lo->push, job, instance, getenv("PERFOPT_PUSH_TOKEN"), err, sizeof err) !=
      0) {
    fprintf(stderr, "perfopt run: --push: %s\n", err);
    return 1;
  }
  fprintf(stderr, "perfopt run: metrics pushed to %s (job %s, instance %s)\n", lo->push, job,
          instance ? instance : "(none)");
  return 0;
}

int po_cli_run(int argc, char **argv) {
  const char *out = "perfopt-report.json";
  po_sort sort = PO_SORT_TOTAL;
  long top = 25;
  int quiet = 0, i = 1;
  live_opts lo = {0};
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--")) {
      i++;
      break;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
      out = argv[++i];
      if (po_cli_is_stdout(out)) { /* the table goes there; the report is a file COMMAND writes */
        po_cli_error("run", "-o needs a file name: standard output carries the profile table");
        return 2;
      }
    } else if (!strcmp(argv[i], "--sort") && i + 1 < argc) {
      if (po_cli_parse_sort("run", argv[++i], &sort) != 0) return 2;
    } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
      if (po_cli_parse_long("run", "--top", argv[++i], 0, 1000000, NULL, &top) != 0) return 2;
    } else if (!strcmp(argv[i], "--quiet")) {
      quiet = 1;
    } else if (!strcmp(argv[i], "--serve") && i + 1 < argc) {
      lo.serve = argv[++i];
    } else if (!strcmp(argv[i], "--allow-remote")) {
      lo.allow_remote = 1;
    } else if (!strcmp(argv[i], "--push") && i + 1 < argc) {
      lo.push = argv[++i];
    } else if (!strcmp(argv[i], "--push-job") && i + 1 < argc) {
      lo.job = argv[++i];
    } else if (!strcmp(argv[i], "--push-instance") && i + 1 < argc) {
      lo.instance = argv[++i];
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "perfopt run: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "perfopt run: no command given\n");
    usage(stderr);
    return 2;
  }
  int src = check_serve(&lo);
  if (src) return src;
  /* A stale report must not be mistaken for this run's. */
  if (unlink(out) != 0 && errno != ENOENT) {
    fprintf(stderr, "perfopt run: cannot replace %s: %s\n", out, strerror(errno));
    return 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "perfopt run: fork: %s\n", strerror(errno));
    return 1;
  }
  if (pid == 0) {
    setenv("PERFOPT_OUT", out, 1);
    serve_env(&lo);
    execvp(argv[i], argv + i);
    fprintf(stderr, "perfopt run: cannot run '%s': %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  if (lo.serve) {
    int v6 = strchr(lo.addr, ':') != NULL;
    fprintf(stderr, "perfopt run: live endpoint at http://%s%s%s:%d/ while the command runs\n",
            v6 ? "[" : "", lo.addr, v6 ? "]" : "", lo.port);
  }
  int status;
  signal(SIGINT, SIG_IGN); /* Ctrl-C goes to the child; we still collect its report. */
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "perfopt run: waitpid: %s\n", strerror(errno));
      return 1;
    }
  }
  int child_rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (child_rc == 127) return 1;
  po_report *rep;
  char err[512];
  if (po_report_load(out, &rep, err, sizeof err) != 0) {
    fprintf(stderr,
            "perfopt run: the command (exit %d) wrote no report: %s\n"
            "(is it linked with libperfopt? it writes PERFOPT_OUT at a normal exit)\n",
            child_rc, err);
    return 1;
  }
  if (!quiet) po_cli_write_report_text(rep, stdout, sort, (size_t)top);
  fprintf(stderr, "perfopt run: report written to %s (command exit %d)\n", out, child_rc);
  int push_failed = lo.push ? push(&lo, rep, argv[i]) : 0;
  po_report_destroy(rep);
  return child_rc ? child_rc : push_failed;
}
