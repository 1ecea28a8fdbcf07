/* Streaming CSV reader: one fixed read buffer, records parsed in place, selected columns parsed as
 * numbers. A record that straddles the end of the buffer is re-parsed after the buffer is compacted
 * and refilled (once per buffer, so the cost is negligible). A record longer than the buffer is
 * skipped as bad, which keeps memory bounded whatever the input. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CSV_MAX_SEL 64
#define CSV_DEFAULT_BUF (1u << 20)
#define CSV_MIN_BUF 64

enum { REC_OK, REC_BAD, REC_BLANK, REC_MORE, REC_EOF };

struct po_csv {
  int fd; /* -1: memory */
  char *own;
  const char *buf;
  size_t cap, pos, end;
  int eof;
  char delim;
  uint64_t consumed_before; /* bytes dropped from the buffer by compaction */
  uint64_t line;            /* 1-based line where the next record starts */
  /* header */
  size_t ncols;
  char **names;
  /* selection */
  size_t nsel;
  size_t sel[CSV_MAX_SEL];
  po_csv_parse_fn parser[CSV_MAX_SEL];
  void *parser_user[CSV_MAX_SEL];
  int16_t *colmap; /* physical column -> first selected position, -1 none */
  size_t ncolmap;
  /* record scratch */
  int bad;
  char reason[96];
  po_csv_stats st;
};

/* ---- numbers --------------------------------------------------------------------------- */

static const double csv_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int csv_parse_slow(const char *s, size_t len, double *out) {
  char tmp[512];
  if (len == 0 || len >= sizeof tmp) return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  if (tmp[0] == ' ' || tmp[0] == '\t' || tmp[0] == '\n') return -1; /* strtod would skip it */
  char *endp;
  errno = 0;
  double v = strtod(tmp, &endp);
  if (endp != tmp + len) return -1;
  *out = v; /* overflow gives +-HUGE_VAL, underflow a denormal or 0: both fine for plotting */
  return 0;
}

/* Clinger's fast path: a mantissa below 2^53 times an exact power of ten up to 1e22 is a single
 * correctly rounded operation. Everything else goes to strtod. */
int po_parse_double(const char *s, size_t len, double *out) {
  if (!s || !out || len == 0) return -1;
  size_t i = 0;
  int neg = 0;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  uint64_t m = 0;
  int digits = 0, frac = 0, any = 0;
  while (i < len && (unsigned)(s[i] - '0') < 10) {
    if (digits < 19) {
      m = m * 10 + (uint64_t)(s[i] - '0');
      if (m) digits++;
    } else {
      return csv_parse_slow(s, len, out);
    }
    any = 1;
    i++;
  }
  if (i < len && s[i] == '.') {
    i++;
    while (i < len && (unsigned)(s[i] - '0') < 10) {
      if (digits < 19) {
        m = m * 10 + (uint64_t)(s[i] - '0');
        if (m) digits++;
        frac++;
      } else {
        return csv_parse_slow(s, len, out);
      }
      any = 1;
      i++;
    }
  }
  if (!any) return csv_parse_slow(s, len, out); /* nan, inf, .e, garbage */
  int e = 0;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    int eneg = 0;
    if (j < len && (s[j] == '-' || s[j] == '+')) eneg = s[j++] == '-';
    if (j >= len) return -1;
    while (j < len && (unsigned)(s[j] - '0') < 10) {
      if (e < 10000) e = e * 10 + (s[j] - '0');
      j++;
    }
    if (j != len || (unsigned)(s[j - 1] - '0') >= 10) return -1;
    if (eneg) e = -e;
    i = j;
  }
  if (i != len) return -1;
  e -= frac;
  if (m > (UINT64_C(1) << 53) || e < -22 || e > 22) return csv_parse_slow(s, len, out);
  double v = (double)m;
  v = e < 0 ? v / csv_pow10[-e] : v * csv_pow10[e];
  *out = neg ? -v : v;
  return 0;
}

/* ---- input buffer ---------------------------------------------------------------------- */

