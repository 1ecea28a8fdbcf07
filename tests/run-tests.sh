#!/bin/sh
# Runs each cmocka test binary given as an argument; prints one summary line; fails on any failure.
# Each binary gets PERFOPT_TEST_TIMEOUT seconds (default 600): a hang fails instead of blocking.
limit=${PERFOPT_TEST_TIMEOUT:-600}
pass=0
fail=0
failed=""
for t in "$@"; do
  timeout -k 10 "$limit" "$t"
  rc=$?
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    failed="$failed $(basename "$t")"
    [ $rc -ne 124 ] || echo "$(basename "$t"): killed after $limit s"
  fi
done
echo "unit test binaries: $pass passed, $fail failed"
[ -z "$failed" ] || { echo "FAILED:$failed"; exit 1; }
