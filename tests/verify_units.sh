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
echo "units verified: farenad.socket farenad.service"
