/* Test child for perfopt run: dies of a segmentation fault (a write through a null pointer). */
#include <stdlib.h>

int main(int argc, char **argv) {
  (void)argv;
  volatile int *p = argc > 100 ? malloc(4) : NULL;
  *p = 1;
  return 0;
}
