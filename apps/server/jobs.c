/*
 * Jobs: every table of a study, combined, one result.
 *
 * A job's state lives in memory first and in spool/STUDY/jobs/JOB.json
 * when the disk allows: a job that cannot write its result (disk full) is
 * "failed" with the reason even when its state file cannot be written
 * either, and the state is written once space is back. States on disk are
 * written atomically (ckks_file_write: temporary, fsync, rename, fsync of
 * the directory), one writer at a time (the persist lock, taken before the
 * jobs lock, never after).
 *
 * The queue is a list: --queue bounds new requests only, so jobs recovered
 * after a kill -9 all run whatever the new limit. On SIGTERM, running jobs
 * are left "queued" on disk and the process does not wait for them; the
 * persist lock is then held until exit, so no worker can write a later
 * state over it. Finished jobs whose state is on disk leave memory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apps/server/serve_impl.h"

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };
static const char *const state_names[] = {"queued", "running", "done", "failed"};

struct srv_job {
    char study[SRV_ID_LEN + 1], id[SRV_ID_LEN + 1];
    stats_job_t kind;
    char *glm; /* a glm round's request line (glm_round.c), else NULL */
    int state;
    char error[400];
    int dirty;     /* memory is newer than the spool */
    int abandoned; /* the server stopped while it ran: "queued" on disk */
    srv_job_t *next, *next_queued;
};

struct srv_jobs {
    char spool[SRV_PATH_MAX];
    srv_cache_t *cache;
    pthread_mutex_t persist; /* one state writer at a time; held for ever once stopped */
    pthread_mutex_t lock;    /* lists, counters and every job's fields */
    pthread_cond_t work, idle;
    srv_job_t *all, *qhead, *qtail;
    size_t queued, queue_max;
    int stop, busy, nworkers, persist_held;
    pthread_t *workers;
    char *launcher[SRV_LAUNCHER_ARGS + 1]; /* --launcher split at blanks; [0] NULL: none */
    char *launcher_copy;
    long launch_timeout;                   /* seconds; 0: none */
    char self[SRV_PATH_MAX];               /* this program, for the launcher to start */
};

void srv_jobs_set_launch_timeout(srv_jobs_t *j, long seconds) { j->launch_timeout = seconds > 0 ? seconds : 0; }

/* Seconds since an earlier CLOCK_MONOTONIC reading. */
static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static const char *kind_name(const srv_job_t *job)
{
    return job->glm ? "glm" : job->kind == STATS_JOB_MEANS ? "means" : "all";
}

static int state_path(const srv_jobs_t *j, const char *study, const char *job, const char *suffix, char *out,
                      size_t n)
{
    char name[SRV_ID_LEN + 16];
    snprintf(name, sizeof name, "%.32s%s", job, suffix);
    return srv_path(out, n, j->spool, study, "jobs", name);
}

static json_t *state_json(const srv_job_t *job)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "job", job->id, "status", state_names[job->state], "stats",
                          kind_name(job));
    if (o && job->glm) json_object_set_new(o, "glm", json_string(job->glm));
    if (o && job->state == JOB_FAILED) json_object_set_new(o, "error", json_string(job->error));
    return o;
}

/* Caller holds persist. Writes the state in snap (a copy of a job's):
 * 0 when written, or when the study is gone (nothing to keep). */
static int write_state(srv_jobs_t *j, const srv_job_t *snap)
{
    char path[SRV_PATH_MAX];
    json_t *o = state_json(snap);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = !txt || state_path(j, snap->study, snap->id, ".json", path, sizeof path)
                 ? CKKS_ENOMEM
                 : ckks_file_write(path, txt, strlen(txt), 0644);
    int saved = errno;
    free(txt);
    if (rc == CKKS_EIO && saved == ENOENT) return 0; /* the study was deleted: nothing to keep */
    if (rc)
        fprintf(stderr, "hestat-server: job %s is %s but its state file cannot be written (%s); kept in memory\n",
                snap->id, state_names[snap->state], rc == CKKS_EIO ? strerror(saved) : ckks_strerror(rc));
    return rc;
}

