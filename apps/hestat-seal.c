/*
 * hestat-seal: hestat's CKKS engine on Microsoft SEAL 4.x files.
 * Every file read and written is in SEAL's format; results are what SEAL's
 * Evaluator would write for the same inputs.
 * Exit status: 0 ok, 1 error (message on stderr, one line), 2 usage.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ckks/ckks.h"

#define MAX_FILE ((size_t)1 << 34)

static const char *usage_text =
    "usage: hestat-seal COMMAND [options] ...\n"
    "\n"
    "Commands (all files in Microsoft SEAL 4.x format, CKKS):\n"
    "  info FILE                          what the file holds: type, N, level, scale, parms_id, size\n"
    "  decrypt --secret-key SK [--slots K] CT\n"
    "                                     print the real part of each decoded slot (first K,\n"
    "                                     default all), one per line, %.17g\n"
    "  encrypt --public-key PK --scale S --in VALUES --out CT\n"
    "                                     VALUES: one real number per line (missing slots are 0);\n"
    "                                     S: a number or 2^E\n"
    "  encrypt --secret-key SK --scale S --in VALUES --out CT\n"
    "                                     symmetric, as SEAL's encrypt_symmetric: written seeded\n"
    "                                     (c1 as its 64-byte seed, half the size)\n"
    "  keygen --secret-key SK [--public-key PK] [--relin-keys RK] [--galois-keys GK [--steps LIST]]\n"
    "                                     keys as SEAL's KeyGenerator::create_*() saves them\n"
    "                                     (seeded); SK is read, or made (mode 0600) when absent;\n"
    "                                     LIST: rotation steps, 0 = conjugation (default: SEAL's\n"
    "                                     +-2^i and conjugation)\n"
    "  eval OP --out OUT [--relin-keys RK] [--galois-keys GK] IN1 [IN2]\n"
    "                                     OP, as SEAL's Evaluator: add, sub, multiply (IN1 IN2);\n"
    "                                     add_plain, sub_plain, multiply_plain (IN2 a SEAL\n"
    "                                     plaintext at IN1's level); negate, square, relinearize,\n"
    "                                     rescale (rescale_to_next), mod_switch (mod_switch_to_next:\n"
    "                                     drops the last prime, same scale), rotate:K, conjugate\n"
    "\n"
    "Parameters, on every command:\n"
    "  --poly-degree N                    ring degree (4096 .. 65536)\n"
    "  --coeff-bits 60,40,40,60           SEAL's CoeffModulus::Create(N, bits)\n"
    "  --coeff-primes P0,P1,...           or the primes themselves\n"
    "  --allow-insecure                   accept a modulus beyond the 128-bit security table\n"
    "  --compress none|zlib|zstd          compression of written files (default none)\n";

typedef struct {
    const char *cmd, *op;
    const char *secret_key, *public_key, *relin_keys, *galois_keys, *in, *out, *scale, *steps;
    const char *coeff_bits, *coeff_primes;
    size_t n, slots;
    int allow_insecure, compress;
    const char *pos[2];
    int npos;
} opts_t;

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "hestat-seal: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "hestat-seal: %s%s%s (try --help)\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int parse_u64_list(const char *s, uint64_t *out, size_t max, size_t *count)
{
    *count = 0;
    while (*s) {
        if (*count == max) return -1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || errno || (*end && *end != ',')) return -1;
        out[(*count)++] = v;
        s = *end ? end + 1 : end;
    }
    return *count ? 0 : -1;
}

static int parse_scale(const char *s, double *scale)
{
    char *end;
    if (!strncmp(s, "2^", 2)) {
        long e = strtol(s + 2, &end, 10);
        if (*end || end == s + 2 || e < 0 || e > 1000) return -1;
        *scale = ldexp(1.0, (int)e);
    } else {
        *scale = strtod(s, &end);
        if (*end || end == s) return -1;
    }
    return isfinite(*scale) && *scale > 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    if (argc < 2) return usage_error("missing command", NULL);
    o->cmd = argv[1];
    int i = 2;
    if (!strcmp(o->cmd, "eval")) {
        if (argc < 3 || argv[2][0] == '-') return usage_error("eval needs an OP", NULL);
        o->op = argv[2];
        i = 3;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (!strcmp(a, "--secret-key")) target = &o->secret_key;
        else if (!strcmp(a, "--public-key")) target = &o->public_key;
        else if (!strcmp(a, "--relin-keys")) target = &o->relin_keys;
        else if (!strcmp(a, "--galois-keys")) target = &o->galois_keys;
        else if (!strcmp(a, "--in")) target = &o->in;
        else if (!strcmp(a, "--out")) target = &o->out;
        else if (!strcmp(a, "--scale")) target = &o->scale;
        else if (!strcmp(a, "--steps")) target = &o->steps;
        else if (!strcmp(a, "--coeff-bits")) target = &o->coeff_bits;
        else if (!strcmp(a, "--coeff-primes")) target = &o->coeff_primes;
        if (target) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            *target = argv[++i];
            continue;
        }
        if (!strcmp(a, "--poly-degree") || !strcmp(a, "--slots")) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || end == argv[i]) return usage_error("not a number:", argv[i]);
            if (a[2] == 'p') o->n = v;
            else o->slots = v;
        } else if (!strcmp(a, "--allow-insecure")) {
            o->allow_insecure = 1;
        } else if (!strcmp(a, "--compress")) {
            if (i + 1 >= argc) return usage_error("missing value after", a);
            const char *v = argv[++i];
            if (!strcmp(v, "zstd")) o->compress = CKKS_SEAL_COMPR_ZSTD;
            else if (!strcmp(v, "zlib")) o->compress = CKKS_SEAL_COMPR_ZLIB;
            else if (!strcmp(v, "none")) o->compress = CKKS_SEAL_COMPR_NONE;
            else return usage_error("--compress must be none, zlib or zstd, not", v);
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else {
            if (o->npos == 2) return usage_error("too many arguments:", a);
            o->pos[o->npos++] = a;
        }
    }
    return 0;
}

static int make_context(const opts_t *o, ckks_context_t **ctx)
{
    if (!o->n) return usage_error("--poly-degree is required", NULL);
    if (!!o->coeff_bits == !!o->coeff_primes)
        return usage_error("give exactly one of --coeff-bits and --coeff-primes", NULL);
    ckks_params_t p;
    uint64_t vals[CKKS_MAX_PRIMES];
    size_t count;
    if (parse_u64_list(o->coeff_bits ? o->coeff_bits : o->coeff_primes, vals, CKKS_MAX_PRIMES, &count))
        return usage_error("bad list:", o->coeff_bits ? o->coeff_bits : o->coeff_primes);
    int rc;
    if (o->coeff_bits) {
        int bits[CKKS_MAX_PRIMES];
        for (size_t i = 0; i < count; i++) bits[i] = vals[i] > 64 ? 0 : (int)vals[i];
        rc = ckks_params_from_bits(&p, o->n, bits, count);
    } else {
        memset(&p, 0, sizeof p);
        p.n = o->n;
        p.count = count;
        memcpy(p.primes, vals, count * sizeof vals[0]);
        rc = count >= 2 ? CKKS_OK : CKKS_EPARAMS;
    }
    p.allow_insecure = o->allow_insecure;
    if (rc == CKKS_OK) rc = ckks_context_new(&p, ctx);
    if (rc) return fail("parameters: %s%s", ckks_strerror(rc), "");
    return 0;
}

/* Reads a whole file; on failure prints one line and returns NULL. */
static void *load(const char *path, size_t *len)
{
    void *buf;
    int rc = ckks_file_read(path, MAX_FILE, &buf, len);
    if (rc == CKKS_EIO) {
        fprintf(stderr, "hestat-seal: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (rc) {
        fprintf(stderr, "hestat-seal: %s: %s\n", path, ckks_strerror(rc));
        return NULL;
    }
    return buf;
}

static int save(const char *path, void *buf, size_t len, int rc_write)
{
    if (rc_write) return fail("writing %s: %s", path, ckks_strerror(rc_write));
    int rc = ckks_file_write(path, buf, len, 0644);
    free(buf);
    if (rc == CKKS_EIO) return fail("%s: %s", path, strerror(errno));
    if (rc) return fail("%s: %s", path, ckks_strerror(rc));
    return 0;
}

/* Frees a file image; the image of a secret key is wiped first. */
static void release(void *buf, size_t len, int secret)
{
    if (buf && secret) sodium_memzero(buf, len);
    free(buf);
}

static const char *type_name(ckks_seal_type_t t)
{
    switch (t) {
    case CKKS_SEAL_CIPHERTEXT: return "Ciphertext";
    case CKKS_SEAL_PLAINTEXT: return "Plaintext";
    case CKKS_SEAL_SECRET_KEY: return "SecretKey";
    case CKKS_SEAL_PUBLIC_KEY: return "PublicKey";
    case CKKS_SEAL_RELIN_KEYS: return "RelinKeys";
    case CKKS_SEAL_GALOIS_KEYS: return "GaloisKeys";
    default: return "unknown";
    }
}

/* A refused file: the reader's reason, or that it holds another kind of
 * SEAL object than the one wanted (a ciphertext given as a plaintext). */
static int load_fail(const ckks_context_t *ctx, const char *path, const void *buf, size_t len, int rc,
                     ckks_seal_type_t want)
{
    ckks_seal_info_t info;
    if (!ckks_seal_identify(ctx, buf, len, &info) && info.type != want) {
        char what[128];
        snprintf(what, sizeof what, "a SEAL %s where a %s was wanted", type_name(info.type), type_name(want));
        return fail("%s: %s", path, what);
    }
    return fail("%s: %s", path, ckks_strerror(rc));
}

/* st = 0 when path's object was read into *obj, else 1 (the message printed). */
#define TRY_LOAD(reader, want, path, obj, secret, st)                                 \
    do {                                                                              \
        size_t len_;                                                                  \
        void *buf_ = load(path, &len_);                                               \
        if (!buf_) {                                                                  \
            (st) = 1;                                                                 \
            break;                                                                    \
        }                                                                             \
        int rc_ = reader(ctx, buf_, len_, obj);                                       \
        (st) = rc_ ? load_fail(ctx, path, buf_, len_, rc_, want) : 0;                 \
        release(buf_, len_, secret);                                                  \
    } while (0)
/* The same, returning from the caller on failure (nothing else loaded yet). */
#define LOAD_WITH(reader, want, path, obj, secret)                                    \
    do {                                                                              \
        int st_;                                                                      \
        TRY_LOAD(reader, want, path, obj, secret, st_);                               \
        if (st_) return st_;                                                          \
    } while (0)
#define LOAD_OBJ(reader, want, path, obj) LOAD_WITH(reader, want, path, obj, 0)
#define LOAD_SECRET(path, obj) LOAD_WITH(ckks_seal_read_secret_key, CKKS_SEAL_SECRET_KEY, path, obj, 1)

static int cmd_info(const opts_t *o, ckks_context_t *ctx)
{
    if (o->npos != 1) return usage_error("info takes one FILE", NULL);
    size_t len;
    void *buf = load(o->pos[0], &len);
    if (!buf) return 1;
    ckks_seal_info_t info;
    int rc = ckks_seal_identify(ctx, buf, len, &info);
    release(buf, len, 1); /* it may be a secret key */
    if (rc) return fail("%s: %s", o->pos[0], ckks_strerror(rc));
    printf("file: %s\ntype: %s\nseal version: %d.%d\ncompression: %s\nsize: %llu bytes\n",
           o->pos[0], type_name(info.type), info.version_major, info.version_minor,
           info.compression == CKKS_SEAL_COMPR_ZSTD ? "zstd" : info.compression == CKKS_SEAL_COMPR_ZLIB ? "zlib" : "none",
           (unsigned long long)info.total_size);
    printf("poly degree N: %zu\n", ckks_context_n(ctx));
    int key_level = info.nprimes == ckks_context_data_primes(ctx) + 1;
    printf("primes at its level: %zu%s\n", info.nprimes, key_level ? " (key level)" : "");
    if (!key_level) printf("level: %zu\n", info.nprimes - 1);
    if (info.type == CKKS_SEAL_CIPHERTEXT || info.type == CKKS_SEAL_PLAINTEXT)
        printf("scale: %.17g (2^%.4f)\n", info.scale, log2(info.scale));
    if (info.size) printf("polynomials: %zu\n", info.size);
    if (info.keys) printf("keys: %zu\n", info.keys);
    printf("parms_id: %016llx %016llx %016llx %016llx\n", (unsigned long long)info.parms_id[0],
           (unsigned long long)info.parms_id[1], (unsigned long long)info.parms_id[2],
           (unsigned long long)info.parms_id[3]);
    return 0;
}

static int cmd_decrypt(const opts_t *o, ckks_context_t *ctx)
{
    if (o->npos != 1) return usage_error("decrypt takes one ciphertext file", NULL);
    if (!o->secret_key) return usage_error("decrypt needs --secret-key", NULL);
    size_t slots = ckks_context_slots(ctx), k = o->slots ? o->slots : slots;
    if (k > slots) return usage_error("--slots exceeds N/2", NULL);
    ckks_secret_key_t *sk = NULL;
    ckks_ciphertext_t *ct = NULL;
    LOAD_OBJ(ckks_seal_read_ciphertext, CKKS_SEAL_CIPHERTEXT, o->pos[0], &ct);
    int st;
    TRY_LOAD(ckks_seal_read_secret_key, CKKS_SEAL_SECRET_KEY, o->secret_key, &sk, 1, st);
    if (st) {
        ckks_ciphertext_free(ct);
        return st;
    }
    ckks_plaintext_t *pt;
    double *v = malloc(slots * sizeof *v);
    int rc = v ? ckks_plaintext_new(ctx, 0, &pt) : CKKS_ENOMEM;
    if (rc == CKKS_OK) {
        rc = ckks_decrypt(sk, ct, pt);
        if (rc == CKKS_OK) rc = ckks_decode(ctx, pt, v, NULL, k);
        ckks_plaintext_free(pt);
    }
    if (rc == CKKS_OK)
        for (size_t i = 0; i < k; i++) printf("%.17g\n", v[i]);
    free(v);
    ckks_secret_key_free(sk);
    ckks_ciphertext_free(ct);
    return rc ? fail("decrypt: %s%s", ckks_strerror(rc), "") : 0;
}

static int read_values(const char *path, double *v, size_t slots)
{
    FILE *f = fopen(path, "r");
    if (!f) return fail("%s: %s", path, strerror(errno));
    char line[512];
    size_t count = 0, lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '\n' || *s == '\r' || !*s) continue; /* blank */
        if (count == slots) {
            fprintf(stderr, "hestat-seal: %s: more than N/2 = %zu values\n", path, slots);
            rc = 1;
            break;
        }
        char *end;
        double x = strtod(s, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (end == s || *end || !isfinite(x)) {
            fprintf(stderr, "hestat-seal: %s:%zu: not a finite number\n", path, lineno);
            rc = 1;
            break;
        }
        v[count++] = x;
    }
    fclose(f);
    return rc;
}

