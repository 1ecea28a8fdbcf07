/* The live endpoint: the three paths, methods, tokens, limits and bad input over real sockets,
 * snapshot reuse, the Prometheus text, and the Pushgateway client against an in-test gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "optimizer.h"
#include "perfopt.h"
#include "report/report_build.h"
#include "report/report_metrics.h"
#include "support/report_fixture.h"
#include "support/support.h"
#include "viz/chart_internal.h"

/* ---- a raw HTTP client ------------------------------------------------------------------------
 */

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Sends req, reads until the peer closes (or 5 s pass) into out; returns the status code, or 0
 * when the connection closed without an HTTP answer. */
static int http_raw(int port, const char *req, size_t req_len, char *out, size_t cap) {
  int fd = connect_port(port);
  size_t sent = 0;
  while (sent < req_len) {
    ssize_t w = send(fd, req + sent, req_len - sent, MSG_NOSIGNAL);
    if (w <= 0) break; /* the server may refuse before reading everything */
    sent += (size_t)w;
  }
  size_t n = 0;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) break;
    ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
    if (r <= 0) break;
    n += (size_t)r;
    if (n + 1 >= cap) break;
  }
  out[n] = 0;
  close(fd);
  int status = 0;
  if (sscanf(out, "HTTP/1.%*d %d", &status) != 1) status = 0;
  return status;
}

static char response[1 << 20];

/* GET (or another method) with Connection: close and an optional extra header line. */
static int http(int port, const char *method, const char *path, const char *extra) {
  char req[4096];
  snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n",
           method, path, extra ? extra : "");
  return http_raw(port, req, strlen(req), response, sizeof response);
}

static const char *body_of(const char *resp) {
  const char *b = strstr(resp, "\r\n\r\n");
  return b ? b + 4 : "";
}

static const char *header(const char *resp, const char *name, char *buf, size_t cap) {
  char key[64];
  snprintf(key, sizeof key, "\r\n%s: ", name);
  const char *h = strcasestr(resp, key);
  if (!h) return NULL;
  h += strlen(key);
  snprintf(buf, cap, "%.*s", (int)strcspn(h, "\r\n"), h);
  return buf;
}

/* ---- fixtures ---------------------------------------------------------------------------------
 */

static po_report *fixture(void) {
  cJSON *root = fixture_report(600, 1, 1, 200);
  assert_non_null(root);
  po_report *rep = po__report_wrap(root);
  assert_non_null(rep);
  return rep;
}

static po_server *serve_fixed(const po_report *rep, const char *token) {
  po_server_options o = {.token = token ? token : ""};
  po_server *srv = NULL;
  char err[256];
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), 0);
  assert_true(po_server_port(srv) > 0);
  return srv;
}

/* ---- the three paths --------------------------------------------------------------------------
 */

static void test_paths_serve_metrics_json_and_dashboard(void **state) {
  (void)state;
  po_report *rep = fixture();
  po_server *srv = serve_fixed(rep, NULL);
  int port = po_server_port(srv);
  char h[256];

  assert_int_equal(http(port, "GET", "/metrics", NULL), 200);
  assert_string_equal(header(response, "Content-Type", h, sizeof h),
                      "text/plain; version=0.0.4; charset=utf-8");
  assert_non_null(strstr(response, "\n# TYPE process_resident_memory_bytes gauge\n"));
  assert_non_null(strstr(response, "\nperfopt_function_calls_total{function=\""));

  assert_int_equal(http(port, "GET", "/report.json", NULL), 200);
  assert_string_equal(header(response, "Content-Type", h, sizeof h), "application/json");
  po_report *back = NULL;
  const char *json = body_of(response);
  assert_int_equal(po__report_parse(json, strlen(json), "body", &back, NULL, 0), 0);
  po_report_destroy(back);

  assert_int_equal(http(port, "GET", "/", NULL), 200);
  assert_non_null(
      strstr(header(response, "Content-Security-Policy", h, sizeof h), "default-src 'none'"));
  assert_non_null(strstr(response, "id=\"po-live\""));
  assert_non_null(strstr(response, "<section id=\"cpu\">"));
  assert_null(strstr(response, "<script src")); /* nothing external */

  /* HEAD: the same headers, no body */
  assert_int_equal(http(port, "HEAD", "/metrics", NULL), 200);
  assert_non_null(header(response, "Content-Length", h, sizeof h));
  assert_true(atol(h) > 100);
  assert_string_equal(body_of(response), "");

  /* the query string is not part of the path */
  assert_int_equal(http(port, "GET", "/metrics?x=1", NULL), 200);
  po_server_destroy(srv);
  po_report_destroy(rep);
}

