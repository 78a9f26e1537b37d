/* Modular arithmetic helpers, primality, SEAL-compatible primes and roots. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ntt_impl.h"

const char *ntt_strerror(int status)
{
    switch (status) {
    case NTT_OK: return "success";
    case NTT_EINVAL: return "invalid argument";
    case NTT_ENOTPOW2: return "N is not a power of two in [2, 2^17]";
    case NTT_ENOTPRIME: return "modulus is not prime";
    case NTT_ENOTNTT: return "modulus is not congruent to 1 mod 2N";
    case NTT_ETOOLARGE: return "modulus out of range (must be 2 <= q < 2^62)";
    case NTT_ENOPRIME: return "not enough primes of the requested bit size";
    case NTT_ENOMEM: return "out of memory";
    case NTT_EUNSUPPORTED: return "SIMD backend not supported by this CPU or build";
    case NTT_EBITSIZE: return "prime bit size outside [2, 62]";
    default: return "unknown ntt error";
    }
}

int ntt_modulus_init(ntt_modulus_t *m, uint64_t q)
{
    if (!m) return NTT_EINVAL;
    if (q < 2 || q >> NTT_MAX_MOD_BITS) return NTT_ETOOLARGE;
    /* floor(2^128 / q) = floor((2^128 - 1) / q) since q is not a power of two
     * dividing 2^128 exactly unless q is a power of two; handle that case too. */
    ntt_u128 all = ~(ntt_u128)0;
    ntt_u128 mu = all / q;
    if (all % q == (ntt_u128)q - 1) mu += 1; /* q divides 2^128 */
    m->value = q;
    m->bits = 64 - __builtin_clzll(q);
    m->barrett_hi = (uint64_t)(mu >> 64);
    m->barrett_lo = (uint64_t)mu;
    return NTT_OK;
}

uint64_t ntt_powmod(uint64_t a, uint64_t e, const ntt_modulus_t *m)
{
    uint64_t base = ntt_reduce64(a, m);
    uint64_t r = m->value == 1 ? 0 : 1;
    while (e) {
        if (e & 1) r = ntt_mulmod(r, base, m);
        base = ntt_mulmod(base, base, m);
        e >>= 1;
    }
    return r;
}

int ntt_invmod(uint64_t a, const ntt_modulus_t *m, uint64_t *inv)
{
    if (!m || !inv) return NTT_EINVAL;
    /* Extended Euclid on signed 128-bit values: q < 2^62 keeps them small. */
    __int128 r0 = m->value, r1 = ntt_reduce64(a, m), t0 = 0, t1 = 1;
    while (r1 != 0) {
        __int128 quo = r0 / r1, tmp;
        tmp = r0 - quo * r1; r0 = r1; r1 = tmp;
        tmp = t0 - quo * t1; t0 = t1; t1 = tmp;
    }
    if (r0 != 1) return NTT_EINVAL;
    if (t0 < 0) t0 += m->value;
    *inv = (uint64_t)t0;
    return NTT_OK;
}

static uint64_t mulmod_u128(uint64_t a, uint64_t b, uint64_t n)
{
    return (uint64_t)(((ntt_u128)a * b) % n);
}

static uint64_t powmod_u128(uint64_t a, uint64_t e, uint64_t n)
{
    uint64_t r = 1 % n;
    a %= n;
    while (e) {
        if (e & 1) r = mulmod_u128(r, a, n);
        a = mulmod_u128(a, a, n);
        e >>= 1;
    }
    return r;
}

int ntt_is_prime(uint64_t n)
{
    static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    if (n < 2) return 0;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (n == bases[i]) return 1;
        if (n % bases[i] == 0) return 0;
    }
    uint64_t d = n - 1;
    int s = 0;
    while (!(d & 1)) {
        d >>= 1;
        s++;
    }
    /* These twelve bases decide primality for every n < 3.3 * 10^24. */
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        uint64_t x = powmod_u128(bases[i], d, n);
        if (x == 1 || x == n - 1) continue;
        int composite = 1;
        for (int r = 1; r < s; r++) {
            x = mulmod_u128(x, x, n);
            if (x == n - 1) {
                composite = 0;
                break;
            }
        }
        if (composite) return 0;
    }
    return 1;
}

static int check_n(size_t n)
{
    if (n < ((size_t)1 << NTT_LOG_N_MIN) || n > ((size_t)1 << NTT_LOG_N_MAX) || (n & (n - 1)))
        return NTT_ENOTPOW2;
    return NTT_OK;
}

/* The `count` largest primes p = 1 mod factor in (2^(bits-1), 2^bits),
 * largest first (SEAL's get_primes). */
