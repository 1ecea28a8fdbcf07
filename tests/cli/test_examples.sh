#!/bin/sh
# The integration examples end to end: make demo's script (perfopt run --heap around a short
# progressive_training) reports the data facts that awk finds on its own in the same files, never
# tests on data it trained on, and leaves the report perfopt promises (functions, phases, guards,
# cleanups, cache, heap) with its HTML and sysinfo; viz_optimization's optimized picture is the
# full one, pixel for pixel, in a far smaller SVG, and its streamed one needs less memory. The JSON
# checks run in one python3 process (each start costs seconds under pyenv on a loaded machine).
set -u
fail() { echo "test_examples: FAIL: $*"; exit 1; }
BUILD=${BUILD:-build}
PT="$BUILD/examples/progressive_training"
VIZ="$BUILD/examples/viz_optimization"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
HOURLY=examples/data/btcusdt-hourly.csv
DAILY=examples/data/btc-usd-daily.csv

# ---- the truths, from awk alone ------------------------------------------------------------
rows=$(awk 'END { print NR - 1 }' "$HOURLY")
nulls=$(awk -F, 'NR > 1 && $10 == "NULL" { n++ } END { print n + 0 }' "$HOURLY")
dups=$(awk -F, 'NR > 1 { t = ($1 > 1e11) ? $1 / 1000 : $1 + 0; if (seen[t]++) d++ } END { print d + 0 }' "$HOURLY")
badprint=$(awk -F, 'NR > 1 && $5 / $6 > 2 { n++ } END { print n + 0 }' "$HOURLY")
gaps=$(awk -F, 'NR > 1 { t = ($1 > 1e11) ? $1 / 1000 : $1; printf "%d\n", t }' "$HOURLY" | sort -n -u |
  awk 'NR > 1 && $1 - p > 5400 { g++; m += ($1 - p) / 3600 - 1 } { p = $1 } END { print g + 0, m + 0 }')
[ "$rows" = 36062 ] && [ "$nulls" = 28584 ] && [ "$dups" = 2649 ] && [ "$badprint" = 1 ] &&
  [ "$gaps" = "8 16" ] ||
  fail "the data file changed: rows $rows, NULL $nulls, duplicates $dups, bad prints $badprint, gaps $gaps"
drows=$(awk 'END { print NR - 1 }' "$DAILY")

# ---- make demo's script, short: perfopt run (--heap) around the example, the report as text
# and HTML, sysinfo. A sanitizer build's example cannot take the heap tracker's LD_PRELOAD.
HEAPFLAG=--heap
nm "$BUILD/libperfopt.a" 2>/dev/null | grep -Eq ' U __(asan|tsan)_init' && HEAPFLAG=
DEMO_RUN_FLAGS="$HEAPFLAG" DEMO_ARGS="--short" BUILD="$BUILD" sh scripts/demo.sh "$T/h" \
  >"$T/h.out" 2>"$T/h.err" || fail "scripts/demo.sh exited $? ($(tail -3 "$T/h.err"))"
grep -q "everything is in $T/h/" "$T/h.out" || fail "the demo does not say where its files are"
grep -q "2649 duplicate timestamp" "$T/h.out" || fail "the summary does not count the duplicates"
grep -q "28584 NULL cells" "$T/h.out" || fail "the summary does not count the NULL cells"
grep -Eq "^(low|mid|high)_vol " "$T/h.out" || fail "the demo printed no bucket table"
for f in results.json report.json report.txt report.html sysinfo.txt sysinfo.json dashboard_loss.svg \
  dashboard_accuracy.svg dashboard_memory.svg dashboard_cpu.svg; do
  [ -s "$T/h/$f" ] || fail "the demo did not write $f"
done
grep -q "</svg>" "$T/h/dashboard_loss.svg" || fail "dashboard_loss.svg is not a whole SVG"
grep -q "train_bucket" "$T/h/report.txt" || fail "report.txt lacks train_bucket"
grep -q "<section" "$T/h/report.html" && grep -q "</html>" "$T/h/report.html" ||
  fail "the demo's report.html is not a whole report"
# the advisor's suggestions (a hot function at least: a few functions share all the time)
grep -q "^suggestions (" "$T/h/report.txt" && grep -q 'id="suggestions"' "$T/h/report.html" ||
  fail "the demo's report has no suggestions"
grep -q "^Hardware" "$T/h/sysinfo.txt" && grep -q "^GPUs" "$T/h/sysinfo.txt" ||
  fail "the demo's sysinfo.txt lacks hardware or GPUs"

# the memory guard's fallback: a copy that cannot fit gives a cold start
"$PT" --short --epochs 1 --no-report --transfer-bytes 999999999999999 --out "$T/g" >"$T/g.out" 2>&1 ||
  fail "fallback run exited $?"
[ ! -e "$T/g/report.json" ] || fail "--no-report wrote a report"

"$PT" --data daily --short --epochs 1 --no-report --out "$T/d" >"$T/d.out" 2>&1 || fail "daily run exited $?"

