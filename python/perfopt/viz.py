"""optimize_visualization(fig): each matplotlib line reduced in place to what its pixels can show.

For every Line2D of every Axes, in display coordinates (the figure's own pixel grid at its dpi, or
at `dpi` when given): the points outside the visible x range are dropped (keeping the one on each
side, so the segments entering and leaving the view are drawn the same), and the rest are reduced
with perfopt's M4 (po_downsample with PO_DS_M4): per pixel column the first, last, lowest and
highest point, bucketed exactly as po_ds_column does, `oversample` columns per pixel. The numpy
buffers go to C without a copy (float64 or float32); only the kept points are copied back.

What "unchanged" means. M4 keeps every column's extent, so the line covers the same columns from
the same minimum to the same maximum, joined to its neighbours the same way: no feature at the
figure's size is lost. It is not bit-identical under anti-aliasing (Agg): Agg adds up the coverage
of overlapping segments at a pixel, so thousands of overlapping segments draw edge pixels a little
darker than the few M4 keeps (matplotlib's own path simplification changes edge pixels the same
way). Measured by bench/bench_python.py and examples/viz_optimization.py on the pixels of both PNGs:
see docs/python.md.

Lines that are left as they are (and listed in fig.perfopt_reduction['skipped']): lines with markers,
step draw styles, non-monotonic x (scatter-like or parametric lines), non-separable transforms
(polar axes), and lines too short to gain.

The axes' limits are fixed at their current values first, so the picture cannot move when the data
changes (autoscaling is turned off for the optimized axes).
"""
import time

from . import _perfopt
from .profiling import zone

M4 = 0
_CHUNK = 1 << 20


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as e:
        raise ImportError("optimize_visualization needs matplotlib (Debian: apt-get install "
                          "python3-matplotlib; scripts/install-deps installs it)") from e
    return Figure, Line2D


def _values(line, axis):
    """The line's x or y values as a contiguous float64/float32 array, without a copy when the
    line was given one (Line2D's own converted arrays are strided views of one (n, 2) array)."""
    import numpy as np
    orig = line.get_xdata(orig=True) if axis == "x" else line.get_ydata(orig=True)
    if isinstance(orig, np.ndarray) and orig.ndim == 1 and orig.dtype in (np.float64, np.float32) \
            and not np.ma.isMaskedArray(orig):
        return np.ascontiguousarray(orig)
    conv = line.get_xdata(orig=False) if axis == "x" else line.get_ydata(orig=False)
    if np.ma.isMaskedArray(conv):
        conv = np.ma.asarray(conv, dtype=np.float64).filled(np.nan)
    return np.ascontiguousarray(conv, dtype=np.float64)


def _display_x(transform, x, y_any):
    """Display x of every point. An affine transform is one multiply-add over x; another is
    applied in chunks (bounded temporary memory). The transform is separable, so display x does
    not depend on y: every point gets the same finite y (a NaN y, a gap, would make x NaN)."""
    import numpy as np
    if transform.is_affine:
        m = transform.get_matrix()
        out = np.multiply(x, m[0, 0], dtype=np.float64)
        out += m[0, 2]
        return out
    out = np.empty(len(x), dtype=np.float64)
    for i in range(0, len(x), _CHUNK):
        j = min(i + _CHUNK, len(x))
        out[i:j] = transform.transform(np.column_stack((x[i:j], np.full(j - i, y_any))))[:, 0]
    return out


def _visible_columns(fig, ax, line):
    """(lo, width, margin): the pixel columns the line can be seen in, and how far outside them
    a point's stroke can still reach in (half the line width, joins and antialiasing)."""
    import math
    box = ax.bbox if line.get_clip_on() else fig.bbox
    lo = math.floor(box.x0)
    margin = math.ceil(line.get_linewidth() * fig.dpi / 72.0) + 2
    return lo, max(1, math.ceil(box.x1) - lo), margin


