/* NVML loaded at run time: no GPU SDK at build time, no libnvidia-ml at link time.
 *
 * The few types and functions used are declared here as NVML's header defines them. `_v2`
 * entry points are preferred (nvmlInit_v2 also initializes devices the v1 call would skip;
 * GetCount_v2 / GetHandleByIndex_v2 count devices the process may not access the same way);
 * their absence on old drivers falls back to the v1 names. Any failure to load or initialize is
 * the normal "no GPU" state with a reason string, never an error the caller must handle. */
#include "platform.h"
#include "base/base.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t; /* an enum in nvml.h: 0 = NVML_SUCCESS */
typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_TEMPERATURE_GPU 0
#define NVML_VALUE_NOT_AVAILABLE_ULL (~0ull)

typedef struct {
  unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
  unsigned int version;
  unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

/* NVML_STRUCT_VERSION(Memory, 2): the struct size in the low bits and the version in the top
 * byte. The driver rejects a bare 2 with NVML_ERROR_ARGUMENT_VERSION_MISMATCH. */
#define PO__NVML_MEMORY_V2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
  unsigned int gpu, memory;
} nvmlUtilization_t;

/* nvmlProcessInfo_t for the _v2/_v3 calls, and nvmlProcessInfo_v1_t for the plain one. */
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

struct po__nvml {
  void *lib;
  nvmlReturn_t (*shutdown)(void);
  const char *(*error_string)(nvmlReturn_t);
  nvmlReturn_t (*get_count)(unsigned int *);
  nvmlReturn_t (*get_handle)(unsigned int, nvmlDevice_t *);
  nvmlReturn_t (*get_name)(nvmlDevice_t, char *, unsigned int);
  nvmlReturn_t (*get_uuid)(nvmlDevice_t, char *, unsigned int);
  nvmlReturn_t (*get_memory)(nvmlDevice_t, nvmlMemory_t *);
  nvmlReturn_t (*get_memory_v2)(nvmlDevice_t, nvmlMemory_v2_t *);
  nvmlReturn_t (*get_utilization)(nvmlDevice_t, nvmlUtilization_t *);
  nvmlReturn_t (*get_temperature)(nvmlDevice_t, int, unsigned int *);
  nvmlReturn_t (*get_power)(nvmlDevice_t, unsigned int *);
  nvmlReturn_t (*get_procs)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *); /* v3 or v2 */
  nvmlReturn_t (*get_procs_v1)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *);
  int memory_v2_broken; /* the v2 call failed once with a version mismatch: use v1 from now */
  /* Process lists longer than the stack buffer: a buffer kept for the next queries (a sampler
   * tick allocates nothing once it has seen the longest list), under its own lock. */
  pthread_mutex_t procs_mu;
  nvmlProcessInfo_t *procs;
  unsigned int procs_cap;
};

/* dlsym returns void *; converting it to a function pointer is what POSIX requires to work. */
#define PO__SYM(n, field, name) \
  (*(void **)(&(n)->field) = dlsym((n)->lib, (name)), (n)->field != NULL)

static const char *nvml_err(const po__nvml *n, nvmlReturn_t rc) {
  const char *s = n && n->error_string ? n->error_string(rc) : NULL;
  return s ? s : "unknown NVML error";
}

