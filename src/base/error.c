/* Errors (one X-macro table), this thread's last error message, and the log callback. */
#include "base/base.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

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

static __thread char last_error[512];

int po__set_last_error(int err, const char *msg) {
  po__strlcpy(last_error, msg ? msg : "", sizeof last_error);
  return err;
}

const char *po_last_error(void) {
  return last_error;
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

/* ---- logging ------------------------------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static po_log_fn log_fn;
static void *log_user;

void po_set_log_callback(po_log_fn fn, void *user) {
  pthread_mutex_lock(&log_lock);
  log_fn = fn;
  log_user = user;
  pthread_mutex_unlock(&log_lock);
}

int po__log_has_callback(void) {
  pthread_mutex_lock(&log_lock);
  int has = log_fn != NULL;
  pthread_mutex_unlock(&log_lock);
  return has;
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
