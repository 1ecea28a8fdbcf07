/* perfopt._perfopt: the module, errors, configuration, GPUs, the system report and downsampling.
 * See ext.h for the threading rules. */
#include "ext.h"

#include <limits.h>
#include <stdatomic.h>
#include <string.h>

PyObject *pypo_Error;
static atomic_int alive = 1;

/* ---- errors ----------------------------------------------------------------------------------- */

PyObject *pypo_raise(int rc, const char *what, const char *detail) {
  if (rc == PO_ENOMEM) return PyErr_NoMemory();
  const char *msg = detail && *detail ? detail : po_strerror(rc);
  PyObject *text = what && *what ? PyUnicode_FromFormat("%s: %s (%s)", what, msg, po_err_name(rc))
                                 : PyUnicode_FromFormat("%s (%s)", msg, po_err_name(rc));
  if (!text) return NULL;
  PyObject *exc = PyObject_CallOneArg(pypo_Error, text);
  Py_DECREF(text);
  if (!exc) return NULL;
  PyObject *code = PyLong_FromLong(rc), *name = PyUnicode_FromString(po_err_name(rc));
  if (code && name && PyObject_SetAttrString(exc, "code", code) == 0 &&
      PyObject_SetAttrString(exc, "errname", name) == 0)
    PyErr_SetObject(pypo_Error, exc);
  Py_XDECREF(code);
  Py_XDECREF(name);
  Py_DECREF(exc);
  return NULL;
}

/* ---- callbacks from library threads -------------------------------------------------------------- */

int pypo_alive(void) {
  return atomic_load_explicit(&alive, memory_order_acquire);
}

