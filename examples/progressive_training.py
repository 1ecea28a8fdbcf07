#!/usr/bin/env python3
"""Progressive training with profiling: the seed's first integration example, with PyTorch on real
BTC candles (`make demo-python`).

A small MLP learns the next candle's direction from past-only features (returns, volatility,
volume changes: examples/README.md), bucket by bucket over market regimes (volatility terciles),
low to high. Each bucket's model starts from the previous one's weights (transfer_knowledge,
under perfopt's memory guard, with a cold start as the cheaper fallback); bucket data lives in
perfopt's cache; memory is cleaned between buckets (phases with cleanup); a training monitor
redraws its dashboard (loss, accuracy per bucket, resource timelines) every N steps through
perfopt's optimize_visualization. Accuracy is out of sample (the last 30% of the period, which the
model never saw) beside the naive baseline that always says "up".

The profiled methods are the seed's recommendations: ProgressiveTrainer.train_bucket,
CrossBucketKnowledgeTransfer.transfer_knowledge and TrainingMonitor.update_dashboard. The report
(JSON, text, HTML with suggestions) goes to --out.

usage: progressive_training.py [--data hourly|daily|PATH] [--out DIR] [--short] [--epochs N]
                               [--no-profiling] [--transfer-bytes N] [--dashboard-every N]
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import btc_data  # noqa: E402
import perfopt  # noqa: E402
import perfopt.torch  # noqa: E402,F401  (CUDA cleanup handlers when CUDA is available)
from perfopt import PerformanceOptimizer, profile_function  # noqa: E402

DATA = {"hourly": os.path.join(HERE, "data", "btcusdt-hourly.csv"),
        "daily": os.path.join(HERE, "data", "btc-usd-daily.csv")}


def make_model(n_features):
    return nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                         nn.Linear(16, 1))


def model_bytes(model):
    """Memory a warm start needs: weights, gradients and Adam's two moments (4 copies)."""
    return 4 * sum(p.numel() * p.element_size() for p in model.parameters())


class TrainingMonitor:
    """Loss and accuracy per bucket and resource timelines; the dashboard is redrawn every
    `every` steps, reduced by optimize_visualization and closed once saved."""

    def __init__(self, optimizer, out_dir, every):
        self.opt, self.out_dir, self.every = optimizer, out_dir, every
        self.steps, self.losses, self.bucket_starts = [], [], []
        self.accuracy, self.baseline = {}, {}
        self.t, self.rss, self.cpu = [], [], []
        self.redraws, self.points_before, self.points_after = 0, 0, 0
        self.t0 = time.monotonic()

    def record_step(self, loss):
        self.steps.append(len(self.steps))
        self.losses.append(loss)
        if len(self.steps) % self.every == 0:
            self.update_dashboard()

    def record_resources(self):
        s = self.opt.latest_sample() or self.opt.sample()
        self.t.append(time.monotonic() - self.t0)
        self.rss.append((s["process_rss_bytes"] or 0) / 2**20)
        self.cpu.append(s["process_cpu_ratio"] or 0.0)

    @profile_function()
    def update_dashboard(self):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        self.record_resources()
        fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(12, 3.2), dpi=80)
        a1.plot(self.steps, self.losses, lw=0.8)
        for s in self.bucket_starts:
            a1.axvline(s, color="0.6", lw=0.8)
        a1.set(title="training loss", xlabel="step")
        names = list(self.accuracy)
        a2.bar(names, [self.accuracy[n] for n in names], label="model")
        a2.plot(names, [self.baseline[n] for n in names], "k_", ms=30, label='always "up"')
        a2.set(title="out-of-sample accuracy", ylim=(0.4, 0.6))
        a3.plot(self.t, self.rss, label="RSS (MiB)")
        a3b = a3.twinx()
        a3b.plot(self.t, self.cpu, color="C1", label="CPU (cores)")
        a3.set(title="resources", xlabel="seconds")
        fig.tight_layout()
        self.opt.optimize_visualization(fig, close=True)
        r = fig.perfopt_reduction
        self.points_before += r["points_before"]
        self.points_after += r["points_after"]
        fig.savefig(os.path.join(self.out_dir, "dashboard.png"))
        self.redraws += 1


class CrossBucketKnowledgeTransfer:
    def __init__(self, optimizer, required_bytes=None):
        self.opt, self.required_bytes = optimizer, required_bytes
        self.log = []

    @profile_function()
    def transfer_knowledge(self, previous, n_features, bucket):
        """The next bucket's model: a warm start from `previous` when memory allows (under the
        guard), else (or when the copy runs out of memory) a cold start."""
        def warm():
            m = make_model(n_features)
            m.load_state_dict(previous.state_dict())
            return m

        def cold():
            return make_model(n_features)

        if previous is None:
            self.log.append((bucket, "cold start (first bucket)"))
            return cold()
        need = model_bytes(previous) if self.required_bytes is None else self.required_bytes
        model, res = self.opt.guard(warm, cold, need, name=f"transfer to {bucket}",
                                    return_result=True)
        self.log.append((bucket, "warm start" if res.ran == "primary" else
                         f"cold start (guard: {need} bytes needed, {res.available_bytes} "
                         f"available)"))
        return model


