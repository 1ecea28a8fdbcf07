"""The integration examples: the BTC loader and features (examples/btc_data.py), the PyTorch
progressive-training example in its short mode, and the system report."""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

from support import ROOT, functions, require

EXAMPLES = os.path.join(ROOT, "examples")


def setUpModule():
    global np, btc_data
    np = require("numpy")
    if EXAMPLES not in sys.path:
        sys.path.insert(0, EXAMPLES)
    import btc_data


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class Loader(unittest.TestCase):
    def test_hourly_file(self):
        c = btc_data.load_candles(os.path.join(EXAMPLES, "data", "btcusdt-hourly.csv"))
        self.assertEqual(c.layout, "hourly")
        self.assertEqual(c.rows_read, 36062)
        # The file repeats ~2,600 hours in both timestamp formats, and has one bad print.
        self.assertEqual(c.skipped, {"duplicate timestamp": 2649, "bad print": 1})
        self.assertEqual(len(c) + sum(c.skipped.values()), c.rows_read)
        self.assertTrue((np.diff(c.t) > 0).all())  # time order, from a newest-first file
        self.assertEqual(c.period_seconds, 3600)
        self.assertTrue((np.diff(c.t) % 3600 == 0).all())  # ms and s both read as seconds
        self.assertGreater(c.gaps, 0)
        self.assertEqual(c.t[0], 1502946000)  # 2017-08-17 05:00, after the bad 04:00 print

    def test_daily_file(self):
        c = btc_data.load_candles(os.path.join(EXAMPLES, "data", "btc-usd-daily.csv"))
        self.assertEqual((c.layout, c.skipped), ("daily", {}))
        self.assertEqual(c.period_seconds, 86400)
        self.assertEqual(len(c), c.rows_read)

    def test_quirks_are_skipped_and_counted_by_reason(self):
        with tempfile.TemporaryDirectory() as d:
            daily = write(os.path.join(d, "d.csv"),
                          "Date,Open,High,Low,Close,Adj Close,Volume\n"
                          "2020-01-03,10,12,9,11,11,100\n"
                          "2020-01-01,10,12,9,11,11,100\n"
                          "2020-01-02,null,12,9,11,11,100\n"
                          "2020-01-04,10,12,9,,11,100\n"
                          "2020-01-05,10,40,9,11,11,100\n"
                          "2020-01-06,10,12,9,13,13,100\n"
                          "bad-date,10,12,9,11,11,100\n"
                          "2020-01-01,10,12,9,11,11,100\n"
                          "2020-01-08,10,12,9,11.5,11.5,100\n")
            c = btc_data.load_candles(daily)
            self.assertEqual(c.skipped, {"missing or non-numeric cell": 2, "bad print": 1,
                                         "inconsistent candle": 1, "bad timestamp": 1,
                                         "duplicate timestamp": 1})
            self.assertEqual(list(c.close), [11, 11, 11.5])
            self.assertEqual(c.gaps, 2)  # Jan 1 -> 3 and Jan 3 -> 8
            with self.assertRaisesRegex(ValueError, "unknown CSV layout"):
                btc_data.load_candles(write(os.path.join(d, "x.csv"), "a,b\n1,2\n"))

    def test_features_use_the_past_only(self):
        c = btc_data.load_candles(os.path.join(EXAMPLES, "data", "btc-usd-daily.csv"))
        X, y, idx = btc_data.features(c)
        self.assertEqual(X.shape[1], len(btc_data.FEATURES))
        self.assertTrue(np.isfinite(X).all())
        cut = 2000
        c.close[cut:] *= 3.0  # change the future...
        c.volume[cut:] += 1e12
        X2, y2, _ = btc_data.features(c)
        past = idx < cut
        np.testing.assert_array_equal(X[past], X2[past])  # ...the past's features do not move
        self.assertFalse(np.array_equal(y[past], y2[past]))  # positive control: y looks ahead

    def test_buckets_split_in_time_with_training_thresholds(self):
        c = btc_data.load_candles(os.path.join(EXAMPLES, "data", "btc-usd-daily.csv"))
        X, y, _ = btc_data.features(c)
        buckets, (q1, q2) = btc_data.split_and_bucket(X, y)
        n_train = int(len(X) * btc_data.TRAIN_SHARE)
        self.assertEqual(sum(len(b[0]) for b in buckets.values()), n_train)
        self.assertEqual(sum(len(b[2]) for b in buckets.values()), len(X) - n_train)
        self.assertLess(q1, q2)
        counts = [len(b[0]) for b in buckets.values()]
        self.assertLessEqual(max(counts) - min(counts), 2)  # terciles of the training period


