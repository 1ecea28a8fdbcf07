/* The optimizer's cache holding Python objects.
 *
 * A cached value is a holder that owns one reference to the object. The cache calls the holder's
 * free callback when the entry leaves (eviction, removal, shrink under pressure on the sampler
 * thread, destroy), with its own lock held: the callback only pushes the holder on a lock-free
 * list. The references are dropped later with the GIL held: right after each cache call from
 * Python, and through Py_AddPendingCall for frees on other threads. A decref can run any code
 * (__del__, weakref callbacks), which must never run under the cache's lock; and a borrowed
 * pointer from po_cache_get stays valid while this thread holds the GIL, since the holder cannot
 * be drained meanwhile.
 *
 * Hot path: get is po_cache_get (no lock for SIEVE and S3-FIFO) and one incref. */
#include "ext.h"

#include <stdatomic.h>
#include <string.h>

typedef struct holder {
  PyObject *obj;
  struct holder *next;
} holder;

static _Atomic(holder *) released;

static int pending_drain(void *unused) {
  (void)unused;
  pypo_drain_released();
  return 0;
}

/* The cache's free callback: any thread, cache lock held, GIL maybe not held. No Python here. */
static void holder_free(void *value) {
  holder *h = value;
  holder *head = atomic_load_explicit(&released, memory_order_relaxed);
  do h->next = head;
  while (!atomic_compare_exchange_weak_explicit(&released, &head, h, memory_order_release,
                                                memory_order_relaxed));
  if (!head && pypo_alive()) Py_AddPendingCall(pending_drain, NULL); /* may fail: drained later */
}

void pypo_drain_released(void) {
  if (!atomic_load_explicit(&released, memory_order_relaxed)) return;
  holder *h = atomic_exchange_explicit(&released, NULL, memory_order_acquire);
  while (h) {
    holder *next = h->next;
    Py_DECREF(h->obj);
    PyMem_Free(h);
    h = next;
  }
}

static holder *holder_new(PyObject *obj) {
  holder *h = PyMem_Malloc(sizeof *h);
  if (!h) {
    PyErr_NoMemory();
    return NULL;
  }
  h->obj = Py_NewRef(obj);
  h->next = NULL;
  return h;
}

static void holder_drop(holder *h) {
  Py_DECREF(h->obj);
  PyMem_Free(h);
}

/* ---- the Cache type --------------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD pypo_Optimizer *owner;
  po_cache *c;
} Cache;

PyObject *pypo_cache_new(pypo_Optimizer *owner, po_cache *c) {
  Cache *self = PyObject_GC_New(Cache, &pypo_CacheType);
  if (!self) return NULL;
  self->owner = (pypo_Optimizer *)Py_NewRef((PyObject *)owner);
  self->c = c;
  PyObject_GC_Track(self);
  return (PyObject *)self;
}

static int cache_traverse(Cache *self, visitproc visit, void *arg) {
  Py_VISIT(self->owner);
  return 0;
}

static int cache_clear_refs(Cache *self) {
  Py_CLEAR(self->owner);
  return 0;
}

static void cache_dealloc(Cache *self) {
  PyObject_GC_UnTrack(self);
  cache_clear_refs(self);
  PyObject_GC_Del(self);
}

/* The cache while its optimizer lives, else NULL with an exception. */
static po_cache *live(Cache *self) {
  if (!self->owner || !pypo_opt(self->owner)) return NULL;
  return self->c;
}

/* The key's bytes: str (UTF-8) or a bytes-like object. */
typedef struct {
  const char *p;
  Py_ssize_t n;
  Py_buffer view;
  int has_view;
} cache_key;

