#!/usr/bin/env bash
# Bounded fuzz smoke run of the protocol scanner and codec (libFuzzer).
#   scripts/fuzz.sh [SECONDS]      default 60
# Builds the `fuzz` preset (clang, build/fuzz), runs fuzz_scan_decode for
# SECONDS on a scratch copy of tests/fuzz/corpus, prints libFuzzer's totals,
# and exits non-zero on a crash (the crashing input is kept in build/fuzz/).
# Without clang it fails: scripts/deps.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found (scripts/deps.sh installs it)" >&2
    exit 1
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target fuzz_scan_decode -j"$(nproc)" >/dev/null
bin="$PWD/build/fuzz/tests/fuzz_scan_decode"
keep="$PWD/build/fuzz/findings"

work="$(mktemp -d "${TMPDIR:-/tmp}/farena-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R tests/fuzz/corpus "$work/corpus"

echo "fuzz: fuzz_scan_decode for ${secs}s on $(find "$work/corpus" -type f | wc -l) seeds"
set +e
"$bin" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=5 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
rc=$?
set -e

execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)"
rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)"
echo "fuzz: executions: ${execs:-?}, exec/s: ${rate:-?}, exit status: $rc"

if [ "$rc" -ne 0 ]; then
    mkdir -p "$keep"
    found=0
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
        [ -e "$f" ] || continue
        cp "$f" "$keep/"
        echo "fuzz: finding kept: $keep/$(basename "$f")"
        found=1
    done
    tail -n 60 "$work/log" >&2
    [ "$found" -eq 1 ] || echo "fuzz: libFuzzer failed without an artifact" >&2
    echo "fuzz: FAILED (reproduce: $bin <input>)" >&2
    exit 1
fi
