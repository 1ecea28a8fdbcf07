#!/bin/sh
# perfopt plot: a real CSV (newest first, mixed timestamp units and date formats) becomes an SVG;
# bad cells are skipped and counted; missing files and columns are clear errors.
set -u
PERFOPT=${PERFOPT:-build/perfopt}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "test_plot: FAIL: $*"; exit 1; }

"$PERFOPT" plot examples/data/btcusdt-hourly.csv --x unix --y close -o "$T/btc.svg" 2>"$T/err" \
  || fail "btc plot exited non-zero: $(cat "$T/err")"
grep -q '<svg' "$T/btc.svg" || fail "btc.svg is not an SVG"
grep -q 'years since 2017-08-17' "$T/btc.svg" || fail "time axis label missing (unix s/ms mix)"
[ ! -s "$T/err" ] || fail "unexpected stderr: $(cat "$T/err")"

"$PERFOPT" plot examples/data/btcusdt-hourly.csv --x date --y high,low --method lttb \
  -o "$T/dates.svg" 2>"$T/err" || fail "date column plot failed: $(cat "$T/err")"
grep -q 'years since 2017-08-17' "$T/dates.svg" || fail "date formats not parsed"

for m in m4 minmax lttb minmaxlttb; do
  "$PERFOPT" plot examples/data/btc-usd-daily.csv --x Date --y Close --method $m -o "$T/$m.svg" \
    || fail "method $m failed"
done

# bad cells: skipped, counted, first bad line named, exit 0
printf 't,v\n1,1\n2,oops\n3,\n4,4\n5\n6,6\n' >"$T/bad.csv"
"$PERFOPT" plot "$T/bad.csv" --x t --y v --title same -o "$T/bad.svg" 2>"$T/err" || fail "bad cells must not fail"
grep -q 'skipped 3 of 6 rows' "$T/err" || fail "bad row count: $(cat "$T/err")"
grep -q 'line 3' "$T/err" || fail "first bad line not named: $(cat "$T/err")"
[ -s "$T/bad.svg" ] || fail "no SVG written for bad.csv"

# missing file / column: exit 1, named
"$PERFOPT" plot "$T/nope.csv" --y v -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "missing file must exit 1"
grep -q 'nope.csv' "$T/err" || fail "missing file not named: $(cat "$T/err")"
"$PERFOPT" plot "$T/bad.csv" --y price -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "missing column must exit 1"
grep -q "'price'" "$T/err" || fail "missing column not named: $(cat "$T/err")"

# usage errors exit 2; --help exits 0
"$PERFOPT" plot "$T/bad.csv" 2>/dev/null
[ $? -eq 2 ] || fail "missing -o must exit 2"
"$PERFOPT" plot "$T/bad.csv" --method fast -o "$T/x.svg" 2>/dev/null
[ $? -eq 2 ] || fail "unknown method must exit 2"
"$PERFOPT" plot --help | grep -q 'usage: perfopt plot' || fail "--help"

# descending x gives the same picture as ascending x
awk 'NR==1{print;next}{a[NR]=$0}END{for(i=NR;i>1;i--)print a[i]}' "$T/bad.csv" >"$T/rev.csv"
"$PERFOPT" plot "$T/rev.csv" --x t --y v --title same -o "$T/rev.svg" 2>/dev/null || fail "descending x failed"
cmp -s "$T/bad.svg" "$T/rev.svg" || fail "descending x draws differently"
echo "test_plot: ok"
