/* perfopt config: shows the configuration in force (defaults, PERFOPT_CONFIG file, environment),
 * lists the keys, or checks a config file. */
#include "cli.h"
#include "perfopt.h"

#include <stdio.h>
#include <string.h>

int po_cli_config(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    printf(
        "usage: perfopt config [--keys | --check FILE]\n"
        "Prints the configuration in force as JSON; --keys lists every key; --check FILE\n"
        "validates a JSON config file (exit 1 with the key and what it allows on error).\n");
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--keys")) {
    for (size_t i = 0; i < po_config_key_count(); i++)
      printf("%-24s %s\n", po_config_key_name(i), po_config_key_help(i));
    return 0;
  }
  po_config cfg;
  char err[512];
  int rc;
  if (argc > 2 && !strcmp(argv[1], "--check")) {
    po_config_defaults(&cfg);
    rc = po_config_load_file(&cfg, argv[2], err, sizeof err);
  } else if (argc > 1) {
    fprintf(stderr, "perfopt config: unexpected argument '%s'\n", argv[1]);
    return 2;
  } else {
    rc = po_config_load(&cfg, err, sizeof err);
  }
  if (rc) {
    fprintf(stderr, "perfopt config: %s\n", err);
    return 1;
  }
  char *s = po_config_to_json(&cfg);
  if (!s) return 1;
  printf("%s\n", s);
  po_free(s);
  return 0;
}
