/* The SVG writer's primitives: a bounded-by-memory text buffer, XML escaping and text metrics. */
#include "viz/chart_internal.h"
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void po__cbuf_init(po__cbuf *b) {
  memset(b, 0, sizeof(*b));
}

void po__cbuf_free(po__cbuf *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

static int cbuf_reserve(po__cbuf *b, size_t extra) {
  if (b->oom) return -1;
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra + 1) {
    if (cap > ((size_t)-1) / 2) {
      b->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  char *p = po__realloc(b->data, cap);
  if (!p) {
    b->oom = 1;
    return -1;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void po__cbuf_put(po__cbuf *b, const char *s, size_t n) {
  if (n == 0 || cbuf_reserve(b, n) != 0) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void po__cbuf_puts(po__cbuf *b, const char *s) {
  po__cbuf_put(b, s, strlen(s));
}

void po__cbuf_printf(po__cbuf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof(small)) {
    po__cbuf_put(b, small, (size_t)n);
    return;
  }
  if (cbuf_reserve(b, (size_t)n) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes are not valid UTF-8. */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4;
  else
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (n == 3 && c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
  if (n == 3 && c == 0xED && s[1] >= 0xA0) return 0; /* surrogates */
  if (n == 4 && c == 0xF0 && s[1] < 0x90) return 0;
  if (n == 4 && c == 0xF4 && s[1] >= 0x90) return 0;
  return n;
}

void po__cbuf_xml(po__cbuf *b, const char *s) {
  if (!s) return;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    const unsigned char *run = p;
    while (*p && *p >= 0x20 && *p < 0x80 && *p != '&' && *p != '<' && *p != '>' && *p != '"' &&
           *p != '\'')
      p++;
    po__cbuf_put(b, (const char *)run, (size_t)(p - run));
    if (!*p) break;
    switch (*p) {
      case '&':
        po__cbuf_puts(b, "&amp;");
        p++;
        continue;
      case '<':
        po__cbuf_puts(b, "&lt;");
        p++;
        continue;
      case '>':
        po__cbuf_puts(b, "&gt;");
        p++;
        continue;
      case '"':
        po__cbuf_puts(b, "&quot;");
        p++;
        continue;
      case '\'':
        po__cbuf_puts(b, "&#39;");
        p++;
        continue;
      case '\t':
      case '\n':
        po__cbuf_put(b, (const char *)p, 1);
        p++;
        continue;
      default:
        break;
    }
    if (*p < 0x20 || *p == 0x7F) {
      po__cbuf_put(b, "?", 1);
      p++;
      continue;
    }
    size_t n = utf8_len(p);
    if (n == 0) {
      po__cbuf_put(b, "?", 1);
      p++;
    } else {
      po__cbuf_put(b, (const char *)p, n);
      p += n;
    }
  }
}

char *po__cbuf_detach(po__cbuf *b, size_t *len) {
  if (b->oom) {
    po__cbuf_free(b);
    if (len) *len = 0;
    return NULL;
  }
  if (!b->data && cbuf_reserve(b, 0) != 0) return NULL;
  char *d = b->data;
  if (len) *len = b->len;
  memset(b, 0, sizeof(*b));
  return d;
}

/* DejaVu Sans advance widths for U+0020..U+007E in font units (2048 per em), read from
 * DejaVuSans.ttf's hmtx table. */
static const unsigned short dejavu_sans_adv[95] = {
    651,  821,  942,  1716, 1303, 1946, 1597, 563,  799,  799,  1024, 1716, 651,  739,  651,  690,
    1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 1303, 690,  690,  1716, 1716, 1716, 1087,
    2048, 1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 604,  604,  1343, 1141, 1767, 1532, 1612,
    1235, 1612, 1423, 1300, 1251, 1499, 1401, 2025, 1403, 1251, 1403, 799,  690,  799,  1716, 1024,
    1024, 1255, 1300, 1126, 1300, 1260, 721,  1300, 1298, 569,  569,  1186, 569,  1995, 1298, 1253,
    1300, 1300, 842,  1067, 803,  1298, 1212, 1675, 1212, 1212, 1075, 1303, 690,  1303, 1716};

static double char_units(const unsigned char *p, size_t *adv) {
  if (*p < 0x80) {
    *adv = 1;
    if (*p < 0x20 || *p > 0x7E) return 1303;
    return dejavu_sans_adv[*p - 0x20];
  }
  size_t n = utf8_len(p);
  *adv = n ? n : 1;
  if (n == 3 && p[0] == 0xE2 && p[1] == 0x80 && p[2] == 0xA6) return 2048; /* … */
  if (n == 2 && p[0] == 0xC2 && p[1] == 0xB0) return 1024;                 /* ° */
  return 1303;
}

double po__text_width(const char *s, double font_px, int bold) {
  if (!s) return 0;
  double units = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    size_t adv;
    units += char_units(p, &adv);
    p += adv;
  }
  /* Bold DejaVu is about 12% wider; Verdana is up to 5% wider than DejaVu: keep a margin. */
  return units / 2048.0 * font_px * (bold ? 1.12 : 1.0) * 1.05;
}

int po__text_fit(const char *s, double font_px, double max_px, char *out, size_t outlen) {
  if (!out || outlen == 0) return 1;
  out[0] = '\0';
  if (!s) return 0;
  if (po__text_width(s, font_px, 0) <= max_px) {
    if (po__strlcpy(out, s, outlen) == 0) return 0;
    /* did not fit the buffer: fall through and cut to the buffer with an ellipsis */
  }
  const double ell = 2048.0 / 2048.0 * font_px * 1.05;
  double used = 0;
  size_t keep = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (p[keep]) {
    size_t adv;
    double w = char_units(p + keep, &adv) / 2048.0 * font_px * 1.05;
    if (used + w + ell > max_px || keep + adv + 4 > outlen) break;
    used += w;
    keep += adv;
  }
  if (ell > max_px || outlen < 4) return 1;
  memcpy(out, s, keep);
  memcpy(out + keep, "\xE2\x80\xA6", 4);
  return 1;
}
