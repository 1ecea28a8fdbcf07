/* po_report_push: one HTTP PUT of the report's metrics to a Prometheus Pushgateway.
 *
 * Written on a socket rather than with libcurl: it is one request per run over plain HTTP (the
 * Pushgateway's own protocol), and a library linked into every job should not pull in a TLS
 * stack and its dependencies for it. Every step is bounded: one deadline for resolve, connect,
 * send and receive, and the answer read is capped. https URLs are refused with a clear message. */
#include "server/server.h"

#include "report/report_metrics.h"
#include "viz/chart_internal.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUSH_TIMEOUT_MS 10000
#define MAX_URL 1024
#define MAX_ANSWER 4096

typedef struct target {
  char host[256];
  char port[8];
  char prefix[MAX_URL];
} target;

static int parse_url(const char *url, target *t, char *errbuf, size_t errlen) {
  if (!strncasecmp(url, "https://", 8))
    return po__errf(PO_EINVAL, errbuf, errlen,
                    "%s: https is not supported (push over http, or through a local proxy)", url);
  if (strncasecmp(url, "http://", 7) != 0 || strlen(url) >= MAX_URL)
    return po__errf(PO_EINVAL, errbuf, errlen, "'%s' is not an http://HOST[:PORT][/PATH] URL", url);
  const char *h = url + 7, *end;
  if (*h == '[') {
    end = strchr(h, ']');
    if (!end) return po__errf(PO_EINVAL, errbuf, errlen, "%s: unclosed '['", url);
    snprintf(t->host, sizeof t->host, "%.*s", (int)(end - h - 1), h + 1);
    end++;
  } else {
    end = h + strcspn(h, ":/");
    snprintf(t->host, sizeof t->host, "%.*s", (int)(end - h), h);
  }
  snprintf(t->port, sizeof t->port, "80");
  if (*end == ':') {
    size_t n = strspn(end + 1, "0123456789");
    long p = n && n < 6 ? strtol(end + 1, NULL, 10) : 0;
    if (p < 1 || p > 65535) return po__errf(PO_EINVAL, errbuf, errlen, "%s: bad port", url);
    snprintf(t->port, sizeof t->port, "%ld", p);
    end += 1 + n;
  }
  if (!t->host[0] || (*end && *end != '/'))
    return po__errf(PO_EINVAL, errbuf, errlen, "'%s' is not an http://HOST[:PORT][/PATH] URL", url);
  for (const char *p = end; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
      return po__errf(PO_EINVAL, errbuf, errlen, "%s: the path may not hold spaces, ? or #", url);
  snprintf(t->prefix, sizeof t->prefix, "%s", end);
  size_t n = strlen(t->prefix);
  while (n && t->prefix[n - 1] == '/') t->prefix[--n] = 0;
  return 0;
}

/* The Pushgateway's base64url form of a label value (any byte allowed): "@base64/VALUE". */
static void put_b64url(po__cbuf *b, const char *s) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)(unsigned char)s[i] << 16;
    if (i + 1 < n) v |= (unsigned)(unsigned char)s[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)s[i + 2];
    char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                 i + 2 < n ? tab[v & 63] : '='};
    po__cbuf_put(b, q, 4);
  }
}

static int remaining_ms(uint64_t deadline) {
  uint64_t now = po__now_ns();
  return now >= deadline ? 0 : (int)((deadline - now) / 1000000u) + 1;
}

/* Connects to the first address that answers before the deadline; -1 with errno-ish message. */
static int connect_to(const target *t, uint64_t deadline, char *errbuf, size_t errlen, int *rc) {
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int g = getaddrinfo(t->host, t->port, &hints, &res);
  if (g != 0) {
    *rc = po__errf(PO_EIO, errbuf, errlen, "%s: %s", t->host, gai_strerror(g));
    return -1;
  }
  int fd = -1, err = 0;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        socklen_t len = sizeof err;
        if (poll(&p, 1, remaining_ms(deadline)) != 1)
          err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
          err = errno;
      }
    }
    if (err) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0)
    *rc = po__errf(PO_EIO, errbuf, errlen, "cannot connect to %s port %s: %s", t->host, t->port,
                   strerror(err ? err : ECONNREFUSED));
  return fd;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd q = {fd, POLLOUT, 0};
      if (poll(&q, 1, remaining_ms(deadline)) != 1) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

