/* The C extension perfopt._perfopt: CPython API over include/perfopt.h only.
 *
 * Files: module.c (module, errors, configuration, GPUs, system report, downsampling),
 * profile.c (the decorator's callable and zones: the hot path), optimizer.c (the optimizer:
 * monitor, memory, reports), actions.c (Python callables run by the library: cleanup handlers,
 * pressure listeners, the guard, the batch probe), cache.c (the cache of Python objects).
 *
 * The GIL and the library's locks. The library runs Python callables (cleanup handlers, pressure
 * listeners, guard operations, loaders, batch steps) on whatever thread calls them, the sampler
 * thread included, while it holds its own locks (a cleanup pass holds the memory module's action
 * lock). Such a callable takes the GIL. So a thread that holds the GIL must never wait for a
 * library lock a callable's thread may hold: every call that can run callables or wait for them
 * (cleanup, listeners, the guard, get_or_load, monitor stop, destroy) releases the GIL first
 * (PYPO_NOGIL). Cache free callbacks never touch Python at all: a cached object's reference is
 * dropped later, under the GIL (see cache.c), because a decref can run arbitrary code (__del__)
 * and free callbacks run with the cache's lock held.
 *
 * Single-phase initialization, one interpreter: sub-interpreters are not supported.
 */
#ifndef PYPO_EXT_H
#define PYPO_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "perfopt.h"

#define PYPO_NOGIL(stmt)    \
  do {                      \
    Py_BEGIN_ALLOW_THREADS; \
    stmt;                   \
    Py_END_ALLOW_THREADS;   \
  } while (0)

/* ---- module.c ------------------------------------------------------------------------------- */

extern PyObject *pypo_Error; /* perfopt.Error (a RuntimeError) */

/* Raises perfopt.Error (MemoryError for PO_ENOMEM) for a PO_E* code: "what: message (ENAME)",
 * with detail (e.g. po_last_error() or an errbuf) instead of po_strerror when non-empty. The
 * exception carries .code (the negative number) and .errname ("EINVAL"). Returns NULL. */
PyObject *pypo_raise(int rc, const char *what, const char *detail);

/* 1 while Python may run callbacks: cleared by _perfopt._shutdown() at interpreter exit, after
 * which callbacks from library threads do nothing. */
int pypo_alive(void);
/* Takes the GIL for a callback from any thread; 0 when Python is gone (do nothing then). */
int pypo_enter(PyGILState_STATE *g);
/* Reports an exception raised by a callback the library ran (as a RuntimeWarning, or through
 * sys.unraisablehook when warnings are errors), then clears it: it never reaches the library. */
void pypo_report_callback_error(const char *what, PyObject *fn);

/* Dict helpers: set key to a new reference, stealing it; -1 on error (the dict keeps going). */
int pypo_set(PyObject *d, const char *key, PyObject *v);

/* ---- profile.c ------------------------------------------------------------------------------ */

extern PyTypeObject pypo_ProfiledFunctionType;
extern PyTypeObject pypo_ZoneType;
PyObject *pypo_zone(PyObject *self, PyObject *arg);
PyObject *pypo_c_zone_call(PyObject *self, PyObject *args);
PyObject *pypo_thread_name(PyObject *self, PyObject *arg);

/* ---- optimizer.c ---------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD po_optimizer *opt;
  int owned;          /* 1: created here and destroyed by close(); 0: the process default */
  int busy;           /* calls in progress with the GIL released (close waits for them) */
  PyObject *actions;  /* id key -> callable: keeps registered Python callables alive */
  PyObject *weakrefs;
} pypo_Optimizer;

extern PyTypeObject pypo_OptimizerType;
/* The optimizer of a live object, or NULL with an exception when it is closed. */
po_optimizer *pypo_opt(pypo_Optimizer *o);

/* ---- actions.c ------------------------------------------------------------------------------ */

PyObject *pypo_register_cleanup(pypo_Optimizer *self, PyObject *args, PyObject *kw);
PyObject *pypo_unregister_cleanup(pypo_Optimizer *self, PyObject *arg);
PyObject *pypo_add_listener(pypo_Optimizer *self, PyObject *args);
PyObject *pypo_remove_listener(pypo_Optimizer *self, PyObject *arg);
PyObject *pypo_guard(pypo_Optimizer *self, PyObject *args, PyObject *kw);
PyObject *pypo_batch_probe(pypo_Optimizer *self, PyObject *args, PyObject *kw);
PyObject *pypo_sample_dict(const po_sample *s);

/* ---- cache.c -------------------------------------------------------------------------------- */

extern PyTypeObject pypo_CacheType;
/* The optimizer's own cache as a Cache object (keeps the optimizer alive). */
PyObject *pypo_cache_new(pypo_Optimizer *owner, po_cache *c);
/* Drops the references of cached objects that left a cache (call with the GIL held). */
void pypo_drain_released(void);

#endif
