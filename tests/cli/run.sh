#!/bin/sh
# Runs every tests/cli/test_*.sh with PERFOPT pointing at the built command.
BUILD=${BUILD:-build}
PERFOPT=$(cd "$BUILD" && pwd)/perfopt
export PERFOPT BUILD
pass=0
fail=0
failed=""
for t in tests/cli/test_*.sh; do
  [ -e "$t" ] || continue
  # A hung command fails its test after PERFOPT_TEST_TIMEOUT seconds (default 600).
  if timeout -k 10 "${PERFOPT_TEST_TIMEOUT:-600}" sh "$t"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    failed="$failed $(basename "$t")"
  fi
done
echo "cli tests: $pass passed, $fail failed"
[ -z "$failed" ] || { echo "FAILED:$failed"; exit 1; }
