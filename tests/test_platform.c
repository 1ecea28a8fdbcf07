/* Platform probes against fake /proc roots with known values (tests/fakes/proc/<case>/), the
 * parsers against broken input, and the real machine against `free -b` and `ps`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "platform.h"
#include "support/support.h"

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)
#define CONTAINER "tests/fakes/proc/container"
#define CORES64 "tests/fakes/proc/cores64"

static po_system_sample *sample_of(const char *root) {
  po_probe *p = NULL;
  po_system_sample *s = malloc(sizeof *s);
  assert_non_null(s);
  assert_int_equal(po__probe_create_at(root, &p), 0);
  assert_int_equal(po_probe_system(p, s), 0);
  po_probe_destroy(p);
  return s;
}

/* A private copy of a fake root the test may rewrite (files rewritten in place, as procfs does:
 * the probe keeps them open). */
static const char *copy_root(const char *src, const char *name) {
  static char dst[256];
  char cmd[600];
  snprintf(dst, sizeof dst, "%s/%s", support_tmpdir(), name);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
  assert_int_equal(system(cmd), 0);
  return dst;
}

static void rewrite(const char *root, const char *rel, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s%s", root, rel);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* ---- system sample: known values ----------------------------------------------------------- */

static void test_cpu_counts_and_first_sample_has_no_rates(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CONTAINER);
  assert_int_equal(s->cpu_count, 4);
  assert_int_equal(s->cpu_ids[3], 3);
  assert_int_equal(s->has_rates, 0);
  assert_true(s->cpu.busy == 0.0);
  assert_int_equal(s->ctxt, 987654);
  assert_int_equal(s->procs_running, 3);
  assert_int_equal(s->procs_blocked, 1);
  free(s);
}

static void test_meminfo_values(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CONTAINER);
  assert_int_equal(s->mem_total_bytes, 16 * GIB);
  assert_int_equal(s->mem_available_bytes, 12 * GIB);
  assert_int_equal(s->mem_used_bytes, 4 * GIB);
  assert_int_equal(s->mem_free_bytes, 8 * GIB);
  assert_int_equal(s->mem_cached_bytes, 2 * GIB + 128 * MIB);
  assert_int_equal(s->mem_shared_bytes, 64 * MIB);
  assert_int_equal(s->swap_total_bytes, 2 * GIB);
  assert_int_equal(s->swap_used_bytes, 1 * GIB);
  free(s);
}

static void test_container_judges_memory_against_cgroup_limit(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CONTAINER);
  assert_int_equal(s->in_cgroup_limit, 1);
  assert_int_equal(s->cgroup_memory_max_bytes, 4 * GIB);
  assert_int_equal(s->cgroup_memory_current_bytes, 2 * GIB);
  assert_int_equal(s->limit_source, PO_LIMIT_CGROUP);
  assert_int_equal(s->memory_limit_bytes, 4 * GIB);
  /* used = current - inactive_file = 2 GiB - 512 MiB; available = 4 GiB - 1.5 GiB */
  assert_int_equal(s->effective_available_bytes, 2 * GIB + 512 * MIB);
  assert_false(s->missing & PO_PROBE_MISSING_CGROUP);
  free(s);
}

static void test_without_cgroup_the_limit_is_system_memory(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CORES64);
  assert_true(s->missing & PO_PROBE_MISSING_CGROUP);
  assert_int_equal(s->limit_source, PO_LIMIT_SYSTEM);
  assert_int_equal(s->memory_limit_bytes, 256 * GIB);
  assert_int_equal(s->effective_available_bytes, 192 * GIB);
  free(s);
}

static void test_pressure_and_loadavg(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CONTAINER);
  assert_int_equal(s->has_pressure, 1);
  assert_true(fabs(s->pressure_some_avg10 - 1.5) < 1e-9);
  assert_true(fabs(s->pressure_full_avg10 - 0.5) < 1e-9);
  assert_int_equal(s->pressure_some_total_us, 123456);
  assert_true(fabs(s->loadavg[0] - 1.25) < 1e-9);
  assert_true(fabs(s->loadavg[2] - 0.5) < 1e-9);
  free(s);
}

static void test_no_pressure_file_is_a_normal_state(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CORES64); /* sample_of asserts rc 0 */
  assert_int_equal(s->has_pressure, 0);
  assert_true(s->missing & PO_PROBE_MISSING_PRESSURE);
  free(s);
}

