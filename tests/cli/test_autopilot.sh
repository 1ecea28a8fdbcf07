#!/bin/sh
# The memory autopilot end to end: a job growing towards its limit with a cache attached survives
# because the cache shrank in time, and its report shows the forecast, the actions and the bytes
# they freed; the same job without perfopt's handler is stopped by the limit. First under a
# configured budget (the job kills itself past it, standing in for the kernel), then, where this
# test may create one (root, a writable memory controller), under a real cgroup memory limit,
# where the kernel's OOM killer stops the job and the flight record explains it.
set -u
fail() { echo "test_autopilot: FAIL: $*"; exit 1; }
BUILD=${BUILD:-build}
JOB="$BUILD/examples/memory_autopilot"
T=$(mktemp -d)
CG=""
cleanup() {
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
[ -x "$JOB" ] || fail "$JOB missing: run through make cli-tests"

# Fast settings for a short test: a sample per step (--sync --step-ms 5 --steps 80, 5 ms steps), a 1 s horizon and
# window, a 100 ms cool-down.
export PERFOPT_MONITOR_INTERVAL_MS=50 PERFOPT_AUTOPILOT_HORIZON_SECONDS=1
export PERFOPT_FORECAST_WINDOW_SECONDS=1 PERFOPT_THRESHOLD_COOLDOWN_MS=100
LIMIT=134217728
# Under AddressSanitizer, freed memory waits in a quarantine: a shrinking cache would give nothing
# back. Without it the allocator returns the cache's large blocks at once, as glibc does.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"

# ---- under a configured budget ---------------------------------------------------------------
PERFOPT_MEMORY_LIMIT_BYTES=$LIMIT PERFOPT_FLIGHT_RECORD_PATH="$T/ok.flight.json" \
  "$PERFOPT" run --quiet -o "$T/ok.json" -- "$JOB" --enforce --sync --step-ms 5 --steps 80 >"$T/ok.out" 2>"$T/ok.err" \
  || fail "the job with the autopilot did not survive (exit $?): $(tail -3 "$T/ok.err")"
grep -q "steps done" "$T/ok.out" || fail "the job did not finish its steps"
python3 - "$T/ok.json" <<'EOF' || fail "the report lacks the forecast, the actions or the freed bytes"
import json, sys
r = json.load(open(sys.argv[1]))
m = r["memory"]
f = m["forecast"]
for k in ("time_to_limit_seconds", "slope_bytes_per_second", "horizon_seconds", "grade", "trend"):
    assert k in f, k
assert f["horizon_seconds"] == 1
assert m["limit_source"] == "config", m["limit_source"]
acts = m["autopilot"]["actions"]
assert acts, "no autopilot action"
assert sum(a["freed_bytes"] for a in acts) > 16 << 20, "the actions freed too little"
assert any("forecast" in a["trigger"] for a in acts), "no action on the forecast"
shrunk = [c for c in m["cleanups"] if c["type"] == "listener" and c["handler"] == "cache"]
assert shrunk and max(c["freed_bytes"] for c in shrunk) > 0, "the cache never shrank"
EOF

# Without the handler, through `perfopt run` (no flight record path: the job writes it into run's
# report directory), the budget stops it, and the run's report takes in the flight record it
# wrote at the emergency grade: the last samples, the forecast and the actions it had.
PERFOPT_MEMORY_LIMIT_BYTES=$LIMIT "$PERFOPT" run --quiet -o "$T/no.json" -- \
  "$JOB" --enforce --sync --step-ms 5 --steps 80 --no-handler >"$T/no.out" 2>"$T/no.err"
rc=$?
[ $rc -eq 137 ] || fail "without the handler the job was not stopped by the budget (exit $rc)"
grep -q "over the" "$T/no.err" || fail "the stand-in for the OOM killer did not say why"
# killed: the flight record is in the run's report, and `perfopt report` reads and shows it
flight_check() { # report, what the kill was (oom: the kernel's OOM killer, self: the stand-in)
  python3 - "$1" "$2" <<'EOF2'
import json, sys
r = json.load(open(sys.argv[1]))
ex = r["run"]["exit"]
assert ex["signal_name"] == "SIGKILL" and ex["shell_status"] == 137, ex
assert ex["oom_killed"] is (sys.argv[2] == "oom"), ex
f = r["flight"]
assert f["grade"] == "emergency", f["grade"]
assert f["sample_count"] >= 8 and len(f["samples"]["memory_used_bytes"]) == f["sample_count"]
assert f["forecast"]["limit_bytes"] > 0 and f["forecast"]["time_to_limit_seconds"] >= 0
assert any(a["grade"] == "emergency" for a in f["autopilot"]["actions"])
EOF2
}
flight_check "$T/no.json" self || fail "the run's report of the killed job lacks its flight record"
"$PERFOPT" report "$T/no.json" >"$T/no.txt" 2>&1 || fail "perfopt report cannot read the run's report"
grep -q "flight record" "$T/no.txt" || fail "perfopt report does not show the flight record"
# positive control: the check fails on the survivor's report (no flight, not killed)
flight_check "$T/ok.json" self 2>/dev/null && fail "the flight check passes on a report without one"

# ---- under a real cgroup memory limit ---------------------------------------------------------
make_cgroup() {
  [ "$(id -u)" -eq 0 ] || return 1
  if [ -w /sys/fs/cgroup/memory ] && [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    CG=/sys/fs/cgroup/memory/perfopt-test-$$
    mkdir "$CG" 2>/dev/null || { CG=""; return 1; }
    echo $LIMIT >"$CG/memory.limit_in_bytes" || return 1
    [ -e "$CG/memory.memsw.limit_in_bytes" ] && echo $LIMIT >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
    COUNTER="$CG/memory.oom_control"
    return 0
  fi
  if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && [ -w /sys/fs/cgroup ]; then
    CG=/sys/fs/cgroup/perfopt-test-$$
    mkdir "$CG" 2>/dev/null || { CG=""; return 1; }
    echo $LIMIT >"$CG/memory.max" || return 1
    [ -e "$CG/memory.swap.max" ] && echo 0 >"$CG/memory.swap.max"
    COUNTER="$CG/memory.events"
    return 0
  fi
  return 1
}
oom_kills() { awk '$1 == "oom_kill" { print $2 }' "$COUNTER"; }

if ! make_cgroup; then
  echo "test_autopilot: real cgroup part skipped (needs root and a writable memory controller)"
  echo "test_autopilot: ok"
  exit 0
fi
# In the cgroup (no budget: the cgroup's limit is the effective one) with the handler: survives.
sh -c "echo \$\$ >'$CG/cgroup.procs' && PERFOPT_FLIGHT_RECORD_PATH='$T/cg-ok.flight.json' \
  exec '$PERFOPT' run --quiet -o '$T/cg-ok.json' -- '$JOB' --sync --step-ms 5 --steps 80" >"$T/cg-ok.out" 2>"$T/cg-ok.err" \
  || fail "in a cgroup limited to $LIMIT bytes the job with the autopilot did not survive: $(tail -3 "$T/cg-ok.err")"
python3 -c "import json,sys; m=json.load(open(sys.argv[1]))['memory']; assert m['limit_source']=='cgroup', m['limit_source']; assert m['autopilot']['actions']" "$T/cg-ok.json" \
  || fail "the report in the cgroup does not judge memory against the cgroup or shows no action"
# Without: the kernel's OOM killer stops it; `perfopt run` names the OOM kill (the cgroup's
# counter rose) and its report holds the flight record written at the emergency grade.
before=$(oom_kills)
"$PERFOPT" run --quiet -o "$T/cg-no.json" -- sh -c "echo \$\$ >'$CG/cgroup.procs' && \
  exec '$JOB' --sync --step-ms 5 --steps 80 --no-handler" >"$T/cg-no.out" 2>"$T/cg-no.err"
rc=$?
after=$(oom_kills)
[ $rc -eq 137 ] || fail "without the handler the job was not killed in the cgroup (exit $rc)"
[ "$after" -gt "$before" ] || fail "the cgroup counted no OOM kill ($before -> $after)"
flight_check "$T/cg-no.json" oom || fail "the run's report does not name the OOM kill or lacks the flight record"
"$PERFOPT" report "$T/cg-no.json" >"$T/cg-no.txt" 2>&1 || fail "perfopt report cannot read the OOM-killed run's report"
grep -q "flight record" "$T/cg-no.txt" || fail "perfopt report does not show the flight record"
# positive control: the budget's stand-in kill is not an OOM kill
flight_check "$T/no.json" oom 2>/dev/null && fail "the OOM check passes on a kill that was not one"
echo "test_autopilot: ok"
