/* The profiler from Python: the decorator's callable (ProfiledFunction) and zones.
 *
 * Hot path: a ProfiledFunction call is one vectorcall: the switch check and po_zone_begin, the
 * wrapped call, po_zone_end. No Python attribute lookups, no allocation. The zone ends whether
 * the function returns or raises. Python zones and C zones (the library's, or an extension's)
 * share the calling OS thread's zone stack, so they land in one call tree.
 *
 * Sites: each ProfiledFunction and each distinct zone name gets one po_site for the life of the
 * process. Sites and their names are never freed: the profiler's registry borrows them. */
#include "ext.h"

#include <stddef.h>
#include <string.h>

/* The calling thread was given its Python name (threading.current_thread().name). */
static __thread int tls_named __attribute__((tls_model("initial-exec")));

static void name_thread(void) {
  tls_named = 1;
  PyObject *exc_type, *exc_value, *exc_tb;
  PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
  PyObject *modname = PyUnicode_FromString("threading");
  PyObject *mod = modname ? PyImport_GetModule(modname) : NULL;
  Py_XDECREF(modname);
  PyObject *t = mod ? PyObject_CallMethod(mod, "current_thread", NULL) : NULL;
  PyObject *name = t ? PyObject_GetAttrString(t, "name") : NULL;
  const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
  if (s) po_profile_thread_name(s);
  Py_XDECREF(name);
  Py_XDECREF(t);
  Py_XDECREF(mod);
  PyErr_Clear();
  PyErr_Restore(exc_type, exc_value, exc_tb);
}

static inline void thread_check(void) {
  if (__builtin_expect(!tls_named, 0)) name_thread();
}

PyObject *pypo_thread_name(PyObject *self, PyObject *arg) {
  (void)self;
  const char *s = PyUnicode_AsUTF8(arg);
  if (!s) return NULL;
  tls_named = 1;
  po_profile_thread_name(s);
  Py_RETURN_NONE;
}

/* A site that lives as long as the process (the registry borrows its strings). */
static po_site *site_new(const char *name, const char *file, int line) {
  po_site *s = PyMem_RawCalloc(1, sizeof *s);
  char *n = PyMem_RawMalloc(strlen(name) + 1);
  char *f = file ? PyMem_RawMalloc(strlen(file) + 1) : NULL;
  if (!s || !n || (file && !f)) {
    PyMem_RawFree(s);
    PyMem_RawFree(n);
    PyMem_RawFree(f);
    PyErr_NoMemory();
    return NULL;
  }
  memcpy(n, name, strlen(name) + 1);
  if (f) memcpy(f, file, strlen(file) + 1);
  *s = (po_site)PO_SITE_INIT(n, f ? f : "<python>", line);
  return s;
}

/* ---- ProfiledFunction ------------------------------------------------------------------------ */

typedef struct {
  PyObject_HEAD vectorcallfunc vectorcall;
  PyObject *func;
  PyObject *dict;
  PyObject *weakrefs;
  po_site *site;
} ProfiledFunction;

static PyObject *pf_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames) {
  ProfiledFunction *pf = (ProfiledFunction *)self;
  thread_check();
  int began = po__scope_begin(pf->site);
  PyObject *r = PyObject_Vectorcall(pf->func, args, nargsf, kwnames);
  if (began) po_zone_end();
  return r;
}

static PyObject *pf_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"func", "name", "file", "line", NULL};
  PyObject *func;
  const char *name, *file = NULL;
  int line = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "Os|zi:ProfiledFunction", kwlist, &func, &name,
                                   &file, &line))
    return NULL;
  if (!PyCallable_Check(func)) return PyErr_Format(PyExc_TypeError, "%R is not callable", func);
  ProfiledFunction *pf = (ProfiledFunction *)type->tp_alloc(type, 0);
  if (!pf) return NULL;
  pf->site = site_new(name, file, line);
  if (!pf->site) {
    Py_DECREF(pf);
    return NULL;
  }
  pf->func = Py_NewRef(func);
  pf->vectorcall = pf_vectorcall;
  return (PyObject *)pf;
}

static int pf_traverse(ProfiledFunction *pf, visitproc visit, void *arg) {
  Py_VISIT(pf->func);
  Py_VISIT(pf->dict);
  return 0;
}

static int pf_clear(ProfiledFunction *pf) {
  Py_CLEAR(pf->func);
  Py_CLEAR(pf->dict);
  return 0;
}

static void pf_dealloc(ProfiledFunction *pf) {
  PyObject_GC_UnTrack(pf);
  if (pf->weakrefs) PyObject_ClearWeakRefs((PyObject *)pf);
  pf_clear(pf);
  /* pf->site stays: the profiler's registry borrows it. */
  Py_TYPE(pf)->tp_free((PyObject *)pf);
}

/* Methods: accessed through an instance, the function binds like a plain function. */
static PyObject *pf_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
  (void)type;
  if (!obj || obj == Py_None) return Py_NewRef(self);
  return PyMethod_New(self, obj);
}

