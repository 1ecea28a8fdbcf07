/* The exports' output buffer (see report/outbuf.h). */
#include "report/outbuf.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define FLUSH_AT (256u << 10)

void po__ob_init(po__ob *o, FILE *f) {
  memset(o, 0, sizeof *o);
  o->f = f;
}

static void flush(po__ob *o) {
  if (o->err || !o->f || !o->len) return;
  if (fwrite(o->data, 1, o->len, o->f) != o->len) o->err = PO_EIO;
  o->len = 0;
}

/* Room for n more bytes and a NUL. */
static int reserve(po__ob *o, size_t n) {
  if (o->err) return -1;
  if (o->f && o->len + n > FLUSH_AT) flush(o);
  if (o->len + n + 1 <= o->cap) return 0;
  size_t cap = o->cap ? o->cap : 4096;
  while (cap < o->len + n + 1) {
    if (cap > SIZE_MAX / 2) {
      o->err = PO_ENOMEM;
      return -1;
    }
    cap *= 2;
  }
  char *p = po__realloc(o->data, cap);
  if (!p) {
    o->err = PO_ENOMEM;
    return -1;
  }
  o->data = p;
  o->cap = cap;
  return 0;
}

void po__ob_put(po__ob *o, const char *s, size_t n) {
  if (!n || reserve(o, n)) return;
  memcpy(o->data + o->len, s, n);
  o->len += n;
  o->data[o->len] = '\0';
}

void po__ob_puts(po__ob *o, const char *s) {
  po__ob_put(o, s, strlen(s));
}

void po__ob_printf(po__ob *o, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    po__ob_put(o, small, (size_t)n);
    return;
  }
  if (reserve(o, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(o->data + o->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  o->len += (size_t)n;
}

/* Digits of v (written backwards into the end of buf); returns the first digit's position. */
static char *digits(uint64_t v, char *end) {
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

char *po__fmt_i64(char *p, int64_t v) {
  char buf[24], *end = buf + sizeof buf;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  char *d = digits(u, end);
  if (v < 0) *--d = '-';
  size_t n = (size_t)(end - d);
  memcpy(p, d, n);
  return p + n;
}

void po__ob_i64(po__ob *o, int64_t v) {
  char buf[24];
  const char *end = po__fmt_i64(buf, v);
  po__ob_put(o, buf, (size_t)(end - buf));
}

char *po__fmt_fixed3(char *p, double v) {
  if (!isfinite(v)) v = 0;
  if (fabs(v) >= 9e12) return p + snprintf(p, 24, "%.3f", v);
  int64_t m = llround(v * 1000);
  uint64_t u = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
  if (m < 0) *p++ = '-';
  p = po__fmt_i64(p, (int64_t)(u / 1000));
  unsigned frac = (unsigned)(u % 1000);
  p[0] = '.';
  p[1] = (char)('0' + frac / 100);
  p[2] = (char)('0' + frac / 10 % 10);
  p[3] = (char)('0' + frac % 10);
  return p + 4;
}

void po__ob_fixed3(po__ob *o, double v) {
  char buf[32];
  const char *end = po__fmt_fixed3(buf, v);
  po__ob_put(o, buf, (size_t)(end - buf));
}

void po__ob_num(po__ob *o, double v, const char *nonfinite) {
  if (!isfinite(v)) {
    po__ob_puts(o, nonfinite);
  } else if (v == nearbyint(v) && fabs(v) < 9e15) {
    po__ob_i64(o, (int64_t)v);
  } else {
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    po__ob_puts(o, buf);
  }
}

char *po__fmt_json_str(char *p, const char *s) {
  static const char hex[] = "0123456789abcdef";
  *p++ = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c >= 0x20 && c != '"' && c != '\\') {
      *p++ = (char)c;
    } else if (c == '"' || c == '\\') {
      *p++ = '\\';
      *p++ = (char)c;
    } else if (c == '\n') {
      *p++ = '\\';
      *p++ = 'n';
    } else if (c == '\t') {
      *p++ = '\\';
      *p++ = 't';
    } else {
      memcpy(p, "\\u00", 4);
      p[4] = hex[c >> 4];
      p[5] = hex[c & 15];
      p += 6;
    }
  }
  *p++ = '"';
  return p;
}

void po__ob_json_str(po__ob *o, const char *s) {
  size_t n = strlen(s);
  char *p = po__ob_claim(o, 6 * n + 2);
  if (p) po__ob_advance(o, (size_t)(po__fmt_json_str(p, s) - p));
}

char *po__ob_claim(po__ob *o, size_t max) {
  return reserve(o, max) ? NULL : o->data + o->len;
}

void po__ob_advance(po__ob *o, size_t used) {
  if (o->err) return;
  o->len += used;
  o->data[o->len] = '\0';
}

int po__ob_finish(po__ob *o) {
  flush(o);
  if (!o->err && o->f && fflush(o->f) != 0) o->err = PO_EIO;
  if (!o->err && o->f && ferror(o->f)) o->err = PO_EIO;
  return o->err;
}

char *po__ob_detach(po__ob *o, size_t *len) {
  if (o->err || reserve(o, 0)) {
    po__ob_free(o);
    return NULL;
  }
  char *d = o->data;
  d[o->len] = '\0';
  if (len) *len = o->len;
  o->data = NULL;
  o->len = o->cap = 0;
  return d;
}

void po__ob_free(po__ob *o) {
  free(o->data);
  o->data = NULL;
  o->len = o->cap = 0;
}

int po__ob_save(const char *path, int (*render)(po__ob *, const void *), const void *ctx,
                char *errbuf, size_t errlen) {
  if (!path) return po__errf(PO_EINVAL, errbuf, errlen, "no report or path given");
  po__ob o;
  po__ob_init(&o, NULL);
  int rc = render(&o, ctx);
  if (!rc) rc = o.err;
  if (rc) {
    po__ob_free(&o);
    return rc == PO_ENOMEM ? po__errf(rc, errbuf, errlen, "%s: out of memory", path)
                           : po__errf(rc, errbuf, errlen, "%s: %s", path, po_strerror(rc));
  }
  rc = po__write_file_atomic(path, o.data ? o.data : "", o.len, errbuf, errlen);
  po__ob_free(&o);
  return rc;
}

int po__ob_write(FILE *out, int (*render)(po__ob *, const void *), const void *ctx) {
  if (!out) return PO_EINVAL;
  po__ob o;
  po__ob_init(&o, out);
  int rc = render(&o, ctx);
  int frc = po__ob_finish(&o);
  po__ob_free(&o);
  return rc ? rc : frc;
}