/* Compacts and reads more. Returns 1 when bytes were added, 0 at EOF, <0 on error. */
static int csv_fill(po_csv *c) {
  if (c->fd < 0 || c->eof) {
    c->eof = 1;
    return 0;
  }
  if (c->pos > 0) {
    memmove(c->own, c->own + c->pos, c->end - c->pos);
    c->end -= c->pos;
    c->consumed_before += c->pos;
    c->pos = 0;
  }
  if (c->end == c->cap) return 1; /* full: the caller handles over-long records */
  for (;;) {
    ssize_t r = read(c->fd, c->own + c->end, c->cap - c->end);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return PO_EIO;
    if (r == 0) {
      c->eof = 1;
      return 0;
    }
    c->end += (size_t)r;
    return 1;
  }
}

/* ---- records ----------------------------------------------------------------------------- */

static void csv_mark_bad(po_csv *c, const char *fmt, const char *a, const char *cell,
                         size_t cell_len) {
  if (c->bad) return;
  c->bad = 1;
  if (c->st.bad_rows == 0) {
    if (cell)
      snprintf(c->reason, sizeof c->reason, fmt, a, (int)(cell_len > 24 ? 24 : cell_len), cell);
    else
      snprintf(c->reason, sizeof c->reason, fmt, a);
  }
}

static const char *csv_col_label(const po_csv *c, size_t col, char *tmp, size_t n) {
  if (col < c->ncols && c->names[col][0]) return c->names[col];
  snprintf(tmp, n, "#%zu", col);
  return tmp;
}

static void csv_field(po_csv *c, size_t col, const char *f, size_t len, int escaped, double *vals,
                      uint64_t *filled) {
  if (col >= c->ncolmap || c->colmap[col] < 0) return;
  size_t pos = (size_t)c->colmap[col];
  char label[32];
  while (len > 0 && (f[0] == ' ' || f[0] == '\t')) f++, len--;
  while (len > 0 && (f[len - 1] == ' ' || f[len - 1] == '\t')) len--;
  double v;
  if (len == 0) {
    csv_mark_bad(c, "column '%s': empty cell", csv_col_label(c, col, label, sizeof label), NULL, 0);
    return;
  }
  char tmp[256];
  if (escaped) { /* a quoted cell with "" inside: unescape (numbers never need it) */
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < sizeof tmp; i++) {
      tmp[k++] = f[i];
      if (f[i] == '"' && i + 1 < len && f[i + 1] == '"') i++;
    }
    f = tmp;
    len = k;
  }
  if (po_parse_double(f, len, &v) != 0) {
    po_csv_parse_fn fn = c->parser[pos];
    if (!fn || fn(f, len, &v, c->parser_user[pos]) != 0) {
      csv_mark_bad(c, "column '%s': not a number: \"%.*s\"",
                   csv_col_label(c, col, label, sizeof label), f, len);
      return;
    }
  }
  /* every selected position reading this column */
  for (size_t k = pos; k < c->nsel; k++) {
    if (c->sel[k] == col) {
      vals[k] = v;
      *filled |= UINT64_C(1) << k;
    }
  }
}

/* Parses one record at c->pos without consuming it unless complete. header != NULL collects
 * field names instead of numbers (*nfields set). */