static int key_get(PyObject *k, cache_key *out) {
  out->has_view = 0;
  if (PyUnicode_Check(k)) {
    out->p = PyUnicode_AsUTF8AndSize(k, &out->n);
    if (!out->p) return -1;
  } else if (PyBytes_Check(k)) {
    out->p = PyBytes_AS_STRING(k);
    out->n = PyBytes_GET_SIZE(k);
  } else if (PyObject_CheckBuffer(k)) {
    if (PyObject_GetBuffer(k, &out->view, PyBUF_SIMPLE) != 0) return -1;
    out->has_view = 1;
    out->p = out->view.buf;
    out->n = out->view.len;
  } else {
    PyErr_Format(PyExc_TypeError, "cache keys are str or bytes, not %.100s", Py_TYPE(k)->tp_name);
    return -1;
  }
  if (out->n > PO_CACHE_MAX_KEY) {
    PyErr_Format(PyExc_ValueError, "cache key of %zd bytes: at most %d", out->n, PO_CACHE_MAX_KEY);
    if (out->has_view) PyBuffer_Release(&out->view);
    return -1;
  }
  return 0;
}

static void key_release(cache_key *k) {
  if (k->has_view) PyBuffer_Release(&k->view);
}

static PyObject *cache_get(Cache *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs < 1 || nargs > 2) return PyErr_Format(PyExc_TypeError, "get(key, default=None)");
  po_cache *c = live(self);
  cache_key k;
  if (!c || key_get(args[0], &k) != 0) return NULL;
  void *v = NULL;
  int rc = po_cache_get(c, k.p, (size_t)k.n, &v);
  key_release(&k);
  PyObject *r = rc == 0 ? Py_NewRef(((holder *)v)->obj)
                        : Py_NewRef(nargs > 1 ? args[1] : Py_None);
  pypo_drain_released();
  return r;
}

static int cache_contains(Cache *self, PyObject *key) {
  po_cache *c = live(self);
  cache_key k;
  if (!c || key_get(key, &k) != 0) return -1;
  void *v;
  int rc = po_cache_get(c, k.p, (size_t)k.n, &v);
  key_release(&k);
  return rc == 0;
}

static int check_type(int type) {
  if (type >= PO_RESOURCE_MODEL && type <= PO_RESOURCE_OTHER) return 0;
  PyErr_Format(PyExc_ValueError, "resource type %d out of range", type);
  return -1;
}

/* put(key, value, size_bytes, type=other, ttl_ns=0, pinned=False) */
static PyObject *cache_put(Cache *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"key", "value", "size_bytes", "type", "ttl_ns", "pinned", NULL};
  PyObject *key, *value;
  unsigned long long size, ttl = 0;
  int type = PO_RESOURCE_OTHER, pinned = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OOK|iKp:put", kwlist, &key, &value, &size, &type,
                                   &ttl, &pinned) ||
      check_type(type) != 0)
    return NULL;
  po_cache *c = live(self);
  cache_key k;
  if (!c || key_get(key, &k) != 0) return NULL;
  holder *h = holder_new(value);
  if (!h) {
    key_release(&k);
    return NULL;
  }
  po_cache_entry_opts o = {(po_resource_type)type, holder_free, ttl, pinned};
  int rc = po_cache_put(c, k.p, (size_t)k.n, h, size, &o);
  key_release(&k);
  if (rc) holder_drop(h); /* on an error the caller keeps the value */
  pypo_drain_released();
  if (rc == PO_ETOOBIG) {
    po_cache_stats st;
    po_cache_get_stats(c, &st);
    PyErr_Format(PyExc_ValueError, "cache put: %llu bytes is larger than the budget (%llu bytes)",
                 size, (unsigned long long)st.budget_bytes);
    return NULL;
  }
  if (rc) return pypo_raise(rc, "cache put", rc == PO_EBUSY ? "pinned entries leave no room, or "
                                                               "the key is pinned" : NULL);
  Py_RETURN_NONE;
}

/* ---- get_or_load -------------------------------------------------------------------------------- */

typedef struct {
  PyObject *loader; /* returns (value, size_bytes, type, ttl_ns) */
  PyObject *exc_type, *exc_value, *exc_tb;
} load_ctx;

