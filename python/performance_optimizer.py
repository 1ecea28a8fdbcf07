"""The seed's module name (performance-optimization-summary.md imports `performance_optimizer`):
the same API as `perfopt`, so that code written against the seed runs unchanged."""
from perfopt import *  # noqa: F401,F403
from perfopt import __all__, __version__  # noqa: F401
