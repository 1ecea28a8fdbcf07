#!/bin/sh
# make install, into a DESTDIR and into a custom PREFIX: every file (libraries, header, command,
# both .pc files, the man page and the docs it points to); pkg-config --cflags works with only
# the runtime packages; ldconfig runs only for a real install; the README example and a tiny
# auto-instrumented program build against the installed .pc files, shared and static, and run.
set -u
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "test_install: FAIL: $*"; exit 1; }
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
# Under make asan / tsan the installed libraries are instrumented: programs link the runtime too.
SAN=""
nm "$BUILD/libperfopt.a" 2>/dev/null | grep -q ' U __asan_init' && SAN="-fsanitize=address,undefined"
nm "$BUILD/libperfopt.a" 2>/dev/null | grep -q ' U __tsan_init' && SAN="-fsanitize=thread"

# ---- DESTDIR: a staged install; ldconfig must not run -------------------------------------
make -s BUILD="$BUILD" install PREFIX=/usr DESTDIR="$T/stage" LDCONFIG="touch $T/ldconfig-stage" \
  >"$T/log" 2>&1 || fail "make install DESTDIR failed: $(tail -5 "$T/log")"
for f in include/perfopt.h lib/libperfopt.a lib/libperfopt.so.0 lib/libperfopt.so \
  lib/libperfopt-auto.a lib/libperfopt-auto.so.0 lib/pkgconfig/perfopt.pc \
  lib/pkgconfig/perfopt-auto.pc bin/perfopt share/man/man1/perfopt.1 share/doc/perfopt/README.md \
  share/doc/perfopt/cli.md share/doc/perfopt/api.md share/doc/perfopt/formats.md \
  share/doc/perfopt/architecture.md; do
  [ -e "$T/stage/usr/$f" ] || fail "make install did not install $f"
done
[ ! -e "$T/ldconfig-stage" ] || fail "ldconfig ran for a DESTDIR install"
# Only the staged .pc files are visible: as on a machine with the runtime packages only (no
# libcjson.pc, which comes with libcjson-dev).
stage_pc() {
  PKG_CONFIG_LIBDIR="$T/stage/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$T/stage" pkg-config "$@"
}
! stage_pc --exists libcjson || fail "the staged pkg-config path sees libcjson.pc (the check below proves nothing)"
stage_pc --cflags perfopt >"$T/cflags" 2>&1 || fail "pkg-config --cflags perfopt failed: $(cat "$T/cflags")"
grep -q -- "-I$T/stage/usr/include" "$T/cflags" || fail "perfopt.pc Cflags: $(cat "$T/cflags")"
stage_pc --cflags --libs perfopt-auto >"$T/cflags" 2>&1 || fail "pkg-config perfopt-auto failed: $(cat "$T/cflags")"
grep -q -- "-finstrument-functions" "$T/cflags" || fail "perfopt-auto.pc Cflags: $(cat "$T/cflags")"
grep -q -- "-lperfopt-auto -lperfopt" "$T/cflags" || fail "perfopt-auto.pc Libs: $(cat "$T/cflags")"
# the man page renders cleanly and points to the installed docs
MAN="$T/stage/usr/share/man/man1/perfopt.1"
grep -q '/usr/share/doc/perfopt' "$MAN" || fail "the man page does not point to /usr/share/doc/perfopt"
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww -z "$MAN" 2>"$T/groff" || fail "groff failed on the man page"
  [ ! -s "$T/groff" ] || fail "the man page has roff warnings: $(cat "$T/groff")"
fi

# ---- the man page covers every command and every option its --help names -------------------
"$T/stage/usr/bin/perfopt" --help | awk '/^commands:/{c=1;next} c&&!NF{exit} c{print $1}' >"$T/cmds"
[ -s "$T/cmds" ] || fail "perfopt --help lists no commands"
while read -r cmd; do
  grep -q "^\.SS $cmd\$" docs/perfopt.1 || fail "the man page has no section for '$cmd'"
  "$T/stage/usr/bin/perfopt" "$cmd" --help | grep -oE -- '(^|[][ |,(])--?[a-z][a-z-]*' |
    sed 's/^[][ |,(]//' | sort -u >"$T/opts"
  [ -s "$T/opts" ] || fail "perfopt $cmd --help names no option"
  while read -r opt; do
    roff=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
    grep -q -- "$roff" docs/perfopt.1 || fail "the man page lacks '$opt' of perfopt $cmd"
  done <"$T/opts"
done <"$T/cmds"

# ---- a custom PREFIX: ldconfig runs; programs build from the installed .pc files ----------
P="$T/prefix"
make -s BUILD="$BUILD" install PREFIX="$P" LDCONFIG="touch $T/ldconfig-prefix" >"$T/log" 2>&1 \
  || fail "make install PREFIX failed: $(tail -5 "$T/log")"
