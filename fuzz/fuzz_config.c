/* libFuzzer: the JSON configuration parser and its validation. Never crashes; on error the
 * configuration is unchanged; a number is accepted only in its strict decimal form. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perfopt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  po_config cfg, before;
  po_config_defaults(&cfg);
  before = cfg;
  char err[256];
  if (po_config_load_json(&cfg, text, err, sizeof err) != 0 && memcmp(&cfg, &before, sizeof cfg))
    abort(); /* a failed load must leave the configuration as it was */
  /* Each line as KEY=VALUE through the text setter too. */
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = '\0';
    po_config_set(&cfg, line, eq + 1, err, sizeof err);
    /* Numbers are strictly decimal: an accepted value has no space, hex digit or other letter. */
    po_config num;
    po_config_defaults(&num);
    if (po_config_set(&num, "CPU_THRESHOLD", eq + 1, err, sizeof err) == 0 ||
        po_config_set(&num, "MONITOR_INTERVAL_MS", eq + 1, err, sizeof err) == 0) {
      for (const char *p = eq + 1; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) abort();
    }
  }
  free(text);
  return 0;
}
