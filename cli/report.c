/* perfopt report: prints a saved report as a table, re-writes its JSON, or converts it to HTML. */
#include "cli.h"
#include "perfopt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: perfopt report REPORT.json [--sort total|self|calls] [--top N] [--json OUT.json]\n"
      "                     [--html OUT.html]\n"
      "Prints the report's profile table; --json re-writes it, --html writes the\n"
      "self-contained HTML report (charts, flame graph, timelines).\n");
}

int po_cli_report(int argc, char **argv) {
  const char *in = NULL, *json_out = NULL, *html_out = NULL;
  po_sort sort = PO_SORT_TOTAL;
  size_t top = 25;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--sort") && i + 1 < argc) {
      if (po_cli_parse_sort("report", argv[++i], &sort) != 0) return 2;
    } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
      top = (size_t)strtoul(argv[++i], NULL, 10);
    } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
      json_out = argv[++i];
    } else if (!strcmp(argv[i], "--html") && i + 1 < argc) {
      html_out = argv[++i];
    } else if (argv[i][0] == '-' || in) {
      fprintf(stderr, "perfopt report: unexpected argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else {
      in = argv[i];
    }
  }
  if (!in) {
    fprintf(stderr, "perfopt report: no report file given\n");
    usage(stderr);
    return 2;
  }
  po_report *rep;
  char err[512];
  if (po_report_load(in, &rep, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt report: %s\n", err);
    return 1;
  }
  int rc = 0;
  if (json_out && po_report_save_json(rep, json_out, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt report: %s\n", err);
    rc = 1;
  }
  if (html_out && po_report_save_html(rep, html_out, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt report: %s\n", err);
    rc = 1;
  }
  if (!json_out && !html_out) po_report_write_text(rep, stdout, sort, top);
  po_report_destroy(rep);
  return rc;
}
