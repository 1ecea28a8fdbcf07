"""perfopt.torch: cleanup handlers, out-of-memory errors, CUDA memory figures and the batch
probe's measure, with torch.cuda faked (this machine has no GPU); sizes of tensors and modules."""
import os
import unittest
from unittest import mock

import perfopt
from perfopt import PerformanceOptimizer
from support import fake_nvml, quiet_config, require


def setUpModule():
    global torch, ptorch
    torch = require("torch")
    import perfopt.torch as ptorch


class FakeCuda:
    """Counts calls of the torch.cuda functions perfopt uses; memory figures are canned."""

    def __init__(self, devices=1):
        self.calls = {"empty_cache": 0, "ipc_collect": 0, "reset_peak": 0, "sync": 0}
        self.devices = devices
        self.allocated, self.peak = 100, 700

    def patches(self):
        c = torch.cuda

        def count(name):
            def f(*a, **k):
                self.calls[name] += 1
            return f

        stats = {"allocated_bytes.all.current": 3 << 30, "reserved_bytes.all.current": 4 << 30,
                 "allocated_bytes.all.peak": 5 << 30, "reserved_bytes.all.peak": 6 << 30,
                 "num_alloc_retries": 2, "num_ooms": 1}
        props = type("Props", (), {"uuid": "fake-0001"})
        return [mock.patch.object(c, "is_available", lambda: True),
                mock.patch.object(c, "device_count", lambda: self.devices),
                mock.patch.object(c, "empty_cache", count("empty_cache")),
                mock.patch.object(c, "ipc_collect", count("ipc_collect")),
                mock.patch.object(c, "memory_stats", lambda device=None: dict(stats)),
                mock.patch.object(c, "get_device_properties", lambda i: props),
                mock.patch.object(c, "synchronize", count("sync")),
                mock.patch.object(c, "reset_peak_memory_stats", count("reset_peak")),
                mock.patch.object(c, "memory_allocated", lambda d=None: self.allocated),
                mock.patch.object(c, "max_memory_allocated", lambda d=None: self.peak)]

    def __enter__(self):
        self._p = self.patches()
        for p in self._p:
            p.start()
        return self

    def __exit__(self, *exc):
        for p in reversed(self._p):
            p.stop()


class CleanupHandlers(unittest.TestCase):
    def test_cuda_handlers_run_in_cleanups(self):
        with FakeCuda() as cuda, PerformanceOptimizer(quiet_config()) as opt:
            ids = ptorch.install(opt)
            self.assertEqual(len(ids), 2)
            self.assertEqual(ptorch.install(opt), ids)  # once
            opt.optimize_memory_usage()
            self.assertEqual((cuda.calls["empty_cache"], cuda.calls["ipc_collect"]), (1, 0))
            opt.optimize_memory_usage(aggressive=True)
            self.assertEqual((cuda.calls["empty_cache"], cuda.calls["ipc_collect"]), (2, 1))
            opt.clear_cache("gpu")
            self.assertEqual(cuda.calls["empty_cache"], 3)
            handlers = {c["handler"] for c in opt.get_profiling_report()["memory"]["cleanups"]}
        self.assertIn("torch.cuda.empty_cache", handlers)

    def test_new_optimizers_install_them_when_torch_is_imported(self):
        with FakeCuda() as cuda, PerformanceOptimizer(quiet_config()) as opt:
            opt.optimize_memory_usage()
            self.assertEqual(cuda.calls["empty_cache"], 1)

    def test_no_cuda_no_handlers(self):
        with mock.patch.object(torch.cuda, "is_available", lambda: False):
            with PerformanceOptimizer(quiet_config()) as opt:
                self.assertEqual(ptorch.install(opt), [])


