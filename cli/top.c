/* perfopt top: a live terminal view of CPU per core, memory, disks, GPUs and optionally one
 * process. Plain ANSI escape codes (no curses dependency): the alternate screen, cursor home and
 * clear-to-end-of-line, so a frame overwrites the previous one without flicker. Resizing
 * (SIGWINCH) triggers a full clear and a redraw at the new size; q, Ctrl-C or SIGTERM leave the
 * loop and restore the terminal (termios, cursor, main screen). */
#include "cli.h"
#include "perfopt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop, g_resized;
static struct termios g_saved;
static int g_tty_raw, g_alt_screen;

static void on_signal(int sig) {
  if (sig == SIGWINCH)
    g_resized = 1;
  else
    g_stop = 1;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: perfopt top [--pid PID] [--interval MS] [--iterations N]\n"
          "Live view of CPU per core, memory, disks and GPUs (and PID's CPU, memory, I/O).\n"
          "q or Ctrl-C quits. --interval: refresh period (100..60000 ms, default 1000).\n"
          "--iterations N: draw N frames and exit (for scripts).\n");
}

static void restore_terminal(void) {
  if (g_alt_screen) {
    fputs("\033[0m\033[?25h\033[?1049l", stdout); /* attributes off, cursor on, main screen */
    fflush(stdout);
    g_alt_screen = 0;
  }
  if (g_tty_raw) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved);
    g_tty_raw = 0;
  }
}

static void term_size(int *rows, int *cols) {
  struct winsize ws;
  *rows = 24;
  *cols = 80;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
    *rows = ws.ws_row;
    *cols = ws.ws_col;
  }
}

/* A frame is built in memory and written at once: one write per frame keeps the redraw atomic
 * on slow terminals (ssh, tmux). Lines are clipped to the width and counted against the height. */
typedef struct frame {
  char *buf;
  size_t len, cap;
  int rows, cols, line;
  int tty;
} frame;

static void fr_raw(frame *f, const char *s, size_t n) {
  if (f->len + n + 1 > f->cap) {
    size_t nc = f->cap ? f->cap * 2 : 16384;
    while (nc < f->len + n + 1) nc *= 2;
    char *nb = realloc(f->buf, nc);
    if (!nb) return;
    f->buf = nb;
    f->cap = nc;
  }
  memcpy(f->buf + f->len, s, n);
  f->len += n;
  f->buf[f->len] = '\0';
}

