/* The live endpoint: libmicrohttpd in its own thread pool serving three fixed paths from report
 * snapshots.
 *
 * Snapshots: a live server builds a report at most once per snapshot_ms; while one thread builds,
 * the others keep serving the previous snapshot (only the very first request waits). Each body
 * (metrics text, JSON, dashboard HTML) is rendered once per snapshot, on first request, and
 * shared by reference count with every response that sends it, so a scrape storm costs one
 * lookup and one MHD response per request.
 *
 * Exposure: nothing but the three paths is served (no file is ever opened), GET and HEAD only,
 * bounded header memory per connection (MHD answers 431 past it), connection count and idle time;
 * an optional token checked in constant time; loopback unless allow_remote. */
#include "server/server.h"

#include "base/atfork.h"
#include "report/report_metrics.h"
#include "server/dashboard.h"
#include "viz/chart_internal.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SNAPSHOT_MS 500
#define DEFAULT_REFRESH_S 5
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 10
#define CONNECTION_MEMORY 32768 /* request line + headers; MHD answers 431 beyond */
#define THREADS 2
#define FIRST_SNAPSHOT_WAIT_S 30
#define MAX_TOKEN 512

/* ---- shared bodies ------------------------------------------------------------------------------
 */

typedef struct blob {
  atomic_size_t refs;
  size_t len;
  char *data;
} blob;

static blob *blob_wrap(char *data, size_t len) {
  if (!data) return NULL;
  blob *b = po__malloc(sizeof *b);
  if (!b) {
    free(data);
    return NULL;
  }
  atomic_init(&b->refs, 1);
  b->len = len;
  b->data = data;
  return b;
}

static void blob_unref(void *p) {
  blob *b = p;
  if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
    free(b->data);
    free(b);
  }
}

enum { BODY_METRICS, BODY_JSON, BODY_HTML, NBODIES };

typedef struct snap {
  atomic_int refs;
  po_report *owned; /* live snapshots own their report */
  const po_report *rep;
  uint64_t gen;
  uint64_t taken_ns;
  pthread_mutex_t mu; /* bodies */
  blob *body[NBODIES];
} snap;

static snap *snap_create(po_report *owned, const po_report *rep, uint64_t gen) {
  snap *s = po__calloc(1, sizeof *s);
  if (!s) return NULL;
  atomic_init(&s->refs, 1);
  s->owned = owned;
  s->rep = rep;
  s->gen = gen;
  s->taken_ns = po__now_ns();
  pthread_mutex_init(&s->mu, NULL);
  return s;
}

static void snap_unref(snap *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
  for (int i = 0; i < NBODIES; i++) blob_unref(s->body[i]);
  pthread_mutex_destroy(&s->mu);
  po_report_destroy(s->owned);
  free(s);
}

/* ---- the server ---------------------------------------------------------------------------------
 */

struct po_server {
  struct MHD_Daemon *daemon;
  po__server_source_fn live;
  void *user;
  uint64_t ttl_ns; /* 0 for a fixed report: never stale */
  char token[MAX_TOKEN];
  size_t token_len; /* 0: no token required */
  char *dashboard;  /* extra HTML for the live page */
  int port;
  pthread_mutex_t mu; /* cur, building, gen */
  pthread_cond_t built;
  snap *cur;
  int building;
  uint64_t gen;
  int forked;             /* this is a fork's copy: MHD's threads do not exist here */
  struct po_server *next; /* the registry of running servers (for fork) */
};

/* ---- fork: a child has no server threads; it closes its copy of the listening socket ----------
 */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static po_server *registry;

static void fork_prepare(void) {
  pthread_mutex_lock(&registry_mu);
}
static void fork_parent(void) {
  pthread_mutex_unlock(&registry_mu);
}
static void fork_child(void) {
  for (po_server *s = registry; s; s = s->next) {
    const union MHD_DaemonInfo *info =
        s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD) : NULL;
    if (info && info->listen_fd >= 0) close(info->listen_fd);
    s->forked = 1;
  }
  registry = NULL;
  pthread_mutex_unlock(&registry_mu); /* taken by this, the child's only thread, in fork_prepare */
}

/* At exit the servers stop before libraries' destructors run under their threads. */
static void stop_all_at_exit(void) {
  pthread_mutex_lock(&registry_mu);
  for (po_server *s = registry; s; s = s->next) {
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
  }
  pthread_mutex_unlock(&registry_mu);
}
static pthread_once_t at_exit_once = PTHREAD_ONCE_INIT;
static void register_at_exit(void) {
  atexit(stop_all_at_exit);
}

__attribute__((constructor)) static void register_fork_hooks(void) {
  po__atfork_add(PO__FORK_RANK_SERVER, fork_prepare, fork_parent, fork_child);
}

