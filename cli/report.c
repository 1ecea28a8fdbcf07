/* perfopt report: prints a saved report (a table with the advisor's suggestions) or converts it
 * (JSON, HTML, Chrome trace, folded stacks, Prometheus); with --diff, compares two reports and
 * gates on regressions for CI. */
#include "cli.h"
#include "perfopt.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_GATE 3
#define MAX_GATES 16

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt report REPORT.json [--format FORMAT] [-o OUT] [--sort total|self|calls]\n"
          "                      [--top N] [--folded-value time|heap] [--advise]\n"
          "                      [--json OUT.json] [--html OUT.html]\n"
          "       perfopt report --diff A.json B.json [--format text|json] [-o OUT]\n"
          "                      [--fail-if GATE]...\n"
          "FORMAT: text (the profile table, --top N rows, default 25, 0 = all, and the\n"
          "suggestions; the default), json, html, trace (Chrome Trace Event JSON for Perfetto),\n"
          "folded (stacks for flamegraph.pl and speedscope; --folded-value heap for heap bytes),\n"
          "prom (Prometheus text). Without -o (or with -o -) the output goes to stdout; --json and\n"
          "--html also write those forms. Suggestions are computed again when the report has\n"
          "none (or with --advise).\n"
          "--diff compares A (before) with B (after). GATE: slower:PCT (a function's self time\n"
          "or p95), wall:PCT, peak:PCT, rss:PCT, suggestions:info|warning|critical (a new one);\n"
          "the exit status is 3 when a gate holds.\n");
}

typedef struct args {
  const char *in, *out, *json_out, *html_out, *format, *diff_a, *diff_b;
  const char *gates[MAX_GATES];
  int ngates, advise;
  po_sort sort;
  long top;
  po_folded_value folded;
} args;

static int bad(const char *msg, const char *arg) {
  if (arg)
    po_cli_error("report", "%s: '%s'", msg, arg);
  else
    po_cli_error("report", "%s", msg);
  usage(stderr);
  return 2;
}

/* One option with a value; returns 0, or the exit status of a usage error. */
static int option_value(args *a, const char *o, const char *v) {
  if (!strcmp(o, "--sort")) return po_cli_parse_sort("report", v, &a->sort) != 0 ? 2 : 0;
  if (!strcmp(o, "--top"))
    return po_cli_parse_long("report", o, v, 0, 1000000, NULL, &a->top) != 0 ? 2 : 0;
  if (!strcmp(o, "--json")) a->json_out = v;
  if (!strcmp(o, "--html")) a->html_out = v;
  if (!strcmp(o, "-o") || !strcmp(o, "--output")) a->out = v;
  if (!strcmp(o, "--format")) a->format = v;
  if (!strcmp(o, "--folded-value")) {
    if (!strcmp(v, "time"))
      a->folded = PO_FOLDED_TIME;
    else if (!strcmp(v, "heap"))
      a->folded = PO_FOLDED_HEAP_BYTES;
    else
      return bad("--folded-value must be time or heap, not", v);
  }
  if (!strcmp(o, "--fail-if")) {
    if (a->ngates == MAX_GATES) return bad("too many --fail-if", NULL);
    a->gates[a->ngates++] = v;
  }
  return 0;
}

/* Returns -1 to go on, else the exit status. */
static int parse(int argc, char **argv, args *a) {
  static const char *const valued[] = {"--sort",   "--top",          "--json",   "--html", "-o",
                                       "--output", "--format",       "--fail-if",
                                       "--folded-value"};
  memset(a, 0, sizeof *a);
  a->top = 25;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    int takes_value = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) takes_value |= !strcmp(o, valued[k]);
    if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
      usage(stdout);
      return 0;
    } else if (takes_value) {
      const char *v = po_cli_value("report", argc, argv, &i);
      if (!v) return 2;
      int rc = option_value(a, o, v);
      if (rc) return rc;
    } else if (!strcmp(o, "--advise")) {
      a->advise = 1;
    } else if (!strcmp(o, "--diff")) {
      if (i + 2 >= argc) return bad("--diff needs two reports: --diff A.json B.json", NULL);
      a->diff_a = argv[++i];
      a->diff_b = argv[++i];
    } else if (o[0] == '-' || a->in) {
      return bad("unexpected argument", o);
    } else {
      a->in = o;
    }
  }
  if (a->diff_a && a->in) return bad("--diff takes two reports and no other", a->in);
  if (!a->diff_a && !a->in) return bad("no report file given", NULL);
  if (a->ngates && !a->diff_a) return bad("--fail-if needs --diff A.json B.json", NULL);
  int to_stdout = (!a->out || po_cli_is_stdout(a->out)) && (a->format || !(a->json_out || a->html_out));
  if (to_stdout + po_cli_is_stdout(a->json_out) + po_cli_is_stdout(a->html_out) > 1)
    return bad("only one output can go to standard output", NULL);
  return -1;
}

