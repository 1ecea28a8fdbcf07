/* Helpers shared by the cmocka tests. */
#ifndef PO__TEST_SUPPORT_H
#define PO__TEST_SUPPORT_H

#include <cjson/cJSON.h>

#include "perfopt.h"

/* A fresh profile-only report (caller frees with po_report_destroy). Fails the test on error. */
po_report *support_profile_report(void);
/* The functions[] entry named `name` in a report root, or NULL. */
const cJSON *support_find_function(const cJSON *root, const char *name);
/* A number member (fails the test when missing or not a number). */
double support_num(const cJSON *obj, const char *key);
/* A temporary directory path (created), and a file path inside it. */
const char *support_tmpdir(void);
/* Entries of dir whose name starts with prefix. */
size_t support_count_files_with_prefix(const char *dir, const char *prefix);

#endif
