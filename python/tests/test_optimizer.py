"""PerformanceOptimizer: monitoring, cleanup handlers and listeners (also on the sampler thread),
the memory guard, phases and reports."""
import json
import os
import tempfile
import threading
import unittest
import warnings

import perfopt
from perfopt import MemoryGuardError, PerformanceOptimizer
from support import quiet_config, wait_until


class Monitoring(unittest.TestCase):
    def test_start_stop_and_samples(self):
        with PerformanceOptimizer(quiet_config(MONITOR_INTERVAL_MS=20)) as opt:
            self.assertFalse(opt.monitoring)
            self.assertIsNone(opt.latest_sample())
            opt._start_monitoring()
            self.assertTrue(opt.monitoring)
            wait_until(lambda: opt.monitor_stats()["samples"] >= 2, what="two samples")
            s = opt.latest_sample()
            self.assertGreater(s["memory_limit_bytes"], 0)
            self.assertGreater(s["process_rss_bytes"], 0)
            opt.stop_monitoring()
            self.assertFalse(opt.monitoring)
            now = opt.sample()
            self.assertIn("cpu_utilization_ratio", now)

    def test_background_monitoring_from_config(self):
        with PerformanceOptimizer({"BACKGROUND_MONITORING": True,
                                   "MONITOR_INTERVAL_MS": 20}) as opt:
            self.assertTrue(opt.monitoring)


class Cleanup(unittest.TestCase):
    def test_handlers_run_in_priority_order_with_levels(self):
        runs = []
        with PerformanceOptimizer(quiet_config()) as opt:
            opt.register_cleanup(lambda: runs.append("b"), "b", priority=5)
            opt.register_cleanup(lambda: runs.append("a"), "a", priority=1)
            opt.register_cleanup(lambda lvl: runs.append(("lvl", lvl)), "lvl", priority=3,
                                 pass_level=True)
            opt.register_cleanup(lambda: runs.append("hard"), "hard", priority=9,
                                 min_level="aggressive")
            r = opt.optimize_memory_usage()
            self.assertEqual(runs, ["a", ("lvl", "normal"), "b"])
            self.assertGreaterEqual(r["handlers_run"], 4)  # with python.gc
            runs.clear()
            opt.optimize_memory_usage(aggressive=True)
            self.assertEqual(runs, ["a", ("lvl", "aggressive"), "b", "hard"])
            rep = opt.get_profiling_report()
        handlers = {c["handler"] for c in rep["memory"]["cleanups"]}
        self.assertTrue({"a", "b", "lvl", "hard", "python.gc"} <= handlers)

    def test_clear_cache_runs_only_that_type(self):
        runs = []
        with PerformanceOptimizer(quiet_config()) as opt:
            opt.register_cleanup(lambda: runs.append("viz"), "viz", "visualization")
            opt.register_cleanup(lambda: runs.append("model"), "model", "model")
            opt.clear_cache("visualization")
        self.assertEqual(runs, ["viz"])
        with self.assertRaises(ValueError):
            PerformanceOptimizer(quiet_config()).clear_cache("pictures")

    def test_unregistered_handlers_do_not_run_and_drop_their_reference(self):
        import weakref
        runs = []

        class Handler:
            def __call__(self):
                runs.append(1)

        h = Handler()
        ref = weakref.ref(h)
        with PerformanceOptimizer(quiet_config()) as opt:
            hid = opt.register_cleanup(h, "h")
            del h
            opt.optimize_memory()
            self.assertEqual(runs, [1])
            self.assertIsNotNone(ref())
            opt.unregister_cleanup(hid)
            self.assertIsNone(ref())
            opt.optimize_memory()
        self.assertEqual(runs, [1])

    def test_a_raising_handler_is_reported_and_the_others_run(self):
        runs = []

        def bad():
            raise RuntimeError("handler failed")

        with PerformanceOptimizer(quiet_config()) as opt:
            opt.register_cleanup(bad, "bad", priority=1)
            opt.register_cleanup(lambda: runs.append("ok"), "ok", priority=2)
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                opt.optimize_memory()
        self.assertEqual(runs, ["ok"])
        self.assertTrue(any("handler failed" in str(x.message) for x in w))

    def test_listeners_hear_manual_cleanups_and_report_bytes(self):
        events = []
        with PerformanceOptimizer(quiet_config()) as opt:
            lid = opt.add_pressure_listener(lambda ev: events.append(ev) or 4096, "mine")
            r = opt.optimize_memory()
            opt.remove_pressure_listener(lid)
            opt.optimize_memory()
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["metric"], "manual")
        self.assertIsNone(events[0]["sample"])
        self.assertGreaterEqual(r["freed_bytes"], 4096)

    def test_threshold_firing_runs_python_callbacks_on_the_sampler_thread(self):
        threads, events = [], []
        # The monitor starts after the callbacks are registered: a firing before them would be
        # followed by the cool-down, longer than the wait.
        cfg = quiet_config(BACKGROUND_MONITORING=False, MONITOR_INTERVAL_MS=10,
                           MEMORY_THRESHOLD=0.0001)
        with PerformanceOptimizer(cfg) as opt:
            opt.register_cleanup(lambda: threads.append(threading.get_ident()), "where")
            opt.add_pressure_listener(events.append, "listener")
            opt.start_monitoring()
            wait_until(lambda: events and threads, what="a memory threshold firing")
            opt.stop_monitoring()
        self.assertNotEqual(threads[0], threading.get_ident())
        ev = events[0]
        self.assertEqual(ev["metric"], "memory")
        self.assertGreater(ev["value"], ev["threshold"])
        self.assertGreater(ev["sample"]["memory_used_bytes"], 0)

    def test_stopping_while_callbacks_wait_for_the_gil_does_not_deadlock(self):
        # The main thread holds the GIL while the sampler's listener wants it: stop_monitoring
        # and unregistering release the GIL, so this returns.
        cfg = quiet_config(BACKGROUND_MONITORING=True, MONITOR_INTERVAL_MS=10,
                           MEMORY_THRESHOLD=0.0001, THRESHOLD_COOLDOWN_MS=0,
                           THRESHOLD_HYSTERESIS=0)
        calls = []
        for _ in range(5):
            with PerformanceOptimizer(cfg) as opt:
                opt.add_pressure_listener(lambda ev: calls.append(sum(range(20000))), "busy")
                wait_until(lambda: calls, what="the listener")
                lid = opt.register_cleanup(lambda: sum(range(20000)), "busy handler")
                opt.unregister_cleanup(lid)
                opt.stop_monitoring()


