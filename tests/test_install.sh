#!/bin/sh
# Installs this build into a temporary prefix, checks what landed there, and
# builds two consumers against it, one through pkg-config and one through
# find_package(farena) (shared and static), then runs them and the installed
# Python package against the installed farenad on a private socket.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR PYTHON_DIR PYTHON CONFIGURED_PREFIX
#   PYTHON_DIR: where the package goes, relative to the prefix
#   (FARENA_PYTHON_INSTALL_DIR); PYTHON: that prefix's python3 ("" if none);
#   CONFIGURED_PREFIX: the build's CMAKE_INSTALL_PREFIX.
set -eu
build=$1
src=$2
pydir=${3:-}
py=${4:-}
configured=${5:-}
tmp=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"

# Every piece a user expects, where they expect it.
pc=$(find "$prefix" -name farena.pc)
libdir=$(dirname "$(dirname "$pc")")
for f in bin/farenad bin/farena include/farena.h \
         lib/systemd/user/farenad.socket lib/systemd/user/farenad.service \
         share/man/man8/farenad.8 share/man/man1/farena.1 \
         "$pydir/farena/__init__.py" "$pydir/farena/spill.py" "$pydir/farena/dask.py" \
         "$pydir/farena/__init__.pyi" "$pydir/farena/py.typed" "$pydir/farena/_install.py"; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
for f in libfarena.so libfarena.so.1 libfarena.a cmake/farena/farenaConfig.cmake; do
    [ -e "$libdir/$f" ] || { echo "missing after install: $libdir/$f"; exit 1; }
done
soname=$(objdump -p "$libdir/libfarena.so" | awk '/SONAME/ {print $2}')
[ "$soname" = libfarena.so.1 ] || { echo "SONAME is '$soname'"; exit 1; }
grep -q "^ExecStart=$prefix/bin/farenad\$" "$prefix/lib/systemd/user/farenad.service" ||
    { echo "farenad.service does not start the installed farenad"; exit 1; }

# Consumer 1: pkg-config (the .pc file is relocatable: move nothing, trust it).
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags farena)
libs=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --libs farena)
cc -std=c11 -Wall -Werror $cflags -o "$tmp/consumer_pc" "$src/tests/install/consumer.c" \
   $libs -Wl,-rpath,"$libdir"

# Consumer 2: find_package(farena), shared and static.
cmake -S "$src/tests/install" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_RPATH="$libdir" >"$tmp/cm.log" 2>&1 || { cat "$tmp/cm.log"; exit 1; }
cmake --build "$tmp/cm" >"$tmp/cmb.log" 2>&1 || { cat "$tmp/cmb.log"; exit 1; }

# The installed daemon on a private socket.
mkdir -m 700 "$tmp/run" "$tmp/scratch"
sock=$tmp/run/farenad.sock
"$prefix/bin/farenad" --socket "$sock" --dir "$tmp/scratch" --min-free 0 -q \
    >"$tmp/farenad.log" 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    [ $i -le 500 ] || { echo "installed farenad did not start"; cat "$tmp/farenad.log"; exit 1; }
    sleep 0.01
done

for c in "$tmp/consumer_pc" "$tmp/cm/consumer_shared" "$tmp/cm/consumer_static"; do
    out=$("$c" "$sock") || { echo "$(basename "$c") failed: $out"; exit 1; }
    case $out in ok*) echo "$(basename "$c"): $out" ;; *) echo "$c: $out"; exit 1 ;; esac
done
# The installed command works against it too.
"$prefix/bin/farena" --socket "$sock" ping >/dev/null

# The installed Python package: its directory is the one the prefix's python
# searches (checked for /usr/local, the default), and from there it finds the
# installed libfarena by itself: no LD_LIBRARY_PATH, no FARENA_LIB.
if [ -n "$py" ]; then
    # install_dir.py's answer for the interpreter's own prefix (/usr on
    # Debian: lib/python3/dist-packages) is on its sys.path too.
    own=$("$py" -c 'import sys; print(sys.prefix)')
    rel=$("$py" "$src/client/python/install_dir.py" "$own")
    "$py" -c 'import sys; sys.exit(sys.argv[1] not in sys.path)' "$own/$rel" ||
        { echo "$own/$rel is not on $py's sys.path"; exit 1; }
    if [ "$configured" = /usr/local ]; then
        "$py" -c 'import sys; sys.exit(sys.argv[1] not in sys.path)' "/usr/local/$pydir" ||
            { echo "/usr/local/$pydir is not on $py's sys.path"; exit 1; }
    fi
    # Does the dynamic loader find a system-wide libfarena.so.1 (which then
    # comes first)? Only if not can the installed one be required.
    system_lib=$(env -u LD_LIBRARY_PATH "$py" -c 'import ctypes
try:
    ctypes.CDLL("libfarena.so.1"); print(1)
except OSError:
    print(0)')
    out=$(cd "$tmp" && env -u LD_LIBRARY_PATH -u FARENA_LIB PYTHONPATH="$prefix/$pydir" \
          FARENA_SOCKET="$sock" "$py" -c '
import os, sys
import farena
assert farena.__file__.startswith(sys.argv[1]), farena.__file__
with farena.SpillMapping() as m:
    m["k"] = b"installed"
    assert m["k"] == b"installed"
print(farena.library_path)
' "$prefix/$pydir") || { echo "the installed Python package failed: $out"; exit 1; }
    if [ "$system_lib" = 0 ]; then
        [ "$(realpath "$out")" = "$(realpath "$libdir/libfarena.so.1")" ] ||
            { echo "the installed package loaded $out, not $libdir/libfarena.so.1"; exit 1; }
    fi
    echo "python: $pydir/farena loads $out"
fi
echo "install test passed"
