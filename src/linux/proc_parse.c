/* Parsers for /proc text files. Pure functions over a bounded buffer (no I/O), so tests and the
 * fuzzer can feed them anything: truncated lines are skipped and counted, never read past. */
#include "platform.h"
#include "linux/scan.h"

#include <stddef.h>
#include <string.h>

/* One "cpu..." line's numbers after the label. At least user nice system idle are required
 * (kernels since 2.6 print 8 or more); missing later fields stay 0. */
static int parse_cpu_fields(po__scan *s, po__cpu_times *t) {
  uint64_t v[8] = {0};
  int n = 0;
  while (n < 8 && po__scan_u64(s, &v[n])) n++;
  if (n < 4) return 0;
  if (!po__scan_at_eol(s) && n < 8) return 0; /* garbage in the middle of the line */
  t->user = v[0];
  t->nice = v[1];
  t->system = v[2];
  t->idle = v[3];
  t->iowait = v[4];
  t->irq = v[5];
  t->softirq = v[6];
  t->steal = v[7];
  return 1;
}

int po__parse_stat(const char *buf, size_t len, po__stat_parsed *out) {
  po__scan s;
  int have_total = 0;
  /* Everything but the per-core arrays, which are valid up to cpu_count: clearing all of them
   * would write 17 KB (270 cache lines, cold ones) on every sample. */
  memset(out, 0, offsetof(po__stat_parsed, cpus));
  memset(&out->ctxt, 0, sizeof *out - offsetof(po__stat_parsed, ctxt));
  if (!buf) return PO_EINVAL;
  po__scan_init(&s, buf, len);
  while (!po__scan_eof(&s)) {
    const char *w;
    size_t n;
    if (!po__scan_word(&s, &w, &n)) {
      po__scan_next_line(&s);
      continue;
    }
    if (n >= 3 && memcmp(w, "cpu", 3) == 0) {
      po__cpu_times t;
      if (n == 3) {
        if (parse_cpu_fields(&s, &t)) {
          out->total = t;
          have_total = 1;
        } else {
          out->bad_lines++;
        }
      } else {
        po__scan id_s;
        uint64_t id;
        po__scan_init(&id_s, w + 3, n - 3);
        if (!po__scan_u64(&id_s, &id) || !po__scan_eof(&id_s) || id > 1u << 20 ||
            !parse_cpu_fields(&s, &t)) {
          out->bad_lines++;
        } else if (out->cpu_count < PO_PROBE_MAX_CPUS) {
          out->cpus[out->cpu_count] = t;
          out->cpu_ids[out->cpu_count] = (int)id;
          out->cpu_count++;
        } else {
          out->cpus_dropped++;
        }
      }
    } else if (n == 4 && memcmp(w, "ctxt", 4) == 0) {
      uint64_t v;
      if (po__scan_u64(&s, &v)) out->ctxt = v;
    } else if (n == 13 && memcmp(w, "procs_running", 13) == 0) {
      uint64_t v;
      if (po__scan_u64(&s, &v)) out->procs_running = (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
    } else if (n == 13 && memcmp(w, "procs_blocked", 13) == 0) {
      uint64_t v;
      if (po__scan_u64(&s, &v)) out->procs_blocked = (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
    }
    po__scan_next_line(&s);
  }
  if (!have_total) {
    /* No usable aggregate line: rebuild it from the cores rather than report nothing. */
    for (uint32_t i = 0; i < out->cpu_count; i++) {
      const po__cpu_times *c = &out->cpus[i];
      out->total.user += c->user;
      out->total.nice += c->nice;
      out->total.system += c->system;
      out->total.idle += c->idle;
      out->total.iowait += c->iowait;
      out->total.irq += c->irq;
      out->total.softirq += c->softirq;
      out->total.steal += c->steal;
    }
    if (out->cpu_count == 0) return PO_EPARSE;
  }
  return 0;
}

static uint64_t kb_to_bytes(uint64_t kb) {
  return kb > UINT64_MAX / 1024 ? UINT64_MAX : kb * 1024;
}

int po__parse_meminfo(const char *buf, size_t len, po__meminfo_parsed *out) {
  po__scan s;
  int seen = 0;
  memset(out, 0, sizeof *out);
  if (!buf) return PO_EINVAL;
  po__scan_init(&s, buf, len);
  while (!po__scan_eof(&s)) {
    const char *key = s.p;
    const char *colon = memchr(s.p, ':', (size_t)(s.end - s.p));
    const char *nl = memchr(s.p, '\n', (size_t)(s.end - s.p));
    uint64_t v;
    if (!colon || (nl && colon > nl)) {
      if (s.p != s.end && *s.p != '\n') out->bad_lines++;
      po__scan_next_line(&s);
      continue;
    }
    size_t klen = (size_t)(colon - key);
    s.p = colon + 1;
    if (!po__scan_u64(&s, &v)) {
      out->bad_lines++;
      po__scan_next_line(&s);
      continue;
    }
    po__scan_blanks(&s);
    if (po__scan_lit(&s, "kB", 2)) v = kb_to_bytes(v);
#define KEY(lit) (klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)
    if (KEY("MemTotal")) {
      out->total = v;
      seen = 1;
    } else if (KEY("MemFree")) {
      out->free = v;
    } else if (KEY("MemAvailable")) {
      out->available = v;
      out->has_available = 1;
    } else if (KEY("Buffers")) {
      out->buffers = v;
    } else if (KEY("Cached")) {
      out->cached = v;
    } else if (KEY("SReclaimable")) {
      out->sreclaimable = v;
    } else if (KEY("Shmem")) {
      out->shmem = v;
    } else if (KEY("SwapTotal")) {
      out->swap_total = v;
    } else if (KEY("SwapFree")) {
      out->swap_free = v;
    }
#undef KEY
    po__scan_next_line(&s);
  }
  return seen ? 0 : PO_EPARSE;
}

uint32_t po__parse_diskstats(const char *buf, size_t len,
                             void (*fn)(const po__diskstat_line *line, void *ctx), void *ctx) {
  po__scan s;
  uint32_t bad = 0;
  if (!buf) return 0;
  po__scan_init(&s, buf, len);
  while (!po__scan_eof(&s)) {
    po__diskstat_line d;
    uint64_t maj, min, f[11];
    const char *w;
    size_t n;
    int k = 0;
    if (po__scan_at_eol(&s)) {
      po__scan_next_line(&s);
      continue;
    }
    if (!po__scan_u64(&s, &maj) || !po__scan_u64(&s, &min) || !po__scan_word(&s, &w, &n) ||
        n >= PO_PROBE_DISK_NAME_LEN) {
      bad++;
      po__scan_next_line(&s);
      continue;
    }
    /* Fields 1..11 exist since 2.6; 4.18 and 5.5 appended discard and flush counters. */
    while (k < 11 && po__scan_u64(&s, &f[k])) k++;
    if (k < 11) {
      bad++;
      po__scan_next_line(&s);
      continue;
    }
    memset(&d, 0, sizeof d);
    d.major = (uint32_t)(maj > UINT32_MAX ? UINT32_MAX : maj);
    d.minor = (uint32_t)(min > UINT32_MAX ? UINT32_MAX : min);
    memcpy(d.name, w, n);
    d.name[n] = '\0';
    d.reads = f[0];
    d.sectors_read = f[2];
    d.writes = f[4];
    d.sectors_written = f[6];
    d.busy_ms = f[9];
    if (fn) fn(&d, ctx);
    po__scan_next_line(&s);
  }
  return bad;
}

int po__parse_status(const char *buf, size_t len, po__status_parsed *out) {
  po__scan s;
  int seen = 0;
  memset(out, 0, sizeof *out);
  out->ppid = -1;
  if (!buf) return PO_EINVAL;
  po__scan_init(&s, buf, len);
  while (!po__scan_eof(&s)) {
    const char *key = s.p;
    const char *colon = memchr(s.p, ':', (size_t)(s.end - s.p));
    const char *nl = memchr(s.p, '\n', (size_t)(s.end - s.p));
    if (!colon || (nl && colon > nl)) {
      if (s.p != s.end && *s.p != '\n') out->bad_lines++;
      po__scan_next_line(&s);
      continue;
    }
    size_t klen = (size_t)(colon - key);
    s.p = colon + 1;
#define KEY(lit) (klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)
    if (key[0] == 'v' || key[0] == 'n') {
      uint64_t v = 0;
      if (KEY("voluntary_ctxt_switches") && po__scan_u64(&s, &v))
        out->voluntary_ctxt = v;
      else if (KEY("nonvoluntary_ctxt_switches") && po__scan_u64(&s, &v))
        out->nonvoluntary_ctxt = v;
    } else if (key[0] == 'V' || key[0] == 'T' || key[0] == 'P' || key[0] == 'C') {
      uint64_t v = 0;
      if (KEY("Cpus_allowed_list")) {
        const char *w;
        size_t n;
        if (po__scan_word(&s, &w, &n)) {
          if (n >= sizeof out->cpus_allowed_list) n = sizeof out->cpus_allowed_list - 1;
          memcpy(out->cpus_allowed_list, w, n);
          out->cpus_allowed_list[n] = '\0';
        }
      } else if (KEY("PPid")) {
        int64_t p;
        if (po__scan_i64(&s, &p)) out->ppid = (int)(p > INT32_MAX ? INT32_MAX : p);
      } else if (KEY("Threads")) {
        if (po__scan_u64(&s, &v)) out->threads = (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
      } else if (KEY("VmRSS") || KEY("VmHWM") || KEY("VmSize") || KEY("VmSwap")) {
        if (po__scan_u64(&s, &v)) {
          po__scan_blanks(&s);
          if (po__scan_lit(&s, "kB", 2)) v = kb_to_bytes(v);
          if (KEY("VmRSS")) {
            out->rss = v;
            seen = 1;
          } else if (KEY("VmHWM")) {
            out->hwm = v;
          } else if (KEY("VmSize")) {
            out->vsz = v;
          } else {
            out->swap = v;
          }
        } else {
          out->bad_lines++;
        }
      }
    }
#undef KEY
    po__scan_next_line(&s);
  }
  /* Kernel threads have no Vm* lines: still a valid status. */
  return (seen || out->threads) ? 0 : PO_EPARSE;
}

int po__parse_pidstat(const char *buf, size_t len, po__pidstat_parsed *out) {
  po__scan s;
  uint64_t v;
  int64_t iv;
  memset(out, 0, sizeof *out);
  out->state = '?';
  if (!buf) return PO_EINVAL;
  /* comm may contain ") ": the real end is the last ')'. */
  const char *rp = NULL;
  for (size_t i = len; i > 0; i--)
    if (buf[i - 1] == ')') {
      rp = buf + i - 1;
      break;
    }
  if (!rp) return PO_EPARSE;
  const char *lp = memchr(buf, '(', (size_t)(rp - buf));
  if (lp) {
    size_t n = (size_t)(rp - lp - 1);
    if (n >= sizeof out->comm) n = sizeof out->comm - 1;
    memcpy(out->comm, lp + 1, n);
    out->comm[n] = '\0';
  }
  po__scan_init(&s, rp + 1, len - (size_t)(rp + 1 - buf));
  const char *w;
  size_t n;
  if (!po__scan_word(&s, &w, &n)) return PO_EPARSE; /* field 3: state */
  out->state = w[0];
  if (!po__scan_i64(&s, &iv)) return PO_EPARSE; /* 4: ppid */
  out->ppid = (int)(iv > INT32_MAX ? INT32_MAX : iv < INT32_MIN ? INT32_MIN : iv);
  for (int f = 5; f <= 9; f++) /* pgrp session tty_nr tpgid flags */
    if (!po__scan_i64(&s, &iv)) return PO_EPARSE;
  if (!po__scan_u64(&s, &out->minflt)) return PO_EPARSE; /* 10 */
  if (!po__scan_i64(&s, &iv)) return PO_EPARSE;          /* 11: cminflt */
  if (!po__scan_u64(&s, &out->majflt)) return PO_EPARSE; /* 12 */
  if (!po__scan_i64(&s, &iv)) return PO_EPARSE;          /* 13: cmajflt */
  if (!po__scan_u64(&s, &out->utime) || !po__scan_u64(&s, &out->stime)) return PO_EPARSE;
  if (!po__scan_u64(&s, &out->cutime) || !po__scan_u64(&s, &out->cstime)) return PO_EPARSE;
  for (int f = 18; f <= 19; f++) /* priority nice */
    if (!po__scan_i64(&s, &iv)) return PO_EPARSE;
  if (!po__scan_u64(&s, &v)) return PO_EPARSE; /* 20: num_threads */
  out->threads = (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
  if (!po__scan_i64(&s, &iv)) return PO_EPARSE;               /* 21: itrealvalue */
  if (!po__scan_u64(&s, &out->starttime)) return PO_EPARSE; /* 22 */
  if (!po__scan_u64(&s, &out->vsize)) return PO_EPARSE;
  if (!po__scan_i64(&s, &iv)) return PO_EPARSE; /* 24: rss in pages */
  out->rss_pages = iv < 0 ? 0 : (uint64_t)iv;
  return 0;
}

int po__parse_cpu_list(const char *str) {
  po__scan s;
  int count = 0;
  if (!str) return -1;
  po__scan_init(&s, str, strlen(str));
  while (s.p < s.end && *s.p != '\n') {
    uint64_t a, b;
    if (!po__scan_u64(&s, &a)) return -1;
    b = a;
    if (s.p < s.end && *s.p == '-') {
      s.p++;
      if (!po__scan_u64(&s, &b) || b < a) return -1;
    }
    if (b - a > 65536 || count > 1 << 20) return -1;
    count += (int)(b - a + 1);
    if (s.p < s.end && *s.p == ',') {
      s.p++;
      if (s.p >= s.end || *s.p == '\n') return -1;
    } else if (s.p < s.end && *s.p != '\n') {
      return -1;
    }
  }
  return count;
}
