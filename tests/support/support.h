/* Helpers shared by the cmocka tests. */
#ifndef PO__TEST_SUPPORT_H
#define PO__TEST_SUPPORT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <sys/types.h>

#include "perfopt.h"

/* Every wait in a test has a bound: a hung thread, child or condition fails the test after
 * SUPPORT_WAIT_SECONDS instead of hanging `make test` (generous: sanitizers and valgrind are
 * slow, and the machine is shared). */
#define SUPPORT_WAIT_SECONDS 60.0

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

/* Joins t (returning its result); fails the test when it has not ended within `seconds`. */
void *support_join(pthread_t t, double seconds);
/* Waits for the child pid and returns its wait status; kills it and fails the test when it has
 * not exited within `seconds`. */
int support_wait_child(pid_t pid, double seconds);
/* Seconds on the monotonic clock, for deadlines of polling loops. */
double support_now(void);
/* Sleeps about 2 ms between two polls. */
void support_poll_pause(void);

#endif
