/* report_text: the human-readable table of a report. Reads the model only. */
#include "base/base.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

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

static const char *text_str(const cJSON *o, const char *k) {
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
  return v ? v : "";
}

/* The memory forecast, the autopilot's actions and the flight record, when the report has them. */
static void write_memory_forecast(const cJSON *root, FILE *out) {
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive(root, "memory");
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(mem, "forecast");
  const cJSON *ap = cJSON_GetObjectItemCaseSensitive(mem, "autopilot");
  const cJSON *fl = cJSON_GetObjectItemCaseSensitive(root, "flight");
  if (!f) return;
  double lim = num(f, "limit_bytes"), level = num(f, "level_bytes"), ttl = num(f, "time_to_limit_seconds");
  fprintf(out, "memory: %.1f MiB of a %.1f MiB limit (%s); trend %s", level / 1048576.0,
          lim / 1048576.0, text_str(mem, "limit_source"), text_str(f, "trend"));
  if (ttl >= 0)
    fprintf(out, ", %.1f MiB/s: the limit in %.0f s", num(f, "slope_bytes_per_second") / 1048576.0,
            ttl);
  fprintf(out, "; autopilot grade %s\n", text_str(f, "grade"));
  const cJSON *acts = cJSON_GetObjectItemCaseSensitive(ap, "actions"), *a;
  int n = 0, helped = 0;
  double freed = 0;
  cJSON_ArrayForEach(a, acts) {
    n++;
    freed += num(a, "freed_bytes");
    helped += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "helped"));
  }
  if (n)
    fprintf(out, "autopilot: %d actions (%d moved the limit out of the %.0f s horizon), %.1f MiB "
                 "freed\n",
            n, helped, num(ap, "horizon_seconds"), freed / 1048576.0);
  const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ap, "flight_record");
  if (num(fr, "writes") > 0) fprintf(out, "flight record: %s\n", text_str(fr, "path"));
  if (fl) fprintf(out, "this is the flight record: %s\n", text_str(fl, "reason"));
}

int po_report_write_text(const po_report *rep, FILE *out, po_sort sort, size_t top_n) {
  const cJSON *root = po_report_json(rep);
  if (!root || !out) return PO_EINVAL;
  const cJSON *prof = cJSON_GetObjectItemCaseSensitive(root, "profile");
  const cJSON *funcs = cJSON_GetObjectItemCaseSensitive(prof, "functions");
  int n = cJSON_GetArraySize(funcs);
  const cJSON **rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
  if (!rows) return PO_ENOMEM;
  int i = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, funcs) rows[i++] = f;
  qsort_r(rows, (size_t)n, sizeof *rows, cmp_desc, (void *)sort_key(sort));

  double wall = num(prof, "wall_seconds");
  fprintf(out, "perfopt profile: %d functions, %.3f s profiled wall time, sorted by %s\n", n, wall,
          sort == PO_SORT_SELF    ? "self time"
          : sort == PO_SORT_CALLS ? "calls"
                                  : "total time");
  fprintf(out, "   %-40s %12s %12s %12s %12s %10s %7s\n", "function", "total", "self", "avg", "p95",
          "calls", "%total");
  size_t shown = top_n && (size_t)n > top_n ? top_n : (size_t)n;
  for (size_t r = 0; r < shown; r++) {
    const cJSON *row = rows[r];
    char tot[32], self[32], avg[32], p95[32];
    fmt_time(tot, sizeof tot, num(row, "total_seconds"));
    fmt_time(self, sizeof self, num(row, "self_seconds"));
    fmt_time(avg, sizeof avg, num(row, "avg_seconds"));
    fmt_time(p95, sizeof p95, num(row, "p95_seconds"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "name"));
    /* The top three by the sort key are the bottlenecks worth looking at first. */
    fprintf(out, "%s %-40.40s %12s %12s %12s %12s %10.0f %6.1f%%\n", r < 3 ? "!!" : "  ",
            name ? name : "?", tot, self, avg, p95, num(row, "calls"), num(row, "percent_total"));
  }
  if (shown < (size_t)n)
    fprintf(out, "   ... %zu more functions in the JSON report\n", (size_t)n - shown);
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
  free(rows);
  write_memory_forecast(root, out);
  return ferror(out) ? PO_EIO : 0;
}
