/* A tiny bounded scanner for /proc text. Why by hand: no library parses /proc, sscanf/strtoull
 * are locale-aware, need NUL-terminated input and cost several times more, and one sample reads
 * five files on a budget of a few microseconds. Every function stops at `end`: input may be
 * truncated at any byte. */
#ifndef PO__LINUX_SCAN_H
#define PO__LINUX_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct po__scan {
  const char *p;
  const char *end;
} po__scan;

static inline void po__scan_init(po__scan *s, const char *buf, size_t len) {
  s->p = buf;
  s->end = buf + len;
}

static inline int po__scan_eof(const po__scan *s) {
  return s->p >= s->end;
}

/* Skips spaces and tabs (not newlines). */
static inline void po__scan_blanks(po__scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t')) s->p++;
}

/* Moves past the next newline (or to the end). */
static inline void po__scan_next_line(po__scan *s) {
  const char *nl = s->p < s->end ? memchr(s->p, '\n', (size_t)(s->end - s->p)) : NULL;
  s->p = nl ? nl + 1 : s->end;
}

/* 1 when the rest of the current line holds only blanks. */
static inline int po__scan_at_eol(po__scan *s) {
  po__scan_blanks(s);
  return s->p >= s->end || *s->p == '\n';
}

/* Reads an unsigned decimal after optional blanks; saturates at UINT64_MAX. 0 when none. */
static inline int po__scan_u64(po__scan *s, uint64_t *out) {
  po__scan_blanks(s);
  const char *start = s->p;
  uint64_t v = 0;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
    uint64_t d = (uint64_t)(*s->p - '0');
    v = (v > (UINT64_MAX - d) / 10) ? UINT64_MAX : v * 10 + d;
    s->p++;
  }
  if (s->p == start) return 0;
  *out = v;
  return 1;
}

/* Signed decimal (for fields such as ppid that are small; -1 allowed). */
static inline int po__scan_i64(po__scan *s, int64_t *out) {
  po__scan_blanks(s);
  int neg = 0;
  if (s->p < s->end && *s->p == '-') {
    neg = 1;
    s->p++;
  }
  uint64_t v;
  if (!po__scan_u64(s, &v)) return 0;
  if (v > (uint64_t)INT64_MAX) v = (uint64_t)INT64_MAX;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return 1;
}

/* A fixed-point decimal such as "0.53" or "12". Enough for loadavg and PSI averages. */
static inline int po__scan_double(po__scan *s, double *out) {
  uint64_t ip = 0;
  po__scan_blanks(s);
  const char *start = s->p;
  (void)po__scan_u64(s, &ip);
  double v = (double)ip;
  if (s->p < s->end && *s->p == '.') {
    s->p++;
    double scale = 0.1;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
      v += (*s->p - '0') * scale;
      scale *= 0.1;
      s->p++;
    }
  }
  if (s->p == start) return 0;
  *out = v;
  return 1;
}

/* A token of non-blank, non-newline bytes after optional blanks. 0 when none. */
static inline int po__scan_word(po__scan *s, const char **w, size_t *n) {
  po__scan_blanks(s);
  const char *start = s->p;
  while (s->p < s->end && *s->p != ' ' && *s->p != '\t' && *s->p != '\n') s->p++;
  *w = start;
  *n = (size_t)(s->p - start);
  return *n > 0;
}

/* 1 (and consumes it) when the input continues with the literal `lit`. */
static inline int po__scan_lit(po__scan *s, const char *lit, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return 0;
  s->p += n;
  return 1;
}

#endif
