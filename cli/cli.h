/* perfopt command line: one file per subcommand, each `int po_cli_NAME(int argc, char **argv)`
 * with argv[0] the subcommand's name. Exit codes: 0 success, 1 failure, 2 usage error. */
#ifndef PO_CLI_H
#define PO_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "perfopt.h"

int po_cli_run(int argc, char **argv);
int po_cli_attach(int argc, char **argv);
int po_cli_report(int argc, char **argv);
int po_cli_sysinfo(int argc, char **argv);
int po_cli_top(int argc, char **argv);
int po_cli_plot(int argc, char **argv);
int po_cli_config(int argc, char **argv);
int po_cli_serve(int argc, char **argv);
int po_cli_merge(int argc, char **argv);

/* ---- options (cli/options.c) ------------------------------------------------------------------
 * Each parser prints its error as "perfopt CMD: ..." and returns -1; the caller exits 2. */

/* Parses a --sort value (total, self, calls). */
int po_cli_parse_sort(const char *cmd, const char *text, po_sort *out);
/* Parses the whole of `text` as a decimal integer in [lo, hi] (no sign other than a leading '-',
 * no spaces, no hex, not empty); `unit` (may be NULL) is named in the error, e.g. "ms". */
int po_cli_parse_long(const char *cmd, const char *opt, const char *text, long lo, long hi,
                      const char *unit, long *out);
/* The value of option argv[*i] (advancing *i), or NULL after printing "OPT needs a value". */
const char *po_cli_value(const char *cmd, int argc, char **argv, int *i);

/* ---- text from files, on a terminal (cli/terminal.c) ------------------------------------------
 * Names, cells and messages that came from a file or the environment can hold escape sequences;
 * everything the CLI prints from them goes through these. */

/* Writes s[0..n) with control characters made visible: C0 controls and DEL as \xNN (tab kept,
 * newline kept when keep_newline), UTF-8 C1 controls (U+0080..U+009F) as \u00NN, bytes that are
 * not UTF-8 as \xNN. Returns 0, or -1 when the stream reports an error. */
int po_cli_write_escaped(FILE *f, const char *s, size_t n, int keep_newline);
/* s escaped into buf (truncated, always terminated); returns buf. NULL prints as "(null)". */
const char *po_cli_escape(const char *s, char *buf, size_t len);
/* "perfopt CMD: <message>\n" on stderr, the message escaped (newlines included). cmd NULL:
 * "perfopt: ". */
void po_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Routes the library's log (errors and warnings) to stderr, escaped, as "perfopt: warning: ...",
 * and counts the warnings. Called once by main. */
void po_cli_install_log(void);
unsigned po_cli_warning_count(void);
/* po_report_write_text into `out`, escaped (newlines kept). Returns 0 or -1 (write error). */
int po_cli_write_report_text(const po_report *rep, FILE *out, po_sort sort, size_t top_n);

/* ---- output paths (cli/terminal.c) ---------------------------------------------------------- */

/* "-" as an output path means standard output. */
int po_cli_is_stdout(const char *path);
/* Prints "perfopt CMD: cannot write to standard output: <errno's reason>" (once per process)
 * and returns 1 (an exit status). */
int po_cli_stdout_error(const char *cmd);
/* Flushes stdout; on a write error reports it (po_cli_stdout_error) and returns -1. */
int po_cli_flush_stdout(const char *cmd);

/* Parses --listen / --serve: "ADDR:PORT", "[IPV6]:PORT" or "PORT" (127.0.0.1). Prints the error
 * for `perfopt CMD` and returns -1 when it is none of them. */
int po_cli_parse_listen(const char *cmd, const char *text, char *addr, size_t addr_len, int *port);

/* The progress line of perfopt run / attach (cli/progress.c): kept on the terminal's last row
 * below a scroll region. Does nothing unless enabled and stderr is a terminal. */
typedef struct po_cli_progress {
  int on;
  int rows, cols;
} po_cli_progress;
void po_cli_progress_start(po_cli_progress *p, int enabled);
void po_cli_progress_show(po_cli_progress *p, const char *text);
void po_cli_progress_resize(po_cli_progress *p); /* after SIGWINCH */
void po_cli_progress_stop(po_cli_progress *p);   /* clears the line, gives the row back */

#endif