/* Caller holds persist. Writes the job's current state; clears dirty when
 * what was written is still the current state. */
static void persist_locked(srv_jobs_t *j, srv_job_t *job)
{
    pthread_mutex_lock(&j->lock);
    srv_job_t snap = *job;
    pthread_mutex_unlock(&j->lock);
    int rc = write_state(j, &snap);
    pthread_mutex_lock(&j->lock);
    if (!rc && job->state == snap.state) job->dirty = 0;
    pthread_mutex_unlock(&j->lock);
}

/* Caller holds persist (so no other thread frees jobs meanwhile). */
static void forget_settled(srv_jobs_t *j)
{
    pthread_mutex_lock(&j->lock);
    for (srv_job_t **p = &j->all; *p;) {
        srv_job_t *job = *p;
        if (!job->dirty && (job->state == JOB_DONE || job->state == JOB_FAILED)) {
            *p = job->next;
            free(job->glm);
            free(job);
        } else {
            p = &job->next;
        }
    }
    pthread_mutex_unlock(&j->lock);
}

/* Caller holds persist (nothing is freed meanwhile): retries every state
 * not on disk yet, then lets settled jobs go. */
static void flush_dirty_locked(srv_jobs_t *j)
{
    pthread_mutex_lock(&j->lock);
    size_t n = 0;
    for (srv_job_t *job = j->all; job; job = job->next) n += job->dirty;
    srv_job_t **dirty = n ? malloc(n * sizeof *dirty) : NULL;
    n = 0;
    for (srv_job_t *job = j->all; dirty && job; job = job->next)
        if (job->dirty) dirty[n++] = job;
    pthread_mutex_unlock(&j->lock);
    for (size_t i = 0; i < n; i++) persist_locked(j, dirty[i]);
    free(dirty);
    forget_settled(j);
}

static void persist(srv_jobs_t *j, srv_job_t *job)
{
    pthread_mutex_lock(&j->persist);
    persist_locked(j, job);
    pthread_mutex_unlock(&j->persist);
}

/* ---- running a job ----------------------------------------------------------- */
static int stopping(srv_jobs_t *j)
{
    pthread_mutex_lock(&j->lock);
    int s = j->stop;
    pthread_mutex_unlock(&j->lock);
    return s;
}

/* Mapped rather than read: the pages stay the kernel's file cache. */
int srv_read_table(const stats_study_t *study, const char *path, stats_enc_table_t **t)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    void *map = MAP_FAILED;
    if (fd >= 0 && !fstat(fd, &st) && st.st_size > 0)
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    if (fd >= 0) close(fd);
    if (map == MAP_FAILED) {
        errno = saved;
        return STATS_EIO;
    }
    int rc = stats_table_read(study, map, (size_t)st.st_size, t, NULL);
    munmap(map, (size_t)st.st_size);
    return rc;
}

/* A table file opened to be read chunk by chunk as the computation goes
 * (stats_table_file_open): a worker holds a few chunks, not the table. */
static int open_table(const stats_study_t *study, const char *path, stats_enc_table_t **t)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        int saved = fd < 0 ? errno : EINVAL;
        if (fd >= 0) close(fd);
        errno = saved;
        return STATS_EIO;
    }
    int rc = stats_table_file_open(study, fd, 0, (uint64_t)st.st_size, 1, t, NULL);
    if (rc) close(fd);
    return rc;
}

/* The reason a table could not be used, for the job's error. */
static void table_error(char *err, size_t errlen, const char *name, int rc)
{
    const char *detail = rc == STATS_EIO ? strerror(errno) : rc == STATS_ENOMEM ? "" : stats_error();
    snprintf(err, errlen, "table %.32s: %s%s%s", name, stats_strerror(rc), detail[0] ? ": " : "", detail);
}

static int is_table_name(const char *name)
{
    return strlen(name) == SRV_ID_LEN + 4 && !strcmp(name + SRV_ID_LEN, ".hst") && srv_valid_id(name, SRV_ID_LEN);
}

