/* Streaming CSV reader: quotes, CRLF, column selection, bad rows skipped and counted with the first
 * bad line, errors that name the file or column, bounded buffers, number parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perfopt.h"

static po_csv *open_mem(const char *text, size_t buf) {
  po_csv_options o = {0};
  o.buffer_bytes = buf;
  po_csv *c = NULL;
  char err[200];
  assert_int_equal(po_csv_create_mem(text, strlen(text), &o, &c, err, sizeof err), 0);
  return c;
}

static void select_names(po_csv *c, const char *a, const char *b) {
  size_t cols[2];
  int ia = po_csv_find_column(c, a, NULL, 0), ib = po_csv_find_column(c, b, NULL, 0);
  assert_true(ia >= 0 && ib >= 0);
  cols[0] = (size_t)ia;
  cols[1] = (size_t)ib;
  assert_int_equal(po_csv_select(c, cols, 2), 0);
}

static void test_reads_header_quotes_and_crlf(void **state) {
  (void)state;
  const char *text =
      "name,\"va\"\"l\",x\r\n"
      "\"a, b\",1.5,10\r\n"
      "\"multi\nline\",\"2\",20\r\n"
      "c,-3e2,30";
  po_csv *c = open_mem(text, 0);
  assert_int_equal(po_csv_column_count(c), 3);
  assert_string_equal(po_csv_column_name(c, 1), "va\"l");
  select_names(c, "x", "va\"l");
  double v[2];
  assert_int_equal(po_csv_next(c, v), 1);
  assert_true(v[0] == 10 && v[1] == 1.5);
  assert_int_equal(po_csv_next(c, v), 1);
  assert_true(v[0] == 20 && v[1] == 2);
  assert_int_equal(po_csv_next(c, v), 1);
  assert_true(v[0] == 30 && v[1] == -300);
  assert_int_equal(po_csv_next(c, v), 0);
  po_csv_stats st;
  po_csv_get_stats(c, &st);
  assert_int_equal(st.rows, 3);
  assert_int_equal(st.bad_rows, 0);
  assert_int_equal(st.bytes, strlen(text));
  po_csv_destroy(c);
}

static void test_select_by_index_and_case_insensitive_name(void **state) {
  (void)state;
  po_csv *c = open_mem("Date,Close\n2024-01-01,5\n", 0);
  assert_int_equal(po_csv_find_column(c, "close", NULL, 0), 1);
  assert_int_equal(po_csv_find_column(c, "1", NULL, 0), 1);
  assert_int_equal(po_csv_find_column(c, "0", NULL, 0), 0);
  po_csv_destroy(c);
}

static void test_bad_cells_are_skipped_and_counted_with_first_line(void **state) {
  (void)state;
  const char *text =
      "t,v\n"
      "1,10\n"
      "2,\n"     /* line 3: empty */
      "3,abc\n"  /* line 4: not a number */
      "4\n"      /* line 5: missing */
      "\n"       /* blank: ignored */
      "5,NULL\n" /* line 7 */
      "6,60\n";
  po_csv *c = open_mem(text, 0);
  select_names(c, "t", "v");
  double v[2];
  int rows = 0;
  while (po_csv_next(c, v) == 1) rows++;
  assert_int_equal(rows, 2);
  po_csv_stats st;
  po_csv_get_stats(c, &st);
  assert_int_equal(st.rows, 2);
  assert_int_equal(st.bad_rows, 4);
  assert_int_equal(st.first_bad_line, 3);
  assert_non_null(strstr(st.first_bad_reason, "'v'"));
  assert_non_null(strstr(st.first_bad_reason, "empty"));
  po_csv_destroy(c);

  c = open_mem("t,v\n1,x1\n2,2\n", 0);
  select_names(c, "t", "v");
  while (po_csv_next(c, v) == 1) {
  }
  po_csv_get_stats(c, &st);
  assert_int_equal(st.first_bad_line, 2);
  assert_non_null(strstr(st.first_bad_reason, "not a number: \"x1\""));
  po_csv_destroy(c);
}

