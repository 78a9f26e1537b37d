#!/bin/sh
# Install hestat's build and test dependencies (Debian/Ubuntu, apt-get).
# Idempotent: does nothing when every package is already installed.
# Used by the Makefile (make test / make demo), the Dockerfile and .ci/run.
set -eu

PKGS="build-essential g++ make pkg-config clang libclang-rt-14-dev \
libgmp-dev libfftw3-dev libxxhash-dev libsodium-dev libzstd-dev zlib1g-dev libb2-dev libssl-dev \
libcriterion-dev libbenchmark-dev libmicrohttpd-dev libcurl4-openssl-dev \
libjansson-dev libomp-dev libcsv-dev libgsl-dev openssl libjs-chart.js"
# For the tests (the Python package's, the HTML report in a browser) and
# MPI (optional at build time: with libopenmpi-dev present hestat-server is
# built with MPI support, and the tests run it under mpirun); --build leaves
# them out (the Docker image's build stage: a server without MPI).
TEST_PKGS="python3 python3-numpy python3-pandas python3-pytest python3-pip python3-setuptools \
python3-wheel chromium openmpi-bin libopenmpi-dev"

quiet=0
for a in "$@"; do
    case $a in
        -q) quiet=1 ;;
        --build) TEST_PKGS= ;;
        *) echo "install-deps: usage: install-deps.sh [-q] [--build]" >&2; exit 2 ;;
    esac
done
PKGS="$PKGS $TEST_PKGS"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: this script knows Debian/Ubuntu (apt-get) only." >&2
    echo "install-deps: install by hand: $PKGS" >&2
    exit 1
fi

missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    [ "$quiet" = 1 ] || echo "install-deps: all dependencies present."
    exit 0
fi

echo "install-deps: missing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "install-deps: not root; run as root:" >&2
        echo "    apt-get update && apt-get install -y$missing" >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
echo "install-deps: installed:$missing"
