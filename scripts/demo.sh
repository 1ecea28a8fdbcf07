#!/bin/sh
# make demo: runs the BTC back-test sweep (a real workload on real data), profiled and monitored,
# and writes its report as JSON, text and HTML into the directory given (default demo-out).
set -e
BUILD=${BUILD:-build}
OUT=${1:-demo-out}
mkdir -p "$OUT"
"$BUILD/examples/btc_backtest" examples/data/btcusdt-hourly.csv "$OUT"
# The same report through the CLI, as a user would look at it later.
"$BUILD/perfopt" report "$OUT/report.json" --sort self --top 10 >/dev/null
echo
echo "perfopt demo: report written to $OUT/report.json, $OUT/report.txt and $OUT/report.html"
