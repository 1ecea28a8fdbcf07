#!/bin/sh
# The Python package (python/, docs/python.md): its unittest suite with Debian's /usr/bin/python3
# (numpy, matplotlib and torch required: scripts/install-deps installs them) and, when it is
# another interpreter, with the python3 on PATH (optional modules skip there); and
# `pip install --no-build-isolation` of python/ into a target directory, offline.
# Sanitizer builds do not build the package (mk/python.mk): the test says so and passes.
set -u
BUILD=${BUILD:-build}
ROOT=$(pwd)
B=$(cd "$BUILD" && pwd)
SYSTEM_PYTHON=${SYSTEM_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_python: FAIL: $*"; exit 1; }

if [ -e "$B/python/.skipped" ]; then
  echo "test_python: skipped: $(cat "$B/python/.skipped")"
  exit 0
fi
[ -d "$B/python/system/perfopt" ] || fail "$B/python/system not built (make python)"

export PERFOPT_TEST_FAKE_NVML="$B/tests/fakes/libfake_nvml.so"
export MPLBACKEND=Agg MPLCONFIGDIR="$tmp/mpl" PYTHONDONTWRITEBYTECODE=1

run_suite() { # python build-dir required-modules label
  (cd python/tests && PYTHONPATH="$2" PERFOPT_PY_REQUIRE="$3" "$1" -m unittest 2>"$tmp/$4.log")
  rc=$?
  tail -n 3 "$tmp/$4.log" | sed "s/^/test_python: $4: /"
  [ $rc -eq 0 ] || { cat "$tmp/$4.log"; fail "unittest with $1"; }
}

run_suite "$SYSTEM_PYTHON" "$B/python/system" "numpy matplotlib torch" system
grep -q '^Ran [1-9][0-9]* tests' "$tmp/system.log" || fail "no tests ran"
# Positive control for PERFOPT_PY_REQUIRE: nothing was skipped with Debian's interpreter.
! grep -q 'skipped=' "$tmp/system.log" || fail "tests skipped with $SYSTEM_PYTHON: $(tail -n 1 "$tmp/system.log")"

path_py=$(command -v python3 || true)
if [ -n "$path_py" ] && [ -d "$B/python/path/perfopt" ]; then
  same=$("$path_py" -c 'import os, sys; print(os.path.realpath(sys.executable))')
  if [ "$same" != "$(realpath "$SYSTEM_PYTHON")" ]; then
    run_suite "$path_py" "$B/python/path" "" path
  fi
fi

# pip install from a copy of python/ (the source tree stays clean), offline, no dependencies.
mkdir -p "$tmp/src" && cp -r python "$tmp/src/python" && rm -rf "$tmp/src/python/build"
PERFOPT_BUILD="$B" PERFOPT_INCLUDE="$ROOT/include" "$SYSTEM_PYTHON" -m pip install -q \
  --no-build-isolation --no-index --no-deps --target "$tmp/site" "$tmp/src/python" \
  >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; fail "pip install --no-build-isolation"; }
(cd "$tmp" && PYTHONPATH="$tmp/site" "$SYSTEM_PYTHON" -c '
import perfopt, performance_optimizer, sys
assert perfopt.__file__.startswith(sys.argv[1]), perfopt.__file__
o = perfopt.PerformanceOptimizer({"BACKGROUND_MONITORING": False})
o.optimize_memory_usage()
assert "profile" in o.get_profiling_report()
o.cleanup()' "$tmp/site") || fail "the pip-installed package does not work"
echo "test_python: ok"