/* Adds every table's totals into *acc (in segments of stats_segment_rows
 * across the tables). 1 when the server is stopping. */
static int compute_tables(srv_jobs_t *j, const stats_study_t *study, stats_job_t kind, const char *dir,
                          stats_enc_result_t **acc, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot list the tables: %s", strerror(errno));
        return 0;
    }
    struct dirent *e;
    int stopped = 0;
    uint64_t used = 0; /* rows in *acc's last segment */
    while (!err[0] && (e = readdir(d))) {
        if (!is_table_name(e->d_name)) continue;
        if ((stopped = stopping(j))) break;
        char path[SRV_PATH_MAX];
        stats_enc_table_t *t = NULL;
        int rc = srv_path(path, sizeof path, dir, e->d_name, NULL, NULL) ? STATS_EINVAL : open_table(study, path, &t);
        if (!rc) rc = stats_compute_more(study->ctx, t, kind, study->rk, study->gk, 0, 1, NULL, NULL, acc, &used,
                                         NULL);
        stats_enc_table_free(t);
        if (rc) table_error(err, errlen, e->d_name, rc);
    }
    closedir(d);
    return stopped;
}

static void write_result(srv_jobs_t *j, const srv_job_t *job, const stats_study_t *study,
                         const stats_enc_result_t *acc, char *err, size_t errlen)
{
    char path[SRV_PATH_MAX];
    void *out = NULL;
    size_t olen = 0;
    int rc = stats_result_write(study, acc, &out, &olen);
    if (rc) {
        snprintf(err, errlen, "cannot encode the result: %s", stats_strerror(rc));
        return;
    }
    rc = state_path(j, job->study, job->id, ".result.hst", path, sizeof path) ? CKKS_EINVAL
                                                                              : ckks_file_write(path, out, olen, 0644);
    if (rc) snprintf(err, errlen, "cannot write the result: %s", rc == CKKS_EIO ? strerror(errno) : ckks_strerror(rc));
    free(out);
}

/* ---- jobs through a launcher (--launcher 'mpirun -n K ...') ----------------------
 * The job file is assembled by concatenation (the study's file, a job header,
 * every table's file: no table is parsed here), fsynced, and the launcher
 * runs `SELF compute JOBFILE --out RESULT` in its own process group with its
 * output in JOB.launch.log. A non-zero exit (a rank killed, a rank failing)
 * fails the job with the log's last line; a stopping server kills the
 * group and leaves the job queued, to run again after the restart. */
static int copy_file(int out, const char *path)
{
    int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) return -1;
    char buf[1 << 16];
    ssize_t n;
    int rc = 0;
    while (!rc && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = -1;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                rc = -1;
                break;
            }
            off += w;
        }
    }
    close(in);
    return rc;
}

/* The last non-empty line of a log, for a job's error. */
static void last_line(const char *path, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (line[strspn(line, " \t\r\n")]) snprintf(out, n, "%.*s", (int)strcspn(line, "\r\n"), line);
    if (f) fclose(f);
}

