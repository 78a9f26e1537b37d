/* hestat-info: what this build of hestat is and what the CPU gives it. */
#include <stdio.h>
#include <string.h>

#include "ntt/ntt.h"

static void usage(FILE *f)
{
    fputs("usage: hestat-info [--simd | --help]\n"
          "  (no option)  version, SIMD backends available here, and the default one\n"
          "  --simd       the available backends, one name per line (scripts use this)\n"
          "Environment: HESTAT_SIMD=scalar|avx2|avx512|avx512r4 forces the default backend.\n",
          f);
}

int main(int argc, char **argv)
{
    int simd_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--simd")) {
            simd_only = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hestat-info: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (!simd_only) printf("hestat %s\nbackends available:", HESTAT_VERSION);
    for (int i = 0; i < NTT_SIMD_COUNT; i++) {
        const ntt_ops_t *ops;
        if (ntt_ops_get((ntt_simd_t)i, &ops) == NTT_OK)
            printf(simd_only ? "%s\n" : " %s", ops->name);
    }
    if (simd_only) return 0;
    printf("\ndefault backend: %s\n", ntt_ops_default()->name);
    if (ntt_ops_default_warning()) printf("warning: %s\n", ntt_ops_default_warning());
    return 0;
}
