/* hestat-client encrypt: a contributor's CSV into an encrypted table.
 *
 * The CSV is read a block of rows_per_ct rows at a time (one ciphertext
 * chunk's worth): each block gets the study's derived columns, rebuilt from
 * their names (stats_derive_like: every one is a function of its row alone,
 * and a factor's levels are the study's, fixed at keygen, so a block
 * derives exactly as the whole table would), is range-checked, encrypted and
 * written, a batch of blocks encrypted in parallel. Memory holds a batch and
 * the study, whatever the row count, and the input may be a pipe. The output goes to a temporary file next to out
 * whose header gets the row count at the end (stats_table_writer_end),
 * fsynced and renamed over out (client_out_close): out is never partial, and
 * an error in any block, the last one included, removes the temporary file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/client/client.h"

/* Every value within its column's range [-F, F]; the first that is not is
 * named by line, column and range. Derived columns are checked through the
 * columns they come from ("cc:COL" through COL; indicators and bins are 0/1). */
static int check_ranges(const char *csv, const stats_table_t *t, const size_t *lines, const stats_layout_t *lay)
{
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            double v = stats_value(t, r, c), f = lay->factor[c];
            if (isnan(v) || fabs(v) <= f || !strncmp(t->names[c], "cc:", 3)) continue;
            fprintf(stderr, "hestat-client: %s:%zu: column %s: %.17g is outside the column's range [-%g, %g] in the "
                    "study (the analyst sets ranges at keygen: --range, --headroom)\n",
                    csv, lines[r], t->names[c], v, f, f);
            return 1;
        }
    return 0;
}

/* A block of the CSV with the study's columns (1 after a message). */
static int block_for_study(const char *csv, const stats_study_t *s, const stats_table_t *raw, const size_t *lines,
                           stats_table_t **t)
{
    char derr[256] = "";
    if (stats_derive_like(raw, &s->layout, t, derr, sizeof derr))
        return client_fail(csv, derr[0] ? derr : "its columns do not match the study's schema");
    if (!check_ranges(csv, *t, lines, &s->layout)) return 0;
    stats_table_free(*t);
    *t = NULL;
    return 1;
}

/* The CSV's blocks into w; the first block, even with no rows, checks the
 * header against the study. Blocks are read a batch at a time (four per
 * thread) and each batch is encrypted in parallel, written in order
 * (stats_table_writer_put_many): memory holds a batch, whatever the row
 * count. */
static int encrypt_blocks(const char *csv, const stats_study_t *s, stats_table_writer_t *w)
{
    char cerr[256];
    stats_csv_t *r;
    int rc = stats_csv_open(csv, &r, cerr, sizeof cerr);
    if (rc) return client_csv_fail(rc, cerr);
    const size_t nb = 4 * stats_threads(64);
    stats_table_t **batch = calloc(nb, sizeof *batch);
    int err = batch ? 0 : client_fail(csv, "out of memory"), more = 1;
    uint64_t shown = 0;
    for (size_t block = 0; more && !err;) {
        size_t have = 0;
        for (; have < nb && more && !err; block++) {
            stats_table_t *raw = NULL, *t = NULL;
            size_t *lines = NULL;
            if ((rc = stats_csv_next(r, s->layout.rows_per_ct, &raw, &lines))) {
                err = client_csv_fail(rc, cerr);
                break;
            }
            more = raw->nrows > 0;
            if (more || !block) err = block_for_study(csv, s, raw, lines, &t);
            if (!err && !more && !block) err = client_fail(csv, "no rows to encrypt");
            if (!err && more) batch[have++] = t;
            else stats_table_free(t);
            stats_table_free(raw);
            free(lines);
        }
        if (!err && have && (rc = stats_table_writer_put_many(w, (const stats_table_t *const *)batch, have)))
            err = client_stats_fail("encrypt", rc);
        for (size_t i = 0; i < have; i++) stats_table_free(batch[i]);
        uint64_t done, total;
        stats_csv_position(r, &done, &total);
        if (!err && done != shown) client_bar("encrypt", (size_t)(shown = done), (size_t)total);
    }
    free(batch);
    stats_csv_close(r);
    return err;
}

int client_encrypt(const char *study_path, const char *csv, const char *out)
{
    stats_study_t *s;
    if (client_load_study(study_path, &s)) return 1;
    client_out_t o;
    if (client_out_open(&o, out)) {
        stats_study_free(s);
        return 1;
    }
    stats_table_writer_t w;
    int err = 0, rc = stats_table_writer_begin(s, o.f, 0x1p40, &w);
    if (rc) err = client_stats_fail("encrypt", rc);
    if (!err) err = encrypt_blocks(csv, s, &w);
    if (!err && (rc = stats_table_writer_end(&w))) err = client_stats_fail("encrypt", rc);
    err = client_out_close(&o, !err) || err;
    stats_study_free(s);
    return err;
}
