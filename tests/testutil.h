/* Shared helpers for the Criterion tests. */
#ifndef HESTAT_TESTUTIL_H
#define HESTAT_TESTUTIL_H

#include <stdint.h>
#include <stddef.h>

#include "ckks/ckks.h"
#include "ntt/ntt.h"

/* Reproducible test data only (never keys or noise): splitmix64. */
typedef struct {
    uint64_t s;
} test_rng_t;

static inline uint64_t test_rng_next(test_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound) (tiny bias is irrelevant for test data). */
static inline uint64_t test_rng_below(test_rng_t *r, uint64_t bound)
{
    return (uint64_t)(((unsigned __int128)test_rng_next(r) * bound) >> 64);
}

/* Reference arithmetic: plain 128-bit division, independent of ntt/'s Barrett. */
static inline uint64_t ref_mulmod(uint64_t a, uint64_t b, uint64_t q)
{
    return (uint64_t)(((unsigned __int128)a * b) % q);
}

static inline uint64_t ref_powmod(uint64_t a, uint64_t e, uint64_t q)
{
    uint64_t r = 1 % q;
    a %= q;
    while (e) {
        if (e & 1) r = ref_mulmod(r, a, q);
        a = ref_mulmod(a, a, q);
        e >>= 1;
    }
    return r;
}

/* Primality by GMP (mpz_probab_prime_p, 40 rounds): independent of ntt/. */
int test_is_prime_gmp(uint64_t n);

/* The largest prime q < 2^bits with q = 1 mod 2n, found with GMP's test. */
uint64_t test_prime(int bits, size_t n);

/* Naive O(n^2) negacyclic NTT in SEAL's order: out[k] = a(psi^(2*bitrev(k)+1)). */
void test_naive_ntt(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t psi);

/* Fills v[0..n) with values below bound: random, with 0 and bound-1 planted. */
void test_fill(test_rng_t *r, uint64_t *v, size_t n, uint64_t bound);

/* Runs a shell command built printf-style; its exit status, or -1. */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Path of a program under test: $HESTAT_BIN/NAME (make sanitize points
 * HESTAT_BIN at the sanitized programs), build/bin/NAME by default. */
const char *test_bin(const char *name);

/* A real hestat-server on loopback: `hestat-server serve --listen
 * 127.0.0.1:0 --spool SPOOL ARGS...` (args NULL-terminated), output in LOG.
 * Waits until the server prints its address (http:// or https://) and
 * copies it to base (e.g. "http://127.0.0.1:41234"). Returns the pid, or -1
 * when it did not start within 10 s (the process is killed then). */
int test_server_start(const char *spool, const char *log, char *base, size_t baselen,
                      const char *const *args);
/* Sends sig and reaps; SIGKILL after 10 s if it is still there. Returns the
 * number of milliseconds the server took to exit. */
long test_server_stop(int pid, int sig);

/* A test's key set: the secret, public and relinearization keys of ctx and,
 * with galois, Galois keys for steps (NULL and 0: the default set, plus
 * conjugation when conjugate). 0, or the first CKKS error. */
int test_keys_new(ckks_context_t *ctx, ckks_secret_key_t **sk, ckks_public_key_t **pk, ckks_relin_key_t **rk,
                  ckks_galois_keys_t **gk, int galois, const int *steps, size_t count, int conjugate);
void test_keys_free(ckks_context_t *ctx, ckks_secret_key_t *sk, ckks_public_key_t *pk, ckks_relin_key_t *rk,
                    ckks_galois_keys_t *gk);

#endif
