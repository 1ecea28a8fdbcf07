/* Atomic file writes and bounded whole-file reads. */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef PERFOPT_TESTING
static int fail_write_at; /* see po__test_fail_write_at */

void po__test_fail_write_at(int step) {
  __atomic_store_n(&fail_write_at, step, __ATOMIC_SEQ_CST);
}

static int injected(int step) {
  if (__atomic_load_n(&fail_write_at, __ATOMIC_SEQ_CST) != step) return 0;
  errno = EIO;
  return 1;
}
#else
#define injected(step) 0
#endif

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

/* An unpredictable suffix: a planted file or link cannot be prepared for it, and O_EXCL refuses
 * one that happens to exist anyway. */
static uint64_t random_suffix(void) {
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
    r = po__now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&r;
  return r;
}

/* Creates the temporary file exclusively, never through a link. The mode is the existing file's
 * (a 0600 report stays 0600), else 0666 less the umask. Returns the fd or -1 (errno set). */
static int create_temp(const char *path, char *tmp, size_t tmplen) {
  struct stat st;
  int keep_mode = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
  for (int attempt = 0; attempt < 16; attempt++) {
    snprintf(tmp, tmplen, "%s.tmp.%016llx", path, (unsigned long long)random_suffix());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd >= 0 && keep_mode && fchmod(fd, st.st_mode & 07777) != 0) {
      int saved = errno;
      close(fd);
      unlink(tmp);
      errno = saved;
      return -1;
    }
    return fd;
  }
  errno = EEXIST;
  return -1;
}

/* Makes the rename itself durable. Best effort: some file systems refuse fsync on a directory.
 * No allocation: a failure here must not turn a written file into an error, nor be silent. */
static void sync_parent_dir(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (n >= sizeof dir) return;
  if (!slash) {
    strcpy(dir, ".");
  } else if (n == 0) {
    strcpy(dir, "/");
  } else {
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
}

int po__write_file_atomic(const char *path, const void *data, size_t len, char *errbuf,
                          size_t errlen) {
  if (!path || !*path || (!data && len))
    return po__errf(PO_EINVAL, errbuf, errlen, "no path given");
  size_t tmplen = strlen(path) + 32;
  char *tmp = po__malloc(tmplen);
  if (!tmp) return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);

  const char *what = "create";
  int fd = injected(1) ? -1 : create_temp(path, tmp, tmplen);
  if (fd < 0) {
    int saved = errno;
    free(tmp);
    return po__errf(PO_EIO, errbuf, errlen, "%s: cannot write (%s failed: %s)", path, what,
                    strerror(saved));
  }
  what = "write";
  if (injected(2) || write_all(fd, data, len) != 0) goto fail_close;
  what = "fsync";
  if (injected(3) || fsync(fd) != 0) goto fail_close;
  what = "close";
  if (close(fd) != 0) goto fail;
  what = "rename";
  if (injected(4) || rename(tmp, path) != 0) goto fail;
  free(tmp);
  sync_parent_dir(path);
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

/* Reads all of f into a growing buffer of at most max_bytes. */
static int read_stream(FILE *f, const char *path, size_t max_bytes, char **out, size_t *out_len,
                       char *errbuf, size_t errlen) {
  size_t cap = 4096, len = 0;
  char *buf = po__malloc(cap + 1);
  if (!buf) return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
  for (;;) {
    if (len == cap) {
      if (cap >= max_bytes) {
        free(buf);
        return po__errf(PO_ETOOBIG, errbuf, errlen, "%s: larger than %zu bytes", path, max_bytes);
      }
      size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
      char *nb = po__realloc(buf, ncap + 1);
      if (!nb) {
        free(buf);
        return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
      }
      buf = nb;
      cap = ncap;
    }
    size_t n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) break;
  }
  if (ferror(f)) {
    int e = errno;
    free(buf);
    return po__errf(PO_EIO, errbuf, errlen, "%s: read error: %s", path, strerror(e));
  }
  buf[len] = '\0';
  *out = buf;
  if (out_len) *out_len = len;
  return 0;
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
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    return po__errf(PO_EINVAL, errbuf, errlen, "%s: is a directory, not a file", path);
  }
  int rc = read_stream(f, path, max_bytes, out, out_len, errbuf, errlen);
  fclose(f);
  return rc;
}