static int launch_tables(srv_jobs_t *j, const srv_job_t *job, const stats_study_t *study, const char *dir,
                         const char *result, char *err, size_t errlen)
{
    char jobfile[SRV_PATH_MAX], logfile[SRV_PATH_MAX], study_file[SRV_PATH_MAX], path[SRV_PATH_MAX];
    if (state_path(j, job->study, job->id, ".job.hst", jobfile, sizeof jobfile) ||
        state_path(j, job->study, job->id, ".launch.log", logfile, sizeof logfile) ||
        srv_path(study_file, sizeof study_file, j->spool, job->study, "study.hst", NULL)) {
        snprintf(err, errlen, "spool path too long");
        return 0;
    }
    /* The tables, named in directory order (the result does not depend on it). */
    char (*names)[SRV_ID_LEN + 8] = NULL;
    size_t count = 0, cap = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!is_table_name(e->d_name)) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            void *q = realloc(names, cap * sizeof *names);
            if (!q) break;
            names = q;
        }
        snprintf(names[count++], sizeof names[0], "%.*s", SRV_ID_LEN + 4, e->d_name); /* a table name: ID.hst */
    }
    if (d) closedir(d);
    if (!count) {
        free(names);
        snprintf(err, errlen, d ? "no tables uploaded" : "cannot list the tables: %s", strerror(errno));
        return 0;
    }
    uint8_t hdr[16] = {0};
    uint32_t kind = (uint32_t)job->kind;
    uint64_t n = count;
    memcpy(hdr, &kind, 4);
    memcpy(hdr + 8, &n, 8);
    void *frame = NULL;
    size_t flen = 0;
    int fd = open(jobfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int bad = fd < 0 || ckks_frame_write(study->ctx, STATS_OBJ_JOB, hdr, sizeof hdr, &frame, &flen) ||
              copy_file(fd, study_file) || write(fd, frame, flen) != (ssize_t)flen;
    for (size_t i = 0; !bad && i < count; i++)
        bad = srv_path(path, sizeof path, dir, names[i], NULL, NULL) || copy_file(fd, path);
    if (!bad) bad = fsync(fd) != 0;
    if (fd >= 0) close(fd);
    free(frame);
    free(names);
    if (bad) {
        snprintf(err, errlen, "cannot write the job file for the launcher: %s", strerror(errno));
        unlink(jobfile);
        return 0;
    }
    const char *argv[SRV_LAUNCHER_ARGS + 8];
    size_t a = 0;
    for (; j->launcher[a]; a++) argv[a] = j->launcher[a];
    argv[a++] = j->self;
    argv[a++] = "compute";
    argv[a++] = jobfile;
    argv[a++] = "--out";
    argv[a++] = result;
    argv[a] = NULL;
    unlink(result);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int log = open(logfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run the launcher %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        snprintf(err, errlen, "cannot start the launcher: %s", strerror(errno));
        unlink(jobfile);
        return 0;
    }
    setpgid(pid, pid);
    int status = 0, stopped = 0, late = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) break;
        if (!stopped && stopping(j)) stopped = 1;
        else if (j->launch_timeout && since(&t0) >= (double)j->launch_timeout) late = 1;
        if (stopped || late) {
            kill(-pid, SIGTERM);
            for (int i = 0; i < 40 && waitpid(pid, &status, WNOHANG) == 0; i++) usleep(50000);
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(20000);
    }
    unlink(jobfile);
    if (stopped) {
        unlink(result);
        return 1;
    }
    if (late) {
        char tail[300];
        last_line(logfile, tail, sizeof tail);
        snprintf(err, errlen, "launcher ran past --launch-timeout (%ld s) and was stopped%s%s", j->launch_timeout,
                 tail[0] ? ": " : "", tail);
        unlink(result);
        return 0;
    }
    struct stat st;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || stat(result, &st) || !S_ISREG(st.st_mode)) {
        char tail[300];
        last_line(logfile, tail, sizeof tail);
        if (WIFSIGNALED(status))
            snprintf(err, errlen, "launcher killed by signal %d%s%s", WTERMSIG(status), tail[0] ? ": " : "", tail);
        else
            snprintf(err, errlen, "launcher exited with status %d%s%s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     tail[0] ? ": " : "", tail);
        unlink(result);
    }
    return 0;
}

void srv_jobs_set_launcher(srv_jobs_t *j, const char *launcher)
{
    free(j->launcher_copy);
    j->launcher_copy = launcher ? strdup(launcher) : NULL;
    size_t n = 0;
    for (char *save = NULL, *t = j->launcher_copy ? strtok_r(j->launcher_copy, " \t", &save) : NULL;
         t && n < SRV_LAUNCHER_ARGS; t = strtok_r(NULL, " \t", &save))
        j->launcher[n++] = t;
    j->launcher[n] = NULL;
    ssize_t l = readlink("/proc/self/exe", j->self, sizeof j->self - 1);
    j->self[l > 0 ? l : 0] = 0;
}

