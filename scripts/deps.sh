#!/usr/bin/env bash
# Installs the Debian 12 packages farena needs, only those that are missing.
#   scripts/deps.sh          build + run the daemon
#   scripts/deps.sh test     also what the tests need (Check, clang for fuzzing,
#                            node and npm for the JavaScript client test)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libevent-dev libmsgpack-dev liburing-dev)
if [ "${1:-}" = test ]; then
    pkgs+=(check clang libclang-rt-14-dev procps python3 systemd)
    # The stock JavaScript client test runs node and installs its npm
    # packages itself. A node and npm already on PATH (nodesource, nvm)
    # will do; Debian's only when they are missing.
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        pkgs+=(nodejs npm)
    fi
    # The Python package's suites: zict's mapping checks (they import pytest),
    # a Dask LocalCluster, and `pip install --no-build-isolation` offline.
    pkgs+=(python3-zict python3-pytest python3-distributed python3-dask python3-numpy
           python3-psutil python3-pip python3-setuptools python3-wheel)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