/* Body `which` of s, rendered on first use and shared afterwards; NULL on ENOMEM. Rendering runs
 * outside the lock, so a scrape never waits behind a dashboard render of the same snapshot (two
 * threads asking for one body at once may both render it; the second copy is dropped). */
static blob *snap_body(po_server *srv, snap *s, int which) {
  pthread_mutex_lock(&s->mu);
  blob *b = s->body[which];
  if (b) atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&s->mu);
  if (b) return b;
  size_t len = 0;
  char *text = NULL;
  if (which == BODY_METRICS)
    text = po__report_prom_text(s->rep, &len);
  else if (which == BODY_JSON) {
    text = po_report_to_string(s->rep, 0);
    len = text ? strlen(text) : 0;
  } else
    text = po__html_render_json_with(po_report_json(s->rep), srv->dashboard, &len);
  blob *mine = blob_wrap(text, len);
  if (!mine) return NULL;
  pthread_mutex_lock(&s->mu);
  if (!s->body[which]) {
    s->body[which] = mine; /* the snapshot's reference */
    mine = NULL;
  }
  b = s->body[which];
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&s->mu);
  blob_unref(mine);
  return b;
}

/* Builds a snapshot from the live source and makes it current. Called without srv->mu. */
static void rebuild(po_server *srv) {
  po_report *rep = NULL;
  snap *s = NULL;
  if (srv->live(srv->user, &rep) == 0) {
    s = snap_create(rep, rep, 0);
    if (!s) po_report_destroy(rep);
  }
  pthread_mutex_lock(&srv->mu);
  snap *old = NULL;
  if (s) {
    s->gen = ++srv->gen;
    old = srv->cur;
    srv->cur = s;
  }
  srv->building = 0;
  pthread_cond_broadcast(&srv->built);
  pthread_mutex_unlock(&srv->mu);
  snap_unref(old);
}

/* The snapshot to serve (a reference the caller drops), rebuilding it when stale. NULL when
 * none could be built. */
static snap *current(po_server *srv) {
  pthread_mutex_lock(&srv->mu);
  snap *s = srv->cur;
  int stale = !s || (srv->ttl_ns && po__now_ns() - s->taken_ns >= srv->ttl_ns);
  int build = stale && !srv->building;
  if (build) srv->building = 1;
  pthread_mutex_unlock(&srv->mu);
  if (build) rebuild(srv);
  pthread_mutex_lock(&srv->mu);
  if (!srv->cur && srv->building) { /* the first snapshot is on its way: wait for it */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += FIRST_SNAPSHOT_WAIT_S;
    while (!srv->cur && srv->building)
      if (pthread_cond_timedwait(&srv->built, &srv->mu, &until) != 0) break;
  }
  s = srv->cur;
  if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&srv->mu);
  return s;
}

/* ---- requests -----------------------------------------------------------------------------------
 */

/* Constant time for a given expected token: every byte of `want` is compared whatever `given`
 * holds, so the time says nothing about where they differ. */
static int token_equal(const char *given, size_t given_len, const char *want, size_t want_len) {
  unsigned diff = given_len != want_len;
  for (size_t i = 0; i < want_len; i++) {
    unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
    diff |= (unsigned)(g ^ (unsigned char)want[i]);
  }
  return diff == 0;
}

/* "Authorization: Bearer TOKEN", or Basic with TOKEN as the password (what a browser prompts
 * for: a bearer token cannot be typed into one). */
static int authorized(po_server *srv, struct MHD_Connection *c) {
  if (!srv->token_len) return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (h && !strncasecmp(h, "Bearer ", 7)) {
    const char *t = h + 7;
    while (*t == ' ') t++;
    return token_equal(t, strlen(t), srv->token, srv->token_len);
  }
  if (h && !strncasecmp(h, "Basic ", 6)) {
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(c, &pass);
    int ok = pass && token_equal(pass, strlen(pass), srv->token, srv->token_len);
    MHD_free(user);
    MHD_free(pass);
    return ok;
  }
  return 0;
}

static void common_headers(struct MHD_Response *r, const char *type) {
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text,
                                  const char *header, const char *value) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                           MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  common_headers(r, "text/plain; charset=utf-8");
  if (header) MHD_add_response_header(r, header, value);
  if (status == MHD_HTTP_UNAUTHORIZED) { /* Bearer for scrapers, Basic for a browser's prompt */
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"perfopt\"");
    MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"perfopt\"");
  }
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static const struct route {
  const char *path;
  int body;
  const char *type;
} routes[] = {
    {"/metrics", BODY_METRICS, PO__PROM_CONTENT_TYPE},
    {"/report.json", BODY_JSON, "application/json"},
    {"/", BODY_HTML, "text/html; charset=utf-8"},
};