static int finalizing(void) {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

int pypo_enter(PyGILState_STATE *g) {
  if (!pypo_alive() || finalizing()) return 0;
  *g = PyGILState_Ensure();
  return 1;
}

void pypo_report_callback_error(const char *what, PyObject *fn) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (PyErr_WarnFormat(PyExc_RuntimeWarning, 1, "perfopt: %s %R raised %R", what, fn,
                       value ? value : Py_None) != 0) {
    /* Warnings are errors here: hand the original to sys.unraisablehook instead. */
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
    PyErr_WriteUnraisable(fn);
    return;
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
}

int pypo_set(PyObject *d, const char *key, PyObject *v) {
  if (!v) return -1;
  int rc = PyDict_SetItemString(d, key, v);
  Py_DECREF(v);
  return rc;
}

/* Stops callbacks from library threads for good (atexit, before finalization). */
static PyObject *m_shutdown(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  atomic_store_explicit(&alive, 0, memory_order_release);
  pypo_drain_released();
  Py_RETURN_NONE;
}

static PyObject *m_drain(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  pypo_drain_released();
  Py_RETURN_NONE;
}

static PyObject *m_strerror(PyObject *self, PyObject *arg) {
  (void)self;
  long rc = PyLong_AsLong(arg);
  if (rc == -1 && PyErr_Occurred()) return NULL;
  if (rc < INT_MIN || rc > INT_MAX) rc = INT_MIN;
  return Py_BuildValue("(ss)", po_err_name((int)rc), po_strerror((int)rc));
}

/* ---- configuration ---------------------------------------------------------------------------- */

static PyObject *m_config_keys(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  size_t n = po_config_key_count();
  PyObject *list = PyList_New((Py_ssize_t)n);
  for (size_t i = 0; list && i < n; i++) {
    PyObject *t = Py_BuildValue("(ss)", po_config_key_name(i), po_config_key_help(i));
    if (!t) {
      Py_CLEAR(list);
      break;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, t);
  }
  return list;
}

static PyObject *config_json(const po_config *cfg) {
  char *s = po_config_to_json(cfg);
  if (!s) return PyErr_NoMemory();
  PyObject *r = PyUnicode_FromString(s);
  po_free(s);
  return r;
}

/* Fills *cfg: the defaults (or defaults, PERFOPT_CONFIG file and environment when use_env), then
 * the JSON object json (may be NULL). Raises ValueError with perfopt's message. Returns 0/-1. */
int pypo_config_build(const char *json, int use_env, po_config *cfg);
int pypo_config_build(const char *json, int use_env, po_config *cfg) {
  char err[512] = "";
  int rc = 0;
  if (use_env)
    rc = po_config_load(cfg, err, sizeof err);
  else
    po_config_defaults(cfg);
  if (!rc && json) rc = po_config_load_json(cfg, json, err, sizeof err);
  if (!rc) return 0;
  if (rc == PO_ECONFIG || rc == PO_EPARSE)
    PyErr_SetString(PyExc_ValueError, err);
  else
    pypo_raise(rc, "configuration", err);
  return -1;
}

static PyObject *m_config_resolve(PyObject *self, PyObject *args) {
  (void)self;
  const char *json = NULL;
  int use_env = 1;
  if (!PyArg_ParseTuple(args, "z|p", &json, &use_env)) return NULL;
  po_config cfg;
  if (pypo_config_build(json, use_env, &cfg) != 0) return NULL;
  return config_json(&cfg);
}

/* ---- GPUs and the system report ----------------------------------------------------------------- */

static int nvml_config(const char *nvml, po_config *cfg) {
  po_config_defaults(cfg);
  if (!nvml || !*nvml) return 0;
  char err[512];
  if (po_config_set(cfg, "NVML_LIBRARY", nvml, err, sizeof err) != 0) {
    PyErr_SetString(PyExc_ValueError, err);
    return -1;
  }
  return 0;
}

static PyObject *ratio_or_none(double v) {
  if (v < 0) Py_RETURN_NONE;
  return PyFloat_FromDouble(v);
}

static PyObject *gpu_dict(const po_gpu_info *g) {
  PyObject *d = PyDict_New();
  if (!d) return NULL;
  int bad = pypo_set(d, "index", PyLong_FromUnsignedLong(g->index)) |
            pypo_set(d, "name", PyUnicode_DecodeUTF8(g->name, (Py_ssize_t)strlen(g->name), "replace")) |
            pypo_set(d, "uuid", PyUnicode_DecodeUTF8(g->uuid, (Py_ssize_t)strlen(g->uuid), "replace")) |
            pypo_set(d, "memory_total_bytes", PyLong_FromUnsignedLongLong(g->memory_total_bytes)) |
            pypo_set(d, "memory_used_bytes", PyLong_FromUnsignedLongLong(g->memory_used_bytes)) |
            pypo_set(d, "memory_free_bytes", PyLong_FromUnsignedLongLong(g->memory_free_bytes)) |
            pypo_set(d, "memory_reserved_bytes",
                     PyLong_FromUnsignedLongLong(g->memory_reserved_bytes)) |
            pypo_set(d, "utilization_gpu_ratio", ratio_or_none(g->utilization_gpu_ratio)) |
            pypo_set(d, "utilization_memory_ratio", ratio_or_none(g->utilization_memory_ratio)) |
            pypo_set(d, "temperature_celsius", ratio_or_none(g->temperature_celsius)) |
            pypo_set(d, "power_watts", ratio_or_none(g->power_watts)) |
            pypo_set(d, "error", PyUnicode_DecodeUTF8(g->error, (Py_ssize_t)strlen(g->error), "replace"));
  PyObject *procs = g->processes_known ? PyList_New(0) : Py_NewRef(Py_None);
  for (size_t i = 0; procs && procs != Py_None && i < g->process_count; i++) {
    const po_gpu_process *p = &g->processes[i];
    PyObject *used = p->used_memory_bytes == UINT64_MAX
                         ? Py_NewRef(Py_None)
                         : PyLong_FromUnsignedLongLong(p->used_memory_bytes);
    PyObject *t = used ? Py_BuildValue("{s:k,s:N}", "pid", (unsigned long)p->pid,
                                       "used_memory_bytes", used)
                       : NULL;
    if (!t || PyList_Append(procs, t) != 0) bad = 1;
    Py_XDECREF(t);
  }
  bad |= pypo_set(d, "processes", procs);
  if (bad) Py_CLEAR(d);
  return d;
}

/* Reads every device (at most PO_GPU_MAX_DEVICES). Returns the count or -1 with an exception. */
static Py_ssize_t read_gpus(const char *nvml, po_gpu_info *devs, char *reason, size_t reason_len) {
  po_config cfg;
  if (nvml_config(nvml, &cfg) != 0) return -1;
  size_t count = 0;
  int rc;
  PYPO_NOGIL(rc = po_gpu_usage(&cfg, devs, PO_GPU_MAX_DEVICES, &count, reason, reason_len));
  if (rc) {
    pypo_raise(rc, "measure_gpu_usage", NULL);
    return -1;
  }
  return (Py_ssize_t)count;
}

static PyObject *m_gpu_usage(PyObject *self, PyObject *args) {
  (void)self;
  const char *nvml = NULL;
  if (!PyArg_ParseTuple(args, "|z", &nvml)) return NULL;
  po_gpu_info *devs = PyMem_Calloc(PO_GPU_MAX_DEVICES, sizeof *devs);
  if (!devs) return PyErr_NoMemory();
  char reason[256] = "";
  Py_ssize_t n = read_gpus(nvml, devs, reason, sizeof reason);
  PyObject *list = n >= 0 ? PyList_New(n) : NULL;
  for (Py_ssize_t i = 0; list && i < n; i++) {
    PyObject *d = gpu_dict(&devs[i]);
    if (!d) {
      Py_CLEAR(list);
      break;
    }
    PyList_SET_ITEM(list, i, d);
  }
  PyMem_Free(devs);
  return list ? Py_BuildValue("(Ns)", list, reason) : NULL;
}

static PyObject *m_gpu_targets(PyObject *self, PyObject *args) {
  (void)self;
  const char *nvml = NULL;
  if (!PyArg_ParseTuple(args, "|z", &nvml)) return NULL;
  po_gpu_info *devs = PyMem_Calloc(PO_GPU_MAX_DEVICES, sizeof *devs);
  po_gpu_target *t = PyMem_Calloc(PO_GPU_MAX_DEVICES, sizeof *t);
  char reason[256] = "";
  Py_ssize_t n = devs && t ? read_gpus(nvml, devs, reason, sizeof reason) : -1;
  if (!devs || !t) PyErr_NoMemory();
  if (n > 0 && po_gpu_optimal_targets(devs, (size_t)n, t) != 0) {
    pypo_raise(PO_EINVAL, "get_optimal_gpu_targets", NULL);
    n = -1;
  }
  PyObject *list = n >= 0 ? PyList_New(n) : NULL;
  for (Py_ssize_t i = 0; list && i < n; i++) {
    PyObject *d = Py_BuildValue(
        "{s:k,s:s,s:d,s:K,s:K,s:K,s:s}", "index", (unsigned long)t[i].index, "name", devs[i].name,
        "memory_threshold_ratio", t[i].memory_threshold_ratio, "memory_total_bytes",
        (unsigned long long)devs[i].memory_total_bytes, "target_bytes",
        (unsigned long long)t[i].target_bytes, "headroom_bytes",
        (unsigned long long)t[i].headroom_bytes, "why", t[i].why);
    if (!d) {
      Py_CLEAR(list);
      break;
    }
    PyList_SET_ITEM(list, i, d);
  }
  PyMem_Free(devs);
  PyMem_Free(t);
  return list ? Py_BuildValue("(Ns)", list, reason) : NULL;
}

/* The system resource report (`perfopt sysinfo --json`) as a JSON string. */
static PyObject *m_sysinfo_json(PyObject *self, PyObject *args) {
  (void)self;
  int window_ms = 200;
  const char *json = NULL;
  if (!PyArg_ParseTuple(args, "|iz", &window_ms, &json)) return NULL;
  po_config cfg;
  if (pypo_config_build(json, 1, &cfg) != 0) return NULL;
  po_report *rep = NULL;
  int rc;
  PYPO_NOGIL(rc = po_report_create_sysinfo(&cfg, window_ms, &rep));
  if (rc) return pypo_raise(rc, "system report", NULL);
  char *s = po_report_to_string(rep, 1);
  po_report_destroy(rep);
  if (!s) return PyErr_NoMemory();
  PyObject *r = PyUnicode_FromString(s);
  po_free(s);
  return r;
}

/* ---- downsampling --------------------------------------------------------------------------------- */

/* A contiguous float64 or float32 buffer of n values. Returns 0, or -1 with an exception. */
static int get_values(PyObject *obj, const char *what, Py_buffer *view, po_ds_type *type) {
  if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) return -1;
  const char *f = view->format ? view->format : "B";
  if (*f == '@' || *f == '=' || *f == '<') f++;
  if (view->ndim <= 1 && !strcmp(f, "d") && view->itemsize == 8) {
    *type = PO_DS_F64;
    return 0;
  }
  if (view->ndim <= 1 && !strcmp(f, "f") && view->itemsize == 4) {
    *type = PO_DS_F32;
    return 0;
  }
  PyErr_Format(PyExc_TypeError, "%s: expected a 1-D contiguous float64 or float32 buffer, got "
               "format '%s' with %d dimensions", what, view->format ? view->format : "B",
               view->ndim);
  PyBuffer_Release(view);
  return -1;
}

