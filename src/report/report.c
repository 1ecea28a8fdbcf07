/* report: the one report model (a cJSON tree) that every output reads, its JSON file form, and
 * the end-of-process report for PERFOPT_OUT. */
#include "optimizer.h"
#include "profile/profile.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

struct po_report {
  cJSON *root;
};

#define MAX_REPORT_FILE (256u << 20)

static int add_host(po_optimizer *opt, cJSON *root) {
  cJSON *host = cJSON_AddObjectToObject(root, "host");
  if (!host) return PO_ENOMEM;
  char name[256] = "";
  if (gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
  cJSON_AddStringToObject(host, "hostname", name);
  struct utsname u;
  if (uname(&u) == 0) {
    cJSON_AddStringToObject(host, "os", u.sysname);
    cJSON_AddStringToObject(host, "kernel", u.release);
    cJSON_AddStringToObject(host, "machine", u.machine);
  }
  cJSON_AddNumberToObject(host, "cpus_online", (double)sysconf(_SC_NPROCESSORS_ONLN));
  return po__report_add_host(opt, host);
}

static void add_cmdline(cJSON *run) {
  char *text = NULL;
  size_t len = 0;
  if (po__read_file("/proc/self/cmdline", 1 << 16, &text, &len, NULL, 0) != 0) return;
  cJSON *argv = cJSON_AddArrayToObject(run, "argv");
  for (size_t i = 0; argv && i < len; i += strlen(text + i) + 1)
    cJSON_AddItemToArray(argv, cJSON_CreateString(text + i));
  free(text);
}

static int add_run(po_optimizer *opt, cJSON *root) {
  cJSON *run = cJSON_AddObjectToObject(root, "run");
  if (!run) return PO_ENOMEM;
  double now = po__unix_seconds();
  double elapsed = po__run_seconds();
  cJSON_AddNumberToObject(run, "pid", (double)getpid());
  cJSON_AddNumberToObject(run, "start_unix_seconds", now - elapsed);
  cJSON_AddNumberToObject(run, "report_unix_seconds", now);
  cJSON_AddNumberToObject(run, "wall_seconds", elapsed);
  add_cmdline(run);
  if (opt) {
    char *cfg = po_config_to_json(&opt->cfg);
    cJSON *c = cfg ? cJSON_Parse(cfg) : NULL;
    free(cfg);
    if (c) cJSON_AddItemToObject(run, "config", c);
  }
  return 0;
}

int po_report_build(po_optimizer *opt, po_report **out) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  po_report *rep = calloc(1, sizeof *rep);
  cJSON *root = cJSON_CreateObject();
  if (!rep || !root) {
    free(rep);
    cJSON_Delete(root);
    return PO_ENOMEM;
  }
  int rc = cJSON_AddStringToObject(root, "perfopt_version", PO_VERSION_STRING) ? 0 : PO_ENOMEM;
  if (!rc) rc = add_host(opt, root);
  if (!rc) rc = add_run(opt, root);
  if (!rc) rc = po__report_add_profile(root);
  if (!rc && opt) rc = po__report_add_memory(opt, root);
  if (!rc && opt) rc = po__report_add_resources(opt, root);
  if (!rc && opt) rc = po__report_add_gpu(opt, root);
  if (!rc && opt) rc = po__report_add_cache(opt, root);
  if (!rc && !cJSON_AddArrayToObject(root, "suggestions")) rc = PO_ENOMEM;
  if (rc) {
    cJSON_Delete(root);
    free(rep);
    return rc;
  }
  rep->root = root;
  *out = rep;
  return 0;
}

int po__report_parse(const char *text, size_t len, const char *what, po_report **out, char *errbuf,
                     size_t errlen) {
  *out = NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    return po__errf(PO_EPARSE, errbuf, errlen, "%s: not valid JSON (near byte %zu)", what, at);
  }
  if (!cJSON_IsObject(root) || !cJSON_IsString(cJSON_GetObjectItem(root, "perfopt_version"))) {
    cJSON_Delete(root);
    return po__errf(PO_EPARSE, errbuf, errlen,
                    "%s: not a perfopt report (no \"perfopt_version\" string)", what);
  }
  po_report *rep = calloc(1, sizeof *rep);
  if (!rep) {
    cJSON_Delete(root);
    return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", what);
  }
  rep->root = root;
  *out = rep;
  return 0;
}

