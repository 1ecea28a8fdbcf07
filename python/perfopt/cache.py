"""The optimizer's cache for Python objects: byte-budgeted, typed, thread-safe (perfopt's C cache,
po_optimizer_cache: CACHE_BUDGET_BYTES and CACHE_POLICY; it follows ENABLE_CACHING, shrinks under
memory pressure and appears in the report as "default").

The budget counts the size each entry declares. Without an explicit size it is `sizeof(value)`:

- a torch tensor: its storage's bytes (untyped_storage().nbytes(), or storage().nbytes() on older
  torch); a torch module: its parameters' and buffers' storages;
- an object with `nbytes` (numpy arrays, memoryview): nbytes;
- a pandas object: memory_usage(deep=True);
- list, tuple, set, frozenset and dict: the container (sys.getsizeof) plus the size of each item
  (keys and values), recursively, each object counted once, 8 levels deep (deeper objects count
  their sys.getsizeof only);
- anything else: sys.getsizeof (shallow: attributes of a plain object are not followed).

The cache holds a reference to each value; the reference is dropped when the entry leaves (also
when a shrink under memory pressure evicts it on the sampler thread: then the reference is dropped
soon after, on a Python thread).
"""
import sys

from . import _perfopt

RESOURCE_TYPES = ("model", "data", "visualization", "gpu", "other")
_MAX_DEPTH = 8


def resource_type(t):
    """'model' | 'data' | 'visualization' | 'gpu' | 'other' (or 0..4) -> 0..4."""
    if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < len(RESOURCE_TYPES):
        return t
    try:
        return RESOURCE_TYPES.index(t)
    except ValueError:
        raise ValueError(f"unknown resource type {t!r}: expected one of "
                         + ", ".join(RESOURCE_TYPES)) from None


def _torch_storage_bytes(t, seen):
    try:
        storage = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
        key = ("storage", storage.data_ptr())
        if key in seen:
            return 0
        seen.add(key)
        return int(storage.nbytes())
    except Exception:  # a tensor without storage (meta, sparse): its elements
        return int(t.element_size() * t.nelement())


def _is_torch(obj, kind):
    t = type(obj)
    return t.__module__.startswith("torch") and any(c.__name__ == kind for c in t.__mro__)


def sizeof(obj, _seen=None, _depth=0):
    """Bytes an object holds, as the cache counts them (see the module's documentation)."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if _is_torch(obj, "Tensor"):
        return _torch_storage_bytes(obj, seen)
    if _is_torch(obj, "Module"):
        tensors = list(obj.parameters()) + list(obj.buffers())
        return sys.getsizeof(obj) + sum(_torch_storage_bytes(t, seen) for t in tensors)
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(obj, type):
        return nbytes
    usage = getattr(obj, "memory_usage", None)
    if callable(usage) and type(obj).__module__.startswith("pandas"):
        total = usage(deep=True)
        return int(total.sum() if hasattr(total, "sum") else total)
    size = sys.getsizeof(obj)
    if _depth >= _MAX_DEPTH:
        return size
    if isinstance(obj, dict):
        items = [x for kv in obj.items() for x in kv]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = obj
    else:
        return size
    return size + sum(sizeof(x, seen, _depth + 1) for x in items)


def _ttl_ns(ttl):
    if ttl is None:
        return 0
    if ttl <= 0:
        raise ValueError(f"ttl must be positive seconds, got {ttl!r}")
    return int(ttl * 1e9)


class Cache:
    """Keys are str or bytes. Values are any Python objects."""

    def __init__(self, c):
        self._c = c

    def get(self, key, default=None):
        """The cached value, or default on a miss (marks the entry recently used)."""
        return self._c.get(key, default)

    def __getitem__(self, key):
        missing = _MISSING
        v = self._c.get(key, missing)
        if v is missing:
            raise KeyError(key)
        return v

    def __contains__(self, key):
        return key in self._c

    def put(self, key, value, size=None, type="other", ttl=None, pinned=False):
        """Stores value under key (size: sizeof(value) when None; ttl in seconds).

        A value larger than the whole budget is a ValueError; with caching off the value is not
        kept (the call succeeds, as in C)."""
        size = sizeof(value) if size is None else int(size)
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        self._c.put(key, value, size, resource_type(type), _ttl_ns(ttl), bool(pinned))

    def __setitem__(self, key, value):
        self.put(key, value)

    def get_or_load(self, key, loader, size=None, type="other", ttl=None):
        """key's value, calling loader() to produce it when missing.

        Threads asking for the same missing key at once share one call of loader(); if it raises,
        the thread that ran it gets the exception and the others a perfopt.Error. A value that
        cannot be kept (larger than the budget, caching off) is still returned."""
        t, ttl_ns = resource_type(type), _ttl_ns(ttl)

        def load():
            value = loader()
            return value, (sizeof(value) if size is None else int(size)), t, ttl_ns

        return self._c.get_or_load(key, load)

    def remove(self, key):
        """Removes key. False when absent; perfopt.Error (EBUSY) when it is pinned."""
        return self._c.remove(key)

    def __delitem__(self, key):
        if not self._c.remove(key):
            raise KeyError(key)

    def pin(self, key):
        """Keeps key from eviction until unpin (pins nest). False when absent."""
        return self._c.pin(key)

    def unpin(self, key):
        return self._c.unpin(key)

    def clear(self, type=None):
        """Removes every unpinned entry (of one resource type when given). Returns the count."""
        return self._c.clear(-1 if type is None else resource_type(type))

    def shrink(self, target_bytes):
        """Evicts in policy order until at most target_bytes are held. Returns the bytes freed."""
        return self._c.shrink(int(target_bytes))

    def purge_expired(self):
        return self._c.purge_expired()

    def stats(self):
        """Counters: budget_bytes, bytes, entries, hits, misses, evictions, hit_ratio, per_type..."""
        return self._c.stats()

    @property
    def enabled(self):
        return self._c.enabled

    @enabled.setter
    def enabled(self, on):
        self._c.enabled = bool(on)

    @property
    def budget_bytes(self):
        return self._c.stats()["budget_bytes"]

    def __len__(self):
        return self._c.stats()["entries"]

    def __repr__(self):
        s = self._c.stats()
        return (f"<perfopt.Cache {s['entries']} entries, {s['bytes']} of {s['budget_bytes']} "
                f"bytes, hit ratio {s['hit_ratio']:.2f}>")


_MISSING = object()
