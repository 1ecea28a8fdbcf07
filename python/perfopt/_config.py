"""Configuration dictionaries: key names, types and values checked before perfopt's C core sees
them, so that each mistake gets the exception Python programmers expect:

- an unknown key: ConfigKeyError (a KeyError and a ValueError) naming the key, the closest valid
  key and every valid key;
- a value of the wrong type (a str for a bool, a bool for a number): TypeError;
- a value out of range: ValueError with perfopt's own message (from po_config_load_json).

Keys are case-insensitive, as in C. The dict is applied over the defaults, the file named by
PERFOPT_CONFIG and the PERFOPT_<KEY> environment variables: the dict wins.
"""
import difflib
import json
import numbers
import os

from . import _perfopt


class ConfigKeyError(KeyError, ValueError):
    """An unknown configuration key (also a ValueError). str() is the plain message."""

    def __str__(self):
        return self.args[0] if self.args else ""


def _kinds():
    """KEY -> 'bool' | 'number' | 'string', from the defaults as perfopt writes them."""
    defaults = json.loads(_perfopt.config_resolve(None, False))
    kinds = {}
    for key, value in defaults.items():
        if isinstance(value, bool):
            kinds[key] = "bool"
        elif isinstance(value, (int, float)):
            kinds[key] = "number"
        else:
            kinds[key] = "string"
    return kinds


KEYS = dict(_perfopt.config_keys())  # KEY -> help
KINDS = _kinds()


def _is_bool(v):
    if isinstance(v, bool):
        return True
    dtype = getattr(v, "dtype", None)  # numpy.bool_ without importing numpy
    return dtype is not None and getattr(dtype, "kind", "") == "b" and getattr(v, "shape", None) == ()


def _normalize(key, value):
    kind = KINDS[key]
    if kind == "bool":
        if _is_bool(value):
            return bool(value)
        raise TypeError(f"{key}: expected a bool (True or False), got {type(value).__name__} "
                        f"{value!r}")
    if kind == "number":
        if isinstance(value, numbers.Real) and not _is_bool(value):
            return int(value) if isinstance(value, numbers.Integral) else float(value)
        raise TypeError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise TypeError(f"{key}: expected a str, got {type(value).__name__} {value!r}")


def unknown_key_message(key):
    close = difflib.get_close_matches(str(key).upper(), list(KEYS), n=1, cutoff=0.5)
    hint = f" (closest: {close[0]})" if close else ""
    return (f"unknown configuration key {key!r}{hint}; valid keys: " + ", ".join(KEYS))


def to_json(config):
    """Checks a configuration mapping and returns it as perfopt's JSON (upper-case keys)."""
    if config is None:
        return None
    if not hasattr(config, "items"):
        raise TypeError(f"configuration must be a dict of KEY: value, not {type(config).__name__}")
    out = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise TypeError(f"configuration keys are str, not {type(key).__name__} {key!r}")
        upper = key.upper()
        if upper not in KEYS:
            raise ConfigKeyError(unknown_key_message(key))
        out[upper] = _normalize(upper, value)
    return json.dumps(out)


def check(config, use_env=True):
    """The configuration in force for `config` (a dict KEY -> value), or an exception."""
    return json.loads(_perfopt.config_resolve(to_json(config), use_env))
