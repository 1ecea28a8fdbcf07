/* Option parsing shared by several subcommands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int po_cli_parse_sort(const char *cmd, const char *text, po_sort *out) {
  static const struct {
    const char *name;
    po_sort sort;
  } sorts[] = {{"total", PO_SORT_TOTAL}, {"self", PO_SORT_SELF}, {"calls", PO_SORT_CALLS}};
  for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
    if (!strcmp(text, sorts[i].name)) {
      *out = sorts[i].sort;
      return 0;
    }
  }
  fprintf(stderr, "perfopt %s: --sort must be total, self or calls, not '%s'\n", cmd, text);
  return -1;
}
