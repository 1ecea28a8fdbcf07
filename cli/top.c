/* Placeholder: the real subcommand replaces this file. */
#include "cli.h"

#include <stdio.h>

int po_cli_top(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "perfopt top: not built yet\n");
  return 1;
}