/* Returns 1 when abandoned because the server is stopping. */
static int run_job(srv_jobs_t *j, srv_job_t *job, char *err, size_t errlen)
{
    char dir[SRV_PATH_MAX];
    srv_cached_t *e = srv_cache_get(j->cache, j->spool, job->study, err, errlen);
    if (!e) return 0;
    const stats_study_t *study = srv_cached_study(e);
    stats_enc_result_t *acc = NULL;
    int stopped = 0;
    char result[SRV_PATH_MAX];
    if (srv_path(dir, sizeof dir, j->spool, job->study, "tables", NULL) ||
        state_path(j, job->study, job->id, ".result.hst", result, sizeof result)) {
        snprintf(err, errlen, "spool path too long");
    } else if (job->glm) {
        srv_glm_run(j->cache, j->spool, job->study, study, dir, job->glm, result, err, errlen);
        srv_cache_release(j->cache, e);
        return 0;
    } else if (j->launcher[0]) {
        stopped = launch_tables(j, job, study, dir, result, err, errlen);
        srv_cache_release(j->cache, e);
        return stopped;
    } else stopped = compute_tables(j, study, job->kind, dir, &acc, err, errlen);
    if (!stopped && !err[0] && !acc) snprintf(err, errlen, "no tables uploaded");
    if (!stopped && !err[0]) write_result(j, job, study, acc, err, errlen);
    stats_enc_result_free(acc);
    srv_cache_release(j->cache, e);
    return stopped;
}

/* The final state is written before clients can see it: a client told
 * "done" finds it so after a crash. (A state the disk refuses is shown
 * anyway, kept in memory and written when it can be.) */
static void finish_job(srv_jobs_t *j, srv_job_t *job, const char *err)
{
    pthread_mutex_lock(&j->persist); /* blocks for ever once stopped: the state stays "queued" */
    pthread_mutex_lock(&j->lock);
    srv_job_t snap = *job;
    pthread_mutex_unlock(&j->lock);
    if (!snap.abandoned) {
        snap.state = err[0] ? JOB_FAILED : JOB_DONE;
        snprintf(snap.error, sizeof snap.error, "%s", err);
        int rc = write_state(j, &snap);
        pthread_mutex_lock(&j->lock);
        if (!job->abandoned) {
            job->state = snap.state;
            snprintf(job->error, sizeof job->error, "%s", err);
            job->dirty = rc != 0;
        }
        pthread_mutex_unlock(&j->lock);
    }
    flush_dirty_locked(j); /* also states a full disk refused earlier */
    pthread_mutex_unlock(&j->persist);
}

static srv_job_t *next_job(srv_jobs_t *j)
{
    pthread_mutex_lock(&j->lock);
    while (!j->stop && !j->qhead) pthread_cond_wait(&j->work, &j->lock);
    srv_job_t *job = j->stop ? NULL : j->qhead;
    if (job) {
        j->qhead = job->next_queued;
        if (!j->qhead) j->qtail = NULL;
        j->queued--;
        job->state = JOB_RUNNING;
        job->dirty = 1;
        j->busy++;
    }
    pthread_mutex_unlock(&j->lock);
    return job;
}

static void *worker(void *arg)
{
    srv_jobs_t *j = arg;
    srv_job_t *job;
    while ((job = next_job(j))) {
        persist(j, job);
        char err[400] = "";
        if (!run_job(j, job, err, sizeof err)) finish_job(j, job, err);
        pthread_mutex_lock(&j->lock);
        if (!--j->busy) pthread_cond_broadcast(&j->idle);
        pthread_mutex_unlock(&j->lock);
    }
    return NULL;
}

/* ---- the queue --------------------------------------------------------------------- */
static void enqueue_locked(srv_jobs_t *j, srv_job_t *job)
{
    job->next_queued = NULL;
    if (j->qtail) j->qtail->next_queued = job;
    else j->qhead = job;
    j->qtail = job;
    pthread_cond_signal(&j->work);
}