int po__nvml_create(const char *library, po__nvml **out, char *reason, size_t reason_len) {
  if (!out) return PO_EINVAL;
  *out = NULL;
  po__nvml *n = po__calloc(1, sizeof *n);
  if (!n) return po__errf(PO_ENOMEM, reason, reason_len, "out of memory");
  pthread_mutex_init(&n->procs_mu, NULL);
  const char *names[2] = {"libnvidia-ml.so.1", "libnvidia-ml.so"};
  size_t count = 2;
  if (library && library[0]) {
    names[0] = library;
    count = 1;
  }
  const char *first_err = NULL;
  char errcopy[160] = "";
  for (size_t i = 0; i < count && !n->lib; i++) {
    n->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!n->lib && !first_err) {
      first_err = dlerror();
      po__strlcpy(errcopy, first_err ? first_err : names[i], sizeof errcopy);
    }
  }
  if (!n->lib) {
    pthread_mutex_destroy(&n->procs_mu);
    free(n);
    return po__errf(PO_ENODEV, reason, reason_len, "NVML not loaded: %s", errcopy);
  }
  nvmlReturn_t (*init)(void) = NULL;
  *(void **)(&init) = dlsym(n->lib, "nvmlInit_v2");
  if (!init) *(void **)(&init) = dlsym(n->lib, "nvmlInit");
  (void)PO__SYM(n, error_string, "nvmlErrorString");
  (void)PO__SYM(n, shutdown, "nvmlShutdown");
  if (!PO__SYM(n, get_count, "nvmlDeviceGetCount_v2"))
    (void)PO__SYM(n, get_count, "nvmlDeviceGetCount");
  if (!PO__SYM(n, get_handle, "nvmlDeviceGetHandleByIndex_v2"))
    (void)PO__SYM(n, get_handle, "nvmlDeviceGetHandleByIndex");
  (void)PO__SYM(n, get_name, "nvmlDeviceGetName");
  (void)PO__SYM(n, get_uuid, "nvmlDeviceGetUUID");
  (void)PO__SYM(n, get_memory, "nvmlDeviceGetMemoryInfo");
  (void)PO__SYM(n, get_memory_v2, "nvmlDeviceGetMemoryInfo_v2");
  (void)PO__SYM(n, get_utilization, "nvmlDeviceGetUtilizationRates");
  (void)PO__SYM(n, get_temperature, "nvmlDeviceGetTemperature");
  (void)PO__SYM(n, get_power, "nvmlDeviceGetPowerUsage");
  if (!PO__SYM(n, get_procs, "nvmlDeviceGetComputeRunningProcesses_v3"))
    (void)PO__SYM(n, get_procs, "nvmlDeviceGetComputeRunningProcesses_v2");
  (void)PO__SYM(n, get_procs_v1, "nvmlDeviceGetComputeRunningProcesses");
  if (!init || !n->get_count || !n->get_handle) {
    dlclose(n->lib);
    pthread_mutex_destroy(&n->procs_mu);
    free(n);
    return po__errf(PO_ENODEV, reason, reason_len,
                    "NVML library lacks nvmlInit/nvmlDeviceGetCount/GetHandleByIndex");
  }
  nvmlReturn_t rc = init();
  if (rc != NVML_SUCCESS) {
    po__errf(PO_ENODEV, reason, reason_len, "nvmlInit failed: %s (%d)", nvml_err(n, rc), rc);
    dlclose(n->lib);
    pthread_mutex_destroy(&n->procs_mu);
    free(n);
    return PO_ENODEV;
  }
  *out = n;
  return 0;
}

void po__nvml_destroy(po__nvml *n) {
  if (!n) return;
  if (n->shutdown) (void)n->shutdown();
  dlclose(n->lib);
  pthread_mutex_destroy(&n->procs_mu);
  free(n->procs);
  free(n);
}

static void note_error(po_gpu_info *d, const po__nvml *n, const char *call, nvmlReturn_t rc) {
  /* Not supported / no permission is how consumer boards and containers answer: not an error. */
  if (rc == NVML_ERROR_NOT_SUPPORTED || rc == NVML_ERROR_NO_PERMISSION) return;
  if (d->error[0]) return;
  snprintf(d->error, sizeof d->error, "%s: %s (%d)", call, nvml_err(n, rc), rc);
}

