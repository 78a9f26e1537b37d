#!/bin/sh
# Builds and runs hestat-vs-hexl (bench/anchors/hexl_compare.cc): hestat's NTT
# and element-wise kernels side by side with Intel HEXL's, interleaved in one
# process. HEXL is not part of hestat: build and install it yourself (e.g.
# HEXL 1.2.5 with CMAKE_BUILD_TYPE=Release and -O3 -march=native) and pass its
# install prefix.
#
#   scripts/bench-anchors.sh HEXL_PREFIX [hestat-vs-hexl options: --n N --rounds R --batch-us US]
set -eu
if [ $# -lt 1 ] || [ ! -f "$1/include/hexl/hexl.hpp" ]; then
    echo "usage: $0 HEXL_PREFIX [--n N] [--rounds R] [--batch-us US]" >&2
    echo "  HEXL_PREFIX: a HEXL install (with include/hexl/hexl.hpp and lib/libhexl.a)" >&2
    exit 2
fi
HEXL=$1
shift
BUILD=${BUILD:-build}
CXX=${CXX:-g++}
make --no-print-directory -j2 "$BUILD/lib/libhestat.a" >&2
mkdir -p "$BUILD/bench"
LIBDIR=$HEXL/lib
[ -f "$LIBDIR/libhexl.a" ] || LIBDIR=$HEXL/lib64
$CXX -O3 -march=native -std=c++17 -Wall -Wextra -Werror -I. -I"$HEXL/include" \
    -o "$BUILD/bench/hestat-vs-hexl" bench/anchors/hexl_compare.cc \
    "$BUILD/lib/libhestat.a" "$LIBDIR/libhexl.a" \
    $(pkg-config --libs gmp fftw3 libsodium libxxhash libzstd 2>/dev/null || echo -lgmp -lfftw3 -lsodium -lxxhash -lzstd) \
    -fopenmp -lpthread -lm
exec "$BUILD/bench/hestat-vs-hexl" "$@"