static void test_the_plain_report_is_unchanged_by_the_hook(void **state) {
  (void)state;
  po_report *rep = fixture();
  size_t a_len, b_len;
  /* (chart clip-path ids come from a process-wide counter, so two renders differ there only) */
  char *a = po__html_render_json(po_report_json(rep), &a_len);
  char *b = po__html_render_json_with(po_report_json(rep), "<p>EXTRA</p>\n", &b_len);
  assert_non_null(a);
  assert_non_null(b);
  assert_null(strstr(a, "po-live"));
  assert_null(strstr(a, "EXTRA"));
  const char *tail = "</script>\n</body></html>\n";
  assert_string_equal(a + a_len - strlen(tail), tail);
  const char *btail = "</script>\n<p>EXTRA</p>\n</body></html>\n";
  assert_string_equal(b + b_len - strlen(btail), btail);
  free(a);
  free(b);
  po_report_destroy(rep);
}

/* ---- refusals ---------------------------------------------------------------------------------
 */

static void test_unknown_paths_and_methods_are_refused(void **state) {
  (void)state;
  po_report *rep = fixture();
  po_server *srv = serve_fixed(rep, NULL);
  int port = po_server_port(srv);
  char h[64];
  static const char *const paths[] = {"/etc/passwd", "/../../etc/passwd", "/%2e%2e/etc/passwd",
                                      "/metrics/",   "/index.html",       "/report.json.bak",
                                      "//metrics"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    assert_int_equal(http(port, "GET", paths[i], NULL), 404);
  static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "TRACE", "BREW"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    assert_int_equal(http(port, methods[i], "/metrics", NULL), 405);
    assert_string_equal(header(response, "Allow", h, sizeof h), "GET, HEAD");
  }
  /* a GET with a body is refused before the body is read */
  assert_int_equal(http(port, "GET", "/metrics", "Content-Length: 100000000\r\n"), 413);
  assert_int_equal(http(port, "GET", "/metrics", NULL), 200); /* positive control */
  po_server_destroy(srv);
  po_report_destroy(rep);
}

static void test_bad_input_gets_an_answer_and_the_server_keeps_serving(void **state) {
  (void)state;
  po_report *rep = fixture();
  po_server *srv = serve_fixed(rep, NULL);
  int port = po_server_port(srv);
  static char a40k[40001], big[40100];
  memset(a40k, 'a', 40000);
  snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", a40k);
  static char many[64 * 1024];
  size_t m = (size_t)snprintf(many, sizeof many, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 3000 && m + 32 < sizeof many; i++)
    m += (size_t)snprintf(many + m, sizeof many - m, "X-%d: y\r\n", i);
  strcat(many, "\r\n");
  static char long_url[40100];
  snprintf(long_url, sizeof long_url, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", a40k);
  struct {
    const char *req;
    int want; /* -1: 400 or a closed connection (MHD closes on a request line it cannot parse) */
  } cases[] = {
      {big, 431},
      {many, 431},
      {long_url, 414},
      {"GET /metrics HTTP/1.1\r\n\r\n", 400}, /* HTTP/1.1 without Host */
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400},
      {"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", 505},
      {"garbage\r\n\r\n", -1},
      {"\x01\x02\x03\xff\r\n\r\n", -1},
      {"GET  /metrics  HTTP/1.1\r\nHost: x\r\n\r\n", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int got = http_raw(port, cases[i].req, strlen(cases[i].req), response, sizeof response);
    if (cases[i].want < 0)
      assert_true(got == 400 || got == 0);
    else
      assert_int_equal(got, cases[i].want);
    assert_int_equal(http(port, "GET", "/metrics", NULL), 200); /* still serving */
  }
  /* a client that connects and says nothing does not block others */
  int idle = connect_port(port);
  assert_int_equal(http(port, "GET", "/report.json", NULL), 200);
  close(idle);
  po_server_destroy(srv);
  po_report_destroy(rep);
}

/* 1 when the peer closes fd within `ms` (reads and drops anything it sends first). */
static int closed_within(int fd, int ms) {
  char buf[512];
  for (int waited = 0; waited < ms; waited += 100) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) == 1 && recv(fd, buf, sizeof buf, 0) <= 0) return 1;
  }
  return 0;
}

