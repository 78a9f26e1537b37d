#include <gmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

int test_is_prime_gmp(uint64_t n)
{
    mpz_t z;
    mpz_init(z);
    mpz_import(z, 1, -1, sizeof n, 0, 0, &n);
    int r = mpz_probab_prime_p(z, 40);
    mpz_clear(z);
    return r != 0;
}

uint64_t test_prime(int bits, size_t n)
{
    uint64_t f = 2 * (uint64_t)n;
    for (uint64_t v = ((uint64_t)1 << bits) - f + 1; v > f; v -= f)
        if (test_is_prime_gmp(v)) return v;
    return 0;
}

void test_naive_ntt(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t psi)
{
    int logn = __builtin_ctzll(n);
    for (size_t k = 0; k < n; k++) {
        uint64_t x = ref_powmod(psi, 2 * ntt_bitrev(k, logn) + 1, q);
        uint64_t acc = 0;
        for (size_t i = n; i-- > 0;) acc = (uint64_t)(((unsigned __int128)acc * x + a[i]) % q);
        out[k] = acc;
    }
}

void test_fill(test_rng_t *r, uint64_t *v, size_t n, uint64_t bound)
{
    for (size_t i = 0; i < n; i++) v[i] = test_rng_below(r, bound);
    if (n > 2) {
        v[0] = 0;
        v[n - 1] = bound - 1;
    }
}

int test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *test_bin(const char *name)
{
    static char paths[8][512];
    static int next;
    const char *dir = getenv("HESTAT_BIN");
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", dir && dir[0] ? dir : "build/bin", name);
    return p;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int test_server_start(const char *spool, const char *log, char *base, size_t baselen, const char *const *args)
{
    const char *argv[64] = {"hestat-server", "serve", "--listen", "127.0.0.1:0", "--spool", spool};
    size_t n = 6;
    for (size_t i = 0; args && args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    unlink(log);
    const char *prog = test_bin("hestat-server");
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* A test killed at its timeout runs no clean-up: the server goes with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(log, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            char *p = strstr(line, "://");
            if (p && strstr(line, "listening on")) {
                while (p > line && p[-1] != ' ') p--;
                snprintf(base, baselen, "%.*s", (int)strcspn(p, " \n"), p);
                fclose(f);
                return pid;
            }
        }
        if (f) fclose(f);
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1; /* exited */
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

long test_server_stop(int pid, int sig)
{
    if (pid <= 0) return -1;
    double t0 = now_ms();
    kill(pid, sig);
    for (;;) {
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
        if (now_ms() - t0 > 10000) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        usleep(10000);
    }
    return (long)(now_ms() - t0);
}

int test_keys_new(ckks_context_t *ctx, ckks_secret_key_t **sk, ckks_public_key_t **pk, ckks_relin_key_t **rk,
                  ckks_galois_keys_t **gk, int galois, const int *steps, size_t count, int conjugate)
{
    *gk = NULL;
    int rc = ckks_secret_key_new(ctx, sk);
    if (!rc) rc = ckks_public_key_new(*sk, pk);
    if (!rc) rc = ckks_relin_key_new(*sk, rk);
    if (!rc && galois) rc = ckks_galois_keys_new(*sk, steps, count, conjugate, gk);
    return rc;
}

void test_keys_free(ckks_context_t *ctx, ckks_secret_key_t *sk, ckks_public_key_t *pk, ckks_relin_key_t *rk,
                    ckks_galois_keys_t *gk)
{
    ckks_galois_keys_free(gk);
    ckks_relin_key_free(rk);
    ckks_public_key_free(pk);
    ckks_secret_key_free(sk);
    ckks_context_free(ctx);
}
