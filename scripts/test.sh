#!/usr/bin/env bash
# The test command: installs what is missing, then configures, builds and runs
# every test in the dev build and in the ASan+UBSan build, then a bounded fuzz
# smoke run of the protocol scanner (clang, installed by deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test
cmake --workflow --preset dev
cmake --workflow --preset asan
scripts/fuzz.sh "${FARENA_FUZZ_SECONDS:-60}"