static void read_memory(po__nvml *n, nvmlDevice_t h, po_gpu_info *d) {
  nvmlReturn_t rc;
  if (n->get_memory_v2 && !n->memory_v2_broken) {
    nvmlMemory_v2_t m;
    memset(&m, 0, sizeof m);
    m.version = PO__NVML_MEMORY_V2;
    rc = n->get_memory_v2(h, &m);
    if (rc == NVML_SUCCESS) {
      d->memory_total_bytes = m.total;
      d->memory_used_bytes = m.used;
      d->memory_free_bytes = m.free;
      d->memory_reserved_bytes = m.reserved;
      d->memory_v2 = 1;
      return;
    }
    if (rc == NVML_ERROR_ARGUMENT_VERSION_MISMATCH || rc == NVML_ERROR_FUNCTION_NOT_FOUND)
      n->memory_v2_broken = 1;
  }
  if (!n->get_memory) return;
  nvmlMemory_t m;
  memset(&m, 0, sizeof m);
  rc = n->get_memory(h, &m);
  if (rc != NVML_SUCCESS) {
    note_error(d, n, "nvmlDeviceGetMemoryInfo", rc);
    return;
  }
  /* v1's "used" includes the driver's reserved memory. */
  d->memory_total_bytes = m.total;
  d->memory_used_bytes = m.used;
  d->memory_free_bytes = m.free;
  d->memory_v2 = 0;
}

static void store_processes(po_gpu_info *d, const nvmlProcessInfo_t *infos, unsigned int cnt) {
  size_t k = cnt < PO_GPU_MAX_PROCESSES ? cnt : PO_GPU_MAX_PROCESSES;
  for (size_t i = 0; i < k; i++) {
    d->processes[i].pid = infos[i].pid;
    d->processes[i].used_memory_bytes = infos[i].usedGpuMemory;
  }
  d->process_count = k;
  d->processes_dropped = cnt - k;
  d->processes_known = 1;
}

/* Per-process GPU memory. More processes than PO_GPU_MAX_PROCESSES: asked again with a buffer of
 * the size the driver said (once: the list may grow in between), the first ones kept, the rest
 * counted. */
/* The long-list path of read_processes: asks again with n's kept buffer, grown (doubling) when
 * the driver reports more processes than it holds. */
static void read_many_processes(po__nvml *n, nvmlDevice_t h, po_gpu_info *d, unsigned int cnt) {
  pthread_mutex_lock(&n->procs_mu);
  if (n->procs_cap < cnt + 16) {
    unsigned int cap = n->procs_cap * 2 > cnt + 16 ? n->procs_cap * 2 : cnt + 16;
    nvmlProcessInfo_t *big = po__realloc(n->procs, cap * sizeof *big);
    if (big) {
      n->procs = big;
      n->procs_cap = cap;
    }
  }
  unsigned int got = n->procs_cap;
  if (n->procs_cap >= cnt && n->get_procs(h, &got, n->procs) == NVML_SUCCESS) {
    store_processes(d, n->procs, got);
  } else {
    d->processes_known = 1;
    d->processes_dropped = cnt; /* known to exist, not listed */
  }
  pthread_mutex_unlock(&n->procs_mu);
}

static void read_processes(po__nvml *n, nvmlDevice_t h, po_gpu_info *d) {
  nvmlProcessInfo_t infos[PO_GPU_MAX_PROCESSES];
  unsigned int cnt = PO_GPU_MAX_PROCESSES;
  nvmlReturn_t rc;
  if (n->get_procs) {
    rc = n->get_procs(h, &cnt, infos);
    if (rc == NVML_SUCCESS) {
      store_processes(d, infos, cnt);
    } else if (rc == NVML_ERROR_INSUFFICIENT_SIZE && cnt > 0 && cnt < 65536) {
      read_many_processes(n, h, d, cnt);
    } else {
      note_error(d, n, "nvmlDeviceGetComputeRunningProcesses", rc);
    }
    return;
  }
  if (n->get_procs_v1) {
    nvmlProcessInfo_v1_t v1[PO_GPU_MAX_PROCESSES];
    rc = n->get_procs_v1(h, &cnt, v1);
    if (rc == NVML_SUCCESS) {
      size_t k = cnt < PO_GPU_MAX_PROCESSES ? cnt : PO_GPU_MAX_PROCESSES;
      for (size_t i = 0; i < k; i++) {
        d->processes[i].pid = v1[i].pid;
        d->processes[i].used_memory_bytes = v1[i].usedGpuMemory;
      }
      d->process_count = k;
      d->processes_known = 1;
    } else if (rc == NVML_ERROR_INSUFFICIENT_SIZE) {
      d->processes_dropped = cnt;
      d->processes_known = 1;
    } else {
      note_error(d, n, "nvmlDeviceGetComputeRunningProcesses", rc);
    }
  }
}