static void test_connections_are_bounded_in_count_and_time(void **state) {
  (void)state;
  po_report *rep = fixture();
  char err[256];
  /* count: while 4 idle connections hold every slot, a fifth waits in the kernel's backlog
   * unanswered; it is served once they go */
  po_server_options o = {.token = "", .max_connections = 4, .timeout_s = 60};
  po_server *srv = NULL;
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), 0);
  int port = po_server_port(srv);
  int idle[4];
  for (int i = 0; i < 4; i++) idle[i] = connect_port(port);
  usleep(200 * 1000);
  int fifth = connect_port(port);
  const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  assert_int_equal(send(fifth, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
  struct pollfd p = {fifth, POLLIN, 0};
  assert_int_equal(poll(&p, 1, 500), 0); /* not answered while the slots are held */
  for (int i = 0; i < 4; i++) close(idle[i]);
  p.revents = 0;
  assert_int_equal(poll(&p, 1, 10000), 1);
  char buf[64] = "";
  assert_true(recv(fifth, buf, sizeof buf - 1, 0) > 12);
  assert_memory_equal(buf, "HTTP/1.1 200", 12);
  close(fifth);
  po_server_destroy(srv);

  /* time: an idle connection is closed after timeout_s (1 s; waited for 10 s at most) */
  o = (po_server_options){.token = "", .timeout_s = 1};
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), 0);
  int lazy = connect_port(po_server_port(srv));
  assert_true(closed_within(lazy, 10000));
  close(lazy);
  assert_int_equal(http(po_server_port(srv), "GET", "/metrics", NULL), 200);
  po_server_destroy(srv);
  po_report_destroy(rep);
}

static void test_a_token_is_required_when_set(void **state) {
  (void)state;
  po_report *rep = fixture();
  po_server *srv = serve_fixed(rep, "s3cret-token");
  int port = po_server_port(srv);
  assert_int_equal(http(port, "GET", "/metrics", NULL), 401);
  assert_non_null(strstr(response, "\r\nWWW-Authenticate: Bearer realm=\"perfopt\""));
  assert_null(strstr(response, "process_resident_memory_bytes"));
  assert_int_equal(http(port, "GET", "/metrics", "Authorization: Bearer wrong\r\n"), 401);
  assert_int_equal(http(port, "GET", "/metrics", "Authorization: Bearer s3cret-toke\r\n"), 401);
  assert_int_equal(http(port, "GET", "/metrics", "Authorization: Bearer s3cret-token2\r\n"), 401);
  assert_int_equal(http(port, "GET", "/nothing", NULL), 401); /* nothing is told without it */
  assert_int_equal(http(port, "POST", "/metrics", NULL), 401);
  assert_int_equal(http(port, "GET", "/metrics", "Authorization: Bearer s3cret-token\r\n"), 200);
  assert_non_null(strstr(response, "process_resident_memory_bytes"));
  /* a browser's Basic prompt: any user, the token as password ("u:s3cret-token") */
  assert_int_equal(http(port, "GET", "/", "Authorization: Basic dTpzM2NyZXQtdG9rZW4=\r\n"), 200);
  assert_int_equal(http(port, "GET", "/", "Authorization: Basic dTp3cm9uZw==\r\n"), 401);
  po_server_destroy(srv);

  /* PERFOPT_TOKEN applies when the options leave the token NULL */
  setenv("PERFOPT_TOKEN", "from-env", 1);
  po_server_options o = {0};
  char err[256];
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), 0);
  unsetenv("PERFOPT_TOKEN");
  port = po_server_port(srv);
  assert_int_equal(http(port, "GET", "/metrics", NULL), 401);
  assert_int_equal(http(port, "GET", "/metrics", "Authorization: Bearer from-env\r\n"), 200);
  po_server_destroy(srv);
  po_report_destroy(rep);
}