static void test_missing_file_names_the_path(void **state) {
  (void)state;
  po_csv *c = NULL;
  char err[256] = "";
  assert_int_equal(po_csv_create("/nonexistent/dir/data.csv", NULL, &c, err, sizeof err), PO_ENOENT);
  assert_null(c);
  assert_non_null(strstr(err, "/nonexistent/dir/data.csv"));
}

static void test_missing_column_names_it_and_lists_columns(void **state) {
  (void)state;
  po_csv *c = open_mem("unix,close\n1,2\n", 0);
  char err[256] = "";
  assert_int_equal(po_csv_find_column(c, "price", err, sizeof err), PO_ENOENT);
  assert_non_null(strstr(err, "'price'"));
  assert_non_null(strstr(err, "unix, close"));
  assert_int_equal(po_csv_find_column(c, "7", err, sizeof err), PO_ENOENT);
  po_csv_destroy(c);
}

/* A file read through a tiny buffer gives exactly what one big read gives. */
static void test_small_buffer_streams_the_same_rows(void **state) {
  (void)state;
  char path[] = "/tmp/po_test_csv_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "a,b,c\n");
  for (int i = 0; i < 5000; i++) {
    if (i % 7 == 0)
      fprintf(f, "\"%d\",\"x,y\",%d.25\r\n", i, i);
    else
      fprintf(f, "%d,z,%d.25\n", i, i);
  }
  fclose(f);
  po_csv_options o = {0};
  o.buffer_bytes = 64; /* smaller than a few rows */
  po_csv *c;
  char err[200];
  assert_int_equal(po_csv_create(path, &o, &c, err, sizeof err), 0);
  size_t cols[2] = {2, 0};
  assert_int_equal(po_csv_select(c, cols, 2), 0);
  double v[2];
  int i = 0;
  while (po_csv_next(c, v) == 1) {
    assert_true(v[1] == (double)i);
    assert_true(v[0] == (double)i + 0.25);
    i++;
  }
  assert_int_equal(i, 5000);
  po_csv_destroy(c);
  unlink(path);
}

static void test_row_longer_than_buffer_is_skipped(void **state) {
  (void)state;
  char path[] = "/tmp/po_test_csv_XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "a,b\n1,2\n");
  fprintf(f, "3,");
  for (int i = 0; i < 500; i++) fputc('9', f);
  fprintf(f, "\n5,6\n");
  fclose(f);
  po_csv_options o = {0};
  o.buffer_bytes = 128;
  po_csv *c;
  assert_int_equal(po_csv_create(path, &o, &c, NULL, 0), 0);
  size_t cols[2] = {0, 1};
  po_csv_select(c, cols, 2);
  double v[2];
  assert_int_equal(po_csv_next(c, v), 1);
  assert_true(v[0] == 1);
  assert_int_equal(po_csv_next(c, v), 1);
  assert_true(v[0] == 5 && v[1] == 6);
  assert_int_equal(po_csv_next(c, v), 0);
  po_csv_stats st;
  po_csv_get_stats(c, &st);
  assert_int_equal(st.bad_rows, 1);
  assert_int_equal(st.first_bad_line, 3);
  po_csv_destroy(c);
  unlink(path);
}

static int parse_day(const char *s, size_t len, double *out, void *user) {
  (void)user;
  int y, m, d;
  char tmp[16];
  if (len >= sizeof tmp) return -1;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  if (sscanf(tmp, "%d-%d-%d", &y, &m, &d) != 3) return -1;
  *out = y * 10000 + m * 100 + d;
  return 0;
}

static void test_fallback_parser_for_dates(void **state) {
  (void)state;
  po_csv *c = open_mem("Date,Close\n2024-01-02,5\nbad,6\n", 0);
  size_t cols[2] = {0, 1};
  po_csv_select(c, cols, 2);
  assert_int_equal(po_csv_set_parser(c, 0, parse_day, NULL), 0);
  double v[2];
  assert_int_equal(po_csv_next(c, v), 1);
  assert_true(v[0] == 20240102 && v[1] == 5);
  assert_int_equal(po_csv_next(c, v), 0);
  po_csv_stats st;
  po_csv_get_stats(c, &st);
  assert_int_equal(st.bad_rows, 1);
  po_csv_destroy(c);
}

