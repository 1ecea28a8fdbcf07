/* The Optimizer type: one po_optimizer (its own, or the process default), its monitor, memory
 * management and reports. Calls that may run Python callables or wait for the sampler thread
 * release the GIL (ext.h). close() waits for calls in progress, then destroys. */
#include "ext.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int pypo_config_build(const char *json, int use_env, po_config *cfg);

po_optimizer *pypo_opt(pypo_Optimizer *o) {
  if (!o->opt) {
    pypo_raise(PO_ESTATE, "optimizer", "the optimizer is closed (cleanup() was called)");
    return NULL;
  }
  return o->opt;
}

/* Brackets a call that releases the GIL, so close() can wait for it. */
#define CALL_BEGIN(self, opt)           \
  po_optimizer *opt = pypo_opt(self);   \
  if (!opt) return NULL;                \
  (self)->busy++
#define CALL_END(self) (self)->busy--

static PyObject *opt_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"config_json", "use_env", "default", NULL};
  const char *json = NULL;
  int use_env = 1, is_default = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|zpp:Optimizer", kwlist, &json, &use_env,
                                   &is_default))
    return NULL;
  pypo_Optimizer *self = (pypo_Optimizer *)type->tp_alloc(type, 0);
  if (!self || !(self->actions = PyDict_New())) {
    Py_XDECREF(self);
    return NULL;
  }
  int rc = 0;
  if (is_default) {
    PYPO_NOGIL(self->opt = po_get_optimizer());
    if (!self->opt) rc = PO_ECONFIG;
  } else {
    po_config cfg;
    if (pypo_config_build(json, use_env, &cfg) != 0) {
      Py_DECREF(self);
      return NULL;
    }
    PYPO_NOGIL(rc = po_optimizer_create(&cfg, &self->opt));
    self->owned = 1;
  }
  if (rc) {
    pypo_raise(rc, is_default ? "the default optimizer" : "PerformanceOptimizer", po_last_error());
    Py_DECREF(self);
    return NULL;
  }
  return (PyObject *)self;
}

static void destroy(pypo_Optimizer *self) {
  po_optimizer *opt = self->opt;
  self->opt = NULL;
  while (self->busy > 0) { /* a call in progress on another thread: it needs the GIL to end */
    struct timespec ts = {0, 1000000};
    PYPO_NOGIL(nanosleep(&ts, NULL));
  }
  if (opt && self->owned) PYPO_NOGIL(po_optimizer_destroy(opt));
}

static PyObject *opt_close(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  if (self->opt && self->owned) destroy(self);
  if (self->actions) PyDict_Clear(self->actions);
  pypo_drain_released();
  Py_RETURN_NONE;
}

static int opt_traverse(pypo_Optimizer *self, visitproc visit, void *arg) {
  Py_VISIT(self->actions);
  return 0;
}

static void opt_dealloc(pypo_Optimizer *self) {
  PyObject_GC_UnTrack(self);
  if (self->weakrefs) PyObject_ClearWeakRefs((PyObject *)self);
  /* The callables stay registered until the optimizer is destroyed: only an owned one can be. */
  if (self->owned && self->opt) destroy(self);
  if (!self->owned && self->actions && PyDict_Size(self->actions) > 0)
    self->actions = NULL; /* still registered in the default optimizer: kept alive for good */
  Py_CLEAR(self->actions);
  Py_TYPE(self)->tp_free((PyObject *)self);
  pypo_drain_released();
}

/* ---- monitor ----------------------------------------------------------------------------------- */

static PyObject *opt_start_monitoring(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  int rc;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_monitor_start(opt));
  CALL_END(self);
  if (rc) return pypo_raise(rc, "start_monitoring", NULL);
  Py_RETURN_NONE;
}

static PyObject *opt_stop_monitoring(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  int rc;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_monitor_stop(opt));
  CALL_END(self);
  if (rc == PO_EBUSY)
    return pypo_raise(rc, "stop_monitoring", "cannot stop the monitor from its own thread (a "
                                             "pressure listener or cleanup handler)");
  if (rc) return pypo_raise(rc, "stop_monitoring", NULL);
  Py_RETURN_NONE;
}

static PyObject *opt_monitoring(pypo_Optimizer *self, void *closure) {
  (void)closure;
  po_optimizer *opt = pypo_opt(self);
  return opt ? PyBool_FromLong(po_monitor_running(opt)) : NULL;
}