static int loader_tramp(const void *key, size_t keylen, void *ctx, po_cache_loaded *out) {
  (void)key, (void)keylen;
  load_ctx *l = ctx;
  PyGILState_STATE g;
  if (!pypo_enter(&g)) return PO_ESTATE;
  int rc = PO_EIO;
  PyObject *r = PyObject_CallNoArgs(l->loader), *value;
  unsigned long long size, ttl;
  int type;
  if (r && PyArg_ParseTuple(r, "OKiK:loader result", &value, &size, &type, &ttl) &&
      check_type(type) == 0) {
    holder *h = holder_new(value);
    if (h) {
      *out = (po_cache_loaded){h, size, (po_resource_type)type, holder_free, ttl};
      rc = 0;
    }
  }
  Py_XDECREF(r);
  if (rc) PyErr_Fetch(&l->exc_type, &l->exc_value, &l->exc_tb);
  PyGILState_Release(g);
  return rc;
}

static PyObject *cache_get_or_load(Cache *self, PyObject *args) {
  PyObject *key;
  load_ctx l = {NULL, NULL, NULL, NULL};
  if (!PyArg_ParseTuple(args, "OO:get_or_load", &key, &l.loader)) return NULL;
  po_cache *c = live(self);
  cache_key k;
  if (!c || key_get(key, &k) != 0) return NULL;
  void *v = NULL;
  po_cache_handle *handle = NULL;
  int rc;
  /* Without the GIL: the loader takes it, and other threads loading the same key wait here. */
  self->owner->busy++;
  PYPO_NOGIL(rc = po_cache_get_or_load(c, k.p, (size_t)k.n, loader_tramp, &l, &v, &handle));
  self->owner->busy--;
  key_release(&k);
  PyObject *r = NULL;
  if (rc == 0) {
    r = Py_NewRef(((holder *)v)->obj);
    po_cache_release(c, handle);
  } else if (l.exc_type) {
    PyErr_Restore(l.exc_type, l.exc_value, l.exc_tb);
  } else if (rc == PO_EIO) {
    pypo_raise(rc, "cache get_or_load", "the loader raised in the thread that ran it");
  } else {
    pypo_raise(rc, "cache get_or_load", NULL);
  }
  pypo_drain_released();
  return r;
}

/* ---- the rest ------------------------------------------------------------------------------------ */

static PyObject *key_op(Cache *self, PyObject *key, int (*op)(po_cache *, const void *, size_t),
                        const char *what) {
  po_cache *c = live(self);
  cache_key k;
  if (!c || key_get(key, &k) != 0) return NULL;
  int rc = op(c, k.p, (size_t)k.n);
  key_release(&k);
  pypo_drain_released();
  if (rc == PO_ENOENT) Py_RETURN_FALSE;
  if (rc) return pypo_raise(rc, what, NULL);
  Py_RETURN_TRUE;
}

static PyObject *cache_remove(Cache *self, PyObject *key) {
  return key_op(self, key, po_cache_remove, "cache remove");
}
static PyObject *cache_pin(Cache *self, PyObject *key) {
  return key_op(self, key, po_cache_pin, "cache pin");
}
static PyObject *cache_unpin(Cache *self, PyObject *key) {
  return key_op(self, key, po_cache_unpin, "cache unpin");
}

static PyObject *cache_clear(Cache *self, PyObject *args) {
  int type = -1;
  if (!PyArg_ParseTuple(args, "|i", &type) || (type != -1 && check_type(type) != 0)) return NULL;
  po_cache *c = live(self);
  if (!c) return NULL;
  size_t n = type < 0 ? po_cache_clear(c) : po_cache_clear_type(c, (po_resource_type)type);
  pypo_drain_released();
  return PyLong_FromSize_t(n);
}

static PyObject *cache_purge_expired(Cache *self, PyObject *unused) {
  (void)unused;
  po_cache *c = live(self);
  if (!c) return NULL;
  size_t n = po_cache_purge_expired(c);
  pypo_drain_released();
  return PyLong_FromSize_t(n);
}

