/* perfopt command line: one file per subcommand, each `int po_cli_NAME(int argc, char **argv)`
 * with argv[0] the subcommand's name. Exit codes: 0 success, 1 failure, 2 usage error. */
#ifndef PO_CLI_H
#define PO_CLI_H

int po_cli_run(int argc, char **argv);
int po_cli_report(int argc, char **argv);
int po_cli_sysinfo(int argc, char **argv);
int po_cli_top(int argc, char **argv);
int po_cli_plot(int argc, char **argv);
int po_cli_config(int argc, char **argv);
int po_cli_serve(int argc, char **argv);

#include "perfopt.h"

#include <stddef.h>

/* Parses a --sort value (total, self, calls); prints the error for `perfopt CMD` and returns -1
 * when it is none of them. */
int po_cli_parse_sort(const char *cmd, const char *text, po_sort *out);

/* Parses --listen / --serve: "ADDR:PORT", "[IPV6]:PORT" or "PORT" (127.0.0.1). Prints the error
 * for `perfopt CMD` and returns -1 when it is none of them. */
int po_cli_parse_listen(const char *cmd, const char *text, char *addr, size_t addr_len, int *port);

#endif