# every skip rule, on a file made for it: 100 good hourly candles (newest first, ms and s
# timestamps, NULL tradecount), then one row per rule
C="$T/made.csv"
{
  echo "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount"
  awk 'BEGIN { for (i = 99; i >= 0; i--) { t = 1600000000 + 3600 * i; p = 100 + i % 7
         printf "%s,d,BTC/USDT,%d,%d,%d,%d,1,1,NULL\n", (i % 2 ? t "000" : t ".0"), p, p + 2, p - 1, p + 1 } }'
  echo "1700000000,d,BTC/USDT,100,102,99,NULL,1,1,5"        # missing or non-numeric cell
  echo "1700003600,d,BTC/USDT,abc,102,99,101,1,1,5"         # missing or non-numeric cell
  echo "1700007200,d,BTC/USDT,100,102,99,101,,1,5"          # missing or non-numeric cell (empty)
  echo "1700010800,d,BTC/USDT,100,102"                      # missing or non-numeric cell (short row)
  echo ""
  echo "soon,d,BTC/USDT,100,102,99,101,1,1,5"               # bad timestamp
  echo "1700014400,d,BTC/USDT,100,102,0,101,1,1,5"          # inconsistent candle (a price of 0)
  echo "1700018000,d,BTC/USDT,100,98,99,101,1,1,5"          # inconsistent candle (high < low)
  echo "1700021600,d,BTC/USDT,100,250,99,101,1,1,5"         # bad print (high / low > 2)
  echo "1600000000000,d,BTC/USDT,50,52,49,51,1,1,5"         # duplicate timestamp (of a row above)
} >"$C"
"$PT" --data "$C" --short --epochs 1 --out "$T/m" >"$T/m.out" 2>&1 ||
  fail "the made file: exit $? ($(tail -3 "$T/m.out"))"
# without --no-report the example writes its report itself
for f in report.json report.txt report.html; do [ -s "$T/m/$f" ] || fail "the example did not write $f"; done
grep -q "train_bucket" "$T/m/report.txt" || fail "the example's report.txt lacks train_bucket"

# ---- viz_optimization ----------------------------------------------------------------------
"$VIZ" --points 300000 --compare-points 30000 --out "$T/v" >"$T/v.out" 2>"$T/v.err" ||
  fail "viz_optimization exited $? ($(tail -3 "$T/v.err"))"
grep -q "drawn pixels differ" "$T/v.out" || fail "viz_optimization printed no comparison"

python3 - "$T" "$rows" "$nulls" "$dups" "$badprint" "$gaps" "$drows" "$HEAPFLAG" <<'EOF' || fail "see above"
import json, sys
T, rows, nulls, dups, badprint, gaps, drows, heapflag = sys.argv[1:]
rows, nulls, dups, badprint, drows = map(int, (rows, nulls, dups, badprint, drows))
def load(p): return json.load(open(f"{T}/{p}"))
def check(ok, what):
    if not ok: sys.exit(f"test_examples: FAIL: {what}")

r = load("h/results.json")
check(r["rows_read"] == rows, f"rows_read {r['rows_read']} != {rows}")
check(r["null_cells_unused"] == nulls, f"NULL tradecount cells {r['null_cells_unused']} != {nulls}")
check(r["skipped"]["duplicate timestamp"] == dups, f"duplicates: {r['skipped']}")
check(r["skipped"]["bad print"] == badprint, f"bad prints: {r['skipped']}")
check(sum(r["skipped"].values()) == dups + badprint, f"skipped: {r['skipped']}")
check(r["candles"] == rows - dups - badprint, f"candles kept {r['candles']}")
check(f"{r['gaps']} {r['missing_candles']}" == gaps, f"gaps {r['gaps']} {r['missing_candles']} != {gaps}")
check(r["newest_first"] is True and r["layout"] == "hourly", "the hourly file is newest first")
b = r["buckets"]
check(len(b) == 3, f"buckets: {b}")
# no look-ahead: each bucket's test window starts after its last training target
for x in b:
    check(x["train_first_time"] <= x["train_last_time"] < x["train_last_target_time"]
          <= x["test_first_time"] <= x["test_last_time"], f"look-ahead in {x}")
    check(x["test_samples"] > 0 and 0 <= x["accuracy"] <= 1 and 0 < x["always_up"] < 1, f"{x}")
# --short: the last 1500 training samples of each bucket, two epochs
check(all(x["train_samples"] == 1500 for x in b) and r["epochs"] == 2, "--short did not shorten")
starts = [x["transfer"].split(" (")[0] for x in b]
check(starts == ["cold start", "warm start", "warm start"], f"transfers {starts}")
check(r["scratch_frees"] >= 3, "the cleanup between buckets did not free the training scratch")

p = load("h/report.json")
names = {f["name"] for f in p["profile"]["functions"]}
for f in ("train_bucket", "transfer_knowledge", "update_dashboard", "train_step", "load_bucket"):
    check(f in names, f"report: function {f} missing: {sorted(names)}")
phases = [x["name"] for x in p["resources"]["phases"]]
check(phases == ["bucket low_vol", "bucket mid_vol", "bucket high_vol"], f"phases {phases}")
guards = p["memory"]["guards"]
check([g["name"] for g in guards] == ["transfer to mid_vol", "transfer to high_vol"]
      and all(g["ran"] == "primary" for g in guards), f"guards {guards}")