/* downsample(method, x or None, y, n_out, x_lo=0, x_hi=0) -> bytes of size_t indices. */
static PyObject *m_downsample(PyObject *self, PyObject *args) {
  (void)self;
  int method;
  PyObject *xo, *yo;
  Py_ssize_t n_out;
  double lo = 0, hi = 0;
  if (!PyArg_ParseTuple(args, "iOOn|dd", &method, &xo, &yo, &n_out, &lo, &hi)) return NULL;
  if (method < PO_DS_M4 || method > PO_DS_MINMAXLTTB || n_out <= 0)
    return PyErr_Format(PyExc_ValueError, "downsample: bad method %d or size %zd", method, n_out);
  Py_buffer xv = {0}, yv = {0};
  po_ds_input in = {0};
  if (get_values(yo, "y", &yv, &in.y_type) != 0) return NULL;
  in.y = yv.buf;
  in.n = (size_t)(yv.len / yv.itemsize);
  if (xo != Py_None) {
    if (get_values(xo, "x", &xv, &in.x_type) != 0) {
      PyBuffer_Release(&yv);
      return NULL;
    }
    if (xv.len / xv.itemsize != (Py_ssize_t)in.n) {
      PyBuffer_Release(&xv);
      PyBuffer_Release(&yv);
      return PyErr_Format(PyExc_ValueError, "downsample: x has %zd values, y has %zu",
                          xv.len / xv.itemsize, in.n);
    }
    in.x = xv.buf;
  }
  in.x_lo = lo;
  in.x_hi = hi;
  size_t cap = po_ds_capacity((po_ds_method)method, (size_t)n_out);
  if (cap > in.n) cap = in.n ? in.n : 1;
  PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(cap * sizeof(size_t)));
  int64_t got = PO_ENOMEM;
  char err[256] = "";
  if (out) {
    size_t *idx = (size_t *)(void *)PyBytes_AS_STRING(out);
    PYPO_NOGIL(got = po_downsample((po_ds_method)method, &in, (size_t)n_out, idx, cap, err,
                                   sizeof err));
  }
  if (xo != Py_None) PyBuffer_Release(&xv);
  PyBuffer_Release(&yv);
  if (!out) return NULL;
  if (got < 0) {
    Py_DECREF(out);
    if (got == PO_EINVAL) return PyErr_Format(PyExc_ValueError, "downsample: %s", err);
    return pypo_raise((int)got, "downsample", err);
  }
  if (_PyBytes_Resize(&out, (Py_ssize_t)((size_t)got * sizeof(size_t))) != 0) return NULL;
  return out;
}