static PyObject *opt_sample_now(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  po_sample s;
  int rc;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_monitor_sample_now(opt, &s));
  CALL_END(self);
  if (rc) return pypo_raise(rc, "sample", NULL);
  return pypo_sample_dict(&s);
}

static PyObject *opt_latest(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  po_sample s;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  int rc = po_monitor_latest(opt, &s);
  if (rc == PO_ENOENT) Py_RETURN_NONE;
  if (rc) return pypo_raise(rc, "latest sample", NULL);
  return pypo_sample_dict(&s);
}

static PyObject *opt_monitor_stats(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  po_monitor_stats st;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  int rc = po_monitor_get_stats(opt, &st);
  if (rc) return pypo_raise(rc, "monitor stats", NULL);
  return Py_BuildValue("{s:K,s:d,s:d,s:d,s:d,s:K,s:K,s:n}", "samples",
                       (unsigned long long)st.samples, "interval_seconds", st.interval_seconds,
                       "effective_interval_seconds", st.effective_interval_seconds,
                       "overhead_core_ratio", st.overhead_core_ratio, "sample_cpu_seconds_avg",
                       st.sample_cpu_seconds_avg, "events", (unsigned long long)st.events,
                       "dropped_events", (unsigned long long)st.dropped_events, "series_bytes",
                       (Py_ssize_t)st.series_bytes);
}

/* ---- memory -------------------------------------------------------------------------------------- */

static PyObject *cleanup_dict(const po_cleanup_result *r) {
  return Py_BuildValue("{s:i,s:L,s:L,s:L}", "handlers_run", r->handlers_run, "rss_before_bytes",
                       (long long)r->rss_before_bytes, "rss_after_bytes",
                       (long long)r->rss_after_bytes, "freed_bytes", (long long)r->freed_bytes);
}

static int check_level(int level) {
  if (level == PO_CLEANUP_NORMAL || level == PO_CLEANUP_AGGRESSIVE) return 0;
  PyErr_Format(PyExc_ValueError, "cleanup level %d: expected 0 (normal) or 1 (aggressive)", level);
  return -1;
}

static PyObject *opt_optimize_memory(pypo_Optimizer *self, PyObject *args) {
  int level = PO_CLEANUP_NORMAL, rc;
  if (!PyArg_ParseTuple(args, "|i", &level) || check_level(level) != 0) return NULL;
  po_cleanup_result r;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_optimize_memory(opt, (po_cleanup_level)level, &r));
  CALL_END(self);
  if (rc == PO_EBUSY)
    return pypo_raise(rc, "optimize_memory", "called from inside a cleanup handler or listener");
  if (rc) return pypo_raise(rc, "optimize_memory", NULL);
  return cleanup_dict(&r);
}

static PyObject *opt_clear_resource(pypo_Optimizer *self, PyObject *args) {
  int type, level = PO_CLEANUP_NORMAL, rc;
  if (!PyArg_ParseTuple(args, "i|i", &type, &level) || check_level(level) != 0) return NULL;
  if (type < PO_RESOURCE_MODEL || type > PO_RESOURCE_OTHER)
    return PyErr_Format(PyExc_ValueError, "resource type %d out of range", type);
  po_cleanup_result r;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_clear_resource(opt, (po_resource_type)type, (po_cleanup_level)level, &r));
  CALL_END(self);
  if (rc) return pypo_raise(rc, "clear_cache", NULL);
  return cleanup_dict(&r);
}

static PyObject *opt_batch_advise(pypo_Optimizer *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"bytes_per_sample", "fixed_bytes", "batch_a", "bytes_a", "batch_b",
                           "bytes_b", "available_bytes", "device", "headroom_ratio",
                           "power_of_two", "max_batch", NULL};
  po_batch_request q = {0};
  long long per = 0, fixed = 0, ba = 0, bya = 0, bb = 0, byb = 0, avail = 0, maxb = 0;
  int pow2 = 0;
  q.device = -1;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|LLLLLLLidpL:batch_advise", kwlist, &per, &fixed,
                                   &ba, &bya, &bb, &byb, &avail, &q.device, &q.headroom_ratio,
                                   &pow2, &maxb))
    return NULL;
  q.bytes_per_sample = per, q.fixed_bytes = fixed, q.batch_a = ba, q.bytes_a = bya;
  q.batch_b = bb, q.bytes_b = byb, q.available_bytes = avail, q.max_batch = maxb;
  q.rounding = pow2 ? PO_BATCH_POWER_OF_TWO : PO_BATCH_MULTIPLE_OF_8;
  int64_t batch = 0;
  int rc;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_batch_advise(opt, &q, &batch));
  CALL_END(self);
  if (rc == PO_EINVAL) return PyErr_Format(PyExc_ValueError, "batch_advise: invalid request");
  if (rc && rc != PO_ETOOBIG) return pypo_raise(rc, "batch_advise", NULL);
  return PyLong_FromLongLong((long long)batch);
}

