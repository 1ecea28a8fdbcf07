/* perfopt: the command-line front end. A thin layer over the library. */
#include "cli.h"
#include "perfopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The library serves the default optimizer at load time when PERFOPT_SERVER_ENABLE is set (for
 * `perfopt run --serve`'s command); this symbol keeps the command itself from doing so and taking
 * the port its child is to serve on. */
extern const int po__no_load_time_server;
const int po__no_load_time_server = 1;

typedef struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} po_cmd;

static const po_cmd commands[] = {
    {"run", po_cli_run, "run any command and profile it: its process tree, and in-process reports"},
    {"attach", po_cli_attach, "profile a process tree that is already running"},
    {"report", po_cli_report, "print, convert or compare saved reports (text, JSON, HTML, ...)"},
    {"merge", po_cli_merge, "merge the reports of a job's ranks (or several runs) into one"},
    {"sysinfo", po_cli_sysinfo, "hardware, current resource usage, thresholds in force, GPUs"},
    {"top", po_cli_top, "live view of CPU per core, memory, disks and GPUs"},
    {"plot", po_cli_plot, "plot a large CSV as SVG with bounded memory (downsampled)"},
    {"config", po_cli_config, "show the configuration in force, or check a config file"},
    {"serve", po_cli_serve, "serve a saved report: /metrics, /report.json, dashboard"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: perfopt <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
  fprintf(out,
          "\n'perfopt <command> --help' describes each command; man perfopt and docs/cli.md have\n"
          "the details.\n");
}

static int dispatch(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("perfopt %s\n", PO_VERSION_STRING);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
  po_cli_error(NULL, "unknown command '%s'", argv[1]);
  usage(stderr);
  return 2;
}

int main(int argc, char **argv) {
  /* The command links the library, which writes its own report to PERFOPT_OUT at exit: an
   * exported PERFOPT_OUT would be overwritten by perfopt's (`perfopt report $PERFOPT_OUT`). The
   * variable is for the programs perfopt runs (perfopt run sets it in the child). */
  unsetenv("PERFOPT_OUT");
  po_cli_install_log(); /* the library's warnings (a misspelled PERFOPT_* variable) on stderr */
  int rc = dispatch(argc, argv);
  /* Whatever the command, output that did not reach stdout (> /dev/full) is a failure. */
  const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
  if (po_cli_flush_stdout(cmd) != 0 && rc == 0) rc = 1;
  return rc;
}