/* Reads the answer until the peer closes, the buffer is full or the deadline passes. */
static size_t recv_answer(int fd, char *buf, size_t cap, uint64_t deadline) {
  size_t n = 0;
  while (n + 1 < cap) {
    struct pollfd q = {fd, POLLIN, 0};
    if (poll(&q, 1, remaining_ms(deadline)) != 1) break;
    ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
    if (r <= 0) {
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      break;
    }
    n += (size_t)r;
  }
  buf[n] = 0;
  return n;
}

/* The request: headers then the body, in one buffer. */
static char *build_request(const target *t, const char *job, const char *instance,
                           const char *token, const char *body, size_t body_len, size_t *len) {
  po__cbuf b;
  po__cbuf_init(&b);
  po__cbuf_printf(&b, "PUT %s/metrics/job@base64/", t->prefix);
  put_b64url(&b, job);
  if (instance && *instance) {
    po__cbuf_puts(&b, "/instance@base64/");
    put_b64url(&b, instance);
  }
  int v6 = strchr(t->host, ':') != NULL;
  po__cbuf_printf(&b,
                  " HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: perfopt/" PO_VERSION_STRING
                  "\r\nContent-Type: " PO__PROM_CONTENT_TYPE
                  "\r\nContent-Length: %zu\r\nConnection: close\r\n",
                  v6 ? "[" : "", t->host, v6 ? "]" : "", t->port, body_len);
  if (token && *token) po__cbuf_printf(&b, "Authorization: Bearer %s\r\n", token);
  po__cbuf_puts(&b, "\r\n");
  po__cbuf_put(&b, body, body_len);
  return po__cbuf_detach(&b, len);
}

static int valid_token(const char *t) {
  for (; t && *t; t++)
    if ((unsigned char)*t <= ' ' || *t == 0x7f) return 0;
  return 1;
}

int po_report_push(const po_report *rep, const char *url, const char *job, const char *instance,
                   const char *token, char *errbuf, size_t errlen) {
  if (!rep || !url || !job || !*job)
    return po__errf(PO_EINVAL, errbuf, errlen, "a report, a URL and a job name are required");
  if (!valid_token(token))
    return po__errf(PO_EINVAL, errbuf, errlen, "the token contains a space or control character");
  target t;
  int rc = parse_url(url, &t, errbuf, errlen);
  if (rc) return rc;
  size_t body_len, req_len;
  char *body = po__report_prom_text(rep, &body_len);
  char *req = body ? build_request(&t, job, instance, token, body, body_len, &req_len) : NULL;
  free(body);
  if (!req) return po__errf(PO_ENOMEM, errbuf, errlen, "out of memory");
  uint64_t deadline = po__now_ns() + (uint64_t)PUSH_TIMEOUT_MS * 1000000u;
  int fd = connect_to(&t, deadline, errbuf, errlen, &rc);
  if (fd >= 0) {
    char answer[MAX_ANSWER];
    if (send_all(fd, req, req_len, deadline) != 0) {
      rc = po__errf(PO_EIO, errbuf, errlen, "%s: sending failed: %s", url,
                    errno ? strerror(errno) : "timed out");
    } else {
      recv_answer(fd, answer, sizeof answer, deadline);
      int status = 0;
      if (sscanf(answer, "HTTP/%*d.%*d %d", &status) != 1) status = 0;
      if (status < 200 || status > 299) {
        const char *body_at = strstr(answer, "\r\n\r\n");
        answer[strcspn(answer, "\r\n")] = 0;
        rc = po__errf(PO_EIO, errbuf, errlen, "%s: %s%s%.200s", url,
                      status ? answer : "no HTTP answer", body_at ? ": " : "",
                      body_at ? body_at + 4 : "");
      }
    }
    close(fd);
  }
  free(req);
  return rc;
}
