#!/usr/bin/env python3
"""Memory-optimized visualization: the seed's second integration example, with matplotlib.

A 10-million-point training-loss curve is drawn twice with matplotlib (Agg): as it is, and after
perfopt's optimize_visualization (M4 in display coordinates). For each, in a process of its own
(so that one's memory does not count against the other): the time to draw and save a PNG and an
SVG, the process's peak memory, and the file sizes; then the two PNGs
are compared pixel by pixel at the figure's size. With --yardstick, also beside matplotlib's own
path simplification (the same figure drawn with path.simplify off): Agg shades the edges of a
dense line from the sum of its overlapping segments, so any change of its points changes some
edge pixels (docs/python.md).

usage: viz_optimization.py [--points N] [--out DIR] [--yardstick]
"""
import argparse
import io
import json
import os
import sys
import time

import numpy as np

import perfopt


def reset_peak():
    """Resets the kernel's peak-RSS mark (VmHWM); False when this kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def training_curve(n, seed=7):
    """Loss over n steps: decay, noise, plateaus and a few spikes (divergence and recovery)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    y = 2.5 * np.exp(-t / (n / 6)) + 0.25 + 0.06 * rng.standard_normal(n)
    y += 0.15 * (np.sin(t / (n / 40)) > 0.95)
    y[rng.integers(0, n, 40)] += rng.uniform(0.5, 2.0, 40)
    return t, y


def draw(points, optimize, out_dir, tag, simplify=True):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = training_curve(points)
    reset_peak()
    t0 = time.perf_counter()
    with plt.rc_context({"path.simplify": simplify}):
        fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
        ax.plot(x, y, lw=1.0)
        ax.set(title=f"training loss, {len(x):,} steps", xlabel="step", ylabel="loss")
        fig.tight_layout()
        if optimize:
            perfopt.optimize_visualization(fig)
        png = os.path.join(out_dir, f"curve_{tag}.png")
        fig.savefig(png)
        t_png = time.perf_counter() - t0
        svg = os.path.join(out_dir, f"curve_{tag}.svg")
        fig.savefig(svg)
        plt.close(fig)
    return {"seconds_png": t_png, "seconds_total": time.perf_counter() - t0,
            "peak_rss_bytes": peak_rss(), "png_bytes": os.path.getsize(png),
            "svg_bytes": os.path.getsize(svg), "png": png,
            "points_drawn": (fig.perfopt_reduction["points_after"] if optimize else len(x)),
            "data_bytes": x.nbytes + y.nbytes}


def _child(q, args):
    q.put(draw(*args))


def draw_apart(*args):
    """draw() in a forked process of its own: its peak RSS is its own."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, args))
    p.start()
    r = q.get(timeout=300)
    p.join(60)
    return r


def compare(a_png, b_png):
    import matplotlib.pyplot as plt
    a, b = plt.imread(a_png), plt.imread(b_png)
    if a.shape != b.shape:
        return {"same_size": False}
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=2) * 255
    drawn = int((np.any(a[..., :3] < 1, axis=2) | np.any(b[..., :3] < 1, axis=2)).sum())
    return {"same_size": True, "pixels": int(d.size), "drawn": drawn,
            "differ": int((d > 0.5).sum()), "differ_over_64_levels": int((d > 64.5).sum())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=10_000_000)
    p.add_argument("--out", default="demo-out/viz")
    p.add_argument("--yardstick", action="store_true",
                   help="also draw the curve without matplotlib's path simplification")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    raw = draw_apart(a.points, False, a.out, "raw")
    opt = draw_apart(a.points, True, a.out, "optimized")
    pix = compare(raw["png"], opt["png"])
    yard = None
    if a.yardstick:
        unsimplified = draw_apart(a.points, False, a.out, "raw_unsimplified", False)
        yard = compare(raw["png"], unsimplified["png"])
    mib = 2 ** 20
    print(f"{a.points:,}-point training curve, 800 x 300 px (the data itself: "
          f"{raw['data_bytes'] / mib:.0f} MiB)")
    print(f"{'':24}{'as is':>14}{'optimized':>14}")
    for label, key, scale, unit in (("draw + PNG", "seconds_png", 1, "s"),
                                    ("draw + PNG + SVG", "seconds_total", 1, "s"),
                                    ("peak RSS", "peak_rss_bytes", mib, "MiB"),
                                    ("PNG file", "png_bytes", 1024, "KiB"),
                                    ("SVG file", "svg_bytes", 1024, "KiB"),
                                    ("points drawn", "points_drawn", 1, "")):
        f = ".1f" if unit else ",.0f"
        print(f"{label:24}{raw[key] / scale:>12{f}} {unit:<2}{opt[key] / scale:>11{f}} {unit}")
    print(f"PNG pixels: {pix['differ']} of {pix['drawn']} drawn pixels differ "
          f"({pix['differ_over_64_levels']} by more than 64 of 255 levels)")
    if yard:
        print(f"yardstick: matplotlib's own path simplification changes {yard['differ']} "
              f"({yard['differ_over_64_levels']})")
    with open(os.path.join(a.out, "viz_results.json"), "w") as f:
        json.dump({"points": a.points, "as_is": raw, "optimized": opt,
                   "pixels": pix, "simplification_yardstick": yard}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
