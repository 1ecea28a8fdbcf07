#!/bin/sh
# The live endpoint from the command line: `perfopt serve` of a saved report (paths, methods,
# token, limits, usage errors, a clean stop on SIGTERM) and `perfopt run --serve` of a running
# command. curl is the client.
set -u
name=test_serve
BUILD=${BUILD:-build}
PERFOPT=${PERFOPT:-$BUILD/perfopt}
. tests/cli/lib/serve_helpers.sh
fail() { echo "$name: FAIL: $*"; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "$name: SKIP: curl is not installed"; exit 0; }
T=$(mktemp -d)
SRV=""
RUN=""
trap 'stop_pid "$SRV"; stop_tree "$RUN"; rm -rf "$T"' EXIT

"$BUILD/tools/gen_report_fixture" "$T/r.json" --seconds 600 --interval 1 --gpus 1 --nodes 200 \
  >/dev/null || fail "fixture generator failed"

# usage errors exit 2 before anything listens
"$PERFOPT" serve "$T/r.json" --listen 0.0.0.0:0 2>"$T/err"; [ $? -eq 2 ] ||
  fail "a non-loopback address without --allow-remote is not a usage error"
grep -q "allow" "$T/err" || fail "the refusal does not mention --allow-remote: $(cat "$T/err")"
"$PERFOPT" serve "$T/r.json" --listen nonsense 2>/dev/null; [ $? -eq 2 ] || fail "--listen nonsense accepted"
"$PERFOPT" serve "$T/r.json" --listen 127.0.0.1:99999 2>/dev/null; [ $? -eq 2 ] || fail "port 99999 accepted"
"$PERFOPT" serve 2>/dev/null; [ $? -eq 2 ] || fail "serve without a report is not a usage error"
"$PERFOPT" serve "$T/missing.json" --listen 127.0.0.1:0 2>/dev/null; [ $? -eq 1 ] || fail "a missing report is not exit 1"

# serve a saved report on a free port (port 0: the command says which)
"$PERFOPT" serve "$T/r.json" --listen 127.0.0.1:0 >"$T/serve.out" 2>"$T/serve.err" &
SRV=$!
n=50
while ! grep -q 'serving on' "$T/serve.out" && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$T/serve.out")
[ -n "$port" ] || fail "serve did not say where it listens: $(cat "$T/serve.out" "$T/serve.err")"
U="http://127.0.0.1:$port"
curl -s --max-time 5 "$U/metrics" >"$T/metrics" || fail "GET /metrics failed"
grep -q '^# TYPE process_resident_memory_bytes gauge$' "$T/metrics" || fail "no RSS family in /metrics"
grep -q '^perfopt_function_seconds_total{function="' "$T/metrics" || fail "no function series"
curl -s --max-time 5 "$U/report.json" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["perfopt_version"]' ||
  fail "/report.json is not the report"
curl -s --max-time 5 "$U/" >"$T/page.html" || fail "GET / failed"
grep -q 'id="po-live"' "$T/page.html" || fail "the dashboard has no live bar"
grep -q '<script src\|<link \|url(http' "$T/page.html" && fail "the dashboard references external resources"
[ "$(status_of -I "$U/metrics")" = 200 ] || fail "HEAD /metrics is not 200"
[ "$(status_of "$U/nothing")" = 404 ] || fail "an unknown path is not 404"
[ "$(status_of --path-as-is "$U/../../etc/passwd")" = 404 ] || fail "a path outside is not 404"
[ "$(status_of -X POST -d x "$U/metrics")" = 405 ] || fail "POST is not 405"
[ "$(status_of -X DELETE "$U/metrics")" = 405 ] || fail "DELETE is not 405"
big=$(head -c 40000 /dev/zero | tr '\0' a)
[ "$(status_of -H "X-Big: $big" "$U/metrics")" = 431 ] || fail "a 40 kB header is not 431"
[ "$(status_of "$U/metrics")" = 200 ] || fail "the server stopped serving after bad input"
kill -TERM "$SRV"
n=50
while kill -0 "$SRV" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
kill -0 "$SRV" 2>/dev/null && fail "serve did not stop on SIGTERM"
wait "$SRV"; rc=$?
SRV=""
[ $rc -eq 0 ] || fail "serve exited $rc on SIGTERM"

# a token: PERFOPT_TOKEN makes every request need it
port=$(free_port)
PERFOPT_TOKEN=t0ken "$PERFOPT" serve "$T/r.json" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
SRV=$!
U="http://127.0.0.1:$port"
wait_http "$U/metrics" || fail "serve with a token did not come up"
[ "$(status_of "$U/metrics")" = 401 ] || fail "no token is not 401"
[ "$(status_of -H 'Authorization: Bearer wrong' "$U/metrics")" = 401 ] || fail "a wrong token is not 401"
[ "$(status_of -H 'Authorization: Bearer t0ken' "$U/metrics")" = 200 ] || fail "the right token is not 200"
[ "$(status_of -u "any:t0ken" "$U/")" = 200 ] || fail "the token as a Basic password is not 200"
stop_pid "$SRV"
SRV=""

# run --serve: the command serves its live state while it runs
"$PERFOPT" run --serve 0.0.0.0:1 -- true 2>"$T/err"; [ $? -eq 2 ] ||
  fail "run --serve 0.0.0.0 without --allow-remote is not a usage error"
port=$(free_port)
U="http://127.0.0.1:$port"
PERFOPT_MONITOR_INTERVAL_MS=100 "$PERFOPT" run -o "$T/live.json" --quiet --serve "127.0.0.1:$port" -- \
  "$BUILD/tools/live_workload" --seconds 30 >"$T/run.out" 2>"$T/run.err" &
RUN=$!
wait_http "$U/metrics" 20 || fail "run --serve: nothing listens on $port ($(cat "$T/run.err"))"
# the endpoint is up from the library's load: the command's first zones follow (20 s at most)
n=200
while :; do
  curl -s --max-time 5 "$U/metrics" >"$T/live1" || fail "run --serve: GET /metrics failed"
  grep -q '^perfopt_function_calls_total{function="train_step"} [0-9]' "$T/live1" && break
  n=$((n - 1))
  [ $n -gt 0 ] || fail "run --serve: the running command's zones are not served"
  sleep 0.1
done
grep -q '^process_resident_memory_bytes [0-9]' "$T/live1" || fail "run --serve: no RSS sample"
calls1=$(sed -n 's/^perfopt_function_calls_total{function="train_step"} //p' "$T/live1")
n=100
calls2=$calls1
while [ "$calls2" = "$calls1" ] && [ $n -gt 0 ]; do
  sleep 0.1
  calls2=$(curl -s --max-time 5 "$U/metrics" | sed -n 's/^perfopt_function_calls_total{function="train_step"} //p')
  n=$((n - 1))
done
[ "$calls2" != "$calls1" ] || fail "run --serve: the counters did not move ($calls1)"
grep -q "live endpoint at http://127.0.0.1:$port/" "$T/run.err" || fail "run did not say where it serves"
# the command ends (perfopt run then writes its report and exits)
stop_pid "$(pgrep -P "$RUN" | head -1)"
n=100
while kill -0 "$RUN" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
stop_pid "$RUN"
RUN=""
echo "$name: ok"