def _m4(dx, y, a, b, columns):
    import numpy as np
    return np.frombuffer(_perfopt.downsample(M4, dx, y, columns, float(a), float(b)),
                         dtype=np.uintp)


def _reduce_line(fig, ax, line, oversample):
    """Reduces one line; returns (before, after) point counts or a reason to skip it."""
    import numpy as np
    if line.get_marker() not in (None, "", "None", " ", "none"):
        return "markers"
    if not line.get_drawstyle().startswith("default"):
        return "step draw style"
    tr = line.get_transform()
    if not tr.is_separable:
        return "non-separable transform"
    x, y = _values(line, "x"), _values(line, "y")
    n = len(x)
    lo, width, margin = _visible_columns(fig, ax, line)
    if n != len(y) or n <= 4 * width * oversample:
        return "too few points"
    y0, y1 = ax.get_ylim()
    dx = _display_x(tr, x, (y0 + y1) / 2)
    # Columns cover the visible ones and a margin a stroke can reach in from; points beyond fall
    # into the first or last column, where M4 keeps at most four of them (all invisible, and
    # their segments too, since x is monotonic). po_downsample checks that x is sorted and has
    # no NaN, over every point.
    a, b = lo - margin, lo + width + margin
    try:
        idx = _m4(dx, y, a, b, (b - a) * oversample)
    except ValueError as e:
        if not (dx[0] > dx[-1]):
            return "x not monotonic" if "NaN" not in str(e) else "NaN in x"
        dx, x, y = dx[::-1].copy(), x[::-1].copy(), y[::-1].copy()  # descending: reverse
        try:
            idx = _m4(dx, y, a, b, (b - a) * oversample)
        except ValueError:
            return "x not monotonic"
    line.set_data(x[idx], y[idx])
    return n, len(idx)


def optimize_visualization(fig, *, close=False, oversample=4, dpi=None):
    """Reduces every line of `fig` in place (see the module documentation) and returns fig.

    close: also close the figure in pyplot (plt.close), so pyplot stops holding it; the figure can
    still be saved. oversample: M4 columns per pixel (1: exactly the pixel width; the default 4
    keeps at most 16 points per pixel column, which brings anti-aliased edges closer to the
    original's: docs/python.md has the measurements). dpi: the resolution it will be saved at (default: the figure's).
    fig.perfopt_reduction says what was done: lines, points_before, points_after, seconds, skipped.
    """
    Figure, Line2D = _require_matplotlib()
    if not isinstance(fig, Figure):
        raise TypeError(f"optimize_visualization expects a matplotlib Figure, not "
                        f"{type(fig).__name__}")
    oversample = int(oversample)
    if oversample < 1:
        raise ValueError("oversample must be at least 1")
    t0 = time.perf_counter()
    stats = {"lines": 0, "points_before": 0, "points_after": 0, "skipped": []}
    saved_dpi = fig.dpi
    with zone("perfopt.optimize_visualization"):
        try:
            if dpi is not None:
                fig.set_dpi(dpi)
            engine = fig.get_layout_engine() if hasattr(fig, "get_layout_engine") else None
            if engine is not None:
                engine.execute(fig)  # the axes' final pixel positions, without drawing
            for ax in fig.axes:
                ax.set_xlim(ax.get_xlim())  # the view as it is now: autoscale off
                ax.set_ylim(ax.get_ylim())
                for line in ax.get_lines():
                    if not line.get_visible():
                        continue
                    r = _reduce_line(fig, ax, line, oversample)
                    if isinstance(r, str):
                        stats["skipped"].append((line.get_label(), r))
                        continue
                    stats["lines"] += 1
                    stats["points_before"] += r[0]
                    stats["points_after"] += r[1]
        finally:
            if dpi is not None:
                fig.set_dpi(saved_dpi)
    stats["seconds"] = time.perf_counter() - t0
    fig.perfopt_reduction = stats
    if close:
        import matplotlib.pyplot as plt
        plt.close(fig)
    return fig
