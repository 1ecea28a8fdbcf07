#!/bin/sh
# `make bench-python` (run by `make bench`): bench/bench_python.py with each interpreter built
# into $BUILD/python; the PyTorch example's profiling overhead with Debian's python3 only (it
# has torch).
set -eu
BUILD=${BUILD:-build}
B=$(cd "$BUILD" && pwd)
SYSTEM_PYTHON=${SYSTEM_PYTHON:-/usr/bin/python3}
export MPLBACKEND=Agg
echo "# bench_python (system: $SYSTEM_PYTHON)"
PYTHONPATH="$B/python/system" "$SYSTEM_PYTHON" bench/bench_python.py --example "$@"
if [ -d "$B/python/path/perfopt" ] && command -v python3 >/dev/null 2>&1; then
  echo "# bench_python (PATH: $(command -v python3))"
  PYTHONPATH="$B/python/path" python3 bench/bench_python.py "$@"
fi
