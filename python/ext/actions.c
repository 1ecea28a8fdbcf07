/* Python callables the library runs: cleanup handlers, pressure listeners, guarded operations and
 * batch-probe steps. Each trampoline takes the GIL itself (it may run on the sampler thread), and
 * the calls that may run one release the GIL first (ext.h). An exception in a handler or listener
 * is reported as a warning and never reaches the library. */
#include "ext.h"

#include <string.h>

/* The key a registered callable is kept under in the optimizer's actions dict. */
static PyObject *action_key(const char *kind, int id) {
  return Py_BuildValue("(si)", kind, id);
}

static int keep(pypo_Optimizer *self, const char *kind, int id, PyObject *fn) {
  PyObject *k = action_key(kind, id);
  int rc = k ? PyDict_SetItem(self->actions, k, fn) : -1;
  Py_XDECREF(k);
  return rc;
}

static void forget(pypo_Optimizer *self, const char *kind, int id) {
  PyObject *k = action_key(kind, id);
  if (k && PyDict_DelItem(self->actions, k) != 0) PyErr_Clear();
  Py_XDECREF(k);
}

/* ---- cleanup handlers ---------------------------------------------------------------------------- */

static void cleanup_tramp(po_cleanup_level level, void *user) {
  PyGILState_STATE g;
  if (!pypo_enter(&g)) return;
  PyObject *r = PyObject_CallFunction((PyObject *)user, "i", (int)level);
  if (r)
    Py_DECREF(r);
  else
    pypo_report_callback_error("cleanup handler", (PyObject *)user);
  PyGILState_Release(g);
}

PyObject *pypo_register_cleanup(pypo_Optimizer *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"fn", "name", "type", "priority", "min_level", NULL};
  PyObject *fn;
  const char *name;
  int type = PO_RESOURCE_OTHER, priority = 0, min_level = PO_CLEANUP_NORMAL, id = 0, rc;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|iii:register_cleanup", kwlist, &fn, &name, &type,
                                   &priority, &min_level))
    return NULL;
  if (!PyCallable_Check(fn)) return PyErr_Format(PyExc_TypeError, "%R is not callable", fn);
  if (type < PO_RESOURCE_MODEL || type > PO_RESOURCE_OTHER)
    return PyErr_Format(PyExc_ValueError, "resource type %d out of range", type);
  if (min_level != PO_CLEANUP_NORMAL && min_level != PO_CLEANUP_AGGRESSIVE)
    return PyErr_Format(PyExc_ValueError, "min_level %d: expected 0 or 1", min_level);
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  Py_INCREF(fn); /* alive from the moment it is registered */
  self->busy++;
  PYPO_NOGIL(rc = po_cleanup_register(opt, name, (po_resource_type)type, priority,
                                      (po_cleanup_level)min_level, cleanup_tramp, fn, &id));
  self->busy--;
  PyObject *r = NULL;
  if (rc)
    pypo_raise(rc, "register_cleanup", rc == PO_EFULL ? "at most 256 cleanup handlers" : NULL);
  else if (keep(self, "cleanup", id, fn) == 0)
    r = PyLong_FromLong(id);
  Py_DECREF(fn);
  return r;
}

PyObject *pypo_unregister_cleanup(pypo_Optimizer *self, PyObject *arg) {
  long v = PyLong_AsLong(arg);
  if (v == -1 && PyErr_Occurred()) return NULL;
  int id = (int)v, rc;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  self->busy++;
  PYPO_NOGIL(rc = po_cleanup_unregister(opt, id)); /* waits for a running handler */
  self->busy--;
  if (rc) return pypo_raise(rc, "unregister_cleanup", NULL);
  forget(self, "cleanup", id);
  Py_RETURN_NONE;
}

/* ---- pressure listeners ---------------------------------------------------------------------------- */

static PyObject *num_or_none(double v) {
  if (v < 0) Py_RETURN_NONE;
  return PyFloat_FromDouble(v);
}

static PyObject *int_or_none(int64_t v) {
  if (v < 0) Py_RETURN_NONE;
  return PyLong_FromLongLong((long long)v);
}

