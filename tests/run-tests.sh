#!/bin/sh
# Runs the Criterion suite: everything once on the default backend, then the
# ntt suites once per SIMD backend this CPU has (HESTAT_SIMD=...), so no
# backend can hide behind dispatch.
# usage: run-tests.sh TEST_BINARY HESTAT_INFO_BINARY
set -eu
tests=$1
info=$2
status=0
echo "== all tests, default backend"
"$tests" || status=1
for b in $("$info" --simd); do
    echo "== ntt tests, HESTAT_SIMD=$b"
    HESTAT_SIMD=$b "$tests" --filter 'ntt_*/*' || status=1
done
exit $status
