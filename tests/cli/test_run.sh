#!/bin/sh
# perfopt run / attach end to end: any program (not linked with perfopt), its whole process tree,
# every way it can end, what perfopt writes where, and bad input. The programs run are in
# tests/run/ (built into $BUILD/tests/run by mk/run.mk).
set -u
BUILD=${BUILD:-build}
PERFOPT=${PERFOPT:-$BUILD/perfopt}
H=$(cd "$BUILD/tests/run" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
MIB=1048576
fail() { echo "test_run: FAIL: $*"; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# check REPORT EXPR...: each Python expression must hold; r is the report, ex run.exit, tot
# processes.totals, procs processes.list.
check() {
  f=$1
  shift
  "$PY" - "$f" "$@" <<'EOF' || fail "report $f: see above"
import json, sys
r = json.load(open(sys.argv[1]))
env = {"r": r, "ex": r["run"]["exit"], "tot": r["processes"]["totals"],
       "procs": r["processes"]["list"], "prof": r["profile"]}
for e in sys.argv[2:]:
    if not eval(e, env):
        print("check failed:", e, file=sys.stderr)
        sys.exit(1)
EOF
}

# waits (bounded) until PID has a child; prints the child's pid
child_of() {
  i=0
  while [ $i -lt 100 ]; do
    c=$(pgrep -P "$1" | head -1)
    [ -n "$c" ] && { echo "$c"; return 0; }
    sleep 0.05
    i=$((i + 1))
  done
  return 1
}

# ---- memory, threads, forks, execs, grandchildren ------------------------------------------------

"$PERFOPT" run -q --interval 20 -o "$T/alloc.json" -- "$H/alloc" 96 1000 || fail "alloc exited $?"
check "$T/alloc.json" "ex['status'] == 'exited' and ex['exit_code'] == 0" \
  "tot['max_process_peak_rss_bytes'] >= 96 * $MIB" "tot['max_process_peak_rss_bytes'] < 140 * $MIB" \
  "tot['peak_rss_bytes'] >= 96 * $MIB" "procs[0]['comm'] == 'alloc'" \
  "r['run']['argv'] == ['$H/alloc', '96', '1000']" "tot['source'] == 'rusage'"

"$PERFOPT" run -q --interval 20 -o "$T/threads.json" -- "$H/threads" 4 400 || fail "threads exited $?"
check "$T/threads.json" "tot['peak_threads'] >= 5" "procs[0]['threads_peak'] >= 5" \
  "tot['cpu_seconds'] > 0"

"$PERFOPT" run -q --interval 20 -o "$T/fork.json" -- "$H/forker" 64 800 || fail "forker exited $?"
check "$T/fork.json" "len(procs) == 2" "procs[1]['ppid'] == procs[0]['pid']" \
  "procs[1]['peak_rss_bytes'] >= 64 * $MIB" "procs[0]['peak_rss_bytes'] < 64 * $MIB"

"$PERFOPT" run -q --interval 20 -o "$T/exec.json" -- sh -c "exec '$H/alloc' 8 500" || fail "exec exited $?"
check "$T/exec.json" "procs[0]['pid'] == r['run']['pid']" "procs[0]['comm'] == 'alloc'" \
  "'alloc 8 500' in procs[0]['cmdline']"

# a shell script whose grandchildren do the work: their memory counts
"$PERFOPT" run -q --interval 20 -o "$T/script.json" -- \
  sh -c "'$H/alloc' 64 1200 & '$H/alloc' 64 1200 & wait" || fail "script exited $?"
check "$T/script.json" "len([p for p in procs if p['comm'] == 'alloc']) == 2" \
  "tot['peak_rss_bytes'] >= 128 * $MIB" "tot['processes_seen'] >= 3"

# ---- every way a child ends -------------------------------------------------------------------------

"$PERFOPT" run -q -o "$T/kill.json" -- sh -c 'kill -KILL $$'
[ $? -eq 137 ] || fail "a child killed by SIGKILL must give 137"
check "$T/kill.json" "ex['status'] == 'killed' and ex['signal_name'] == 'SIGKILL'" \
  "ex['shell_status'] == 137" "ex['oom_killed'] in (False, None)" "len(r['processes']['last_samples']) >= 1"

"$PERFOPT" run -q -o "$T/segv.json" -- "$H/segv"
[ $? -eq 139 ] || fail "a child that segfaults must give 139"
check "$T/segv.json" "ex['signal_name'] == 'SIGSEGV'"

"$PERFOPT" run -q --timeout 0.5 -o "$T/timeout.json" -- sleep 30
[ $? -eq 124 ] || fail "--timeout must give 124"
check "$T/timeout.json" "ex['status'] == 'timeout' and ex['timed_out']" "ex['signal_name'] == 'SIGTERM'"

"$PERFOPT" run -q -o "$T/exit3.json" -- sh -c 'exit 3'
[ $? -eq 3 ] || fail "the child's exit status must be perfopt's"
check "$T/exit3.json" "ex['exit_code'] == 3"

# Ctrl-C (SIGINT) and SIGTERM to perfopt alone reach the child's group; the report is written.
for sig in INT TERM; do
  "$PERFOPT" run -q -o "$T/sig$sig.json" -- sleep 30 &
  p=$!
  c=$(child_of $p) || fail "perfopt run started no child"
  kill -$sig $p
  wait $p
  rc=$?
  want=130
  [ $sig = TERM ] && want=143
  [ $rc -eq $want ] || fail "SIG$sig to perfopt: exit $rc, not $want"
  kill -0 "$c" 2>/dev/null && fail "SIG$sig to perfopt left its child $c running"
  check "$T/sig$sig.json" "ex['forwarded_signal'] == 'SIG$sig'" "ex['signal_name'] == 'SIG$sig'"
done

# ---- what perfopt writes, and where -----------------------------------------------------------------

echo previous >"$T/keep.json"
"$PERFOPT" run -q -o "$T/keep.json" -- /nonexistent/cmd 2>"$T/err"
[ $? -eq 127 ] || fail "a command that does not exist must give 127"
grep -q "/nonexistent/cmd" "$T/err" || fail "the error does not name the command"
[ "$(cat "$T/keep.json")" = previous ] || fail "a failed start destroyed the previous report"

"$PERFOPT" run -q -o /nonexistent/dir/r.json -- touch "$T/ran" 2>"$T/err"
[ $? -eq 2 ] || fail "an unwritable -o must exit 2"
[ -e "$T/ran" ] && fail "the command ran although -o is unwritable"
grep -q "/nonexistent/dir" "$T/err" || fail "the -o error does not name the path"
"$PERFOPT" run -q -o "$T" -- true 2>/dev/null
[ $? -eq 2 ] || fail "-o naming a directory must exit 2"
"$PERFOPT" run -q -o /dev/null -- true 2>/dev/null
[ $? -eq 2 ] || fail "-o naming a device must exit 2"

mkdir "$T/rel"
(cd "$T/rel" && "$PERFOPT" run -q -o rel.json -- sh -c 'cd / && true') || fail "relative -o run failed"
[ -s "$T/rel/rel.json" ] || fail "a relative -o must be resolved before the command changes directory"

# stdout is the command's alone; the summary is on stderr; stdin passes through
echo hello | "$PERFOPT" run -o "$T/io.json" -- sh -c 'cat; echo child-out' >"$T/out" 2>"$T/err" \
  || fail "passthrough run failed"
[ "$(cat "$T/out")" = "hello
child-out" ] || fail "stdout is not the command's alone: $(cat "$T/out")"
grep -q "exited with status 0" "$T/err" || fail "no summary on stderr"
grep -q "peak RSS" "$T/err" || fail "the summary has no peak RSS"
grep -q "report     $T/io.json" "$T/err" || fail "the summary does not name the report"

"$PERFOPT" run -q --html -o "$T/h.json" -- true || fail "--html run failed"
grep -q "<html" "$T/h.html" || fail "--html wrote no page next to the report"

# ---- a child linked with perfopt: every process's report, merged ---------------------------------

mkdir "$T/tmp"
TMPDIR="$T/tmp" "$PERFOPT" run -o "$T/linked.json" -- "$H/linked" 2>"$T/err" || fail "linked exited $?"
check "$T/linked.json" "prof['processes'] == 2" \
  "{f['name']: f['calls'] for f in prof['functions']} == {'parent_work': 1, 'child_work': 1, 'shared_step': 5}" \
  "len(r['processes']['reports']) == 2" "r['processes']['in_process_reports']['errors'] == []"
grep -q "shared_step" "$T/err" || fail "the summary lists no top function"
[ -z "$(ls -A "$T/tmp")" ] || fail "perfopt left its private report directory: $(ls "$T/tmp")"

# ---- --heap: the tree's allocations, traced from outside -----------------------------------------

"$PERFOPT" run --heap=exact -o "$T/heap.json" -- "$H/forker" 24 300 2>"$T/err" || fail "--heap=exact exited $?"
check "$T/heap.json" "r['memory']['heap']['mode'] == 'exact'" \
  "r['memory']['heap']['peak_bytes'] == 24 * $MIB" "len(r['memory']['heap']['processes']) == 2"
grep -q "heap       peak 24 MiB" "$T/err" || fail "the summary has no heap line: $(cat "$T/err")"
"$PERFOPT" run -q --heap -o "$T/heaps.json" -- "$H/alloc" 16 100 || fail "--heap exited $?"
check "$T/heaps.json" "r['memory']['heap']['mode'] == 'sampled'" \
  "r['memory']['heap']['top_sites_at_peak'][0]['name'].startswith('main')"

# ---- attach --------------------------------------------------------------------------------------

"$H/alloc" 32 3000 &
a=$!
sleep 0.2
"$PERFOPT" attach "$a" -q --interval 50 --duration 0.5 -o "$T/att.json" || fail "attach exited $?"
check "$T/att.json" "r['run']['mode'] == 'attach'" "ex['status'] == 'detached'" \
  "procs[0]['pid'] == $a" "tot['peak_rss_bytes'] >= 32 * $MIB" "r['run']['argv'][0].endswith('alloc')"
"$PERFOPT" attach "$a" -q --interval 50 -o "$T/att2.json" || fail "attach until exit failed"
kill -0 "$a" 2>/dev/null && fail "attach returned while the process still ran"
wait "$a"
check "$T/att2.json" "ex['status'] == 'gone'"
"$PERFOPT" attach 999999999 -q -o "$T/att3.json" 2>"$T/err"
[ $? -eq 1 ] || fail "attach to a missing process must exit 1"
grep -q "no process" "$T/err" || fail "attach does not say the process is missing"

# ---- bad input --------------------------------------------------------------------------------------

usage_error() { # expected message, then the arguments
  msg=$1
  shift
  "$PERFOPT" "$@" >/dev/null 2>"$T/err"
  rc=$?
  [ $rc -eq 2 ] || fail "perfopt $* exited $rc, not 2"
  grep -q -- "$msg" "$T/err" || fail "perfopt $*: message lacks '$msg': $(cat "$T/err")"
}
usage_error "unknown option '--bogus'" run --bogus -- true
usage_error "interval" run --interval -5 -- true
usage_error "interval" run --interval 0 -- true
usage_error "exact, sampled or full" run --heap=bogus -- true
usage_error "timeout" run --timeout=-1 -- true
usage_error "no command" run -o "$T/x.json"
usage_error "no process id" attach
usage_error "expected one process id" attach 12 34
usage_error "duration" attach 1 --duration abc
"$PERFOPT" run --help | grep -q "usage: perfopt run" || fail "run --help"

# ---- out of memory (where this machine lets a test make a memory cgroup) ---------------------------

oom_cgroup() {
  base=""
  v1=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup)
  if [ -n "$v1" ] && [ -d "/sys/fs/cgroup/memory$v1" ]; then
    d="/sys/fs/cgroup/memory$v1/perfopt-test-$$"
    mkdir "$d" 2>/dev/null && echo $((64 * MIB)) >"$d/memory.limit_in_bytes" 2>/dev/null \
      && echo 0 >"$d/memory.swappiness" 2>/dev/null && { echo "$d"; return 0; }
    rmdir "$d" 2>/dev/null
  fi
  v2=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup)
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    d="/sys/fs/cgroup${v2%/}/perfopt-test-$$"
    mkdir "$d" 2>/dev/null && echo $((64 * MIB)) >"$d/memory.max" 2>/dev/null \
      && echo 0 >"$d/memory.swap.max" 2>/dev/null && { echo "$d"; return 0; }
    rmdir "$d" 2>/dev/null
  fi
  return 1
}
if cg=$(oom_cgroup); then
  "$PERFOPT" run -q -o "$T/oom.json" -- sh -c "echo \$\$ >'$cg/cgroup.procs' && exec '$H/alloc' 512 100"
  rc=$?
  rmdir "$cg" 2>/dev/null
  [ $rc -eq 137 ] || fail "a child killed by the OOM killer must give 137, not $rc"
  check "$T/oom.json" "ex['oom_killed'] is True" "'out of memory' in ex['description']"
else
  echo "test_run: cannot make a memory cgroup here: skipped the OOM-kill test"
fi

# ---- on a terminal: the command gets it, Ctrl-C and Ctrl-Z work, a progress line is shown -----------

if ! command -v tmux >/dev/null 2>&1; then
  echo "test_run: tmux not installed: skipped the terminal tests"
  echo "test_run: ok"
  exit 0
fi
sock="perfopt-run-$$"
TM="tmux -L $sock"
trap '$TM kill-server 2>/dev/null; sleep 0.3; rm -rf "$T"; rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"' EXIT
$TM new-session -d -x 120 -y 24 sh || fail "tmux new-session"
pane="$T/pane"
wait_for() { # pattern, tries of 0.1 s
  i=0
  while [ $i -lt "$2" ]; do
    $TM capture-pane -p >"$pane" 2>/dev/null
    grep -q -- "$1" "$pane" && return 0
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}
# The command reads the terminal (it is in the foreground), the progress line is on the last row.
$TM send-keys "'$PERFOPT' run -o '$T/tty.json' -- sh -c 'read x; echo got:\$x'; echo RUN1=\$?" Enter
wait_for "^ perfopt run | .* process" 100 || { cat "$pane"; fail "no progress line on the terminal"; }
$TM send-keys "hello" Enter
wait_for "RUN1=0" 100 || { cat "$pane"; fail "the command could not read the terminal"; }
grep -q "got:hello" "$pane" || fail "the command did not get the line typed"
grep -q "exited with status 0" "$pane" || fail "no summary after the terminal run"
# Ctrl-C at the terminal ends the command; perfopt writes the report and exits 130.
$TM send-keys "clear; '$PERFOPT' run -o '$T/cc.json' -- sleep 30; echo RUN2=\$?" Enter
wait_for "^ perfopt run |" 100 || fail "the second run did not start"
$TM send-keys C-c
wait_for "RUN2=130" 100 || { cat "$pane"; fail "Ctrl-C did not end the run with 130"; }
check "$T/cc.json" "ex['signal_name'] == 'SIGINT'"
# Ctrl-Z stops the job (perfopt and its command), fg resumes both.
$TM send-keys "clear; '$PERFOPT' run -o '$T/cz.json' -- sh -c 'sleep 1; echo resumed'" Enter
wait_for "^ perfopt run |" 100 || fail "the third run did not start"
$TM send-keys C-z
wait_for "Stopped" 100 || { cat "$pane"; fail "Ctrl-Z did not stop the job"; }
$TM send-keys "fg; echo RUN3=\$?" Enter
wait_for "RUN3=0" 100 || { cat "$pane"; fail "fg did not resume the job to a normal exit"; }
grep -q "resumed" "$pane" || fail "the command did not run to its end after fg"

echo "test_run: ok"
