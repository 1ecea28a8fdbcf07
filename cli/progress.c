/* The progress line of `perfopt run` / `perfopt attach`: one status line kept on the terminal's
 * last row while the command's own output scrolls above it (a scroll region, as apt draws its
 * progress bar), so neither overwrites the other. Each update is one write(2), which a terminal
 * applies whole even when the command writes at the same time. Only on a terminal. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void put(const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, s, n);
    if (w <= 0) return; /* the line is a courtesy: a failed write is not worth more */
    s += w;
    n -= (size_t)w;
  }
}

static void putf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void putf(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) put(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static int term_size(int *rows, int *cols) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row < 5 || ws.ws_col < 20) return -1;
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return 0;
}

/* Reserves the last row: a new line (so the current one is kept), then the scroll region above
 * the last row; the cursor goes back to where the output continues. */
static void reserve(po_cli_progress *p) {
  putf("\n\0337\033[1;%dr\0338\033[1A", p->rows - 1);
}

void po_cli_progress_start(po_cli_progress *p, int enabled) {
  memset(p, 0, sizeof *p);
  if (!enabled || !isatty(STDERR_FILENO) || term_size(&p->rows, &p->cols) != 0) return;
  p->on = 1;
  reserve(p);
}

void po_cli_progress_resize(po_cli_progress *p) {
  if (!p->on) return;
  int rows, cols;
  if (term_size(&rows, &cols) != 0) return;
  p->rows = rows;
  p->cols = cols;
  putf("\0337\033[1;%dr\0338", p->rows - 1);
}

void po_cli_progress_show(po_cli_progress *p, const char *text) {
  if (!p->on) return;
  char line[600];
  int width = p->cols - 1;
  int n = snprintf(line, sizeof line, "\0337\033[%d;1H\033[2K\033[7m%.*s\033[0m\0338", p->rows,
                   width, text);
  if (n > 0) put(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void po_cli_progress_stop(po_cli_progress *p) {
  if (!p->on) return;
  /* Resetting the region homes the cursor: save and restore around it, then clear the row. */
  putf("\0337\033[r\0338\0337\033[%d;1H\033[2K\0338", p->rows);
  p->on = 0;
}
