/* perfopt merge: merges the reports of a distributed job's ranks (or of several runs) into one
 * report: the aggregate profile, the slowest rank per function, the memory-heaviest rank, and
 * every rank side by side. */
#include "cli.h"
#include "perfopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS 4096

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt merge R0.json R1.json ... [-o ALL.json] [--html ALL.html]\n"
          "Merges reports in rank order (the first is rank 0) into one report: functions and\n"
          "call trees summed, each function's slowest rank, the memory-heaviest rank's memory,\n"
          "every rank's caches, GPUs, RSS and CPU side by side. Without -o (or with -o -) the\n"
          "JSON goes to stdout. 'perfopt report ALL.json' prints it.\n");
}

static void destroy_all(po_report **reps, size_t n) {
  for (size_t i = 0; i < n; i++) po_report_destroy(reps[i]);
  free(reps);
}

int po_cli_merge(int argc, char **argv) {
  const char *out = NULL, *html = NULL;
  po_report **reps = calloc((size_t)argc, sizeof *reps);
  size_t n = 0;
  if (!reps) {
    fprintf(stderr, "perfopt merge: out of memory\n");
    return 1;
  }
  char err[512];
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      destroy_all(reps, n);
      return 0;
    } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--html")) {
      const char *o = argv[i], *v = po_cli_value("merge", argc, argv, &i);
      if (!v) {
        destroy_all(reps, n);
        return 2;
      }
      *(!strcmp(o, "-o") ? &out : &html) = v;
    } else if (argv[i][0] == '-' || n == MAX_INPUTS) {
      po_cli_error("merge", "unexpected argument '%s'", argv[i]);
      usage(stderr);
      destroy_all(reps, n);
      return 2;
    } else if (po_report_load(argv[i], &reps[n], err, sizeof err) != 0) {
      po_cli_error("merge", "%s", err);
      destroy_all(reps, n);
      return 1;
    } else {
      n++;
    }
  }
  if (n == 0) {
    po_cli_error("merge", "no reports given");
    usage(stderr);
    free(reps);
    return 2;
  }
  po_report *merged = NULL;
  int rc = po_report_merge((const po_report *const *)reps, n, &merged);
  destroy_all(reps, n);
  if (rc) {
    po_cli_error("merge", "%s", po_strerror(rc));
    return 1;
  }
  if (po_cli_is_stdout(out) && po_cli_is_stdout(html)) {
    po_cli_error("merge", "-o and --html cannot both write to standard output");
    po_report_destroy(merged);
    return 2;
  }
  if (out && !po_cli_is_stdout(out) && po_report_save_json(merged, out, err, sizeof err) != 0) {
    po_cli_error("merge", "%s", err);
    rc = 1;
  }
  if (!rc && html && !po_cli_is_stdout(html) &&
      po_report_save_html(merged, html, err, sizeof err) != 0) {
    po_cli_error("merge", "%s", err);
    rc = 1;
  }
  if (!rc && po_cli_is_stdout(html) && po_report_write_html(merged, stdout) != 0)
    rc = po_cli_stdout_error("merge");
  if (!rc && (!out || po_cli_is_stdout(out))) {
    char *s = po_report_to_string(merged, 1);
    if (!s || puts(s) < 0) rc = s ? po_cli_stdout_error("merge") : 1;
    po_free(s);
  }
  if (!rc && out && !po_cli_is_stdout(out))
    fprintf(stderr, "perfopt merge: merged %zu reports into %s\n", n, po_cli_escape(out, err, sizeof err));
  po_report_destroy(merged);
  return rc;
}