static srv_job_t *new_job(srv_jobs_t *j, const char *study, const char *id, stats_job_t kind, const char *glm,
                          int state)
{
    srv_job_t *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    if (glm && !(job->glm = strdup(glm))) {
        free(job);
        return NULL;
    }
    snprintf(job->study, sizeof job->study, "%s", study);
    snprintf(job->id, sizeof job->id, "%s", id);
    job->kind = kind;
    job->state = state;
    job->dirty = 1;
    pthread_mutex_lock(&j->lock);
    job->next = j->all;
    j->all = job;
    pthread_mutex_unlock(&j->lock);
    return job;
}

int srv_jobs_submit(srv_jobs_t *j, const char *study, stats_job_t kind, const char *glm,
                    char id_out[SRV_ID_LEN + 1])
{
    pthread_mutex_lock(&j->lock);
    int full = j->queued >= j->queue_max || j->stop;
    if (!full) j->queued++; /* the slot is ours before the job exists */
    pthread_mutex_unlock(&j->lock);
    if (full) return 503;
    srv_new_id(id_out);
    srv_job_t *job = new_job(j, study, id_out, kind, glm, JOB_QUEUED);
    if (job) persist(j, job); /* before a worker can see it (and free it once done) */
    pthread_mutex_lock(&j->lock);
    if (job) enqueue_locked(j, job);
    else j->queued--;
    pthread_mutex_unlock(&j->lock);
    return job ? 0 : 500;
}

/* ---- recovery ------------------------------------------------------------------------ */
static void recover_job(srv_jobs_t *j, const char *study, const char *id, size_t *count)
{
    char path[SRV_PATH_MAX];
    if (state_path(j, study, id, ".json", path, sizeof path)) return;
    json_t *st = json_load_file(path, 0, NULL);
    const char *status = st ? json_string_value(json_object_get(st, "status")) : NULL;
    const char *stats = st ? json_string_value(json_object_get(st, "stats")) : NULL;
    stats_job_t kind = stats && !strcmp(stats, "means") ? STATS_JOB_MEANS : STATS_JOB_ALL;
    const char *glm = stats && !strcmp(stats, "glm") ? json_string_value(json_object_get(st, "glm")) : NULL;
    int known = (!stats || strcmp(stats, "glm") || (glm && strlen(glm) < SRV_GLM_LINE)) && status && (!strcmp(status, "queued") || !strcmp(status, "running") || !strcmp(status, "done") ||
                           !strcmp(status, "failed"));
    if (known && (!strcmp(status, "done") || !strcmp(status, "failed"))) {
        json_decref(st);
        return;
    }
    srv_job_t *job = new_job(j, study, id, kind, known ? glm : NULL, known ? JOB_QUEUED : JOB_FAILED);
    if (job && !known) snprintf(job->error, sizeof job->error, "its state file was unreadable after a restart");
    if (job) {
        fprintf(stderr, "hestat-server: %s job %s of study %s\n", known ? "resuming" : "failing (unreadable state)",
                id, study);
        persist(j, job);
    }
    if (job && known) {
        pthread_mutex_lock(&j->lock);
        j->queued++;
        enqueue_locked(j, job);
        pthread_mutex_unlock(&j->lock);
        (*count)++;
    }
    json_decref(st);
}

size_t srv_jobs_recover(srv_jobs_t *j)
{
    size_t count = 0;
    DIR *d = opendir(j->spool);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char jobs[SRV_PATH_MAX];
        if (!srv_valid_id(e->d_name, strlen(e->d_name)) ||
            srv_path(jobs, sizeof jobs, j->spool, e->d_name, "jobs", NULL))
            continue;
        DIR *jd = opendir(jobs);
        struct dirent *f;
        while (jd && (f = readdir(jd))) {
            if (strlen(f->d_name) != SRV_ID_LEN + 5 || strcmp(f->d_name + SRV_ID_LEN, ".json") ||
                !srv_valid_id(f->d_name, SRV_ID_LEN))
                continue;
            char id[SRV_ID_LEN + 1];
            snprintf(id, sizeof id, "%.32s", f->d_name);
            recover_job(j, e->d_name, id, &count);
        }
        if (jd) closedir(jd);
    }
    if (d) closedir(d);
    pthread_mutex_lock(&j->persist);
    forget_settled(j);
    pthread_mutex_unlock(&j->persist);
    return count;
}

