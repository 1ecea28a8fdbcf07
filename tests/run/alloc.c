/* Test child for perfopt run: allocates MB mebibytes, touches every page, holds them HOLD_MS
 * milliseconds, frees them and exits 0. Its peak RSS is known: MB MiB plus the program itself. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
  size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 64;
  long hold_ms = argc > 2 ? atol(argv[2]) : 300;
  char *p = malloc(mb << 20);
  if (!p) return 1;
  memset(p, 1, mb << 20);
  struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
  volatile char sink = p[(mb << 20) - 1];
  (void)sink;
  free(p);
  return 0;
}