/* ---- phases ---------------------------------------------------------------------------------------- */

static PyObject *opt_phase_begin(pypo_Optimizer *self, PyObject *arg) {
  const char *name = PyUnicode_AsUTF8(arg);
  if (!name) return NULL;
  int rc;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_phase_begin(opt, name));
  CALL_END(self);
  if (rc) return pypo_raise(rc, "phase_begin", NULL);
  Py_RETURN_NONE;
}

static PyObject *opt_phase_end(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  int rc;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_phase_end(opt));
  CALL_END(self);
  if (rc) return pypo_raise(rc, "phase_end", NULL);
  Py_RETURN_NONE;
}

static PyObject *opt_phase_set_cleanup(pypo_Optimizer *self, PyObject *arg) {
  long level = PyLong_AsLong(arg);
  if (level == -1 && PyErr_Occurred()) return NULL;
  if (level != -1 && check_level((int)level) != 0) return NULL;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  int rc = po_phase_set_cleanup(opt, (int)level);
  if (rc) return pypo_raise(rc, "phase cleanup", NULL);
  Py_RETURN_NONE;
}

/* ---- reports ---------------------------------------------------------------------------------------- */

static PyObject *opt_report_json(pypo_Optimizer *self, PyObject *args) {
  int pretty = 0, rc;
  if (!PyArg_ParseTuple(args, "|p", &pretty)) return NULL;
  po_report *rep = NULL;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(rc = po_report_create(opt, &rep));
  CALL_END(self);
  if (rc) return pypo_raise(rc, "get_profiling_report", NULL);
  char *s = po_report_to_string(rep, pretty);
  po_report_destroy(rep);
  if (!s) return PyErr_NoMemory();
  PyObject *r = PyUnicode_FromString(s);
  po_free(s);
  return r;
}

typedef enum { SAVE_JSON, SAVE_HTML, SAVE_TRACE } save_kind;

static PyObject *save(pypo_Optimizer *self, PyObject *arg, save_kind kind) {
  PyObject *bytes = NULL;
  if (!PyUnicode_FSConverter(arg, &bytes)) return NULL;
  const char *path = PyBytes_AS_STRING(bytes);
  char err[512] = "";
  int rc = 0;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) {
    Py_DECREF(bytes);
    return NULL;
  }
  self->busy++;
  Py_BEGIN_ALLOW_THREADS;
  if (kind == SAVE_JSON) {
    rc = po_optimizer_save_json(opt, path);
  } else if (kind == SAVE_HTML) {
    rc = po_optimizer_save_html(opt, path);
  } else {
    po_report *rep = NULL;
    rc = po_report_create(opt, &rep);
    if (!rc) rc = po_report_save_trace(rep, path, err, sizeof err);
    po_report_destroy(rep);
  }
  Py_END_ALLOW_THREADS;
  self->busy--;
  PyObject *r = NULL;
  if (!rc)
    r = Py_NewRef(Py_None);
  else if (rc == PO_EIO || rc == PO_ENOENT)
    PyErr_Format(PyExc_OSError, "%s", *err ? err : po_last_error());
  else
    pypo_raise(rc, path, *err ? err : po_last_error());
  Py_DECREF(bytes);
  return r;
}

static PyObject *opt_save_json(pypo_Optimizer *self, PyObject *arg) {
  return save(self, arg, SAVE_JSON);
}
static PyObject *opt_save_html(pypo_Optimizer *self, PyObject *arg) {
  return save(self, arg, SAVE_HTML);
}
static PyObject *opt_save_trace(pypo_Optimizer *self, PyObject *arg) {
  return save(self, arg, SAVE_TRACE);
}

static PyObject *opt_text(pypo_Optimizer *self, PyObject *args) {
  int sort = PO_SORT_TOTAL, rc = PO_ENOMEM;
  if (!PyArg_ParseTuple(args, "|i", &sort)) return NULL;
  if (sort < PO_SORT_TOTAL || sort > PO_SORT_CALLS)
    return PyErr_Format(PyExc_ValueError, "sort %d: expected 0 (total), 1 (self) or 2 (calls)",
                        sort);
  char *buf = NULL;
  size_t len = 0;
  CALL_BEGIN(self, opt);
  Py_BEGIN_ALLOW_THREADS;
  FILE *f = open_memstream(&buf, &len);
  if (f) {
    rc = po_optimizer_write_text(opt, f, (po_sort)sort);
    if (fclose(f) != 0 && !rc) rc = PO_ENOMEM;
  }
  Py_END_ALLOW_THREADS;
  CALL_END(self);
  PyObject *r = rc ? pypo_raise(rc, "profile table", NULL)
                   : PyUnicode_DecodeUTF8(buf, (Py_ssize_t)len, "replace");
  free(buf);
  return r;
}

