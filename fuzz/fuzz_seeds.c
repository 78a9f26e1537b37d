/* Writes a seed corpus for fuzz_hestat_format: the n4096 SEAL vectors
 * re-saved in hestat's format (plus a compact ciphertext and the params).
 * usage: fuzz_seeds VECTOR_DIR OUT_DIR */
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"

static void put(const char *dir, const char *name, void *buf, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ckks_file_write(path, buf, len, 0644)) fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds VECTOR_DIR OUT_DIR\n");
        return 2;
    }
    ckks_context_t *ctx = fuzz_context();
    char path[512];
    void *raw, *buf;
    size_t len, out_len;
    snprintf(path, sizeof path, "%s/secret_key.bin", argv[1]);
    ckks_secret_key_t *sk;
    if (ckks_file_read(path, 1 << 26, &raw, &len) || ckks_seal_read_secret_key(ctx, raw, len, &sk)) {
        fprintf(stderr, "fuzz_seeds: cannot read %s\n", path);
        return 1;
    }
    free(raw);
    snprintf(path, sizeof path, "%s/ct_a.bin", argv[1]);
    ckks_ciphertext_t *ct;
    if (ckks_file_read(path, 1 << 26, &raw, &len) || ckks_seal_read_ciphertext(ctx, raw, len, &ct)) return 1;
    free(raw);
    if (!ckks_write_ciphertext(ct, 0, &buf, &out_len)) put(argv[2], "ciphertext", buf, out_len);
    ckks_plaintext_t *pt;
    ckks_plaintext_new(ctx, 0, &pt);
    ckks_decrypt(sk, ct, pt);
    if (!ckks_write_plaintext(pt, &buf, &out_len)) put(argv[2], "plaintext", buf, out_len);
    ckks_ciphertext_t *sym;
    ckks_ciphertext_new(ctx, 2, 0, &sym);
    ckks_encrypt_symmetric(sk, pt, sym);
    if (!ckks_write_ciphertext(sym, 1, &buf, &out_len)) put(argv[2], "compact", buf, out_len);
    if (!ckks_write_params(ctx, &buf, &out_len)) put(argv[2], "params", buf, out_len);
    ckks_public_key_t *pk;
    ckks_public_key_new(sk, &pk);
    if (!ckks_write_public_key(pk, &buf, &out_len)) put(argv[2], "public_key", buf, out_len);
    ckks_galois_keys_t *gk;
    int step = 1;
    ckks_galois_keys_new(sk, &step, 1, 0, &gk);
    if (!ckks_write_galois_keys(gk, &buf, &out_len)) put(argv[2], "galois_keys", buf, out_len);
    ckks_galois_keys_free(gk);
    ckks_public_key_free(pk);
    ckks_ciphertext_free(sym);
    ckks_plaintext_free(pt);
    ckks_ciphertext_free(ct);
    ckks_secret_key_free(sk);
    return 0;
}
