#!/bin/sh
# The live dashboard in headless Chromium, driven over the DevTools protocol
# (tests/cli/lib/cdp_dashboard.py): a running command served by `perfopt run --serve`; the page
# loads with no console error, its script refreshes it, and the memory chart differs between two
# screenshots a refresh period apart (kept in $BUILD/test-dashboard-browser/). Skips (exit 0) when
# Chromium is missing: scripts/install-deps --browser installs it (make test does).
set -u
name=test_dashboard_browser
BUILD=${BUILD:-build}
PERFOPT=${PERFOPT:-$BUILD/perfopt}
. tests/cli/lib/serve_helpers.sh
fail() { echo "$name: FAIL: $*"; exit 1; }
CHROMIUM=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$CHROMIUM" ] || { echo "$name: SKIP: chromium is not installed (scripts/install-deps --browser)"; exit 0; }
command -v curl >/dev/null 2>&1 || { echo "$name: SKIP: curl is not installed"; exit 0; }
out="$BUILD/test-dashboard-browser"
rm -rf "$out"
mkdir -p "$out"
RUN=""
trap 'stop_tree "$RUN"' EXIT

port=$(free_port)
U="http://127.0.0.1:$port"
PERFOPT_MONITOR_INTERVAL_MS=200 "$PERFOPT" run -o "$out/live.json" --quiet --serve "127.0.0.1:$port" -- \
  "$BUILD/tools/live_workload" --seconds 120 >"$out/run.log" 2>&1 &
RUN=$!
wait_http "$U/" 20 || fail "the live endpoint did not start ($(cat "$out/run.log"))"
# the page refreshes every 5 s (the default): 7 s between the screenshots
python3 tests/cli/lib/cdp_dashboard.py "$CHROMIUM" "$U/" "$out" 7 >"$out/cdp.log" 2>&1 ||
  fail "$(cat "$out/cdp.log")"
echo "$name: ok (screenshots $out/dashboard_1.png, $out/dashboard_2.png)"