static int csv_record(po_csv *c, double *vals, char ***header, size_t *nfields) {
  const char *buf = c->buf;
  size_t p = c->pos, end = c->end;
  const char d = c->delim;
  if (p >= end) return c->eof ? REC_EOF : REC_MORE;
  size_t col = 0;
  uint64_t lines = 0, filled = 0;
  c->bad = 0;
  char **names = NULL;
  size_t nnames = 0, names_cap = 0;
  for (;;) {
    size_t fs, fe;
    int escaped = 0;
    if (p < end && buf[p] == '"') {
      fs = ++p;
      for (;;) {
        const char *q = memchr(buf + p, '"', end - p);
        if (!q) {
          if (!c->eof) goto more;
          fe = p = end; /* unterminated quote at end of input: take the rest */
          break;
        }
        for (const char *t = buf + p; t < q; t++) lines += *t == '\n';
        p = (size_t)(q - buf) + 1;
        if (p >= end && !c->eof) goto more;
        if (p < end && buf[p] == '"') {
          escaped = 1;
          p++;
          continue;
        }
        fe = (size_t)(q - buf);
        break;
      }
      while (p < end && buf[p] != d && buf[p] != '\n') p++; /* tolerate junk after the quote */
      if (p >= end && !c->eof) goto more;
    } else {
      fs = p;
      while (p < end && buf[p] != d && buf[p] != '\n') p++;
      if (p >= end && !c->eof) goto more;
      fe = p;
      if (fe > fs && buf[fe - 1] == '\r') fe--;
    }
    if (header) {
      if (nnames == names_cap) { /* doubling: a header of 100k columns stays linear */
        size_t ncap = names_cap ? 2 * names_cap : 16;
        char **nn = po__realloc(names, ncap * sizeof *nn);
        if (!nn) goto nomem;
        names = nn;
        names_cap = ncap;
      }
      size_t len = fe - fs;
      char *s = po__malloc(len + 1);
      if (!s) goto nomem;
      size_t k = 0;
      for (size_t i = fs; i < fe; i++) {
        s[k++] = buf[i];
        if (escaped && buf[i] == '"' && i + 1 < fe && buf[i + 1] == '"') i++;
      }
      s[k] = '\0';
      names[nnames++] = s;
    } else if (col == 0 && fe == fs && (p >= end || buf[p] == '\n')) {
      /* an empty line */
      c->pos = p < end ? p + 1 : p;
      c->line += 1 + lines;
      return REC_BLANK;
    } else {
      csv_field(c, col, buf + fs, fe - fs, escaped, vals, &filled);
    }
    col++;
    if (p >= end) break;
    if (buf[p] == d) {
      p++;
      if (p >= end && !c->eof) goto more;
      if (p >= end) { /* a trailing delimiter at end of input: one more empty field */
        if (!header) csv_field(c, col, buf + p, 0, 0, vals, &filled);
        col++;
        break;
      }
      continue;
    }
    p++; /* '\n' */
    lines++;
    break;
  }
  if (header) {
    *header = names;
    *nfields = nnames;
  } else if (!c->bad && c->nsel > 0 &&
             filled != (c->nsel == 64 ? UINT64_MAX : (UINT64_C(1) << c->nsel) - 1)) {
    for (size_t k = 0; k < c->nsel; k++) {
      if (!(filled >> k & 1)) {
        char label[32];
        c->bad = 1;
        if (c->st.bad_rows == 0)
          snprintf(c->reason, sizeof c->reason, "column '%s': missing (the row has %zu fields)",
                   csv_col_label(c, c->sel[k], label, sizeof label), col);
        break;
      }
    }
  }
  c->pos = p;
  uint64_t start_line = c->line;
  c->line += lines;
  if (!header && c->bad) {
    c->st.bad_rows++;
    if (c->st.bad_rows == 1) {
      c->st.first_bad_line = start_line;
      memcpy(c->st.first_bad_reason, c->reason, sizeof c->reason);
    }
    return REC_BAD;
  }
  return REC_OK;
more:
  if (names) {
    for (size_t i = 0; i < nnames; i++) free(names[i]);
    free(names);
  }
  return REC_MORE;
nomem:
  if (names) {
    for (size_t i = 0; i < nnames; i++) free(names[i]);
    free(names);
  }
  return PO_ENOMEM;
}

/* Skips an over-long record: up to the next newline (quotes are not tracked in it). */
static int csv_skip_long(po_csv *c) {
  c->st.bad_rows++;
  if (c->st.bad_rows == 1) {
    c->st.first_bad_line = c->line;
    snprintf(c->st.first_bad_reason, sizeof c->st.first_bad_reason,
             "row longer than the %zu-byte buffer", c->cap);
  }
  for (;;) {
    const char *nl = memchr(c->buf + c->pos, '\n', c->end - c->pos);
    if (nl) {
      c->pos = (size_t)(nl - c->buf) + 1;
      c->line++;
      return 0;
    }
    c->pos = c->end;
    int r = csv_fill(c);
    if (r < 0) return r;
    if (r == 0) return 0;
  }
}

