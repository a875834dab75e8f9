/* store_commit.c: what a group commit costs the store, on Parley's VFS (src/store/walbuf.c)
 * and on SQLite's own ("unix"), in the same run. Each transaction inserts UNITS rows shaped
 * like sent messages (a ~1 KB body; an index on a random key and one on the recipient, out of
 * RECIPIENTS, so every row lands on its recipient's leaf, as messages_contact does) into a
 * fresh store in DIR/parley and DIR/unix. The two run alternately, ROUNDS rounds of TX
 * transactions each, and the writer's own CPU time (RUSAGE_THREAD) per commit is compared
 * (the checkpointer thread's is not counted: both VFSs write the main file alike).
 *
 *   store_commit DIR [TX ROUNDS UNITS RECIPIENTS]     (defaults: 1000 3 18 2000)
 *
 * Last line (machine-readable):
 *   store_commit units=U frames_per_commit=F parley_cpu_us=A unix_cpu_us=B ratio=A/B
 *                parley_writes_per_commit=W */
#define _GNU_SOURCE
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double thread_cpu_us(void)
{
    struct rusage u;
    getrusage(RUSAGE_THREAD, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

typedef struct {
    const char *name, *vfs;
    store_t *s;
    store_conn_t *c;
    double cpu_us;
    long tx;
    uint64_t commits, frames, writes; /* wal stats at the end of this side's last round */
} side_t;

static int open_side(side_t *sd, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sd->name);
    err_t e = {0};
    store_opts_t o = {.vfs = sd->vfs};
    sd->s = store_open(path, &o, &e);
    sd->c = sd->s ? store_conn(sd->s, &e) : NULL;
    if (!sd->c ||
        store_exec_script(sd->c,
                          "CREATE TABLE m (id INTEGER PRIMARY KEY, k TEXT NOT NULL, r TEXT NOT "
                          "NULL, body TEXT NOT NULL); CREATE INDEX m_k ON m(k); CREATE INDEX "
                          "m_r ON m(r, id);",
                          &e) < 0) {
        fprintf(stderr, "store_commit: %s: %s\n", path, e.message);
        return -1;
    }
    return 0;
}

/* One round: tx transactions of units rows. Returns 0, or -1. */
static int run_round(side_t *sd, long tx, int units, int recipients, unsigned *seed)
{
    static char body[1100];
    if (!body[0]) memset(body, 'x', sizeof body - 1);
    err_t e = {0};
    uint64_t c0, f0, w0, c1, f1, w1;
    store_wal_stats(&c0, &f0, &w0);
    double t0 = thread_cpu_us();
    for (long t = 0; t < tx; t++) {
        if (store_begin(sd->c, &e) < 0) goto fail;
        for (int i = 0; i < units; i++) {
            char k[32], r[32];
            snprintf(k, sizeof k, "%010u", rand_r(seed));
            snprintf(r, sizeof r, "rcpt-%06u", rand_r(seed) % (unsigned)recipients);
            if (store_exec(sd->c, &e, "INSERT INTO m (k, r, body) VALUES ($1, $2, $3)", "sss", k, r,
                           body) != 1)
                goto fail;
        }
        if (store_commit(sd->c, &e) < 0) goto fail;
        store_wal_settle(sd->c); /* as the group writer does between batches */
    }
    sd->cpu_us += thread_cpu_us() - t0;
    sd->tx += tx;
    store_wal_stats(&c1, &f1, &w1);
    sd->commits += c1 - c0;
    sd->frames += f1 - f0;
    sd->writes += w1 - w0;
    return 0;
fail:
    fprintf(stderr, "store_commit: %s: %s\n", sd->name, e.message);
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store_commit DIR [TX ROUNDS UNITS RECIPIENTS]\n");
        return 2;
    }
    long tx = argc > 2 ? atol(argv[2]) : 1000;
    int rounds = argc > 3 ? atoi(argv[3]) : 3, units = argc > 4 ? atoi(argv[4]) : 18,
        recipients = argc > 5 ? atoi(argv[5]) : 2000;
    if (tx < 1 || rounds < 1 || units < 1 || recipients < 1) {
        fprintf(stderr, "store_commit: TX, ROUNDS, UNITS and RECIPIENTS must be positive\n");
        return 2;
    }
    side_t sides[2] = {{.name = "parley", .vfs = NULL}, {.name = "unix", .vfs = "unix"}};
    for (int i = 0; i < 2; i++)
        if (open_side(&sides[i], argv[1]) < 0) return 1;
    unsigned seed = 42;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < 2; i++)
            if (run_round(&sides[i], tx, units, recipients, &seed) < 0) return 1;
    printf("store_commit: %d rows per transaction (~1 KB each, 2 indexes, %d recipients), %d "
           "rounds of %ld transactions, alternating\n",
           units, recipients, rounds, tx);
    printf("%-8s %14s %17s %14s\n", "vfs", "CPU us/commit", "WAL pages/commit", "writes/commit");
    for (int i = 0; i < 2; i++) {
        side_t *sd = &sides[i];
        double n = sd->commits ? (double)sd->commits : 1;
        char writes[32] = "2 per page"; /* SQLite's own: a frame header, then the page */
        if (i == 0) snprintf(writes, sizeof writes, "%.2f", (double)sd->writes / n);
        printf("%-8s %14.1f %17.1f %14s\n", sd->name, sd->cpu_us / (double)sd->tx,
               (double)sd->frames / n, writes);
    }
    double a = sides[0].cpu_us / (double)sides[0].tx, b = sides[1].cpu_us / (double)sides[1].tx;
    printf("store_commit units=%d frames_per_commit=%.1f parley_cpu_us=%.1f unix_cpu_us=%.1f "
           "ratio=%.2f parley_writes_per_commit=%.2f\n",
           units, (double)sides[0].frames / (double)(sides[0].commits ? sides[0].commits : 1), a, b,
           a / b, (double)sides[0].writes / (double)(sides[0].commits ? sides[0].commits : 1));
    for (int i = 0; i < 2; i++)
        store_close(sides[i].s);
    return 0;
}