/* column(x, lo, hi, width): po_ds_column, the pixel column M4 puts x in. */
static PyObject *m_column(PyObject *self, PyObject *args) {
  (void)self;
  double x, lo, hi;
  Py_ssize_t width;
  if (!PyArg_ParseTuple(args, "dddn", &x, &lo, &hi, &width)) return NULL;
  if (width <= 0) return PyErr_Format(PyExc_ValueError, "column: width must be positive");
  return PyLong_FromSize_t(po_ds_column(x, lo, hi, (size_t)width));
}

/* ---- profiler switches ---------------------------------------------------------------------------- */

static PyObject *m_profile_enabled(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  return PyBool_FromLong(po_profile_enabled());
}

static PyObject *m_set_profile_enabled(PyObject *self, PyObject *arg) {
  (void)self;
  int on = PyObject_IsTrue(arg);
  if (on < 0) return NULL;
  po_profile_set_enabled(on);
  Py_RETURN_NONE;
}

static PyObject *m_set_timeline(PyObject *self, PyObject *args) {
  (void)self;
  int on;
  Py_ssize_t n = 65536;
  if (!PyArg_ParseTuple(args, "p|n", &on, &n)) return NULL;
  if (n < 0) return PyErr_Format(PyExc_ValueError, "events_per_thread must be positive");
  int rc = po_profile_set_timeline(on, (size_t)n);
  if (rc == PO_ERANGE)
    return PyErr_Format(PyExc_ValueError, "events_per_thread %zd out of range (16 .. 67108864)", n);
  if (rc) return pypo_raise(rc, "set_timeline", NULL);
  Py_RETURN_NONE;
}

