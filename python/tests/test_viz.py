"""optimize_visualization: matplotlib lines reduced with perfopt's M4, checked by rendering the
original and the optimized figure to PNG with Agg and comparing their pixels."""
import io
import sys
import unittest
from unittest import mock

import perfopt
from support import require


def setUpModule():
    global np, plt
    np = require("numpy")
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


def loss_curve(n, seed=3):
    """A training-loss curve: exponential decay, noise, a few spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    y = 2.0 * np.exp(-t / (n / 5)) + 0.3 + 0.08 * rng.standard_normal(n)
    y[rng.integers(0, n, 20)] += 1.5
    return t, y


def figure(x, y, **plot):
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    ax.plot(x, y, **plot)
    return fig, ax


def pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return plt.imread(buf)


def differing(a, b, levels=0):
    """(pixels whose channels differ by more than `levels` of 255, pixels drawn in either)."""
    drawn = np.any(a[..., :3] < 1, axis=2) | np.any(b[..., :3] < 1, axis=2)
    d = np.abs(a.astype(np.float64) - b.astype(np.float64)).max(axis=2) * 255
    return int((d > levels + 0.5).sum()), int(drawn.sum())


class OptimizeVisualization(unittest.TestCase):
    def tearDown(self):
        plt.close("all")

    def test_m4_keeps_the_picture_and_a_fraction_of_the_points(self):
        x, y = loss_curve(300_000)
        raw_fig, _ = figure(x, y)
        opt_fig, ax = figure(x, y)
        self.assertIs(perfopt.optimize_visualization(opt_fig), opt_fig)
        stats = opt_fig.perfopt_reduction
        kept = len(ax.get_lines()[0].get_xdata())
        self.assertEqual((stats["lines"], stats["points_before"], stats["points_after"]),
                         (1, 300_000, kept))
        width_px = 640
        self.assertLessEqual(kept, 4 * 4 * width_px + 2)
        raw, opt = pixels(raw_fig), pixels(opt_fig)
        self.assertEqual(raw.shape, opt.shape)
        diff, drawn = differing(raw, opt)
        strong, _ = differing(raw, opt, 64)
        # Yardstick: what matplotlib's own path simplification (on by default) changes in the
        # same figure. Agg adds up overlapping segments' coverage, so edge pixels of a dense line
        # change with any change of its points (docs/python.md).
        with plt.rc_context({"path.simplify": False}):
            unsimplified, _ = figure(x, y)
            yardstick, _ = differing(raw, pixels(unsimplified))
        # Positive control: the same number of points, evenly spaced, loses spikes and the band.
        naive_fig, nax = figure(x, y)
        idx = np.linspace(0, len(x) - 1, kept).astype(int)
        nax.get_lines()[0].set_data(x[idx], y[idx])
        naive_strong, _ = differing(raw, pixels(naive_fig), 64)
        self.assertLessEqual(strong, 0.001 * drawn, f"{strong} of {drawn} drawn pixels")
        self.assertLessEqual(diff, 1.5 * yardstick, f"{diff} pixels differ ({yardstick} for "
                                                    f"matplotlib's simplification)")
        self.assertGreater(naive_strong, 20 * max(strong, 1))

    def test_invisible_points_are_dropped_and_the_picture_is_identical(self):
        x, y = loss_curve(100_000)
        figs = []
        for _ in range(2):
            fig, ax = figure(x, y)
            ax.set_xlim(50_000, 50_300)  # 300 points in view: nothing to reduce, much to drop
            figs.append(fig)
        perfopt.optimize_visualization(figs[1])
        kept = len(figs[1].axes[0].get_lines()[0].get_xdata())
        self.assertLess(kept, 320)  # the visible 300, the margins, at most 4 beyond each side
        self.assertGreaterEqual(kept, 300)
        raw, opt = pixels(figs[0]), pixels(figs[1])
        self.assertEqual(differing(raw, opt)[0], 0)

    def test_limits_stay_where_they_were(self):
        x, y = loss_curve(50_000)
        fig, ax = figure(x, y)
        before = (ax.get_xlim(), ax.get_ylim())
        perfopt.optimize_visualization(fig)
        self.assertEqual((ax.get_xlim(), ax.get_ylim()), before)
        self.assertFalse(ax.get_autoscalex_on())

    def test_lines_it_cannot_reduce_are_left_alone(self):
        x, y = loss_curve(50_000)
        fig, ax = plt.subplots()
        ax.plot(x, y, marker="o", label="markers")
        ax.plot(x, y, drawstyle="steps-post", label="steps")
        ax.plot(np.sin(x), y, label="not monotonic")
        ax.plot(x[:100], y[:100], label="short")
        perfopt.optimize_visualization(fig)
        reasons = dict(fig.perfopt_reduction["skipped"])
        self.assertEqual(reasons, {"markers": "markers", "steps": "step draw style",
                                   "not monotonic": "x not monotonic", "short": "too few points"})
        for line in ax.get_lines()[:3]:
            self.assertEqual(len(line.get_xdata()), 50_000)

    def test_gaps_and_descending_x(self):
        x, y = loss_curve(200_000)
        y[1000:2000] = np.nan
        fig, ax = figure(x[::-1], y[::-1])
        perfopt.optimize_visualization(fig)
        ky = ax.get_lines()[0].get_ydata()
        self.assertTrue(np.isnan(ky).any())
        self.assertLess(len(ky), 20_000)

    def test_float32_and_dates(self):
        import datetime
        x, y = loss_curve(100_000)
        start = np.datetime64("2021-01-01T00:00")
        dates = start + x.astype("timedelta64[m]")
        fig, ax = figure(dates, y.astype(np.float32))
        perfopt.optimize_visualization(fig)
        self.assertEqual(fig.perfopt_reduction["lines"], 1)
        self.assertLess(fig.perfopt_reduction["points_after"], 20_000)
        self.assertIsInstance(datetime.datetime, type)

    def test_close_removes_the_figure_from_pyplot_and_it_still_saves(self):
        x, y = loss_curve(50_000)
        fig, _ = figure(x, y)
        num = fig.number
        perfopt.optimize_visualization(fig, close=True)
        self.assertNotIn(num, plt.get_fignums())
        self.assertGreater(pixels(fig).size, 0)

    def test_errors(self):
        with self.assertRaises(TypeError):
            perfopt.optimize_visualization(object())
        fig, _ = figure(*loss_curve(1000))
        with self.assertRaises(ValueError):
            perfopt.optimize_visualization(fig, oversample=0)

    def test_without_matplotlib_the_error_says_how_to_install_it(self):
        blocked = {m: None for m in ("matplotlib", "matplotlib.figure", "matplotlib.lines")}
        with mock.patch.dict(sys.modules, blocked):
            with self.assertRaisesRegex(ImportError, "python3-matplotlib"):
                perfopt.optimize_visualization(object())


if __name__ == "__main__":
    unittest.main()
