#!/bin/sh
# `pip install --no-build-isolation` of client/python works offline with the
# distribution's setuptools: installs a copy of the source (pip builds inside
# the tree it is given) into a temporary --target, checks what landed, and
# imports the package from there against this build's libfarena.
# Usage: test_python_pip.sh PYTHON SOURCE_DIR LIBFARENA_DIR
set -eu
py=$1
src=$2
libdir=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cp -R "$src/client/python" "$tmp/src"
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1 PIP_ROOT_USER_ACTION=ignore \
    "$py" -m pip install --no-build-isolation --no-index --no-deps --target "$tmp/site" \
    "$tmp/src" >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; exit 1; }
for f in __init__.py __init__.pyi spill.py dask.py py.typed; do
    [ -f "$tmp/site/farena/$f" ] || { echo "pip did not install farena/$f"; exit 1; }
done
[ -d "$tmp/site/farena-0.1.0.dist-info" ] || { echo "no farena-0.1.0.dist-info"; ls "$tmp/site"; exit 1; }
cd "$tmp"
PYTHONPATH="$tmp/site" LD_LIBRARY_PATH="$libdir" "$py" -c '
import os, sys
import farena, farena.spill
assert os.path.dirname(farena.__file__) == os.path.join(sys.argv[1], "farena"), farena.__file__
assert farena.SpillMapping is farena.spill.SpillMapping
print("pip install ok:", farena.__file__, "libfarena", farena.version())
' "$tmp/site"