PyObject *pypo_sample_dict(const po_sample *s) {
  PyObject *d = PyDict_New();
  if (!d) return NULL;
  int bad = pypo_set(d, "t_seconds", PyFloat_FromDouble(s->t_seconds)) |
            pypo_set(d, "cpu_utilization_ratio", num_or_none(s->cpu_utilization_ratio)) |
            pypo_set(d, "process_cpu_ratio", num_or_none(s->process_cpu_ratio)) |
            pypo_set(d, "memory_used_bytes", int_or_none(s->memory_used_bytes)) |
            pypo_set(d, "memory_available_bytes", int_or_none(s->memory_available_bytes)) |
            pypo_set(d, "memory_limit_bytes", int_or_none(s->memory_limit_bytes)) |
            pypo_set(d, "memory_limit_source",
                     PyUnicode_FromString(s->memory_limit_source == PO_LIMIT_CGROUP ? "cgroup"
                                                                                   : "system")) |
            pypo_set(d, "process_rss_bytes", int_or_none(s->process_rss_bytes)) |
            pypo_set(d, "process_peak_rss_bytes", int_or_none(s->process_peak_rss_bytes)) |
            pypo_set(d, "disk_read_bytes_per_second", num_or_none(s->disk_read_bytes_per_second)) |
            pypo_set(d, "disk_write_bytes_per_second",
                     num_or_none(s->disk_write_bytes_per_second)) |
            pypo_set(d, "disk_busy_ratio", num_or_none(s->disk_busy_ratio));
  int n = s->gpu_count < 0 ? 0 : s->gpu_count > PO_SAMPLE_MAX_GPUS ? PO_SAMPLE_MAX_GPUS : s->gpu_count;
  PyObject *gpus = PyList_New(n);
  for (int i = 0; gpus && i < n; i++) {
    PyObject *g = Py_BuildValue("{s:i,s:N,s:N,s:N}", "index", i, "memory_used_bytes",
                                int_or_none(s->gpus[i].memory_used_bytes), "memory_total_bytes",
                                int_or_none(s->gpus[i].memory_total_bytes), "utilization_ratio",
                                num_or_none(s->gpus[i].utilization_ratio));
    if (!g) {
      Py_CLEAR(gpus);
      break;
    }
    PyList_SET_ITEM(gpus, i, g);
  }
  bad |= pypo_set(d, "gpus", gpus);
  if (bad) Py_CLEAR(d);
  return d;
}

static PyObject *event_dict(const po_pressure_event *ev) {
  PyObject *sample = ev->sample ? pypo_sample_dict(ev->sample) : Py_NewRef(Py_None);
  if (!sample) return NULL;
  return Py_BuildValue("{s:d,s:s,s:i,s:d,s:d,s:s,s:N}", "t_seconds", ev->t_seconds, "metric",
                       po_metric_name(ev->metric), "device", ev->device, "value", ev->value,
                       "threshold", ev->threshold, "level",
                       ev->level == PO_CLEANUP_AGGRESSIVE ? "aggressive" : "normal", "sample",
                       sample);
}

static int64_t listener_tramp(const po_pressure_event *ev, void *user) {
  PyGILState_STATE g;
  if (!pypo_enter(&g)) return 0;
  int64_t freed = 0;
  PyObject *d = event_dict(ev);
  PyObject *r = d ? PyObject_CallOneArg((PyObject *)user, d) : NULL;
  Py_XDECREF(d);
  if (!r) {
    pypo_report_callback_error("pressure listener", (PyObject *)user);
  } else if (PyLong_Check(r)) {
    long long v = PyLong_AsLongLong(r);
    if (v == -1 && PyErr_Occurred())
      pypo_report_callback_error("pressure listener (its return value)", (PyObject *)user);
    else if (v > 0)
      freed = (int64_t)v;
  }
  Py_XDECREF(r);
  PyGILState_Release(g);
  return freed;
}

PyObject *pypo_add_listener(pypo_Optimizer *self, PyObject *args) {
  PyObject *fn;
  const char *name;
  int id = 0, rc;
  if (!PyArg_ParseTuple(args, "Os:add_pressure_listener", &fn, &name)) return NULL;
  if (!PyCallable_Check(fn)) return PyErr_Format(PyExc_TypeError, "%R is not callable", fn);
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  Py_INCREF(fn);
  self->busy++;
  PYPO_NOGIL(rc = po_monitor_add_pressure_listener(opt, name, listener_tramp, fn, &id));
  self->busy--;
  PyObject *r = NULL;
  if (rc)
    pypo_raise(rc, "add_pressure_listener", rc == PO_EFULL ? "at most 64 listeners" : NULL);
  else if (keep(self, "listener", id, fn) == 0)
    r = PyLong_FromLong(id);
  Py_DECREF(fn);
  return r;
}

PyObject *pypo_remove_listener(pypo_Optimizer *self, PyObject *arg) {
  long v = PyLong_AsLong(arg);
  if (v == -1 && PyErr_Occurred()) return NULL;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  int rc;
  self->busy++;
  PYPO_NOGIL(rc = po_monitor_remove_pressure_listener(opt, (int)v));
  self->busy--;
  if (rc) return pypo_raise(rc, "remove_pressure_listener", NULL);
  forget(self, "listener", (int)v);
  Py_RETURN_NONE;
}