static void test_64_cores_with_a_truncated_stat_line(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CORES64);
  /* cpu17's line is cut after two numbers: skipped and counted, the others kept in order */
  assert_int_equal(s->cpu_count, 63);
  assert_int_equal(s->cpu_ids[16], 16);
  assert_int_equal(s->cpu_ids[17], 18);
  assert_int_equal(s->cpu_ids[62], 63);
  assert_true(s->parse_errors >= 2); /* the cpu17 line and a bad diskstats line */
  assert_int_equal(s->cpus_dropped, 0);
  free(s);
}

static void test_only_whole_disks_are_counted(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CONTAINER);
  /* sda and nvme0n1; partitions, loop0, dm-0 (stacked on sda2) and the unused 0-byte zram0 are
   * not counted */
  assert_int_equal(s->disk_count, 2);
  assert_string_equal(s->disks[0].name, "sda");
  assert_string_equal(s->disks[1].name, "nvme0n1");
  assert_int_equal(s->disks[0].read_bytes, 2048 * 512);
  assert_int_equal(s->disks[0].write_bytes, 4096 * 512);
  assert_int_equal(s->disks[0].read_ops, 1000);
  assert_int_equal(s->disks[0].write_ops, 500);
  assert_int_equal(s->disks[0].busy_ms, 300);
  assert_int_equal(s->disks[1].read_bytes, 8192 * 512); /* an 11-field (old kernel) line */
  assert_int_equal(s->disks[0].new_disk, 0);
  free(s);
}

static void test_unused_empty_device_is_listed_once_it_does_io(void **state) {
  (void)state;
  const char *root = copy_root(CONTAINER, "zram");
  po_probe *p = NULL;
  po_system_sample *s = malloc(sizeof *s);
  assert_int_equal(po__probe_create_at(root, &p), 0);
  assert_int_equal(po_probe_system(p, s), 0);
  for (uint32_t i = 0; i < s->disk_count; i++) assert_string_not_equal(s->disks[i].name, "zram0");
  /* configured and used: now a disk like any other */
  rewrite(root, "/sys/block/zram0/size", "8388608\n");
  rewrite(root, "/proc/diskstats",
          "   8       0 sda 1000 0 2048 100 500 0 4096 50 0 300 150\n"
          " 253       1 zram0 12 0 96 1 30 0 240 2 0 3 3\n");
  assert_int_equal(po_probe_system(p, s), 0);
  assert_int_equal(s->disk_count, 2);
  assert_string_equal(s->disks[1].name, "zram0");
  po_probe_destroy(p);
  free(s);
}

static void test_partitions_recognized_without_sys_block(void **state) {
  (void)state;
  po_system_sample *s = sample_of(CORES64);
  assert_int_equal(s->disk_count, 3);
  assert_string_equal(s->disks[0].name, "sda");
  assert_string_equal(s->disks[1].name, "nvme0n1");
  assert_string_equal(s->disks[2].name, "mmcblk0");
  free(s);
}

static const char stat2[] =
    "cpu  1100 0 500 8100 100 0 0 0 0 0\n"
    "cpu0 350 0 125 2000 25 0 0 0 0 0\n"
    "cpu1 250 0 125 2100 25 0 0 0 0 0\n"
    "cpu2 250 0 125 2000 25 0 0 0 0 0\n"
    "cpu3 250 0 125 2000 25 0 0 0 0 0\n";

static void test_utilization_between_samples(void **state) {
  (void)state;
  const char *root = copy_root(CONTAINER, "util");
  po_probe *p = NULL;
  po_system_sample *s = malloc(sizeof *s);
  assert_int_equal(po__probe_create_at(root, &p), 0);
  assert_int_equal(po_probe_system(p, s), 0);
  rewrite(root, "/proc/stat", stat2);
  usleep(2000);
  assert_int_equal(po_probe_system(p, s), 0);
  assert_int_equal(s->has_rates, 1);
  assert_true(s->interval_seconds > 0);
  assert_true(fabs(s->cpu.busy - 0.5) < 1e-9); /* +100 user, +100 idle */
  assert_true(fabs(s->cpu.user - 0.5) < 1e-9);
  assert_true(fabs(s->cpus[0].busy - 1.0) < 1e-9);
  assert_true(fabs(s->cpus[1].idle - 1.0) < 1e-9);
  assert_true(s->cpus[2].busy == 0.0); /* no ticks elapsed: 0, not NaN */
  po_probe_destroy(p);
  free(s);
}

