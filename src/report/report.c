/* report: the one report model (a cJSON tree) that every output reads, built from typed
 * snapshots (report_build.h), and its JSON file form. */
#include "report/advisor.h"
#include "report/report_build.h"

#include <stdlib.h>
#include <string.h>

struct po_report {
  cJSON *root;
};

#define MAX_REPORT_FILE (256u << 20)

po_report *po__report_wrap(cJSON *root) {
  po_report *rep = root ? po__calloc(1, sizeof *rep) : NULL;
  if (!rep) {
    cJSON_Delete(root);
    return NULL;
  }
  rep->root = root;
  return rep;
}

int po__report_create_from(const po__report_sources *src, po_report **out) {
  *out = NULL;
  po__jw w = {0};
  cJSON *root = cJSON_CreateObject();
  if (!root) return PO_ENOMEM;
  po__j_str(&w, root, "perfopt_version", PO_VERSION_STRING);
  po__report_host(&w, root, src->hw);
  po__report_run(&w, root, src);
  po__report_profile(&w, root, src->profile);
  po__report_memory(&w, root, src->sampler, src->memory);
  po__report_autopilot(&w, cJSON_GetObjectItemCaseSensitive(root, "memory"), src->sampler,
                       src->flight);
  po__report_resources(&w, root, src->sampler, src->memory);
  const po__sampler_snapshot *s = src->sampler;
  po__report_gpu(&w, root, s ? s->gpus : NULL, s ? s->gpu_count : 0, s ? s->gpus_dropped : 0,
                 s ? s->gpu_reason : "GPUs not monitored");
  po__report_cache(&w, root, src->caches, src->ncaches);
  if (src->flight && src->flight->is_record) po__report_flight(&w, root, src->sampler, src->flight);
  po__j_arr(&w, root, "suggestions");
  if (!w.err) w.err = po__advise(root);
  if (w.err) {
    cJSON_Delete(root);
    return w.err;
  }
  *out = po__report_wrap(root);
  return *out ? 0 : PO_ENOMEM;
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
  *out = po__report_wrap(root);
  return *out ? 0 : po__errf(PO_ENOMEM, errbuf, errlen, "%s: out of memory", what);
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

int po_report_advise(po_report *rep) {
  return rep ? po__advise(rep->root) : PO_EINVAL;
}

void po_report_destroy(po_report *rep) {
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
  int rc = po__write_file_atomic(path, s, strlen(s), errbuf, errlen);
  free(s);
  return rc;
}

int po__report_set_profile(po_report *rep, const po__profile_snapshot *p,
                           const po__report_sources *src) {
  po__jw w = {0};
  cJSON *tmp = cJSON_CreateObject();
  if (!tmp) return PO_ENOMEM;
  po__report_profile(&w, tmp, p);
  cJSON *run = cJSON_GetObjectItemCaseSensitive(rep->root, "run");
  if (run) {
    double start = po__j_getnum(run, "start_unix_seconds");
    cJSON_DeleteItemFromObjectCaseSensitive(run, "wall_seconds");
    cJSON_DeleteItemFromObjectCaseSensitive(run, "report_unix_seconds");
    po__j_num(&w, run, "report_unix_seconds", start + src->wall_seconds);
    po__j_num(&w, run, "wall_seconds", src->wall_seconds);
  }
  if (w.err) {
    cJSON_Delete(tmp);
    return w.err;
  }
  cJSON *prof = cJSON_DetachItemFromObjectCaseSensitive(tmp, "profile");
  cJSON_Delete(tmp);
  if (!cJSON_ReplaceItemInObjectCaseSensitive(rep->root, "profile", prof)) {
    cJSON_Delete(prof);
    return PO_ENOMEM;
  }
  return 0;
}
