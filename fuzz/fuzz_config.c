/* libFuzzer: the JSON configuration parser and its validation. Never crashes; on error the
 * configuration is unchanged. */
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
  }
  free(text);
  return 0;
}