/* ---- the guard ------------------------------------------------------------------------------------- */

/* The Python layer passes operations that never raise: each returns (rc, payload), rc 0 or a
 * PO_E* code (PO_EOOM for an out-of-memory it caught). */
typedef struct {
  PyObject *op[2];      /* primary, fallback (may be NULL) */
  PyObject *payload[2]; /* what each returned */
  PyObject *exc_type, *exc_value, *exc_tb; /* an unexpected exception (then rc PO_ESTATE) */
} guard_ctx;

static int run_op(guard_ctx *g, int which) {
  PyGILState_STATE st;
  if (!pypo_enter(&st)) return PO_ESTATE;
  int rc = PO_ESTATE;
  PyObject *r = PyObject_CallNoArgs(g->op[which]);
  long v;
  if (r && PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2 &&
      ((v = PyLong_AsLong(PyTuple_GET_ITEM(r, 0))) != -1 || !PyErr_Occurred())) {
    rc = (int)v;
    Py_XSETREF(g->payload[which], Py_NewRef(PyTuple_GET_ITEM(r, 1)));
  } else if (!PyErr_Occurred()) {
    PyErr_Format(PyExc_TypeError, "a guarded operation must return (rc, payload), got %R", r);
  }
  if (PyErr_Occurred() && !g->exc_type) PyErr_Fetch(&g->exc_type, &g->exc_value, &g->exc_tb);
  PyErr_Clear();
  Py_XDECREF(r);
  PyGILState_Release(st);
  return rc;
}

static int guard_primary(void *ctx) {
  return run_op(ctx, 0);
}
static int guard_fallback(void *ctx) {
  return run_op(ctx, 1);
}

/* guard(primary, fallback, required_bytes, name, device, headroom_ratio, cleanup_after)
 *   -> (rc, ran, primary_rc, available_bytes, primary_payload, fallback_payload) */
PyObject *pypo_guard(pypo_Optimizer *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"primary", "fallback", "required_bytes", "name", "device",
                           "headroom_ratio", "cleanup_after", NULL};
  guard_ctx g = {{NULL, NULL}, {NULL, NULL}, NULL, NULL, NULL};
  PyObject *fallback = Py_None;
  long long required = 0;
  const char *name = NULL;
  po_guard_options o;
  po_guard_options_init(&o);
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OLzidi:guard", kwlist, &g.op[0], &fallback,
                                   &required, &name, &o.device, &o.headroom_ratio,
                                   &o.cleanup_after))
    return NULL;
  if (required < 0 || o.device < -1 || !(o.headroom_ratio >= 0))
    return PyErr_Format(PyExc_ValueError, "guard: required_bytes, device or headroom_ratio is "
                                          "negative");
  g.op[1] = fallback == Py_None ? NULL : fallback;
  o.name = name;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  po_guard_result res = {.available_bytes = -1};
  int rc;
  self->busy++;
  PYPO_NOGIL(rc = po_guard_run(opt, (int64_t)required, guard_primary,
                               g.op[1] ? guard_fallback : NULL, &g, &o, &res));
  self->busy--;
  if (g.exc_type) {
    Py_XDECREF(g.payload[0]);
    Py_XDECREF(g.payload[1]);
    PyErr_Restore(g.exc_type, g.exc_value, g.exc_tb);
    return NULL;
  }
  if (rc == PO_EINVAL) return pypo_raise(rc, "guard", "invalid guard arguments");
  return Py_BuildValue("(iiiLNN)", rc, res.ran, res.primary_rc, (long long)res.available_bytes,
                       g.payload[0] ? g.payload[0] : Py_NewRef(Py_None),
                       g.payload[1] ? g.payload[1] : Py_NewRef(Py_None));
}

/* ---- the batch probe ------------------------------------------------------------------------------- */

typedef struct {
  PyObject *step, *measure, *reduce;
  PyObject *exc_type, *exc_value, *exc_tb;
} probe_ctx;

static void probe_keep_error(probe_ctx *p) {
  if (PyErr_Occurred() && !p->exc_type) PyErr_Fetch(&p->exc_type, &p->exc_value, &p->exc_tb);
  PyErr_Clear();
}

/* The step wrapper returns an int: 0, PO_EOOM, or another PO_E* code. */
static int probe_step(int64_t batch, void *user) {
  probe_ctx *p = user;
  PyGILState_STATE st;
  if (!pypo_enter(&st)) return PO_ESTATE;
  PyObject *r = PyObject_CallFunction(p->step, "L", (long long)batch);
  long v = r ? PyLong_AsLong(r) : PO_ESTATE;
  if (!r || (v == -1 && PyErr_Occurred())) {
    v = PO_ESTATE;
    probe_keep_error(p);
  }
  Py_XDECREF(r);
  PyGILState_Release(st);
  return (int)v;
}

