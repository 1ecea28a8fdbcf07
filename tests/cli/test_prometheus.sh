#!/bin/sh
# The scale-out path with the real tools: a Prometheus (Debian's) on loopback scrapes a running
# command's endpoint (`perfopt run --serve`, with a bearer token) and a Pushgateway that a short job
# pushed to (`perfopt run --push`); both perfopt series are read back through Prometheus's HTTP
# query API. Also checks the shipped examples/prometheus.yml with promtool. One Prometheus start
# for everything (it takes seconds). Skips (exit 0) when prometheus or the Pushgateway is missing:
# scripts/install-deps --server installs them (make test does when they are missing).
set -u
name=test_prometheus
BUILD=${BUILD:-build}
PERFOPT=${PERFOPT:-$BUILD/perfopt}
. tests/cli/lib/serve_helpers.sh
fail() {
  echo "$name: FAIL: $*"
  [ -f "$T/prometheus.log" ] && tail -5 "$T/prometheus.log"
  exit 1
}
for tool in prometheus prometheus-pushgateway curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$name: SKIP: $tool is not installed (scripts/install-deps --server)"; exit 0; }
done
T=$(mktemp -d)
PROM=""
GW=""
RUN=""
trap 'stop_pid "$PROM"; stop_pid "$GW"; stop_tree "$RUN"; rm -rf "$T"' EXIT

# the shipped sample configuration is valid
if command -v promtool >/dev/null 2>&1; then
  echo secret >"$T/token"
  sed "s|/etc/prometheus/perfopt.token|$T/token|" examples/prometheus.yml >"$T/example.yml"
  promtool check config "$T/example.yml" >"$T/promtool.log" 2>&1 ||
    fail "examples/prometheus.yml: $(cat "$T/promtool.log")"
fi

p_live=$(free_port)
p_gw=$(free_port)
p_prom=$(free_port)

# a Pushgateway, and a short job that pushes its final metrics there and ends
prometheus-pushgateway --web.listen-address="127.0.0.1:$p_gw" --log.level=warn >"$T/gw.log" 2>&1 &
GW=$!
wait_http "http://127.0.0.1:$p_gw/metrics" 20 || fail "the Pushgateway did not start ($(cat "$T/gw.log"))"
"$PERFOPT" run -o "$T/short.json" --quiet --push "http://127.0.0.1:$p_gw" --push-job shortjob \
  --push-instance node-a -- "$BUILD/tools/live_workload" --seconds 0.3 >"$T/short.out" 2>&1 ||
  fail "the short job's push failed: $(cat "$T/short.out")"
grep -q "metrics pushed" "$T/short.out" || fail "run --push did not say it pushed"

# a long job serving its live state, with a token
PERFOPT_TOKEN=s3cret PERFOPT_MONITOR_INTERVAL_MS=200 "$PERFOPT" run -o "$T/live.json" --quiet \
  --serve "127.0.0.1:$p_live" -- "$BUILD/tools/live_workload" --seconds 120 >"$T/live.out" 2>&1 &
RUN=$!
wait_http "http://127.0.0.1:$p_live/metrics" 20 || fail "the live endpoint did not start ($(cat "$T/live.out"))"
[ "$(status_of "http://127.0.0.1:$p_live/metrics")" = 401 ] || fail "the live endpoint served without its token"

cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: perfopt
    authorization:
      credentials: s3cret
    static_configs:
      - targets: ['127.0.0.1:$p_live']
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$p_gw']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/data" \
  --web.listen-address="127.0.0.1:$p_prom" --log.level=warn >"$T/prometheus.log" 2>&1 &
PROM=$!
wait_http "http://127.0.0.1:$p_prom/-/ready" 60 || fail "Prometheus did not start"

# Reads one value of a PromQL query back (empty until Prometheus has it), for at most 60 s.
query_value() {
  n=600
  while [ $n -gt 0 ]; do
    v=$(curl -s --max-time 2 -G "http://127.0.0.1:$p_prom/api/v1/query" --data-urlencode "query=$1" |
      python3 -c 'import json,sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")')
    [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.1
    n=$((n - 1))
  done
  return 1
}
rss=$(query_value 'process_resident_memory_bytes{job="perfopt"}') ||
  fail "Prometheus has no process_resident_memory_bytes from the live endpoint"
python3 -c "import sys; sys.exit(0 if float('$rss') > 1e6 else 1)" || fail "implausible RSS $rss"
calls=$(query_value 'perfopt_function_calls_total{job="perfopt",function="train_step"}') ||
  fail "Prometheus has no perfopt_function_calls_total from the live endpoint"
# what the autopilot adds: the grade in force (a state set) and the forecast's time to the limit
grade=$(query_value 'sum(perfopt_memory_autopilot_grade{job="perfopt"})') ||
  fail "Prometheus has no perfopt_memory_autopilot_grade from the live endpoint"
[ "$grade" = 1 ] || fail "the autopilot grade state set sums to $grade, not 1"
query_value 'perfopt_memory_forecast_slope_bytes_per_second{job="perfopt"}' >/dev/null ||
  fail "Prometheus has no perfopt_memory_forecast_slope_bytes_per_second from the live endpoint"
pushed=$(query_value 'perfopt_function_calls_total{job="shortjob",instance="node-a",function="train_step"}') ||
  fail "Prometheus has no pushed series of the short job (through the Pushgateway)"
[ "$(curl -s -G "http://127.0.0.1:$p_prom/api/v1/query" --data-urlencode 'query=up{job="perfopt"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')" = 1 ] ||
  fail "the perfopt target is not up"
echo "$name: ok (live RSS $rss bytes, train_step calls $calls live, $pushed pushed)"
