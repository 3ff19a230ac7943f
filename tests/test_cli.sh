#!/bin/sh
# The farena command against a private farenad: put, get, info, ls, rm
# round trips, --json output, the warning of an unnamed put, exit statuses and error messages.
# usage: test_cli.sh FARENA FARENAD
set -u
farena=$1
farenad=$2

dir=$(mktemp -d "${TMPDIR:-/tmp}/farena-cli-XXXXXX") || exit 1
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

# Runs the command, keeping stdout, stderr and the exit status.
run() {
    "$farena" "$@" >"$dir/out" 2>"$dir/err"
    status=$?
}

# Expects the last run's exit status.
expect_status() {
    if [ "$status" -ne "$1" ]; then
        fail "$2: exit status $status, expected $1 (stderr: $(cat "$dir/err"))"
    fi
}

mkdir "$dir/scratch"
sock=$dir/farenad.sock
"$farenad" --socket "$sock" --dir "$dir/scratch" --min-free 0 >"$dir/farenad.log" 2>&1 &
pid=$!
export FARENA_SOCKET="$sock"

# Wait (bounded) until it answers.
i=0
until "$farena" --timeout 1000 ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then
        echo "FAIL: farenad did not start" >&2
        cat "$dir/farenad.log" >&2
        exit 1
    fi
    sleep 0.05
done

# ping and stat
run ping
expect_status 0 "ping"
grep -q '^farenad ' "$dir/out" || fail "ping output: $(cat "$dir/out")"
run stat
expect_status 0 "stat"
grep -q "^pid	$pid\$" "$dir/out" || fail "stat has no pid line for $pid"

# put --name, two files (one binary), then get both by name and by handle.
printf 'hello, farena\n' >"$dir/a.txt"
head -c 100000 /dev/urandom >"$dir/b.bin"
run put --name cli-test "$dir/a.txt" "$dir/b.bin"
expect_status 0 "put --name"
[ -s "$dir/err" ] && fail "put --name wrote to stderr: $(cat "$dir/err")"
arena=$(sed -n 1p "$dir/out")
loc_a=$(awk -F '\t' -v f="$dir/a.txt" '$1 == f { print $2 }' "$dir/out")
loc_b=$(awk -F '\t' -v f="$dir/b.bin" '$1 == f { print $2 }' "$dir/out")
case $arena in '' | *[!0-9]*) fail "put printed '$arena' as the arena handle" ;; esac
[ "$loc_a" = "0:0:14" ] || fail "a.txt location '$loc_a', expected 0:0:14"
[ "$loc_b" = "0:14:100000" ] || fail "b.bin location '$loc_b', expected 0:14:100000"

run get cli-test "$loc_a" "$loc_b"
expect_status 0 "get by name"
cat "$dir/a.txt" "$dir/b.bin" >"$dir/both"
cmp -s "$dir/out" "$dir/both" || fail "get by name returned other bytes"
run get "$arena" "$loc_b"
expect_status 0 "get by handle"
cmp -s "$dir/out" "$dir/b.bin" || fail "get by handle returned other bytes"

# info by name
run info cli-test
expect_status 0 "info"
grep -q "^arena	$arena\$" "$dir/out" || fail "info: no arena line"
grep -q '^files	1$' "$dir/out" || fail "info: no 'files 1' line"
grep -q '^bytes	100014$' "$dir/out" || fail "info: bytes"
grep -q '^name	cli-test$' "$dir/out" || fail "info: name"
grep -q '^file 0	[0-9][0-9]*$' "$dir/out" || fail "info: file handle"

# put from stdin, names made of digits with the = prefix
printf 'from stdin' | "$farena" put --name 12345 - >"$dir/out" 2>"$dir/err"
status=$?
expect_status 0 "put from stdin"
run get =12345 0:0:10
expect_status 0 "get =NAME"
[ "$(cat "$dir/out")" = "from stdin" ] || fail "stdin payload: $(cat "$dir/out")"
run rm =12345
expect_status 0 "rm =NAME"

# put without --name warns, and the arena is gone once the command exits.
run put "$dir/a.txt"
expect_status 0 "unnamed put"
grep -q 'warning' "$dir/err" || fail "unnamed put did not warn"
gone=$(sed -n 1p "$dir/out")
run get "$gone" 0:0:14
expect_status 1 "get from an unnamed put's arena"
grep -q 'FARENA_ENOSUCHHANDLE' "$dir/err" || fail "get of a freed arena: $(cat "$dir/err")"

# Refusals by the daemon: exit 1 with the code's name.
run get cli-test 0:99999999:1
expect_status 1 "get out of bounds"
grep -q 'FARENA_EOUTOFBOUNDS' "$dir/err" || fail "out of bounds message: $(cat "$dir/err")"
run put --name cli-test "$dir/a.txt"
expect_status 1 "put with a taken name"
grep -q 'FARENA_ENAMETAKEN' "$dir/err" || fail "name taken message: $(cat "$dir/err")"

# stdout errors. A reader that goes away early (| head) ends the command
# with status 4 and no message, never by SIGPIPE (status 141).
st=$( ( "$farena" get cli-test "$loc_b" "$loc_b" "$loc_b" 2>"$dir/err"; echo $? >"$dir/st") |
    head -c 1 >/dev/null; cat "$dir/st")
