"""The profiler from Python: @profile_function() and `with zone(name):`.

A decorated function is a C callable (perfopt._perfopt.ProfiledFunction): each call opens a zone in
perfopt's profiler, calls the function and closes the zone, also when it raises. Zones from Python
and zones from C (libperfopt, or any extension built on it) share the calling OS thread's zone
stack, so they land in one call tree and one report. Each Python thread appears in the report as
its own thread, named by its threading name.

Generators and coroutines. A zone must end on the thread and in the order it began, so a zone
cannot stay open across a `yield` or an `await`. A decorated generator function therefore records
one call per resume: each next()/send()/throw() that runs the generator's body is timed, and the
time the generator sits suspended is not counted (calls = resumes, total = time spent inside the
body). A decorated coroutine function (async def) records one call per step the same way, so the
time spent waiting on the event loop is not counted. An async generator function is timed only
for the call that creates it.
"""
import functools
import inspect

from . import _perfopt

zone = _perfopt.zone  # zone(name): a context manager timing its block under `name`


def _describe(func):
    code = getattr(func, "__code__", None)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    if code is not None:
        return name, code.co_filename, code.co_firstlineno
    return name, None, 0


def _drive(it, name):
    """Runs the generator-like `it` one resume at a time, each inside a zone named `name`."""
    value, exc = None, None
    while True:
        try:
            with _perfopt.zone(name):
                item = it.send(value) if exc is None else it.throw(exc)
        except StopIteration as stop:
            return stop.value
        value, exc = None, None
        try:
            value = yield item
        except GeneratorExit:
            it.close()
            raise
        except BaseException as e:  # delivered into the generator on the next resume
            exc = e


class _Steps:
    def __init__(self, it, name):
        self._it, self._name = it, name

    def __await__(self):
        return _drive(self._it, self._name)


def _wrap_generator(func, name):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return (yield from _drive(func(*args, **kwargs), name))

    wrapper.zone_name = name
    return wrapper


def _wrap_coroutine(func, name):
    @functools.wraps(func)
    async def wrapper(*args, **kwargs):
        return await _Steps(func(*args, **kwargs).__await__(), name)

    wrapper.zone_name = name
    return wrapper


def profile_function(name=None):
    """Decorator: records every call of the function in perfopt's profiler.

    @profile_function() uses the function's qualified name (e.g. "Trainer.train_bucket");
    @profile_function("name") another name. @profile_function without parentheses works too.
    """
    if callable(name) and not isinstance(name, str):
        return profile_function()(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"profile_function(name): name must be a str, not {type(name).__name__}")

    def decorate(func):
        if isinstance(func, (staticmethod, classmethod)):
            return type(func)(decorate(func.__func__))
        if not callable(func):
            raise TypeError(f"profile_function: {func!r} is not callable")
        zname, file, line = _describe(func)
        zname = name or zname
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(func, zname)
        if inspect.iscoroutinefunction(func):
            return _wrap_coroutine(func, zname)
        pf = _perfopt.ProfiledFunction(func, zname, file, line)
        functools.update_wrapper(pf, func)
        return pf

    return decorate


def name_thread(name):
    """Names the calling thread in reports (Python threads are named automatically)."""
    _perfopt.thread_name(str(name))


def profiling_enabled():
    return _perfopt.profile_enabled()


def set_profiling_enabled(on):
    """The run-time switch (process-wide). Off, a decorated call costs one predictable branch."""
    _perfopt.set_profile_enabled(bool(on))


def reset_profile():
    """Forgets everything recorded so far, in every thread."""
    _perfopt.profile_reset()