static int cmd_encrypt(const opts_t *o, ckks_context_t *ctx)
{
    if (o->npos) return usage_error("encrypt takes no positional argument", NULL);
    if (!o->public_key == !o->secret_key) return usage_error("encrypt needs --public-key or --secret-key", NULL);
    if (!o->in || !o->out || !o->scale) return usage_error("encrypt needs --scale, --in and --out", NULL);
    double scale;
    if (parse_scale(o->scale, &scale)) return usage_error("bad --scale", o->scale);
    ckks_public_key_t *pk = NULL;
    ckks_secret_key_t *sk = NULL;
    if (o->public_key) LOAD_OBJ(ckks_seal_read_public_key, CKKS_SEAL_PUBLIC_KEY, o->public_key, &pk);
    else LOAD_SECRET(o->secret_key, &sk);
    size_t slots = ckks_context_slots(ctx);
    double *v = calloc(slots, sizeof *v);
    if (!v || read_values(o->in, v, slots)) {
        if (!v) fail("out of memory%s%s", "", "");
        free(v);
        ckks_public_key_free(pk);
        ckks_secret_key_free(sk);
        return 1;
    }
    ckks_plaintext_t *pt = NULL;
    ckks_ciphertext_t *ct = NULL;
    int rc = ckks_plaintext_new(ctx, 0, &pt);
    if (rc == CKKS_OK) rc = ckks_encode_real(ctx, v, slots, scale, 0, pt);
    if (rc == CKKS_OK) rc = ckks_ciphertext_new(ctx, 2, 0, &ct);
    if (rc == CKKS_OK) rc = pk ? ckks_encrypt(pk, pt, ct) : ckks_seal_encrypt_symmetric(sk, pt, ct);
    ckks_secret_key_free(sk);
    void *buf = NULL;
    size_t len = 0;
    if (rc == CKKS_OK) rc = ckks_seal_write_ciphertext(ct, o->compress, &buf, &len);
    free(v);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_public_key_free(pk);
    if (rc) return fail("encrypt: %s%s", ckks_strerror(rc), "");
    return save(o->out, buf, len, 0);
}