static PyObject *cache_shrink(Cache *self, PyObject *arg) {
  unsigned long long target = PyLong_AsUnsignedLongLong(arg);
  if (target == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
  po_cache *c = live(self);
  if (!c) return NULL;
  uint64_t freed = 0;
  int rc = po_cache_shrink(c, target, &freed);
  pypo_drain_released();
  if (rc && rc != PO_EBUSY) return pypo_raise(rc, "cache shrink", NULL);
  return PyLong_FromUnsignedLongLong(freed);
}

static PyObject *type_stats(const po_cache_type_stats *t) {
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K}", "hits", (unsigned long long)t->hits, "misses",
                       (unsigned long long)t->misses, "evictions",
                       (unsigned long long)t->evictions, "bytes", (unsigned long long)t->bytes,
                       "entries", (unsigned long long)t->entries);
}

static PyObject *cache_stats(Cache *self, PyObject *unused) {
  (void)unused;
  po_cache *c = live(self);
  if (!c) return NULL;
  po_cache_stats s;
  po_cache_get_stats(c, &s);
  PyObject *per = PyDict_New();
  for (int i = 0; per && i < PO_CACHE_TYPE_COUNT; i++)
    if (pypo_set(per, po_resource_type_name(i), type_stats(&s.per_type[i])) != 0) Py_CLEAR(per);
  if (!per) return NULL;
#define U(f) (unsigned long long)s.f
  return Py_BuildValue(
      "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:d,s:N}", "budget_bytes",
      U(budget_bytes), "bytes", U(bytes), "entries", U(entries), "pinned_entries",
      U(pinned_entries), "hits", U(hits), "misses", U(misses), "evictions", U(evictions),
      "removals", U(removals), "expirations", U(expirations), "loads", U(loads), "load_failures",
      U(load_failures), "coalesced_loads", U(coalesced_loads), "shrinks", U(shrinks),
      "metadata_bytes", U(metadata_bytes), "hit_ratio", s.hit_ratio, "per_type", per);
#undef U
}

static PyObject *cache_get_enabled(Cache *self, void *closure) {
  (void)closure;
  po_cache *c = live(self);
  return c ? PyBool_FromLong(po_cache_enabled(c)) : NULL;
}

static int cache_set_enabled(Cache *self, PyObject *v, void *closure) {
  (void)closure;
  po_cache *c = live(self);
  int on = v ? PyObject_IsTrue(v) : -1;
  if (!c || on < 0) {
    if (!v) PyErr_SetString(PyExc_AttributeError, "enabled cannot be deleted");
    return -1;
  }
  po_cache_set_enabled(c, on);
  pypo_drain_released();
  return 0;
}

#define FN(f) ((PyCFunction)(void (*)(void))(f))
static PyMethodDef cache_methods[] = {
    {"get", FN(cache_get), METH_FASTCALL, "get(key, default=None)"},
    {"put", FN(cache_put), METH_VARARGS | METH_KEYWORDS,
     "put(key, value, size_bytes, type=4, ttl_ns=0, pinned=False)"},
    {"get_or_load", FN(cache_get_or_load), METH_VARARGS,
     "get_or_load(key, loader): loader() -> (value, size_bytes, type, ttl_ns)"},
    {"remove", FN(cache_remove), METH_O, "remove(key) -> False when absent"},
    {"pin", FN(cache_pin), METH_O, NULL},
    {"unpin", FN(cache_unpin), METH_O, NULL},
    {"clear", FN(cache_clear), METH_VARARGS, "clear(type=-1 for all) -> entries removed"},
    {"purge_expired", FN(cache_purge_expired), METH_NOARGS, NULL},
    {"shrink", FN(cache_shrink), METH_O, "shrink(target_bytes) -> bytes freed"},
    {"stats", FN(cache_stats), METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};
#undef FN

static PyGetSetDef cache_getset[] = {
    {"enabled", (getter)cache_get_enabled, (setter)cache_set_enabled, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods cache_as_sequence = {.sq_contains = (objobjproc)cache_contains};

PyTypeObject pypo_CacheType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "perfopt._perfopt.Cache",
    .tp_basicsize = sizeof(Cache),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The optimizer's cache (po_optimizer_cache) holding Python objects.",
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_traverse = (traverseproc)cache_traverse,
    .tp_clear = (inquiry)cache_clear_refs,
    .tp_methods = cache_methods,
    .tp_getset = cache_getset,
    .tp_as_sequence = &cache_as_sequence,
};
