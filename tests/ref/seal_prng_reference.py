#!/usr/bin/env python3
"""Reference values for tests/test_seal.c (seal_prng): SEAL 4's
sample_poly_uniform from a SHAKE256-seeded generator (prng_type 2), computed
with Python's hashlib, independently of OpenSSL. (The default, BLAKE2Xb, is
checked against real SEAL's seeded files in vectors/: hashlib's BLAKE2b
cannot set the depth 0 that BLAKE2X's output nodes need.)

Run: python3 tests/ref/seal_prng_reference.py   (prints the C arrays)
Seed: bytes 0..63; moduli: three of the n8192 vectors' primes and 3*2^62 + 1, for which
a quarter of the words are rejected and redrawn (any modulus works); N = 8192."""
import hashlib
import struct

SEED = bytes(range(64))
PRIMES = [1152921504606748673, 1099510890497, (3 << 62) + 1, 1152921504606830593]
N = 8192
BUF = 4096


class Stream:
    def __init__(self, kind):
        self.kind, self.counter, self.buf = kind, 0, b""

    def take(self, n):
        while len(self.buf) < n:
            ctr = struct.pack("<Q", self.counter)
            self.buf += hashlib.shake_256(SEED + ctr).digest(BUF)
            self.counter += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def expand(kind):
    s = Stream(kind)
    words = list(struct.unpack("<%dQ" % (N * len(PRIMES)), s.take(8 * N * len(PRIMES))))
    rejected = 0
    for j, q in enumerate(PRIMES):
        bound = (2**64 - 1) - ((2**64 - 1) % q) - 1
        for i in range(N):
            r = words[j * N + i]
            while r >= bound:
                rejected += 1
                r = struct.unpack("<Q", s.take(8))[0]
            words[j * N + i] = r % q
    return words, rejected


for kind, name in ((2, "shake256"),):
    w, rej = expand(kind)
    picks = [0, 1, N - 1, N, 2 * N + 5, 3 * N + 4000, 4 * N - 1]
    xor = 0
    for x in w:
        xor ^= x
    print("/* %s: %d rejections */" % (name, rej))
    print("static const uint64_t %s_at[] = {%s};" % (name, ", ".join("%du" % w[p] for p in picks)))
    print("static const uint64_t %s_xor = %du;" % (name, xor))
