/* sweep.c: the retention sweeper. A registry of named steps (privacy.h), a full sweep
 * for `parley retention run`, and the server's background thread: it runs every step in
 * small batches, adapting the batch size to the time budget (a batch that overran halves
 * the next one), pausing between batches so live writers get the write lock, and counts
 * what it removed for /metrics. The same thread takes the automatic backups. */
#define _GNU_SOURCE
#include "privacy/privacy.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/prom.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_STEPS 32

static struct {
    char name[48];
    privacy_sweep_fn fn;
    atomic_uint_fast64_t removed;
} steps[MAX_STEPS];
static int nsteps;
static atomic_uint_fast64_t sweep_passes, sweep_errors, backups_ok, backups_failed;

void privacy_sweep_register(const char *name, privacy_sweep_fn fn)
{
    for (int i = 0; i < nsteps; i++)
        if (strcmp(steps[i].name, name) == 0) {
            steps[i].fn = fn;
            return;
        }
    if (nsteps == MAX_STEPS) {
        log_kv(LOG_ERROR, "too many sweep steps", "name", name);
        return;
    }
    snprintf(steps[nsteps].name, sizeof steps[nsteps].name, "%s", name);
    steps[nsteps++].fn = fn;
}

json_t *privacy_sweep_all(store_t *s, int64_t now_ms, err_t *e)
{
    store_conn_t *c = store_conn(s, e);
    if (!c) return NULL;
    json_t *removed = json_object();
    for (int i = 0; i < nsteps; i++) {
        int64_t total = 0, n;
        while ((n = steps[i].fn(c, now_ms, 500, e)) > 0)
            total += n;
        if (n < 0) {
            json_decref(removed);
            return NULL;
        }
        atomic_fetch_add(&steps[i].removed, (uint64_t)total);
        json_object_set_new(removed, steps[i].name, json_integer(total));
    }
    char when[32];
    clock_format_rfc3339(now_ms, when, sizeof when);
    return json_pack("{s:s, s:o}", "as_of", when, "removed", removed);
}

void privacy_metrics_render(buf_t *out)
{
    prom_head(out, "counter", "parley_retention_removed_total",
              "Items removed by the retention sweeper, by kind (sweep step).");
    for (int i = 0; i < nsteps; i++)
        buf_printf(out, "parley_retention_removed_total{kind=\"%s\"} %llu\n", steps[i].name,
                   (unsigned long long)atomic_load(&steps[i].removed));
    prom_metric(out, "counter", "parley_retention_passes_total", "Full retention passes completed.",
                atomic_load(&sweep_passes));
    prom_metric(out, "counter", "parley_retention_errors_total", "Sweep steps that failed.",
                atomic_load(&sweep_errors));
    prom_head(out, "counter", "parley_backups_total", "Automatic backups by result.");
    buf_printf(out,
               "parley_backups_total{result=\"ok\"} %llu\n"
               "parley_backups_total{result=\"failed\"} %llu\n",
               (unsigned long long)atomic_load(&backups_ok),
               (unsigned long long)atomic_load(&backups_failed));
}

/* ---- the background thread ---- */

struct privacy {
    store_t *store;
    const config_t *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stopping;
    int64_t next_backup_ms;
};

/* Sleep up to ms; 1 if asked to stop. */
static int nap(privacy_t *p, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0) {
    }
    int stop = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void maybe_backup(privacy_t *p)
{
    if (p->cfg->backup_interval_s <= 0 || clock_mono_ms() < p->next_backup_ms) return;
    int64_t interval = p->cfg->backup_interval_s * 1000;
    p->next_backup_ms = clock_mono_ms() + interval;
    /* A restart does not take another backup before the interval since the newest. */
    int64_t age = clock_now_ms() - privacy_backup_newest_ms(p->cfg->data_dir);
    if (age >= 0 && age < interval) {
        p->next_backup_ms = clock_mono_ms() + (interval - age);
        return;
    }
    err_t e;
    if (privacy_backup_rotate(p->store, p->cfg->data_dir, (int)p->cfg->backup_keep, clock_now_ms(),
                              &e) < 0) {
        atomic_fetch_add(&backups_failed, 1);
        log_kv(LOG_ERROR, "automatic backup failed", "error", e.message);
    } else {
        atomic_fetch_add(&backups_ok, 1);
    }
}

/* Every step, each until it has nothing left, in batches inside the time budget. */
static void sweep_pass(privacy_t *p, store_conn_t *c, int *limit)
{
    err_t e;
    for (int i = 0; i < nsteps && !p->stopping; i++) {
        for (;;) {
            int64_t t0 = clock_mono_ms();
            int64_t n = steps[i].fn(c, clock_now_ms(), *limit, &e);
            int64_t took = clock_mono_ms() - t0;
            if (n < 0) {
                atomic_fetch_add(&sweep_errors, 1);
                log_kv(LOG_WARN, "sweep step failed", "step", steps[i].name, "error", e.message);
                break;
            }
            atomic_fetch_add(&steps[i].removed, (uint64_t)n);
            /* Keep each batch inside the budget: shrink after an overrun, grow back. */
            if (took > p->cfg->privacy_batch_ms && *limit > 1)
                *limit /= 2;
            else if (took * 2 < p->cfg->privacy_batch_ms && *limit < p->cfg->privacy_batch)
                *limit =
                    *limit * 2 > p->cfg->privacy_batch ? (int)p->cfg->privacy_batch : *limit * 2;
            if (n == 0) break;
            if (nap(p, p->cfg->privacy_pause_ms)) break;
        }
    }
}

static void *sweeper_main(void *arg)
{
    privacy_t *p = arg;
    int limit = (int)p->cfg->privacy_batch;
    err_t e;
    store_conn_t *c = store_conn(p->store, &e);
    if (!c) {
        log_kv(LOG_ERROR, "retention sweeper cannot start", "error", e.message);
        return NULL;
    }
    /* The first pass comes one interval after start (start-up is busy enough). */
    int64_t interval = p->cfg->privacy_interval_s * 1000;
    int64_t next_sweep = clock_mono_ms() + interval;
    while (!p->stopping) {
        maybe_backup(p);
        if (clock_mono_ms() >= next_sweep) {
            sweep_pass(p, c, &limit);
            atomic_fetch_add(&sweep_passes, 1);
            next_sweep = clock_mono_ms() + interval;
        }
        /* Sleep until the next pass or the next backup, whichever comes first. */
        int64_t wait = next_sweep - clock_mono_ms();
        if (p->cfg->backup_interval_s > 0 && p->next_backup_ms - clock_mono_ms() < wait)
            wait = p->next_backup_ms - clock_mono_ms();
        if (nap(p, wait > 0 ? wait : 0)) break;
    }
    return NULL;
}

privacy_t *privacy_start(store_t *s, const config_t *cfg, err_t *e)
{
    privacy_configure(cfg);
    privacy_register_builtin();
    privacy_t *p = xcalloc(1, sizeof *p);
    p->store = s;
    p->cfg = cfg;
    /* Due at once unless the newest automatic backup is younger than the interval. */
    p->next_backup_ms = clock_mono_ms();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, sweeper_main, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        err_set(e, ERR_INTERNAL, "cannot start the retention sweeper");
        return NULL;
    }
    return p;
}

void privacy_stop(privacy_t *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
