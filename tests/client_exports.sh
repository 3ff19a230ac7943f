#!/bin/sh
# libfarena.so exports only farena_* symbols (everything else is built
# hidden) and carries the SONAME of its ABI major.
# usage: client_exports.sh LIBFARENA_SO WANTED_SONAME
set -eu
lib=$1
want_soname=$2

syms=$(nm -D --defined-only "$lib" | awk 'NF == 3 { print $3 }')
if [ -z "$syms" ]; then
    echo "FAIL: $lib exports nothing" >&2
    exit 1
fi
bad=$(printf '%s\n' "$syms" | grep -v '^farena_' || true)
if [ -n "$bad" ]; then
    echo "FAIL: $lib exports symbols outside the farena_ prefix:" >&2
    printf '%s\n' "$bad" >&2
    exit 1
fi
for f in farena_connect farena_close farena_push_many farena_get_many_into farena_version; do
    if ! printf '%s\n' "$syms" | grep -qx "$f"; then
        echo "FAIL: $f is not exported" >&2
        exit 1
    fi
done
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
if [ "$soname" != "$want_soname" ]; then
    echo "FAIL: SONAME is '$soname', expected '$want_soname'" >&2
    exit 1
fi
echo "ok: $(printf '%s\n' "$syms" | wc -l) farena_* symbols exported, SONAME $soname"
