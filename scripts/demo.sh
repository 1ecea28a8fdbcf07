#!/bin/sh
# make demo: perfopt's main job on a real workload. `perfopt run` runs the progressive-training
# example (examples/progressive_training.c: a small MLP trained bucket by bucket on real BTC
# candles, profiled, monitored, with its cache, memory guard, phases and live dashboard) and
# writes its report; then the report is drawn as text and HTML. Everything goes into the
# directory given (default demo-out):
#   report.json   the run's report (perfopt run)
#   report.txt    its text table (perfopt report)
#   report.html   the self-contained HTML report with its suggestions (perfopt report --html)
#   dashboard_{loss,accuracy,memory,cpu}.svg   the example's training dashboard
#   results.json  what the example found (data cleaning, accuracy per bucket)
set -e
BUILD=${BUILD:-build}
OUT=${1:-demo-out}
PERFOPT="$BUILD/perfopt"
mkdir -p "$OUT"

# FOR THE LEAD: once `perfopt run` accepts --heap (branch `run` with the heap tracker), set
# HEAP=--heap here (or pass it: `make demo DEMO_RUN_FLAGS=--heap`) so the report has memory.heap.
HEAP=${DEMO_RUN_FLAGS:-}

# --no-report: perfopt run writes the report (with the process's own profile merged in)
# shellcheck disable=SC2086
"$PERFOPT" run $HEAP -o "$OUT/report.json" -- \
  "$BUILD/examples/progressive_training" --out "$OUT" --no-report
"$PERFOPT" report "$OUT/report.json" --sort self --top 25 >"$OUT/report.txt"
"$PERFOPT" report "$OUT/report.json" --html "$OUT/report.html"
echo
echo "perfopt demo: report written to $OUT/report.json, $OUT/report.txt and $OUT/report.html;"
echo "the training dashboard is $OUT/dashboard_*.svg"
