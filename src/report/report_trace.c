/* The report's timeline as Chrome Trace Event JSON (Perfetto, chrome://tracing). */
#include "report/report_build.h"

#include <string.h>

static void zone_event(po__jw *w, cJSON *events, const cJSON *e, double pid) {
  cJSON *o = po__j_obj(w, events, NULL);
  po__j_str(w, o, "name", po__j_getstr(e, "name"));
  po__j_str(w, o, "ph", "X");
  po__j_num(w, o, "ts", po__j_getnum(e, "start_seconds") * 1e6);
  po__j_num(w, o, "dur", po__j_getnum(e, "dur_seconds") * 1e6);
  po__j_num(w, o, "pid", pid);
  po__j_num(w, o, "tid", po__j_getnum(e, "tid"));
}

int po_report_save_trace(const po_report *rep, const char *path, char *errbuf, size_t errlen) {
  const cJSON *root = po_report_json(rep);
  if (!root || !path) return po__errf(PO_EINVAL, errbuf, errlen, "no report or path given");
  po__jw w = {0};
  cJSON *trace = cJSON_CreateObject();
  cJSON *events = po__j_arr(&w, trace, "traceEvents");
  double pid = po__j_getnum(po__j_get(root, "run"), "pid");
  const cJSON *tl = po__j_get(po__j_get(root, "profile"), "timeline");
  const cJSON *e;
  const cJSON *list = po__j_get(tl, "events");
  cJSON_ArrayForEach(e, list) {
    zone_event(&w, events, e, pid);
  }
  po__j_str(&w, trace, "displayTimeUnit", "ns");
  char *s = !w.err && trace ? cJSON_PrintUnformatted(trace) : NULL;
  cJSON_Delete(trace);
  if (!s) return po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", path);
  int rc = po__write_file_atomic(path, s, strlen(s), errbuf, errlen);
  free(s);
  return rc;
}
