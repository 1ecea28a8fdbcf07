#!/bin/sh
# Where the output goes and what reaches the terminal: every subcommand reports a write error on
# standard output (> /dev/full) with a non-zero exit; "-" as an output path is standard output;
# names and cells from files are printed with their control characters escaped; directories,
# unknown keys and misspelled PERFOPT_* variables get messages that say so.
set -u
PERFOPT=${PERFOPT:-build/perfopt}
PERFOPT=$(cd "$(dirname "$PERFOPT")" && pwd)/$(basename "$PERFOPT")
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "test_output: FAIL: $*"; exit 1; }
ESC=$(printf '\033')
REPORT=$(pwd)/fuzz/seeds/fuzz_report/demo.json

# ---- > /dev/full: every subcommand fails, naming standard output ---------------------------
head -300 examples/data/btcusdt-hourly.csv >"$T/small.csv"
# full NAME CMD...: CMD with stdout on /dev/full must exit non-zero and say why
full() {
  name=$1
  shift
  timeout 60 "$@" >/dev/full 2>"$T/err"
  rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "$name > /dev/full exited $rc"
  grep -q 'cannot write to standard output' "$T/err" || fail "$name > /dev/full: $(cat "$T/err")"
}
full "--help" "$PERFOPT" --help
full "--version" "$PERFOPT" --version
full "report" "$PERFOPT" report "$REPORT"
full "report --json -" "$PERFOPT" report "$REPORT" --json -
full "report --html -" "$PERFOPT" report "$REPORT" --html -
full "config" "$PERFOPT" config
full "config --keys" "$PERFOPT" config --keys
full "sysinfo" "$PERFOPT" sysinfo --window 0
full "sysinfo --json" "$PERFOPT" sysinfo --json --window 0
full "top" "$PERFOPT" top --iterations 1 --interval 100
full "plot -o -" "$PERFOPT" plot "$T/small.csv" -o -
# (perfopt run writes nothing to stdout: it is the command's, passed through untouched)
# positive control: the same commands succeed on a working stdout
"$PERFOPT" report "$REPORT" >/dev/null || fail "report to /dev/null failed"
"$PERFOPT" run -o "$T/run.json" -- "$BUILD/examples/btc_backtest" "$T/small.csv" "$T" >/dev/null 2>&1 \
  || fail "run to /dev/null failed"

# ---- "-" is standard output, never a file named "-" ------------------------------------------
cd "$T" || fail "cd"
"$PERFOPT" report "$REPORT" --html - >"$T/stdout.html" || fail "report --html - failed"
grep -q '<html' "$T/stdout.html" || fail "report --html - wrote no HTML to stdout"
"$PERFOPT" report "$REPORT" --json - >"$T/stdout.json" || fail "report --json - failed"
python3 -c "import json,sys; assert json.load(open(sys.argv[1]))['perfopt_version']" "$T/stdout.json" \
  || fail "report --json - wrote no report JSON to stdout"
"$PERFOPT" report "$REPORT" --json - --html - >/dev/null 2>&1
[ $? -eq 2 ] || fail "--json - --html - together must be a usage error"
"$PERFOPT" run -o - -- true >/dev/null 2>&1
[ $? -eq 2 ] || fail "run -o - must be a usage error"
[ ! -e "$T/-" ] || fail "a file named - was created"
cd "$OLDPWD" || fail "cd back"