static void test_parse_double_matches_strtod(void **state) {
  (void)state;
  const char *ok[] = {"0",
                      "1.5",
                      "-2e3",
                      "+7",
                      ".5",
                      "5.",
                      "1623283200000",
                      "37388.05000000",
                      "1502949600.0",
                      "1e-5",
                      "123456789012345678",
                      "1.7976931348623157e308",
                      "4.9e-324",
                      "0.1",
                      "3.14159265358979323846",
                      "nan",
                      "-inf",
                      "1E+2"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    double v = 0;
    assert_int_equal(po_parse_double(ok[i], strlen(ok[i]), &v), 0);
    double want = strtod(ok[i], NULL);
    if (isnan(want))
      assert_true(isnan(v));
    else
      assert_memory_equal(&v, &want, sizeof v);
  }
  const char *bad[] = {"", "abc", "1.2.3", "1e", "--1", "1,5", " ", "0x", "1e5x", "NULL", "-"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    double v;
    assert_int_equal(po_parse_double(bad[i], strlen(bad[i]), &v), -1);
  }
  /* random decimals: bit-identical to strtod */
  uint64_t r = 12345;
  for (int i = 0; i < 20000; i++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    char buf[64];
    snprintf(buf, sizeof buf, "%.*f", (int)(r >> 60) % 10, (double)(r >> 20) / 1e6);
    double v, want = strtod(buf, NULL);
    assert_int_equal(po_parse_double(buf, strlen(buf), &v), 0);
    assert_memory_equal(&v, &want, sizeof v);
  }
}

static void test_directory_says_it_is_a_directory(void **state) {
  (void)state;
  po_csv *c = NULL;
  char err[256] = "";
  assert_int_equal(po_csv_create("/tmp", NULL, &c, err, sizeof err), PO_EINVAL);
  assert_null(c);
  assert_non_null(strstr(err, "/tmp: is a directory"));
  assert_null(strstr(err, "read error"));
}

/* A header longer than the read buffer is named as such, not as an empty file; a header that
 * fits in the same buffer is read (positive control). */
static void test_header_longer_than_the_buffer_is_named(void **state) {
  (void)state;
  char path[] = "/tmp/po_test_csv_XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fdopen(fd, "w");
  for (int i = 0; i < 100; i++) fprintf(f, "%scolumn_%03d", i ? "," : "", i); /* 1100 bytes */
  fprintf(f, "\n1,2\n");
  fclose(f);
  po_csv_options o = {0};
  o.buffer_bytes = 512;
  po_csv *c = NULL;
  char err[256] = "";
  assert_int_equal(po_csv_create(path, &o, &c, err, sizeof err), PO_EPARSE);
  assert_null(c);
  assert_non_null(strstr(err, "header row is longer than the 512-byte read buffer"));
  assert_null(strstr(err, "empty"));
  o.buffer_bytes = 4096;
  assert_int_equal(po_csv_create(path, &o, &c, err, sizeof err), 0);
  assert_int_equal(po_csv_column_count(c), 100);
  po_csv_destroy(c);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_header_quotes_and_crlf),
      cmocka_unit_test(test_select_by_index_and_case_insensitive_name),
      cmocka_unit_test(test_bad_cells_are_skipped_and_counted_with_first_line),
      cmocka_unit_test(test_missing_file_names_the_path),
      cmocka_unit_test(test_missing_column_names_it_and_lists_columns),
      cmocka_unit_test(test_small_buffer_streams_the_same_rows),
      cmocka_unit_test(test_row_longer_than_buffer_is_skipped),
      cmocka_unit_test(test_fallback_parser_for_dates),
      cmocka_unit_test(test_parse_double_matches_strtod),
      cmocka_unit_test(test_directory_says_it_is_a_directory),
      cmocka_unit_test(test_header_longer_than_the_buffer_is_named),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