/* Writes `rep` in `format` to a.out (atomically) or to stdout. Returns an exit status. */
static int emit(const po_report *rep, const char *out, const char *format, const args *a) {
  char err[512] = "";
  int rc = 0, to_stdout = !out || po_cli_is_stdout(out);
  if (!strcmp(format, "text") && !to_stdout) {
    FILE *f = fopen(out, "w");
    if (!f) {
      po_cli_error("report", "%s: %s", out, strerror(errno));
      return 1;
    }
    rc = po_cli_write_report_text(rep, f, a->sort, (size_t)a->top);
    if (fclose(f) != 0) rc = -1;
    if (rc) po_cli_error("report", "%s: write error", out);
    return rc ? 1 : 0;
  }
  if (!strcmp(format, "text")) {
    rc = po_cli_write_report_text(rep, stdout, a->sort, (size_t)a->top);
  } else if (!strcmp(format, "json")) {
    if (!to_stdout) {
      rc = po_report_save_json(rep, out, err, sizeof err);
    } else {
      char *s = po_report_to_string(rep, 1);
      rc = s && fputs(s, stdout) >= 0 && fputc('\n', stdout) != EOF ? 0 : s ? PO_EIO : PO_ENOMEM;
      po_free(s);
    }
  } else if (!strcmp(format, "html")) {
    rc = to_stdout ? po_report_write_html(rep, stdout) : po_report_save_html(rep, out, err, sizeof err);
  } else if (!strcmp(format, "trace")) {
    rc = to_stdout ? po_report_write_trace(rep, stdout)
                   : po_report_save_trace(rep, out, err, sizeof err);
  } else if (!strcmp(format, "folded")) {
    rc = to_stdout ? po_report_write_folded(rep, stdout, a->folded)
                   : po_report_save_folded(rep, out, a->folded, err, sizeof err);
    if (rc == PO_ENOENT && !err[0])
      snprintf(err, sizeof err, "the report has no %s",
               a->folded == PO_FOLDED_TIME ? "call tree with self time" : "heap sites");
  } else if (!strcmp(format, "prom")) {
    rc = to_stdout ? po_report_write_prom(rep, stdout)
                   : po_report_save_prom(rep, out, err, sizeof err);
  }
  if (!rc && to_stdout && fflush(stdout) != 0) rc = PO_EIO;
  if (!rc) return 0;
  if (err[0])
    po_cli_error("report", "%s", err);
  else if (to_stdout && (rc == PO_EIO || rc == -1))
    return po_cli_stdout_error("report");
  else
    po_cli_error("report", "%s", po_strerror(rc));
  return 1;
}

static int known_format(const char *f, int diff) {
  static const char *const all[] = {"text", "json", "html", "trace", "folded", "prom"};
  for (size_t i = 0; i < (diff ? 2 : sizeof all / sizeof all[0]); i++)
    if (!strcmp(f, all[i])) return 1;
  return 0;
}

static po_report *load(const char *path) {
  po_report *rep;
  char err[512];
  if (po_report_load(path, &rep, err, sizeof err) != 0) {
    po_cli_error("report", "%s", err);
    return NULL;
  }
  return rep;
}

/* Reports without suggestions (older versions) are advised, so both sides of a diff, and every
 * printed report, come from the current rules. */
static int advise_if_needed(po_report *rep, int force) {
  const cJSON *s = cJSON_GetObjectItem(po_report_json(rep), "suggestions");
  if (!force && cJSON_GetArraySize(s) > 0) return 0;
  if (po_report_advise(rep) == 0) return 0;
  po_cli_error("report", "out of memory running the advisor");
  return 1;
}

static int run_diff(const args *a) {
  po_report *ra = load(a->diff_a), *rb = ra ? load(a->diff_b) : NULL, *d = NULL;
  int rc = ra && rb ? 0 : 1;
  if (!rc) rc = advise_if_needed(ra, 0) || advise_if_needed(rb, 0);
  if (!rc && po_report_diff(ra, rb, &d) != 0) {
    po_cli_error("report", "out of memory comparing the reports");
    rc = 1;
  }
  char why[512];
  for (int g = 0; !rc && g < a->ngates; g++)
    if (po_diff_check(d, a->gates[g], why, sizeof why) == PO_EINVAL) {
      po_cli_error("report", "--fail-if %s", why);
      rc = 2;
    }
  if (!rc && a->format && !strcmp(a->format, "json")) {
    rc = emit(d, a->out, "json", a);
  } else if (!rc) {
    FILE *f = a->out && !po_cli_is_stdout(a->out) ? fopen(a->out, "w") : stdout;
    if (!f) {
      po_cli_error("report", "%s: %s", a->out, strerror(errno));
      rc = 1;
    } else {
      rc = po_report_write_diff_text(d, f) ? 1 : 0;
      if (f != stdout && fclose(f) != 0) rc = 1;
      if (rc && f != stdout) po_cli_error("report", "%s: write error", a->out);
      if (rc && f == stdout) rc = po_cli_stdout_error("report");
    }
  }
  for (int g = 0; !rc && g < a->ngates; g++) {
    if (po_diff_check(d, a->gates[g], why, sizeof why) == 1) {
      po_cli_error("report", "--fail-if %s: %s", a->gates[g], why);
      rc = EXIT_GATE;
    }
  }
  po_report_destroy(d);
  po_report_destroy(ra);
  po_report_destroy(rb);
  return rc;
}

int po_cli_report(int argc, char **argv) {
  args a;
  int prc = parse(argc, argv, &a);
  if (prc >= 0) return prc;
  if (a.format && !known_format(a.format, a.diff_a != NULL))
    return bad(a.diff_a ? "--format of a diff must be text or json, not"
                        : "--format must be text, json, html, trace, folded or prom, not",
               a.format);
  if (a.diff_a) return run_diff(&a);
  po_report *rep = load(a.in);
  if (!rep) return 1;
  int rc = advise_if_needed(rep, a.advise);
  if (!rc && a.json_out) rc = emit(rep, a.json_out, "json", &a);
  if (!rc && a.html_out) rc = emit(rep, a.html_out, "html", &a);
  if (!rc && (a.format || a.out || (!a.json_out && !a.html_out)))
    rc = emit(rep, a.out, a.format ? a.format : "text", &a);
  po_report_destroy(rep);
  return rc;
}