static void test_disk_appearing_between_samples(void **state) {
  (void)state;
  const char *root = copy_root(CONTAINER, "newdisk");
  char dir[512];
  po_probe *p = NULL;
  po_system_sample *s = malloc(sizeof *s);
  assert_int_equal(po__probe_create_at(root, &p), 0);
  assert_int_equal(po_probe_system(p, s), 0);
  assert_int_equal(s->disk_count, 2);
  snprintf(dir, sizeof dir, "%s/sys/block/sdb", root);
  assert_int_equal(mkdir(dir, 0755), 0);
  rewrite(root, "/proc/diskstats",
          "   8       0 sda 1000 0 4096 100 500 0 4096 50 0 400 150\n"
          "   8      16 sdb 50 0 1000 5 0 0 0 0 0 10 5\n"
          "   8      17 sdb1 50 0 1000 5 0 0 0 0 0 10 5\n"
          " 259       0 nvme0n1 2000 0 8192 200 1000 0 16384 100 0 600 300\n");
  usleep(2000);
  assert_int_equal(po_probe_system(p, s), 0);
  assert_int_equal(s->disk_count, 3);
  assert_string_equal(s->disks[1].name, "sdb");
  assert_int_equal(s->disks[1].new_disk, 1);
  assert_true(s->disks[1].read_bytes_per_second == 0.0); /* no baseline yet: no rate */
  assert_int_equal(s->disks[0].new_disk, 0);
  assert_int_equal(s->disks[2].new_disk, 0); /* matched by name although its position moved */
  double dt = s->interval_seconds;
  assert_true(fabs(s->disks[0].read_bytes_per_second - 2048.0 * 512 / dt) < 1e-6 * 2048 * 512 / dt);
  assert_true(s->disks[2].read_bytes_per_second == 0.0);
  assert_true(s->disk_read_bytes_per_second >= s->disks[0].read_bytes_per_second);
  assert_true(s->disks[0].busy_ratio > 0 && s->disks[0].busy_ratio <= 1.0);
  /* the third sample has a baseline for sdb too */
  assert_int_equal(po_probe_system(p, s), 0);
  assert_int_equal(s->disks[1].new_disk, 0);
  po_probe_destroy(p);
  free(s);
}

/* ---- processes ----------------------------------------------------------------------------- */

static void test_process_sample_known_values(void **state) {
  (void)state;
  po_probe *p = NULL;
  po_process_sample ps;
  double tck = (double)sysconf(_SC_CLK_TCK);
  assert_int_equal(po__probe_create_at(CONTAINER, &p), 0);
  assert_int_equal(po_probe_process(p, 0, 0, &ps), 0);
  assert_int_equal(ps.rss_bytes, 10 * MIB);
  assert_int_equal(ps.peak_rss_bytes, 20 * MIB);
  assert_int_equal(ps.vsz_bytes, 100 * MIB);
  assert_int_equal(ps.swap_bytes, 1 * MIB);
  assert_int_equal(ps.threads, 7);
  assert_true(fabs(ps.user_seconds - 250 / tck) < 1e-9);
  assert_true(fabs(ps.system_seconds - 50 / tck) < 1e-9);
  assert_int_equal(ps.has_io, 1);
  assert_int_equal(ps.read_bytes, 4096);
  assert_int_equal(ps.write_bytes, 8192);
  assert_int_equal(ps.rchar, 5000);
  assert_int_equal(ps.open_fds, 3);
  assert_int_equal(ps.process_count, 1);
  po_probe_destroy(p);
}

static void test_process_with_descendants(void **state) {
  (void)state;
  po_probe *p = NULL;
  po_process_sample ps;
  double tck = (double)sysconf(_SC_CLK_TCK);
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  assert_int_equal(po__probe_create_at(CONTAINER, &p), 0);
  assert_int_equal(po_probe_process(p, 100, 1, &ps), 0);
  /* 100, its child 101 and grandchild 102; 103 belongs to pid 1 */
  assert_int_equal(ps.process_count, 3);
  assert_int_equal(ps.threads, 7 + 1 + 2);
  assert_true(fabs(ps.user_seconds - (250 + 100 + 50) / tck) < 1e-9);
  assert_int_equal(ps.rss_bytes, 10 * MIB + (256 + 512) * page);
  assert_int_equal(ps.read_bytes, 4096 + 2 * 1000);
  assert_int_equal(po_probe_process(p, 100, 0, &ps), 0);
  assert_int_equal(ps.process_count, 1);
  po_probe_destroy(p);
}