class ProgressiveTraining(unittest.TestCase):
    def test_short_mode(self):
        require("torch")
        require("matplotlib")
        import progressive_training as pt
        with tempfile.TemporaryDirectory() as d:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                res = pt.run(data="daily", out_dir=d, short=True, dashboard_every=10)
            self.assertEqual([b["bucket"] for b in res["buckets"]], list(btc_data.BUCKETS))
            for b in res["buckets"]:
                self.assertTrue(0 <= b["accuracy"] <= 1 and 0 <= b["baseline_up"] <= 1)
                self.assertGreater(b["test_samples"], 0)
            self.assertEqual([t[1] for t in res["transfers"]],
                             ["cold start (first bucket)", "warm start", "warm start"])
            self.assertGreaterEqual(res["dashboard_redraws"], 2)
            # Each bucket's tensors are loaded into the cache once (cleanup between buckets
            # may evict them afterwards: they are not used again).
            self.assertEqual(res["cache"]["loads"], 3)
            self.assertEqual(res["cache"]["per_type"]["data"]["misses"], 3)
            with open(os.path.join(d, "report.json")) as f:
                rep = json.load(f)
            f = functions(rep)
            self.assertEqual(f["ProgressiveTrainer.train_bucket"]["calls"], 3)
            self.assertEqual(f["CrossBucketKnowledgeTransfer.transfer_knowledge"]["calls"], 3)
            self.assertGreaterEqual(f["TrainingMonitor.update_dashboard"]["calls"], 2)
            phases = [p["name"] for p in rep["resources"]["phases"]]
            self.assertEqual(phases, [f"bucket {b}" for b in btc_data.BUCKETS])
            guards = rep["memory"]["guards"]
            self.assertEqual([g["ran"] for g in guards], ["primary", "primary"])
            for name in ("report.html", "report.txt", "dashboard.png", "results.json"):
                self.assertGreater(os.path.getsize(os.path.join(d, name)), 0)
            self.assertIn("accuracy", out.getvalue())

    def test_transfer_falls_back_to_a_cold_start_when_memory_is_short(self):
        require("torch")
        import progressive_training as pt
        import perfopt
        with perfopt.PerformanceOptimizer({"BACKGROUND_MONITORING": False}) as opt:
            prev = pt.make_model(8)
            t = pt.CrossBucketKnowledgeTransfer(opt, required_bytes=1 << 62)
            m = t.transfer_knowledge(prev, 8, "mid_vol")
            self.assertIn("cold start (guard", t.log[-1][1])
            self.assertFalse(all((a == b).all() for a, b in zip(m.parameters(),
                                                                 prev.parameters())))
            warm = pt.CrossBucketKnowledgeTransfer(opt).transfer_knowledge(prev, 8, "mid_vol")
            self.assertTrue(all((a == b).all() for a, b in zip(warm.parameters(),
                                                                prev.parameters())))


class VizOptimization(unittest.TestCase):
    def test_small_curve_side_by_side(self):
        require("matplotlib")
        import viz_optimization
        with tempfile.TemporaryDirectory() as d:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(viz_optimization.main(["--points", "200000", "--out", d]), 0)
            with open(os.path.join(d, "viz_results.json")) as f:
                r = json.load(f)
        self.assertEqual(r["as_is"]["points_drawn"], 200000)
        self.assertLess(r["optimized"]["points_drawn"], 20000)
        pix = r["pixels"]
        self.assertTrue(pix["same_size"])
        self.assertGreater(pix["drawn"], 1000)
        self.assertLessEqual(pix["differ_over_64_levels"], 0.001 * pix["drawn"])
        self.assertIn("PNG pixels", out.getvalue())


class SystemReport(unittest.TestCase):
    def test_runs_and_prints_every_section(self):
        import system_report
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(system_report.main(["--window", "20"]), 0)
        text = out.getvalue()
        for word in ("Host", "Memory", "Thresholds in force", "GPUs", "In a run's report"):
            self.assertIn(word, text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            system_report.main(["--json", "--window", "20"])
        d = json.loads(out.getvalue())
        self.assertEqual(set(d), {"sysinfo", "measure_gpu_usage", "get_optimal_gpu_targets"})


if __name__ == "__main__":
    unittest.main()