#define DASHBOARD_CSP                                                                          \
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; " \
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static enum MHD_Result serve(po_server *srv, struct MHD_Connection *c, const struct route *rt) {
  snap *s = current(srv);
  blob *b = s ? snap_body(srv, s, rt->body) : NULL;
  uint64_t gen = s ? s->gen : 0;
  snap_unref(s);
  if (!b) return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no report available\n", NULL, NULL);
  char etag[32];
  snprintf(etag, sizeof etag, "\"%llu\"", (unsigned long long)gen);
  const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
  int not_modified = inm && !strcmp(inm, etag);
  struct MHD_Response *r =
      not_modified
          ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
          : MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, blob_unref, b);
  if (!r || not_modified) blob_unref(b);
  if (!r) return MHD_NO;
  common_headers(r, rt->type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
  if (rt->body == BODY_HTML) {
    MHD_add_response_header(r, "Content-Security-Policy", DASHBOARD_CSP);
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  }
  enum MHD_Result ret =
      MHD_queue_response(c, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

static int has_body(struct MHD_Connection *c) {
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
         (cl && strspn(cl, "0 \t") != strlen(cl));
}

/* MHD calls this once when the headers are in (*con_cls NULL), then with each piece of a body,
 * then once more. A GET or HEAD is answered on that last call: a response queued earlier makes MHD
 * close the connection (the body is not read), which is what refusals want and scrapers do not. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  static int headers_seen;
  (void)version;
  (void)upload_data;
  po_server *srv = cls;
  if (!*con_cls) {
    if (!authorized(srv, c))
      return reply_text(c, MHD_HTTP_UNAUTHORIZED, "a valid token is required\n", NULL, NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
      return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n",
                        MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (has_body(c)) /* refused before it is read (MHD accepts a reply only now or at the end) */
      return reply_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "a GET takes no body\n", NULL, NULL);
    *con_cls = &headers_seen;
    return MHD_YES;
  }
  if (*upload_data_size) { /* a body without Content-Length or chunking? never kept */
    *upload_data_size = 0;
    return MHD_YES;
  }
  for (size_t i = 0; i < PO__ARRAY_LEN(routes); i++)
    if (!strcmp(url, routes[i].path)) return serve(srv, c, &routes[i]);
  return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: /, /metrics and /report.json only\n", NULL,
                    NULL);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[256];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  po__log(2, "perfopt server: %s", msg);
}

/* ---- start and stop -----------------------------------------------------------------------------
 */

typedef union addr {
  struct sockaddr sa;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
} addr;

static int parse_address(const char *text, int port, addr *a, int *loopback) {
  memset(a, 0, sizeof *a);
  if (inet_pton(AF_INET, text, &a->v4.sin_addr) == 1) {
    a->v4.sin_family = AF_INET;
    a->v4.sin_port = htons((uint16_t)port);
    *loopback = (ntohl(a->v4.sin_addr.s_addr) >> 24) == 127;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &a->v6.sin6_addr) == 1) {
    a->v6.sin6_family = AF_INET6;
    a->v6.sin6_port = htons((uint16_t)port);
    const struct in6_addr *x = &a->v6.sin6_addr;
    *loopback = IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
    return 0;
  }
  return -1;
}

static int check_options(const po_server_options *o, char *errbuf, size_t errlen) {
  if (o->port < 0 || o->port > 65535)
    return po__errf(PO_EINVAL, errbuf, errlen, "port %d is out of range (0 .. 65535)", o->port);
  if (o->snapshot_ms < 0 || o->dashboard_refresh_s < 0 || o->dashboard_refresh_s > 86400 ||
      o->max_connections < 0 || o->max_connections > 100000 || o->timeout_s < 0 ||
      o->timeout_s > 86400)
    return po__errf(PO_EINVAL, errbuf, errlen, "a server option is out of range");
  return 0;
}

static int set_token(po_server *srv, const po_server_options *o, char *errbuf, size_t errlen) {
  const char *t = o->token ? o->token : getenv("PERFOPT_TOKEN");
  if (!t || !*t) return 0;
  if (strlen(t) >= MAX_TOKEN)
    return po__errf(PO_EINVAL, errbuf, errlen, "the token is longer than %d bytes", MAX_TOKEN - 1);
  for (const char *p = t; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return po__errf(PO_EINVAL, errbuf, errlen, "the token contains a space or control character");
  po__strlcpy(srv->token, t, sizeof srv->token);
  srv->token_len = strlen(t);
  return 0;
}

static int listen_on(po_server *srv, const po_server_options *o, const addr *a, char *errbuf,
                     size_t errlen) {
  int threads = THREADS;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (a->sa.sa_family == AF_INET6) flags |= MHD_USE_IPv6;
  srv->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
      MHD_OPTION_SOCK_ADDR, &a->sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
      MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)(o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s ? o->timeout_s : DEFAULT_TIMEOUT_S),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT,
      1, MHD_OPTION_END);
  if (!srv->daemon) {
    char host[INET6_ADDRSTRLEN] = "?";
    inet_ntop(
        a->sa.sa_family,
        a->sa.sa_family == AF_INET ? (const void *)&a->v4.sin_addr : (const void *)&a->v6.sin6_addr,
        host, sizeof host);
    return po__errf(PO_EIO, errbuf, errlen,
                    "cannot listen on %s port %d (in use, or not an address of this machine)", host,
                    o->port);
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = info ? (int)info->port : o->port;
  return 0;
}