static void test_addresses_and_options_are_checked(void **state) {
  (void)state;
  po_report *rep = fixture();
  po_server *srv = NULL;
  char err[256];
  po_server_options o = {.address = "0.0.0.0"};
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), PO_EINVAL);
  assert_non_null(strstr(err, "allow_remote"));
  assert_null(srv);
  o.address = "localhost"; /* numeric only */
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), PO_EINVAL);
  o.address = "::1";
  int rc = po_server_start_report(rep, &o, &srv, err, sizeof err);
  assert_true(rc == 0 || rc == PO_EIO); /* a machine without IPv6 loopback */
  po_server_destroy(srv);
  o = (po_server_options){.port = 70000};
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), PO_EINVAL);
  o = (po_server_options){.token = "has space"};
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), PO_EINVAL);
  assert_int_equal(po_server_start_report(NULL, NULL, &srv, err, sizeof err), PO_EINVAL);
  /* a port in use */
  po_server *first = serve_fixed(rep, NULL);
  o = (po_server_options){.port = po_server_port(first)};
  assert_int_equal(po_server_start_report(rep, &o, &srv, err, sizeof err), PO_EIO);
  assert_non_null(strstr(err, "cannot listen"));
  po_server_destroy(first);
  po_server_destroy(NULL);
  po_report_destroy(rep);
}

static void test_start_survives_every_allocation_failure(void **state) {
  (void)state;
  po_report *rep = fixture();
  int succeeded = 0;
  for (uint64_t n = 1; n < 200 && !succeeded; n++) {
    po_server *srv = NULL;
    po_server_options o = {.token = ""};
    po__fault_fail_at(n, 0);
    int rc = po_server_start_report(rep, &o, &srv, NULL, 0);
    uint64_t injected = po__fault_injected();
    po__fault_fail_at(0, 0);
    if (rc == 0) {
      assert_int_equal(http(po_server_port(srv), "GET", "/metrics", NULL), 200);
      succeeded = injected == 0;
      po_server_destroy(srv);
    } else {
      assert_int_equal(rc, PO_ENOMEM);
      assert_null(srv);
    }
  }
  assert_true(succeeded);
  po_report_destroy(rep);
}

/* ---- a live optimizer -------------------------------------------------------------------------
 */

static void test_live_snapshots_are_reused_then_renewed(void **state) {
  (void)state;
  po_config cfg;
  po_config_defaults(&cfg);
  cfg.monitor_interval_ms = 20;
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&cfg, &opt), 0);
  po_server_options o = {.snapshot_ms = 300, .token = ""};
  po_server *srv = NULL;
  char err[256], e1[32], e2[32], e3[32];
  assert_int_equal(po_server_start(opt, &o, &srv, err, sizeof err), 0);
  int port = po_server_port(srv);
  assert_int_equal(http(port, "GET", "/metrics", NULL), 200);
  assert_non_null(strstr(response, "\nperfopt_resource_samples_total "));
  header(response, "ETag", e1, sizeof e1);
  assert_int_equal(http(port, "GET", "/report.json", NULL), 200);
  header(response, "ETag", e2, sizeof e2);
  /* reused within snapshot_ms (the second request came well within it unless this machine
   * stalled for 300 ms; then the ETags differ and the check below still holds) */
  char cond[64];
  snprintf(cond, sizeof cond, "If-None-Match: %s\r\n", e2);
  int st = http(port, "GET", "/metrics", cond);
  assert_true(st == 304 || st == 200);
  if (st == 304) assert_string_equal(body_of(response), "");
  usleep(400 * 1000);
  assert_int_equal(http(port, "GET", "/metrics", cond), 200); /* renewed after snapshot_ms */
  header(response, "ETag", e3, sizeof e3);
  assert_string_not_equal(e3, e2);
  (void)e1;
  po_server_destroy(srv);
  po_optimizer_destroy(opt);
}

typedef struct client {
  int port, ok, n;
  char buf[1 << 20];
} client;

