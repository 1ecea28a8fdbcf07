#!/bin/sh
# perfopt run / report / config end to end, and `make install` into a staging directory.
set -u
fail() { echo "test_core: FAIL: $*"; exit 1; }
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# run: a program linked with libperfopt; its in-process profile is merged into the run's report
"$PERFOPT" run -o "$T/r.json" -- "$BUILD/examples/btc_backtest" examples/data/btcusdt-hourly.csv "$T" \
  >"$T/run.out" 2>"$T/run.err" || fail "perfopt run exited $? ($(tail -3 "$T/run.err"))"
grep -q "simulate" "$T/run.err" || fail "run's summary lists no top function"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert any(f['name']=='simulate' for f in r['profile']['functions'])" "$T/r.json" \
  || fail "run's report has no 'simulate' function"

# run: a command that does not exist is a clear error, not a crash
"$PERFOPT" run -o "$T/x.json" -- /nonexistent/cmd 2>"$T/err" && fail "run of a missing command succeeded"
grep -q "nonexistent" "$T/err" || fail "run's error does not name the command"
# run: a command not linked with perfopt still gets its report (its process tree)
"$PERFOPT" run -q -o "$T/y.json" -- true || fail "run of a plain command failed"
[ -s "$T/y.json" ] || fail "run of a plain command wrote no report"

# report: text, sorted; JSON re-write; bad input
"$PERFOPT" report "$T/r.json" --sort self --top 3 >"$T/rep.out" || fail "report exited $?"
grep -q "sorted by self time" "$T/rep.out" || fail "report did not sort by self time"
"$PERFOPT" report "$T/r.json" --json "$T/r2.json" || fail "report --json failed"
python3 -m json.tool "$T/r2.json" >/dev/null || fail "report --json wrote invalid JSON"
echo '{"not": "a report"}' >"$T/bad.json"
"$PERFOPT" report "$T/bad.json" 2>"$T/err" && fail "report accepted a non-report"
grep -q "not a perfopt report" "$T/err" || fail "report's error is unclear: $(cat "$T/err")"
printf '{"perfopt_version": "0.1.0", "profile": ' >"$T/trunc.json"
"$PERFOPT" report "$T/trunc.json" 2>"$T/err" && fail "report accepted truncated JSON"
grep -q "trunc.json" "$T/err" || fail "report's error does not name the file"
"$PERFOPT" report /nonexistent.json 2>"$T/err" && fail "report accepted a missing file"
"$PERFOPT" report 2>/dev/null; [ $? -eq 2 ] || fail "report without a file is not a usage error"

# config: keys, the environment, a bad file
"$PERFOPT" config --keys | grep -q "^ENABLE_PROFILING" || fail "config --keys lacks ENABLE_PROFILING"
PERFOPT_CPU_THRESHOLD=0.7 "$PERFOPT" config | grep -q '"CPU_THRESHOLD":[[:space:]]*0.7' || fail "env override not shown"
PERFOPT_CPU_THRESHOLD=7 "$PERFOPT" config 2>"$T/err" && fail "config accepted CPU_THRESHOLD=7"
grep -q "CPU_THRESHOLD" "$T/err" || fail "config error does not name the key"
echo '{"CACHE_POLICY": "fifo"}' >"$T/cfg.json"
"$PERFOPT" config --check "$T/cfg.json" 2>"$T/err" && fail "config --check accepted a bad policy"
grep -q "sieve" "$T/err" || fail "config --check does not say what is allowed"

# install: header, both libraries, pkg-config file, the command
make -s BUILD="$BUILD" install PREFIX=/usr DESTDIR="$T/stage" >/dev/null 2>&1 || fail "make install failed"
for f in usr/include/perfopt.h usr/lib/libperfopt.a usr/lib/libperfopt.so.0 usr/lib/pkgconfig/perfopt.pc usr/bin/perfopt; do
  [ -e "$T/stage/$f" ] || fail "make install did not install $f"
done
grep -q "^Libs: -L\${libdir} -lperfopt" "$T/stage/usr/lib/pkgconfig/perfopt.pc" || fail "perfopt.pc has no Libs line"
echo "test_core: ok"
