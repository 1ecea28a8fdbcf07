/* The JSON keys src/report/ writes are exactly the ones docs/formats.md documents.
 *
 * A fully populated report (tests/support/populated.c: every section non-empty, every optional
 * key present) and a `perfopt sysinfo` report are walked for their key paths ("memory",
 * "memory.cleanups", "memory.cleanups[].type"; array elements are "[]", arrays of scalars are
 * leaves); docs/formats.md lists the documented paths in tables that follow a
 * `<!-- keys: report -->` or `<!-- keys: sysinfo -->` marker (both words for a table shared by
 * the two), one path per row in the first cell. The keys of run.config are the configuration
 * keys (po_config_key_name), checked against that list instead.
 *
 * PERFOPT_PRINT_KEYS=1 prints the paths each report has (to update the document). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perfopt.h"
#include "support/populated.h"

#define MAX_KEYS 1024
#define KEY_LEN 160

typedef struct keyset {
  size_t n;
  char key[MAX_KEYS][KEY_LEN];
} keyset;

static int has(const keyset *s, const char *k) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->key[i], k)) return 1;
  return 0;
}

static void add(keyset *s, const char *k) {
  if (has(s, k)) return;
  assert_true(s->n < MAX_KEYS);
  assert_true(strlen(k) < KEY_LEN);
  strcpy(s->key[s->n++], k);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

/* Every member path under `prefix` (run.config's members go to cfg instead). */
static void collect(const cJSON *node, const char *prefix, keyset *keys, keyset *cfg) {
  char path[KEY_LEN];
  if (cJSON_IsArray(node)) {
    const cJSON *e;
    cJSON_ArrayForEach(e, node) {
      if (!cJSON_IsObject(e)) continue;
      snprintf(path, sizeof path, "%s[]", prefix);
      collect(e, path, keys, cfg);
    }
    return;
  }
  if (!cJSON_IsObject(node)) return;
  const cJSON *m;
  cJSON_ArrayForEach(m, node) {
    if (!strcmp(prefix, "run.config")) {
      add(cfg, m->string);
      continue;
    }
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", m->string);
    add(keys, path);
    collect(m, path, keys, cfg);
  }
}

/* The documented paths of tables marked for `which` ("report" or "sysinfo"). */
static void documented(const char *which, keyset *out) {
  FILE *f = fopen("docs/formats.md", "r");
  assert_non_null(f);
  char line[1024];
  int in_table = 0, marked = 0;
  size_t tables = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "<!-- keys:", 10)) {
      marked = strstr(line, which) != NULL;
      in_table = 0;
      continue;
    }
    if (line[0] != '|') {
      if (in_table) marked = 0; /* a marker covers the one table that follows it */
      in_table = 0;
      continue;
    }
    if (!marked) continue;
    if (!in_table) tables++;
    in_table = 1;
    /* | `path` | ... : the first cell's code span */
    const char *a = strchr(line, '`');
    const char *bar = strchr(line + 1, '|');
    if (!a || (bar && a > bar)) continue; /* the header and the separator row */
    const char *b = strchr(a + 1, '`');
    assert_non_null(b);
    char key[KEY_LEN];
    snprintf(key, sizeof key, "%.*s", (int)(b - a - 1), a + 1);
    add(out, key);
  }
  fclose(f);
  assert_true(tables > 0);
}

static void print_keys(const char *what, keyset *s) {
  if (!getenv("PERFOPT_PRINT_KEYS")) return;
  qsort(s->key, s->n, KEY_LEN, cmp_str);
  printf("# %s\n", what);
  for (size_t i = 0; i < s->n; i++) printf("%s\n", s->key[i]);
}

/* Prints every key written but not documented and every key documented but not written; returns
 * how many there are. */
static size_t mismatches(const char *what, const keyset *written, const keyset *docs) {
  size_t bad = 0;
  for (size_t i = 0; i < written->n; i++)
    if (!has(docs, written->key[i])) {
      fprintf(stderr, "%s: written, not documented in docs/formats.md: %s\n", what,
              written->key[i]);
      bad++;
    }
  for (size_t i = 0; i < docs->n; i++)
    if (!has(written, docs->key[i])) {
      fprintf(stderr, "%s: documented, not written: %s\n", what, docs->key[i]);
      bad++;
    }
  return bad;
}

static void test_run_report_keys_are_the_documented_ones(void **state) {
  (void)state;
  po_optimizer *opt = support_populated_optimizer();
  po_report *rep = NULL;
  assert_int_equal(po_report_create(opt, &rep), 0);
  static keyset written, cfg, docs;
  collect(po_report_json(rep), "", &written, &cfg);
  po_report_destroy(rep);
  support_populated_destroy(opt);
  print_keys("report", &written);
  documented("report", &docs);
  assert_int_equal(mismatches("report", &written, &docs), 0);
  /* Positive control: one key written but not documented, one documented but not written. */
  static keyset more;
  more = written;
  add(&more, "memory.not_a_key");
  assert_int_equal(mismatches("control", &more, &docs), 1);
  assert_true(has(&docs, "memory.cleanups[].type") && has(&docs, "gpu.devices[].processes[].pid"));
  more.n = 0;
  for (size_t i = 0; i < written.n; i++)
    if (strcmp(written.key[i], "resources.events[].dropped_actions")) add(&more, written.key[i]);
  assert_int_equal(mismatches("control", &more, &docs), 1);
  /* run.config holds every configuration key, and only those. */
  assert_int_equal(cfg.n, po_config_key_count());
  for (size_t i = 0; i < po_config_key_count(); i++) assert_true(has(&cfg, po_config_key_name(i)));
}

static void test_sysinfo_report_keys_are_the_documented_ones(void **state) {
  (void)state;
  po_config c;
  support_fake_gpu_config(&c);
  /* A fake root with whole disks, partitions and a cgroup: the same keys on every machine. */
  snprintf(c.proc_root, sizeof c.proc_root, "tests/fakes/proc/container");
  po_report *rep = NULL;
  assert_int_equal(po_report_create_sysinfo(&c, 20, &rep), 0);
  static keyset written, cfg, docs;
  collect(po_report_json(rep), "", &written, &cfg);
  po_report_destroy(rep);
  assert_int_equal(cfg.n, 0);
  print_keys("sysinfo", &written);
  documented("sysinfo", &docs);
  assert_int_equal(mismatches("sysinfo", &written, &docs), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_run_report_keys_are_the_documented_ones),
      cmocka_unit_test(test_sysinfo_report_keys_are_the_documented_ones),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
