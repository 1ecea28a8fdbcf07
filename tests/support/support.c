#include "support.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"

/* cJSON allocates through the library's door too, so po__fault_fail_at covers the report
 * builder, config parsing and every JSON output (the shipped library leaves cJSON's hooks alone).
 */
static void *hook_malloc(size_t n) {
  return po__test_malloc(n);
}

static void hook_free(void *p) {
  free(p);
}

__attribute__((constructor)) static void install_cjson_hooks(void) {
  cJSON_Hooks h = {hook_malloc, hook_free};
  cJSON_InitHooks(&h);
}

po_report *support_profile_report(void) {
  po_report *rep = NULL;
  assert_int_equal(po_report_create(NULL, &rep), 0);
  assert_non_null(rep);
  return rep;
}

const cJSON *support_find_function(const cJSON *root, const char *name) {
  const cJSON *funcs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "profile"), "functions");
  const cJSON *f;
  cJSON_ArrayForEach(f, funcs) {
    const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"));
    if (n && !strcmp(n, name)) return f;
  }
  return NULL;
}

double support_num(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItem(obj, key);
  if (!cJSON_IsNumber(v)) fail_msg("missing number '%s'", key);
  return v->valuedouble;
}

const char *support_tmpdir(void) {
  static char dir[64];
  if (!dir[0]) {
    strcpy(dir, "/tmp/perfopt-test-XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp failed");
  }
  return dir;
}

size_t support_count_files_with_prefix(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d) fail_msg("opendir %s failed", dir);
  size_t n = 0, plen = strlen(prefix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += strncmp(e->d_name, prefix, plen) == 0;
  closedir(d);
  return n;
}