static void *client_main(void *arg) {
  client *c = arg;
  static const char *const paths[] = {"/metrics", "/report.json", "/"};
  for (int i = 0; i < c->n; i++) {
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             paths[i % 3]);
    if (http_raw(c->port, req, strlen(req), c->buf, sizeof c->buf) == 200) c->ok++;
  }
  return NULL;
}

/* Snapshots rebuilt all the time (snapshot_ms 1) while four clients ask for every body: each
 * request gets a whole answer (and ThreadSanitizer sees the sharing). */
static void test_concurrent_requests_during_rebuilds(void **state) {
  (void)state;
  po_config cfg;
  po_config_defaults(&cfg);
  cfg.monitor_interval_ms = 10;
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&cfg, &opt), 0);
  po_server_options o = {.snapshot_ms = 1, .token = ""};
  po_server *srv = NULL;
  char err[256];
  assert_int_equal(po_server_start(opt, &o, &srv, err, sizeof err), 0);
  enum { CLIENTS = 4 };
  static client clients[CLIENTS];
  pthread_t t[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    clients[i] = (client){.port = po_server_port(srv), .ok = 0, .n = 30};
    assert_int_equal(pthread_create(&t[i], NULL, client_main, &clients[i]), 0);
  }
  for (int i = 0; i < CLIENTS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(clients[i].ok, clients[i].n);
  }
  po_server_destroy(srv);
  po_optimizer_destroy(opt);
}

static void test_server_enable_starts_with_the_optimizer(void **state) {
  (void)state;
  po_config cfg;
  po_config_defaults(&cfg);
  char err[256];
  assert_int_equal(po_config_set(&cfg, "SERVER_ENABLE", "true", err, sizeof err), 0);
  assert_int_equal(po_config_set(&cfg, "SERVER_PORT", "0", err, sizeof err), 0);
  assert_int_equal(po_config_set(&cfg, "SERVER_PORT", "65536", err, sizeof err), PO_ECONFIG);
  assert_string_equal(cfg.server_address, "127.0.0.1");
  po_optimizer *opt = NULL;
  assert_int_equal(po_optimizer_create(&cfg, &opt), 0);
  assert_non_null(opt->server);
  assert_int_equal(http(po_server_port(opt->server), "GET", "/metrics", NULL), 200);
  assert_non_null(strstr(response, "\nprocess_resident_memory_bytes "));
  po_optimizer_destroy(opt);
  /* a non-loopback address without SERVER_ALLOW_REMOTE: the optimizer is created, unserved */
  assert_int_equal(po_config_set(&cfg, "SERVER_ADDRESS", "0.0.0.0", err, sizeof err), 0);
  assert_int_equal(po_optimizer_create(&cfg, &opt), 0);
  assert_null(opt->server);
  po_optimizer_destroy(opt);
}

