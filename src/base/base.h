/* Private helpers every layer may use: macros, errors and logging, time, files, allocation.
 * The lowest layer: it includes only the public header and libc. Not installed. */
#ifndef PO__BASE_H
#define PO__BASE_H

#include "perfopt.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "base/alloc.h"

#define PO__UNUSED(x) ((void)(x))
#define PO__LIKELY(x) __builtin_expect(!!(x), 1)
#define PO__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PO__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors and logging (base/error.c) ----------------------------------------------------- */

/* Sends a message to the user's log callback (nothing when none is set). printf-style. */
void po__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 when a log callback is installed (callers with no other channel may then stay silent). */
int po__log_has_callback(void);

/* snprintf into errbuf when errbuf is non-NULL and errlen > 0. Always returns `err`. */
int po__errf(int err, char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records `msg` as this thread's last error message (po_last_error) and returns `err`. */
int po__set_last_error(int err, const char *msg);

/* This process's id without a system call (glibc's getpid makes one): read once, refreshed in a
 * child created by fork() (the library's fork handlers; a raw clone without them is not seen). */
int po__pid(void);

/* strncpy that always terminates and returns 1 when it had to truncate. */
int po__strlcpy(char *dst, const char *src, size_t size);

/* ---- time (base/time.c) ---------------------------------------------------------------------- */

/* Monotonic wall clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t po__now_ns(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME) as a double. */
double po__unix_seconds(void);
/* Seconds since the process started using the library (the report's time origin). */
double po__run_seconds(void);

/* ---- files (base/file.c) --------------------------------------------------------------------- */

/* Writes `len` bytes to `path` atomically: a temporary file created exclusively (O_EXCL |
 * O_NOFOLLOW, an unpredictable name) in the same directory, fsync, rename, then fsync of the
 * directory. An existing file keeps its permission bits. A planted symlink is never followed (the
 * temporary is never a link; rename replaces a link at `path` rather than writing through it).
 * On failure the previous file is intact, the temporary file is removed, and errbuf names the
 * path and the reason. */
int po__write_file_atomic(const char *path, const void *data, size_t len, char *errbuf,
                          size_t errlen);

/* Reads a whole file (at most max_bytes) into a NUL-terminated malloc'd buffer. PO_ENOENT for a
 * missing file, PO_EINVAL for a directory, PO_ETOOBIG past max_bytes, PO_EIO otherwise; errbuf
 * names the path and the reason. */
int po__read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, char *errbuf,
                  size_t errlen);

#ifdef PERFOPT_TESTING
/* Test build only: the next po__write_file_atomic calls fail at the given step (1 = open,
 * 2 = write, 3 = fsync, 4 = rename) with EIO. 0 turns it off. */
void po__test_fail_write_at(int step);
#endif

#endif