static int largest_primes(uint64_t factor, int bits, size_t count, uint64_t *out)
{
    uint64_t top = (uint64_t)1 << bits;
    uint64_t lower = (uint64_t)1 << (bits - 1);
    if (factor >= top) return NTT_ENOPRIME;
    uint64_t v = top - factor + 1;
    size_t found = 0;
    while (found < count && v > lower) {
        if (ntt_is_prime(v)) out[found++] = v;
        if (v < factor) break;
        v -= factor;
    }
    return found == count ? NTT_OK : NTT_ENOPRIME;
}

int ntt_coeff_modulus(size_t n, const int *bit_sizes, size_t count, uint64_t *out)
{
    if (!bit_sizes || !out || count == 0) return NTT_EINVAL;
    int rc = check_n(n);
    if (rc) return rc;
    for (size_t i = 0; i < count; i++)
        if (bit_sizes[i] < 2 || bit_sizes[i] > NTT_MAX_MOD_BITS) return NTT_EBITSIZE;

    uint64_t *found = malloc(count * sizeof *found);
    if (!found) return NTT_ENOMEM;
    uint64_t *result = malloc(count * sizeof *result);
    if (!result) {
        free(found);
        return NTT_ENOMEM;
    }
    rc = NTT_OK;
    for (size_t i = 0; i < count && rc == NTT_OK; i++) {
        int b = bit_sizes[i];
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= bit_sizes[j] == b;
        if (seen) continue;
        size_t k = 0;
        for (size_t j = i; j < count; j++) k += bit_sizes[j] == b;
        rc = largest_primes(2 * (uint64_t)n, b, k, found);
        /* Hand them out ascending: the first position asking for b gets the
         * smallest of the k primes. */
        for (size_t j = i; j < count && rc == NTT_OK; j++)
            if (bit_sizes[j] == b) result[j] = found[--k];
    }
    if (rc == NTT_OK) memcpy(out, result, count * sizeof *out);
    free(found);
    free(result);
    return rc;
}

int ntt_minimal_root(size_t n, uint64_t q, uint64_t *psi)
{
    if (!psi) return NTT_EINVAL;
    int rc = check_n(n);
    if (rc) return rc;
    ntt_modulus_t m;
    rc = ntt_modulus_init(&m, q);
    if (rc) return rc;
    if (!ntt_is_prime(q)) return NTT_ENOTPRIME;
    uint64_t order = 2 * (uint64_t)n;
    if ((q - 1) % order) return NTT_ENOTNTT;

    /* g = x^((q-1)/2n) has order dividing 2n; it is primitive iff g^n = -1. */
    uint64_t g = 0;
    for (uint64_t x = 2; x < q; x++) {
        g = ntt_powmod(x, (q - 1) / order, &m);
        if (ntt_powmod(g, n, &m) == q - 1) break;
        g = 0;
    }
    if (!g) return NTT_ENOTNTT;
    /* The primitive 2n-th roots are the odd powers of g: take the smallest. */
    uint64_t g2 = ntt_mulmod(g, g, &m), cur = g, best = g;
    for (uint64_t i = 0; i < n; i++) {
        if (cur < best) best = cur;
        cur = ntt_mulmod(cur, g2, &m);
    }
    *psi = best;
    return NTT_OK;
}

/*
 * Large arrays (key-switching keys are 19 MB at N=16384, L=8) come from
 * whole 2 MiB pages with transparent huge pages requested before the first
 * touch: the zeroing then takes a few hundred page faults instead of one per
 * 4 KiB. That matters on virtual machines, where a fault costs microseconds:
 * without it, generating a relinearization key cost 14 ms when malloc reused
 * memory a previous allocation had faulted in and 65-90 ms when it did not
 * (glibc's mmap threshold moves with what the program freed before), so the
 * cost of a call depended on the program's history. The memory is still
 * malloc's, so ntt_free() (and free()) releases it.
 */
#define NTT_HUGE_PAGE ((size_t)2 << 20)

uint64_t *ntt_alloc_uninit(size_t n)
{
    if (n == 0 || n > SIZE_MAX / sizeof(uint64_t) - NTT_HUGE_PAGE) return NULL;
    size_t bytes = (n * sizeof(uint64_t) + 63) & ~(size_t)63;
    uint64_t *p;
    if (bytes >= NTT_HUGE_PAGE) {
        bytes = (bytes + NTT_HUGE_PAGE - 1) & ~(NTT_HUGE_PAGE - 1);
        void *v = NULL;
        if (posix_memalign(&v, NTT_HUGE_PAGE, bytes) != 0) return NULL;
        p = v;
#ifdef MADV_HUGEPAGE
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: no THP, 4 KiB pages */
#endif
    } else {
        p = aligned_alloc(64, bytes);
    }
    return p;
}

uint64_t *ntt_alloc(size_t n)
{
    uint64_t *p = ntt_alloc_uninit(n);
    if (p) memset(p, 0, (n * sizeof *p + 63) & ~(size_t)63); /* with the padding */
    return p;
}

void ntt_free(void *p)
{
    free(p);
}
