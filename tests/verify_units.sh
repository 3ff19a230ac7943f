#!/bin/sh
# Verifies farena's systemd user units with systemd-analyze (the copies
# generated for this build tree, whose ExecStart names a real binary).
# Any diagnostic counts as a failure. Exit 77 (CTest: skipped) with a visible
# SKIP line where systemd-analyze is absent.
set -u
unitdir=$1
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not found; units not verified"
    exit 77
fi
rt=$(mktemp -d)
trap 'rm -rf "$rt"' EXIT
chmod 700 "$rt"
# A user manager needs a runtime directory; a private one keeps this hermetic.
out=$(XDG_RUNTIME_DIR=$rt systemd-analyze verify --user --man=no \
      "$unitdir/farenad.socket" "$unitdir/farenad.service" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    echo "systemd-analyze verify failed (exit $rc):"
    echo "$out"
    exit 1
fi
# The service's system-call filter must let the I/O engine run: every call
# it makes must be in the allowed set and in none of the denied ones. (No
# systemd runs as PID 1 on the test machines, so the unit cannot be started
# under its sandbox here; this checks the filter's resolved sets instead.)
svc=$unitdir/farenad.service
allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$svc")
deny=$(sed -n 's/^SystemCallFilter=~\(.*\)/\1/p' "$svc")
# Prints the system calls of each argument: a call, or a @set (recursively:
# a set lists other sets).
expand() {
    for set in "$@"; do
        case $set in
        @*) expand $(systemd-analyze syscall-filter "$set" 2>/dev/null |
                     sed -n '2,$s/^ *\([@a-z_0-9-]*\)$/\1/p') ;;
        *) echo "$set" ;;
        esac
    done
}
allowed=$(expand $allow)
denied=$(expand $deny)
for call in io_uring_setup io_uring_enter io_uring_register eventfd2 preadv2 pread64 \
            pwritev ftruncate fdatasync clone3 futex pipe2 splice fcntl; do
    if ! echo "$allowed" | grep -qx "$call"; then
        echo "farenad.service: SystemCallFilter does not allow $call (the I/O engine needs it)"
        exit 1
    fi
    if echo "$denied" | grep -qx "$call"; then
        echo "farenad.service: SystemCallFilter denies $call (the I/O engine needs it)"
        exit 1
    fi
done
echo "units verified: farenad.socket farenad.service (the engine's system calls are allowed)"