/* One line of visible text: control characters in it (a disk or GPU name) are shown escaped. */
static void fr_line(frame *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fr_line(frame *f, const char *fmt, ...) {
  char raw[1024], tmp[1024];
  if (f->tty && f->line >= f->rows - 1) return; /* the last row stays empty: no scrolling */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  po_cli_escape(raw, tmp, sizeof tmp);
  size_t n = strlen(tmp);
  if (f->tty && n > (size_t)f->cols) n = (size_t)f->cols;
  fr_raw(f, tmp, n);
  if (f->tty) fr_raw(f, "\033[K", 3);
  fr_raw(f, "\n", 1);
  f->line++;
}

static void bar(char *dst, size_t width, double ratio) {
  if (ratio < 0) ratio = 0;
  if (ratio > 1) ratio = 1;
  size_t fill = (size_t)(ratio * (double)width + 0.5);
  for (size_t i = 0; i < width; i++) dst[i] = i < fill ? '|' : ' ';
  dst[width] = '\0';
}

static const char *human(double bytes, char *buf, size_t len) {
  static const char *u[] = {"B", "K", "M", "G", "T", "P"};
  int i = 0;
  while (bytes >= 1024 && i < 5) {
    bytes /= 1024;
    i++;
  }
  snprintf(buf, len, i ? "%.1f%s" : "%.0f%s", bytes, u[i]);
  return buf;
}

typedef struct view {
  int pid;
  int has_proc;
  po_process_sample proc;
  uint64_t tree_peak_rss; /* the largest sum over the tree seen by this top (not a process's) */
  int proc_gone;
  po_gpu_session *gpu;
  size_t gpu_count;
  po_gpu_info gpus[8];
  char gpu_reason[160];
} view;

static void draw(frame *f, const po_system_sample *s, const view *v, double interval_s) {
  char b1[32], b2[32], b3[32], barbuf[256];
  time_t now = time(NULL);
  struct tm tmv;
  localtime_r(&now, &tmv);
  char ts[16];
  strftime(ts, sizeof ts, "%H:%M:%S", &tmv);
  f->line = 0;
  if (f->tty) fr_raw(f, "\033[H", 3);
  fr_line(f, "perfopt top  %s  every %.1fs  load %.2f %.2f %.2f  (q quits)", ts, interval_s,
          s->loadavg[0], s->loadavg[1], s->loadavg[2]);
  /* CPU: total, then per core in as many columns as fit (each column at least 24 wide). */
  int barw = f->cols - 24;
  if (barw > 60) barw = 60;
  if (barw < 10) barw = 10;
  bar(barbuf, (size_t)barw, s->cpu.busy);
  fr_line(f, "CPU  [%s] %5.1f%%  usr %4.1f sys %4.1f io %4.1f", barbuf, 100 * s->cpu.busy,
          100 * s->cpu.user, 100 * s->cpu.system, 100 * s->cpu.iowait);
  int colw = 26;
  int cols = f->cols / colw;
  if (cols < 1) cols = 1;
  if (cols > 8) cols = 8;
  for (uint32_t i = 0; i < s->cpu_count; i += (uint32_t)cols) {
    char line[1024];
    size_t off = 0;
    for (int c = 0; c < cols && i + (uint32_t)c < s->cpu_count; c++) {
      uint32_t k = i + (uint32_t)c;
      char cb[32];
      bar(cb, 12, s->cpus[k].busy);
      off += (size_t)snprintf(line + off, sizeof line - off, "%3d [%s]%5.1f%%  ", s->cpu_ids[k], cb,
                              100 * s->cpus[k].busy);
      if (off >= sizeof line) break;
    }
    fr_line(f, "%s", line);
  }
  if (s->cpus_dropped) fr_line(f, "(%u more cores not shown)", s->cpus_dropped);
  double lim = (double)s->memory_limit_bytes;
  double used = lim - (double)s->effective_available_bytes;
  bar(barbuf, (size_t)barw, lim > 0 ? used / lim : 0);
  fr_line(f, "Mem  [%s] %s/%s%s", barbuf, human(used, b1, sizeof b1), human(lim, b2, sizeof b2),
          s->limit_source == PO_LIMIT_CGROUP ? " (cgroup)" : "");
  if (s->swap_total_bytes) {
    bar(barbuf, (size_t)barw, (double)s->swap_used_bytes / (double)s->swap_total_bytes);
    fr_line(f, "Swap [%s] %s/%s", barbuf, human((double)s->swap_used_bytes, b1, sizeof b1),
            human((double)s->swap_total_bytes, b2, sizeof b2));
  }
  if (s->has_pressure)
    fr_line(f, "Memory pressure: some %.2f%%  full %.2f%% (10 s average)", s->pressure_some_avg10,
            s->pressure_full_avg10);
  fr_line(f, "%s", "");
  fr_line(f, "%-12s %12s %12s %7s", "DISK", "READ/s", "WRITE/s", "BUSY");
  for (uint32_t i = 0; i < s->disk_count; i++) {
    const po_disk_usage *d = &s->disks[i];
    fr_line(f, "%-12s %12s %12s %6.1f%%", d->name, human(d->read_bytes_per_second, b1, sizeof b1),
            human(d->write_bytes_per_second, b2, sizeof b2), 100 * d->busy_ratio);
  }
  fr_line(f, "%s", "");
  if (v->gpu_count == 0) {
    fr_line(f, "GPU: none (%s)", v->gpu_reason);
  } else {
    for (size_t i = 0; i < v->gpu_count; i++) {
      const po_gpu_info *g = &v->gpus[i];
      double r =
          g->memory_total_bytes ? (double)g->memory_used_bytes / (double)g->memory_total_bytes : 0;
      bar(barbuf, 20, r);
      fr_line(f, "GPU%zu %-20.20s mem [%s] %s/%s util %3.0f%% %3.0fC %5.1fW", i, g->name, barbuf,
              human((double)g->memory_used_bytes, b1, sizeof b1),
              human((double)g->memory_total_bytes, b2, sizeof b2), 100 * g->utilization_gpu_ratio,
              g->temperature_celsius, g->power_watts);
    }
  }
  if (v->pid > 0) {
    fr_line(f, "%s", "");
    if (v->proc_gone) {
      fr_line(f, "PID %d: no such process", v->pid);
    } else if (v->has_proc) {
      const po_process_sample *p = &v->proc;
      fr_line(f, "PID %d (+%u descendants): CPU %.1f%%  RSS %s (tree peak %s)  threads %u  fds %d",
              p->pid, p->process_count ? p->process_count - 1 : 0, 100 * p->cpu_ratio,
              human((double)p->rss_bytes, b1, sizeof b1),
              human((double)v->tree_peak_rss, b2, sizeof b2), p->threads, p->open_fds);
      if (p->has_io)
        fr_line(f, "  I/O read %s  written %s", human((double)p->read_bytes, b1, sizeof b1),
                human((double)p->write_bytes, b3, sizeof b3));
    }
  }
  if (f->tty) fr_raw(f, "\033[J", 3); /* clear what a longer previous frame left below */
}

/* Monotonic milliseconds. */
static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int po_cli_top(int argc, char **argv) {
  long pid = 0, interval_ms = 1000, iterations = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--pid") || !strcmp(argv[i], "--interval") ||
               !strcmp(argv[i], "--iterations")) {
      const char *o = argv[i], *v = po_cli_value("top", argc, argv, &i);
      int bad = !v;
      if (!bad && !strcmp(o, "--pid"))
        bad = po_cli_parse_long("top", o, v, 1, 1L << 30, "a process id", &pid) != 0;
      else if (!bad && !strcmp(o, "--interval"))
        bad = po_cli_parse_long("top", o, v, 100, 60000, "ms", &interval_ms) != 0;
      else if (!bad)
        bad = po_cli_parse_long("top", o, v, 1, 1L << 30, "frames", &iterations) != 0;
      if (bad) return 2;
    } else {
      po_cli_error("top", "unknown option '%s'", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  po_config cfg;
  char err[256];
  if (po_config_load(&cfg, err, sizeof err) != 0) {
    po_cli_error("top", "%s", err);
    return 1;
  }
  po_probe *probe = NULL;
  int prc = po_probe_create(&cfg, &probe);
  if (prc != 0) {
    po_cli_error("top", "cannot read /proc/stat: %s", po_strerror(prc));
    return 1;
  }
  po_system_sample *s = malloc(sizeof *s);
  view *v = calloc(1, sizeof *v);
  if (!s || !v) {
    po_cli_error("top", "out of memory");
    free(s);
    free(v);
    po_probe_destroy(probe);
    return 1;
  }
  v->pid = (int)pid;
  if (v->pid > 0 && po_probe_process(probe, v->pid, 1, &v->proc) != 0) {
    po_cli_error("top", "no process %d", v->pid);
    free(s);
    free(v);
    po_probe_destroy(probe);
    return 1;
  }
  v->tree_peak_rss = v->proc.rss_bytes;
  if (po_gpu_session_create(&cfg, &v->gpu) != 0) v->gpu = NULL;

  int tty = isatty(STDOUT_FILENO);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGWINCH, &sa, NULL);
  if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &g_saved) == 0) {
    struct termios raw = g_saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* keys arrive at once; ISIG kept for Ctrl-C */
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0) g_tty_raw = 1;
  }
  if (tty) {
    fputs("\033[?1049h\033[?25l\033[2J", stdout); /* alternate screen, hide cursor, clear */
    g_alt_screen = 1;
  }
  atexit(restore_terminal);

  frame f;
  memset(&f, 0, sizeof f);
  f.tty = tty;
  term_size(&f.rows, &f.cols);
  if (!tty) f.rows = 1 << 20;
  po_probe_system(probe, s); /* baseline: the first frame shows rates over a short window */
  /* Ticks keep an absolute deadline: a key press wakes the poll but never moves the next frame
   * (pressing keys faster than the interval must not freeze the screen). */
  double deadline = now_ms() + (double)(interval_ms < 250 ? interval_ms : 250);
  long frames = 0;
  int rc = 0;
  while (!g_stop) {
    /* Wait for the next tick, a key, a resize or a signal. */
    double left = deadline - now_ms();
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    int pr = left > 0 ? poll(&pfd, g_tty_raw ? 1 : 0, (int)ceil(left)) : 0;
    if (pr > 0 && (pfd.revents & POLLIN)) {
      char c;
      ssize_t n = read(STDIN_FILENO, &c, 1);
      if (n == 1 && (c == 'q' || c == 'Q')) break;
      if (n == 1 && c == 12) g_resized = 1; /* Ctrl-L redraws */
    }
    if (g_stop) break;
    if (g_resized) {
      g_resized = 0;
      term_size(&f.rows, &f.cols);
      if (tty) fputs("\033[2J", stdout);
      if (frames > 0 && now_ms() < deadline) {
        /* Redraw the last sample at the new size without taking a new one (a fresh sample
         * would skew the rates). */
        f.len = 0;
        draw(&f, s, v, (double)interval_ms / 1000.0);
        fwrite(f.buf, 1, f.len, stdout);
        fflush(stdout);
      }
    }
    if (pr != 0 && now_ms() < deadline) continue; /* a key or a signal before the tick */
    po_probe_system(probe, s);
    if (v->pid > 0) {
      v->has_proc = po_probe_process(probe, v->pid, 1, &v->proc) == 0;
      v->proc_gone = !v->has_proc;
      if (v->has_proc && v->proc.rss_bytes > v->tree_peak_rss) v->tree_peak_rss = v->proc.rss_bytes;
    }
    if (v->gpu)
      po_gpu_session_query(v->gpu, v->gpus, 8, &v->gpu_count, NULL, v->gpu_reason,
                           sizeof v->gpu_reason);
    f.len = 0;
    draw(&f, s, v, (double)interval_ms / 1000.0);
    if (!tty) fr_raw(&f, "\n", 1);
    if (fwrite(f.buf, 1, f.len, stdout) != f.len || fflush(stdout) != 0) {
      rc = po_cli_stdout_error("top");
      break;
    }
    frames++;
    if (iterations && frames >= iterations) break;
    double now = now_ms();
    deadline += (double)interval_ms;
    if (deadline < now) deadline = now + (double)interval_ms; /* after a stall: no burst */
  }
  restore_terminal();
  free(f.buf);
  po_gpu_session_destroy(v->gpu);
  po_probe_destroy(probe);
  free(s);
  free(v);
  return rc;
}
