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
      "Prints the report's profile table (--top N rows, default 25, 0 = all); --json re-writes\n"
      "it, --html writes the self-contained HTML report (charts, flame graph, timelines).\n"
      "An output of - is standard output.\n");
}

/* Writes the JSON or HTML form to stdout. */
static int write_stdout(const po_report *rep, int html) {
  if (html) return po_report_write_html(rep, stdout) == 0 ? 0 : -1;
  char *s = po_report_to_string(rep, 1);
  if (!s) return -1;
  int rc = fputs(s, stdout) < 0 || fputc('\n', stdout) == EOF ? -1 : 0;
  po_free(s);
  return rc;
}

static int save(const po_report *rep, const char *path, int html) {
  char err[512];
  if (po_cli_is_stdout(path)) {
    if (write_stdout(rep, html) == 0) return 0;
    return po_cli_stdout_error("report");
  }
  int rc = html ? po_report_save_html(rep, path, err, sizeof err)
                : po_report_save_json(rep, path, err, sizeof err);
  if (rc == 0) return 0;
  po_cli_error("report", "%s", err);
  return 1;
}

int po_cli_report(int argc, char **argv) {
  const char *in = NULL, *json_out = NULL, *html_out = NULL, *v;
  po_sort sort = PO_SORT_TOTAL;
  long top = 25;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(o, "--sort") || !strcmp(o, "--top") || !strcmp(o, "--json") ||
               !strcmp(o, "--html")) {
      if (!(v = po_cli_value("report", argc, argv, &i))) return 2;
      if (!strcmp(o, "--sort") && po_cli_parse_sort("report", v, &sort) != 0) return 2;
      if (!strcmp(o, "--top") && po_cli_parse_long("report", o, v, 0, 1000000, NULL, &top) != 0)
        return 2;
      if (!strcmp(o, "--json")) json_out = v;
      if (!strcmp(o, "--html")) html_out = v;
    } else if (o[0] == '-' || in) {
      po_cli_error("report", "unexpected argument '%s'", o);
      usage(stderr);
      return 2;
    } else {
      in = o;
    }
  }
  if (!in) {
    po_cli_error("report", "no report file given");
    usage(stderr);
    return 2;
  }
  if (po_cli_is_stdout(json_out) && po_cli_is_stdout(html_out)) {
    po_cli_error("report", "--json and --html cannot both write to standard output");
    return 2;
  }
  po_report *rep;
  char err[512];
  if (po_report_load(in, &rep, err, sizeof err) != 0) {
    po_cli_error("report", "%s", err);
    return 1;
  }
  int rc = 0;
  if (json_out) rc |= save(rep, json_out, 0);
  if (html_out) rc |= save(rep, html_out, 1);
  if (!json_out && !html_out && po_cli_write_report_text(rep, stdout, sort, (size_t)top) != 0)
    rc = 1; /* main names the write error */
  po_report_destroy(rep);
  return rc;
}
