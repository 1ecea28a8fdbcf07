#!/bin/sh
# perfopt report --format text|json|html|trace|folded|prom, --diff with --fail-if, perfopt merge:
# the formats users' tools open, from a real run's report.
set -u
fail() { echo "test_report_formats: FAIL: $*"; exit 1; }
BUILD=${BUILD:-build}
PERFOPT=${PERFOPT:-$BUILD/perfopt}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# The back-test writes its own optimizer's report (profile, timeline, resources and its cache).
PERFOPT_PROFILE_TIMELINE=1 "$BUILD/examples/btc_backtest" examples/data/btcusdt-hourly.csv "$T" \
  >/dev/null 2>"$T/err" || fail "the back-test exited $? ($(tail -3 "$T/err"))"
mv "$T/report.json" "$T/r.json"

# text: the table and the suggestions (the demo's undersized cache is a finding)
"$PERFOPT" report "$T/r.json" >"$T/text" || fail "text exited $?"
grep -q "^suggestions" "$T/text" || fail "no suggestions in the text"
grep -q "cache-too-small" "$T/text" || fail "the undersized cache was not reported"
grep -q '^!!' "$T/text" && fail "rows are still marked '!!' by position"

# json, html
"$PERFOPT" report "$T/r.json" --format json | python3 -m json.tool >/dev/null || fail "json"
"$PERFOPT" report "$T/r.json" --format html -o "$T/r.html" || fail "html exited $?"
grep -q 'id="suggestions"' "$T/r.html" || fail "the HTML does not show the suggestions"

# trace: Trace Event Format with zones and counters
"$PERFOPT" report "$T/r.json" --format trace -o "$T/trace.json" || fail "trace exited $?"
python3 - "$T/trace.json" <<'PY' || fail "trace is not a usable Trace Event file"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
phs = {e["ph"] for e in ev}
assert {"X", "C", "M"} <= phs, phs
for e in ev:
    assert isinstance(e["name"], str) and isinstance(e["pid"], int) and isinstance(e["tid"], int), e
    if e["ph"] != "M":
        assert isinstance(e["ts"], (int, float)), e
    if e["ph"] == "X":
        assert e["dur"] >= 0, e
names = {e["name"] for e in ev if e["ph"] == "C"}
assert "process_rss_bytes" in names and "cpu_utilization_ratio" in names, names
assert any(e["name"] == "simulate" for e in ev if e["ph"] == "X")
PY

# folded: "frame;frame value" lines whose values add up to the profile's self time
"$PERFOPT" report "$T/r.json" --format folded >"$T/folded" || fail "folded exited $?"
[ -s "$T/folded" ] || fail "folded output is empty"
grep -qv '^[^ ].* [0-9][0-9]*$' "$T/folded" && fail "a folded line is malformed: $(grep -v '^[^ ].* [0-9][0-9]*$' "$T/folded" | head -1)"
grep -q '^sweep_bucket;indicator;load_indicator;sma [0-9]' "$T/folded" || fail "no nested stack"
"$PERFOPT" report "$T/r.json" --format folded --folded-value heap >/dev/null 2>"$T/err" \
  && fail "heap folded stacks without heap data succeeded"
grep -q "heap" "$T/err" || fail "the missing heap data is not named"

# prom: promtool parses it; its only lint is node_exporter's own camelCase names
"$PERFOPT" report "$T/r.json" --format prom >"$T/r.prom" || fail "prom exited $?"
grep -q '^# TYPE process_resident_memory_bytes gauge$' "$T/r.prom" || fail "no process_resident_memory_bytes"
if command -v promtool >/dev/null 2>&1; then
  promtool check metrics <"$T/r.prom" >"$T/lint" 2>&1
  rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "promtool could not parse it (exit $rc): $(cat "$T/lint")"
  grep -v "^node_memory_[A-Za-z]*_bytes metric names should be written in 'snake_case' not 'camelCase'$" "$T/lint" \
    | grep -q . && fail "promtool lint: $(cat "$T/lint")"
