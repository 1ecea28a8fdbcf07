/* dlopen for tests/test_heap.c: loads libcjson after start-up and leaks the object that
 * cJSON_CreateObject allocates, so a site's innermost frames are in a library the process did
 * not have when the shim attached. */
#include <dlfcn.h>

int main(void) {
  void *lib = dlopen("libcjson.so.1", RTLD_NOW);
  if (!lib) return 2;
  void *(*create)(void) = (void *(*)(void))dlsym(lib, "cJSON_CreateObject");
  if (!create) return 3;
  static void *volatile keep;
  keep = create();
  return keep ? 0 : 4;
}
