"""PerformanceOptimizer: the seed's Python API over perfopt's C optimizer (po_optimizer)."""
import atexit
import gc
import json
import sys
import threading
import weakref

from . import _config, _perfopt
from .cache import Cache, resource_type
from .profiling import profile_function, zone

Error = _perfopt.Error
LEVELS = ("normal", "aggressive")


class MemoryGuardError(MemoryError):
    """A guarded operation did not fit in memory and there was no fallback."""


def cleanup_level(level):
    """'normal' | 'aggressive' (or 0, 1, or a bool meaning aggressive) -> 0 | 1."""
    if isinstance(level, bool):
        return int(level)
    if isinstance(level, int) and level in (0, 1):
        return level
    try:
        return LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown cleanup level {level!r}: expected 'normal' or 'aggressive'") \
            from None


def is_out_of_memory(exc):
    """True for MemoryError, any framework's OutOfMemoryError (torch.cuda.OutOfMemoryError) and
    the RuntimeError("... out of memory ...") of older torch versions."""
    if isinstance(exc, MemoryError):
        return True
    if any(c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _op(fn):
    """A guarded operation for the C guard: never raises, returns (rc, value or exception)."""
    def run():
        try:
            return 0, fn()
        except BaseException as e:  # handed back to the caller's thread and re-raised there
            return (_perfopt.EOOM if is_out_of_memory(e) else _perfopt.ESTATE), e
    return run


class GuardResult:
    """What a memory guard did: ran is 'primary', 'fallback' or None (nothing fitted)."""

    __slots__ = ("name", "ran", "required_bytes", "available_bytes", "primary_error", "value")

    def __init__(self, name, ran, required, available, primary_error, value):
        self.name, self.ran, self.required_bytes = name, ran, required
        self.available_bytes, self.primary_error, self.value = available, primary_error, value

    def __repr__(self):
        return (f"<GuardResult {self.name!r} ran={self.ran} required={self.required_bytes} "
                f"available={self.available_bytes} primary_error={self.primary_error!r}>")


class MemoryGuard:
    """`with optimizer.memory_guard(required_bytes, fallback=...) as g:` (see memory_guard)."""

    def __init__(self, optimizer, required_bytes, fallback, name, device, headroom_ratio,
                 cleanup_after):
        self._opt, self._fallback = optimizer, fallback
        self.name, self.required_bytes, self.device = name, int(required_bytes), device
        self._headroom, self._cleanup_after = headroom_ratio, cleanup_after
        self.fits, self.ran, self.available_bytes, self.primary_error = None, None, None, None
        self._result, self._has_result = None, False

    @property
    def result(self):
        return self._result

    @result.setter
    def result(self, value):
        self._result, self._has_result = value, True

    def __enter__(self):
        # The C guard decides (cleaning up first when memory is short) and records the decision
        # in the report's memory.guards; the operations it runs here only say which it chose.
        rc, ran, _, avail, _, _ = self._opt._o.guard(
            lambda: (0, None), lambda: (0, None), self.required_bytes, self.name, self.device,
            self._headroom, -1)
        self.fits, self.available_bytes = ran == 1, (avail if avail >= 0 else None)
        return self

    def __exit__(self, etype, exc, tb):
        oom = exc is not None and is_out_of_memory(exc)
        if exc is not None and not oom:
            return False
        if oom:
            self.primary_error = exc
            self._opt._cleanup_for(self.device, "aggressive")
        if oom or (not self.fits and not self._has_result):
            if self._fallback is None:
                if oom:
                    return False
                self.ran = None
            else:
                self.ran = "fallback"
                self.result = self._fallback()
        else:
            self.ran = "primary"
        if self._cleanup_after is not None:
            self._opt._cleanup_for(self.device, self._cleanup_after)
        return oom


class _Phase:
    def __init__(self, optimizer, name):
        self._opt, self._name = optimizer, name

    def __enter__(self):
        self._opt._o.phase_begin(self._name)
        return self

    def __exit__(self, *exc):
        self._opt._o.phase_end()
        return False


_live = weakref.WeakSet()
_live_lock = threading.Lock()


class PerformanceOptimizer:
    """The seed's performance optimizer, running on perfopt's C core.

    PerformanceOptimizer({'ENABLE_PROFILING': True, 'BACKGROUND_MONITORING': True,
                          'CPU_THRESHOLD': 0.8, 'ENABLE_CACHING': True})

    The dict is applied over perfopt's defaults, the PERFOPT_CONFIG file and PERFOPT_<KEY>
    environment variables (use_env=False: over the defaults only). Keys are case-insensitive; an
    unknown key raises ConfigKeyError (a KeyError and ValueError), a wrong type TypeError, a value
    out of range ValueError. Background monitoring starts when the configuration asks for it.
    """

    def __init__(self, config=None, *, use_env=True, _default=False):
        if _default:
            self._o = _perfopt.Optimizer(default=True)
        else:
            self._o = _perfopt.Optimizer(_config.to_json(config), use_env)
        self._cache = None
        self._actions = set()  # (kind, id) of the Python callables registered through this object
        self._gc_id = self.register_cleanup(gc.collect, "python.gc", priority=100)
        if "torch" in sys.modules:
            from . import torch as _torch_support
            _torch_support.install(self)
        with _live_lock:
            _live.add(self)

    # ---- lifecycle --------------------------------------------------------------------------

    def cleanup(self):
        """Stops monitoring and frees everything (the seed's cleanup()). The process-wide default
        optimizer (get_optimizer()) stays usable: its monitor stops and its Python callbacks are
        unregistered."""
        if self._o.closed:
            return
        if self._o.is_default:
            self._o.stop_monitoring()
            for kind, ident in list(self._actions):
                if kind == "cleanup":
                    self._o.unregister_cleanup(ident)
                else:
                    self._o.remove_listener(ident)
            self._actions.clear()
            return
        self._o.close()

    close = cleanup

    @property
    def closed(self):
        return self._o.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    @property
    def config(self):
        """The configuration in force, KEY -> value."""
        return json.loads(self._o.config_json())

    # ---- profiling ----------------------------------------------------------------------------

    profile_function = staticmethod(profile_function)
    zone = staticmethod(zone)

    # ---- monitoring ---------------------------------------------------------------------------

    def start_monitoring(self):
        """Starts the background sampler (no-op when it runs)."""
        self._o.start_monitoring()

    _start_monitoring = start_monitoring

    def stop_monitoring(self):
        self._o.stop_monitoring()

    _stop_monitoring = stop_monitoring

    @property
    def monitoring(self):
        return self._o.monitoring

    def sample(self):
        """Takes one sample of the system and this process now (it feeds the thresholds too)."""
        return self._o.sample_now()

    def latest_sample(self):
        """The most recent sample, or None before the first."""
        return self._o.latest()

    def monitor_stats(self):
        return self._o.monitor_stats()

    # ---- memory -------------------------------------------------------------------------------

    def optimize_memory(self, level="normal"):
        """Runs the cleanup handlers (gc.collect, torch's CUDA cache clearing when perfopt.torch is
        installed, your own), the pressure listeners and malloc_trim; returns what it freed."""
        return self._o.optimize_memory(cleanup_level(level))

    def optimize_memory_usage(self, aggressive=False):
        """The seed's optimize_memory_usage(): a cleanup before or after intensive work."""
        return self.optimize_memory("aggressive" if aggressive else "normal")

    def clear_cache(self, resource_type_name="other", level="normal"):
        """The seed's clear_cache(type): runs the cleanup handlers of one resource type and clears
        that type from the attached caches."""
        return self._o.clear_resource(resource_type(resource_type_name), cleanup_level(level))

    def _cleanup_for(self, device, level):
        if device is not None and device >= 0:
            self._o.clear_resource(resource_type("gpu"), cleanup_level(level))
        else:
            self._o.optimize_memory(cleanup_level(level))

    def register_cleanup(self, fn, name=None, resource_type_name="other", priority=0,
                         min_level="normal", pass_level=False):
        """Registers fn as a cleanup handler; returns its id.

        It runs in optimize_memory() at min_level or above, in clear_cache() of its type, and on
        the sampler thread when a memory threshold fires. Lower priority runs first. fn() is
        called without arguments, or fn(level) with 'normal'/'aggressive' when pass_level.
        An exception in fn is reported as a RuntimeWarning and never stops the others."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        call = (lambda level: fn(LEVELS[level])) if pass_level else (lambda level: fn())
        hid = self._o.register_cleanup(call, name or _name_of(fn), resource_type(resource_type_name),
                                       int(priority), cleanup_level(min_level))
        self._actions.add(("cleanup", hid))
        return hid

    def unregister_cleanup(self, handler_id):
        """Unregisters; a run of the handler in progress finishes first."""
        self._o.unregister_cleanup(handler_id)
        self._actions.discard(("cleanup", handler_id))

    def add_pressure_listener(self, fn, name=None):
        """fn(event) on each threshold firing (on the sampler thread) and each optimize_memory().

        event: t_seconds, metric ('cpu', 'memory', 'gpu_memory', 'disk_busy', 'manual'), device,
        value, threshold, level, sample (a dict, or None for 'manual'). fn may return the bytes it
        released. It must not stop the monitor. Returns the listener's id."""
        if not callable(fn):
            raise TypeError(f"{fn!r} is not callable")
        lid = self._o.add_listener(fn, name or _name_of(fn))
        self._actions.add(("listener", lid))
        return lid

    def remove_pressure_listener(self, listener_id):
        self._o.remove_listener(listener_id)
        self._actions.discard(("listener", listener_id))

    def guard(self, primary, fallback=None, required_bytes=0, *, name=None, device=-1,
              headroom_ratio=0.0, cleanup_after="normal", return_result=False):
        """The seed's knowledge-transfer safeguard: runs primary() when required_bytes fit in
        memory (cleaning up first when short), else fallback(); runs fallback() also when
        primary() runs out of memory (MemoryError, torch's CUDA out-of-memory), after an
        aggressive cleanup; cleans up after either. Returns what ran's value (with a GuardResult
        when return_result). device >= 0 checks that GPU's free memory. Another exception from
        primary() propagates (the fallback does not run). Without a fallback, a guard that does
        not fit raises MemoryGuardError and an out-of-memory from primary() propagates."""
        after = -1 if cleanup_after is None else cleanup_level(cleanup_after)
        gname = name or _name_of(primary)
        rc, ran, _, avail, p, f = self._o.guard(
            _op(primary), None if fallback is None else _op(fallback), int(required_bytes), gname,
            int(device), float(headroom_ratio), after)
        primary_error = p if isinstance(p, BaseException) else None
        if ran == 0:
            raise MemoryGuardError(f"guard {gname!r}: needs {int(required_bytes)} bytes, "
                                   f"{avail} available, and there is no fallback")
        value = p if ran == 1 else f
        if rc != 0:
            if ran == 2 and isinstance(f, BaseException) and primary_error is not None:
                f.__context__ = primary_error
            raise value
        if return_result:
            return value, GuardResult(gname, "primary" if ran == 1 else "fallback",
                                      int(required_bytes), avail if avail >= 0 else None,
                                      primary_error, value)
        return value

    def guarded(self, required_bytes, fallback=None, **options):
        """Decorator form of guard(): @optimizer.guarded(2 << 30, fallback=cheaper)."""
        opts = dict(options)
        gname = opts.pop("name", None)

        def decorate(fn):
            def run(*args, **kwargs):
                fb = None if fallback is None else (lambda: fallback(*args, **kwargs))
                return self.guard(lambda: fn(*args, **kwargs), fb, required_bytes,
                                  name=gname or _name_of(fn), **opts)
            run.__wrapped__ = fn
            run.__name__ = getattr(fn, "__name__", "guarded")
            return run
        return decorate

    def memory_guard(self, required_bytes, fallback=None, *, name=None, device=-1,
                     headroom_ratio=0.0, cleanup_after="normal"):
        """The guard as a context manager. A `with` block cannot be skipped, so the block is the
        primary and checks g.fits:

            with optimizer.memory_guard(need, fallback=cold_start) as g:
                if g.fits:
                    g.result = warm_start()
            model = g.result

        On entry perfopt checks the memory (cleaning up first when short) and records the
        decision in the report. The fallback runs on exit when memory was short and the block set
        no result, or when the block ran out of memory (that exception is then suppressed, after
        an aggressive cleanup; g.primary_error keeps it). g.ran is 'primary', 'fallback' or None.
        """
        return MemoryGuard(self, required_bytes, fallback, name or "memory_guard", int(device),
                           float(headroom_ratio), cleanup_after)

    def advise_batch_size(self, **request):
        """po_batch_advise: the largest batch that fits (keywords: bytes_per_sample, fixed_bytes,
        batch_a, bytes_a, batch_b, bytes_b, available_bytes, device, headroom_ratio,
        power_of_two, max_batch). 0 when not even the smallest step fits."""
        return self._o.batch_advise(**request)

    def batch_probe(self, step, *, sizes=None, device=-1, measure=None, available_bytes=0,
                    headroom_ratio=0.0, max_batch=0, multiple=0, reduce=None):
        """Batch size from measured memory: runs step(batch) at a few small sizes, fits
        memory = fixed + per_sample * batch, proposes the largest batch that fits and validates
        it with one step (halving after an out-of-memory). Returns a dict with 'batch'.

        measure(): bytes in use (called before and after each step; perfopt.torch.peak_measure
        gives CUDA's peak); None: the process's peak RSS (host) or NVML (GPU)."""
        errors = []

        def run_step(batch):
            try:
                step(batch)
                return 0
            except BaseException as e:
                if is_out_of_memory(e):
                    return _perfopt.EOOM
                errors.append(e)
                return _perfopt.ESTATE

        rc, result = self._o.batch_probe(run_step, measure, tuple(sizes or ()), int(device),
                                         int(available_bytes), float(headroom_ratio),
                                         int(max_batch), int(multiple), reduce)
        if errors:
            raise errors[0]
        if rc:
            name, msg = _perfopt.strerror(rc)
            err = Error(f"batch_probe: {msg} ({name}); measured {result['measured_batch']} -> "
                        f"{result['measured_bytes']} bytes")
            err.code, err.errname, err.result = rc, name, result
            raise err
        return result

    # ---- phases -------------------------------------------------------------------------------

    def phase(self, name):
        """`with optimizer.phase("bucket 3"):` marks a phase in the report's resources.phases."""
        return _Phase(self, str(name))

    def begin_phase(self, name):
        self._o.phase_begin(str(name))

    def end_phase(self):
        """Ends the open phase (nothing when none is open)."""
        self._o.phase_end()

    def set_phase_cleanup(self, level):
        """Cleanup run at the end of each phase: 'normal', 'aggressive' or None (off)."""
        self._o.phase_set_cleanup(-1 if level is None else cleanup_level(level))

    # ---- the cache ----------------------------------------------------------------------------

    @property
    def cache(self):
        """The optimizer's own byte-budgeted cache (perfopt.cache.Cache)."""
        if self._cache is None:
            self._cache = Cache(self._o.cache())
        return self._cache

    # ---- reports ------------------------------------------------------------------------------

    def get_profiling_report(self):
        """The full report as a dict: perfopt_version, host, run, profile, memory, resources,
        gpu, cache, suggestions (schema: docs/formats.md)."""
        return json.loads(self._o.report_json())

    def save_profiling_report(self, path="performance_report.json"):
        """Writes the report atomically: HTML for *.html, the text table for *.txt, Chrome trace
        for *.trace.json, else JSON. Returns the path."""
        p = str(path)
        if p.endswith(".html"):
            self._o.save_html(path)
        elif p.endswith(".trace.json"):
            self._o.save_trace(path)
        elif p.endswith(".txt"):
            import os
            import tempfile
            text = self.profile_table()
            d = os.path.dirname(os.path.abspath(p))
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".perfopt-")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
                os.replace(tmp, p)
            except BaseException:
                os.unlink(tmp)
                raise
        else:
            self._o.save_json(path)
        return path

    def save_html_report(self, path):
        self._o.save_html(path)
        return path

    def profile_table(self, sort="total"):
        """The profile as a text table (sort: 'total', 'self' or 'calls')."""
        return self._o.text(("total", "self", "calls").index(sort))

    def get_optimization_suggestions(self):
        return self.get_profiling_report().get("suggestions", [])

    # ---- GPUs and the system ------------------------------------------------------------------

    def _nvml(self):
        return self.config.get("NVML_LIBRARY") or None

    def measure_gpu_usage(self):
        """Every GPU as NVML reports it (a list of dicts; [] without GPU or NVML). With torch
        imported and CUDA available, each device also gets torch's figures under 'torch'."""
        devices, _reason = _perfopt.gpu_usage(self._nvml())
        if "torch" in sys.modules:
            from . import torch as _torch_support
            _torch_support.add_torch_figures(devices)
        return devices

    def gpu_unavailable_reason(self):
        """Why measure_gpu_usage() is empty ('' when there are GPUs)."""
        return _perfopt.gpu_usage(self._nvml())[1]

    def get_optimal_gpu_targets(self):
        """Per GPU: the memory ratio to stay under and the bytes that leaves for a job."""
        return _perfopt.gpu_targets(self._nvml())[0]

    def system_report(self, window_ms=200):
        """What `perfopt sysinfo --json` shows: host, system, thresholds, gpu (a dict)."""
        return json.loads(_perfopt.sysinfo_json(int(window_ms), self._o.config_json()))

    # ---- visualization ------------------------------------------------------------------------

    def optimize_visualization(self, fig, **options):
        """Reduces each line of a matplotlib figure in place to what its pixels can show (see
        perfopt.viz.optimize_visualization). Returns fig."""
        from . import viz
        return viz.optimize_visualization(fig, **options)

    def __repr__(self):
        state = "closed" if self._o.closed else ("default" if self._o.is_default else "open")
        return f"<perfopt.PerformanceOptimizer {state}>"


def _name_of(fn):
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


_default = None
_default_lock = threading.Lock()


def get_optimizer():
    """The process-wide default optimizer (po_get_optimizer: configured from PERFOPT_CONFIG and
    the environment), created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PerformanceOptimizer(_default=True)
        return _default


def live_optimizers():
    with _live_lock:
        return list(_live)


def _shutdown():
    """At interpreter exit: unregister every Python callback and destroy our optimizers before
    Python goes away, then stop callbacks from library threads for good."""
    for opt in live_optimizers():
        try:
            opt.cleanup()
        except Exception:
            pass
    _perfopt._shutdown()


atexit.register(_shutdown)