class ProgressiveTrainer:
    def __init__(self, optimizer, monitor, epochs, batch=256, seed=0):
        self.opt, self.monitor, self.epochs, self.batch = optimizer, monitor, epochs, batch
        self.gen = torch.Generator().manual_seed(seed)

    def bucket_tensors(self, name, arrays):
        """The bucket's tensors from perfopt's cache (type data), built on first use."""
        def load():
            Xtr, ytr, Xte, yte = arrays
            return tuple(torch.tensor(a, dtype=torch.float32) for a in (Xtr, ytr, Xte, yte))
        return self.opt.cache.get_or_load(f"bucket/{name}", load, type="data")

    @profile_function()
    def train_bucket(self, model, name, arrays):
        Xtr, ytr, Xte, yte = self.bucket_tensors(name, arrays)
        optim = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.BCEWithLogitsLoss()
        self.monitor.bucket_starts.append(len(self.monitor.steps))
        model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(Xtr), generator=self.gen)
            for i in range(0, len(Xtr), self.batch):
                j = order[i:i + self.batch]
                with perfopt.zone("train_step"):
                    optim.zero_grad()
                    loss = loss_fn(model(Xtr[j]).squeeze(1), ytr[j])
                    loss.backward()
                    optim.step()
                self.monitor.record_step(float(loss))
        model.eval()
        with torch.no_grad():
            pred = (model(Xte).squeeze(1) > 0).float()
        acc = float((pred == yte).float().mean()) if len(yte) else float("nan")
        base = float(yte.mean()) if len(yte) else float("nan")  # always "up"
        self.monitor.accuracy[name], self.monitor.baseline[name] = acc, base
        return acc, base, len(ytr), len(yte)


def run(data="hourly", out_dir="demo-out/python", epochs=12, short=False, profiling=True,
        transfer_bytes=None, dashboard_every=None, quiet=False):
    """Runs the example; returns its results (also written to out_dir/results.json)."""
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    say = (lambda *a: None) if quiet else print
    t_start = time.perf_counter()
    optimizer = PerformanceOptimizer({
        "ENABLE_PROFILING": profiling,
        "BACKGROUND_MONITORING": True,
        "MONITOR_INTERVAL_MS": 100 if short else 250,
        "CPU_THRESHOLD": 0.8,
        "ENABLE_CACHING": True,
    })
    try:
        candles = btc_data.load_candles(DATA.get(data, data))
        say(candles.summary())
        X, y, _ = btc_data.features(candles)
        buckets, (q1, q2) = btc_data.split_and_bucket(X, y)
        if short:  # a quick run for tests: the last 1500 training samples of each bucket
            buckets = {k: (a[-1500:], b[-1500:], c, d) for k, (a, b, c, d) in buckets.items()}
            epochs = min(epochs, 2)
        say(f"{len(X)} samples, {len(btc_data.FEATURES)} features; vol_24 terciles "
            f"{q1:.5f} / {q2:.5f}")
        monitor = TrainingMonitor(optimizer, out_dir, dashboard_every or (60 if short else 200))
        transfer = CrossBucketKnowledgeTransfer(optimizer, transfer_bytes)
        trainer = ProgressiveTrainer(optimizer, monitor, epochs)
        optimizer.set_phase_cleanup("normal")  # cleanup between buckets
        rows, model = [], None
        t_train, cpu_train = time.perf_counter(), time.process_time()
        for name in btc_data.BUCKETS:
            with optimizer.phase(f"bucket {name}"):
                model = transfer.transfer_knowledge(model, X.shape[1], name)
                acc, base, ntr, nte = trainer.train_bucket(model, name, buckets[name])
                optimizer.cache.put(f"model/{name}", {k: v.clone() for k, v in
                                                      model.state_dict().items()}, type="model")
            rows.append({"bucket": name, "train_samples": ntr, "test_samples": nte,
                         "accuracy": acc, "baseline_up": base})
            say(f"  {name:9} train {ntr:6}  test {nte:6}  accuracy {acc:.3f}  "
                f"always-up {base:.3f}  ({transfer.log[-1][1]})")
        train_seconds = time.perf_counter() - t_train
        train_cpu_seconds = time.process_time() - cpu_train  # every thread of the process
        monitor.update_dashboard()
        optimizer.save_profiling_report(os.path.join(out_dir, "report.json"))
        optimizer.save_profiling_report(os.path.join(out_dir, "report.html"))
        optimizer.save_profiling_report(os.path.join(out_dir, "report.txt"))
        report = optimizer.get_profiling_report()
        results = {
            "data": candles.summary(), "samples": len(X), "features": list(btc_data.FEATURES),
            "vol_24_terciles": [q1, q2], "epochs": epochs, "buckets": rows,
            "transfers": transfer.log, "steps": len(monitor.steps),
            "dashboard_redraws": monitor.redraws,
            "dashboard_points_before": monitor.points_before,
            "dashboard_points_after": monitor.points_after,
            "cache": optimizer.cache.stats(), "train_seconds": train_seconds,
            "train_cpu_seconds": train_cpu_seconds,
            "total_seconds": time.perf_counter() - t_start,
            "suggestions": [s.get("title", s.get("id", "")) for s in report["suggestions"]],
        }
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        reduced = (f"{monitor.points_before} points reduced to {monitor.points_after}"
                   if monitor.points_before else "its lines too short to need reducing")
        say(f"{len(monitor.steps)} steps in {train_seconds:.1f} s; dashboard redrawn "
            f"{monitor.redraws} times ({reduced}); report in {out_dir}/report.json, .txt and "
            f".html")
        return results
    finally:
        optimizer.cleanup()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="hourly", help="hourly, daily or a CSV path")
    p.add_argument("--out", default="demo-out/python")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--short", action="store_true", help="a quick run (tests)")
    p.add_argument("--no-profiling", action="store_true")
    p.add_argument("--transfer-bytes", type=int, default=None,
                   help="bytes the warm start claims to need (forces the fallback when huge)")
    p.add_argument("--dashboard-every", type=int, default=None)
    a = p.parse_args(argv)
    run(a.data, a.out, a.epochs, a.short, not a.no_profiling, a.transfer_bytes,
        a.dashboard_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