else
  echo "test_report_formats: promtool not installed (Debian package prometheus): skipped its check"
fi
"$PERFOPT" sysinfo --json --window 0 >"$T/sys.json" || fail "sysinfo --json"
"$PERFOPT" report "$T/sys.json" --format prom | grep -q '^node_memory_MemAvailable_bytes [0-9]' \
  || fail "a sysinfo report has no node_memory_MemAvailable_bytes"

# diff: the same report twice changes nothing; a slower copy trips the gate (exit 3)
"$PERFOPT" report --diff "$T/r.json" "$T/r.json" --fail-if slower:10% >"$T/diff" \
  || fail "diff of a report with itself exited $?"
grep -q "no significant function changed" "$T/diff" || fail "identical reports differ: $(cat "$T/diff")"
python3 - "$T/r.json" "$T/slow.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for f in r["profile"]["functions"]:
    if f["name"] == "simulate":
        f["self_seconds"] *= 1.5
        f["p95_seconds"] *= 1.5
json.dump(r, open(sys.argv[2], "w"))
PY
"$PERFOPT" report --diff "$T/r.json" "$T/slow.json" --fail-if slower:10% >"$T/diff" 2>"$T/err"
[ $? -eq 3 ] || fail "a 50% slower function did not fail the gate (exit 3)"
grep -q "simulate" "$T/err" || fail "the gate does not name the function: $(cat "$T/err")"
grep -q "slower *simulate" "$T/diff" || fail "the diff does not list simulate as slower"
"$PERFOPT" report --diff "$T/r.json" "$T/slow.json" --fail-if slower:60% >/dev/null \
  || fail "a 60% gate failed on a 50% change"
"$PERFOPT" report --diff "$T/r.json" "$T/slow.json" --format json | python3 -m json.tool >/dev/null \
  || fail "diff --format json"
"$PERFOPT" report --diff "$T/r.json" "$T/slow.json" --fail-if faster:10% 2>"$T/err"
[ $? -eq 2 ] || fail "a bad gate is not a usage error"
grep -q "slower:PCT" "$T/err" || fail "a bad gate does not say what is allowed"

# merge: two ranks side by side
"$PERFOPT" merge "$T/r.json" "$T/slow.json" -o "$T/all.json" --html "$T/all.html" 2>"$T/err" \
  || fail "merge exited $? ($(cat "$T/err"))"
python3 - "$T/all.json" <<'PY' || fail "merged report"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["merge"]["ranks"] == 2 and len(d["ranks"]) == 2, d["merge"]
sim = [f for f in d["profile"]["functions"] if f["name"] == "simulate"][0]
assert sim["slowest_rank"] == 1 and len(sim["rank_self_seconds"]) == 2, sim
PY
grep -q 'id="ranks"' "$T/all.html" || fail "the merged HTML has no ranks section"
"$PERFOPT" report "$T/all.json" >/dev/null || fail "report of a merged report"
"$PERFOPT" merge 2>/dev/null; [ $? -eq 2 ] || fail "merge without reports is not a usage error"

# an older report without suggestions gets them computed
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); del r['suggestions']; json.dump(r, open(sys.argv[2],'w'))" \
  "$T/r.json" "$T/old.json"
"$PERFOPT" report "$T/old.json" | grep -q "cache-too-small" || fail "an old report was not re-advised"

# usage and write errors
"$PERFOPT" report "$T/r.json" --format yaml 2>/dev/null; [ $? -eq 2 ] || fail "--format yaml is not a usage error"
"$PERFOPT" report "$T/r.json" --top many 2>/dev/null; [ $? -eq 2 ] || fail "--top many is not a usage error"
"$PERFOPT" report "$T/r.json" --fail-if slower:1% 2>/dev/null; [ $? -eq 2 ] || fail "--fail-if without --diff"
for f in text trace prom folded; do
  "$PERFOPT" report "$T/r.json" --format $f >/dev/full 2>/dev/null && fail "--format $f to /dev/full succeeded"
done
echo "test_report_formats: ok"