static PyObject *opt_config_json(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  char *s = po_config_to_json(po_optimizer_config(opt));
  if (!s) return PyErr_NoMemory();
  PyObject *r = PyUnicode_FromString(s);
  po_free(s);
  return r;
}

static PyObject *opt_cache(pypo_Optimizer *self, PyObject *unused) {
  (void)unused;
  po_cache *c;
  CALL_BEGIN(self, opt);
  PYPO_NOGIL(c = po_optimizer_cache(opt));
  CALL_END(self);
  if (!c) return pypo_raise(PO_EINVAL, "cache", po_last_error());
  return pypo_cache_new(self, c);
}

static PyObject *opt_closed(pypo_Optimizer *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(self->opt == NULL);
}

static PyObject *opt_is_default(pypo_Optimizer *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(!self->owned);
}

#define FN(f) ((PyCFunction)(void (*)(void))(f))
static PyMethodDef opt_methods[] = {
    {"close", FN(opt_close), METH_NOARGS, "destroy the optimizer (the default one stays)"},
    {"start_monitoring", FN(opt_start_monitoring), METH_NOARGS, NULL},
    {"stop_monitoring", FN(opt_stop_monitoring), METH_NOARGS, NULL},
    {"sample_now", FN(opt_sample_now), METH_NOARGS, NULL},
    {"latest", FN(opt_latest), METH_NOARGS, NULL},
    {"monitor_stats", FN(opt_monitor_stats), METH_NOARGS, NULL},
    {"optimize_memory", FN(opt_optimize_memory), METH_VARARGS, NULL},
    {"clear_resource", FN(opt_clear_resource), METH_VARARGS, NULL},
    {"register_cleanup", FN(pypo_register_cleanup), METH_VARARGS | METH_KEYWORDS, NULL},
    {"unregister_cleanup", FN(pypo_unregister_cleanup), METH_O, NULL},
    {"add_listener", FN(pypo_add_listener), METH_VARARGS, NULL},
    {"remove_listener", FN(pypo_remove_listener), METH_O, NULL},
    {"guard", FN(pypo_guard), METH_VARARGS | METH_KEYWORDS, NULL},
    {"batch_advise", FN(opt_batch_advise), METH_VARARGS | METH_KEYWORDS, NULL},
    {"batch_probe", FN(pypo_batch_probe), METH_VARARGS | METH_KEYWORDS, NULL},
    {"phase_begin", FN(opt_phase_begin), METH_O, NULL},
    {"phase_end", FN(opt_phase_end), METH_NOARGS, NULL},
    {"phase_set_cleanup", FN(opt_phase_set_cleanup), METH_O, NULL},
    {"report_json", FN(opt_report_json), METH_VARARGS, NULL},
    {"save_json", FN(opt_save_json), METH_O, NULL},
    {"save_html", FN(opt_save_html), METH_O, NULL},
    {"save_trace", FN(opt_save_trace), METH_O, NULL},
    {"text", FN(opt_text), METH_VARARGS, NULL},
    {"config_json", FN(opt_config_json), METH_NOARGS, NULL},
    {"cache", FN(opt_cache), METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};
#undef FN

static PyGetSetDef opt_getset[] = {
    {"monitoring", (getter)opt_monitoring, NULL, "the sampler thread runs", NULL},
    {"closed", (getter)opt_closed, NULL, NULL, NULL},
    {"is_default", (getter)opt_is_default, NULL, "the process-wide default optimizer", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pypo_OptimizerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perfopt._perfopt.Optimizer",
    .tp_basicsize = sizeof(pypo_Optimizer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Optimizer(config_json=None, use_env=True, default=False): one po_optimizer",
    .tp_new = opt_new,
    .tp_dealloc = (destructor)opt_dealloc,
    .tp_traverse = (traverseproc)opt_traverse,
    .tp_methods = opt_methods,
    .tp_getset = opt_getset,
    .tp_weaklistoffset = offsetof(pypo_Optimizer, weakrefs),
};