static void read_device(po__nvml *n, unsigned int i, po_gpu_info *d) {
  nvmlDevice_t h = NULL;
  nvmlReturn_t rc;
  memset(d, 0, sizeof *d);
  d->index = i;
  d->utilization_gpu_ratio = d->utilization_memory_ratio = -1.0;
  d->temperature_celsius = d->power_watts = -1.0;
  rc = n->get_handle(i, &h);
  if (rc != NVML_SUCCESS) {
    note_error(d, n, "nvmlDeviceGetHandleByIndex", rc);
    if (!d->error[0]) snprintf(d->error, sizeof d->error, "device not accessible (%d)", rc);
    return;
  }
  if (n->get_name && (rc = n->get_name(h, d->name, sizeof d->name)) != NVML_SUCCESS) {
    d->name[0] = '\0';
    note_error(d, n, "nvmlDeviceGetName", rc);
  }
  d->name[sizeof d->name - 1] = '\0';
  if (n->get_uuid && (rc = n->get_uuid(h, d->uuid, sizeof d->uuid)) != NVML_SUCCESS) {
    d->uuid[0] = '\0';
    note_error(d, n, "nvmlDeviceGetUUID", rc);
  }
  d->uuid[sizeof d->uuid - 1] = '\0';
  read_memory(n, h, d);
  if (n->get_utilization) {
    nvmlUtilization_t u;
    rc = n->get_utilization(h, &u);
    if (rc == NVML_SUCCESS) {
      d->utilization_gpu_ratio = u.gpu / 100.0;
      d->utilization_memory_ratio = u.memory / 100.0;
    } else {
      note_error(d, n, "nvmlDeviceGetUtilizationRates", rc);
    }
  }
  if (n->get_temperature) {
    unsigned int t;
    rc = n->get_temperature(h, NVML_TEMPERATURE_GPU, &t);
    if (rc == NVML_SUCCESS)
      d->temperature_celsius = (double)t;
    else
      note_error(d, n, "nvmlDeviceGetTemperature", rc);
  }
  if (n->get_power) {
    unsigned int mw;
    rc = n->get_power(h, &mw);
    if (rc == NVML_SUCCESS)
      d->power_watts = mw / 1000.0;
    else
      note_error(d, n, "nvmlDeviceGetPowerUsage", rc);
  }
  read_processes(n, h, d);
}

int po__nvml_query(po__nvml *n, po_gpu_info *devs, size_t max, size_t *count, size_t *dropped,
                   char *reason, size_t reason_len) {
  if (!n || !count || (max && !devs)) return PO_EINVAL;
  *count = 0;
  if (dropped) *dropped = 0;
  unsigned int total = 0;
  nvmlReturn_t rc = n->get_count(&total);
  if (rc != NVML_SUCCESS)
    return po__errf(PO_ENODEV, reason, reason_len, "nvmlDeviceGetCount failed: %s (%d)",
                    nvml_err(n, rc), rc);
  if (total == 0) return po__errf(0, reason, reason_len, "NVML reports no GPU devices");
  size_t k = total < max ? total : max;
  for (unsigned int i = 0; i < k; i++) read_device(n, i, &devs[i]);
  *count = k;
  if (dropped) *dropped = total - k;
  if (reason && reason_len) reason[0] = '\0';
  return 0;
}
