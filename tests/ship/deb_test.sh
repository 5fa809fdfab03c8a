#!/usr/bin/env bash
# `cpack -G DEB` makes a Debian package of the installed files: checks its
# control fields (name, version, architecture, the shared libraries it
# depends on) and its contents, then unpacks it and runs the programs from
# it.
#
#   deb_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(readlink -f "$1")
SRC=$(readlink -f "$2")
T=$(mktemp -d /tmp/cpl-deb.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
ok() { echo "deb_test: ok: $*"; }

want=$(sed -nE 's/^project\(copal VERSION ([0-9.]+).*/\1/p' "$SRC/CMakeLists.txt")
(cd "$BUILD" && cpack -G DEB -B "$T/out") >"$T/cpack.log" 2>&1 || { cat "$T/cpack.log"; fail "cpack -G DEB"; }
deb=
for f in "$T"/out/*.deb; do [[ -e $f ]] && deb=$f; done
[[ -n $deb ]] || { cat "$T/cpack.log"; fail "no .deb made"; }
ok "made $(basename "$deb")"

field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == copal ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$want" ]] || fail "Version: $(field Version) (want $want)"
[[ $(field Architecture) == "$(dpkg --print-architecture)" ]] || fail "Architecture: $(field Architecture)"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
[[ -n $(field Description) ]] || fail "no Description"
deps=$(field Depends)
echo "Depends: $deps"
# every shared library the programs link, as Debian names its package
for p in libc6 liblmdb0 libnng1 libprotobuf-c1 libuuid1 libjansson4; do
  grep -qE "(^|, )$p( |,|$)" <<<"$deps" || fail "Depends lacks $p"
done
ok "control fields"

list=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/copal ./usr/bin/copal-broker ./usr/bin/copal-launcher \
         ./usr/bin/copalactivate ./usr/include/copal/client.h \
         ./usr/include/copal/common.h ./usr/include/copal/version.h \
         ./usr/include/copal/copal.pb-c.h ./usr/share/copal/copal.proto; do
  grep -qxF "$f" <<<"$list" || fail "package lacks $f"
done
grep -qE '^\./usr/lib[^ ]*/libcopal-client\.so\.[0-9]+\.[0-9]+\.[0-9]+$' <<<"$list" || fail "package lacks the shared library"
grep -qE '^\./usr/lib[^ ]*/libcopal-client\.a$' <<<"$list" || fail "package lacks the static library"
grep -qE '^\./usr/lib[^ ]*/pkgconfig/copal-client\.pc$' <<<"$list" || fail "package lacks copal-client.pc"
grep -qE '^\./usr/lib[^ ]*/cmake/copal/copalConfig\.cmake$' <<<"$list" || fail "package lacks the CMake config"
# the Python package where Debian's python3 looks for /usr
for f in __init__.py copal_pb2.py _config.py; do
  grep -qxF "./usr/lib/python3/dist-packages/copal/$f" <<<"$list" ||
    fail "package lacks usr/lib/python3/dist-packages/copal/$f"
done
ok "contents"

# the programs run from the unpacked package
dpkg-deb -x "$deb" "$T/root"
for prog in copal copal-broker copal-launcher; do
  v=$("$T/root/usr/bin/$prog" --version)
  [[ $v == "$prog $want" ]] || fail "$prog --version from the package: $v"
done
# the .pc file finds its prefix where the package put it
pc=
for f in "$T"/root/usr/lib*/pkgconfig/copal-client.pc "$T"/root/usr/lib/*/pkgconfig/copal-client.pc; do
  if [[ -e $f ]]; then pc=$f; break; fi
done
[[ -n $pc ]] || fail "no copal-client.pc in the package"
libs=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --libs copal-client)
[[ $libs == *"-L$T/root/usr/lib"* ]] || fail "pkg-config from the package: $libs"
ok "programs and pkg-config from the unpacked package"
# the Python package loads the package's own client library
if /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null; then
  lib=$(cd / && PYTHONPATH=$T/root/usr/lib/python3/dist-packages \
      /usr/bin/python3 -c 'import copal._wire as w; w.library(); print(w._library_path())') ||
    fail "import copal from the unpacked package"
  [[ $lib == "$T/root/usr/lib"*/libcopal-client.so.* && -e $lib ]] ||
    fail "the packaged Python package loads $lib"
  ok "import copal from the unpacked package"
fi
echo "deb_test: all passed"