static void test_a_forked_child_can_destroy_its_copy(void **state) {
  (void)state;
  po_report *rep = fixture();
  po_server *srv = serve_fixed(rep, NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    po_server_destroy(srv); /* must neither hang nor crash */
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(http(po_server_port(srv), "GET", "/metrics", NULL), 200); /* parent serves */
  po_server_destroy(srv);
  po_report_destroy(rep);
}

/* ---- the Prometheus text ----------------------------------------------------------------------
 */

/* Every line is a comment (# HELP / # TYPE) or NAME[{labels}] VALUE, and no family is declared
 * twice. */
static void assert_exposition_valid(const char *text) {
  char seen[256][128];
  size_t nseen = 0;
  const char *line = text;
  while (*line) {
    const char *end = strchr(line, '\n');
    assert_non_null(end); /* every line ends with \n */
    if (!strncmp(line, "# TYPE ", 7)) {
      char name[128];
      assert_int_equal(sscanf(line + 7, "%127s", name), 1);
      for (size_t i = 0; i < nseen; i++) assert_string_not_equal(seen[i], name);
      if (nseen < 256) snprintf(seen[nseen++], sizeof seen[0], "%s", name);
    } else if (line[0] != '#') {
      size_t name_len =
          strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
      assert_true(name_len > 0 && !(line[0] >= '0' && line[0] <= '9'));
      const char *p = line + name_len;
      if (*p == '{') {
        int in_quotes = 0;
        for (p++; p < end && (in_quotes || *p != '}'); p++) {
          if (*p == '\\' && in_quotes)
            p++;
          else if (*p == '"')
            in_quotes = !in_quotes;
        }
        assert_true(p < end);
        p++;
      }
      assert_true(*p == ' ');
      char *vend;
      strtod(p + 1, &vend);
      assert_ptr_equal(vend, end);
    }
    line = end + 1;
  }
  assert_true(nseen > 5);
}

static void test_prometheus_text_is_valid_for_hostile_reports(void **state) {
  (void)state;
  po_report *rep = fixture();
  size_t len;
  char *text = po__report_prom_text(rep, &len);
  assert_non_null(text);
  assert_int_equal(strlen(text), len);
  assert_exposition_valid(text);
  assert_non_null(strstr(text, "\nperfopt_gpu_memory_used_bytes{gpu=\"0\"} "));
  assert_non_null(strstr(text, "\nnode_memory_MemAvailable_bytes "));
  free(text);
  po_report_destroy(rep);

  /* names that need escaping, duplicate names, a series with a bad name, invalid UTF-8 */
  const char *json =
      "{\"perfopt_version\":\"0.1.0\",\"host\":{\"hostname\":\"a\\\"b\\\\c\\nd\"},"
      "\"profile\":{\"functions\":[{\"name\":\"f\\\"x\",\"calls\":3,\"total_seconds\":1,"
      "\"self_seconds\":0.5},{\"name\":\"f\\\"x\",\"calls\":2,\"total_seconds\":2,"
      "\"self_seconds\":1},{\"name\":\"bad\xff\",\"calls\":1,\"total_seconds\":0,"
      "\"self_seconds\":0}]},"
      "\"resources\":{\"sample_count\":2,\"series\":[{\"name\":\"9 odd-name!\",\"last\":[1,null]},"
      "{\"name\":\"9 odd-name!\",\"last\":[2]},{\"name\":\"cpu_utilization_ratio\",\"last\":[]}]},"
      "\"cache\":{\"caches\":[{\"name\":\"c\",\"hits\":1},{\"name\":\"c\",\"hits\":2}]}}";
  po_report *hostile = NULL;
  assert_int_equal(po__report_parse(json, strlen(json), "t", &hostile, NULL, 0), 0);
  text = po__report_prom_text(hostile, &len);
  assert_non_null(text);
  assert_exposition_valid(text);
  assert_non_null(strstr(text, "hostname=\"a\\\"b\\\\c\\nd\""));
  assert_non_null(
      strstr(text, "perfopt_function_calls_total{function=\"f\\\"x\"} 5\n")); /* merged */
  assert_non_null(strstr(text, "function=\"bad?\""));
  assert_non_null(strstr(text, "\nperfopt_9_odd_name_ 1\n")); /* sanitized, written once */
  assert_non_null(strstr(text, "perfopt_cache_hits_total{cache=\"c#1\"} 2\n"));
  assert_null(strstr(text, "perfopt_cpu_utilization_ratio ")); /* no value, no sample */
  free(text);
  po_report_destroy(hostile);
}

/* ---- the Pushgateway client against an in-test gateway --------------------------------------- */

typedef struct gateway {
  int listen_fd, port;
  const char *answer;
  char request[1 << 16];
  size_t len;
} gateway;

static void *gateway_main(void *arg) {
  gateway *g = arg;
  int fd = accept(g->listen_fd, NULL, NULL);
  if (fd < 0) return NULL;
  size_t want = 0;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) break;
    ssize_t r = recv(fd, g->request + g->len, sizeof g->request - 1 - g->len, 0);
    if (r <= 0) break;
    g->len += (size_t)r;
    g->request[g->len] = 0;
    const char *hdr_end = strstr(g->request, "\r\n\r\n");
    const char *cl = strcasestr(g->request, "\r\nContent-Length: ");
    if (hdr_end && cl) want = (size_t)(hdr_end + 4 - g->request) + strtoul(cl + 18, NULL, 10);
    if (want && g->len >= want) break;
  }
  send(fd, g->answer, strlen(g->answer), MSG_NOSIGNAL);
  close(fd);
  return NULL;
}

