/* report_text: the human-readable table of a report and its suggestions. Reads the model only. */
#include "report/report_build.h"

#include <stdlib.h>
#include <string.h>

#define NAME_COLS 40
#define WRAP_COLS 100

static double num(const cJSON *o, const char *k) {
  return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const char *sort_key(po_sort sort) {
  return sort == PO_SORT_SELF ? "self_seconds" : sort == PO_SORT_CALLS ? "calls" : "total_seconds";
}

static int cmp_desc(const void *a, const void *b, void *key) {
  double x = num(*(const cJSON *const *)a, key), y = num(*(const cJSON *const *)b, key);
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Formats seconds with a unit that keeps three significant digits readable. */
static void fmt_time(char *buf, size_t len, double s) {
  if (s >= 1.0)
    snprintf(buf, len, "%.3f s", s);
  else if (s >= 1e-3)
    snprintf(buf, len, "%.3f ms", s * 1e3);
  else if (s >= 1e-6)
    snprintf(buf, len, "%.3f us", s * 1e6);
  else
    snprintf(buf, len, "%.1f ns", s * 1e9);
}

/* Prints s in exactly `cols` columns (UTF-8 aware): padded with spaces, or cut with a trailing
 * "…" when longer. */
void po__text_cell(FILE *out, const char *s, size_t cols) {
  size_t chars = 0, i = 0, cut = 0;
  for (; s[i]; i++) {
    if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
    if (chars == cols - 1) cut = i;
    chars++;
  }
  if (chars > cols) {
    fwrite(s, 1, cut, out);
    fputs("\xE2\x80\xA6", out);
    return;
  }
  fputs(s, out);
  for (; chars < cols; chars++) fputc(' ', out);
}

/* ---- marks from the advisor's findings -------------------------------------------------- */

static const struct {
  const char *id;
  char mark;
  const char *legend;
} MARKS[] = {
    {"hot-function", '!', "hot: at least 20% of the profiled time in its own code"},
    {"tiny-calls", '+', "many tiny calls (under 1 us each): batch or inline"},
    {"latency-tail", '~', "slow tail: p99 at least 10x the median"},
};
#define NMARKS 3
_Static_assert(sizeof MARKS / sizeof MARKS[0] == NMARKS, "one mark column per kind");

/* The marks of function `name`: one character per kind of finding, ' ' where none. */
static void marks_for(const cJSON *suggestions, const char *name, char out[NMARKS + 1],
                      int *used) {
  memset(out, ' ', NMARKS);
  out[NMARKS] = '\0';
  const cJSON *s;
  cJSON_ArrayForEach(s, suggestions) {
    const char *id = po__j_getstr(s, "id"), *target = po__j_getstr(s, "target");
    if (!id || !target || !name || strcmp(target, name) != 0) continue;
    for (size_t k = 0; k < NMARKS; k++)
      if (strcmp(id, MARKS[k].id) == 0) {
        out[k] = MARKS[k].mark;
        used[k] = 1;
      }
  }
}

static void legend(FILE *out, const int *used) {
  int any = 0;
  for (size_t k = 0; k < NMARKS; k++) {
    if (!used[k]) continue;
    fprintf(out, "%s%c %s", any ? "; " : "marks: ", MARKS[k].mark, MARKS[k].legend);
    any = 1;
  }
  if (any) fprintf(out, " (see the suggestions)\n");
}

/* ---- suggestions ------------------------------------------------------------------------ */

/* Prints text word-wrapped at WRAP_COLS (starting at column `col`), continuation lines indented
 * by `indent`. */
static void wrapped(FILE *out, const char *text, size_t col, size_t indent) {
  int first = 1;
  for (const char *p = text; *p;) {
    while (*p == ' ') p++;
    size_t w = strcspn(p, " ");
    if (!w) break;
    if (!first && col + 1 + w > WRAP_COLS) {
      fprintf(out, "\n%*s", (int)indent, "");
      col = indent;
    } else if (!first) {
      fputc(' ', out);
      col++;
    }
    fwrite(p, 1, w, out);
    col += w;
    p += w;
    first = 0;
  }
  fputc('\n', out);
}

static void evidence_line(FILE *out, const cJSON *evidence) {
  char line[2048];
  size_t used = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, evidence) {
    const char *name = po__j_getstr(e, "name"), *unit = po__j_getstr(e, "unit");
    const cJSON *v = po__j_get(e, "value");
    if (!name || !cJSON_IsNumber(v) || used >= sizeof line) continue;
    char val[64];
    if (unit && strcmp(unit, "cores") == 0)
      snprintf(val, sizeof val, "%.2f cores", v->valuedouble);
    else
      po_format_value(v->valuedouble, po_unit_from_name(unit), val, sizeof val);
    used += (size_t)snprintf(line + used, sizeof line - used, "%s%s %s", used ? "; " : "", name,
                             val);
  }
  if (!used) return;
  fprintf(out, "      evidence: ");
  wrapped(out, line, 16, 16);
}

static void suggestions_text(FILE *out, const cJSON *suggestions) {
  int n = cJSON_GetArraySize(suggestions);
  if (!cJSON_IsArray(suggestions)) return;
  if (n == 0) {
    fprintf(out, "\nsuggestions: none (no rule fired on this report)\n");
    return;
  }
  fprintf(out, "\nsuggestions (%d):\n", n);
  const cJSON *s;
  cJSON_ArrayForEach(s, suggestions) {
    const char *sev = po__j_getstr(s, "severity"), *id = po__j_getstr(s, "id");
    const char *title = po__j_getstr(s, "title"), *action = po__j_getstr(s, "action");
    char head[1024];
    snprintf(head, sizeof head, "[%s] %s: %s", sev ? sev : "info", id ? id : "?",
             title ? title : "");
    fprintf(out, "  ");
    wrapped(out, head, 2, 6);
    const cJSON *ev = po__j_get(s, "evidence");
    if (cJSON_IsArray(ev))
      evidence_line(out, ev);
    else if (cJSON_IsString(ev))
      fprintf(out, "      evidence: %s\n", ev->valuestring);
    if (action) {
      fprintf(out, "      action: ");
      wrapped(out, action, 14, 14);
    }
  }
}

/* ---- the table -------------------------------------------------------------------------- */

static void notes(FILE *out, const cJSON *prof) {
  double dropped = num(prof, "dropped_events");
  const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(prof, "counters");
  if (dropped > 0) fprintf(out, "note: %.0f timeline events dropped (ring full)\n", dropped);
  if (num(cnt, "unmatched_ends") > 0)
    fprintf(out, "note: %.0f zone ends without a begin were ignored\n", num(cnt, "unmatched_ends"));
  if (num(cnt, "open_at_exit") > 0)
    fprintf(out, "note: %.0f zones were still open when their thread exited (closed, flagged)\n",
            num(cnt, "open_at_exit"));
  if (num(cnt, "truncated_names") > 0)
    fprintf(out, "note: %.0f zone names over 255 bytes were truncated\n",
            num(cnt, "truncated_names"));
}

int po_report_write_text(const po_report *rep, FILE *out, po_sort sort, size_t top_n) {
  const cJSON *root = po_report_json(rep);
  if (!root || !out) return PO_EINVAL;
  const cJSON *prof = cJSON_GetObjectItemCaseSensitive(root, "profile");
  const cJSON *funcs = cJSON_GetObjectItemCaseSensitive(prof, "functions");
  const cJSON *sugg = cJSON_GetObjectItemCaseSensitive(root, "suggestions");
  int n = cJSON_GetArraySize(funcs);
  const cJSON **rows = po__calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
  if (!rows) return PO_ENOMEM;
  int i = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, funcs) {
    if (i < n) rows[i++] = f;
  }
  qsort_r(rows, (size_t)i, sizeof *rows, cmp_desc, (void *)sort_key(sort));

  double wall = num(prof, "wall_seconds");
  fprintf(out, "perfopt profile: %d functions, %.3f s profiled wall time, sorted by %s\n", n, wall,
          sort == PO_SORT_SELF    ? "self time"
          : sort == PO_SORT_CALLS ? "calls"
                                  : "total time");
  fprintf(out, "%-*s %-*s %12s %12s %12s %12s %10s %7s\n", (int)NMARKS, "", NAME_COLS, "function",
          "total", "self", "avg", "p95", "calls", "%total");
  size_t shown = top_n && (size_t)i > top_n ? top_n : (size_t)i;
  int used[NMARKS] = {0};
  for (size_t r = 0; r < shown; r++) {
    const cJSON *row = rows[r];
    char tot[32], self[32], avg[32], p95[32], marks[NMARKS + 1];
    fmt_time(tot, sizeof tot, num(row, "total_seconds"));
    fmt_time(self, sizeof self, num(row, "self_seconds"));
    fmt_time(avg, sizeof avg, num(row, "avg_seconds"));
    fmt_time(p95, sizeof p95, num(row, "p95_seconds"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "name"));
    marks_for(sugg, name, marks, used);
    fprintf(out, "%s ", marks);
    po__text_cell(out, name ? name : "?", NAME_COLS);
    fprintf(out, " %12s %12s %12s %12s %10.0f %6.1f%%\n", tot, self, avg, p95, num(row, "calls"),
            num(row, "percent_total"));
  }
  if (shown < (size_t)n)
    fprintf(out, "    ... %zu more functions in the JSON report\n", (size_t)n - shown);
  legend(out, used);
  notes(out, prof);
  suggestions_text(out, sugg);
  free(rows);
  po__report_text_forecast(root, out, "");
  return ferror(out) ? PO_EIO : 0;
}
