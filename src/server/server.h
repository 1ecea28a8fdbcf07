/* The live endpoint's engine: an HTTP server (libmicrohttpd) over report snapshots. It knows
 * reports, not the optimizer: a live server gets its snapshots from a callback the composition
 * root passes (src/optimizer_server.c). Not installed. */
#ifndef PO__SERVER_H
#define PO__SERVER_H

#include "base/base.h"

/* Builds a fresh report; 0 or a PO_E* code. Called from the server's threads, one at a time. */
typedef int (*po__server_source_fn)(void *user, po_report **out);

/* Starts a server. Exactly one of `live` (with its user pointer) and `fixed` (borrowed: it must
 * outlive the server) is given. Errors as po_server_start. */
int po__server_create(const po_server_options *o, po__server_source_fn live, void *user,
                      const po_report *fixed, po_server **out, char *errbuf, size_t errlen);

#endif
