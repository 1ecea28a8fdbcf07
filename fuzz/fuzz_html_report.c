/* libFuzzer target for the HTML report and the charts it builds: a saved report is user input
 * (`perfopt report R.json --html`), so any JSON, with any types in any place, must render
 * without a crash. The input is also used raw as chart names, so escaping sees arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "viz/chart_internal.h"
#include "perfopt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  if (root) {
    size_t len;
    char *html = po__html_render_json(root, &len);
    free(html);
    cJSON_Delete(root);
  }
  char *name = malloc(size + 1);
  if (!name) return 0;
  memcpy(name, data, size);
  name[size] = '\0';
  po_chart *c = po_chart_create(PO_CHART_FLAME, name);
  if (c) {
    for (size_t i = 0; i + 1 < size && i < 64; i++)
      po_chart_add_frame(c, data[i] % 16, (int64_t)(data[i + 1] % 17) - 1, name + i, i,
                         (double)data[i], (double)data[i + 1] / 2);
    free(po_chart_svg_string(c, 1, NULL));
    po_chart_destroy(c);
  }
  free(name);
  return 0;
}
