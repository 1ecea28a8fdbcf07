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
# calendar data reads as dates (2017-08 .. 2021-06, whatever mix of s and ms the column holds)
grep -q '>date (UTC)<' "$T/btc.svg" || fail "time axis label missing"
grep -q '>2018-01<' "$T/btc.svg" && grep -q '>2021-01<' "$T/btc.svg" \
  || fail "date ticks missing (unix s/ms mix)"
grep -q 'since' "$T/btc.svg" && fail "calendar axis still reads 'since'"
[ ! -s "$T/err" ] || fail "unexpected stderr: $(cat "$T/err")"

"$PERFOPT" plot examples/data/btcusdt-hourly.csv --x date --y high,low --method lttb \
  -o "$T/dates.svg" 2>"$T/err" || fail "date column plot failed: $(cat "$T/err")"
grep -q '>2019-01<' "$T/dates.svg" || fail "date formats not parsed"

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

# ---- inputs that used to hang or draw an empty chart (every run under a timeout) ----------
# plot_t ARGS...: perfopt plot with a watchdog; a hang is a failure of its own.
plot_t() {
  timeout 30 "$PERFOPT" plot "$@"
  rc=$?
  [ $rc -ne 124 ] || fail "perfopt plot $* hung (killed after 30 s)"
  return $rc
}
# x near +-1e308 (its span overflows) and x differing by denormals, with more rows than 2 x width
python3 - "$T" <<'PY'
import sys
t = sys.argv[1]
with open(t + "/huge.csv", "w") as f:
    f.write("x,y\n")
    for i in range(1000):
        f.write("%r,%d\n" % ((1.7e308 if i % 2 else -1.7e308) * (0.5 + i / 2000), i))
with open(t + "/tiny.csv", "w") as f:
    f.write("x,y\n")
    for i in range(1000):
        f.write("%r,%d\n" % (5e-324 * (i % 3), i))
with open(t + "/tiny2.csv", "w") as f:
    f.write("x,y\n")
    for i in range(1000):
        f.write("%r,%d\n" % (1e-310 + 5e-324 * i, i))
PY
for f in huge tiny tiny2; do
  plot_t "$T/$f.csv" --x x --y y --width 120 -o "$T/$f.svg" 2>"$T/err" || fail "$f.csv: exit $?: $(cat "$T/err")"
  grep -q '<svg' "$T/$f.svg" || fail "$f.svg is not an SVG"
  ! grep -Eqi '="-?(nan|inf)' "$T/$f.svg" || fail "$f.svg has NaN coordinates"
done
# -inf in a time column: an error naming the column, not an empty chart
printf 'time,v\n-inf,1\n1600000000,2\n1600000060,3\n' >"$T/ninf.csv"
plot_t "$T/ninf.csv" --x time --y v -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "-inf in a time column must exit 1"
grep -q "time column 'time' holds -inf" "$T/err" || fail "-inf time message: $(cat "$T/err")"
[ ! -e "$T/x.svg" ] || fail "an SVG was written for a bad time column"
# a non-finite x elsewhere is skipped and counted; the axis starts at the finite minimum
printf 'x,v\n-inf,100\n1,1\n2,2\n3,3\n' >"$T/someinf.csv"
plot_t "$T/someinf.csv" --x x --y v -o "$T/someinf.svg" 2>"$T/err" || fail "one -inf x must not fail"
grep -q "skipped 1 rows whose x ('x') is infinite" "$T/err" || fail "non-finite x not counted: $(cat "$T/err")"
! grep -Eqi '="-?(nan|inf)' "$T/someinf.svg" || fail "a non-finite x poisoned the axis"
# all x infinite: an error
printf 'x,v\ninf,1\n-inf,2\nnan,3\n' >"$T/allinf.csv"
plot_t "$T/allinf.csv" --x x --y v -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "all-infinite x must exit 1"
grep -q "no row has a finite x" "$T/err" || fail "all-infinite x message: $(cat "$T/err")"
# --y "" and other empty lists are usage errors
for y in "" "," "close," ",close" "open,,close"; do
  plot_t examples/data/btc-usd-daily.csv --y "$y" -o "$T/x.svg" 2>"$T/err"
  [ $? -eq 2 ] || fail "--y '$y' must exit 2"
  grep -q -- "--y needs column names" "$T/err" || fail "--y '$y' message: $(cat "$T/err")"
done

# ---- the default y column is the first numeric one ------------------------------------------
plot_t examples/data/btcusdt-hourly.csv -o "$T/default.svg" 2>"$T/err" || fail "default y failed: $(cat "$T/err")"
grep -q '<title>open</title>' "$T/default.svg" || fail "default y is not 'open' (the first numeric column)"
plot_t /work/shared/data/btcusdt-hourly.csv -o "$T/shared.svg" 2>/dev/null || [ ! -e /work/shared/data/btcusdt-hourly.csv ] \
  || fail "the shared btcusdt-hourly.csv does not plot with the default y"
printf 'name,label\na,b\nc,d\n' >"$T/text.csv"
plot_t "$T/text.csv" -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "a CSV without numbers must exit 1"
grep -q 'no numeric column' "$T/err" || fail "no numeric column message: $(cat "$T/err")"

# ---- -o - writes the SVG to stdout; a write error is an error -------------------------------
plot_t "$T/bad.csv" --x t --y v --title same -o - >"$T/stdout.svg" 2>/dev/null || fail "-o - failed"
cmp -s "$T/stdout.svg" "$T/bad.svg" || fail "-o - differs from the file output"
[ ! -e ./- ] || fail "-o - created a file named -"
plot_t "$T/bad.csv" --x t --y v -o - >/dev/full 2>"$T/err"
[ $? -eq 1 ] || fail "-o - to /dev/full must exit 1"
grep -q 'standard output' "$T/err" || fail "/dev/full message: $(cat "$T/err")"

# ---- messages: directories, over-long headers, escaped names and cells ----------------------
mkdir "$T/dir.csv"
plot_t "$T/dir.csv" --y v -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "a directory must exit 1"
grep -q 'is a directory' "$T/err" || fail "directory message: $(cat "$T/err")"
python3 -c "import sys; open(sys.argv[1],'w').write(','.join('c%d' % i for i in range(200000)) + '\n1,2\n')" "$T/wide.csv"
plot_t "$T/wide.csv" --y c1 -o "$T/x.svg" 2>"$T/err"
[ $? -eq 1 ] || fail "an over-long header must exit 1"
grep -q 'header row is longer than' "$T/err" || fail "over-long header message: $(cat "$T/err")"
! grep -q 'empty file' "$T/err" || fail "an over-long header is called empty"
printf 'x,\033]0;pwned\007v\n1,\033[31mred\n2,2\n' >"$T/esc.csv"
plot_t "$T/esc.csv" --y nope -o "$T/x.svg" 2>"$T/err"
grep -q 'nope' "$T/err" || fail "unknown column message missing: $(cat "$T/err")"
! grep -q "$(printf '\033')" "$T/err" || fail "a column name's escape sequence reached the terminal"
grep -q '\\x1b\]0;pwned\\x07v' "$T/err" || fail "the column name is not shown escaped: $(cat "$T/err")"
plot_t "$T/esc.csv" --x x --y 1 -o "$T/x.svg" 2>"$T/err" || fail "esc.csv plot failed: $(cat "$T/err")"
! grep -q "$(printf '\033')" "$T/err" || fail "a cell's escape sequence reached the terminal"
grep -q '\\x1b\[31mred' "$T/err" || fail "the bad cell is not shown escaped: $(cat "$T/err")"
echo "test_plot: ok"
