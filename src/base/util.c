/* Errors, logging, time and atomic file writes: the small things every module uses. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---------------------------------------------------------------------------- */

const char *po_strerror(int err) {
  if (err == 0) return "success";
  switch (err) {
#define PO__ERR_MSG(name, value, msg) \
  case value:                         \
    return msg;
    PO_ERRNO_MAP(PO__ERR_MSG)
#undef PO__ERR_MSG
    default:
      return "unknown error";
  }
}

const char *po_err_name(int err) {
  if (err == 0) return "OK";
  switch (err) {
#define PO__ERR_NAME(name, value, msg) \
  case value:                          \
    return #name;
    PO_ERRNO_MAP(PO__ERR_NAME)
#undef PO__ERR_NAME
    default:
      return "EUNKNOWN";
  }
}

int po__errf(int err, char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
  }
  return err;
}

void po_free(void *p) {
  free(p);
}

int po__strlcpy(char *dst, const char *src, size_t size) {
  if (size == 0) return 1;
  size_t n = strlen(src);
  if (n >= size) {
    memcpy(dst, src, size - 1);
    dst[size - 1] = '\0';
    return 1;
  }
  memcpy(dst, src, n + 1);
  return 0;
}

/* ---- logging --------------------------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static po_log_fn log_fn;
static void *log_user;

void po_set_log_callback(po_log_fn fn, void *user) {
  pthread_mutex_lock(&log_lock);
  log_fn = fn;
  log_user = user;
  pthread_mutex_unlock(&log_lock);
}

void po__log(int level, const char *fmt, ...) {
  pthread_mutex_lock(&log_lock);
  po_log_fn fn = log_fn;
  void *user = log_user;
  pthread_mutex_unlock(&log_lock);
  if (!fn) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fn(level, msg, user);
}

/* ---- time ------------------------------------------------------------------------------ */

uint64_t po__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double po__unix_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t run_origin_ns;
static pthread_once_t run_origin_once = PTHREAD_ONCE_INIT;
static void run_origin_init(void) {
  run_origin_ns = po__now_ns();
}
__attribute__((constructor)) static void run_origin_ctor(void) {
  pthread_once(&run_origin_once, run_origin_init);
}

double po__run_seconds(void) {
  pthread_once(&run_origin_once, run_origin_init);
  return (double)(po__now_ns() - run_origin_ns) * 1e-9;
}

/* ---- files ----------------------------------------------------------------------------- */

static int fail_write_at; /* test fault injection; see po__test_fail_write_at */

void po__test_fail_write_at(int step) {
  __atomic_store_n(&fail_write_at, step, __ATOMIC_SEQ_CST);
}

static int injected(int step) {
  return __atomic_load_n(&fail_write_at, __ATOMIC_SEQ_CST) == step;
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int po__write_file_atomic(const char *path, const void *data, size_t len, char *errbuf,
                          size_t errlen) {
  if (!path || !*path || (!data && len))
    return po__errf(PO_EINVAL, errbuf, errlen, "no path given");
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (!tmp) return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

  const char *what = "open";
  int fd =
      injected(1) ? (errno = EIO, -1) : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) goto fail;
  what = "write";
  if (injected(2) ? (errno = EIO, 1) : write_all(fd, data, len) != 0) goto fail_close;
  what = "fsync";
  if (injected(3) ? (errno = EIO, 1) : fsync(fd) != 0) goto fail_close;
  if (close(fd) != 0) {
    what = "close";
    goto fail;
  }
  what = "rename";
  if (injected(4) ? (errno = EIO, 1) : rename(tmp, path) != 0) goto fail;
  free(tmp);

  /* Make the rename itself durable. Best effort: some file systems refuse fsync on a directory. */
  char *dcopy = strdup(path);
  if (dcopy) {
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd);
      close(dfd);
    }
    free(dcopy);
  }
  return 0;

fail_close : {
  int saved = errno;
  close(fd);
  errno = saved;
}
fail : {
  int saved = errno;
  unlink(tmp);
  free(tmp);
  return po__errf(PO_EIO, errbuf, errlen, "%s: cannot write (%s failed: %s)", path, what,
                  strerror(saved));
}
}

int po__read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, char *errbuf,
                  size_t errlen) {
  *out = NULL;
  if (out_len) *out_len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return po__errf(e == ENOENT ? PO_ENOENT : PO_EIO, errbuf, errlen, "%s: %s", path, strerror(e));
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  if (!buf) {
    fclose(f);
    return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
  }
  for (;;) {
    if (len == cap) {
      if (cap >= max_bytes) {
        free(buf);
        fclose(f);
        return po__errf(PO_ETOOBIG, errbuf, errlen, "%s: larger than %zu bytes", path, max_bytes);
      }
      size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
      char *nb = realloc(buf, ncap + 1);
      if (!nb) {
        free(buf);
        fclose(f);
        return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
      }
      buf = nb;
      cap = ncap;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return po__errf(PO_EIO, errbuf, errlen, "%s: read error", path);
  }
  buf[len] = '\0';
  *out = buf;
  if (out_len) *out_len = len;
  return 0;
}