/* Next record, refilling as needed. */
static int csv_next_record(po_csv *c, double *vals, char ***header, size_t *nfields) {
  for (;;) {
    int r = csv_record(c, vals, header, nfields);
    if (r != REC_MORE) return r;
    if (c->pos == 0 && c->end == c->cap) {
      int s = csv_skip_long(c);
      if (s < 0) return s;
      if (header) return REC_BAD;
      continue;
    }
    int f = csv_fill(c);
    if (f < 0) return f;
  }
}

/* ---- public API ------------------------------------------------------------------------ */

static int csv_init(po_csv *c, const po_csv_options *opt, char *errbuf, size_t errlen,
                    const char *what) {
  c->delim = opt && opt->delimiter ? opt->delimiter : ',';
  c->line = 1;
  /* UTF-8 byte order mark */
  for (;;) {
    if (c->end - c->pos >= 3 || c->eof) break;
    int f = csv_fill(c);
    if (f < 0) return po__errf(f, errbuf, errlen, "%s: read error: %s", what, strerror(errno));
    if (f == 0) break;
  }
  if (c->end - c->pos >= 3 && memcmp(c->buf + c->pos, "\xEF\xBB\xBF", 3) == 0) c->pos += 3;
  size_t save_pos = c->pos;
  char **names = NULL;
  size_t n = 0;
  int r = csv_next_record(c, NULL, &names, &n);
  if (r < 0) return po__errf(r, errbuf, errlen, "%s: cannot read the header", what);
  if (r == REC_BAD) /* skipped as longer than the buffer */
    return po__errf(PO_EPARSE, errbuf, errlen,
                    "%s: the header row is longer than the %zu-byte read buffer", what, c->cap);
  if (r == REC_EOF || !names)
    return po__errf(PO_EPARSE, errbuf, errlen, "%s: empty file (no header row)", what);
  c->names = names;
  c->ncols = n;
  if (opt && opt->no_header) {
    for (size_t i = 0; i < n; i++) c->names[i][0] = '\0';
    c->pos = save_pos;
    c->line = 1;
  }
  return 0;
}

int po_csv_create(const char *path, const po_csv_options *opt, po_csv **out, char *errbuf,
                  size_t errlen) {
  if (!path || !out) return po__errf(PO_EINVAL, errbuf, errlen, "csv: NULL argument");
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return po__errf(e == ENOENT ? PO_ENOENT : PO_EIO, errbuf, errlen, "%s: %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) { /* read() would fail with EISDIR */
    close(fd);
    return po__errf(PO_EINVAL, errbuf, errlen, "%s: is a directory, not a file", path);
  }
  po_csv *c = po__calloc(1, sizeof *c);
  size_t cap = opt && opt->buffer_bytes ? opt->buffer_bytes : CSV_DEFAULT_BUF;
  if (cap < CSV_MIN_BUF) cap = CSV_MIN_BUF;
  if (!c || !(c->own = po__malloc(cap))) {
    free(c);
    close(fd);
    return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
  }
  c->fd = fd;
  c->buf = c->own;
  c->cap = cap;
  int rc = csv_init(c, opt, errbuf, errlen, path);
  if (rc) {
    po_csv_destroy(c);
    return rc;
  }
  *out = c;
  return 0;
}

int po_csv_create_mem(const char *data, size_t len, const po_csv_options *opt, po_csv **out,
                      char *errbuf, size_t errlen) {
  if ((!data && len) || !out) return po__errf(PO_EINVAL, errbuf, errlen, "csv: NULL argument");
  *out = NULL;
  po_csv *c = po__calloc(1, sizeof *c);
  if (!c) return po__errf(PO_ENOMEM, errbuf, errlen, "csv: out of memory");
  c->fd = -1;
  c->buf = data ? data : "";
  c->cap = c->end = len;
  c->eof = 1;
  int rc = csv_init(c, opt, errbuf, errlen, "csv");
  if (rc) {
    po_csv_destroy(c);
    return rc;
  }
  *out = c;
  return 0;
}

