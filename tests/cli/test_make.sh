#!/bin/sh
# make runs scripts/install-deps only for goals that build: `make -n clean`, `make format` and
# `make uninstall` never touch the dependencies; `make -n all` does (positive control).
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_make: FAIL: $*"; exit 1; }
for goal in clean uninstall print-lib-src; do
  make -n "$goal" BUILD="$tmp/b-$goal" >/dev/null 2>&1 || fail "make -n $goal failed"
  [ ! -e "$tmp/b-$goal/deps.mk" ] || fail "make -n $goal ran install-deps"
done
make -n all BUILD="$tmp/b-all" >/dev/null 2>&1 || fail "make -n all failed"
[ -s "$tmp/b-all/deps.mk" ] || fail "make -n all did not record the dependencies"
grep -q '^CJSON_LIBS := .*-lcjson' "$tmp/b-all/deps.mk" || fail "deps.mk lacks cJSON's flags"
echo "test_make: ok"