static int64_t probe_int(probe_ctx *p, PyObject *fn, int64_t arg, int with_arg) {
  PyGILState_STATE st;
  if (!pypo_enter(&st)) return 0;
  PyObject *r = with_arg ? PyObject_CallFunction(fn, "L", (long long)arg) : PyObject_CallNoArgs(fn);
  long long v = r ? PyLong_AsLongLong(r) : 0;
  if (!r || (v == -1 && PyErr_Occurred())) {
    v = with_arg ? arg : 0;
    probe_keep_error(p);
  }
  Py_XDECREF(r);
  PyGILState_Release(st);
  return (int64_t)v;
}

static int64_t probe_measure(void *user) {
  probe_ctx *p = user;
  return probe_int(p, p->measure, 0, 0);
}

static int64_t probe_reduce(int64_t batch, void *user) {
  probe_ctx *p = user;
  return probe_int(p, p->reduce, batch, 1);
}

static PyObject *probe_result(int rc, const po_batch_probe_result *r) {
  PyObject *mb = PyList_New(0), *mbytes = PyList_New(0);
  for (int i = 0; mb && mbytes && i < r->nmeasured && i < 3; i++) {
    PyObject *a = PyLong_FromLongLong((long long)r->measured_batch[i]);
    PyObject *b = PyLong_FromLongLong((long long)r->measured_bytes[i]);
    if (!a || !b || PyList_Append(mb, a) || PyList_Append(mbytes, b)) Py_CLEAR(mb);
    Py_XDECREF(a);
    Py_XDECREF(b);
  }
  if (!mb || !mbytes) {
    Py_XDECREF(mb);
    Py_XDECREF(mbytes);
    return NULL;
  }
  return Py_BuildValue("(i{s:L,s:L,s:d,s:d,s:L,s:i,s:i,s:N,s:N})", rc, "batch",
                       (long long)r->batch, "proposed_batch", (long long)r->proposed_batch,
                       "fixed_bytes", r->model.fixed_bytes, "bytes_per_sample",
                       r->model.bytes_per_sample, "available_bytes", (long long)r->available_bytes,
                       "steps", r->steps, "fallbacks", r->fallbacks, "measured_batch", mb,
                       "measured_bytes", mbytes);
}

/* batch_probe(step, measure=None, sizes=(), device=-1, available_bytes=0, headroom_ratio=0,
 *             max_batch=0, multiple=0, reduce=None) -> (rc, result dict) */
PyObject *pypo_batch_probe(pypo_Optimizer *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"step",           "measure",   "sizes",    "device", "available_bytes",
                           "headroom_ratio", "max_batch", "multiple", "reduce", NULL};
  probe_ctx p = {NULL, NULL, NULL, NULL, NULL, NULL};
  PyObject *measure = Py_None, *sizes = NULL, *reduce = Py_None;
  long long avail = 0, maxb = 0, mult = 0;
  po_batch_probe_options o;
  po_batch_probe_options_init(&o);
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOiLdLLO:batch_probe", kwlist, &p.step, &measure,
                                   &sizes, &o.device, &avail, &o.headroom_ratio, &maxb, &mult,
                                   &reduce))
    return NULL;
  Py_ssize_t ns = sizes ? PySequence_Size(sizes) : 0;
  if (ns < 0) return NULL;
  if (ns > 3) return PyErr_Format(PyExc_ValueError, "batch_probe: at most 3 sizes");
  for (Py_ssize_t i = 0; i < ns; i++) {
    PyObject *it = PySequence_GetItem(sizes, i);
    long long v = it ? PyLong_AsLongLong(it) : -1;
    Py_XDECREF(it);
    if (v == -1 && PyErr_Occurred()) return NULL;
    o.sizes[i] = (int64_t)v;
  }
  o.available_bytes = avail, o.max_batch = maxb, o.multiple = mult;
  if (measure != Py_None) o.measure = probe_measure, o.measure_user = &p, p.measure = measure;
  if (reduce != Py_None) o.reduce = probe_reduce, o.reduce_user = &p, p.reduce = reduce;
  po_optimizer *opt = pypo_opt(self);
  if (!opt) return NULL;
  po_batch_probe_result res;
  memset(&res, 0, sizeof res);
  int rc;
  self->busy++;
  PYPO_NOGIL(rc = po_batch_probe(opt, probe_step, &p, &o, &res));
  self->busy--;
  if (p.exc_type) {
    PyErr_Restore(p.exc_type, p.exc_value, p.exc_tb);
    return NULL;
  }
  if (rc == PO_EINVAL) return PyErr_Format(PyExc_ValueError, "batch_probe: invalid options");
  return probe_result(rc, &res);
}
