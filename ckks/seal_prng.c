/*
 * SEAL's seeded objects: the uniform polynomial that SEAL 4.x regenerates
 * from a 64-byte public seed (its UniformRandomGeneratorInfo), bit for bit.
 *
 * What SEAL 4 does, read from its sources (randomgen.cpp, util/rlwe.cpp):
 * - The generator is a byte stream cut into 4096-byte buffers. Buffer number
 *   c (c = 0, 1, ...) is, for prng_type blake2xb (1, the default),
 *   BLAKE2Xb(out length 4096, input = c as a little-endian u64, key = seed);
 *   for prng_type shake256 (2), SHAKE256(seed || c as a little-endian u64)
 *   cut to 4096 bytes.
 * - sample_poly_uniform fills the destination (np primes x N words, prime
 *   major) with the first 8*np*N bytes of the stream, then walks it prime by
 *   prime, coefficient by coefficient: a word r >= 2^64 - 1 - ((2^64 - 1)
 *   mod q) - 1 is replaced by the next 8 bytes of the stream (until one is
 *   below that bound), and the coefficient is r mod q.
 * BLAKE2b comes from libb2 (BLAKE2Xb is BLAKE2b with its XOF parameter block,
 * built below); SHAKE256 from OpenSSL's libcrypto. Nothing here is secret:
 * the seed is public, the output is a public polynomial.
 */
#include <blake2.h>
#include <sodium.h>
#include <openssl/evp.h>
#include <string.h>

#include "ckks_impl.h"

#define BUF_BYTES 4096

typedef struct {
    int type;
    uint8_t seed[CKKS_SEAL_SEED_BYTES];
    uint64_t counter;
    uint8_t buf[BUF_BYTES];
    size_t head;
} stream_t;

/* libb2 0.98 lays the parameter block out as BLAKE2b's original one: its
 * 64-bit node_offset covers the bytes where BLAKE2X puts a 32-bit
 * node_offset and then the 32-bit XOF length (both little-endian). */
static void xof_param(blake2b_param *p, uint8_t digest, uint8_t key, uint8_t fanout, uint8_t depth,
                      uint32_t leaf, uint32_t node, uint32_t xof_len, uint8_t inner)
{
    memset(p, 0, sizeof *p);
    p->digest_length = digest;
    p->key_length = key;
    p->fanout = fanout;
    p->depth = depth;
    p->leaf_length = leaf;
    p->node_offset = (uint64_t)node | (uint64_t)xof_len << 32;
    p->inner_length = inner;
}

/* BLAKE2Xb (out <= 64 * 2^32 bytes): a keyed root hash H0 of the input with
 * the XOF length in its parameters, then output block i = BLAKE2b(H0) with
 * node offset i, leaf and inner length 64, digest length min(64, rest). */
static int blake2xb(uint8_t *out, size_t outlen, const void *in, size_t inlen, const uint8_t *key, size_t keylen)
{
    blake2b_param p;
    blake2b_state s;
    uint8_t root[64], block[128];
    xof_param(&p, 64, (uint8_t)keylen, 1, 1, 0, 0, (uint32_t)outlen, 0);
    if (blake2b_init_param(&s, &p)) return -1;
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    int rc = blake2b_update(&s, block, sizeof block) || blake2b_update(&s, in, inlen) || blake2b_final(&s, root, 64);
    for (size_t i = 0; rc == 0 && i * 64 < outlen; i++) {
        size_t take = outlen - i * 64 < 64 ? outlen - i * 64 : 64;
        xof_param(&p, (uint8_t)take, 0, 0, 0, 64, (uint32_t)i, (uint32_t)outlen, 64);
        rc = blake2b_init_param(&s, &p) || blake2b_update(&s, root, 64) || blake2b_final(&s, out + i * 64, take);
    }
    sodium_memzero(block, sizeof block);
    return rc ? -1 : 0;
}

static int shake256(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_shake256(), NULL) && EVP_DigestUpdate(c, in, inlen) &&
             EVP_DigestFinalXOF(c, out, outlen);
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

static int refill(stream_t *s)
{
    uint8_t ctr[8];
    for (int i = 0; i < 8; i++) ctr[i] = (uint8_t)(s->counter >> (8 * i));
    int rc;
    if (s->type == CKKS_SEAL_PRNG_BLAKE2XB) {
        rc = blake2xb(s->buf, BUF_BYTES, ctr, 8, s->seed, sizeof s->seed);
    } else {
        uint8_t ext[CKKS_SEAL_SEED_BYTES + 8];
        memcpy(ext, s->seed, CKKS_SEAL_SEED_BYTES);
        memcpy(ext + CKKS_SEAL_SEED_BYTES, ctr, 8);
        rc = shake256(s->buf, BUF_BYTES, ext, sizeof ext);
    }
    s->counter++;
    s->head = 0;
    return rc;
}

static int take(stream_t *s, uint8_t *dst, size_t n)
{
    while (n) {
        if (s->head == BUF_BYTES && refill(s)) return -1;
        size_t k = BUF_BYTES - s->head < n ? BUF_BYTES - s->head : n;
        memcpy(dst, s->buf + s->head, k);
        s->head += k;
        dst += k;
        n -= k;
    }
    return 0;
}

int ckks_seal_expand_uniform(int type, const uint8_t seed[CKKS_SEAL_SEED_BYTES], const uint64_t *primes,
                             size_t np, size_t n, uint64_t *out)
{
    if (type != CKKS_SEAL_PRNG_BLAKE2XB && type != CKKS_SEAL_PRNG_SHAKE256) return CKKS_EUNSUPPORTED;
    static __thread stream_t s; /* 4 KB: kept off small thread stacks */
    s.type = type;
    memcpy(s.seed, seed, sizeof s.seed);
    s.counter = 0;
    s.head = BUF_BYTES;
    int rc = take(&s, (uint8_t *)out, np * n * 8) ? CKKS_ENOMEM : CKKS_OK;
    for (size_t j = 0; j < np && rc == CKKS_OK; j++) {
        const uint64_t q = primes[j], bound = UINT64_MAX - UINT64_MAX % q - 1;
        uint64_t *o = out + j * n;
        for (size_t i = 0; i < n && rc == CKKS_OK; i++) {
            uint64_t r = o[i]; /* the stream's bytes, little-endian words (x86-64) */
            while (r >= bound && rc == CKKS_OK)
                if (take(&s, (uint8_t *)&r, 8)) rc = CKKS_ENOMEM;
            o[i] = r % q;
        }
    }
    return rc;
}