class Guard(unittest.TestCase):
    def setUp(self):
        self.opt = PerformanceOptimizer(quiet_config())

    def tearDown(self):
        self.opt.cleanup()

    def test_primary_runs_when_it_fits(self):
        value, res = self.opt.guard(lambda: "warm", lambda: "cold", 1024, name="transfer",
                                    return_result=True)
        self.assertEqual((value, res.ran, res.primary_error), ("warm", "primary", None))
        self.assertGreater(res.available_bytes, 1024)
        guards = self.opt.get_profiling_report()["memory"]["guards"]
        self.assertEqual(guards[-1]["name"], "transfer")

    def test_fallback_runs_when_it_does_not_fit(self):
        ran = []
        value = self.opt.guard(lambda: ran.append("primary"), lambda: "cold", 1 << 62)
        self.assertEqual((value, ran), ("cold", []))

    def test_out_of_memory_in_primary_runs_the_fallback(self):
        def warm():
            raise MemoryError("no room")

        value, res = self.opt.guard(warm, lambda: "cold", 10, return_result=True)
        self.assertEqual(value, "cold")
        self.assertIsInstance(res.primary_error, MemoryError)

    def test_framework_out_of_memory_errors_count(self):
        class OutOfMemoryError(RuntimeError):  # the shape of torch.cuda.OutOfMemoryError
            pass

        for exc in (OutOfMemoryError("CUDA out of memory"),
                    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")):
            def warm(exc=exc):
                raise exc
            self.assertEqual(self.opt.guard(warm, lambda: "cold", 10), "cold")
        self.assertFalse(perfopt.is_out_of_memory(RuntimeError("shape mismatch")))

    def test_other_exceptions_propagate_without_fallback(self):
        ran = []

        def warm():
            raise ValueError("bad shape")

        with self.assertRaisesRegex(ValueError, "bad shape"):
            self.opt.guard(warm, lambda: ran.append(1), 10)
        self.assertEqual(ran, [])

    def test_no_fallback(self):
        with self.assertRaises(MemoryGuardError):
            self.opt.guard(lambda: 1, None, 1 << 62)

        def oom():
            raise MemoryError("x")

        with self.assertRaises(MemoryError):
            self.opt.guard(oom, None, 10)

    def test_guarded_decorator(self):
        @self.opt.guarded(1 << 62, fallback=lambda n: n * 2)
        def transfer(n):
            return n

        self.assertEqual(transfer(21), 42)

    def test_context_manager(self):
        with self.opt.memory_guard(1024, fallback=lambda: "cold") as g:
            self.assertTrue(g.fits)
            g.result = "warm"
        self.assertEqual((g.result, g.ran), ("warm", "primary"))

        with self.opt.memory_guard(1 << 62, fallback=lambda: "cold") as g:
            if g.fits:
                g.result = "warm"
        self.assertEqual((g.fits, g.result, g.ran), (False, "cold", "fallback"))

        with self.opt.memory_guard(1024, fallback=lambda: "cold") as g:
            raise MemoryError("in the block")
        self.assertEqual((g.result, g.ran), ("cold", "fallback"))
        self.assertIsInstance(g.primary_error, MemoryError)

        with self.assertRaises(KeyError):
            with self.opt.memory_guard(1024, fallback=lambda: "cold"):
                raise KeyError("not memory")


class Phases(unittest.TestCase):
    def test_phases_appear_in_the_report(self):
        with PerformanceOptimizer(quiet_config()) as opt:
            with opt.phase("bucket 0"):
                pass
            opt.begin_phase("bucket 1")
            opt.end_phase()
            opt.end_phase()  # none open: nothing happens
            phases = opt.get_profiling_report()["resources"]["phases"]
        self.assertEqual([p["name"] for p in phases], ["bucket 0", "bucket 1"])


class Reports(unittest.TestCase):
    def test_saved_formats(self):
        with PerformanceOptimizer(quiet_config()) as opt, tempfile.TemporaryDirectory() as d:
            with perfopt.zone("reported"):
                pass
            for name in ("r.json", "r.html", "r.txt", "r.trace.json"):
                self.assertEqual(opt.save_profiling_report(os.path.join(d, name)),
                                 os.path.join(d, name))
            with open(os.path.join(d, "r.json")) as f:
                self.assertIn("profile", json.load(f))
            with open(os.path.join(d, "r.html")) as f:
                self.assertIn("<html", f.read(200).lower())
            with open(os.path.join(d, "r.txt")) as f:
                self.assertIn("reported", f.read())
            with open(os.path.join(d, "r.trace.json")) as f:
                json.load(f)
            self.assertIn("reported", opt.profile_table("calls"))

    def test_a_failed_save_names_the_path(self):
        with PerformanceOptimizer(quiet_config()) as opt:
            with self.assertRaises(OSError) as cm:
                opt.save_profiling_report("/nonexistent-dir/r.json")
        self.assertIn("/nonexistent-dir/r.json", str(cm.exception))

    def test_system_report(self):
        rep = perfopt.system_report(50)
        for key in ("host", "system", "thresholds", "gpu"):
            self.assertIn(key, rep)


class DefaultOptimizer(unittest.TestCase):
    def test_get_optimizer_is_one_object_and_survives_cleanup(self):
        a, b = perfopt.get_optimizer(), perfopt.get_optimizer()
        self.assertIs(a, b)
        runs = []
        a.register_cleanup(lambda: runs.append(1), "default-handler")
        perfopt.optimize_memory()
        self.assertEqual(runs, [1])
        a.cleanup()
        self.assertFalse(a.closed)
        perfopt.optimize_memory()
        self.assertEqual(runs, [1])  # unregistered by cleanup()


if __name__ == "__main__":
    unittest.main()