static PyObject *m_profile_reset(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  PYPO_NOGIL(po_profile_reset());
  Py_RETURN_NONE;
}

static PyObject *m_profile_counters(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  po_profile_counters c;
  po_profile_get_counters(&c);
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "dropped_events",
                       (unsigned long long)c.dropped_events, "truncated_names",
                       (unsigned long long)c.truncated_names, "null_names",
                       (unsigned long long)c.null_names, "unmatched_ends",
                       (unsigned long long)c.unmatched_ends, "open_at_exit",
                       (unsigned long long)c.open_at_exit, "depth_overflows",
                       (unsigned long long)c.depth_overflows, "site_overflows",
                       (unsigned long long)c.site_overflows);
}

/* A report of the profile alone (no optimizer): JSON text. */
static PyObject *m_profile_report_json(PyObject *self, PyObject *unused) {
  (void)self, (void)unused;
  po_report *rep = NULL;
  int rc;
  PYPO_NOGIL(rc = po_report_create(NULL, &rep));
  if (rc) return pypo_raise(rc, "profile report", NULL);
  char *s = po_report_to_string(rep, 0);
  po_report_destroy(rep);
  if (!s) return PyErr_NoMemory();
  PyObject *r = PyUnicode_FromString(s);
  po_free(s);
  return r;
}

/* ---- the module ---------------------------------------------------------------------------------- */

