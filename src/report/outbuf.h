/* An output buffer for the exports (trace, folded stacks, Prometheus): appends that never fail
 * loudly (the first error is sticky and checked once at the end), fast integer and fixed-point
 * formatting for large traces, and JSON string escaping. It either flushes to a stream as it fills
 * (po_report_write_*) or grows in memory (po_report_save_*: an atomic write needs the whole file;
 * po_report_to_prom). Not installed. */
#ifndef PO__REPORT_OUTBUF_H
#define PO__REPORT_OUTBUF_H

#include "base/base.h"

#include <stdint.h>
#include <stdio.h>

typedef struct po__ob {
  char *data;
  size_t len, cap;
  FILE *f; /* flush target; NULL: keep everything in memory */
  int err; /* 0, PO_ENOMEM or PO_EIO (sticky: later appends do nothing) */
} po__ob;

void po__ob_init(po__ob *o, FILE *f);
void po__ob_put(po__ob *o, const char *s, size_t n);
void po__ob_puts(po__ob *o, const char *s);
void po__ob_printf(po__ob *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void po__ob_i64(po__ob *o, int64_t v);
/* v with exactly three decimals ("1234.567"), exact for |v| < 9e15 / 1000; NaN/inf as 0. */
void po__ob_fixed3(po__ob *o, double v);
/* A number as JSON or Prometheus reads it: integers exactly, others with 15 significant digits
 * (NaN and infinities: `nonfinite`, e.g. "null" for JSON, "NaN" for Prometheus). */
void po__ob_num(po__ob *o, double v, const char *nonfinite);
/* s as a quoted JSON string (control characters escaped, invalid UTF-8 kept as is). */
void po__ob_json_str(po__ob *o, const char *s);
/* For hot loops: room for up to `max` bytes at the returned pointer (NULL after an error); write
 * them directly, then po__ob_advance by what was written. */
char *po__ob_claim(po__ob *o, size_t max);
void po__ob_advance(po__ob *o, size_t used);
/* Formatting into claimed room; each returns the end of what it wrote. */
char *po__fmt_i64(char *p, int64_t v);         /* at most 20 bytes */
char *po__fmt_fixed3(char *p, double v);       /* at most 24 bytes; as po__ob_fixed3 */
char *po__fmt_json_str(char *p, const char *s); /* at most 6 * strlen(s) + 2 bytes */

/* Flushes (stream mode) and returns the sticky error (0 when everything was written). */
int po__ob_finish(po__ob *o);
/* The in-memory result, NUL-terminated, handed to the caller (NULL after an error). */
char *po__ob_detach(po__ob *o, size_t *len);
void po__ob_free(po__ob *o);

/* Renders with `render` and writes the result atomically to path (errbuf names the path). */
int po__ob_save(const char *path, int (*render)(po__ob *, const void *), const void *ctx,
                char *errbuf, size_t errlen);
/* Renders with `render` straight to a stream. */
int po__ob_write(FILE *out, int (*render)(po__ob *, const void *), const void *ctx);

#endif
