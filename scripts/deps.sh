#!/usr/bin/env bash
# Install the Debian 12 packages copal needs to build, test and run.
# Checks with dpkg-query first: when everything is present it does nothing
# (no apt-get update, no root needed). Otherwise it installs them: as root
# directly, as another user through sudo (which asks for a password if
# sudo is set up so).
set -euo pipefail

PACKAGES=(
  build-essential
  cmake
  pkg-config
  # the clang tree of scripts/test.sh; file is what cpack -G DEB uses to
  # find the programs whose shared libraries it declares (dpkg-shlibdeps,
  # in dpkg-dev)
  clang
  file
  dpkg-dev
  liblmdb-dev
  lmdb-utils
  libnng-dev
  libprotobuf-c-dev
  protobuf-c-compiler
  uuid-dev
  libcmocka-dev
  libjansson-dev
  # the broker's request digests (SHA-256)
  libssl-dev
  # launcher tests (launcher/test): mpirun for the mpi mode, jq to read
  # copal ls --format json, ps/pgrep to check for processes left behind
  openmpi-bin
  jq
  procps
  # Slurm tests (scripts/slurm.sh): a real single-node Slurm 22.05 with
  # munge auth; slurm-wlm-basic-plugins (a dependency) holds every plugin
  # slurm.sh configures, so --no-install-recommends is enough; ip (iproute2)
  # adds 127.0.0.2 to lo
  slurmctld
  slurmd
  slurm-client
  munge
  iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  if [[ "$status" != ii* ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "deps.sh: missing packages: ${missing[*]}" >&2
# apt-get as root: directly when we are root (a container or a fresh VM
# has no sudo), else through sudo
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps.sh: error: installing them needs root, and sudo is not installed; run this as root" >&2
    exit 1
  fi
  SUDO=(sudo DEBIAN_FRONTEND=noninteractive)
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Quiet: apt's and dpkg's progress go to a log shown only if a step fails.
if ! "${SUDO[@]}" apt-get update -qq >"$log" 2>&1 ||
   ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >>"$log" 2>&1; then
  cat "$log" >&2
  echo "deps.sh: error: apt-get failed (see above)" >&2
  exit 1
fi
echo "deps.sh: installed: ${missing[*]}" >&2
