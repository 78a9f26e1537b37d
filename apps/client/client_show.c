/* hestat-client show: what a study file holds, for every party to read before
 * contributing to it or computing on it: its columns (derived ones named by
 * what they are), their public factors, the disclosure policy and the study
 * digest that binds tables and results to exactly this study. */
#include <stdio.h>
#include <string.h>

#include "apps/client/client.h"

int client_show(const char *study_path)
{
    stats_study_t *s;
    if (client_load_study(study_path, &s)) return 1;
    const stats_layout_t *lay = &s->layout;
    printf("study %s\ndigest ", study_path);
    for (int i = 0; i < 32; i++) printf("%02x", s->digest[i]);
    printf("\nslots %zu, columns %zu (row block %zu)\n", lay->slots, lay->ncols, lay->block);
    if (s->parties) {
        printf("multiparty: %d parties (all needed to release a result), smudging sd 2^%d, draft digest ", s->parties,
               s->smudge_bits);
        for (int i = 0; i < 32; i++) printf("%02x", s->draft_digest[i]);
        printf("\n");
    }
    for (size_t c = 0; c < lay->ncols; c++) printf("  %-40s factor %.17g\n", lay->names[c], lay->factor[c]);
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
