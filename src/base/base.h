/* Private helpers shared by every module. Not installed. */
#ifndef PO_INTERNAL_H
#define PO_INTERNAL_H

#include "perfopt.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define PO__UNUSED(x) ((void)(x))
#define PO__LIKELY(x) __builtin_expect(!!(x), 1)
#define PO__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PO__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Sends a message to the user's log callback (nothing when none is set). printf-style. */
void po__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* snprintf into errbuf when errbuf is non-NULL and errlen > 0. Always returns `err`. */
int po__errf(int err, char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes `len` bytes to `path` atomically: a temporary file in the same directory, fsync, rename,
 * then fsync of the directory. On failure the previous file is intact, the temporary file is
 * removed, and errbuf names the path and the reason. */
int po__write_file_atomic(const char *path, const void *data, size_t len, char *errbuf,
                          size_t errlen);

/* Reads a whole file (at most max_bytes) into a NUL-terminated malloc'd buffer. */
int po__read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, char *errbuf,
                  size_t errlen);

/* Fault injection for tests: when set, the next po__write_file_atomic calls fail at the given
 * step (1 = open, 2 = write, 3 = fsync, 4 = rename) with EIO. 0 turns it off. */
PO_API void po__test_fail_write_at(int step);

/* Monotonic wall clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t po__now_ns(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME) as a double. */
double po__unix_seconds(void);
/* Seconds since the process started using the library (the report's time origin). */
double po__run_seconds(void);

/* Parses a report from memory (`what` names it in errors). The fuzz target's entry point. */
struct po_report;
PO_API int po__report_parse(const char *text, size_t len, const char *what, struct po_report **out,
                            char *errbuf, size_t errlen);

/* strncpy that always terminates and returns 1 when it had to truncate. */
int po__strlcpy(char *dst, const char *src, size_t size);

#endif
