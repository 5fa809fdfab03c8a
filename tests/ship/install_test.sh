#!/usr/bin/env bash
# What `cmake --install` ships, used as a user would: installs the build
# tree into a private prefix, checks the files, builds two programs outside
# the tree against the installed client library (one with pkg-config, one
# with find_package(copal), shared and static), and runs them against a
# broker started by the installed `copal` (which must find copal-broker
# next to itself: nothing of the build tree is on PATH).
#
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(readlink -f "$1")
SRC=$(readlink -f "$2")
T=$(mktemp -d /tmp/cpl-inst.XXXXXX)
P=$T/prefix
DB=$T/db
cleanup() {
  [[ -x $P/bin/copal ]] && COPAL_DB=$DB "$P/bin/copal" server stop >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
ok() { echo "install_test: ok: $*"; }

cmake --install "$BUILD" --prefix "$P" >"$T/install.log" || { cat "$T/install.log"; fail "cmake --install"; }

# --- the files
libdir=
for d in "$P"/lib "$P"/lib64 "$P"/lib/*-linux-gnu; do
  if [[ -e $d/pkgconfig/copal-client.pc ]]; then libdir=${d#"$P"/}; break; fi
done
[[ -n $libdir ]] || fail "no copal-client.pc under $P/lib*"
for f in bin/copal bin/copal-broker bin/copal-launcher bin/copalactivate \
         include/copal/client.h include/copal/common.h include/copal/version.h \
         include/copal/copal.pb-c.h share/copal/copal.proto \
         "$libdir/libcopal-client.a" "$libdir/pkgconfig/copal-client.pc" \
         "$libdir/cmake/copal/copalConfig.cmake" \
         "$libdir/cmake/copal/copalConfigVersion.cmake"; do
  [[ -e $P/$f ]] || fail "missing $f"
done
for f in bin/copal bin/copal-broker bin/copal-launcher bin/copalactivate; do
  [[ -x $P/$f ]] || fail "$f is not executable"
done
so=$(readlink -f "$P/$libdir/libcopal-client.so")
[[ -f $so ]] || fail "no libcopal-client.so"
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[[ $soname =~ ^libcopal-client\.so\.[0-9]+$ ]] || fail "SONAME is '$soname'"
[[ -e $P/$libdir/$soname ]] || fail "no $soname link"
ok "files (SONAME $soname)"

# the schema as installed is the one in the tree
cmp -s "$P/share/copal/copal.proto" "$SRC/proto/copal.proto" || fail "copal.proto differs"

# --- one version everywhere
want=$(sed -nE 's/^project\(copal VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
[[ -n $want ]] || fail "no version in CMakeLists.txt"
[[ $("$P/bin/copal" --version) == "copal $want" ]] || fail "copal --version: $("$P/bin/copal" --version)"
[[ $("$P/bin/copal-broker" --version) == "copal-broker $want" ]] || fail "copal-broker --version"
[[ $("$P/bin/copal-launcher" --version) == "copal-launcher $want" ]] || fail "copal-launcher --version"
grep -q "#define COPAL_VERSION \"$want\"" "$P/include/copal/version.h" || fail "version.h"
ok "version $want"

# --- a program built with pkg-config (shared library)
export PKG_CONFIG_PATH=$P/$libdir/pkgconfig
[[ $(pkg-config --modversion copal-client) == "$want" ]] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -o "$T/demo_pc" "$SRC/tests/ship/client_demo.c" \
  $(pkg-config --cflags --libs copal-client) 2>"$T/cc.log" || { cat "$T/cc.log"; fail "cc with pkg-config"; }
ok "built with pkg-config"

# --- programs built with find_package(copal) (shared and static)
cmake -S "$SRC/tests/ship/cmake_consumer" -B "$T/consumer" -DCMAKE_PREFIX_PATH="$P" \
  -DCMAKE_BUILD_TYPE=Release >"$T/consumer.log" 2>&1 || { cat "$T/consumer.log"; fail "find_package(copal)"; }
cmake --build "$T/consumer" >>"$T/consumer.log" 2>&1 || { cat "$T/consumer.log"; fail "build with find_package"; }
ok "built with find_package(copal)"
# the static one does not need the copal library at run time; the shared
# one finds the installed library (its RUNPATH). ldd's output is kept
# first: `ldd | grep -q` can fail by SIGPIPE under pipefail.
deps=$(ldd "$T/consumer/client_demo_static")
[[ $deps != *copal-client* ]] || fail "client_demo_static links libcopal-client dynamically: $deps"
deps=$(ldd "$T/consumer/client_demo_cmake")
[[ $deps == *"$P/$libdir/libcopal-client.so"* ]] ||
  fail "client_demo_cmake does not use the installed shared library: $deps"

# --- a broker started by the installed copal, nothing of the build on PATH
export PATH=$P/bin:/usr/bin:/bin
export HOME=$T/home
mkdir -p "$HOME"
unset COPAL_BROKER_BIN COPAL_LAUNCHER_BIN COPAL_BROKER_URL COPAL_TOKEN
copal init "$DB" >/dev/null
export COPAL_DB=$DB
copal server start --tcp tls+tcp://127.0.0.1:0 >/dev/null
pid=$(cat "$DB/broker.pid")
exe=$(readlink -f "/proc/$pid/exe")
[[ $exe == "$P/bin/copal-broker" ]] || fail "broker runs $exe, not the installed one"
ok "installed copal started the installed broker"

status=$(copal server status)
echo "$status"
grep -qE "^pid: +$pid$" <<<"$status" || fail "status: no pid"
grep -qE "^version: +$want$" <<<"$status" || fail "status: no version"
grep -qE "^database: +$DB$" <<<"$status" || fail "status: no database"
grep -qE "^started: +[0-9]{4}-" <<<"$status" || fail "status: no start time"
grep -qE "ipc://$DB/sock/broker$" <<<"$status" || fail "status: no IPC address"
grep -qE "tcp://127\.0\.0\.1:[1-9][0-9]*$" <<<"$status" || fail "status: no TCP address with its port"
grep -q "copal-broker $want serving" "$DB/log/broker.log" || fail "the broker's log does not name its version"

out=$(LD_LIBRARY_PATH=$P/$libdir "$T/demo_pc" "$DB" 25)
[[ $out == $'READY 25\ntotal 25' ]] || fail "demo_pc: $out"
out=$("$T/consumer/client_demo_cmake" "$DB" 10)
[[ $out == $'READY 35\ntotal 35' ]] || fail "client_demo_cmake: $out"
out=$("$T/consumer/client_demo_static" "$DB" 5)
[[ $out == $'READY 40\ntotal 40' ]] || fail "client_demo_static: $out"
# and the CLI sees what the programs made
n=$(copal ls --wf installed --format csv | tail -n +2 | wc -l)
[[ $n -eq 40 ]] || fail "copal ls --wf installed: $n tasks"
ok "programs made 40 tasks; copal ls sees them"

copal server stop >/dev/null
echo "install_test: all passed"