/* Rotation steps "1,-3,0" (0: conjugation, as SEAL's steps API). */
static int parse_steps(const char *s, int *steps, size_t max, size_t *count, int *conjugate)
{
    *count = 0;
    *conjugate = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || (*end && *end != ',') || v < -(1L << 20) || v > (1L << 20)) return -1;
        if (v == 0) *conjugate = 1;
        else if (*count == max) return -1;
        else steps[(*count)++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return *count || *conjugate ? 0 : -1;
}

static int write_key(const char *what, const char *path, int rc, void *buf, size_t len)
{
    if (rc) {
        free(buf);
        return fail("%s: %s", what, ckks_strerror(rc));
    }
    return save(path, buf, len, 0);
}

static int cmd_keygen(const opts_t *o, ckks_context_t *ctx)
{
    if (o->npos) return usage_error("keygen takes no positional argument", NULL);
    if (!o->secret_key) return usage_error("keygen needs --secret-key (read, or made when absent)", NULL);
    if (!o->public_key && !o->relin_keys && !o->galois_keys)
        return usage_error("keygen needs at least one of --public-key, --relin-keys, --galois-keys", NULL);
    if (o->steps && !o->galois_keys) return usage_error("--steps goes with --galois-keys", NULL);
    int steps[256], conj = 1;
    size_t nsteps = 0;
    if (o->steps && parse_steps(o->steps, steps, 256, &nsteps, &conj))
        return usage_error("--steps must be a list of integers like 1,-3,0 (at most 256):", o->steps);
    ckks_secret_key_t *sk = NULL;
    FILE *probe = fopen(o->secret_key, "rb");
    if (probe) {
        fclose(probe);
        LOAD_SECRET(o->secret_key, &sk);
    } else if (errno != ENOENT) {
        return fail("%s: %s", o->secret_key, strerror(errno));
    } else {
        int rc = ckks_secret_key_new(ctx, &sk);
        void *buf = NULL;
        size_t len = 0;
        if (rc == CKKS_OK) rc = ckks_seal_write_secret_key(sk, o->compress, &buf, &len);
        if (rc == CKKS_OK) {
            rc = ckks_file_write(o->secret_key, buf, len, 0600);
            sodium_memzero(buf, len);
        }
        free(buf);
        if (rc) {
            ckks_secret_key_free(sk);
            return fail("%s: %s", o->secret_key, rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
        }
    }
    int rc = 0;
    if (o->public_key) {
        ckks_public_key_t *pk = NULL;
        void *buf = NULL;
        size_t len = 0;
        int r = ckks_public_key_new_seeded(sk, &pk);
        if (r == CKKS_OK) r = ckks_seal_write_public_key(pk, o->compress, &buf, &len);
        ckks_public_key_free(pk);
        rc = write_key("public key", o->public_key, r, buf, len);
    }
    if (!rc && o->relin_keys) {
        ckks_relin_key_t *rk = NULL;
        void *buf = NULL;
        size_t len = 0;
        int r = ckks_relin_key_new_seeded(sk, &rk);
        if (r == CKKS_OK) r = ckks_seal_write_relin_key(rk, o->compress, &buf, &len);
        ckks_relin_key_free(rk);
        rc = write_key("relinearization keys", o->relin_keys, r, buf, len);
    }
    if (!rc && o->galois_keys) {
        ckks_galois_keys_t *gk = NULL;
        void *buf = NULL;
        size_t len = 0;
        int r = ckks_galois_keys_new_seeded(sk, o->steps ? steps : NULL, nsteps, conj, &gk);
        if (r == CKKS_OK) r = ckks_seal_write_galois_keys(gk, o->compress, &buf, &len);
        ckks_galois_keys_free(gk);
        rc = write_key("Galois keys", o->galois_keys, r, buf, len);
    }
    ckks_secret_key_free(sk);
    return rc;
}

static int cmd_eval(const opts_t *o, ckks_context_t *ctx)
{
    if (!o->out) return usage_error("eval needs --out", NULL);
    int plain = !strcmp(o->op, "add_plain") || !strcmp(o->op, "sub_plain") || !strcmp(o->op, "multiply_plain");
    int binary = plain || !strcmp(o->op, "add") || !strcmp(o->op, "sub") || !strcmp(o->op, "multiply");
    int rotate = !strncmp(o->op, "rotate:", 7), conj = !strcmp(o->op, "conjugate");
    int relin = !strcmp(o->op, "relinearize"), rescale = !strcmp(o->op, "rescale");
    int unary = !strcmp(o->op, "negate") || !strcmp(o->op, "square") || !strcmp(o->op, "mod_switch");
    if (!binary && !rotate && !conj && !relin && !rescale && !unary) return usage_error("unknown OP", o->op);
    if (o->npos != (binary ? 2 : 1))
        return usage_error(binary ? "this OP takes two input files" : "this OP takes one input file", NULL);
    long step = 0;
    if (rotate) {
        char *end;
        step = strtol(o->op + 7, &end, 10);
        if (*end || end == o->op + 7) return usage_error("bad rotation step in", o->op);
        if (labs(step) >= (long)ckks_context_slots(ctx)) return usage_error("rotation step must be below N/2:", o->op);
    }
    if (relin && !o->relin_keys) return usage_error("relinearize needs --relin-keys", NULL);
    if ((rotate || conj) && !o->galois_keys) return usage_error("this OP needs --galois-keys", NULL);
    ckks_ciphertext_t *a = NULL, *b = NULL, *out = NULL;
    ckks_plaintext_t *pt = NULL;
    ckks_relin_key_t *rk = NULL;
    ckks_galois_keys_t *gk = NULL;
    int st = 0;
    TRY_LOAD(ckks_seal_read_ciphertext, CKKS_SEAL_CIPHERTEXT, o->pos[0], &a, 0, st);
    if (!st && plain) TRY_LOAD(ckks_seal_read_plaintext, CKKS_SEAL_PLAINTEXT, o->pos[1], &pt, 0, st);
    else if (!st && binary) TRY_LOAD(ckks_seal_read_ciphertext, CKKS_SEAL_CIPHERTEXT, o->pos[1], &b, 0, st);
    if (!st && relin) TRY_LOAD(ckks_seal_read_relin_key, CKKS_SEAL_RELIN_KEYS, o->relin_keys, &rk, 0, st);
    if (!st && (rotate || conj))
        TRY_LOAD(ckks_seal_read_galois_keys, CKKS_SEAL_GALOIS_KEYS, o->galois_keys, &gk, 0, st);
    int rc = st ? CKKS_OK : ckks_ciphertext_new(ctx, 3, 0, &out);
    if (!st && rc == CKKS_OK) {
        if (!strcmp(o->op, "add")) rc = ckks_add(a, b, out);
        else if (!strcmp(o->op, "sub")) rc = ckks_sub(a, b, out);
        else if (!strcmp(o->op, "multiply")) rc = ckks_multiply(a, b, out);
        else if (!strcmp(o->op, "add_plain")) rc = ckks_add_plain(a, pt, out);
        else if (!strcmp(o->op, "sub_plain")) rc = ckks_sub_plain(a, pt, out);
        else if (!strcmp(o->op, "multiply_plain")) rc = ckks_multiply_plain(a, pt, out);
        else if (!strcmp(o->op, "negate")) rc = ckks_negate(a, out);
        else if (!strcmp(o->op, "square")) rc = ckks_square(a, out);
        else if (!strcmp(o->op, "mod_switch"))
            rc = a->nprimes > 1 ? ckks_mod_switch(a, a->nprimes - 1, out) : CKKS_ELEVEL;
        else if (relin) rc = ckks_relinearize(a, rk, out);
        else if (rescale) rc = ckks_rescale(a, out);
        else if (rotate) rc = ckks_rotate(a, (int)step, gk, out);
        else rc = ckks_conjugate(a, gk, out);
    }
    void *buf = NULL;
    size_t len = 0;
    if (!st && rc == CKKS_OK) rc = ckks_seal_write_ciphertext(out, o->compress, &buf, &len);
    ckks_ciphertext_free(a);
    ckks_ciphertext_free(b);
    ckks_ciphertext_free(out);
    ckks_plaintext_free(pt);
    ckks_relin_key_free(rk);
    ckks_galois_keys_free(gk);
    if (st) return st;
    if (rc) return fail("eval %s: %s", o->op, ckks_strerror(rc));
    return save(o->out, buf, len, 0);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    }
    opts_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    if (strcmp(o.cmd, "info") && strcmp(o.cmd, "decrypt") && strcmp(o.cmd, "encrypt") &&
        strcmp(o.cmd, "eval") && strcmp(o.cmd, "keygen"))
        return usage_error("unknown command", o.cmd);
    ckks_context_t *ctx = NULL;
    rc = make_context(&o, &ctx);
    if (rc) return rc;
    if (!strcmp(o.cmd, "info")) rc = cmd_info(&o, ctx);
    else if (!strcmp(o.cmd, "decrypt")) rc = cmd_decrypt(&o, ctx);
    else if (!strcmp(o.cmd, "encrypt")) rc = cmd_encrypt(&o, ctx);
    else if (!strcmp(o.cmd, "keygen")) rc = cmd_keygen(&o, ctx);
    else rc = cmd_eval(&o, ctx);
    ckks_context_free(ctx);
    return rc;
}
