/* A fake libnvidia-ml for tests: the few NVML entry points perfopt loads, with canned values, so
 * the GPU path is tested on machines without a GPU. Built into $(BUILD)/tests/fakes/libfake_nvml.so
 * by mk/platform.mk.
 *
 * PERFOPT_FAKE_NVML (read at nvmlInit) is a comma-separated list:
 *   0 | 1 | 4 ...   number of devices (default 1)
 *   fail-init       nvmlInit_v2 returns NVML_ERROR_DRIVER_NOT_LOADED (9)
 *   fail-count      nvmlDeviceGetCount_v2 returns NVML_ERROR_UNKNOWN (999)
 *   fail-calls      every per-device query returns NVML_ERROR_GPU_IS_LOST (15)
 *   fail-calls-last the same for the last device only (the others answer)
 *   v1-only         nvmlDeviceGetMemoryInfo_v2 returns NVML_ERROR_FUNCTION_NOT_FOUND (13)
 *   many-procs      device 0 runs 40 processes (more than a caller's buffer)
 * Device i: name "Fake GPU i", uuid "GPU-fake-000i", total (i+1)*8 GiB, used (i+1) GiB,
 * reserved 256 MiB, utilization 10*(i+1)% / 5*(i+1)%, 40+i C, 100+i W; device 0 runs pids 1000
 * (512 MiB) and 1001 (256 MiB).
 * The v2 memory call checks its version word exactly as the real driver does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
  unsigned int version;
  unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct {
  unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

static unsigned int n_devices = 1;
static int fail_count, fail_calls, fail_last, v1_only, many_procs, initialized;
static struct nvmlDevice_st { unsigned int index; } devices[64];

/* Exported with default visibility: these are the library's API. */
#define API __attribute__((visibility("default")))

API nvmlReturn_t nvmlInit_v2(void);
API nvmlReturn_t nvmlShutdown(void);
API const char *nvmlErrorString(nvmlReturn_t rc);
API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *dev);
API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len);
API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len);
API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m);
API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u);
API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t);
API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw);
API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                         nvmlProcessInfo_t *infos);

nvmlReturn_t nvmlInit_v2(void) {
  const char *cfg = getenv("PERFOPT_FAKE_NVML");
  char buf[256];
  n_devices = 1;
  fail_count = fail_calls = fail_last = v1_only = many_procs = 0;
  snprintf(buf, sizeof buf, "%s", cfg ? cfg : "1");
  for (char *sv, *tok = strtok_r(buf, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv)) {
    if (!strcmp(tok, "fail-init")) return 9;
    if (!strcmp(tok, "fail-count"))
      fail_count = 1;
    else if (!strcmp(tok, "fail-calls"))
      fail_calls = 1;
    else if (!strcmp(tok, "fail-calls-last"))
      fail_last = 1;
    else if (!strcmp(tok, "v1-only"))
      v1_only = 1;
    else if (!strcmp(tok, "many-procs"))
      many_procs = 1;
    else
      n_devices = (unsigned int)atoi(tok) > 64 ? 64 : (unsigned int)atoi(tok);
  }
  for (unsigned int i = 0; i < 64; i++) devices[i].index = i;
  initialized++;
  return 0;
}

nvmlReturn_t nvmlShutdown(void) {
  if (!initialized) return 1;
  initialized--;
  return 0;
}

const char *nvmlErrorString(nvmlReturn_t rc) {
  switch (rc) {
    case 0:
      return "Success";
    case 1:
      return "Uninitialized";
    case 2:
      return "Invalid Argument";
    case 9:
      return "Driver Not Loaded";
    case 13:
      return "Function Not Found";
    case 15:
      return "GPU is lost";
    case 25:
      return "Argument version mismatch";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  if (!initialized) return 1;
  if (fail_count) return 999;
  *count = n_devices;
  return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *dev) {
  if (!initialized) return 1;
  if (i >= n_devices) return 2;
  *dev = &devices[i];
  return 0;
}

/* The per-device calls of d fail. */
static int failing(nvmlDevice_t d) {
  return fail_calls || (fail_last && d->index + 1 == n_devices);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int len) {
  if (failing(d)) return 15;
  snprintf(name, len, "Fake GPU %u", d->index);
  return 0;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int len) {
  if (failing(d)) return 15;
  snprintf(uuid, len, "GPU-fake-%04u", d->index);
  return 0;
}

static void values(unsigned int i, unsigned long long *total, unsigned long long *used,
                   unsigned long long *reserved) {
  *total = (i + 1) * 8 * GIB;
  *used = (i + 1) * GIB;
  *reserved = 256 * MIB;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
  unsigned long long total, used, reserved;
  if (failing(d)) return 15;
  values(d->index, &total, &used, &reserved);
  m->total = total;
  m->used = used + reserved; /* v1 counts reserved memory as used */
  m->free = total - used - reserved;
  return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m) {
  unsigned long long total, used, reserved;
  if (v1_only) return 13;
  if (failing(d)) return 15;
  if (m->version != (unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24))) return 25;
  values(d->index, &total, &used, &reserved);
  m->total = total;
  m->used = used;
  m->reserved = reserved;
  m->free = total - used - reserved;
  return 0;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
  if (failing(d)) return 15;
  u->gpu = 10 * (d->index + 1);
  u->memory = 5 * (d->index + 1);
  return 0;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t) {
  if (failing(d)) return 15;
  if (sensor != 0) return 2;
  *t = 40 + d->index;
  return 0;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
  if (failing(d)) return 15;
  *mw = 100000 + d->index * 1000;
  return 0;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
  unsigned int n = d->index == 0 ? (many_procs ? 40u : 2u) : 0u;
  if (failing(d)) return 15;
  if (*count < n) {
    *count = n;
    return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
  }
  for (unsigned int i = 0; i < n; i++) {
    infos[i].pid = 1000 + i;
    infos[i].usedGpuMemory = i == 0 ? 512 * MIB : 256 * MIB;
    infos[i].gpuInstanceId = infos[i].computeInstanceId = 0xFFFFFFFFu;
  }
  *count = n;
  return 0;
}
