#!/usr/bin/env bash
# The main job: install dependencies, build a Release tree in build-rel/,
# then run a local campaign on the embedded default (a local broker and
# launcher, no batch scheduler): scripts/campaign.sh.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
JOBS=${JOBS:-2}

bash scripts/deps.sh

cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DCOPAL_SANITIZE=OFF -DCOPAL_TESTS=OFF
cmake --build build-rel -j"$JOBS"

exec bash scripts/campaign.sh build-rel