int po_report_load(const char *path, po_report **out, char *errbuf, size_t errlen) {
  if (!path || !out) return po__errf(PO_EINVAL, errbuf, errlen, "no report path given");
  *out = NULL;
  char *text;
  size_t len;
  int rc = po__read_file(path, MAX_REPORT_FILE, &text, &len, errbuf, errlen);
  if (rc) return rc;
  rc = po__report_parse(text, len, path, out, errbuf, errlen);
  free(text);
  return rc;
}

void po_report_free(po_report *rep) {
  if (!rep) return;
  cJSON_Delete(rep->root);
  free(rep);
}

const struct cJSON *po_report_json(const po_report *rep) {
  return rep ? rep->root : NULL;
}

char *po_report_to_string(const po_report *rep, int pretty) {
  if (!rep) return NULL;
  return pretty ? cJSON_Print(rep->root) : cJSON_PrintUnformatted(rep->root);
}

int po_report_save_json(const po_report *rep, const char *path, char *errbuf, size_t errlen) {
  if (!rep || !path) return po__errf(PO_EINVAL, errbuf, errlen, "no report or path given");
  char *s = po_report_to_string(rep, 1);
  if (!s) return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
  size_t len = strlen(s);
  int rc = po__write_file_atomic(path, s, len, errbuf, errlen);
  free(s);
  return rc;
}

int po_get_profiling_report(po_report **out) {
  return po_report_build(po_get_optimizer(), out);
}

int po_optimizer_save_report(po_optimizer *opt, const char *path) {
  po_report *rep;
  int rc = po_report_build(opt, &rep);
  if (rc) return rc;
  char err[512];
  rc = po_report_save_json(rep, path, err, sizeof err);
  if (rc) po__log(0, "%s", err);
  po_report_free(rep);
  return rc;
}

int po_save_profiling_report(const char *path) {
  return po_optimizer_save_report(po_get_optimizer(), path);
}

int po_profile_save_json(const char *path) {
  return po_optimizer_save_report(NULL, path);
}

int po_profile_report_text(FILE *out, po_sort sort) {
  if (!out) return PO_EINVAL;
  po_report *rep;
  int rc = po_report_build(NULL, &rep);
  if (rc) return rc;
  rc = po_report_write_text(rep, out, sort, 25);
  po_report_free(rep);
  return rc;
}

/* ---- Chrome Trace Event format ---------------------------------------------------------- */

int po_profile_save_chrome_trace(const char *path) {
  po_report *rep;
  int rc = po_report_build(NULL, &rep);
  if (rc) return rc;
  cJSON *trace = cJSON_CreateObject();
  cJSON *events = trace ? cJSON_AddArrayToObject(trace, "traceEvents") : NULL;
  const cJSON *tl = cJSON_GetObjectItem(cJSON_GetObjectItem(rep->root, "profile"), "timeline");
  const cJSON *e;
  double pid = (double)getpid();
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(tl, "events")) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !events) {
      cJSON_Delete(o);
      break;
    }
    cJSON_AddStringToObject(o, "name", cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")));
    cJSON_AddStringToObject(o, "ph", "X");
    cJSON_AddNumberToObject(o, "ts",
                            cJSON_GetNumberValue(cJSON_GetObjectItem(e, "start_seconds")) * 1e6);
    cJSON_AddNumberToObject(o, "dur",
                            cJSON_GetNumberValue(cJSON_GetObjectItem(e, "dur_seconds")) * 1e6);
    cJSON_AddNumberToObject(o, "pid", pid);
    cJSON_AddNumberToObject(o, "tid", cJSON_GetNumberValue(cJSON_GetObjectItem(e, "tid")));
    cJSON_AddItemToArray(events, o);
  }
  if (trace) cJSON_AddStringToObject(trace, "displayTimeUnit", "ns");
  char *s = trace ? cJSON_PrintUnformatted(trace) : NULL;
  cJSON_Delete(trace);
  po_report_free(rep);
  if (!s) return PO_ENOMEM;
  char err[512];
  rc = po__write_file_atomic(path, s, strlen(s), err, sizeof err);
  if (rc) po__log(0, "%s", err);
  free(s);
  return rc;
}