[ -e "$T/ldconfig-prefix" ] || fail "make install (DESTDIR empty) did not run ldconfig"
grep -q "^prefix=$P\$" "$P/lib/pkgconfig/perfopt.pc" || fail "perfopt.pc does not carry PREFIX"
"$P/bin/perfopt" --version | grep -q '^perfopt ' || fail "the installed perfopt does not run"
export PKG_CONFIG_PATH="$P/lib/pkgconfig"

# The README example, exactly as written.
awk '/^## Profiling in C/{s=1} s&&/^```c$/{c=1;next} c&&/^```$/{exit} c{print}' README.md >"$T/app.c"
grep -q 'po_optimizer_write_text' "$T/app.c" || fail "could not extract the README example"
# shellcheck disable=SC2046
cc $SAN -o "$T/app_shared" "$T/app.c" $(pkg-config --cflags --libs perfopt) 2>"$T/cc" \
  || fail "the README example does not build (shared): $(cat "$T/cc")"
# shellcheck disable=SC2046
cc $SAN -o "$T/app_static" "$T/app.c" $(pkg-config --cflags perfopt) \
  $(pkg-config --static --libs perfopt | sed 's/-lperfopt\( \|$\)/-l:libperfopt.a\1/') 2>"$T/cc" \
  || fail "the README example does not build (static): $(cat "$T/cc")"
readelf -d "$T/app_shared" | grep -q 'NEEDED.*libperfopt.so.0' || fail "app_shared is not linked with libperfopt.so"
! readelf -d "$T/app_static" | grep -q 'libperfopt' || fail "app_static needs libperfopt.so"
# the README's point: outside the loader's path, the shared build needs LD_LIBRARY_PATH
(cd "$T" && ./app_shared >/dev/null 2>&1)
[ $? -eq 127 ] || fail "app_shared started without LD_LIBRARY_PATH (is PREFIX in the loader's path?)"
for app in app_shared app_static; do
  mkdir "$T/run_$app"
  (cd "$T/run_$app" && LD_LIBRARY_PATH="$P/lib" "$T/$app" >out 2>err) \
    || fail "$app exited $?: $(cat "$T/run_$app/err")"
  grep -q 'train_step' "$T/run_$app/out" || fail "$app printed no train_step row"
  grep -q 'load_batch' "$T/run_$app/out" || fail "$app printed no load_batch row"
  python3 -c "
import json, sys
names = {f['name'] for f in json.load(open(sys.argv[1]))['profile']['functions']}
assert {'train_step', 'load_batch'} <= names, names" "$T/run_$app/report.json" \
    || fail "$app wrote no report.json with its functions"
done

# Automatic instrumentation through perfopt-auto.pc, shared and static.
cat >"$T/auto.c" <<'C'
#include <stdio.h>
__attribute__((noinline)) static int leaf_work(int n) {
  volatile int s = 0;
  for (int i = 0; i < n; i++) s += i;
  return s;
}
__attribute__((noinline)) int outer_work(int n) { return leaf_work(n) + leaf_work(n / 2); }
int main(void) {
  int s = 0;
  for (int i = 0; i < 50; i++) s += outer_work(1000);
  printf("%d\n", s);
  return 0;
}
C
# shellcheck disable=SC2046
cc $SAN -g -o "$T/auto_shared" "$T/auto.c" $(pkg-config --cflags --libs perfopt-auto) 2>"$T/cc" \
  || fail "perfopt-auto program does not build (shared): $(cat "$T/cc")"
# shellcheck disable=SC2046
cc $SAN -g -o "$T/auto_static" "$T/auto.c" $(pkg-config --cflags perfopt-auto) \
  $(pkg-config --static --libs perfopt-auto | sed 's/-lperfopt-auto /-l:libperfopt-auto.a /; s/-lperfopt\( \|$\)/-l:libperfopt.a\1/') \
  2>"$T/cc" || fail "perfopt-auto program does not build (static): $(cat "$T/cc")"
for app in auto_shared auto_static; do
  (cd "$T" && LD_LIBRARY_PATH="$P/lib" PERFOPT_OUT="$T/$app.json" "./$app" >/dev/null 2>"$T/err") \
    || fail "$app exited $?: $(cat "$T/err")"
  python3 -c "
import json, sys
names = {f['name'] for f in json.load(open(sys.argv[1]))['profile']['functions']}
assert {'outer_work', 'leaf_work'} <= names, names" "$T/$app.json" || fail "$app did not profile its functions"
done
echo "test_install: ok"
