/* Text that came from a file, made safe for a terminal; errors and warnings on stderr; standard
 * output as an output path and its write errors. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when s[0] does not start one. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return len;
}

/* Calls put(piece) for the escaped form of s[0..n). */
typedef int (*put_fn)(const char *piece, size_t len, void *user);

static int escape_to(const char *s, size_t n, int keep_newline, put_fn put, void *user) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, run = 0; /* run: bytes from i - run that pass through unchanged */
  char esc[8];
  while (i < n) {
    unsigned char c = u[i];
    size_t len = 1;
    int bad;
    if (c < 0x80) {
      bad = (c < 0x20 && c != '\t' && !(c == '\n' && keep_newline)) || c == 0x7F;
      if (bad) snprintf(esc, sizeof esc, "\\x%02x", c);
    } else {
      len = utf8_len(u + i, n - i);
      if (len == 0) {
        bad = 1;
        len = 1;
        snprintf(esc, sizeof esc, "\\x%02x", c);
      } else {
        bad = c == 0xC2 && u[i + 1] < 0xA0; /* U+0080..U+009F: C1 controls (CSI is U+009B) */
        if (bad) snprintf(esc, sizeof esc, "\\u%04x", u[i + 1]);
      }
    }
    if (bad) {
      if (run && put(s + i - run, run, user)) return -1;
      run = 0;
      if (put(esc, strlen(esc), user)) return -1;
    } else {
      run += len;
    }
    i += len;
  }
  return run && put(s + n - run, run, user) ? -1 : 0;
}

static int put_file(const char *piece, size_t len, void *user) {
  return fwrite(piece, 1, len, (FILE *)user) == len ? 0 : -1;
}

int po_cli_write_escaped(FILE *f, const char *s, size_t n, int keep_newline) {
  return escape_to(s, n, keep_newline, put_file, f);
}

typedef struct {
  char *buf;
  size_t len, used;
} bounded;

static int put_buf(const char *piece, size_t len, void *user) {
  bounded *b = user;
  size_t room = b->len - 1 - b->used;
  size_t k = len < room ? len : room;
  memcpy(b->buf + b->used, piece, k);
  b->used += k;
  b->buf[b->used] = '\0';
  return k < len ? -1 : 0; /* full: stop */
}

const char *po_cli_escape(const char *s, char *buf, size_t len) {
  if (!buf || len == 0) return "";
  bounded b = {buf, len, 0};
  buf[0] = '\0';
  if (!s) s = "(null)";
  escape_to(s, strlen(s), 0, put_buf, &b);
  return buf;
}

void po_cli_error(const char *cmd, const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (cmd)
    fprintf(stderr, "perfopt %s: ", cmd);
  else
    fputs("perfopt: ", stderr);
  po_cli_write_escaped(stderr, msg, strlen(msg), 0);
  fputc('\n', stderr);
}

static unsigned warnings;

static void log_to_stderr(int level, const char *message, void *user) {
  (void)user;
  if (level > 1) return; /* info stays quiet */
  if (level == 1) warnings++;
  po_cli_error(NULL, "%s%s", level == 1 ? "warning: " : "", message);
}

void po_cli_install_log(void) {
  po_set_log_callback(log_to_stderr, NULL);
}

unsigned po_cli_warning_count(void) {
  return warnings;
}

int po_cli_write_report_text(const po_report *rep, FILE *out, po_sort sort, size_t top_n) {
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (!mem) return -1;
  int rc = po_report_write_text(rep, mem, sort, top_n);
  if (fclose(mem) != 0) rc = -1;
  if (rc == 0 && text) rc = po_cli_write_escaped(out, text, len, 1);
  free(text);
  return rc ? -1 : 0;
}

int po_cli_is_stdout(const char *path) {
  return path && !strcmp(path, "-");
}

static int stdout_error_reported;

int po_cli_stdout_error(const char *cmd) {
  int e = errno;
  if (!stdout_error_reported)
    po_cli_error(cmd, "cannot write to standard output: %s", e ? strerror(e) : "write error");
  stdout_error_reported = 1;
  return 1;
}

int po_cli_flush_stdout(const char *cmd) {
  errno = 0;
  if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
  po_cli_stdout_error(cmd);
  return -1;
}
