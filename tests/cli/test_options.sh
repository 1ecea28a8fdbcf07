#!/bin/sh
# Every numeric option of every subcommand goes through one parser: a negative, non-numeric, empty,
# hex, space-padded or out-of-range value, or a missing one, is a usage error (exit 2) that names
# the option and the value; a valid value is accepted (positive control for each option).
set -u
PERFOPT=${PERFOPT:-build/perfopt}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "test_options: FAIL: $*"; exit 1; }

REPORT=fuzz/seeds/fuzz_report/demo.json
CSV=examples/data/btc-usd-daily.csv

# bad CMD OPT VALUE [ARGS...]: exit 2 and a message naming OPT and VALUE
bad() {
  cmd=$1 opt=$2 val=$3
  shift 3
  timeout 20 "$PERFOPT" "$cmd" "$opt" "$val" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  [ $rc -eq 2 ] || fail "perfopt $cmd $opt '$val' exited $rc, not 2 ($(cat "$T/err"))"
  grep -q -- "$opt must be an integer from" "$T/err" || fail "perfopt $cmd $opt '$val': $(cat "$T/err")"
  grep -qF -- "not '$val'" "$T/err" || fail "perfopt $cmd $opt '$val' does not quote the value"
}
# good CMD OPT VALUE [ARGS...]: accepted (exit 0)
good() {
  cmd=$1 opt=$2 val=$3
  shift 3
  timeout 20 "$PERFOPT" "$cmd" "$opt" "$val" "$@" >"$T/out" 2>"$T/err" \
    || fail "perfopt $cmd $opt $val exited $?: $(cat "$T/err")"
}

for v in -1 abc "" 0x10 " 5" "5 " 1e3 99999999999999999999999 5abc; do
  bad report --top "$v" "$REPORT"
  bad run --top "$v" -- true
  bad sysinfo --window "$v"
  bad top --interval "$v"
  bad top --pid "$v"
  bad top --iterations "$v"
  bad plot --width "$v" "$CSV" -o "$T/x.svg"
  bad plot --height "$v" "$CSV" -o "$T/x.svg"
done
bad sysinfo --window 60001
bad top --interval 99
bad top --iterations 0
bad plot --width 119 "$CSV" -o "$T/x.svg"
bad report --top 1000001 "$REPORT"

good report --top 0 "$REPORT"
good report --top 3 "$REPORT"
good sysinfo --window 0
good top --interval 100 --iterations 1
good top --iterations 1
good top --pid $$ --iterations 1
good plot --width 120 "$CSV" -o "$T/x.svg"
good plot --height 60 "$CSV" -o "$T/x.svg"

# a missing value names the option
for c in "report $REPORT --top" "sysinfo --window" "top --interval" "plot $CSV -o $T/x.svg --width" \
  "plot $CSV --y"; do
  # shellcheck disable=SC2086
  "$PERFOPT" $c >/dev/null 2>"$T/err"
  [ $? -eq 2 ] || fail "perfopt $c (no value) must exit 2"
  grep -q 'needs a value' "$T/err" || fail "perfopt $c: $(cat "$T/err")"
done
echo "test_options: ok"
