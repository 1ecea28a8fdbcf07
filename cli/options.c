/* Option parsing shared by the subcommands: every numeric option goes through po_cli_parse_long,
 * so `--top -1`, `--top abc`, `--window ""` are usage errors (exit 2) everywhere. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int po_cli_parse_sort(const char *cmd, const char *text, po_sort *out) {
  static const struct {
    const char *name;
    po_sort sort;
  } sorts[] = {{"total", PO_SORT_TOTAL}, {"self", PO_SORT_SELF}, {"calls", PO_SORT_CALLS}};
  for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
    if (!strcmp(text, sorts[i].name)) {
      *out = sorts[i].sort;
      return 0;
    }
  }
  po_cli_error(cmd, "--sort must be total, self or calls, not '%s'", text);
  return -1;
}

int po_cli_parse_long(const char *cmd, const char *opt, const char *text, long lo, long hi,
                      const char *unit, long *out) {
  const char *p = text + (text[0] == '-');
  int ok = *p != '\0';
  for (; *p; p++) ok &= *p >= '0' && *p <= '9';
  long v = 0;
  if (ok) {
    errno = 0;
    v = strtol(text, NULL, 10);
    ok = errno == 0 && v >= lo && v <= hi;
  }
  if (!ok) {
    po_cli_error(cmd, "%s must be an integer from %ld to %ld%s%s%s, not '%s'", opt, lo, hi,
                 unit ? " (" : "", unit ? unit : "", unit ? ")" : "", text);
    return -1;
  }
  *out = v;
  return 0;
}

const char *po_cli_value(const char *cmd, int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    po_cli_error(cmd, "%s needs a value", argv[*i]);
    return NULL;
  }
  return argv[++*i];
}
int po_cli_parse_listen(const char *cmd, const char *text, char *addr, size_t addr_len, int *port) {
  const char *colon = strrchr(text, ':');
  const char *host = text, *port_text = text;
  size_t host_len = 0;
  if (text[0] == '[') { /* [IPv6]:PORT */
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':') goto bad;
    host = text + 1;
    host_len = (size_t)(close - host);
    port_text = close + 2;
  } else if (colon && strchr(text, ':') == colon) { /* ADDR:PORT */
    host_len = (size_t)(colon - text);
    port_text = colon + 1;
  } else if (colon) { /* a bare IPv6 address has no port */
    goto bad;
  }
  char *end;
  long p = strtol(port_text, &end, 10);
  if (*port_text < '0' || *port_text > '9' || *end || p > 65535 || host_len >= addr_len) goto bad;
  if (host_len) {
    memcpy(addr, host, host_len);
    addr[host_len] = 0;
  } else {
    snprintf(addr, addr_len, "127.0.0.1");
  }
  *port = (int)p;
  return 0;
bad:
  fprintf(stderr,
          "perfopt %s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:9473, [::1]:9473, 0.0.0.0:9473, or "
          "a port alone for 127.0.0.1)\n",
          cmd, text);
  return -1;
}
