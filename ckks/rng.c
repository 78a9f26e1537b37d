/*
 * Randomness. A 32-byte key from the OS (libsodium's randombytes_buf, which
 * uses getrandom) keys a ChaCha20 stream (crypto_stream_chacha20_ietf) that
 * is expanded on demand; a stream can also be keyed by a caller's seed, for
 * polynomials that must be re-derived from 32 bytes (compact ciphertexts).
 * Never xxHash, never rand().
 */
#include <endian.h>
#include <math.h>
#include <sodium.h>
#include <string.h>

#include "ckks_impl.h"

/* The keystream is the XOR of the cipher with zeros: read from here rather
 * than cleared into the destination first. */
static const unsigned char zeros[4096];

/* len bytes of keystream (a multiple of 64) straight into out. */
static void keystream(ckks_stream_t *st, unsigned char *out, size_t len)
{
    while (len) {
        size_t m = len < sizeof zeros ? len : sizeof zeros;
        crypto_stream_chacha20_ietf_xor_ic(out, zeros, m, st->nonce, st->counter, st->key);
        st->counter += (uint32_t)(m / 64);
        out += m;
        len -= m;
    }
}

static void refill(ckks_stream_t *st)
{
    keystream(st, st->buf, sizeof st->buf);
    st->pos = 0;
}

/* The next len bytes of the stream: what is buffered, whole blocks straight
 * into out (no copy through the buffer), then the rest through the buffer. */
static void next_bytes(ckks_stream_t *st, unsigned char *out, size_t len)
{
    size_t have = sizeof st->buf - st->pos;
    size_t m = len < have ? len : have;
    memcpy(out, st->buf + st->pos, m);
    st->pos += m;
    out += m;
    len -= m;
    size_t direct = len & ~(size_t)63;
    keystream(st, out, direct);
    out += direct;
    len -= direct;
    if (len) {
        refill(st);
        memcpy(out, st->buf, len);
        st->pos = len;
    }
}

static uint64_t next_u64(ckks_stream_t *st)
{
    if (st->pos + 8 > sizeof st->buf) refill(st);
    uint64_t v;
    memcpy(&v, st->buf + st->pos, 8);
    st->pos += 8;
    return v;
}

static uint8_t next_u8(ckks_stream_t *st)
{
    if (st->pos + 1 > sizeof st->buf) refill(st);
    return st->buf[st->pos++];
}

int ckks_stream_init_random(ckks_stream_t *st)
{
    if (sodium_init() < 0) return CKKS_ERANDOM;
    memset(st, 0, sizeof *st);
    randombytes_buf(st->key, sizeof st->key);
    st->pos = sizeof st->buf;
    return CKKS_OK;
}

void ckks_stream_init_seed(ckks_stream_t *st, const unsigned char seed[32], uint32_t domain)
{
    memset(st, 0, sizeof *st);
    memcpy(st->key, seed, 32);
    memcpy(st->nonce, &domain, sizeof domain);
    st->pos = sizeof st->buf;
}

void ckks_stream_wipe(ckks_stream_t *st)
{
    sodium_memzero(st, sizeof *st);
}

void ckks_sample_uniform(ckks_stream_t *st, const ckks_context_t *ctx, size_t np, uint64_t *out)
{
    ckks_sample_uniform_mod(st, ctx->mod, np, ctx->n, out);
}

/* Eight bytes as a little-endian word, whatever the host's byte order. */
static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}

