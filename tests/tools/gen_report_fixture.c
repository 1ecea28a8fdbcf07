/* Writes the realistic report fixture (tests/support/report_fixture.c) as JSON, and optionally its
 * HTML report rendered by the library, for the browser test and for looking at the page by hand.
 *
 *   gen_report_fixture OUT.json [--seconds 86400] [--interval 1] [--gpus 1] [--nodes 3000]
 *                      [--html OUT.html]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz/chart_internal.h"
#include "base/base.h"
#include "perfopt.h"
#include "../support/report_fixture.h"

static int usage(void) {
  fprintf(stderr,
          "usage: gen_report_fixture OUT.json [--seconds S] [--interval S] [--gpus N] "
          "[--nodes N] [--html OUT.html]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *json = NULL, *html = NULL;
  double seconds = 86400, interval = 1;
  int gpus = 1, nodes = 3000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
      interval = atof(argv[++i]);
    else if (!strcmp(argv[i], "--gpus") && i + 1 < argc)
      gpus = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
      nodes = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--html") && i + 1 < argc)
      html = argv[++i];
    else if (argv[i][0] == '-' || json)
      return usage();
    else
      json = argv[i];
  }
  if (!json || !(seconds > 0) || !(interval > 0) || gpus < 0 || gpus > 8 || nodes < 1)
    return usage();
  cJSON *root = fixture_report(seconds, interval, gpus, nodes);
  if (!root) {
    fprintf(stderr, "gen_report_fixture: out of memory\n");
    return 1;
  }
  char err[512];
  char *text = cJSON_PrintUnformatted(root);
  int rc = text ? po__write_file_atomic(json, text, strlen(text), err, sizeof(err)) : PO_ENOMEM;
  free(text);
  if (rc) {
    fprintf(stderr, "gen_report_fixture: %s\n", text ? err : "out of memory");
    cJSON_Delete(root);
    return 1;
  }
  if (html) {
    size_t len;
    char *page = po__html_render_json(root, &len);
    rc = page ? po__write_file_atomic(html, page, len, err, sizeof(err)) : PO_ENOMEM;
    free(page);
    if (rc) {
      fprintf(stderr, "gen_report_fixture: %s\n", page ? err : "out of memory");
      cJSON_Delete(root);
      return 1;
    }
    printf("%s: %zu bytes\n", html, len);
  }
  cJSON_Delete(root);
  return 0;
}
