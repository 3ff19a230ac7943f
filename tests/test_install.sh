#!/bin/sh
# Installs this build into a temporary prefix, checks what landed there, and
# builds two consumers against it, one through pkg-config and one through
# find_package(farena) (shared and static), then runs them against the
# installed farenad on a private socket.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
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
         share/farena/python/farena.py; do
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
echo "install test passed"
