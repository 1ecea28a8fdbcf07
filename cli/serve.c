/* perfopt serve: serves a saved report over HTTP (/metrics, /report.json, the dashboard) until
 * SIGINT or SIGTERM. */
#include "cli.h"
#include "perfopt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt serve REPORT.json [--listen ADDR:PORT] [--allow-remote] [--refresh S]\n"
          "Serves the report at http://ADDR:PORT/ (default 127.0.0.1:9473; port 0 picks a free\n"
          "one): /metrics (Prometheus), /report.json, / (the HTML report). A non-loopback\n"
          "ADDR needs --allow-remote. With PERFOPT_TOKEN set, requests need\n"
          "'Authorization: Bearer $PERFOPT_TOKEN'. Ctrl-C stops.\n");
}

/* Prints the address a person can open (IPv6 in brackets). */
static void say_url(const char *addr, int port) {
  int v6 = strchr(addr, ':') != NULL;
  printf("perfopt serve: serving on http://%s%s%s:%d/ (/metrics, /report.json); Ctrl-C stops\n",
         v6 ? "[" : "", addr, v6 ? "]" : "", port);
  fflush(stdout);
}

int po_cli_serve(int argc, char **argv) {
  const char *in = NULL;
  char addr[64] = "127.0.0.1";
  po_server_options o = {0};
  o.port = 9473;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
      if (po_cli_parse_listen("serve", argv[++i], addr, sizeof addr, &o.port) != 0) return 2;
    } else if (!strcmp(argv[i], "--allow-remote")) {
      o.allow_remote = 1;
    } else if (!strcmp(argv[i], "--refresh") && i + 1 < argc) {
      char *end;
      long s = strtol(argv[++i], &end, 10);
      if (*end || s < 1 || s > 86400) {
        fprintf(stderr, "perfopt serve: --refresh takes seconds from 1 to 86400, not '%s'\n",
                argv[i]);
        return 2;
      }
      o.dashboard_refresh_s = (int)s;
    } else if (argv[i][0] == '-' || in) {
      fprintf(stderr, "perfopt serve: unexpected argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    } else {
      in = argv[i];
    }
  }
  if (!in) {
    fprintf(stderr, "perfopt serve: no report file given\n");
    usage(stderr);
    return 2;
  }
  o.address = addr;
  po_report *rep;
  char err[512];
  if (po_report_load(in, &rep, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt serve: %s\n", err);
    return 1;
  }
  /* Signals are taken by sigwait below: blocked here, before the server's threads inherit the
   * mask, so none of them is interrupted. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  po_server *srv;
  if (po_server_start_report(rep, &o, &srv, err, sizeof err) != 0) {
    fprintf(stderr, "perfopt serve: %s\n", err);
    po_report_destroy(rep);
    return strstr(err, "allow_remote") || strstr(err, "not a numeric") ? 2 : 1;
  }
  if (strncmp(addr, "127.", 4) != 0 && strcmp(addr, "::1") != 0) {
    const char *token = getenv("PERFOPT_TOKEN");
    fprintf(stderr,
            "perfopt serve: warning: listening on %s: the report is reachable from other "
            "machines%s\n",
            addr, token && *token ? "" : " by anyone (set PERFOPT_TOKEN to require a token)");
  }
  say_url(addr, po_server_port(srv));
  int sig = 0;
  sigwait(&stop, &sig);
  po_server_destroy(srv);
  po_report_destroy(rep);
  return 0;
}
