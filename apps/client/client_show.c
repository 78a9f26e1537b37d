/* hestat-client show: what a study file holds, for every party to read before
 * contributing to it or computing on it: its columns (derived ones named by
 * what they are), their public factors, the disclosure policy, the
 * parameters and evaluation keys (each Galois key with the primes it serves),
 * and the study digest that binds tables and results to exactly this study. */
#include <stdio.h>
#include <string.h>

#include "apps/client/client.h"

static unsigned bits_of(uint64_t q)
{
    return 64 - (unsigned)__builtin_clzll(q - 1);
}

/* Parameters, then the Galois keys grouped by the primes they serve (steps
 * above S/2 shown as right rotations). */
static void show_keys(const stats_study_t *s)
{
    const ckks_context_t *ctx = s->ctx;
    const size_t top = ckks_context_data_primes(ctx), S = ckks_context_slots(ctx);
    printf("parameters: N = %zu, data primes of", ckks_context_n(ctx));
    for (size_t i = 0; i < top; i++) printf("%s %u", i ? "," : "", bits_of(ckks_context_prime(ctx, i)));
    printf(" bits, special prime of %u bits\n", bits_of(ckks_context_prime(ctx, top)));
    int steps[512];
    size_t n = ckks_galois_keys_steps(s->gk, steps, 512);
    printf("evaluation keys: relinearization; Galois, rotations by");
    for (size_t lv = top; lv >= 1; lv--) {
        int any = 0;
        for (size_t i = 0; i < n; i++) {
            if (ckks_galois_keys_primes(s->gk, ckks_galois_elt_rotate(ctx, steps[i])) != lv) continue;
            long st = steps[i] > (int)(S / 2) ? (long)steps[i] - (long)S : steps[i];
            printf("%s %ld", any ? "," : (lv == top ? "" : ";"), st);
            any = 1;
        }
        if (lv == top && ckks_galois_keys_primes(s->gk, ckks_galois_elt_conjugate(ctx)) == top)
            printf("%s conjugation", any ? " and" : ""), any = 1;
        if (any && lv == top) printf(" at every level (%zu primes)", lv);
        else if (any) printf(" up to %zu prime%s", lv, lv > 1 ? "s" : "");
    }
    printf("\n");
}

int client_show(const char *study_path)
{
    stats_study_t *s;
    if (client_load_study(study_path, &s)) return 1;
    const stats_layout_t *lay = &s->layout;
    printf("study %s\ndigest ", study_path);
    for (int i = 0; i < 32; i++) printf("%02x", s->digest[i]);
    printf("\nslots %zu, columns %zu (row block %zu, layout %s)\n", lay->slots, lay->ncols, lay->block,
           lay->colmajor ? "columns" : "rows");
    if (s->parties) {
        printf("multiparty: %d parties (all needed to release a result), smudging sd 2^%d, draft digest ", s->parties,
               s->smudge_bits);
        for (int i = 0; i < 32; i++) printf("%02x", s->draft_digest[i]);
        printf("\n");
    }
    for (size_t c = 0; c < lay->ncols; c++) printf("  %-40s factor %.17g\n", lay->names[c], lay->factor[c]);
    show_keys(s);
    const stats_policy_t *p = &lay->policy;
    printf("disclosure policy%s: min_cell %u", p->legacy ? " (a study of before policies: the default)" : "",
           p->min_cell);
    if (p->min_cell > 1) printf(" (counts 1..%u are never released)", p->min_cell - 1);
    else printf(" (every count is released)");
    printf(", min_n_per_param %.15g (a model of p parameters needs n >= %.15g p)\n", p->min_n_per_param,
           p->min_n_per_param);
    stats_study_free(s);
    return 0;
}
