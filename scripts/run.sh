#!/usr/bin/env bash
# The main job: install dependencies, build a Release tree in build-rel/,
# then run a local campaign on the embedded default (a local broker and
# launcher, no batch scheduler): scripts/campaign.sh.
# COPAL_CMAKE_ARGS (optional) adds CMake options; scripts/test.sh sets
# -DCOPAL_WERROR=ON with it, so CI runs this very script.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
JOBS=${JOBS:-2}

bash scripts/deps.sh

# shellcheck disable=SC2086
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DCOPAL_SANITIZE=OFF -DCOPAL_TESTS=OFF \
  ${COPAL_CMAKE_ARGS:-}
cmake --build build-rel -j"$JOBS"

exec bash scripts/campaign.sh build-rel