check(any(c["handler"] == "training scratch" for c in p["memory"]["cleanups"]), "no scratch cleanup")
cache = [c for c in p["cache"]["caches"] if c["name"] == "default"][0]
types = {t["type"]: t for t in cache["per_type"]}
# each bucket's data: loaded for its first epoch, a hit for the second, evicted by the cleanup
# at the bucket's end, loaded again for the last model's evaluation; the models stay
check(cache["loads"] == 6 and cache["hits"] == 3 and types["data"]["evictions"] == 3
      and types["data"]["entries"] == 3 and types["model"]["entries"] == 3, f"cache {cache}")
check([s["reason"] for s in cache["shrinks"]] == ["manual"] * 3
      and all(s["to_bytes"] < s["from_bytes"] for s in cache["shrinks"]), f"shrinks {cache['shrinks']}")
check(r["cache"]["hits"] == 3 and r["cache"]["shrinks"] == 3, f"results.json cache {r['cache']}")

g = load("g/results.json")
starts = [x["transfer"].split(" (")[0] for x in g["buckets"]]
check(starts == ["cold start"] * 3, f"the guard did not fall back: {starts}")

d = load("d/results.json")
check((d["layout"], d["rows_read"], d["candles"], sum(d["skipped"].values()), d["gaps"],
       d["period_seconds"], d["newest_first"]) == ("daily", drows, drows, 0, 0, 86400, False),
      f"daily: {d}")

m = load("m/results.json")
check((m["rows_read"], m["candles"], m["skipped"]) == (109, 100, {
    "missing or non-numeric cell": 4, "bad timestamp": 1, "inconsistent candle": 2,
    "bad print": 1, "duplicate timestamp": 1}), f"skip rules: {m['rows_read']} {m['candles']} {m['skipped']}")
check(m["null_cells_unused"] == 100, f"NULL cells of the made file: {m['null_cells_unused']}")
check((m["first_time"], m["last_time"], m["gaps"]) == (1600000000, 1600356400, 0), "made file times")

# viz_optimization: the optimized picture is the full one, in a far smaller SVG
v = load("v/viz_results.json")
px = v["compared"]["pixels"]
check(px["drawn"] > 1000 and px["ratio"] <= 0.001, f"the optimized picture differs: {px}")
check(v["drawn"]["as_is"]["svg_bytes"] > 20 * v["drawn"]["optimized"]["svg_bytes"],
      f"the optimized SVG is not much smaller: {v['drawn']}")
# streamed: the curve never exists whole, so drawing adds less memory than the whole series does
dv = v["drawn"]
check(dv["streamed"]["peak_rss_bytes"] - dv["streamed"]["data_rss_bytes"]
      < dv["optimized"]["peak_rss_bytes"] - dv["optimized"]["data_rss_bytes"], f"streamed memory {dv}")
ps = v["compared"]["pixels_streamed"]
check(ps["drawn"] > 1000 and ps["ratio"] < 0.5 and dv["streamed"]["svg_bytes"] < 100000,
      f"the streamed picture: {ps} {dv['streamed']}")
# positive control: the same comparison sees a different picture (another curve length)
sys.path.insert(0, "bench")
import pixel_diff
w1, h1, b1, r1 = pixel_diff.read_png(f"{T}/v/compare_raw.png")
w2, h2, b2, r2 = pixel_diff.read_png(f"{T}/v/curve_optimized.png")
check((w1, h1, b1) == (w2, h2, b2) and r1 != r2, "pixel_diff sees no difference between two curves")

# the demo: perfopt run's report of the example's process, with its heap outside sanitizers
check(p["run"]["mode"] == "run" and p["run"]["exit"]["exit_code"] == 0
      and p["run"]["argv"][0].endswith("examples/progressive_training"), f"demo run {p['run']}")
if heapflag:
    check(p["memory"]["heap"]["peak_bytes"] > 1 << 20, f"demo heap {p['memory'].get('heap')}")
check(load("h/sysinfo.json") != {}, "sysinfo.json is empty")
m_rep = load("m/report.json")
check("train_bucket" in {f["name"] for f in m_rep["profile"]["functions"]}, "the example's own report")
EOF

# ---- bad input -----------------------------------------------------------------------------
"$PT" --data "$T/missing.csv" --out "$T/x" >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "missing.csv" "$T/err" || fail "a missing data file: exit $rc, $(cat "$T/err")"
printf 'a,b\n1,2\n' >"$T/other.csv"
"$PT" --data "$T/other.csv" --out "$T/x" >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "unknown CSV layout" "$T/err" || fail "an unknown layout: exit $rc, $(cat "$T/err")"
"$PT" --epochs 0 >/dev/null 2>&1; [ $? = 2 ] || fail "--epochs 0 is not a usage error"
"$PT" --bogus >/dev/null 2>&1; [ $? = 2 ] || fail "an unknown option is not a usage error"

"$VIZ" --points 2 >/dev/null 2>&1; [ $? = 2 ] || fail "viz_optimization --points 2 is not a usage error"
echo "test_examples: ok"