void ckks_sample_uniform_mod(ckks_stream_t *st, const ntt_modulus_t *mod, size_t np, size_t n,
                             uint64_t *out)
{
    /* Rejection sampling: draw bits(q) bits, keep values below q. Unbiased;
     * uniform in coefficient form is uniform in NTT form too. Each draw takes
     * the fewest whole bytes that hold bits(q) (5 for a 40-bit prime), read
     * from the stream a chunk at a time; a chunk with no rejection (nearly
     * all: SEAL's primes lie just below a power of two) is stored as it is. */
    enum { CHUNK = 512 };
    unsigned char raw[CHUNK * 8 + 8];
    for (size_t i = 0; i < np; i++) {
        const uint64_t q = mod[i].value;
        const uint64_t mask = mod[i].bits == 64 ? UINT64_MAX : (1ULL << mod[i].bits) - 1;
        const size_t width = ((size_t)mod[i].bits + 7) / 8;
        uint64_t *o = out + i * n;
        size_t t = 0;
        while (t < n) {
            size_t want = n - t < CHUNK ? n - t : CHUNK;
            next_bytes(st, raw, want * width);
            uint64_t rejected = 0;
            for (size_t d = 0; d < want; d++) {
                uint64_t v = load_le64(raw + d * width) & mask; /* raw has 8 bytes of slack */
                o[t + d] = v;
                rejected |= (uint64_t)(v >= q);
            }
            if (!rejected) {
                t += want;
                continue;
            }
            for (size_t d = 0; d < want; d++) { /* keep the accepted draws, in order */
                uint64_t v = load_le64(raw + d * width) & mask;
                if (v < q) o[t++] = v;
            }
        }
    }
}

void ckks_expand_seed(const ckks_context_t *ctx, const unsigned char seed[32], size_t np,
                      uint64_t *out)
{
    for (size_t i = 0; i < np; i++) {
        ckks_stream_t st;
        ckks_stream_init_seed(&st, seed, (uint32_t)i);
        const ckks_context_t *c = ctx;
        uint64_t q = c->primes[i];
        uint64_t mask = (1ULL << c->mod[i].bits) - 1;
        for (size_t t = 0; t < c->n; t++) {
            uint64_t v;
            do v = next_u64(&st) & mask;
            while (v >= q);
            out[i * c->n + t] = v;
        }
    }
}

void ckks_sample_ternary(ckks_stream_t *st, size_t n, int8_t *out)
{
    /* Uniform over {-1, 0, 1}: bytes below 255 taken mod 3. */
    for (size_t t = 0; t < n; t++) {
        uint8_t b;
        do b = next_u8(st);
        while (b == 255);
        out[t] = (int8_t)(b % 3) - 1;
    }
}

/* Bits set in the low 21 bits (SWAR: the baseline x86-64 has no popcnt). */
static int popcount21(uint64_t x)
{
    x &= 0x1fffff;
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

void ckks_sample_cbd(ckks_stream_t *st, size_t n, int8_t *out)
{
    /* Centred binomial: popcount of 21 random bits minus popcount of 21 more.
     * Variance 21/2, so sigma = 3.24: the error width SEAL (sigma 3.2) and
     * the HomomorphicEncryption.org tables assume, sampled in constant time
     * and bounded by 21. Six bytes of the stream per sample (42 bits used),
     * read a chunk at a time. */
    enum { CHUNK = 512, WIDTH = 6 };
    unsigned char raw[CHUNK * WIDTH + 8];
    for (size_t t = 0; t < n; t += CHUNK) {
        size_t want = n - t < CHUNK ? n - t : CHUNK;
        next_bytes(st, raw, want * WIDTH);
        for (size_t d = 0; d < want; d++) {
            uint64_t r = load_le64(raw + d * WIDTH); /* raw has 8 bytes of slack */
            out[t + d] = (int8_t)(popcount21(r) - popcount21(r >> 21));
        }
    }
    sodium_memzero(raw, sizeof raw); /* the error's bits */
}

void ckks_sample_gauss(ckks_stream_t *st, size_t n, int bits, int64_t *out)
{
    /* Box-Muller on 53-bit uniforms from the stream (u1 in (0, 1]), rounded
     * to the nearest integer: a rounded Gaussian of standard deviation
     * 2^bits. Both outputs of each pair are used. */
    const double sigma = ldexp(1.0, bits), two_pi = 6.283185307179586;
    for (size_t i = 0; i < n; i += 2) {
        double u1 = (double)((next_u64(st) >> 11) + 1) * 0x1p-53;
        double u2 = (double)(next_u64(st) >> 11) * 0x1p-53;
        double r = sigma * sqrt(-2.0 * log(u1));
        out[i] = (int64_t)llround(r * cos(two_pi * u2));
        if (i + 1 < n) out[i + 1] = (int64_t)llround(r * sin(two_pi * u2));
    }
}
