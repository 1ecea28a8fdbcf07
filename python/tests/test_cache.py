"""optimizer.cache: Python objects in perfopt's byte-budgeted cache."""
import gc
import sys
import threading
import time
import unittest
import weakref

import perfopt
from perfopt import PerformanceOptimizer, sizeof
from support import quiet_config, require, wait_until


class Value:
    """A weak-referenceable value of a known size."""

    def __init__(self, n):
        self.n = n


class CacheBasics(unittest.TestCase):
    def setUp(self):
        self.opt = PerformanceOptimizer(quiet_config(CACHE_BUDGET_BYTES=1000))
        self.cache = self.opt.cache

    def tearDown(self):
        self.opt.cleanup()

    def test_put_get_contains_remove(self):
        v = Value(1)
        self.cache.put("k", v, size=10, type="data")
        self.assertIs(self.cache.get("k"), v)
        self.assertIs(self.cache["k"], v)
        self.assertIn("k", self.cache)
        self.assertIsNone(self.cache.get("missing"))
        self.assertEqual(self.cache.get("missing", 5), 5)
        with self.assertRaises(KeyError):
            self.cache["missing"]
        self.assertTrue(self.cache.remove("k"))
        self.assertFalse(self.cache.remove("k"))
        self.assertNotIn("k", self.cache)
        self.cache.put(b"bytes-key", 1, size=1)
        self.assertEqual(self.cache.get(b"bytes-key"), 1)
        with self.assertRaises(TypeError):
            self.cache.get(3)

    def test_budget_evicts_and_drops_the_reference(self):
        v = Value(1)
        ref = weakref.ref(v)
        self.cache.put("a", v, size=600)
        del v
        self.assertIsNotNone(ref())
        self.cache.put("b", Value(2), size=600)  # evicts "a"
        self.assertNotIn("a", self.cache)
        self.assertIsNone(ref())
        st = self.cache.stats()
        self.assertEqual(st["evictions"], 1)
        self.assertLessEqual(st["bytes"], 1000)

    def test_too_big_is_a_value_error_and_the_caller_keeps_the_value(self):
        v = Value(1)
        with self.assertRaisesRegex(ValueError, "larger than the budget"):
            self.cache.put("big", v, size=5000)
        self.assertEqual(sys.getrefcount(v), 2)

    def test_get_or_load_loads_once(self):
        calls = []

        def load():
            calls.append(1)
            return [1, 2, 3]

        a = self.cache.get_or_load("k", load, size=24)
        b = self.cache.get_or_load("k", load, size=24)
        self.assertIs(a, b)
        self.assertEqual(len(calls), 1)

    def test_a_raising_loader_propagates_and_caches_nothing(self):
        def load():
            raise OSError("disk gone")

        with self.assertRaisesRegex(OSError, "disk gone"):
            self.cache.get_or_load("k", load)
        self.assertNotIn("k", self.cache)
        self.assertEqual(self.cache.stats()["load_failures"], 1)

    def test_concurrent_loads_of_one_key_share_one_call(self):
        calls, results = [], []
        gate = threading.Event()

        def load():
            calls.append(1)
            gate.wait(5)
            return Value(7)

        def worker():
            results.append(self.cache.get_or_load("shared", load, size=8))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: calls, what="the loader")
        time.sleep(0.05)
        gate.set()
        for t in threads:
            t.join(10)
        self.assertEqual(len(calls), 1)
        self.assertEqual(len(results), 4)
        self.assertTrue(all(r is results[0] for r in results))
        self.assertGreaterEqual(self.cache.stats()["coalesced_loads"], 1)

    def test_caching_off_still_returns_loaded_values(self):
        self.cache.enabled = False
        self.assertEqual(self.cache.get_or_load("k", lambda: "v"), "v")
        self.assertNotIn("k", self.cache)
        self.cache.enabled = True
        self.cache.put("k", "v", size=1)
        self.assertIn("k", self.cache)

    def test_pins_keep_entries(self):
        self.cache.put("p", Value(1), size=600)
        self.assertTrue(self.cache.pin("p"))
        with self.assertRaises(perfopt.Error) as cm:
            self.cache.put("q", Value(2), size=600)
        self.assertEqual(cm.exception.errname, "EBUSY")
        self.assertTrue(self.cache.unpin("p"))
        self.cache.put("q", Value(2), size=600)
        self.assertNotIn("p", self.cache)

    def test_clear_by_type_and_shrink(self):
        self.cache.put("m", 1, size=100, type="model")
        self.cache.put("d", 2, size=100, type="data")
        self.assertEqual(self.cache.clear("data"), 1)
        self.assertIn("m", self.cache)
        self.cache.put("d2", 3, size=300)
        self.assertEqual(self.cache.shrink(100), 300)
        self.assertEqual(self.cache.clear(), 1)
        self.assertEqual(len(self.cache), 0)

    def test_ttl_expires(self):
        self.cache.put("t", 1, size=1, ttl=0.02)
        self.assertIn("t", self.cache)
        wait_until(lambda: "t" not in self.cache, timeout=5, what="expiry")

    def test_values_survive_and_references_drop_when_the_optimizer_closes(self):
        v = Value(1)
        ref = weakref.ref(v)
        self.cache.put("v", v, size=8)
        del v
        self.opt.cleanup()
        gc.collect()
        self.assertIsNone(ref())
        with self.assertRaises(perfopt.Error):
            self.cache.get("v")


class PressureOnTheSamplerThread(unittest.TestCase):
    def test_a_shrink_on_the_sampler_thread_releases_references(self):
        cfg = quiet_config(BACKGROUND_MONITORING=False, MONITOR_INTERVAL_MS=10,
                           MEMORY_THRESHOLD=0.0001, CACHE_BUDGET_BYTES=1000,
                           CACHE_SHRINK_FRACTION=0.0)
        with PerformanceOptimizer(cfg) as opt:
            refs = []
            for i in range(4):
                v = Value(i)
                refs.append(weakref.ref(v))
                opt.cache.put(f"k{i}", v, size=100)
                del v
            opt.start_monitoring()  # the firing shrinks the cache from the sampler thread
            wait_until(lambda: len(opt.cache) == 0, what="the pressure shrink")
            # The references are dropped on a Python thread soon after (a pending call).
            wait_until(lambda: all(r() is None for r in refs), what="the references to drop")
            self.assertGreaterEqual(opt.cache.stats()["shrinks"], 1)


class Sizes(unittest.TestCase):
    def test_containers_are_deep_and_count_each_object_once(self):
        inner = bytes(1000)
        self.assertGreaterEqual(sizeof([inner, inner]), 1000)
        self.assertLess(sizeof([inner, inner]), 2000)
        self.assertGreater(sizeof({"a": bytes(5000)}), 5000)
        self.assertEqual(sizeof(3), sys.getsizeof(3))

    def test_numpy_arrays_use_nbytes(self):
        np = require("numpy")
        a = np.zeros(1000, dtype=np.float64)
        self.assertEqual(sizeof(a), 8000)
        self.assertGreaterEqual(sizeof({"x": a, "y": a}), 8000)
        self.assertLess(sizeof({"x": a, "y": a}), 16000)
        with PerformanceOptimizer(quiet_config()) as opt:
            opt.cache.put("a", a)
            self.assertEqual(opt.cache.stats()["bytes"], 8000)


if __name__ == "__main__":
    unittest.main()
