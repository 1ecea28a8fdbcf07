"""PerformanceOptimizer's configuration dict: names, types, values, precedence."""
import os
import unittest
from unittest import mock

import perfopt
from perfopt import ConfigKeyError, PerformanceOptimizer
from support import quiet_config


class Config(unittest.TestCase):
    def test_unknown_key_is_a_key_error_naming_it_and_the_valid_keys(self):
        with self.assertRaises(KeyError) as cm:
            PerformanceOptimizer({"CPU_TRESHOLD": 0.5})
        msg = str(cm.exception)
        self.assertIn("'CPU_TRESHOLD'", msg)
        self.assertIn("closest: CPU_THRESHOLD", msg)
        for key in ("ENABLE_PROFILING", "BACKGROUND_MONITORING", "CACHE_POLICY", "NVML_LIBRARY"):
            self.assertIn(key, msg)
        self.assertIsInstance(cm.exception, ValueError)
        self.assertIsInstance(cm.exception, ConfigKeyError)

    def test_wrong_types_are_type_errors(self):
        cases = [({"ENABLE_PROFILING": "yes"}, "ENABLE_PROFILING"),
                 ({"CPU_THRESHOLD": True}, "CPU_THRESHOLD"),
                 ({"CPU_THRESHOLD": "0.8"}, "CPU_THRESHOLD"),
                 ({"CACHE_POLICY": 1}, "CACHE_POLICY"),
                 ({"ENABLE_CACHING": None}, "ENABLE_CACHING"),
                 ({3: True}, "keys are str")]
        for cfg, needle in cases:
            with self.subTest(cfg=cfg), self.assertRaises(TypeError) as cm:
                PerformanceOptimizer(cfg)
            self.assertIn(needle, str(cm.exception))
        with self.assertRaises(TypeError):
            PerformanceOptimizer(["ENABLE_PROFILING"])

    def test_values_out_of_range_are_value_errors_with_perfopt_message(self):
        cases = [({"CPU_THRESHOLD": 7}, "CPU_THRESHOLD: invalid value '7': expected a number "
                                         "from 0 to 1"),
                 ({"MONITOR_INTERVAL_MS": 5}, "MONITOR_INTERVAL_MS"),
                 ({"MONITOR_INTERVAL_MS": 10.5}, "expected an integer"),
                 ({"CACHE_POLICY": "fifo"}, "one of sieve, s3fifo, lru")]
        for cfg, needle in cases:
            with self.subTest(cfg=cfg), self.assertRaises(ValueError) as cm:
                PerformanceOptimizer(cfg)
            self.assertNotIsInstance(cm.exception, KeyError)
            self.assertIn(needle, str(cm.exception))

    def test_keys_are_case_insensitive_and_values_apply(self):
        with PerformanceOptimizer(quiet_config(cpu_threshold=0.75, Cache_Policy="lru",
                                               monitor_interval_ms=250)) as opt:
            cfg = opt.config
        self.assertEqual(cfg["CPU_THRESHOLD"], 0.75)
        self.assertEqual(cfg["CACHE_POLICY"], "lru")
        self.assertEqual(cfg["MONITOR_INTERVAL_MS"], 250)
        self.assertFalse(cfg["BACKGROUND_MONITORING"])

    def test_the_dict_wins_over_the_environment(self):
        env = {"PERFOPT_CPU_THRESHOLD": "0.6", "PERFOPT_MONITOR_INTERVAL_MS": "300"}
        with mock.patch.dict(os.environ, env):
            with PerformanceOptimizer(quiet_config(CPU_THRESHOLD=0.9)) as opt:
                cfg = opt.config
            with PerformanceOptimizer(quiet_config(), use_env=False) as plain:
                self.assertEqual(plain.config["MONITOR_INTERVAL_MS"], 1000)
        self.assertEqual(cfg["CPU_THRESHOLD"], 0.9)
        self.assertEqual(cfg["MONITOR_INTERVAL_MS"], 300)  # from the environment

    def test_a_bad_environment_is_a_value_error_naming_the_variable(self):
        with mock.patch.dict(os.environ, {"PERFOPT_CPU_THRESHOLD": "lots"}):
            with self.assertRaises(ValueError) as cm:
                PerformanceOptimizer(quiet_config())
        self.assertIn("PERFOPT_CPU_THRESHOLD", str(cm.exception))

    def test_numpy_scalars_are_accepted(self):
        np = None
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy not installed")
        with PerformanceOptimizer(quiet_config(CPU_THRESHOLD=np.float32(0.5),
                                               ENABLE_CACHING=np.bool_(False),
                                               SERIES_CAPACITY=np.int64(128))) as opt:
            cfg = opt.config
        self.assertEqual((cfg["CPU_THRESHOLD"], cfg["ENABLE_CACHING"], cfg["SERIES_CAPACITY"]),
                         (0.5, False, 128))

    def test_error_from_c_is_perfopt_error_with_code_and_name(self):
        opt = PerformanceOptimizer(quiet_config())
        opt.cleanup()
        with self.assertRaises(perfopt.Error) as cm:
            opt.optimize_memory_usage()
        self.assertIsInstance(cm.exception, RuntimeError)
        self.assertEqual(cm.exception.errname, "ESTATE")
        self.assertEqual(cm.exception.code, perfopt._perfopt.ESTATE)
        self.assertIn("closed", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
