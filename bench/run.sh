#!/usr/bin/env bash
# Benchmarks farenad side by side with Redis, memcached and the floors.
#
#   bench/run.sh [--quick] [--cold | --no-cold] [--cold-bytes BYTES] [--pin]
#                [--pin-cpu N] [--seed N] [--out FILE] [--rounds N] [--seconds S]
#                [--build-dir DIR] [--no-install] [-- farena-bench options...]
#
# Builds farenad and farena-bench in Release (build/release), unless
# --build-dir names a build dir that already has both. Starts farenad,
# redis-server and memcached (plus a memcached with extstore for the memory
# section) on private Unix sockets in a temp dir, installing the Debian
# packages redis-server and memcached when missing (a peer that cannot be had
# is skipped with a note in the report), runs the matrix with the targets
# interleaved cell by cell, stops every server it started by pid, and writes
# a markdown report (default bench/out/report-DATE.md, raw TSV beside it).
#
# The cold section runs last, against a farenad of its own: cold 4 KiB and
# 1 MiB gets against a threaded in-process pread floor, hot-get latency alone
# and under cold readers or a push stream, and farenad's syscalls per
# pipelined get (perf and/or strace, when they can attach). It needs no root:
# it evicts farenad's files through /proc/PID/fd. It stores about twice
# --cold-bytes on the scratch filesystem while it runs (the dataset, then a
# push stream of that size; a third copy only if the floor cannot read
# farenad's own file), and frees it all at the end. With --pin the floor's
# threads share the one CPU too.
#
#   --quick       one round, small matrix, short measurements (< 2 minutes)
#   --cold        the cold section alone (no Redis or memcached needed)
#   --no-cold     skip the cold section
#   --cold-bytes B  the cold dataset, up to 4095M (default 2G; --quick 64M)
#   --pin         run every server and the client on one CPU (taskset): the
#                 numbers then measure CPU work, not cross-CPU wake-ups
#   --pin-cpu N   the CPU for --pin (default: the last one)
#   --no-install  never install packages (CTest uses this)
#   -- ...        the rest goes to farena-bench (e.g. -- --sizes 64 --depths 16)#
# $FARENAD_ARGS, if set, is added to every farenad's command line (for
# example FARENAD_ARGS="--io-engine threads" to measure the fallback engine).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
quick=0 pin=0 pin_cpu="" seed=1 out="" rounds="" seconds="" build_dir="" no_install=0
cold=1 cold_only=0 cold_bytes=""
passthru=()
orig_args="$*"

die() { echo "run.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --cold) cold=1; cold_only=1 ;;
    --no-cold) cold=0; cold_only=0 ;;
    --cold-bytes) cold_bytes=${2:?}; shift ;;
    --pin) pin=1 ;;
    --pin-cpu) pin=1; pin_cpu=${2:?}; shift ;;
    --seed) seed=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --seconds) seconds=${2:?}; shift ;;
    --build-dir) build_dir=${2:?}; shift ;;
    --no-install) no_install=1 ;;
    --) shift; passthru=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

notes=()
note() { notes+=("$1"); echo "run.sh: $1" >&2; }

# ---- build ----
if [ -z "$build_dir" ]; then
    build_dir="$root/build/release"
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFARENA_TESTS=OFF >/dev/null
    cmake --build "$build_dir" --target farena-bench farenad -j2 >/dev/null
fi
find_bin() { find "$build_dir" -name "$1" -type f -perm -u+x -not -path '*/CMakeFiles/*' | head -n1; }
farenad=$(find_bin farenad)
bench=$(find_bin farena-bench)
[ -n "$bench" ] || die "no farena-bench under $build_dir"

# ---- peers ----
install_pkgs() {
    [ "$no_install" = 1 ] && return 1
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null || return 1
        sudo="sudo -n"
    fi
    echo "run.sh: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null 2>&1 && return 0
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null 2>&1
}
if [ "$cold_only" = 0 ]; then
    command -v redis-server >/dev/null || install_pkgs redis-server || true
    command -v memcached >/dev/null || install_pkgs memcached || true
fi

# ---- places ----
sockdir=$(mktemp -d /tmp/farena-bench.XXXXXX)
scratch_base=${FARENA_BENCH_SCRATCH:-${TMPDIR:-/var/tmp}}
scratch=$(mktemp -d "$scratch_base/farena-bench-scratch.XXXXXX")

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$sockdir" "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(stat -f -c %T "$scratch")" = tmpfs ]; then
    note "the scratch dir $scratch is on tmpfs: farena's 'disk' is RAM here"
    # Nothing on tmpfs can be evicted to disk: the cold section would measure RAM.
    [ "$cold_only" = 1 ] && die "the cold section needs a scratch dir on a disk, not tmpfs (set FARENA_BENCH_SCRATCH)"
    [ "$cold" = 1 ] && note "cold section skipped: its scratch dir is on tmpfs"
    cold=0
fi

pin_cmd=()
bench_pin=()
if [ "$pin" = 1 ]; then
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    [ -n "$pin_cpu" ] || pin_cpu=$(($(nproc) - 1))
    pin_cmd=(taskset -c "$pin_cpu")
    bench_pin=(--server-cpu "$pin_cpu")
fi

