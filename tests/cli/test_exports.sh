#!/bin/sh
# The shipped libraries hold no test code: no allocation-failure injection (po__fault_*) and no
# test hook (po__*test*, "test" as a word of the name) is exported by libperfopt.so, nor defined
# in it or in libperfopt.a at all. Positive control: the same pattern finds those symbols in the
# test build (libperfopt-test.a), and the public API is exported.
set -u
BUILD=${BUILD:-build}
fail() { echo "test_exports: FAIL: $*"; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "test_exports: nm not installed: skipped"; exit 0; }
SO=$BUILD/libperfopt.so
A=$BUILD/libperfopt.a
TEST_A=$BUILD/libperfopt-test.a
[ -e "$SO" ] && [ -e "$A" ] && [ -e "$TEST_A" ] || fail "build $SO, $A and $TEST_A first"
PATTERN=' po__(fault_|([a-z0-9]+_)*test(_|$))'

nm -D --defined-only "$SO" >/tmp/exports.$$ || fail "nm -D $SO"
grep -q ' T po_report_create$' /tmp/exports.$$ || fail "the public API is not exported (nm output?)"
if grep -E "$PATTERN" /tmp/exports.$$; then rm -f /tmp/exports.$$; fail "test symbols exported"; fi
for lib in "$SO" "$A"; do
  nm --defined-only "$lib" 2>/dev/null >/tmp/exports.$$
  if grep -E "$PATTERN" /tmp/exports.$$; then rm -f /tmp/exports.$$; fail "test symbols in $lib"; fi
done
nm --defined-only "$TEST_A" >/tmp/exports.$$ || fail "nm $TEST_A"
for sym in po__fault_fail_at po__test_malloc po__memory_test_set_available; do
  grep -E "$PATTERN" /tmp/exports.$$ | grep -q " $sym\$" || fail "control: $sym not found in $TEST_A"
done
grep -E "$PATTERN" /tmp/exports.$$ | grep -q ' po__sampler_latest$' && fail "control: pattern too wide"
rm -f /tmp/exports.$$
echo "test_exports: ok"