class OutOfMemory(unittest.TestCase):
    def test_cuda_out_of_memory_runs_the_fallback(self):
        errors = [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                  RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (older torch)")]
        with PerformanceOptimizer(quiet_config()) as opt:
            for err in errors:
                def warm(err=err):
                    raise err
                value, res = opt.guard(warm, lambda: "cold", 1024, return_result=True)
                self.assertEqual((value, res.ran), ("cold", "fallback"))
                self.assertIs(res.primary_error, err)
            with opt.memory_guard(1024, fallback=lambda: "cold") as g:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            self.assertEqual(g.result, "cold")


class GpuMemory(unittest.TestCase):
    def test_cuda_memory_has_allocated_reserved_and_fragmentation(self):
        with FakeCuda():
            m = ptorch.cuda_memory(0)
        self.assertEqual((m["allocated_bytes"], m["reserved_bytes"]), (3 << 30, 4 << 30))
        self.assertEqual(m["fragmentation_bytes"], 1 << 30)
        self.assertAlmostEqual(m["fragmentation_ratio"], 0.25)
        self.assertEqual(m["num_ooms"], 1)

    def test_torch_figures_beside_nvml(self):
        with mock.patch.dict(os.environ, {"PERFOPT_FAKE_NVML": "1"}), FakeCuda():
            with PerformanceOptimizer(quiet_config(NVML_LIBRARY=fake_nvml())) as opt:
                devs = opt.measure_gpu_usage()
        t = devs[0]["torch"]
        self.assertEqual(t["reserved_bytes"], 4 << 30)
        self.assertEqual(t["nvml_used_bytes"], devs[0]["memory_used_bytes"])
        self.assertEqual(t["outside_torch_bytes"], 0)  # NVML's 1 GiB < torch's reserved 4 GiB

    def test_without_cuda_nothing_is_added(self):
        with mock.patch.object(torch.cuda, "is_available", lambda: False):
            self.assertIsNone(ptorch.cuda_memory(0))
            self.assertEqual(ptorch.add_torch_figures([{"index": 0}]), [{"index": 0}])

    def test_peak_measure_alternates_reset_and_peak(self):
        with FakeCuda() as cuda:
            m = ptorch.PeakMeasure(0)
            self.assertEqual((m(), m(), m(), m()), (100, 700, 100, 700))
            self.assertEqual(cuda.calls["reset_peak"], 2)


class Sizes(unittest.TestCase):
    def test_tensor_storage_and_module_parameters(self):
        t = torch.zeros(1000, dtype=torch.float32)
        self.assertEqual(perfopt.sizeof(t), 4000)
        view = t[:10]
        self.assertEqual(perfopt.sizeof(view), 4000)  # the storage it keeps alive
        self.assertLess(perfopt.sizeof([t, view]), 4000 + 200)  # one storage, counted once
        m = torch.nn.Linear(100, 10)
        self.assertGreaterEqual(perfopt.sizeof(m), (100 * 10 + 10) * 4)
        with PerformanceOptimizer(quiet_config()) as opt:
            opt.cache.put("t", t, type="gpu")
            self.assertEqual(opt.cache.stats()["per_type"]["gpu"]["bytes"], 4000)


class BatchProbe(unittest.TestCase):
    def test_probe_sizes_a_batch_from_measured_memory(self):
        per_sample, fixed = 1 << 20, 4 << 20
        used = {"now": 0}

        def step(batch):
            used["now"] = fixed + per_sample * batch

        measure_calls = []

        def measure():
            measure_calls.append(1)
            return used["now"] if len(measure_calls) % 2 == 0 else 0

        with PerformanceOptimizer(quiet_config()) as opt:
            r = opt.batch_probe(step, measure=measure, available_bytes=1 << 30)
        self.assertGreater(r["batch"], 16)
        self.assertAlmostEqual(r["bytes_per_sample"], per_sample, delta=per_sample * 0.01)
        self.assertLessEqual(fixed + per_sample * r["batch"], 1 << 30)

    def test_out_of_memory_steps_halve(self):
        per_sample = 1 << 20
        state = {"batch": 0, "calls": 0}

        def step(batch):
            state["batch"] = batch
            if batch > 64:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")

        def measure():  # before a step: 0; after: 1 MiB per sample
            state["calls"] += 1
            return per_sample * state["batch"] if state["calls"] % 2 == 0 else 0

        with PerformanceOptimizer(quiet_config()) as opt:
            # 128 MiB available: the model proposes ~120, whose validation step runs out of
            # memory, so the probe halves.
            r = opt.batch_probe(step, measure=measure, available_bytes=128 << 20)
        self.assertGreater(r["proposed_batch"], 64)
        self.assertLessEqual(r["batch"], 64)
        self.assertGreaterEqual(r["fallbacks"], 1)

if __name__ == "__main__":
    unittest.main()