static void gateway_start(gateway *g, pthread_t *t, const char *answer) {
  memset(g, 0, sizeof *g);
  g->answer = answer;
  g->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(g->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(g->listen_fd, 4), 0);
  socklen_t l = sizeof a;
  getsockname(g->listen_fd, (struct sockaddr *)&a, &l);
  g->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(t, NULL, gateway_main, g), 0);
}

static void test_push_puts_the_metrics_under_job_and_instance(void **state) {
  (void)state;
  po_report *rep = fixture();
  gateway g;
  pthread_t t;
  gateway_start(&g, &t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  char url[64], err[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/gw/", g.port);
  assert_int_equal(po_report_push(rep, url, "train/a", "node 7", "tok", err, sizeof err), 0);
  pthread_join(t, NULL);
  close(g.listen_fd);
  /* base64url of "train/a" and "node 7" */
  assert_non_null(strstr(
      g.request, "PUT /gw/metrics/job@base64/dHJhaW4vYQ==/instance@base64/bm9kZSA3 HTTP/1.1"));
  assert_non_null(strstr(g.request, "\r\nAuthorization: Bearer tok\r\n"));
  assert_non_null(strstr(g.request, "\r\nContent-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(g.request, "\r\n\r\n# HELP perfopt_info"));

  gateway_start(&g, &t,
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n\r\nduplicate metric foo");
  snprintf(url, sizeof url, "http://127.0.0.1:%d", g.port);
  assert_int_equal(po_report_push(rep, url, "j", NULL, NULL, err, sizeof err), PO_EIO);
  pthread_join(t, NULL);
  close(g.listen_fd);
  assert_non_null(strstr(g.request, "PUT /metrics/job@base64/ag== HTTP/1.1"));
  assert_null(strstr(g.request, "Authorization"));
  assert_non_null(strstr(err, "400 Bad Request"));
  assert_non_null(strstr(err, "duplicate metric foo"));

  /* refused before connecting */
  assert_int_equal(po_report_push(rep, "https://x/", "j", NULL, NULL, err, sizeof err), PO_EINVAL);
  assert_non_null(strstr(err, "https"));
  assert_int_equal(po_report_push(rep, "ftp://x/", "j", NULL, NULL, err, sizeof err), PO_EINVAL);
  assert_int_equal(po_report_push(rep, "http://x:99999/", "j", NULL, NULL, err, sizeof err),
                   PO_EINVAL);
  assert_int_equal(po_report_push(rep, "http://x/a b", "j", NULL, NULL, err, sizeof err),
                   PO_EINVAL);
  assert_int_equal(po_report_push(rep, "http://x/", "", NULL, NULL, err, sizeof err), PO_EINVAL);
  assert_int_equal(po_report_push(rep, "http://x/", "j", NULL, "a\r\nb", err, sizeof err),
                   PO_EINVAL);
  /* nobody listening */
  gateway_start(&g, &t, "");
  int port = g.port;
  shutdown(g.listen_fd, SHUT_RDWR);
  close(g.listen_fd);
  pthread_join(t, NULL);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
  assert_int_equal(po_report_push(rep, url, "j", NULL, NULL, err, sizeof err), PO_EIO);
  assert_non_null(strstr(err, "cannot connect"));
  po_report_destroy(rep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_paths_serve_metrics_json_and_dashboard),
      cmocka_unit_test(test_the_plain_report_is_unchanged_by_the_hook),
      cmocka_unit_test(test_unknown_paths_and_methods_are_refused),
      cmocka_unit_test(test_bad_input_gets_an_answer_and_the_server_keeps_serving),
      cmocka_unit_test(test_connections_are_bounded_in_count_and_time),
      cmocka_unit_test(test_a_token_is_required_when_set),
      cmocka_unit_test(test_addresses_and_options_are_checked),
      cmocka_unit_test(test_start_survives_every_allocation_failure),
      cmocka_unit_test(test_live_snapshots_are_reused_then_renewed),
      cmocka_unit_test(test_concurrent_requests_during_rebuilds),
      cmocka_unit_test(test_server_enable_starts_with_the_optimizer),
      cmocka_unit_test(test_a_forked_child_can_destroy_its_copy),
      cmocka_unit_test(test_prometheus_text_is_valid_for_hostile_reports),
      cmocka_unit_test(test_push_puts_the_metrics_under_job_and_instance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
