#!/bin/sh
# make demo: perfopt's main job on a real workload. `perfopt run --heap` runs the
# progressive-training example (examples/progressive_training.c: a small MLP trained bucket by
# bucket on real BTC candles, profiled, monitored, with its cache, memory guard, phases and live
# dashboard), traces its heap and writes its report; then the report is drawn as text and HTML,
# and `perfopt sysinfo` writes the system resource report (the seed's third example). Everything
# goes into the directory given (default demo-out):
#   report.json   the run's report (perfopt run --heap: profile, memory.heap, phases, guards, cache)
#   report.txt    its text table (perfopt report)
#   report.html   the self-contained HTML report, with its suggestions when the advisor made some
#   dashboard_{loss,accuracy,memory,cpu}.svg   the example's training dashboard
#   results.json  what the example found (data cleaning, out-of-sample accuracy per bucket)
#   sysinfo.txt, sysinfo.json   hardware, usage, thresholds in force and GPUs (perfopt sysinfo)
# DEMO_RUN_FLAGS replaces the `perfopt run` options (default --heap); DEMO_ARGS adds options
# to the example (e.g. --short).
set -e
BUILD=${BUILD:-build}
OUT=${1:-demo-out}
PERFOPT="$BUILD/perfopt"
RUN_FLAGS=${DEMO_RUN_FLAGS---heap}
mkdir -p "$OUT"
# A report of an earlier demo must not pass for this one's.
rm -f "$OUT/report.json" "$OUT/report.txt" "$OUT/report.html" "$OUT/results.json"

# --no-report: perfopt run writes the report (with the process's own profile merged in)
# shellcheck disable=SC2086
"$PERFOPT" run $RUN_FLAGS --no-progress -o "$OUT/report.json" -- \
  "$BUILD/examples/progressive_training" --out "$OUT" --no-report ${DEMO_ARGS:-}
"$PERFOPT" report "$OUT/report.json" --sort self --top 25 >"$OUT/report.txt"
"$PERFOPT" report "$OUT/report.json" --html "$OUT/report.html"
"$PERFOPT" sysinfo >"$OUT/sysinfo.txt"
"$PERFOPT" sysinfo --json >"$OUT/sysinfo.json"
echo
echo "perfopt demo: everything is in $OUT/"
echo "  report       $OUT/report.json, $OUT/report.txt, $OUT/report.html (open it in a browser)"
echo "  dashboard    $OUT/dashboard_loss.svg, dashboard_accuracy.svg, dashboard_memory.svg, dashboard_cpu.svg"
echo "  results      $OUT/results.json (data cleaning, accuracy per bucket against always-up)"
echo "  system       $OUT/sysinfo.txt, $OUT/sysinfo.json"