# Waits until the socket $1 exists (the server $2 still alive).
wait_sock() {
    for _ in $(seq 100); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

args=()
if [ "$quick" = 1 ]; then
    rss_bytes=$((256 << 20))
else
    rss_bytes=$((2 << 30))
fi

daemons=()
[ "$cold_only" = 0 ] && daemons+=(matrix mem)
[ "$cold" = 1 ] && daemons+=(cold)
if [ -n "$farenad" ]; then
    for which in "${daemons[@]}"; do
        sock="$sockdir/farenad-$which.sock"
        # shellcheck disable=SC2086 # FARENAD_ARGS is a list of options
        "${pin_cmd[@]}" "$farenad" --socket "$sock" --dir "$scratch" --quiet ${FARENAD_ARGS:-} \
            2>"$sockdir/farenad-$which.log" &
        pid=$!
        pids+=("$pid")
        if wait_sock "$sock" "$pid"; then
            case "$which" in
            matrix) args+=(--farena "$sock") ;;
            mem) args+=(--farena-mem "$sock") ;;
            cold) args+=(--farena-cold "$sock") ;;
            esac
        else
            note "farenad ($which) did not start: $(tail -n3 "$sockdir/farenad-$which.log" | tr '\n' ' ')"
        fi
    done
    if [ "$cold_only" = 1 ]; then
        note "farenad $("$farenad" --version 2>&1 | head -n1), scratch on $(stat -f -c %T "$scratch") ($(df -P "$scratch" | awk 'NR==2 {print $1}'))"
    else
        note "farenad $("$farenad" --version 2>&1 | head -n1), one event loop, scratch on $(stat -f -c %T "$scratch"); the memory and many-files sections use a second, fresh farenad$([ "$cold" = 1 ] && echo ", the cold section a third")"
    fi
else
    [ "$cold_only" = 1 ] && die "farenad is not built: the cold section needs it"
    note "farenad is not built yet: farena columns are empty"
fi

if [ "$cold_only" = 1 ]; then
    :
elif command -v redis-server >/dev/null; then
    sock="$sockdir/redis.sock"
    "${pin_cmd[@]}" redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
        --save '' --appendonly no --dir "$sockdir" --daemonize no \
        --logfile "$sockdir/redis.log" &
    pid=$!
    pids+=("$pid")
    if wait_sock "$sock" "$pid"; then
        args+=(--redis "$sock")
        note "$(redis-server --version | cut -d' ' -f1-3), persistence off, one main thread"
    else
        note "redis-server did not start: Redis columns are empty"
    fi
else
    note "redis-server is not installed and could not be installed: Redis columns are empty"
fi

if [ "$cold_only" = 1 ]; then
    :
elif command -v memcached >/dev/null; then
    mcuser=()
    [ "$(id -u)" -eq 0 ] && mcuser=(-u root)
    sock="$sockdir/memcached.sock"
    "${pin_cmd[@]}" memcached -s "$sock" -a 0700 -m 1024 -I 2m -t 1 -c 1024 "${mcuser[@]}" \
        2>"$sockdir/memcached.log" &
    pid=$!
    pids+=("$pid")
    if wait_sock "$sock" "$pid"; then
        args+=(--memcached "$sock")
        note "$(memcached -V) with -t 1 (one worker thread, like farenad's one loop), -m 1024, -I 2m"
    else
        note "memcached did not start: memcached columns are empty"
    fi
    mchelp=$(memcached -h 2>/dev/null || true)
    if grep -q ext_path <<<"$mchelp"; then
        sock="$sockdir/memcached-ext.sock"
        ext_size=$(( (rss_bytes * 3 / 2) >> 20 ))M
        "${pin_cmd[@]}" memcached -s "$sock" -a 0700 -m 64 -I 2m -t 1 -c 64 "${mcuser[@]}" \
            -o "ext_path=$scratch/extstore:$ext_size,ext_threads=1" \
            2>"$sockdir/memcached-ext.log" &
        pid=$!
        pids+=("$pid")
        if wait_sock "$sock" "$pid"; then
            args+=(--memcached-ext "$sock")
            note "memcached extstore instance for the memory section: -m 64, ext_path on the scratch filesystem ($ext_size)"
        else
            note "memcached with extstore did not start: $(tail -n2 "$sockdir/memcached-ext.log" | tr '\n' ' ')"
        fi
    else
        note "this memcached build has no extstore: its memory row is skipped"
    fi
else
    note "memcached is not installed and could not be installed: memcached columns are empty"
fi

# ---- run ----
[ -n "$out" ] || { mkdir -p "$here/out"; out="$here/out/report-$(date -u +%Y%m%d-%H%M%S).md"; }
raw="${out%.md}.tsv"
[ "$quick" = 1 ] && args+=(--quick)
[ "$cold_only" = 1 ] && args+=(--cold-only)
[ -n "$cold_bytes" ] && args+=(--cold-bytes "$cold_bytes")
[ -n "$rounds" ] && args+=(--rounds "$rounds")
[ -n "$seconds" ] && args+=(--seconds "$seconds")
[ "$pin" = 1 ] && note "pinned: servers, the socket floor and the client all on CPU $pin_cpu"
for n in "${notes[@]}"; do
    args+=(--note "$n")
done
"${pin_cmd[@]}" "$bench" "${args[@]}" "${bench_pin[@]}" --seed "$seed" --scratch "$scratch" \
    --rss-bytes "$rss_bytes" --out "$out" --raw "$raw" "${passthru[@]}" \
    --command "bench/run.sh${orig_args:+ $orig_args}"
[ -s "$out" ] || die "no report was written to $out"
echo "run.sh: report in $out"