int po__server_create(const po_server_options *opts, po__server_source_fn live, void *user,
                      const po_report *fixed, po_server **out, char *errbuf, size_t errlen) {
  if (!out || (!live) == (!fixed))
    return po__errf(PO_EINVAL, errbuf, errlen, "give exactly one of a live source and a report");
  *out = NULL;
  po_server_options o = {0};
  if (opts) o = *opts;
  int rc = check_options(&o, errbuf, errlen);
  if (rc) return rc;
  const char *text = o.address && *o.address ? o.address : "127.0.0.1";
  addr a;
  int loopback = 0;
  if (parse_address(text, o.port, &a, &loopback) != 0)
    return po__errf(PO_EINVAL, errbuf, errlen,
                    "'%s' is not a numeric IPv4 or IPv6 address (e.g. 127.0.0.1, ::1, 0.0.0.0)",
                    text);
  if (!loopback && !o.allow_remote)
    return po__errf(PO_EINVAL, errbuf, errlen,
                    "%s is not a loopback address: listening there needs allow_remote "
                    "(--allow-remote, SERVER_ALLOW_REMOTE)",
                    text);
  po_server *srv = po__calloc(1, sizeof *srv);
  if (!srv) return po__errf(PO_ENOMEM, errbuf, errlen, "out of memory");
  srv->live = live;
  srv->user = user;
  pthread_mutex_init(&srv->mu, NULL);
  pthread_cond_init(&srv->built, NULL);
  rc = set_token(srv, &o, errbuf, errlen);
  if (!rc) {
    int refresh = o.dashboard_refresh_s ? o.dashboard_refresh_s : DEFAULT_REFRESH_S;
    srv->dashboard = po__dashboard_html(refresh);
    if (!srv->dashboard) rc = po__errf(PO_ENOMEM, errbuf, errlen, "out of memory");
  }
  if (!rc && fixed) {
    srv->cur = snap_create(NULL, fixed, ++srv->gen);
    if (!srv->cur) rc = po__errf(PO_ENOMEM, errbuf, errlen, "out of memory");
  }
  srv->ttl_ns =
      fixed ? 0 : (uint64_t)(o.snapshot_ms ? o.snapshot_ms : DEFAULT_SNAPSHOT_MS) * 1000000u;
  if (!rc) rc = listen_on(srv, &o, &a, errbuf, errlen);
  if (rc) {
    po_server_destroy(srv);
    return rc;
  }
  pthread_once(&at_exit_once, register_at_exit);
  pthread_mutex_lock(&registry_mu);
  srv->next = registry;
  registry = srv;
  pthread_mutex_unlock(&registry_mu);
  if (!loopback)
    po__log(1, "perfopt: the live endpoint listens on %s port %d, reachable from other machines%s",
            text, srv->port, srv->token_len ? "" : " without a token (set PERFOPT_TOKEN)");
  *out = srv;
  return 0;
}

int po_server_start_report(const po_report *rep, const po_server_options *o, po_server **out,
                           char *errbuf, size_t errlen) {
  if (!rep) return po__errf(PO_EINVAL, errbuf, errlen, "no report given");
  return po__server_create(o, NULL, NULL, rep, out, errbuf, errlen);
}

int po_server_port(const po_server *srv) {
  return srv ? srv->port : 0;
}

void po_server_destroy(po_server *srv) {
  if (!srv) return;
  pthread_mutex_lock(&registry_mu);
  for (po_server **pp = &registry; *pp; pp = &(*pp)->next)
    if (*pp == srv) {
      *pp = srv->next;
      break;
    }
  pthread_mutex_unlock(&registry_mu);
  /* In a fork's child MHD's threads do not exist and its state is a copy: it is left alone (a
   * bounded leak) rather than joined. */
  if (srv->forked) return;
  if (srv->daemon) MHD_stop_daemon(srv->daemon); /* joins its threads: no request runs after */
  snap_unref(srv->cur);
  free(srv->dashboard);
  pthread_cond_destroy(&srv->built);
  pthread_mutex_destroy(&srv->mu);
  free(srv);
}