void po_csv_destroy(po_csv *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  for (size_t i = 0; i < c->ncols; i++) free(c->names[i]);
  free(c->names);
  free(c->colmap);
  free(c->own);
  free(c);
}

size_t po_csv_column_count(const po_csv *c) {
  return c ? c->ncols : 0;
}

const char *po_csv_column_name(const po_csv *c, size_t i) {
  return c && i < c->ncols ? c->names[i] : NULL;
}

int po_csv_find_column(const po_csv *c, const char *name, char *errbuf, size_t errlen) {
  if (!c || !name) return po__errf(PO_EINVAL, errbuf, errlen, "csv: NULL argument");
  for (size_t i = 0; i < c->ncols; i++)
    if (strcmp(c->names[i], name) == 0) return (int)i;
  for (size_t i = 0; i < c->ncols; i++)
    if (c->names[i][0] && strcasecmp(c->names[i], name) == 0) return (int)i;
  char *endp;
  errno = 0;
  long v = name[0] >= '0' && name[0] <= '9' ? strtol(name, &endp, 10) : -1;
  if (v >= 0 && *endp == '\0' && errno == 0 && (size_t)v < c->ncols && v <= INT32_MAX)
    return (int)v;
  char list[160] = "";
  size_t used = 0;
  for (size_t i = 0; i < c->ncols && used + 4 < sizeof list; i++) {
    int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                     c->names[i][0] ? c->names[i] : "(unnamed)");
    if (w < 0) break;
    used += (size_t)w;
    if (used >= sizeof list) {
      memcpy(list + sizeof list - 4, "...", 4);
      break;
    }
  }
  return po__errf(PO_ENOENT, errbuf, errlen,
                  "no column '%s' (columns: %s; or a 0-based index below %zu)", name, list,
                  c->ncols);
}

int po_csv_select(po_csv *c, const size_t *cols, size_t ncols) {
  if (!c || (ncols && !cols) || ncols > CSV_MAX_SEL) return PO_EINVAL;
  size_t maxc = 0;
  for (size_t i = 0; i < ncols; i++)
    if (cols[i] + 1 > maxc) maxc = cols[i] + 1;
  if (maxc > 1000000) return PO_EINVAL;
  int16_t *map = po__malloc((maxc ? maxc : 1) * sizeof *map);
  if (!map) return PO_ENOMEM;
  for (size_t i = 0; i < maxc; i++) map[i] = -1;
  for (size_t i = ncols; i-- > 0;) map[cols[i]] = (int16_t)i;
  free(c->colmap);
  c->colmap = map;
  c->ncolmap = maxc;
  c->nsel = ncols;
  memcpy(c->sel, cols, ncols * sizeof *cols);
  for (size_t i = 0; i < CSV_MAX_SEL; i++) {
    c->parser[i] = NULL;
    c->parser_user[i] = NULL;
  }
  return 0;
}

int po_csv_set_parser(po_csv *c, size_t selected_pos, po_csv_parse_fn fn, void *user) {
  if (!c || selected_pos >= c->nsel) return PO_EINVAL;
  /* the parser belongs to the column: every position selecting it uses it */
  size_t col = c->sel[selected_pos];
  for (size_t k = 0; k < c->nsel; k++) {
    if (c->sel[k] == col) {
      c->parser[k] = fn;
      c->parser_user[k] = user;
    }
  }
  return 0;
}

int po_csv_next(po_csv *c, double *values) {
  if (!c || (c->nsel && !values)) return PO_EINVAL;
  for (;;) {
    int r = csv_next_record(c, values, NULL, NULL);
    if (r < 0) return r;
    if (r == REC_EOF) return 0;
    if (r == REC_OK) {
      c->st.rows++;
      return 1;
    }
  }
}

void po_csv_get_stats(const po_csv *c, po_csv_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!c) return;
  *out = c->st;
  out->bytes = c->consumed_before + c->pos;
}
