/* libFuzzer target for the Prometheus text (/metrics, po_report_push): a saved report is user
 * input (`perfopt serve R.json`), and Prometheus rejects a whole scrape for one bad line, so any
 * report must give a well-formed exposition: every line a comment or NAME[{labels}] VALUE, label
 * values closed, no family declared twice. A violation aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perfopt.h"
#include "report/report_build.h"
#include "report/report_metrics.h"

static const char NAME_CHARS[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:";

static void check_sample(const char *line, const char *end) {
  size_t n = strspn(line, NAME_CHARS);
  if (n == 0 || (line[0] >= '0' && line[0] <= '9')) abort();
  const char *p = line + n;
  if (*p == '{') {
    int quoted = 0;
    for (p++; p < end && (quoted || *p != '}'); p++) {
      if (quoted && *p == '\\') {
        p++;
        if (p >= end || (*p != '\\' && *p != '"' && *p != 'n')) abort();
      } else if (*p == '"') {
        quoted = !quoted;
      }
    }
    if (p >= end) abort();
    p++;
  }
  if (*p != ' ') abort();
  char *vend;
  strtod(p + 1, &vend);
  if (vend != end) abort();
}

static void check(const char *text) {
  char families[256][128];
  size_t nf = 0;
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    if (!end) abort();
    if (!strncmp(line, "# TYPE ", 7)) {
      size_t n = strcspn(line + 7, " \n");
      if (n == 0 || n >= 128) abort();
      for (size_t i = 0; i < nf; i++)
        if (strlen(families[i]) == n && !memcmp(families[i], line + 7, n)) abort();
      if (nf < 256) {
        memcpy(families[nf], line + 7, n);
        families[nf++][n] = 0;
      }
    } else if (line[0] != '#') {
      check_sample(line, end);
    }
    line = end + 1;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  po_report *rep = NULL;
  if (po__report_parse((const char *)data, size, "fuzz", &rep, NULL, 0) != 0) return 0;
  size_t len;
  char *text = po__report_prom_text(rep, &len);
  if (text) {
    if (strlen(text) != len) abort();
    check(text);
  }
  free(text);
  po_report_destroy(rep);
  return 0;
}
