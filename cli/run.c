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
          "usage: perfopt run [-o REPORT.json] [--sort total|self|calls] [--top N] [--quiet] -- "
          "COMMAND [ARGS...]\n"
          "Runs COMMAND with PERFOPT_OUT=REPORT.json (default perfopt-report.json), then prints\n"
          "the profile table from the report the program wrote at exit.\n");
}

int po_cli_run(int argc, char **argv) {
  const char *out = "perfopt-report.json";
  po_sort sort = PO_SORT_TOTAL;
  long top = 25;
  int quiet = 0, i = 1;
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
    execvp(argv[i], argv + i);
    fprintf(stderr, "perfopt run: cannot run '%s': %s\n", argv[i], strerror(errno));
    _exit(127);
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
  po_report_destroy(rep);
  return child_rc;
}