# ---- names and cells from files reach the terminal escaped ---------------------------------
python3 - "$REPORT" "$T/evil.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["profile"]["functions"][0]["name"] = "\x1b]0;pwned\x07load\x1b[2J\u009b31m"
json.dump(r, open(sys.argv[2], "w"))
PY
"$PERFOPT" report "$T/evil.json" --top 0 >"$T/out" || fail "report of evil.json failed"
! grep -q "$ESC" "$T/out" || fail "report text printed a raw escape sequence"
! grep -q "$(printf '\302\233')" "$T/out" || fail "report text printed a raw C1 CSI"
grep -qF '\x1b]0;pwned\x07load\x1b[2J\u009b31m' "$T/out" || fail "function name not shown escaped: $(grep load "$T/out")"
grep -q 'sweep_bucket' "$T/out" || fail "report text lost the other rows"
cp -r tests/fakes/proc/container "$T/root"
sed -i "s/Fake CPU/Fake$ESC[31mCPU/" "$T/root/proc/cpuinfo"
PERFOPT_PROC_ROOT="$T/root" "$PERFOPT" sysinfo --window 0 >"$T/out" 2>&1 || fail "sysinfo on the fake root failed"
grep -qF 'Fake\x1b[31mCPU' "$T/out" || fail "sysinfo does not show the CPU model escaped: $(grep CPU "$T/out")"
! grep -q "$ESC" "$T/out" || fail "sysinfo printed a raw escape sequence"
printf '{"CACHE_POLICY": "\033[31mfifo"}' >"$T/evil-cfg.json"
"$PERFOPT" config --check "$T/evil-cfg.json" 2>"$T/err"
[ $? -eq 1 ] || fail "config --check of a bad policy must exit 1"
grep -qF "'\x1b[31mfifo'" "$T/err" || fail "config error does not show the value escaped: $(cat "$T/err")"

# ---- an exported PERFOPT_OUT is for the programs perfopt runs, never overwritten by perfopt ----
cp "$REPORT" "$T/mine.json"
PERFOPT_OUT="$T/mine.json" "$PERFOPT" report "$T/mine.json" --top 1 >/dev/null || fail "report with PERFOPT_OUT failed"
cmp -s "$REPORT" "$T/mine.json" || fail "perfopt overwrote the report named by PERFOPT_OUT"
PERFOPT_OUT="$T/own.json" "$PERFOPT" --version >/dev/null || fail "--version failed"
[ ! -e "$T/own.json" ] || fail "perfopt wrote its own report to PERFOPT_OUT"

# ---- directories as input ----------------------------------------------------------------
mkdir "$T/d.json"
"$PERFOPT" report "$T/d.json" 2>"$T/err"
[ $? -eq 1 ] || fail "report of a directory must exit 1"
grep -q 'is a directory' "$T/err" || fail "report of a directory: $(cat "$T/err")"
"$PERFOPT" config --check "$T/d.json" 2>"$T/err"
[ $? -eq 1 ] || fail "config --check of a directory must exit 1"
grep -q 'is a directory' "$T/err" || fail "config --check of a directory: $(cat "$T/err")"
PERFOPT_CONFIG="$T/d.json" "$PERFOPT" sysinfo --window 0 >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "PERFOPT_CONFIG=directory must exit 1"
grep -q 'is a directory' "$T/err" || fail "PERFOPT_CONFIG=directory: $(cat "$T/err")"

# ---- misspellings: a warning on stderr naming the closest key ------------------------------
PERFOPT_CPU_TRESHOLD=0.5 "$PERFOPT" config >"$T/out" 2>"$T/err" || fail "a misspelled variable must not fail"
grep -q 'warning: unknown environment variable PERFOPT_CPU_TRESHOLD ignored (closest: PERFOPT_CPU_THRESHOLD)' "$T/err" \
  || fail "no warning for PERFOPT_CPU_TRESHOLD: $(cat "$T/err")"
grep -q '"CPU_THRESHOLD":[[:space:]]*0.8' "$T/out" || fail "the misspelled variable changed the configuration"
PERFOPT_OUT="$T/out.json" PERFOPT_HEAP_MODE=exact "$PERFOPT" config >/dev/null 2>"$T/err" || fail "config with PERFOPT_OUT failed"
[ ! -s "$T/err" ] || fail "a variable perfopt reads was warned about: $(cat "$T/err")"
printf '{"CPU_TRESHOLD": 0.5, "CACHE_POLICY": "lru"}' >"$T/typo.json"
PERFOPT_CONFIG="$T/typo.json" "$PERFOPT" config >"$T/out" 2>"$T/err" || fail "an unknown key in PERFOPT_CONFIG must not fail"
grep -q "typo.json: unknown configuration key 'CPU_TRESHOLD' ignored (closest: CPU_THRESHOLD)" "$T/err" \
  || fail "no warning for the unknown key: $(cat "$T/err")"
grep -q '"CACHE_POLICY":[[:space:]]*"lru"' "$T/out" || fail "the file's other keys were not applied"
"$PERFOPT" config --check "$T/typo.json" >/dev/null 2>"$T/err"
[ $? -eq 1 ] || fail "config --check must fail on an unknown key"
grep -q 'closest: CPU_THRESHOLD' "$T/err" || fail "config --check does not name the closest key"
printf '{"CPU_THRESHOLD": 0.5}' >"$T/ok.json"
"$PERFOPT" config --check "$T/ok.json" >/dev/null 2>"$T/err" || fail "config --check of a good file failed: $(cat "$T/err")"
PERFOPT_CPU_THRESHOLD=0x1 "$PERFOPT" config 2>"$T/err"
[ $? -eq 1 ] || fail "a hex value must be rejected"
grep -q "PERFOPT_CPU_THRESHOLD: invalid value '0x1': expected a number from 0 to 1" "$T/err" \
  || fail "bad env value message: $(cat "$T/err")"
echo "test_output: ok"
