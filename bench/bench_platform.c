/* Cost of one full sample (system CPU, memory, disks, this process; no GPU) with the probe's
 * kept-open files, next to an in-run baseline that opens, reads and closes the same files each
 * time (what a naive sampler or psutil does). Medians of many repetitions.
 *   BENCH sample_us <median> us
 *   BENCH sample_baseline_open_read_us <median> us */
#include "platform.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPS 2000

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof v[0], cmp_double);
  return v[n / 2];
}

static char rbuf[65536];
static volatile size_t sink;

static void open_read_close(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n, total = 0;
  while ((n = read(fd, rbuf, sizeof rbuf)) > 0) total += n;
  close(fd);
  sink += (size_t)total;
}

int main(void) {
  static double t[REPS];
  po_probe *p = NULL;
  if (po__probe_create_at("", &p) != 0) {
    fprintf(stderr, "bench_platform: cannot open the probe\n");
    return 1;
  }
  po_system_sample *s = malloc(sizeof *s);
  po_process_sample ps;
  if (!s) return 1;
  for (int i = 0; i < 200; i++) { /* warm-up: page in, grow buffers */
    po_probe_system(p, s);
    po_probe_process(p, 0, 0, &ps);
  }
  for (int i = 0; i < REPS; i++) {
    double a = now_us();
    po_probe_system(p, s);
    po_probe_process(p, 0, 0, &ps);
    t[i] = now_us() - a;
  }
  printf("BENCH sample_us %.2f us\n", median(t, REPS));

  for (int i = 0; i < REPS; i++) {
    double a = now_us();
    po_probe_system(p, s);
    t[i] = now_us() - a;
  }
  printf("BENCH sample_system_only_us %.2f us\n", median(t, REPS));
  for (int i = 0; i < REPS; i++) {
    double a = now_us();
    po_probe_process(p, 0, 0, &ps);
    t[i] = now_us() - a;
  }
  printf("BENCH sample_process_only_us %.2f us\n", median(t, REPS));

  /* Baseline: the same files, opened, read and closed each time, without parsing. */
  static const char *files[] = {
      "/proc/stat",    "/proc/meminfo",   "/proc/diskstats",   "/proc/pressure/memory",
      "/proc/loadavg", "/proc/self/stat", "/proc/self/status", "/proc/self/io"};
  for (int i = 0; i < REPS; i++) {
    double a = now_us();
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) open_read_close(files[f]);
    t[i] = now_us() - a;
  }
  printf("BENCH sample_baseline_open_read_us %.2f us\n", median(t, REPS));
  printf("# cpus=%u disks=%u rss=%llu fds=%d parse_errors=%u\n", s->cpu_count, s->disk_count,
         (unsigned long long)ps.rss_bytes, ps.open_fds, s->parse_errors);
  free(s);
  po_probe_destroy(p);
  return 0;
}
