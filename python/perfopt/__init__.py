"""perfopt: find and fix performance and memory problems in long-running compute jobs.

The seed's Python API on perfopt's C core (docs/python.md):

    from perfopt import profile_function, get_optimizer, PerformanceOptimizer

    @profile_function()
    def train_bucket(...): ...

    optimizer = PerformanceOptimizer({'ENABLE_PROFILING': True, 'BACKGROUND_MONITORING': True,
                                      'CPU_THRESHOLD': 0.8, 'ENABLE_CACHING': True})
    optimizer._start_monitoring()
    optimizer.optimize_memory_usage()
    report = optimizer.get_profiling_report()
    optimizer.save_profiling_report("performance_report.json")
    optimizer.cleanup()
"""
from . import _perfopt
from ._config import ConfigKeyError
from .cache import Cache, sizeof
from .optimizer import (GuardResult, MemoryGuardError, PerformanceOptimizer, get_optimizer,
                        is_out_of_memory)
from .profiling import (name_thread, profile_function, profiling_enabled, reset_profile,
                        set_profiling_enabled, zone)

__version__ = _perfopt.VERSION
Error = _perfopt.Error
Error.__module__ = "perfopt"

__all__ = [
    "Cache", "ConfigKeyError", "Error", "GuardResult", "MemoryGuardError", "PerformanceOptimizer",
    "get_optimizer", "get_optimal_gpu_targets", "get_profiling_report", "is_out_of_memory",
    "measure_gpu_usage", "name_thread", "optimize_memory", "optimize_visualization",
    "profile_function", "profiling_enabled", "reset_profile", "save_profiling_report",
    "set_profiling_enabled", "sizeof", "system_report", "zone",
]


def optimize_memory(aggressive=False):
    """The seed's optimize_memory(): garbage collection, CUDA cache clearing (with torch) and
    every registered cleanup handler, on the default optimizer. Returns what it freed."""
    return get_optimizer().optimize_memory_usage(aggressive)


def measure_gpu_usage():
    """Every GPU (a list of dicts; [] without GPU or NVML), see
    PerformanceOptimizer.measure_gpu_usage."""
    return get_optimizer().measure_gpu_usage()


def get_optimal_gpu_targets():
    """Per GPU: the memory ratio to stay under and the bytes that leaves for a job."""
    return get_optimizer().get_optimal_gpu_targets()


def optimize_visualization(fig, **options):
    """Reduces each line of a matplotlib figure in place (perfopt.viz). Returns fig."""
    from . import viz
    return viz.optimize_visualization(fig, **options)


def get_profiling_report():
    """The default optimizer's report as a dict."""
    return get_optimizer().get_profiling_report()


def save_profiling_report(path="performance_report.json"):
    return get_optimizer().save_profiling_report(path)


def system_report(window_ms=200):
    """What `perfopt sysinfo --json` shows (a dict)."""
    return get_optimizer().system_report(window_ms)
