#!/bin/sh
# PERFOPT_OUT always works: a program that only uses PO_PROFILE_FUNCTION (static and shared), and
# programs with their own optimizer (destroyed before exit, or alive at exit) write a report with
# every section from the optimizer they used.
set -u
BUILD=${BUILD:-build}
B=$(cd "$BUILD" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_perfopt_out: FAIL: $*"; exit 1; }
CC=${CC:-cc}
LIBS="-lcjson -lmicrohttpd -ldw -lelf -ldl -lm -lpthread"
# A sanitizer build of the library needs the program linked with the same runtime.
nm "$B/libperfopt.a" 2>/dev/null | grep -q ' U __asan_init' && CC="$CC -fsanitize=address,undefined"
nm "$B/libperfopt.a" 2>/dev/null | grep -q ' U __tsan_init' && CC="$CC -fsanitize=thread"

cat >"$tmp/zones.c" <<'C'
#include <perfopt.h>
static volatile long sink;
static void work(void) {
  PO_PROFILE_FUNCTION();
  for (int i = 0; i < 1000; i++) sink += i;
}
int main(void) {
  for (int i = 0; i < 100; i++) work();
  return 0;
}
C
cat >"$tmp/own.c" <<'C'
#include <perfopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void work(void) { PO_PROFILE_FUNCTION(); usleep(1000); }
int main(int argc, char **argv) {
  po_config cfg;
  po_config_defaults(&cfg);
  cfg.monitor_interval_ms = 20;
  po_optimizer *opt;
  if (po_optimizer_create(&cfg, &opt)) return 3;
  po_cache *c;
  if (po_cache_create(1 << 20, PO_CACHE_SIEVE, &c) || po_cache_attach(opt, c)) return 4;
  for (int i = 0; i < 100; i++) work();
  if (argc > 1 && !strcmp(argv[1], "destroy")) {
    po_cache_destroy(c);
    po_optimizer_destroy(opt);
    for (int i = 0; i < 10; i++) work(); /* zones after the destroy still count */
  }
  return 0;
}
C
$CC -std=c11 -D_DEFAULT_SOURCE -Wall -Werror -I include -o "$tmp/zones_static" "$tmp/zones.c" "$B/libperfopt.a" $LIBS ||
  fail "static build"
$CC -std=c11 -D_DEFAULT_SOURCE -Wall -Werror -I include -o "$tmp/zones_shared" "$tmp/zones.c" -L"$B" -lperfopt $LIBS ||
  fail "shared build"
$CC -std=c11 -D_DEFAULT_SOURCE -Wall -Werror -I include -o "$tmp/own" "$tmp/own.c" "$B/libperfopt.a" $LIBS || fail "own build"

check() { # report, python assertions
  python3 - "$1" "$2" <<'PY' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
exec(sys.argv[2])
PY
}
has_work='assert any(f["name"] in ("work",) and f["calls"] >= 100 for f in r["profile"]["functions"]), r["profile"]["functions"]'

PERFOPT_OUT="$tmp/s.json" "$tmp/zones_static" || fail "static run"
[ -s "$tmp/s.json" ] || fail "a static program with only PO_PROFILE_FUNCTION wrote no report"
check "$tmp/s.json" "$has_work" || fail "static report lacks the zone"

LD_LIBRARY_PATH="$B" PERFOPT_OUT="$tmp/d.json" "$tmp/zones_shared" || fail "shared run"
check "$tmp/d.json" "$has_work" || fail "shared report lacks the zone"

# positive control: without PERFOPT_OUT nothing is written
( cd "$tmp" && ./zones_static ) || fail "plain run"
[ ! -e "$tmp/perfopt-report.json" ] || fail "a report appeared without PERFOPT_OUT"

full='assert r["resources"]["sample_count"] >= 1, r["resources"]
assert r["memory"]["rss_bytes"] > 0, r["memory"]
assert [c["name"] for c in r["cache"]["caches"]] == CACHES, r["cache"]
assert r["run"]["config"]["MONITOR_INTERVAL_MS"] == 20, r["run"]["config"]'
PERFOPT_OUT="$tmp/alive.json" "$tmp/own" || fail "own optimizer alive at exit"
check "$tmp/alive.json" "CACHES = ['cache']
$full
$has_work" || fail "report of an optimizer alive at exit"

PERFOPT_OUT="$tmp/destroyed.json" "$tmp/own" destroy || fail "own optimizer destroyed"
check "$tmp/destroyed.json" "CACHES = []
$full
assert any(f['name'] == 'work' and f['calls'] == 110 for f in r['profile']['functions'])" ||
  fail "report of an optimizer destroyed before exit"

# A write that fails at exit is said on stderr (no log callback in this program).
PERFOPT_OUT=/nonexistent/dir/r.json "$tmp/zones_static" 2>"$tmp/err" || fail "exit status"
grep -q 'PERFOPT_OUT.*/nonexistent/dir/r.json' "$tmp/err" || fail "a failed write is silent"
echo "test_perfopt_out: ok"
