/* Placeholder: the real subcommand replaces this file. */
#include "cli.h"

#include <stdio.h>

int po_cli_sysinfo(int argc, char **argv) {
  (void)argc;
  (void)argv;
  fprintf(stderr, "perfopt sysinfo: not built yet\n");
  return 1;
}
