"""GPUs through NVML (the fake NVML library from tests/fakes): measure_gpu_usage and
get_optimal_gpu_targets, and their state without a GPU."""
import os
import unittest
from unittest import mock

import perfopt
from perfopt import PerformanceOptimizer
from support import fake_nvml, quiet_config

GIB = 1 << 30


class Gpu(unittest.TestCase):
    def test_devices_from_nvml(self):
        with mock.patch.dict(os.environ, {"PERFOPT_FAKE_NVML": "2"}):
            with PerformanceOptimizer(quiet_config(NVML_LIBRARY=fake_nvml())) as opt:
                devs = opt.measure_gpu_usage()
                targets = opt.get_optimal_gpu_targets()
        self.assertEqual([d["name"] for d in devs], ["Fake GPU 0", "Fake GPU 1"])
        self.assertEqual(devs[1]["memory_total_bytes"], 16 * GIB)
        self.assertEqual(devs[0]["memory_used_bytes"], 1 * GIB)
        self.assertAlmostEqual(devs[0]["utilization_gpu_ratio"], 0.10)
        self.assertEqual([p["pid"] for p in devs[0]["processes"]], [1000, 1001])
        self.assertEqual(len(targets), 2)
        for t, d in zip(targets, devs):
            self.assertEqual(t["index"], d["index"])
            self.assertTrue(0 < t["memory_threshold_ratio"] < 1)
            self.assertEqual(t["target_bytes"] + t["headroom_bytes"], d["memory_total_bytes"])
            self.assertTrue(t["why"])

    def test_no_gpu_is_an_empty_list_with_a_reason(self):
        with PerformanceOptimizer(quiet_config(NVML_LIBRARY="/nonexistent/libnvidia-ml.so")) as o:
            self.assertEqual(o.measure_gpu_usage(), [])
            self.assertEqual(o.get_optimal_gpu_targets(), [])
            self.assertIn("/nonexistent/libnvidia-ml.so", o.gpu_unavailable_reason())

    def test_nvml_errors_are_the_no_gpu_state(self):
        with mock.patch.dict(os.environ, {"PERFOPT_FAKE_NVML": "fail-init"}):
            with PerformanceOptimizer(quiet_config(NVML_LIBRARY=fake_nvml())) as opt:
                self.assertEqual(opt.measure_gpu_usage(), [])
                self.assertIn("nvmlInit", opt.gpu_unavailable_reason())

    def test_module_functions_use_the_default_optimizer(self):
        self.assertIsInstance(perfopt.measure_gpu_usage(), list)
        self.assertIsInstance(perfopt.get_optimal_gpu_targets(), list)

    def test_system_report_lists_the_gpus(self):
        with mock.patch.dict(os.environ, {"PERFOPT_FAKE_NVML": "1"}):
            with PerformanceOptimizer(quiet_config(NVML_LIBRARY=fake_nvml())) as opt:
                rep = opt.system_report(20)
        self.assertEqual(rep["gpu"]["devices"][0]["name"], "Fake GPU 0")


if __name__ == "__main__":
    unittest.main()
