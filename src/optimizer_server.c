/* The live endpoint of an optimizer: po_server_start serves its reports, and SERVER_ENABLE starts
 * one with the optimizer. The server engine (src/server/) knows reports, not optimizers: it gets
 * each snapshot through the callback passed here. */
#include "optimizer.h"

#include "server/server.h"

#include <stdio.h>

static int live_report(void *user, po_report **out) {
  return po__optimizer_report(user, 0, out);
}

int po_server_start(po_optimizer *opt, const po_server_options *o, po_server **out, char *errbuf,
                    size_t errlen) {
  if (!out) return po__errf(PO_EINVAL, errbuf, errlen, "out is NULL");
  *out = NULL;
  opt = po__opt_or_default(opt);
  if (!opt) return po__errf(PO_ESTATE, errbuf, errlen, "no optimizer: %s", po_last_error());
  return po__server_create(o, live_report, opt, NULL, out, errbuf, errlen);
}

void po__optimizer_serve(po_optimizer *opt) {
  po_server_options o = {.address = opt->cfg.server_address,
                         .port = (int)opt->cfg.server_port,
                         .allow_remote = opt->cfg.server_allow_remote};
  char err[256];
  int rc = po__server_create(&o, live_report, opt, NULL, &opt->server, err, sizeof err);
  if (rc == 0) {
    po__log(2, "perfopt: live endpoint at http://%s:%d/", opt->cfg.server_address,
            po_server_port(opt->server));
    return;
  }
  po__log(1, "perfopt: SERVER_ENABLE: the live endpoint was not started: %s", err);
  /* The user asked for it through the environment or a file, and there is no caller to return
   * the error to: without a log callback, say it rather than lose it (as PERFOPT_OUT does). */
  if (!po__log_has_callback())
    fprintf(stderr, "perfopt: SERVER_ENABLE: the live endpoint was not started: %s\n", err);
}