static PyObject *pf_repr(ProfiledFunction *pf) {
  return PyUnicode_FromFormat("<perfopt profiled %R as '%s'>", pf->func, pf->site->name);
}

static PyObject *pf_get_zone_name(ProfiledFunction *pf, void *closure) {
  (void)closure;
  return PyUnicode_FromString(pf->site->name);
}

static PyObject *pf_get_func(ProfiledFunction *pf, void *closure) {
  (void)closure;
  return Py_NewRef(pf->func);
}

static PyGetSetDef pf_getset[] = {
    {"zone_name", (getter)pf_get_zone_name, NULL, "the name it is recorded under", NULL},
    {"__perfopt_func__", (getter)pf_get_func, NULL, "the function it calls", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pypo_ProfiledFunctionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perfopt._perfopt.ProfiledFunction",
    .tp_basicsize = sizeof(ProfiledFunction),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "ProfiledFunction(func, name, file=None, line=0): calls func inside a zone",
    .tp_new = pf_new,
    .tp_dealloc = (destructor)pf_dealloc,
    .tp_traverse = (traverseproc)pf_traverse,
    .tp_clear = (inquiry)pf_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(ProfiledFunction, vectorcall),
    .tp_descr_get = pf_descr_get,
    .tp_repr = (reprfunc)pf_repr,
    .tp_getset = pf_getset,
    .tp_dictoffset = offsetof(ProfiledFunction, dict),
    .tp_weaklistoffset = offsetof(ProfiledFunction, weakrefs),
};

/* ---- zones ---------------------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD po_site *site;
  int began;
} Zone;

static PyObject *zone_sites; /* name -> capsule of its po_site (kept for the process) */

static po_site *site_for_name(PyObject *name) {
  if (!zone_sites && !(zone_sites = PyDict_New())) return NULL;
  PyObject *cap = PyDict_GetItemWithError(zone_sites, name);
  if (cap) return PyCapsule_GetPointer(cap, "perfopt.site");
  if (PyErr_Occurred()) return NULL;
  const char *s = PyUnicode_AsUTF8(name);
  if (!s) return NULL;
  po_site *site = site_new(s, "<python>", 0);
  if (!site) return NULL;
  cap = PyCapsule_New(site, "perfopt.site", NULL);
  if (!cap || PyDict_SetItem(zone_sites, name, cap) != 0) {
    Py_XDECREF(cap);
    return NULL; /* the site leaks: it may already be registered */
  }
  Py_DECREF(cap);
  return site;
}

PyObject *pypo_zone(PyObject *self, PyObject *name) {
  (void)self;
  if (!PyUnicode_Check(name))
    return PyErr_Format(PyExc_TypeError, "zone name must be a str, not %.100s",
                        Py_TYPE(name)->tp_name);
  po_site *site = site_for_name(name);
  if (!site) return NULL;
  Zone *z = PyObject_New(Zone, &pypo_ZoneType);
  if (!z) return NULL;
  z->site = site;
  z->began = 0;
  return (PyObject *)z;
}

static PyObject *zone_enter(Zone *z, PyObject *unused) {
  (void)unused;
  if (z->began) return PyErr_Format(PyExc_RuntimeError, "zone '%s' is already open", z->site->name);
  thread_check();
  z->began = po__scope_begin(z->site) ? 1 : -1;
  return Py_NewRef((PyObject *)z);
}

static PyObject *zone_exit(Zone *z, PyObject *const *args, Py_ssize_t nargs) {
  (void)args, (void)nargs;
  if (z->began == 1) po_zone_end();
  z->began = 0;
  Py_RETURN_FALSE;
}

static void zone_dealloc(Zone *z) {
  PyObject_Free(z);
}

static PyObject *zone_get_name(Zone *z, void *closure) {
  (void)closure;
  return PyUnicode_FromString(z->site->name);
}

static PyMethodDef zone_methods[] = {
    {"__enter__", (PyCFunction)zone_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))zone_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef zone_getset[] = {{"name", (getter)zone_get_name, NULL, NULL, NULL},
                                    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pypo_ZoneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perfopt._perfopt.Zone",
    .tp_basicsize = sizeof(Zone),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A zone: `with zone(name):` times the block (in the same tree as C zones).",
    .tp_dealloc = (destructor)zone_dealloc,
    .tp_methods = zone_methods,
    .tp_getset = zone_getset,
};

/* ---- a zone opened in C, for tests and examples -------------------------------------------------- */

static void *call_tramp(void *fn) {
  return PyObject_CallNoArgs((PyObject *)fn);
}

PyObject *pypo_c_zone_call(PyObject *self, PyObject *args) {
  (void)self;
  const char *name;
  PyObject *fn;
  if (!PyArg_ParseTuple(args, "sO", &name, &fn)) return NULL;
  thread_check();
  return po_profile_call(name, call_tramp, fn);
}