/* ---- status ---------------------------------------------------------------------------- */
char *srv_jobs_status_json(srv_jobs_t *j, const char *study, const char *id, int *done)
{
    json_t *o = NULL;
    pthread_mutex_lock(&j->lock);
    for (srv_job_t *job = j->all; job; job = job->next)
        if (!strcmp(job->id, id) && !strcmp(job->study, study)) {
            o = state_json(job);
            break;
        }
    pthread_mutex_unlock(&j->lock);
    char path[SRV_PATH_MAX];
    if (!o && !state_path(j, study, id, ".json", path, sizeof path)) o = json_load_file(path, 0, NULL);
    const char *status = o ? json_string_value(json_object_get(o, "status")) : NULL;
    if (done) *done = status && !strcmp(status, "done");
    char *txt = status ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return txt;
}

/* ---- start and stop ------------------------------------------------------------------ */
int srv_jobs_start(srv_jobs_t **out, const char *spool, srv_cache_t *cache, int workers, size_t queue_max)
{
    srv_jobs_t *j = calloc(1, sizeof *j);
    if (!j) return -1;
    snprintf(j->spool, sizeof j->spool, "%s", spool);
    j->cache = cache;
    j->queue_max = queue_max;
    pthread_mutex_init(&j->persist, NULL);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->work, NULL);
    pthread_cond_init(&j->idle, NULL);
    j->workers = calloc((size_t)workers, sizeof *j->workers);
    for (; j->workers && j->nworkers < workers; j->nworkers++)
        if (pthread_create(&j->workers[j->nworkers], NULL, worker, j)) break;
    *out = j;
    return j->nworkers ? 0 : -1;
}

/* Waits up to ms for the workers to reach a table boundary and stop. */
static int wait_idle(srv_jobs_t *j, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->lock);
    while (j->busy && pthread_cond_timedwait(&j->idle, &j->lock, &until) == 0) {
    }
    int busy = j->busy;
    pthread_mutex_unlock(&j->lock);
    return busy;
}

int srv_jobs_stop(srv_jobs_t *j)
{
    pthread_mutex_lock(&j->lock);
    j->stop = 1;
    pthread_cond_broadcast(&j->work);
    pthread_mutex_unlock(&j->lock);
    wait_idle(j, 500);
    pthread_mutex_lock(&j->persist); /* kept: no worker writes a state after this */
    j->persist_held = 1;
    pthread_mutex_lock(&j->lock);
    for (srv_job_t *job = j->all; job; job = job->next)
        if (job->state == JOB_RUNNING) {
            job->state = JOB_QUEUED;
            job->abandoned = 1;
            job->dirty = 1;
        }
    pthread_mutex_unlock(&j->lock);
    flush_dirty_locked(j);
    pthread_mutex_lock(&j->lock);
    int busy = j->busy;
    pthread_mutex_unlock(&j->lock);
    if (busy) return 1;
    for (int i = 0; i < j->nworkers; i++) pthread_join(j->workers[i], NULL);
    j->nworkers = 0;
    return 0;
}

void srv_jobs_free(srv_jobs_t *j)
{
    if (!j) return;
    for (srv_job_t *job = j->all, *n; job; job = n) {
        n = job->next;
        free(job->glm);
        free(job);
    }
    free(j->workers);
    free(j->launcher_copy);
    if (j->persist_held) pthread_mutex_unlock(&j->persist);
    pthread_mutex_destroy(&j->persist);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->work);
    pthread_cond_destroy(&j->idle);
    free(j);
}
