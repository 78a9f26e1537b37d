/* libFuzzer target: every reader of hestat's own format (multiparty shares
 * included) on arbitrary bytes.
 * Whatever is accepted must write back byte for byte. Seeds: the SEAL
 * vectors converted (make fuzz writes them with fuzz_seeds). */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"

static void same_bytes(const uint8_t *data, size_t size, int rc, void *buf, size_t len)
{
    if (rc == CKKS_OK && (len != size || memcmp(buf, data, size))) abort();
    if (rc == CKKS_OK) free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckks_context_t *ctx = fuzz_context();
    ckks_obj_type_t type;
    (void)ckks_object_type(data, size, &type);
    void *buf = NULL;
    size_t len = 0;
    ckks_params_t p;
    (void)ckks_read_params(data, size, &p);
    ckks_ciphertext_t *ct;
    if (ckks_read_ciphertext(ctx, data, size, &ct) == CKKS_OK) {
        /* Compact files re-expand their seed, packed ones re-pack: written
         * with the same flags, the same bytes. */
        int flags = size >= 16 ? data[12] & (CKKS_FLAG_COMPACT | CKKS_FLAG_PACKED) : 0;
        same_bytes(data, size, ckks_write_ciphertext(ct, flags, &buf, &len), buf, len);
        ckks_ciphertext_free(ct);
    }
    ckks_plaintext_t *pt;
    if (ckks_read_plaintext(ctx, data, size, &pt) == CKKS_OK) {
        same_bytes(data, size, ckks_write_plaintext(pt, &buf, &len), buf, len);
        ckks_plaintext_free(pt);
    }
    ckks_secret_key_t *sk;
    if (ckks_read_secret_key(ctx, data, size, &sk) == CKKS_OK) ckks_secret_key_free(sk);
    ckks_public_key_t *pk;
    if (ckks_read_public_key(ctx, data, size, &pk) == CKKS_OK) ckks_public_key_free(pk);
    ckks_relin_key_t *rk;
    if (ckks_read_relin_key(ctx, data, size, &rk) == CKKS_OK) ckks_relin_key_free(rk);
    ckks_galois_keys_t *gk;
    if (ckks_read_galois_keys(ctx, data, size, &gk) == CKKS_OK) ckks_galois_keys_free(gk);
    ckks_mp_share_t *sh;
    uint8_t tag[32];
    if (ckks_mp_share_read(ctx, data, size, &sh, tag) == CKKS_OK) {
        /* Packed shares are written again as they were; a share of 64-bit
         * words (the earlier form) is written packed, which reads back to
         * the same words. */
        int rc = ckks_mp_share_write(sh, tag, &buf, &len);
        if (data[12] & CKKS_FLAG_PACKED) {
            same_bytes(data, size, rc, buf, len);
        } else if (rc == CKKS_OK) {
            ckks_mp_share_t *again;
            uint8_t tag2[32];
            if (ckks_mp_share_read(ctx, buf, len, &again, tag2) != CKKS_OK || memcmp(tag, tag2, 32) ||
                memcmp(again->data, sh->data, sh->npolys * sh->nprimes * ckks_context_n(ctx) * 8))
                abort();
            ckks_mp_share_free(again);
            free(buf);
        }
        ckks_mp_share_free(sh);
    }
    return 0;
}