static void test_missing_process_is_enoent(void **state) {
  (void)state;
  po_probe *p = NULL;
  po_process_sample ps;
  assert_int_equal(po__probe_create_at(CONTAINER, &p), 0);
  assert_int_equal(po_probe_process(p, 999999, 0, &ps), PO_ENOENT);
  assert_int_equal(po_probe_process(p, -5, 0, &ps), PO_EINVAL);
  po_probe_destroy(p);
}

static void test_open_fails_cleanly_on_missing_root(void **state) {
  (void)state;
  po_probe *p = (po_probe *)1;
  assert_int_equal(po__probe_create_at("/nonexistent/perfopt-root", &p), PO_ENOENT);
  assert_null(p);
  po_probe_destroy(NULL);
}

/* ---- hardware facts and default thresholds ----------------------------------------------- */

static void test_hw_facts_container(void **state) {
  (void)state;
  po_hardware hw;
  assert_int_equal(po__hw_facts(CONTAINER, NULL, &hw), 0);
  assert_string_equal(hw.cpu_model, "Fake CPU @ 3.00GHz");
  assert_int_equal(hw.cores_online, 4);
  assert_int_equal(hw.cores_allowed, 4);
  assert_true(fabs(hw.cgroup_cpu_limit - 2.0) < 1e-9);
  assert_int_equal(hw.memory_total_bytes, 16 * GIB);
  assert_int_equal(hw.cgroup_memory_max_bytes, 4 * GIB);
  assert_int_equal(hw.memory_limit_bytes, 4 * GIB);
  assert_int_equal(hw.limit_from_cgroup, 1);
  assert_int_equal(hw.cgroup_version, 2);
  assert_int_equal(hw.gpu_count, 0);
  assert_string_equal(hw.gpu_reason, "GPUs not queried");
}

static void test_hw_facts_64_cores(void **state) {
  (void)state;
  po_hardware hw;
  assert_int_equal(po__hw_facts(CORES64, NULL, &hw), 0);
  assert_int_equal(hw.cores_online, 64);
  assert_int_equal(hw.cores_allowed, 32);
  assert_int_equal(hw.limit_from_cgroup, 0);
  assert_int_equal(hw.memory_limit_bytes, 256 * GIB);
}

static void test_thresholds_left_at_zero_get_hardware_defaults(void **state) {
  (void)state;
  po_config cfg;
  po_thresholds th;
  po_config_defaults(&cfg);
  po__strlcpy(cfg.proc_root, CONTAINER, sizeof cfg.proc_root);
  cfg.cpu_threshold = 0;
  cfg.memory_threshold = 0;
  cfg.gpu_memory_threshold = 0;
  cfg.disk_busy_threshold = 0.95;
  assert_int_equal(po_thresholds_resolve(&cfg, NULL, &th), 0);
  /* 2 cores by cgroup cpu.max -> 0.75; 4 GiB cgroup limit (< 8 GiB) -> 0.75 */
  assert_string_equal(th.t[PO_METRIC_CPU].source, "hardware default");
  assert_true(fabs(th.t[PO_METRIC_CPU].value - 0.75) < 1e-9);
  assert_non_null(strstr(th.t[PO_METRIC_CPU].why, "2 usable cores"));
  assert_true(fabs(th.t[PO_METRIC_MEMORY].value - 0.75) < 1e-9);
  assert_non_null(strstr(th.t[PO_METRIC_MEMORY].why, "cgroup memory limit 4.0 GiB"));
  assert_string_equal(th.t[PO_METRIC_GPU_MEMORY].source, "hardware default");
  assert_string_equal(th.t[PO_METRIC_DISK_BUSY].source, "program"); /* assigned in the struct */
  assert_true(fabs(th.t[PO_METRIC_DISK_BUSY].value - 0.95) < 1e-9);
  assert_string_equal(th.t[PO_METRIC_DISK_BUSY].metric, "disk_busy");
}

