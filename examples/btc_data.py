"""BTC candles for the examples: both CSV layouts in examples/data, cleaned, in time order, with a
count of every row skipped and why; and the features, target, split and regime buckets that the
progressive-training examples share (the rules are written out in examples/README.md, so that the
C and Python versions compute the same thing).

Layouts:
- Yahoo Finance daily: Date,Open,High,Low,Close,Adj Close,Volume (oldest first; Yahoo writes
  "null" in cells it has no value for).
- CryptoDataDownload hourly: unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount
  (newest first; `unix` in milliseconds in newer rows and seconds with ".0" in older ones; NULL
  tradecount in older rows: that column is not used).
"""
import csv
import datetime
import math

import numpy as np

WINDOWS = (1, 6, 24)  # return windows, in candles
VOL_WINDOWS = (6, 24)  # volatility and volume-change windows, in candles
FEATURES = ("ret_1", "ret_6", "ret_24", "vol_6", "vol_24", "vchg_6", "vchg_24", "range")
TRAIN_SHARE = 0.7
BAD_PRINT_RATIO = 2.0  # high / low above this is a bad print
BUCKETS = ("low_vol", "mid_vol", "high_vol")
PERIOD_SECONDS = {"daily": 86400, "hourly": 3600}  # a step longer than 1.5 periods is a gap


class Candles:
    """Cleaned candles in time order: t (unix seconds), open, high, low, close, volume (numpy
    arrays), period_seconds, and what loading skipped and found."""

    def __init__(self, path, layout, rows, skipped, read):
        rows.sort(key=lambda r: r[0])
        a = np.array(rows, dtype=np.float64).reshape(-1, 6)
        self.path, self.layout = path, layout
        self.t, self.open, self.high, self.low, self.close, self.volume = a.T.copy()
        self.rows_read, self.skipped = read, skipped
        steps = np.diff(self.t)
        self.period_seconds = float(PERIOD_SECONDS.get(layout) or
                                    (np.median(steps) if len(steps) else 0.0))
        gaps = steps[steps > 1.5 * self.period_seconds] if len(steps) else steps
        self.gaps = int(len(gaps))
        self.largest_gap_periods = float(gaps.max() / self.period_seconds) if len(gaps) else 0.0

    def __len__(self):
        return len(self.t)

    def summary(self):
        first = datetime.datetime.fromtimestamp(self.t[0], datetime.timezone.utc)
        last = datetime.datetime.fromtimestamp(self.t[-1], datetime.timezone.utc)
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        return (f"{self.path}: {self.layout} layout, {self.rows_read} rows read, {len(self)} kept "
                f"({first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC); skipped: {skipped}; "
                f"{self.gaps} gaps (largest {self.largest_gap_periods:.0f} periods)")


def _number(cell):
    """A finite float, or None for an empty, NULL/null or non-numeric cell."""
    s = cell.strip()
    if not s or s.lower() in ("null", "nan", "none", "n/a"):
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _layout(header):
    h = [c.strip().lower() for c in header]
    if h[:1] == ["unix"] and "close" in h and "volume btc" in h:
        return "hourly", h.index("unix"), [h.index(c) for c in ("open", "high", "low", "close",
                                                               "volume btc")]
    if h[:1] == ["date"] and "close" in h and "volume" in h:
        return "daily", 0, [h.index(c) for c in ("open", "high", "low", "close", "volume")]
    raise ValueError(f"unknown CSV layout: header {header!r} (expected the Yahoo daily or the "
                     f"CryptoDataDownload hourly layout)")


def _timestamp(layout, cell):
    if layout == "hourly":
        v = _number(cell)
        if v is None:
            return None
        return v / 1000.0 if v > 1e11 else v  # milliseconds in newer rows, seconds in older ones
    try:
        d = datetime.datetime.strptime(cell.strip(), "%Y-%m-%d")
    except ValueError:
        return None
    return d.replace(tzinfo=datetime.timezone.utc).timestamp()


def load_candles(path):
    """Reads either layout; skips (and counts, by reason) rows that cannot be used:
    'missing or non-numeric cell', 'bad timestamp', 'inconsistent candle' (non-positive price,
    low above high, open or close outside [low, high]), 'bad print' (high/low above 2), and
    'duplicate timestamp' (the first row seen is kept)."""
    skipped, rows, seen, read = {}, [], set(), 0

    def skip(why):
        skipped[why] = skipped.get(why, 0) + 1

    with open(path, newline="") as f:
        reader = csv.reader(f)
        layout, tcol, cols = _layout(next(reader))
        for rec in reader:
            if not rec:
                continue
            read += 1
            if len(rec) <= max(tcol, *cols):
                skip("missing or non-numeric cell")
                continue
            t = _timestamp(layout, rec[tcol])
            vals = [_number(rec[c]) for c in cols]
            if t is None:
                skip("bad timestamp")
            elif any(v is None for v in vals):
                skip("missing or non-numeric cell")
            else:
                o, h, lo, c, v = vals
                if min(o, h, lo, c) <= 0 or lo > h or not (lo <= o <= h and lo <= c <= h) or v < 0:
                    skip("inconsistent candle")
                elif h / lo > BAD_PRINT_RATIO:
                    skip("bad print")
                elif t in seen:
                    skip("duplicate timestamp")
                else:
                    seen.add(t)
                    rows.append((t, o, h, lo, c, v))
    return Candles(path, layout, rows, skipped, read)


def features(c):
    """(X, y, index): features of candle i from candles <= i only, and y = 1 when the next
    candle closes higher. index[j] is the candle of sample j (from max(WINDOWS) to n-2)."""
    n = len(c)
    lc = np.log(c.close)
    r1 = np.zeros(n)
    r1[1:] = np.diff(lc)
    start = max(max(WINDOWS), max(VOL_WINDOWS))
    idx = np.arange(start, n - 1)
    cols = [lc[idx] - lc[idx - k] for k in WINDOWS]
    for k in VOL_WINDOWS:
        win = np.lib.stride_tricks.sliding_window_view(r1, k)  # win[j] = r1[j .. j+k-1]
        cols.append(win[idx - k + 1].std(axis=1))
    for k in VOL_WINDOWS:
        win = np.lib.stride_tricks.sliding_window_view(c.volume, k)
        cols.append(np.log((c.volume[idx] + 1.0) / (win[idx - k + 1].mean(axis=1) + 1.0)))
    cols.append(np.log(c.high[idx] / c.low[idx]))
    X = np.column_stack(cols)
    y = (c.close[idx + 1] > c.close[idx]).astype(np.float64)
    return X, y, idx


def split_and_bucket(X, y):
    """Time split (first TRAIN_SHARE of samples train, the rest test), the training period's
    feature standardization, and regime buckets by the training period's vol_24 terciles.
    Returns {bucket: (X_train, y_train, X_test, y_test)} and the thresholds."""
    n_train = int(len(X) * TRAIN_SHARE)
    vol = X[:, FEATURES.index("vol_24")]
    q1, q2 = np.quantile(vol[:n_train], [1 / 3, 2 / 3])
    regime = np.where(vol <= q1, 0, np.where(vol <= q2, 1, 2))
    mean, std = X[:n_train].mean(axis=0), X[:n_train].std(axis=0)
    Z = (X - mean) / np.where(std > 0, std, 1.0)
    train = np.arange(len(X)) < n_train
    out = {}
    for b, name in enumerate(BUCKETS):
        tr, te = train & (regime == b), ~train & (regime == b)
        out[name] = (Z[tr], y[tr], Z[te], y[te])
    return out, (float(q1), float(q2))
