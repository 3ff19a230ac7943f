#!/usr/bin/env bash
# The README's run command: installs the build dependencies that are missing,
# builds farenad (RelWithDebInfo, in build/run; no test suites, so no Check
# needed) and runs it in the foreground. Arguments go to farenad:
#   scripts/run.sh                       default socket and scratch directory
#   scripts/run.sh --socket /tmp/f.sock --dir /data/scratch -v
# farenad prints the socket it listens on; Ctrl-C (SIGINT) or SIGTERM stops it
# cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build/run -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFARENA_TESTS=OFF >/dev/null
cmake --build build/run --target farenad -j"$(nproc)"
exec build/run/daemon/farenad "$@"