#define FN(f) ((PyCFunction)(void (*)(void))(f))
static PyMethodDef methods[] = {
    {"_shutdown", m_shutdown, METH_NOARGS, "stop running Python callbacks (interpreter exit)"},
    {"_drain", m_drain, METH_NOARGS, "drop references of objects that left a cache"},
    {"strerror", m_strerror, METH_O, "strerror(code) -> (name, message)"},
    {"config_keys", m_config_keys, METH_NOARGS, "[(KEY, help)] of every configuration key"},
    {"config_resolve", m_config_resolve, METH_VARARGS,
     "config_resolve(json or None, use_env=True) -> the configuration in force as JSON"},
    {"gpu_usage", m_gpu_usage, METH_VARARGS, "gpu_usage(nvml_library=None) -> ([dict], reason)"},
    {"gpu_targets", m_gpu_targets, METH_VARARGS,
     "gpu_targets(nvml_library=None) -> ([dict], reason)"},
    {"sysinfo_json", m_sysinfo_json, METH_VARARGS,
     "sysinfo_json(window_ms=200, config_json=None) -> the system resource report (JSON)"},
    {"downsample", m_downsample, METH_VARARGS,
     "downsample(method, x or None, y, n_out, x_lo=0, x_hi=0) -> bytes of size_t indices"},
    {"column", m_column, METH_VARARGS, "column(x, lo, hi, width) -> M4's pixel column of x"},
    {"profile_enabled", m_profile_enabled, METH_NOARGS, "is profiling on"},
    {"set_profile_enabled", m_set_profile_enabled, METH_O, "turn profiling on or off"},
    {"set_timeline", m_set_timeline, METH_VARARGS, "set_timeline(on, events_per_thread=65536)"},
    {"profile_reset", m_profile_reset, METH_NOARGS, "forget everything recorded"},
    {"profile_counters", m_profile_counters, METH_NOARGS, "what the profiler could not record"},
    {"profile_report_json", m_profile_report_json, METH_NOARGS, "the profile report as JSON"},
    {"zone", pypo_zone, METH_O, "zone(name) -> a context manager timing its block"},
    {"thread_name", pypo_thread_name, METH_O, "names the calling thread in reports"},
    {"_c_zone_call", pypo_c_zone_call, METH_VARARGS,
     "_c_zone_call(name, fn): calls fn inside a zone opened in C (po_profile_call)"},
    {NULL, NULL, 0, NULL}};
#undef FN

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "perfopt._perfopt",
                                       "perfopt's C core (see perfopt for the Python API)", -1,
                                       methods, NULL, NULL, NULL, NULL};

static int add_type(PyObject *m, PyTypeObject *t, const char *name) {
  if (PyType_Ready(t) != 0) return -1;
  Py_INCREF(t);
  if (PyModule_AddObject(m, name, (PyObject *)t) != 0) {
    Py_DECREF(t);
    return -1;
  }
  return 0;
}

static int add_constants(PyObject *m) {
  int bad = PyModule_AddStringConstant(m, "VERSION", PO_VERSION_STRING);
#define PYPO_ERR_CONST(name, value, msg) bad |= PyModule_AddIntConstant(m, #name, value);
  PO_ERRNO_MAP(PYPO_ERR_CONST)
#undef PYPO_ERR_CONST
  bad |= PyModule_AddIntConstant(m, "HAVE_BATCH_PROBE", 1);
  return bad ? -1 : 0;
}

PyMODINIT_FUNC PyInit__perfopt(void);
PyMODINIT_FUNC PyInit__perfopt(void) {
  PyObject *m = PyModule_Create(&moduledef);
  if (!m) return NULL;
  pypo_Error = PyErr_NewExceptionWithDoc(
      "perfopt.Error",
      "An error from perfopt's C core: .code is the negative PO_E* number, .errname its name.",
      PyExc_RuntimeError, NULL);
  if (!pypo_Error || PyModule_AddObject(m, "Error", Py_NewRef(pypo_Error)) != 0 ||
      add_constants(m) != 0 || add_type(m, &pypo_ProfiledFunctionType, "ProfiledFunction") != 0 ||
      add_type(m, &pypo_ZoneType, "Zone") != 0 ||
      add_type(m, &pypo_OptimizerType, "Optimizer") != 0 ||
      add_type(m, &pypo_CacheType, "Cache") != 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