[ "$st" = 4 ] || fail "get | head -c 1: exit status $st, expected 4"
[ -s "$dir/err" ] && fail "get | head -c 1 wrote to stderr: $(cat "$dir/err")"
# Any other stdout failure: status 4 and a message, for every command.
if [ -w /dev/full ]; then
    for cmd in "ping" "stat" "info cli-test" "get cli-test $loc_a" "--help" "--version"; do
        # shellcheck disable=SC2086 # cmd is split into words on purpose
        "$farena" $cmd >/dev/full 2>"$dir/err"
        status=$?
        expect_status 4 "$cmd >/dev/full"
        grep -q 'stdout' "$dir/err" || fail "$cmd >/dev/full: no message: $(cat "$dir/err")"
    done
fi

# rm, then the name is gone.
run rm cli-test
expect_status 0 "rm"
run rm cli-test
expect_status 1 "rm twice"
run get cli-test "$loc_a"
expect_status 1 "get after rm"
grep -q 'FARENA_ENOSUCHNAME' "$dir/err" || fail "get after rm: $(cat "$dir/err")"
run info cli-test
expect_status 1 "info after rm"

# Usage errors: exit 2, nothing sent.
run
expect_status 2 "no command"
run frobnicate
expect_status 2 "unknown command"
run get cli-test
expect_status 2 "get without LOC"
run get cli-test 1:2
expect_status 2 "malformed LOC"
run get cli-test 70000:0:1
expect_status 2 "file index above 65535"
run put
expect_status 2 "put without FILE"
run put --name
expect_status 2 "put --name without NAME"
run rm
expect_status 2 "rm without NAME"
run --timeout abc ping
expect_status 2 "bad --timeout"
run --help
expect_status 0 "--help"
grep -q 'Exit status' "$dir/out" || fail "--help does not document exit statuses"
run --version
expect_status 0 "--version"

# A local file that cannot be read: exit 4.
run put "$dir/missing"
expect_status 4 "put of a missing file"

# --socket overrides FARENA_SOCKET; no daemon there: exit 3.
run --socket "$dir/none.sock" ping
expect_status 3 "no daemon"
grep -q 'FARENA_ECONNECT' "$dir/err" || fail "no daemon message: $(cat "$dir/err")"
FARENA_SOCKET="$dir/none.sock" "$farena" --socket "$sock" ping >/dev/null 2>&1 ||
    fail "--socket did not override FARENA_SOCKET"

# ls: the bound names in byte order, NAME ARENA BYTES FILES REFS; --json
# for ls, stat and info (checked by Python's json parser).
printf 'abc' >"$dir/c.txt"
for n in ls/b ls/a 'ls/q"x' lt; do
    run put --name "$n" "$dir/c.txt"
    expect_status 0 "put --name $n"
    [ "$n" = 'ls/q"x' ] && qx=$(sed -n 1p "$dir/out")
done
run ls ls/
expect_status 0 "ls ls/"
[ "$(cut -f 1 "$dir/out" | tr '\n' ' ')" = 'ls/a ls/b ls/q"x ' ] ||
    fail "ls ls/ names: $(cat "$dir/out")"
awk -F '\t' -v a="$qx" 'NR == 3 && !($2 == a && $3 == 3 && $4 == 1 && $5 == 1) { exit 1 }' \
    "$dir/out" || fail "ls ls/ columns: $(cat "$dir/out")"
run ls
expect_status 0 "ls"
[ "$(cut -f 1 "$dir/out" | tr '\n' ' ')" = 'ls/a ls/b ls/q"x lt ' ] ||
    fail "ls names: $(cat "$dir/out")"
run ls -- nomatch
expect_status 0 "ls of a prefix nothing has"
[ -s "$dir/out" ] && fail "ls nomatch printed: $(cat "$dir/out")"
run ls a b
expect_status 2 "ls with two prefixes"
if command -v python3 >/dev/null; then
    json_ok() { # FILE PYTHON-EXPRESSION-OVER-d
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"
    }
    run ls --json ls/
    expect_status 0 "ls --json"
    json_ok "$dir/out" '[e["name"] for e in d] == ["ls/a", "ls/b", "ls/q\"x"] and
        d[2] == {"name": "ls/q\"x", "arena": '"$qx"', "bytes": 3, "files": 1, "refs": 1}' ||
        fail "ls --json: $(cat "$dir/out")"
    run ls --json nomatch
    json_ok "$dir/out" 'd == []' || fail "ls --json of nothing: $(cat "$dir/out")"
    run stat --json
    expect_status 0 "stat --json"
    json_ok "$dir/out" 'd["pid"] == '"$pid"' and d["names"] == 4 and d["arenas"] == 4 and
        d["requests"]["list"] >= 4 and d["errors"]["list"] == 0 and
        d["requests_total"] == sum(d["requests"].values())' ||
        fail "stat --json: $(cat "$dir/out")"
    run info --json 'ls/q"x'
    expect_status 0 "info --json"
    json_ok "$dir/out" 'd["arena"] == '"$qx"' and d["name"] == "ls/q\"x" and
        d["bytes"] == 3 and d["refs"] == 1 and len(d["file_handles"]) == 1' ||
        fail "info --json: $(cat "$dir/out")"
else
    fail "python3 is needed to check --json output"
fi
run stat --json extra
expect_status 2 "stat with an argument"
if [ -w /dev/full ]; then
    for cmd in "ls" "ls --json" "stat --json" "info --json lt"; do
        # shellcheck disable=SC2086 # cmd is split into words on purpose
        "$farena" $cmd >/dev/full 2>"$dir/err"
        status=$?
        expect_status 4 "$cmd >/dev/full"
    done
fi
for n in ls/b ls/a 'ls/q"x' lt; do
    run rm "$n"
    expect_status 0 "rm $n"
done

# The daemon stops: later commands cannot reach it.
kill "$pid"
wait "$pid"
pid=
run ping
expect_status 3 "ping after the daemon stopped"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed" >&2
    exit 1
fi
echo "ok: farena command line"
