"""Helpers for perfopt's Python tests (run by tests/cli/test_python.sh for each interpreter)."""
import importlib
import os
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def require(module):
    """Imports an optional module, or skips the test. A module named in PERFOPT_PY_REQUIRE
    (space-separated; test_python.sh sets it for Debian's python3) fails the test instead."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if module in os.environ.get("PERFOPT_PY_REQUIRE", "").split():
            raise AssertionError(f"{module} is required here (scripts/install-deps): {e}") from e
        raise unittest.SkipTest(f"{module} not installed") from e


def fake_nvml():
    """The fake NVML library built by mk/platform.mk (PERFOPT_TEST_FAKE_NVML)."""
    path = os.environ.get("PERFOPT_TEST_FAKE_NVML", "")
    if not path or not os.path.exists(path):
        raise unittest.SkipTest("fake NVML not built (run through tests/cli/test_python.sh)")
    return path


def wait_until(pred, timeout=10.0, what="condition"):
    """Polls pred() until true; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def functions(report):
    return {f["name"]: f for f in report["profile"]["functions"]}


def quiet_config(**extra):
    """A configuration for tests: no background sampler unless asked, defaults otherwise."""
    cfg = {"BACKGROUND_MONITORING": False}
    cfg.update(extra)
    return cfg
