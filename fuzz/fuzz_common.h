/* Shared by the libFuzzer targets: one small context (N=4096 {40,20,40},
 * the parameters of vectors/n4096), built once. */
#ifndef HESTAT_FUZZ_COMMON_H
#define HESTAT_FUZZ_COMMON_H

#include <stdlib.h>

#include "ckks/ckks.h"

static ckks_context_t *fuzz_context(void)
{
    static ckks_context_t *ctx;
    if (!ctx) {
        int bits[] = {40, 20, 40};
        ckks_params_t p;
        if (ckks_params_from_bits(&p, 4096, bits, 3) || ckks_context_new(&p, &ctx)) abort();
        ckks_context_set_threads(ctx, 1);
    }
    return ctx;
}

#endif
