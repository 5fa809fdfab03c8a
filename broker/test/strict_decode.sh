#!/bin/sh
# strict_decode.sh DIR PROTO: decodes every DIR/*.bin as a copal.Reply with
# Python's protobuf, which refuses a string field that is not valid UTF-8.
# Exit 77 when python3's protobuf module or protoc is missing.
set -eu
dir=$1 proto=$2
command -v protoc >/dev/null 2>&1 || exit 77
# Debian's python3-protobuf serves the system's python3, which a python3
# earlier in PATH (pyenv, a venv) may hide
py=
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import google.protobuf' 2>/dev/null; then
		py=$p
		break
	fi
done
[ -n "$py" ] || exit 77
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protoc --proto_path="$(dirname "$proto")" --python_out="$out" "$proto"
PYTHONPATH=$out "$py" - "$dir" <<'PY'
import glob, os, sys
import copal_pb2
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.bin")))
if not files:
    sys.exit("no replies to decode")
for f in files:
    r = copal_pb2.Reply()
    try:
        r.ParseFromString(open(f, "rb").read())
    except Exception as e:
        sys.exit("%s: %s" % (os.path.basename(f), e))
print("strict_decode: %d replies decoded" % len(files))
PY
