/* libFuzzer target: every SEAL-format reader on arbitrary bytes. Whatever is
 * accepted must write back and re-read. Seeds: vectors/n4096/. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_context_t *ctx = fuzz_context();
    ckks_seal_info_t info;
    (void)ckks_seal_identify(ctx, data, size, &info);
    void *buf;
    size_t len;
    ckks_ciphertext_t *ct;
    if (ckks_seal_read_ciphertext(ctx, data, size, &ct) == CKKS_OK) {
        if (ckks_seal_write_ciphertext(ct, CKKS_SEAL_COMPR_NONE, &buf, &len) == CKKS_OK) {
            ckks_ciphertext_t *again;
            if (ckks_seal_read_ciphertext(ctx, buf, len, &again) != CKKS_OK) abort();
            ckks_ciphertext_free(again);
            free(buf);
        }
        ckks_ciphertext_free(ct);
    }
    ckks_plaintext_t *pt;
    if (ckks_seal_read_plaintext(ctx, data, size, &pt) == CKKS_OK) ckks_plaintext_free(pt);
    ckks_secret_key_t *sk;
    if (ckks_seal_read_secret_key(ctx, data, size, &sk) == CKKS_OK) ckks_secret_key_free(sk);
    ckks_public_key_t *pk;
    if (ckks_seal_read_public_key(ctx, data, size, &pk) == CKKS_OK) ckks_public_key_free(pk);
    ckks_relin_key_t *rk;
    if (ckks_seal_read_relin_key(ctx, data, size, &rk) == CKKS_OK) ckks_relin_key_free(rk);
    ckks_galois_keys_t *gk;
    if (ckks_seal_read_galois_keys(ctx, data, size, &gk) == CKKS_OK) ckks_galois_keys_free(gk);
    return 0;
}
