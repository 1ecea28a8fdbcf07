#!/bin/sh
# Runs each cmocka test binary given as an argument; prints one summary line; fails on any failure.
pass=0
fail=0
failed=""
for t in "$@"; do
  if "$t"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    failed="$failed $(basename "$t")"
  fi
done
echo "unit test binaries: $pass passed, $fail failed"
[ -z "$failed" ] || { echo "FAILED:$failed"; exit 1; }