static void test_thresholds_from_config_are_kept(void **state) {
  (void)state;
  po_config cfg;
  po_thresholds th;
  po_config_defaults(&cfg);
  po__strlcpy(cfg.proc_root, CORES64, sizeof cfg.proc_root);
  cfg.cpu_threshold = 0.6;
  cfg.memory_threshold = 0;
  assert_int_equal(po_thresholds_resolve(&cfg, NULL, &th), 0);
  assert_string_equal(th.t[PO_METRIC_CPU].source, "program");
  assert_true(fabs(th.t[PO_METRIC_CPU].value - 0.6) < 1e-9);
  /* 256 GiB of system memory, no cgroup -> 0.90 */
  assert_true(fabs(th.t[PO_METRIC_MEMORY].value - 0.90) < 1e-9);
  assert_non_null(strstr(th.t[PO_METRIC_MEMORY].why, "system memory"));
}

/* ---- parsers ------------------------------------------------------------------------------- */

static void test_pidstat_comm_with_parentheses_and_spaces(void **state) {
  (void)state;
  const char *line = "77 (a) b (c)) R 5 1 1 0 -1 0 0 0 0 0 12 34 0 0 20 0 3 0 1 4096 9 0\n";
  po__pidstat_parsed ps;
  assert_int_equal(po__parse_pidstat(line, strlen(line), &ps), 0);
  assert_int_equal(ps.ppid, 5);
  assert_int_equal(ps.utime, 12);
  assert_int_equal(ps.stime, 34);
  assert_int_equal(ps.threads, 3);
  assert_int_equal(ps.vsize, 4096);
  assert_int_equal(ps.rss_pages, 9);
  assert_int_equal(po__parse_pidstat(line, 20, &ps), PO_EPARSE);
}

static void test_cpu_list(void **state) {
  (void)state;
  assert_int_equal(po__parse_cpu_list("0-3,8,10-11\n"), 7);
  assert_int_equal(po__parse_cpu_list("0"), 1);
  assert_int_equal(po__parse_cpu_list("3-1"), -1);
  assert_int_equal(po__parse_cpu_list("0-"), -1);
  assert_int_equal(po__parse_cpu_list("1,"), -1);
  assert_int_equal(po__parse_cpu_list("x"), -1);
}

static void test_parsers_survive_every_truncation(void **state) {
  (void)state;
  static const char *files[] = {CONTAINER "/proc/stat", CONTAINER "/proc/meminfo",
                                CONTAINER "/proc/diskstats", CONTAINER "/proc/self/status",
                                CONTAINER "/proc/self/stat"};
  po__stat_parsed *st = malloc(sizeof *st);
  for (size_t f = 0; f < PO__ARRAY_LEN(files); f++) {
    char *buf;
    size_t len;
    assert_int_equal(po__read_file(files[f], 1 << 20, &buf, &len, NULL, 0), 0);
    for (size_t cut = 0; cut <= len; cut++) {
      /* a private copy of exactly `cut` bytes, so ASan catches any read past the end */
      char *c = malloc(cut ? cut : 1);
      memcpy(c, buf, cut);
      po__meminfo_parsed mi;
      po__status_parsed ss;
      po__pidstat_parsed ps;
      (void)po__parse_stat(c, cut, st);
      (void)po__parse_meminfo(c, cut, &mi);
      (void)po__parse_diskstats(c, cut, NULL, NULL);
      (void)po__parse_status(c, cut, &ss);
      (void)po__parse_pidstat(c, cut, &ps);
      free(c);
    }
    free(buf);
  }
  /* a meminfo line cut inside its number still parses what is there */
  po__meminfo_parsed mi;
  assert_int_equal(po__parse_meminfo("MemTotal: 12", 12, &mi), 0);
  assert_int_equal(mi.total, 12);
  assert_int_equal(po__parse_meminfo("garbage", 7, &mi), PO_EPARSE);
  free(st);
}

/* ---- the real machine ---------------------------------------------------------------------- */

static int within(double a, double b, double rel) {
  return fabs(a - b) <= rel * fmax(a, b);
}

static void test_real_memory_agrees_with_free(void **state) {
  (void)state;
  FILE *f = popen("free -b 2>/dev/null", "r");
  char line[512];
  unsigned long long total = 0, used, freeb, shared, cache, avail = 0;
  if (!f) skip();
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Mem: %llu %llu %llu %llu %llu %llu", &total, &used, &freeb, &shared, &cache,
               &avail) == 6)
      break;
  pclose(f);
  if (!total) {
    print_message("free -b not available: skipped\n");
    skip();
  }
  po_system_sample *s = sample_of("");
  assert_true(s->mem_total_bytes == total);
  assert_true(within((double)s->mem_available_bytes, (double)avail, 0.01));
  free(s);
}

