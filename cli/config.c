/* perfopt config: shows the configuration in force (defaults, PERFOPT_CONFIG file, environment),
 * lists the keys, or checks a config file. */
#include "cli.h"
#include "perfopt.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt config [--keys | --check FILE]\n"
          "Prints the configuration in force as JSON; --keys lists every key; --check FILE\n"
          "validates a JSON config file (exit 1 with the key and what it allows on error, or\n"
          "with the closest key for an unknown one).\n"
          "An unknown key in a file or a misspelled PERFOPT_* variable is a warning elsewhere.\n");
}

int po_cli_config(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    usage(stdout);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--keys")) {
    if (argc > 2) {
      po_cli_error("config", "unexpected argument '%s'", argv[2]);
      return 2;
    }
    for (size_t i = 0; i < po_config_key_count(); i++)
      printf("%-24s %s\n", po_config_key_name(i), po_config_key_help(i));
    return 0;
  }
  po_config cfg;
  char err[512];
  int rc, check = argc > 1 && !strcmp(argv[1], "--check");
  if (check && argc != 3) {
    if (argc < 3)
      po_cli_error("config", "--check needs a FILE");
    else
      po_cli_error("config", "unexpected argument '%s'", argv[3]);
    usage(stderr);
    return 2;
  }
  if (check) {
    po_config_defaults(&cfg);
    rc = po_config_load_file(&cfg, argv[2], err, sizeof err);
  } else if (argc > 1) {
    po_cli_error("config", "unexpected argument '%s'", argv[1]);
    usage(stderr);
    return 2;
  } else {
    rc = po_config_load(&cfg, err, sizeof err);
  }
  if (rc) {
    po_cli_error("config", "%s", err);
    return 1;
  }
  if (check && po_cli_warning_count() > 0) return 1; /* an unknown key: named on stderr above */
  char *s = po_config_to_json(&cfg);
  if (!s) return 1;
  printf("%s\n", s);
  po_free(s);
  return 0;
}