static void test_real_rss_agrees_with_ps(void **state) {
  (void)state;
  char cmd[64];
  unsigned long long kb = 0;
  snprintf(cmd, sizeof cmd, "ps -o rss= -p %d 2>/dev/null", (int)getpid());
  FILE *f = popen(cmd, "r");
  if (!f) skip();
  int ok = fscanf(f, "%llu", &kb) == 1;
  pclose(f);
  if (!ok) {
    print_message("ps not available: skipped\n");
    skip();
  }
  po_probe *p = NULL;
  po_process_sample ps;
  assert_int_equal(po__probe_create_at("", &p), 0);
  assert_int_equal(po_probe_process(p, 0, 0, &ps), 0);
  assert_int_equal(ps.pid, (int)getpid());
  assert_true(within((double)ps.rss_bytes, (double)kb * 1024.0, 0.01));
  assert_true(ps.peak_rss_bytes >= ps.rss_bytes);
  assert_true(ps.threads >= 1);
  assert_true(ps.open_fds >= 3);
  po_probe_destroy(p);
}

static void test_real_system_sample_is_sane(void **state) {
  (void)state;
  po_probe *p = NULL;
  po_system_sample *s = malloc(sizeof *s);
  assert_int_equal(po__probe_create_at("", &p), 0);
  assert_int_equal(po_probe_system(p, s), 0);
  usleep(20000);
  assert_int_equal(po_probe_system(p, s), 0);
  assert_true(s->cpu_count >= 1);
  assert_true(s->cpu.busy >= 0 && s->cpu.busy <= 1.0);
  assert_true(s->mem_total_bytes > 0);
  assert_true(s->memory_limit_bytes > 0 && s->memory_limit_bytes <= s->mem_total_bytes);
  assert_true(s->effective_available_bytes <= s->memory_limit_bytes);
  po_probe_destroy(p);
  free(s);
}

static void test_forked_child_reads_itself(void **state) {
  (void)state;
  po_probe *p = NULL;
  po_process_sample ps;
  assert_int_equal(po__probe_create_at("", &p), 0);
  assert_int_equal(po_probe_process(p, 0, 0, &ps), 0);
  pid_t child = fork();
  if (child == 0) {
    int rc = po_probe_process(p, 0, 0, &ps);
    _exit(rc == 0 && ps.pid == (int)getpid() ? 0 : 1);
  }
  int status = support_wait_child(child, SUPPORT_WAIT_SECONDS);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  po_probe_destroy(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cpu_counts_and_first_sample_has_no_rates),
      cmocka_unit_test(test_meminfo_values),
      cmocka_unit_test(test_container_judges_memory_against_cgroup_limit),
      cmocka_unit_test(test_without_cgroup_the_limit_is_system_memory),
      cmocka_unit_test(test_pressure_and_loadavg),
      cmocka_unit_test(test_no_pressure_file_is_a_normal_state),
      cmocka_unit_test(test_64_cores_with_a_truncated_stat_line),
      cmocka_unit_test(test_only_whole_disks_are_counted),
      cmocka_unit_test(test_unused_empty_device_is_listed_once_it_does_io),
      cmocka_unit_test(test_partitions_recognized_without_sys_block),
      cmocka_unit_test(test_utilization_between_samples),
      cmocka_unit_test(test_disk_appearing_between_samples),
      cmocka_unit_test(test_process_sample_known_values),
      cmocka_unit_test(test_process_with_descendants),
      cmocka_unit_test(test_missing_process_is_enoent),
      cmocka_unit_test(test_open_fails_cleanly_on_missing_root),
      cmocka_unit_test(test_hw_facts_container),
      cmocka_unit_test(test_hw_facts_64_cores),
      cmocka_unit_test(test_thresholds_left_at_zero_get_hardware_defaults),
      cmocka_unit_test(test_thresholds_from_config_are_kept),
      cmocka_unit_test(test_pidstat_comm_with_parentheses_and_spaces),
      cmocka_unit_test(test_cpu_list),
      cmocka_unit_test(test_parsers_survive_every_truncation),
      cmocka_unit_test(test_real_memory_agrees_with_free),
      cmocka_unit_test(test_real_rss_agrees_with_ps),
      cmocka_unit_test(test_real_system_sample_is_sane),
      cmocka_unit_test(test_forked_child_reads_itself),
  };
  return cmocka_run_group_tests_name("platform", tests, NULL, NULL);
}
